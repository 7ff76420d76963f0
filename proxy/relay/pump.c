/* pump.c - the relay core (pump.h): moves bytes between two bufferevents with backpressure,
 * direct writes and reads on plain sockets, the orderly and lingering finish, and the deferred
 * free (STYLE habits 11 and 12; the shape of libevent's sample/le-proxy.c). No MQTT here: the
 * owner parses, and tells the pump what to move. */
#include "pump_internal.h"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "verdict.h"

#define PUMP_IO_CHUNK ((ev_ssize_t)256 * 1024) /* most bytes one read or write call moves */
#define PUMP_READ_FULL ((size_t)4096)         /* what libevent 2.1 reads at most per read event */
/* A direct read takes at most the rest of the frame at the head of the input, or this much when
 * that is less: a burst fanned out to many sessions then waits in the sockets, not in every
 * session's input (test_flood test_held_amplification). */
#define PUMP_READ_BATCH ((size_t)64 * 1024)

static void pump_on_read(struct bufferevent *bev, void *arg);
static void pump_on_write(struct bufferevent *bev, void *arg);
static void pump_on_event(struct bufferevent *bev, short what, void *arg);
static void pump_on_ev(evutil_socket_t fd, short what, void *arg);
static void pump_outbuf_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg);

int pump_init(struct pump *p, struct event_base *base, const struct pump_ops *ops)
{
	*p = (struct pump){.ops = ops, .stage = PUMP_RUNNING};
	p->ev = event_new(base, -1, 0, pump_on_ev, p);
	return p->ev ? 0 : -1;
}

static void pump_finish_check(struct pump *p);

void pump_lend(struct pump *p, enum pump_side side, struct bufferevent *bev)
{
	p->bev[side] = bev;
	p->flags[side] = PUMP_F_LENT;
}

void pump_drop(struct pump *p, enum pump_side side)
{
	struct bufferevent *bev = p->bev[side];

	if (!bev)
		return;
	if (p->flags[side] & PUMP_F_LENT) {
		p->bev[side] = NULL;
		p->flags[side] = 0;
		if (p->stage == PUMP_FINISHING)
			pump_finish_check(p);
		return;
	}
	if (p->flags[side] & PUMP_F_DIRECT_OK)
		evbuffer_remove_cb(bufferevent_get_output(bev), pump_outbuf_cb, p);
	p->bev[side] = NULL;
	p->flags[side] = 0;
	bufferevent_free(bev);
}

void pump_release(struct pump *p)
{
	p->stage = PUMP_DONE; /* nothing more happens: a lent side is only forgotten */
	pump_drop(p, PUMP_DEV);
	pump_drop(p, PUMP_UP);
	if (p->ev)
		event_free(p->ev);
	p->ev = NULL;
}

struct bufferevent *pump_bev(const struct pump *p, enum pump_side side)
{
	return p->bev[side];
}

struct evbuffer *pump_input(const struct pump *p, enum pump_side side)
{
	return p->bev[side] ? bufferevent_get_input(p->bev[side]) : NULL;
}

size_t pump_out_len(const struct pump *p, enum pump_side side)
{
	struct bufferevent *bev = p->bev[side];
	size_t n = 0;

	/* a filter (WebSocket) passes its output on to the bufferevent under it, whose queue counts
	 * too (backpressure and the end of the flush) */
	for (; bev; bev = bufferevent_get_underlying(bev))
		n += evbuffer_get_length(bufferevent_get_output(bev));
	return n;
}

/* Reading of side runs when neither backpressure nor the owner holds it and the pump runs. */
static void pump_update_read(struct pump *p, enum pump_side side)
{
	if (!p->bev[side] || (p->flags[side] & PUMP_F_LENT))
		return;
	if (p->stage == PUMP_RUNNING && !(p->flags[side] & (PUMP_F_PAUSED | PUMP_F_HELD)))
		bufferevent_enable(p->bev[side], EV_READ);
	else
		bufferevent_disable(p->bev[side], EV_READ);
}

static enum pump_side pump_side_of(const struct pump *p, const struct bufferevent *bev)
{
	return bev == p->bev[PUMP_DEV] ? PUMP_DEV : PUMP_UP;
}

void pump_attach(struct pump *p, enum pump_side side, struct bufferevent *bev, size_t read_max)
{
	p->bev[side] = bev;
	p->flags[side] = 0;
	bufferevent_setcb(bev, pump_on_read, pump_on_write, pump_on_event, p);
	/* libevent reads and writes at most 4 KiB / 16 KiB per call by default: a 256 KiB message
	 * would cost 64 system calls a side. */
	bufferevent_set_max_single_read(bev, PUMP_IO_CHUNK);
	bufferevent_set_max_single_write(bev, PUMP_IO_CHUNK);
	bufferevent_setwatermark(bev, EV_WRITE, p->ops->out_low, 0);
	bufferevent_setwatermark(bev, EV_READ, 0, read_max);
	if (p->stage == PUMP_RUNNING) {
		bufferevent_enable(bev, EV_READ | EV_WRITE);
		return;
	}
	/* attached while finishing (a broker connection that came up meanwhile): flushed, not read;
	 * the write callback then runs when the queue is empty, not at out_low */
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	bufferevent_enable(bev, EV_WRITE);
}

int pump_direct(struct pump *p, enum pump_side side)
{
	struct bufferevent *bev = p->bev[side];

	if (!bev || (p->flags[side] & PUMP_F_DIRECT_OK))
		return bev ? 0 : -1;
	/* without the output callback, which schedules the writes, the side stays with the
	 * bufferevent's write event */
	if (!evbuffer_add_cb(bufferevent_get_output(bev), pump_outbuf_cb, p))
		return -1;
	p->flags[side] |= PUMP_F_DIRECT_OK;
	if (pump_out_len(p, side) == 0) {
		bufferevent_disable(bev, EV_WRITE);
		p->flags[side] |= PUMP_F_DIRECT;
	} /* else pump_on_write switches once the bufferevent has written the queue */
	return 0;
}

int pump_forward(struct pump *p, enum pump_side src, size_t n)
{
	struct evbuffer *in = pump_input(p, src);
	struct bufferevent *dst = p->bev[pump_other(src)];

	if (!in)
		return 0;
	if (!dst) {
		evbuffer_drain(in, n);
		return 0;
	}
	/* moves the chains: no copy of the bytes once the frame is in them */
	return evbuffer_remove_buffer(in, bufferevent_get_output(dst), n) == (int)n ? 0 : -1;
}

void pump_discard(struct pump *p, enum pump_side src, size_t n)
{
	struct evbuffer *in = pump_input(p, src);

	if (in)
		evbuffer_drain(in, n);
}

int pump_send(struct pump *p, enum pump_side side, const void *buf, size_t len)
{
	if (!p->bev[side])
		return 0;
	return evbuffer_add(bufferevent_get_output(p->bev[side]), buf, len) == 0 ? 0 : -1;
}

int pump_apply(struct pump *p, enum pump_side src, size_t frame_len, const struct verdict *v)
{
	switch (v->kind) {
	case VERDICT_FORWARD:
		return pump_forward(p, src, frame_len);
	case VERDICT_DROP:
		pump_discard(p, src, frame_len);
		return 0;
	case VERDICT_REPLACE:
		/* the bytes may point into the frame: queue them before the frame goes */
		if (pump_send(p, pump_other(src), v->bytes, v->len) != 0)
			return -1;
		pump_discard(p, src, frame_len);
		return 0;
	case VERDICT_WAIT:
		pump_hold(p, src, true);
		return 1;
	case VERDICT_ABORT:
	default:
		return -1;
	}
}

bool pump_full(struct pump *p, enum pump_side src)
{
	if (pump_out_len(p, pump_other(src)) < p->ops->out_high)
		return false;
	p->flags[src] |= PUMP_F_PAUSED;
	pump_update_read(p, src);
	return true;
}

void pump_hold(struct pump *p, enum pump_side side, bool on)
{
	if (on)
		p->flags[side] |= PUMP_F_HELD;
	else
		p->flags[side] &= (uint8_t)~PUMP_F_HELD;
	pump_update_read(p, side);
}

/* ---- direct reads ---- */

/* How many more bytes a side may read now: up to its read high watermark (one maximal frame), at
 * most PUMP_IO_CHUNK; 0 when its reading is off. */
static size_t pump_read_room(struct bufferevent *bev)
{
	size_t low = 0, high = 0, have = evbuffer_get_length(bufferevent_get_input(bev)), room;

	if (!(bufferevent_get_enabled(bev) & EV_READ) || bufferevent_getwatermark(bev, EV_READ, &low, &high) != 0)
		return 0;
	room = high == 0 ? (size_t)PUMP_IO_CHUNK : (high > have ? high - have : 0);
	return room < (size_t)PUMP_IO_CHUNK ? room : (size_t)PUMP_IO_CHUNK;
}

/* Direct reads. libevent 2.1 reads at most 4096 bytes per read event (EVBUFFER_MAX_READ in
 * evbuffer_read, whatever bufferevent_set_max_single_read says): a 256 KiB message cost 64
 * epoll_wait + ioctl + readv rounds a side (bench/README.md, profile). When the input holds
 * 4096 bytes or more (a read that hit the cap, or a large frame still incomplete), the rest the
 * socket holds is read here at once, into space reserved in the input (one readv); below that
 * (small frames at a moderate rate) nothing is asked. EOF and errors are left for the
 * bufferevent's next read to find and report. Plain sockets only: below a filter the bytes would
 * skip it. */
static void pump_read_more(struct pump *p, enum pump_side side)
{
	struct bufferevent *bev = p->bev[side];
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_iovec v[2];
	struct iovec iov[2];
	size_t room = pump_read_room(bev), missing;
	ev_ssize_t n;
	int nv, i, avail = 0;

	if (evbuffer_get_length(in) < PUMP_READ_FULL || room == 0 || !(p->flags[side] & PUMP_F_DIRECT_OK))
		return;
	if (ioctl(bufferevent_getfd(bev), FIONREAD, &avail) != 0 || avail <= 0)
		return;
	if ((size_t)avail < room)
		room = (size_t)avail;
	missing = p->ops->head_missing ? p->ops->head_missing(p, side, in) : 0;
	if (room > missing && room > PUMP_READ_BATCH)
		room = missing > PUMP_READ_BATCH ? missing : PUMP_READ_BATCH;
	evbuffer_unfreeze(in, 0); /* the bufferevent keeps the end of its input frozen */
	nv = evbuffer_reserve_space(in, (ev_ssize_t)room, v, 2);
	for (i = 0; i < nv; i++)
		iov[i] = (struct iovec){v[i].iov_base, v[i].iov_len};
	n = nv > 0 ? readv(bufferevent_getfd(bev), iov, nv) : -1;
	if (n > 0) {
		v[0].iov_len = (size_t)n < v[0].iov_len ? (size_t)n : v[0].iov_len;
		if (nv > 1)
			v[1].iov_len = (size_t)n - v[0].iov_len;
		(void)evbuffer_commit_space(in, v, nv > 1 && v[1].iov_len ? 2 : 1);
	}
	evbuffer_freeze(in, 0);
}

static void pump_on_read(struct bufferevent *bev, void *arg)
{
	struct pump *p = arg;
	enum pump_side side = pump_side_of(p, bev);
	struct evbuffer *in = bufferevent_get_input(bev);

	if (p->stage == PUMP_LINGERING && side == PUMP_DEV) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	if (p->stage != PUMP_RUNNING)
		return;
	pump_read_more(p, side);
	p->ops->on_read(p, side);
}

/* ---- the finish ---- */

/* The socket under a side, below any filter. */
static evutil_socket_t pump_socket(struct bufferevent *bev)
{
	struct bufferevent *under;

	while ((under = bufferevent_get_underlying(bev)) != NULL)
		bev = under;
	return bufferevent_getfd(bev);
}

/* Finishing and both queues flushed (or their side gone): linger, or done. */
static void pump_finish_check(struct pump *p)
{
	struct bufferevent *dev = p->bev[PUMP_DEV];

	if (p->stage != PUMP_FINISHING || pump_out_len(p, PUMP_DEV) != 0 || pump_out_len(p, PUMP_UP) != 0)
		return;
	if (!dev) {
		(void)relay_transport_finish(p->bev[PUMP_UP], RELAY_END_NORMAL); /* TLS close_notify */
		pump_end(p);
		return;
	}
	/* The transport ends first (a WebSocket Close frame, TLS close_notify); a Close frame is
	 * written before going on (back here from the write callback). */
	if (relay_transport_finish(dev, (enum relay_end)p->end) == RELAY_FINISH_PENDING)
		return;
	/* Lingering close: a close() with unread input would send a reset, and a reset makes the
	 * device's TCP stack throw away what we just flushed to it (the last acks). So: FIN first,
	 * then discard what the device still sends until it closes too (the owner's timer). */
	p->stage = PUMP_LINGERING;
	(void)shutdown(pump_socket(dev), SHUT_WR);
	evbuffer_drain(bufferevent_get_input(dev), evbuffer_get_length(bufferevent_get_input(dev)));
	bufferevent_setwatermark(dev, EV_READ, 0, 0);
	bufferevent_enable(dev, EV_READ);
	if (p->ops->on_linger)
		p->ops->on_linger(p);
}

void pump_finish(struct pump *p, enum relay_end why)
{
	int side;

	if (p->stage != PUMP_RUNNING)
		return;
	p->stage = PUMP_FINISHING;
	p->end = (uint8_t)why;
	for (side = PUMP_DEV; side <= PUMP_UP; side++) {
		if (!p->bev[side] || (p->flags[side] & PUMP_F_LENT))
			continue;
		bufferevent_disable(p->bev[side], EV_READ);
		/* the write callback then runs when the queue is empty, not at out_low */
		bufferevent_setwatermark(p->bev[side], EV_WRITE, 0, 0);
	}
	pump_finish_check(p);
}

void pump_end(struct pump *p)
{
	if (p->stage == PUMP_DONE)
		return;
	p->stage = PUMP_DONE;
	/* never free from inside the owner's callback stack: on_done comes from a fresh event */
	if (p->bev[PUMP_DEV] && !(p->flags[PUMP_DEV] & PUMP_F_LENT))
		bufferevent_disable(p->bev[PUMP_DEV], EV_READ | EV_WRITE);
	if (p->bev[PUMP_UP] && !(p->flags[PUMP_UP] & PUMP_F_LENT))
		bufferevent_disable(p->bev[PUMP_UP], EV_READ | EV_WRITE);
	event_active(p->ev, EV_READ, 0);
}

/* ---- output: drained, direct writes ---- */

/* side's output drained to its low watermark: back to direct writes when empty, resume the other
 * side if backpressure paused it, or go on with a finish. */
static void pump_on_write(struct bufferevent *bev, void *arg)
{
	struct pump *p = arg;
	enum pump_side side = pump_side_of(p, bev), src = pump_other(side);
	uint8_t *f = &p->flags[side];

	if (p->stage == PUMP_DONE)
		return;
	if (!(*f & PUMP_F_DIRECT) && (*f & PUMP_F_DIRECT_OK) && pump_out_len(p, side) == 0) {
		bufferevent_disable(bev, EV_WRITE); /* drained: back to direct writes (pump_on_ev) */
		*f |= PUMP_F_DIRECT;
	}
	if (p->stage != PUMP_RUNNING) {
		pump_finish_check(p);
		return;
	}
	if (!(p->flags[src] & PUMP_F_PAUSED))
		return;
	p->flags[src] &= (uint8_t)~PUMP_F_PAUSED;
	pump_update_read(p, src);
	p->ops->on_drained(p, side);
}

/* One direct side: write what is queued; if the socket does not take it all (or fails), the
 * bufferevent's own write event takes over (and reports an error) until the queue is empty. */
static void pump_flush_side(struct pump *p, enum pump_side side)
{
	struct bufferevent *bev = p->bev[side];
	struct evbuffer *out;

	if (!bev || !(p->flags[side] & PUMP_F_DIRECT))
		return;
	out = bufferevent_get_output(bev);
	if (evbuffer_get_length(out) == 0)
		return;
	/* the bufferevent keeps the front of its output frozen outside its own write callback */
	evbuffer_unfreeze(out, 1);
	(void)evbuffer_write_atmost(out, bufferevent_getfd(bev), PUMP_IO_CHUNK);
	evbuffer_freeze(out, 1);
	if (evbuffer_get_length(out) != 0) {
		p->flags[side] &= (uint8_t)~PUMP_F_DIRECT;
		bufferevent_enable(bev, EV_WRITE);
		return;
	}
	pump_on_write(bev, p); /* drained: what the bufferevent's write callback would do */
}

/* Direct writes. A bufferevent registers a write event when data is queued on an idle socket and
 * removes it once the queue is written: two epoll_ctl and one more epoll_wait per frame relayed
 * at a moderate rate. A direct side instead has its queue written here, at the end of the event
 * loop pass that queued it (one write per pass, however many frames), with no event registered.
 * The same event delivers on_done once the pump has ended. */
static void pump_on_ev(evutil_socket_t fd, short what, void *arg)
{
	struct pump *p = arg;

	(void)fd;
	(void)what;
	p->flush_pending = false;
	if (p->stage == PUMP_DONE) {
		p->ops->on_done(p); /* may release p */
		return;
	}
	pump_flush_side(p, PUMP_DEV);
	if (p->stage != PUMP_DONE)
		pump_flush_side(p, PUMP_UP);
}

static void pump_outbuf_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct pump *p = arg;
	enum pump_side side = p->bev[PUMP_DEV] && buf == bufferevent_get_output(p->bev[PUMP_DEV]) ? PUMP_DEV : PUMP_UP;

	if (info->n_added == 0 || !(p->flags[side] & PUMP_F_DIRECT) || p->flush_pending || p->stage == PUMP_DONE)
		return;
	p->flush_pending = true;
	event_active(p->ev, EV_WRITE, 0);
}

/* ---- events ---- */

static void pump_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct pump *p = arg;
	enum pump_side side = pump_side_of(p, bev);

	if (p->stage == PUMP_DONE)
		return;
	if (p->stage == PUMP_LINGERING) {
		/* the device closed too (or broke): the close is complete */
		if (side == PUMP_DEV && (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
			pump_end(p);
		return;
	}
	p->ops->on_event(p, side, what);
	if (p->stage == PUMP_FINISHING)
		pump_finish_check(p);
}
