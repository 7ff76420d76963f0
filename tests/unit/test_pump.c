/* test_pump.c - the relay core (proxy/relay/pump.c) with a small owner that frames the bytes with
 * mqtt_frame_parse and tells the pump what to do with each frame, over two rigs: bufferevent_pairs
 * (as a TLS or WebSocket side looks to the pump: no direct I/O) and socketpairs under
 * bufferevent_socket with direct writes and reads. Checked: backpressure (a destination that is
 * not read stops the source at the high watermark, resumes it at the low one, nothing lost or
 * reordered), half-close (frames then EOF: all are taken and flushed before the finish), the
 * lingering finish (FIN to the device, what it still sends discarded, done when it closes), a
 * stream of frames split at every byte boundary arrives byte-identical, and the verdicts
 * (forward, drop, replace, wait then resume, abort). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "check.h"
#include "mqtt_frame.h"
#include "pump_internal.h"
#include "verdict.h"

#define T_HIGH ((size_t)64 * 1024)
#define T_LOW ((size_t)16 * 1024)
#define T_READ_MAX ((size_t)300 * 1024)
#define T_SCRIPT_MAX 16

struct owner {
	struct pump pump; /* first: the owner is the pump's address */
	struct verdict script[T_SCRIPT_MAX]; /* per frame, in order; FORWARD past the end */
	size_t nscript, next;
	uint8_t replacement[8];
	bool waiting;
	bool released;
	unsigned frames, drained, lingers, dones, aborts, eofs, malformed;
	size_t peak; /* the most queued for the other side when a frame was about to be taken */
};

static struct owner *owner_of(struct pump *p)
{
	return (struct owner *)(void *)p;
}

/* Takes every complete frame from src (until backpressure, a wait or an abort); final: the source
 * has closed, take everything regardless of backpressure. */
static void owner_take(struct owner *o, enum pump_side src, bool final)
{
	uint8_t hdr[MQTT_FIXED_HDR_MAX];
	struct mqtt_frame f;
	const char *why = NULL;

	for (int guard = 0; guard < 100000; guard++) {
		struct evbuffer *in = pump_input(&o->pump, src);
		ev_ssize_t n;
		struct verdict v = verdict_forward();
		if (pump_out_len(&o->pump, pump_other(src)) > o->peak)
			o->peak = pump_out_len(&o->pump, pump_other(src));
		if (!in || o->waiting || (!final && pump_full(&o->pump, src)))
			return;
		n = evbuffer_copyout(in, hdr, sizeof(hdr));
		if (n <= 0)
			return;
		enum mqtt_parse rc = mqtt_frame_parse(hdr, (size_t)n, 1u << 20, MQTT_LEVEL_311, &f, &why);
		if (rc != MQTT_PARSE_OK && rc != MQTT_PARSE_NEED_MORE) {
			o->malformed++; /* as the session does: a stream out of step is closed */
			pump_finish(&o->pump, RELAY_END_NORMAL);
			return;
		}
		if (rc != MQTT_PARSE_OK || evbuffer_get_length(in) < f.total)
			return;
		if (o->next < o->nscript)
			v = o->script[o->next];
		switch (pump_apply(&o->pump, src, f.total, &v)) {
		case 1:
			o->waiting = true;
			o->script[o->next] = verdict_forward(); /* once resumed, it goes on */
			return;
		case -1:
			o->aborts++;
			return;
		default:
			o->next++;
			o->frames++;
		}
	}
}

static void owner_on_read(struct pump *p, enum pump_side side)
{
	owner_take(owner_of(p), side, false);
}

static void owner_on_drained(struct pump *p, enum pump_side side)
{
	owner_of(p)->drained++;
	owner_take(owner_of(p), pump_other(side), false);
}

/* Half-close: take what came before the EOF, drop the side, finish. */
static void owner_on_event(struct pump *p, enum pump_side side, short what)
{
	struct owner *o = owner_of(p);

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	o->eofs++;
	owner_take(o, side, true);
	pump_drop(p, side);
	pump_finish(p, RELAY_END_NORMAL);
}

static void owner_on_linger(struct pump *p)
{
	owner_of(p)->lingers++;
	pump_drop(p, PUMP_UP);
}

static void owner_on_done(struct pump *p)
{
	owner_of(p)->dones++;
	owner_of(p)->released = true;
	pump_release(p);
}

static const struct pump_ops owner_ops = {
	.on_read = owner_on_read,
	.on_drained = owner_on_drained,
	.on_event = owner_on_event,
	.on_linger = owner_on_linger,
	.on_done = owner_on_done,
	.out_high = T_HIGH,
	.out_low = T_LOW,
};

/* ---- the rigs: the test plays the device (dev) and the broker (up) ---- */

struct rig {
	struct event_base *base;
	struct owner o;
	bool sockets;
	struct bufferevent *peer[2]; /* pairs: the test's ends */
	int fd[2];                   /* sockets: the test's ends */
};

static void spin(struct rig *r)
{
	for (int i = 0; i < 30; i++)
		event_base_loop(r->base, EVLOOP_NONBLOCK);
}

static int rig_open_side(struct rig *r, enum pump_side side)
{
	struct bufferevent *bev = NULL;
	int sv[2];

	if (!r->sockets) {
		struct bufferevent *pair[2];
		if (bufferevent_pair_new(r->base, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS, pair) != 0)
			return -1;
		r->peer[side] = pair[1];
		bufferevent_enable(pair[1], EV_READ | EV_WRITE);
		pump_attach(&r->o.pump, side, pair[0], T_READ_MAX);
		return 0;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		return -1;
	int small = 16 * 1024;
	(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	(void)setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	(void)fcntl(sv[1], F_SETFL, O_NONBLOCK);
	(void)evutil_make_socket_nonblocking(sv[0]);
	bev = bufferevent_socket_new(r->base, sv[0], BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!bev)
		return -1;
	r->fd[side] = sv[1];
	pump_attach(&r->o.pump, side, bev, T_READ_MAX);
	return pump_direct(&r->o.pump, side);
}

static int rig_open(struct rig *r, bool sockets)
{
	memset(r, 0, sizeof(*r));
	r->fd[0] = r->fd[1] = -1;
	r->sockets = sockets;
	r->base = event_base_new();
	if (!r->base || pump_init(&r->o.pump, r->base, &owner_ops) != 0)
		return -1;
	return rig_open_side(r, PUMP_DEV) == 0 && rig_open_side(r, PUMP_UP) == 0 ? 0 : -1;
}

static void rig_close(struct rig *r)
{
	CHECK_EQ(r->o.malformed, 0); /* every frame arrived whole and in step */
	if (!r->o.released)
		pump_release(&r->o.pump);
	for (int i = 0; i < 2; i++) {
		if (r->peer[i])
			bufferevent_free(r->peer[i]);
		if (r->fd[i] >= 0)
			close(r->fd[i]);
	}
	event_base_free(r->base);
}

/* The test side writes len bytes as the device (or the broker); returns how many were taken. */
static size_t rig_write(struct rig *r, enum pump_side side, const uint8_t *buf, size_t len)
{
	ssize_t n;

	if (!r->sockets)
		return bufferevent_write(r->peer[side], buf, len) == 0 ? len : 0;
	n = write(r->fd[side], buf, len);
	return n > 0 ? (size_t)n : 0;
}

/* Reads what the test side of side received into out (appending at *have, at most cap). */
static void rig_read(struct rig *r, enum pump_side side, uint8_t *out, size_t cap, size_t *have)
{
	if (!r->sockets) {
		*have += bufferevent_read(r->peer[side], out + *have, cap - *have);
		return;
	}
	for (int i = 0; i < 10000 && *have < cap; i++) {
		ssize_t n = read(r->fd[side], out + *have, cap - *have);
		if (n <= 0)
			break;
		*have += (size_t)n;
	}
}

/* The broker end stops (or starts) reading: the pump's output to it then stays queued. */
static void rig_broker_reads(struct rig *r, bool on)
{
	if (r->sockets)
		return; /* a socket nobody reads fills up by itself */
	if (on)
		bufferevent_enable(r->peer[PUMP_UP], EV_READ);
	else
		bufferevent_disable(r->peer[PUMP_UP], EV_READ);
}

/* A QoS 0 PUBLISH on topic "t" with a payload of n bytes, each byte seq + i. */
static size_t publish(uint8_t *out, size_t n, uint8_t seq)
{
	size_t rem = 2 + 1 + n, pos = 0;
	uint8_t var[MQTT_VARINT_MAX];
	size_t vl = mqtt_varint_encode((uint32_t)rem, var);

	out[pos++] = 0x30;
	memcpy(out + pos, var, vl);
	pos += vl;
	out[pos++] = 0;
	out[pos++] = 1;
	out[pos++] = 't';
	for (size_t i = 0; i < n; i++)
		out[pos++] = (uint8_t)(seq + i);
	return pos;
}

/* ---- backpressure ---- */

#define BP_FRAME ((size_t)16 * 1024)
#define BP_FRAMES 128 /* 2 MiB: far more than the high watermark and the socket buffers */

static void test_backpressure(bool sockets)
{
	struct rig r;
	uint8_t probe[BP_FRAME + 16];
	size_t frame = publish(probe, BP_FRAME, 0), total = frame * BP_FRAMES, sent = 0, got = 0;
	uint8_t *in = malloc(total), *out = malloc(total);
	size_t peak = 0;
	bool paused = false;

	CHECK(in && out && rig_open(&r, sockets) == 0);
	if (!in || !out)
		goto out;
	for (int i = 0; i < BP_FRAMES; i++)
		(void)publish(in + (size_t)i * frame, BP_FRAME, (uint8_t)i);
	rig_broker_reads(&r, false);
	/* the device sends everything it can while the broker reads nothing */
	for (int round = 0; round < 400 && sent < total; round++) {
		sent += rig_write(&r, PUMP_DEV, in + sent, total - sent);
		spin(&r);
	}
	peak = r.o.peak;
	spin(&r);
	paused = !(bufferevent_get_enabled(pump_bev(&r.o.pump, PUMP_DEV)) & EV_READ);
	CHECK(paused);                             /* the source stopped being read */
	CHECK(peak >= T_HIGH);                     /* ... once the destination reached HIGH */
	CHECK(peak < T_HIGH + frame);              /* ... and not much later: one frame over at most */
	CHECK(r.o.frames < BP_FRAMES);             /* the rest waits upstream of the pump */
	CHECK_EQ(r.o.drained, 0);
	/* the broker reads: the source resumes at LOW, and everything arrives in order */
	rig_broker_reads(&r, true);
	for (int round = 0, idle = 0; round < 2000 && got < total && idle < 50; round++) {
		size_t before = sent + got;
		if (sent < total)
			sent += rig_write(&r, PUMP_DEV, in + sent, total - sent);
		spin(&r);
		rig_read(&r, PUMP_UP, out, total, &got);
		idle = sent + got == before ? idle + 1 : 0; /* stuck: stop and report */
	}
	CHECK_EQ(got, total);
	CHECK(got == total && memcmp(in, out, total) == 0);
	CHECK_EQ(r.o.frames, BP_FRAMES);
	CHECK(r.o.drained >= 1);
	rig_close(&r);
out:
	free(in);
	free(out);
}

/* ---- half-close and the finish ---- */

/* The device sends frames, then EOF, while the broker does not read yet: every frame is taken and
 * flushed to the broker before the pump is done; then the broker sees the close. */
static void test_half_close(bool sockets)
{
	struct rig r;
	uint8_t in[4096], out[8192];
	size_t len = 0, got = 0;

	CHECK(rig_open(&r, sockets) == 0);
	for (int i = 0; i < 10; i++)
		len += publish(in + len, (size_t)i * 37, (uint8_t)i);
	rig_broker_reads(&r, false);
	CHECK_EQ(rig_write(&r, PUMP_DEV, in, len), len);
	if (sockets) {
		spin(&r);
		(void)shutdown(r.fd[PUMP_DEV], SHUT_WR);
	} else {
		(void)bufferevent_flush(r.peer[PUMP_DEV], EV_WRITE, BEV_FINISHED); /* EOF to the pump */
	}
	spin(&r);
	CHECK_EQ(r.o.eofs, 1);
	CHECK_EQ(r.o.frames, 10);
	if (!sockets)
		CHECK_EQ(r.o.dones, 0); /* the broker has not read it all: not done yet */
	rig_broker_reads(&r, true);
	for (int round = 0; round < 200 && (got < len || !r.o.dones); round++) {
		spin(&r);
		rig_read(&r, PUMP_UP, out, sizeof(out), &got);
	}
	CHECK_EQ(got, len);
	CHECK_MEM(out, in, len);
	CHECK_EQ(r.o.dones, 1);
	CHECK_EQ(r.o.lingers, 0); /* no device side left to linger on */
	if (sockets) {
		uint8_t b;
		CHECK_EQ(read(r.fd[PUMP_UP], &b, 1), 0); /* the broker side was closed after the flush */
	}
	rig_close(&r);
}

/* The broker closes: what it sent reaches the device, then the device gets a FIN; what the device
 * still sends is discarded, and the pump is done when the device closes too. Sockets only (the FIN
 * is a socket's). */
static void test_linger(void)
{
	struct rig r;
	uint8_t in[1024], out[2048], junk[512] = {0x30};
	size_t len = 0, got = 0;
	ssize_t n = -1;

	CHECK(rig_open(&r, true) == 0);
	for (int i = 0; i < 5; i++)
		len += publish(in + len, (size_t)i * 50, (uint8_t)i);
	CHECK_EQ(rig_write(&r, PUMP_UP, in, len), len);
	spin(&r);
	(void)shutdown(r.fd[PUMP_UP], SHUT_WR);
	spin(&r);
	rig_read(&r, PUMP_DEV, out, sizeof(out), &got);
	CHECK_EQ(got, len);
	CHECK_MEM(out, in, len);
	CHECK_EQ(r.o.lingers, 1);
	CHECK_EQ(r.o.dones, 0);
	CHECK_EQ(read(r.fd[PUMP_DEV], out, 1), 0); /* FIN after the data */
	CHECK(write(r.fd[PUMP_DEV], junk, sizeof(junk)) > 0); /* discarded, no reset */
	spin(&r);
	CHECK_EQ(r.o.dones, 0);
	CHECK_EQ(r.o.frames, 5);
	(void)shutdown(r.fd[PUMP_DEV], SHUT_WR);
	spin(&r);
	CHECK_EQ(r.o.dones, 1);
	n = read(r.fd[PUMP_DEV], out, 1);
	CHECK(n == 0 || (n < 0 && errno != ECONNRESET));
	rig_close(&r);
}

/* ---- frames split at every byte boundary ---- */

static size_t frame_stream(uint8_t *s)
{
	static const uint8_t connect[] = {0x10, 0x10, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c,
					  0x00, 0x04, 'd', 'e', 'v', '1'};
	static const uint8_t pingreq[] = {0xC0, 0x00};
	static const uint8_t subscribe[] = {0x82, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x01};
	size_t len = 0;

	memcpy(s + len, connect, sizeof(connect));
	len += sizeof(connect);
	len += publish(s + len, 0, 1);
	memcpy(s + len, pingreq, sizeof(pingreq));
	len += sizeof(pingreq);
	len += publish(s + len, 124, 2); /* remaining 127: the longest one-byte length */
	len += publish(s + len, 125, 3); /* remaining 128: a two-byte length */
	memcpy(s + len, subscribe, sizeof(subscribe));
	len += sizeof(subscribe);
	len += publish(s + len, 300, 4);
	return len;
}

#define SPLIT_FRAMES 7

static void test_split(bool sockets)
{
	uint8_t in[1024], out[1024];
	size_t len = frame_stream(in);
	unsigned bad = 0;

	for (size_t cut = 0; cut <= len; cut++) {
		struct rig r;
		size_t got = 0;
		CHECK(rig_open(&r, sockets) == 0);
		(void)rig_write(&r, PUMP_DEV, in, cut);
		spin(&r);
		(void)rig_write(&r, PUMP_DEV, in + cut, len - cut);
		spin(&r);
		rig_read(&r, PUMP_UP, out, sizeof(out), &got);
		if (got != len || memcmp(in, out, len) != 0 || r.o.frames != SPLIT_FRAMES)
			bad++;
		rig_close(&r);
	}
	CHECK_EQ(bad, 0);
	/* and one byte at a time */
	struct rig r;
	size_t got = 0;
	CHECK(rig_open(&r, sockets) == 0);
	for (size_t i = 0; i < len; i++) {
		(void)rig_write(&r, PUMP_DEV, in + i, 1);
		event_base_loop(r.base, EVLOOP_NONBLOCK);
		event_base_loop(r.base, EVLOOP_NONBLOCK);
	}
	spin(&r);
	rig_read(&r, PUMP_UP, out, sizeof(out), &got);
	CHECK_EQ(got, len);
	CHECK_MEM(out, in, len);
	CHECK_EQ(r.o.frames, SPLIT_FRAMES);
	rig_close(&r);
}

/* ---- the verdicts ---- */

static void test_verdicts(bool sockets)
{
	struct rig r;
	uint8_t f[6][64], want[512], out[512];
	size_t fl[6], wl = 0, got = 0;

	CHECK(rig_open(&r, sockets) == 0);
	for (int i = 0; i < 6; i++)
		fl[i] = publish(f[i], (size_t)i + 3, (uint8_t)(10 * i));
	memcpy(r.o.replacement, "\xC0\x00\xD0\x00", 4); /* PINGREQ, PINGRESP */
	r.o.script[0] = verdict_forward();
	r.o.script[1] = verdict_drop();
	r.o.script[2] = verdict_replace(r.o.replacement, 4);
	r.o.script[3] = verdict_wait();
	r.o.script[4] = verdict_forward();
	r.o.script[5] = verdict_abort(0x81, "test");
	r.o.nscript = 6;
	for (int i = 0; i < 6; i++)
		CHECK_EQ(rig_write(&r, PUMP_DEV, f[i], fl[i]), fl[i]);
	spin(&r);
	/* forward, dropped, replaced; the fourth waits and nothing after it goes */
	memcpy(want, f[0], fl[0]);
	wl = fl[0];
	memcpy(want + wl, r.o.replacement, 4);
	wl += 4;
	rig_read(&r, PUMP_UP, out, sizeof(out), &got);
	CHECK_EQ(got, wl);
	CHECK_MEM(out, want, wl);
	CHECK(r.o.waiting);
	CHECK_EQ(r.o.frames, 3);
	CHECK(!(bufferevent_get_enabled(pump_bev(&r.o.pump, PUMP_DEV)) & EV_READ)); /* held */
	CHECK_EQ(evbuffer_get_length(pump_input(&r.o.pump, PUMP_DEV)), fl[3] + fl[4] + fl[5]);
	/* resumed: the waiting frame and the next go; the abort is the owner's, the frame stays */
	r.o.waiting = false;
	pump_hold(&r.o.pump, PUMP_DEV, false);
	CHECK(bufferevent_get_enabled(pump_bev(&r.o.pump, PUMP_DEV)) & EV_READ);
	owner_take(&r.o, PUMP_DEV, false);
	spin(&r);
	memcpy(want + wl, f[3], fl[3]);
	wl += fl[3];
	memcpy(want + wl, f[4], fl[4]);
	wl += fl[4];
	rig_read(&r, PUMP_UP, out, sizeof(out), &got);
	CHECK_EQ(got, wl);
	CHECK_MEM(out, want, wl);
	CHECK_EQ(r.o.frames, 5);
	CHECK(r.o.aborts >= 1);
	CHECK_EQ(evbuffer_get_length(pump_input(&r.o.pump, PUMP_DEV)), fl[5]);
	rig_close(&r);
}

int main(void)
{
	for (int sockets = 0; sockets < 2; sockets++) {
		test_backpressure(sockets);
		test_half_close(sockets);
		test_split(sockets);
		test_verdicts(sockets);
	}
	test_linger();
	CHECK_DONE();
}
