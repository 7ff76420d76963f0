/* session.c - the MQTT session of one device <-> broker connection pair: its states and their
 * transitions, the frame loop (frame boundaries, the frame head), the abort, refuse and close
 * policy, its timers (STYLE habits 4 and 12). The bytes move through the session's pump (pump.c:
 * backpressure, direct I/O, the lingering finish, the deferred free). What happens to each packet
 * is in session_pkt.c; the broker connection is opened in upstream.c. */
#include "session_internal.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <event2/util.h>

#include "clock.h"
#include "devstate.h"
#include "log.h"
#include "mqtt_reason.h"
#include "stats.h"
#include "transport.h"
#include "upstream.h"
#include "conf.h"

struct session_set {
	struct session *head;
	size_t count;
};

static const char *const session_state_names[] = {"await-connect", "connecting", "established", "stopping",
						  "draining", "lingering", "closed"};

#define SESSION_TO(st) (1u << (st))
/* The transitions session_set_state_ allows, by the state left (ARCHITECTURE.md, "Session states"). */
static const unsigned session_next_ok[] = {
	[SESSION_AWAIT_CONNECT] = SESSION_TO(SESSION_CONNECTING) | SESSION_TO(SESSION_DRAINING),
	[SESSION_CONNECTING] = SESSION_TO(SESSION_ESTABLISHED) | SESSION_TO(SESSION_STOPPING) |
			       SESSION_TO(SESSION_DRAINING),
	[SESSION_ESTABLISHED] = SESSION_TO(SESSION_STOPPING) | SESSION_TO(SESSION_DRAINING),
	[SESSION_STOPPING] = SESSION_TO(SESSION_DRAINING),
	[SESSION_DRAINING] = SESSION_TO(SESSION_LINGERING) | SESSION_TO(SESSION_CLOSED),
	[SESSION_LINGERING] = SESSION_TO(SESSION_CLOSED),
	[SESSION_CLOSED] = 0,
};

static void session_on_read(struct pump *p, enum pump_side side);
static void session_on_drained(struct pump *p, enum pump_side side);
static void session_on_event(struct pump *p, enum pump_side side, short what);
static void session_on_linger(struct pump *p);
static void session_on_done(struct pump *p);
static size_t session_head_missing(struct pump *p, enum pump_side side, struct evbuffer *in);

static const struct pump_ops session_pump_ops = {
	.on_read = session_on_read,
	.on_drained = session_on_drained,
	.on_event = session_on_event,
	.on_linger = session_on_linger,
	.on_done = session_on_done,
	.head_missing = session_head_missing,
	.out_high = PUMP_OUT_HIGH,
	.out_low = PUMP_OUT_LOW,
};

/* s->dev and s->up name the pump's sides (session_internal.h). */
_Static_assert(offsetof(struct pump, bev) == 0, "the pump's sides come first");
_Static_assert(offsetof(struct session, dev) == offsetof(struct session, pump.bev[PUMP_DEV]) &&
		       offsetof(struct session, up) == offsetof(struct session, pump.bev[PUMP_UP]),
	       "s->dev and s->up are the pump's sides");

/* The session that embeds p. */
static struct session *session_of(struct pump *p)
{
	return (struct session *)(void *)((char *)p - offsetof(struct session, pump));
}

/* A direction's source and destination sides: DIR_UP reads the device (PUMP_DEV). */
static enum pump_side session_side(enum session_dir d)
{
	return d == DIR_UP ? PUMP_DEV : PUMP_UP;
}

static enum session_dir session_dir_of(enum pump_side src)
{
	return src == PUMP_DEV ? DIR_UP : DIR_DOWN;
}

struct session_set *session_set_new(void)
{
	return calloc(1, sizeof(struct session_set));
}

size_t session_set_count(const struct session_set *set)
{
	return set ? set->count : 0;
}

void session_set_foreach(struct session_set *set, void (*fn)(struct session *s, void *arg), void *arg)
{
	struct session *s, *next;

	for (s = set->head; s; s = next) {
		next = s->next;
		if (s->state != SESSION_CLOSED)
			fn(s, arg);
	}
}

static void session_unlink(struct session *s)
{
	struct session_set *set = s->ctx->sessions;

	if (s->prev)
		s->prev->next = s->next;
	else
		set->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	set->count--;
	s->ctx->stats->conn_current--;
}

/* Frees what a session owns (any part may be missing: also used when session_new fails). */
static void session_release(struct session *s)
{
	pump_release(&s->pump);
	s->dev = s->up = NULL;
	if (s->timer)
		event_free(s->timer);
	mqtt_alias_free(s->alias[DIR_UP]);
	mqtt_alias_free(s->alias[DIR_DOWN]);
	session_seal_free_(s);
}

static void session_free_now(struct session *s)
{
	session_unlink(s);
	session_release(s);
	if (s->devstate) {
		const struct px_conf *c = s->ctx->conf;
		uint64_t keep = ((uint64_t)c->keyex.interval_seconds * 3 / 2 + c->keyex.grace_seconds + 60) * 1000u;
		size_t max_kept = (size_t)c->listen.max_connections * 4 + 1024;
		devstate_detach(s->ctx->devices, s->devstate, s->persistent, clock_mono_ms(), keep, max_kept);
	}
	free(s);
}

void session_set_free(struct session_set *set)
{
	struct session *s, *next;

	if (!set)
		return;

	for (s = set->head; s; s = next) {
		next = s->next;
		session_free_now(s);
	}
	free(set);
}

void session_set_state_(struct session *s, enum session_state st)
{
	bool legal = (session_next_ok[s->state] & SESSION_TO(st)) != 0;

	if (s->state == st)
		return;
	if (!legal)
		log_emit(LOG_ERROR, "session", s->peer, s->client[0] ? s->client : NULL,
			 "illegal state transition %s -> %s (refused)", session_state_names[s->state],
			 session_state_names[st]);
	assert(legal); /* debug builds stop at an illegal transition; release ones refuse it */
	if (!legal)
		return;
	if (log_enabled(LOG_DEBUG))
		log_emit(LOG_DEBUG, "session", s->peer, s->client[0] ? s->client : NULL, "state %s -> %s",
			 session_state_names[s->state], session_state_names[st]);
	s->state = st;
	if (st == SESSION_STOPPING)
		pump_hold(&s->pump, PUMP_DEV, true); /* unread publishes stay with the device */
	if (st == SESSION_CLOSED) {
		event_del(s->timer);
		pump_end(&s->pump); /* then session_on_done frees, from a fresh event */
	}
}

static void session_timer_start(struct session *s, unsigned seconds)
{
	struct timeval tv = {.tv_sec = (time_t)seconds, .tv_usec = 0};

	event_add(s->timer, &tv);
}

static struct bufferevent *session_src(struct session *s, enum session_dir d)
{
	return d == DIR_UP ? s->dev : s->up;
}

static struct bufferevent *session_dst(struct session *s, enum session_dir d)
{
	return d == DIR_UP ? s->up : s->dev;
}

/* The broker connection is still being made (struct upstream; also in a session that began to
 * stop while CONNECTING). */
static bool session_connect_pending(const struct session *s)
{
	return s->upstream != NULL;
}

static void session_drop_side(struct session *s, struct bufferevent **side)
{
	if (side == &s->up && s->upstream) {
		/* the broker connection being made is its attempt's (lent to the pump): it goes with it */
		pump_drop(&s->pump, PUMP_UP);
		upstream_free(s->upstream);
		s->upstream = NULL;
		return;
	}
	pump_drop(&s->pump, side == &s->dev ? PUMP_DEV : PUMP_UP);
	*side = NULL;
}

void session_close(struct session *s, const char *why)
{
	enum relay_end end = RELAY_END_NORMAL;

	if (s->state == SESSION_STOPPING)
		end = RELAY_END_SHUTDOWN;
	else if (s->dev_broke_protocol)
		end = RELAY_END_PROTOCOL;
	session_close_as_(s, why, end);
}

void session_close_as_(struct session *s, const char *why, enum relay_end end)
{
	if (s->state >= SESSION_DRAINING)
		return;
	log_emit(LOG_DEBUG, "session", s->peer, s->client[0] ? s->client : NULL, "closing: %s", why);
	session_set_state_(s, SESSION_DRAINING);
	event_del(s->timer);
	session_timer_start(s, SESSION_DRAIN_SECONDS); /* bounds draining and lingering */
	/* flush, then end the device's transport and linger (session_on_linger), or done */
	pump_finish(&s->pump, end);
}

/* Queues an MQTT 5 DISCONNECT with reason to one side. No session_send_: on failure that would
 * abort the session that is being aborted; a DISCONNECT that cannot be queued is simply not sent. */
static void session_queue_disconnect(struct session *s, struct bufferevent *side, uint8_t reason)
{
	uint8_t buf[4];
	size_t n = mqtt_disconnect_encode(MQTT_LEVEL_5, reason, buf, sizeof(buf));

	if (n && side && pump_send(&s->pump, side == s->dev ? PUMP_DEV : PUMP_UP, buf, n) == 0) {
		if (side == s->dev)
			s->ctx->stats->bytes_to_device += n;
		else
			s->ctx->stats->bytes_to_broker += n;
	}
}

/* The broker side of an abort. MQTT 5 with the broker connection up: what is queued for the broker
 * is flushed, then DISCONNECT 0x04 "with Will Message" (§3.14.2.1), so the broker publishes the
 * device's will as it would had the device's link broken (mosquitto 2.0 drops the will on any
 * other non-zero reason, against §3.1.2.5). Otherwise the connection is cut at once, as a broken
 * link: a 3.x DISCONNECT would delete the will. */
static void session_abort_up(struct session *s)
{
	if (s->up && s->level == MQTT_LEVEL_5 &&
	    (s->state == SESSION_ESTABLISHED || (s->state == SESSION_STOPPING && !session_connect_pending(s))))
		session_queue_disconnect(s, s->up, MQTT_RC_DISCONNECT_WITH_WILL);
	else
		session_drop_side(s, &s->up);
}

void session_abort_(struct session *s, enum session_dir d, const char *why)
{
	static struct log_limit lim;
	unsigned suppressed = 0;
	char note[LOG_NOTE_MAX], sent[40] = "";
	uint8_t reason = MQTT_RC_NONE;

	if (s->state >= SESSION_DRAINING)
		return;
	s->ctx->stats->conn_protocol_errors++;
	/* The reason a broker gives the device (mqtt_reason.h); none before the device has its CONNACK. */
	if (d == DIR_UP && s->dev && s->level == MQTT_LEVEL_5 && s->got_connack)
		reason = mqtt_reason_of(MQTT_PARSE_MALFORMED, why);
	if (reason != MQTT_RC_NONE)
		snprintf(sent, sizeof(sent), " (DISCONNECT 0x%02X to the device)", reason);
	if (log_limit_allow(&lim, clock_mono_ms(), &suppressed))
		log_emit(LOG_WARN, "session", s->peer, s->client[0] ? s->client : NULL,
			 "closing connection: %s from the %s%s%s", why, d == DIR_UP ? "device" : "broker",
			 sent, log_suppressed_note(suppressed, note));
	/* A device that broke the protocol gets the DISCONNECT an MQTT 5 broker sends (flushed before
	 * the close) or, where a broker sends none, is cut at once. A broker that broke it: the device
	 * gets what is already queued, then a plain close, as when the broker's link breaks. */
	if (d == DIR_UP && reason != MQTT_RC_NONE)
		session_queue_disconnect(s, s->dev, reason);
	else if (d == DIR_UP)
		session_drop_side(s, &s->dev);
	session_abort_up(s);
	session_close(s, why);
}

void session_protocol_error_(struct session *s, enum session_dir d, const char *why)
{
	if (s->state >= SESSION_DRAINING)
		return;
	if (d == DIR_DOWN)
		s->ctx->stats->broker_malformed++;
	else
		s->dev_broke_protocol = true; /* a WebSocket device gets Close 1002 (transport.h) */
	session_abort_(s, d, why);
}

void session_refuse_connect_(struct session *s, uint8_t reason_311, uint8_t reason_5, const char *why)
{
	(void)session_connect_refuse_(s, reason_311, reason_5, why); /* the CONNACK, queued */
	session_drop_side(s, &s->up);
	session_close(s, why);
}

static void session_count_out(struct session *s, enum session_dir d, size_t n)
{
	if (d == DIR_UP)
		s->ctx->stats->bytes_to_broker += n;
	else
		s->ctx->stats->bytes_to_device += n;
}

void session_send_(struct session *s, enum session_dir d, const uint8_t *buf, size_t len)
{
	if (!session_dst(s, d))
		return;
	if (pump_send(&s->pump, pump_other(session_side(d)), buf, len) != 0) {
		session_abort_(s, d, "out of memory");
		return;
	}
	session_count_out(s, d, len);
}

/* Bytes looked at before the first packet: the longest HTTP method and its space ("OPTIONS "),
 * at least the MQTT fixed header. */
#define SESSION_SNIFF_MAX 8

/* A large PUBLISH (complete in the input): only its fixed and variable header are made
 * contiguous (*bytes, s->frame_head bytes); the payload stays in the input's chains, to be
 * sealed or opened from there (session_payload_pieces_) or moved on as it is. -1: take the
 * whole frame instead (a header that is all of it or malformed, the payload in more than
 * ENV_PARTS_MAX chains, or no memory for the header). */
static int session_frame_head(struct session *s, struct evbuffer *in, const struct mqtt_frame *f,
			      const uint8_t **bytes)
{
	size_t avail = 0, need = 2;
	struct evbuffer_ptr pos;
	const uint8_t *p = NULL;
	int rounds = 0;

	while (need > avail && avail < f->remaining && rounds++ < 8) {
		avail = need + 8 < f->remaining ? need + 8 : f->remaining;
		p = evbuffer_pullup(in, (ev_ssize_t)(f->hdr_len + avail));
		if (!p)
			return -1;
		need = mqtt_publish_head_len(s->level, f->flags, p + f->hdr_len, avail);
	}
	if (!p || need > avail || need >= f->remaining ||
	    evbuffer_ptr_set(in, &pos, f->hdr_len + need, EVBUFFER_PTR_SET) != 0 ||
	    evbuffer_peek(in, (ev_ssize_t)(f->remaining - need), &pos, NULL, 0) > ENV_PARTS_MAX)
		return -1;
	s->frame_head = (uint32_t)(f->hdr_len + need);
	*bytes = p;
	return 0;
}

size_t session_payload_pieces_(struct session *s, enum session_dir d, size_t total, struct aead_part *parts)
{
	struct evbuffer *in = session_src(s, d) ? bufferevent_get_input(session_src(s, d)) : NULL;
	struct evbuffer_iovec v[ENV_PARTS_MAX];
	size_t head = s->frame_head, left = total - head;
	struct evbuffer_ptr pos;
	int n, i;

	if (!in || head >= total || evbuffer_get_length(in) < total ||
	    evbuffer_ptr_set(in, &pos, head, EVBUFFER_PTR_SET) != 0)
		return 0;
	n = evbuffer_peek(in, (ev_ssize_t)left, &pos, v, ENV_PARTS_MAX);
	if (n <= 0 || n > ENV_PARTS_MAX)
		return 0;
	for (i = 0; i < n; i++) { /* the last chain may hold more than this frame */
		parts[i] = (struct aead_part){v[i].iov_base, v[i].iov_len < left ? v[i].iov_len : left};
		left -= parts[i].len;
	}
	return left == 0 ? (size_t)n : 0;
}

/* Takes the next complete frame from the source of d: OK with *bytes contiguous (the whole frame,
 * or its header alone, session_frame_head), NEED_MORE, or an error with *why. */
static enum mqtt_parse session_next_frame(struct session *s, enum session_dir d, struct mqtt_frame *f,
					  const uint8_t **bytes, const char **why)
{
	struct evbuffer *in = bufferevent_get_input(session_src(s, d));
	uint8_t hdr[SESSION_SNIFF_MAX];
	ev_ssize_t n = evbuffer_copyout(in, hdr, sizeof(hdr));
	size_t max = s->ctx->conf->listen.max_packet_size;
	enum mqtt_parse rc;
	bool more = false;

	if (n <= 0)
		return MQTT_PARSE_NEED_MORE;
	if (d == DIR_UP && s->state == SESSION_AWAIT_CONNECT && (*why = session_sniff_foreign_(hdr, (size_t)n, &more)))
		return MQTT_PARSE_MALFORMED; /* another protocol on this port: say which */
	if (more)
		return MQTT_PARSE_NEED_MORE; /* bounded by listen.connect_timeout_seconds */
	if ((size_t)n > MQTT_FIXED_HDR_MAX)
		n = MQTT_FIXED_HDR_MAX;
	if (s->state == SESSION_AWAIT_CONNECT && max > SESSION_CONNECT_MAX)
		max = SESSION_CONNECT_MAX;
	rc = mqtt_frame_parse(hdr, (size_t)n, max, s->level, f, why);
	if (rc != MQTT_PARSE_OK)
		return rc;
	if (evbuffer_get_length(in) < f->total)
		return MQTT_PARSE_NEED_MORE;
	/* A large PUBLISH, device's (not retained: the retained cache keeps a copy) or broker's (with
	 * its topic: one given by its alias alone is relayed rewritten, seal_plain_full_topic), is
	 * parsed from its header; its payload is sealed or opened from the input chains. */
	if (f->type == MQTT_PUBLISH && f->total > SESSION_LAZY_MIN &&
	    (d == DIR_DOWN || !(f->flags & MQTT_PUBLISH_FLAG_RETAIN)) && session_frame_head(s, in, f, bytes) == 0 &&
	    (d == DIR_UP || ((*bytes)[f->hdr_len] | (*bytes)[f->hdr_len + 1]) != 0))
		return MQTT_PARSE_OK;
	s->frame_head = (uint32_t)f->total;
	*bytes = evbuffer_pullup(in, (ev_ssize_t)f->total);
	if (!*bytes) {
		*why = "out of memory";
		return MQTT_PARSE_MALFORMED;
	}
	return MQTT_PARSE_OK;
}

/* Carries out the verdict v of the per-packet logic on the frame f at the head of the source of d
 * (verdict.h). false: stop pumping (the session is closing). A verdict on a session its handler
 * closed already (a side effect it could not avoid) leaves the frame alone. */
static bool session_apply(struct session *s, enum session_dir d, const struct mqtt_frame *f, struct verdict v)
{
	if (v.kind == VERDICT_ABORT) {
		if (v.protocol)
			session_protocol_error_(s, d, v.why);
		else
			session_abort_(s, d, v.why);
		return false;
	}
	if (s->state < SESSION_DRAINING && session_src(s, d)) {
		bool counted = session_dst(s, d) != NULL; /* without the other side, nothing goes out */

		/* the pump moves (FORWARD), drops (DROP) or replaces (REPLACE) the frame */
		if (pump_apply(&s->pump, session_side(d), f->total, &v) != 0)
			session_abort_(s, d, "out of memory");
		else if (counted && v.kind != VERDICT_DROP)
			session_count_out(s, d, v.kind == VERDICT_FORWARD ? f->total : v.len);
	}
	free(v.owned);
	if (v.why)
		session_close(s, v.why); /* after flushing; nothing if closing already */
	return s->state < SESSION_DRAINING;
}

/* Handles every complete frame waiting at the source of d, until the destination is congested.
 * final: the source has closed; take everything regardless of congestion. */
static void session_pump(struct session *s, enum session_dir d, bool final)
{
	struct mqtt_frame f;
	const uint8_t *bytes = NULL;
	const char *why = NULL;
	enum mqtt_parse rc;
	struct verdict v;

	if (d == DIR_UP && s->state == SESSION_STOPPING)
		return; /* shutting down: what the device sends now stays with the device */
	while (s->state < SESSION_DRAINING && session_src(s, d) && !s->waiting[d]) {
		if (!final && pump_full(&s->pump, session_side(d)))
			return; /* backpressure: session_on_drained goes on */
		rc = session_next_frame(s, d, &f, &bytes, &why);
		if (rc == MQTT_PARSE_NEED_MORE)
			return;
		if (rc != MQTT_PARSE_OK) {
			session_protocol_error_(s, d, why ? why : "malformed packet");
			return;
		}
		v = session_packet_(s, d, &f, bytes);
		if (v.kind == VERDICT_WAIT) { /* waits for a key: stays at the head, counted when it goes */
			if (!final)
				session_wait_(s, d);
			return;
		}
		if (d == DIR_UP) {
			s->ctx->stats->packets_from_device++;
			s->ctx->stats->bytes_from_device += f.total;
		} else {
			s->ctx->stats->packets_from_broker++;
			s->ctx->stats->bytes_from_broker += f.total;
		}
		if (!session_apply(s, d, &f, v))
			return;
	}
}

/* The bytes the packet at the head of in still lacks (0 when it is complete or its header is not):
 * the pump's direct reads take at most that (or its batch, when that is more). */
static size_t session_head_missing(struct pump *p, enum pump_side side, struct evbuffer *in)
{
	uint8_t hdr[MQTT_FIXED_HDR_MAX];
	ev_ssize_t n = evbuffer_copyout(in, hdr, sizeof(hdr));
	size_t used = 0, have = evbuffer_get_length(in);
	uint32_t remaining = 0;

	(void)p;
	(void)side;
	if (n < 2 || mqtt_varint_decode(hdr + 1, (size_t)n - 1, &remaining, &used) != MQTT_PARSE_OK)
		return 0;
	return 1 + used + remaining > have ? 1 + used + remaining - have : 0;
}

static void session_on_read(struct pump *p, enum pump_side side)
{
	struct session *s = session_of(p);

	if (s->state >= SESSION_DRAINING)
		return;
	session_pump(s, session_dir_of(side), false);
}

/* side's output drained to the low watermark and the pump resumed reading the other side
 * (backpressure): handle what waits there. */
static void session_on_drained(struct pump *p, enum pump_side side)
{
	struct session *s = session_of(p);

	if (s->state >= SESSION_DRAINING)
		return;
	session_pump(s, session_dir_of(pump_other(side)), false);
}

/* Flushed, FIN sent to the device: nothing more to say to the broker. */
static void session_on_linger(struct pump *p)
{
	struct session *s = session_of(p);

	(void)relay_transport_finish(s->up, RELAY_END_NORMAL); /* flushed: TLS close_notify */
	session_drop_side(s, &s->up);
	session_set_state_(s, SESSION_LINGERING);
}

/* The pump is done (from a fresh event): free the session. */
static void session_on_done(struct pump *p)
{
	struct session *s = session_of(p);

	session_set_state_(s, SESSION_CLOSED);
	session_free_now(s);
}

void session_up_connected_(struct session *s)
{
	/* TLS: every byte goes through the OpenSSL bufferevent */
	if (!s->ctx->tls && s->up)
		(void)pump_direct(&s->pump, PUMP_UP);
}

static void session_on_dev_event(struct session *s, short what)
{
	if (what & BEV_EVENT_TIMEOUT) {
		session_abort_(s, DIR_UP, "keepalive timeout (no packet for 1.5 x keepalive)");
		return;
	}
	/* EOF or error: relay what the device sent before closing, then close the broker side after
	 * flushing it (no DISCONNECT of ours: the broker sees the device's link go down). */
	if (s->state < SESSION_DRAINING && (what & BEV_EVENT_EOF))
		session_pump(s, DIR_UP, true);
	session_drop_side(s, &s->dev);
	session_close(s, (what & BEV_EVENT_EOF) ? "device closed the connection" : "device connection error");
}

/* The broker connection is up (upstream.c): the session's pump takes its bufferevent over from
 * the attempt, with what was queued on it (the CONNECT). A session that is closing already (the
 * device left meanwhile) only flushes to it what the device sent (pump_attach while finishing);
 * one that began to stop while CONNECTING goes on stopping. */
static void session_on_upstream_up(void *arg, struct bufferevent *bev, bool plain)
{
	struct session *s = arg;

	upstream_free(s->upstream); /* the bufferevent is ours now */
	s->upstream = NULL;
	if (s->state == SESSION_CLOSED) {
		pump_drop(&s->pump, PUMP_UP); /* lent: forgotten */
		bufferevent_free(bev);
		return;
	}
	session_set_callbacks_(s, bev);
	if (s->state >= SESSION_DRAINING)
		return;
	session_set_nodelay_(bufferevent_getfd(bev));
	if (s->state == SESSION_CONNECTING)
		session_set_state_(s, SESSION_ESTABLISHED);
	if (plain)
		session_up_connected_(s);
}

/* The broker connection could not be made: the device gets a CONNACK refusal (one log line), or,
 * when its session is closing already, the close goes on without the broker side. */
static void session_on_upstream_failed(void *arg, const char *why)
{
	static struct log_limit lim;
	struct session *s = arg;
	unsigned suppressed = 0;
	char note[LOG_NOTE_MAX];

	if (s->state != SESSION_CONNECTING && s->state != SESSION_STOPPING) {
		session_drop_side(s, &s->up); /* closing: the finish goes on without it */
		return;
	}
	s->ctx->stats->upstream_failures++;
	if (log_limit_allow(&lim, clock_mono_ms(), &suppressed))
		log_emit(LOG_WARN, "upstream", s->peer, s->client[0] ? s->client : NULL,
			 "broker %s:%u unreachable (%s); refusing the device%s", s->ctx->conf->broker.host,
			 s->ctx->conf->broker.port, why, log_suppressed_note(suppressed, note));
	session_refuse_connect_(s, MQTT_CONNACK_311_SERVER_UNAVAILABLE, MQTT_RC_SERVER_UNAVAILABLE,
				"broker unreachable");
}

int session_upstream_start_(struct session *s)
{
	static const struct upstream_owner owner = {session_on_upstream_up, session_on_upstream_failed};
	char why[320];

	s->upstream = upstream_open(s->ctx, &owner, s, why, sizeof(why));
	if (!s->upstream) {
		session_on_upstream_failed(s, why);
		return -1;
	}
	/* Lent: what the session queues for the broker (the CONNECT) waits in its output. */
	pump_lend(&s->pump, PUMP_UP, upstream_bev(s->upstream));
	return 0;
}

static void session_on_up_event(struct session *s, short what)
{
	if (s->state < SESSION_DRAINING && (what & BEV_EVENT_EOF))
		session_pump(s, DIR_DOWN, true);
	session_drop_side(s, &s->up);
	session_close(s, (what & BEV_EVENT_EOF) ? "broker closed the connection" : "broker connection error");
}

/* While draining, the pump goes on with the finish after this returns. */
static void session_on_event(struct pump *p, enum pump_side side, short what)
{
	struct session *s = session_of(p);

	if (s->state == SESSION_CLOSED)
		return;
	if (side == PUMP_DEV)
		session_on_dev_event(s, what);
	else
		session_on_up_event(s, what);
}

static void session_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	switch (s->state) {
	case SESSION_AWAIT_CONNECT:
		session_abort_(s, DIR_UP, "no CONNECT within listen.connect_timeout_seconds");
		break;
	case SESSION_DRAINING:
	case SESSION_LINGERING:
		session_set_state_(s, SESSION_CLOSED);
		break;
	default:
		break;
	}
}

/* Gives bev, s->dev or s->up, to the session's pump: our callbacks, watermarks, reading on. */
void session_set_callbacks_(struct session *s, struct bufferevent *bev)
{
	/* Never buffer more than one maximal packet (plus a header) of unread input. */
	pump_attach(&s->pump, bev == s->dev ? PUMP_DEV : PUMP_UP, bev,
		    (size_t)s->ctx->conf->listen.max_packet_size + 16);
}

void session_set_nodelay_(evutil_socket_t fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void session_describe_peer(struct session *s, const struct sockaddr *sa)
{
	char host[48] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		evutil_inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(s->peer, sizeof(s->peer), "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		evutil_inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(s->peer, sizeof(s->peer), "[%s]:%u", host, port);
	} else {
		snprintf(s->peer, sizeof(s->peer), "unix");
	}
}

/* A session without its device side yet; NULL on allocation failure. */
static struct session *session_alloc(struct px_ctx *ctx, const struct sockaddr *sa)
{
	struct session *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->ctx = ctx;
	s->state = SESSION_AWAIT_CONNECT;
	session_describe_peer(s, sa);
	s->timer = event_new(ctx->base, -1, 0, session_on_timer, s);
	s->alias[DIR_UP] = mqtt_alias_new(0);
	s->alias[DIR_DOWN] = mqtt_alias_new(0);
	if (pump_init(&s->pump, ctx->base, &session_pump_ops) != 0 || !s->timer || !s->alias[DIR_UP] ||
	    !s->alias[DIR_DOWN]) {
		session_release(s);
		free(s);
		return NULL;
	}
	return s;
}

/* s->dev is set: into the set, given to the pump (plain: a plain TCP socket, written and read
 * directly), the CONNECT timer running. */
static void session_start(struct session *s, bool plain)
{
	struct session_set *set = s->ctx->sessions;

	s->next = set->head;
	if (set->head)
		set->head->prev = s;
	set->head = s;
	set->count++;
	s->ctx->stats->conn_current++;
	s->ctx->stats->conn_total++;
	session_set_callbacks_(s, s->dev);
	/* A framed device side (session_new_dev: TLS, WebSocket) never writes or reads directly. */
	if (plain)
		(void)pump_direct(&s->pump, PUMP_DEV);
	session_timer_start(s, s->ctx->conf->listen.connect_timeout_seconds);
}

struct session *session_new(struct px_ctx *ctx, evutil_socket_t fd, const struct sockaddr *sa, int salen)
{
	struct session *s = session_alloc(ctx, sa);

	(void)salen;
	if (s)
		s->dev = bufferevent_socket_new(ctx->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!s || !s->dev) {
		if (s) {
			session_release(s);
			free(s);
		}
		evutil_closesocket(fd);
		log_error("session", "out of memory accepting a device connection");
		return NULL;
	}
	session_set_nodelay_(fd);
	session_start(s, true);
	return s;
}

struct session *session_new_dev(struct px_ctx *ctx, struct bufferevent *dev, const struct sockaddr *sa)
{
	struct session *s = session_alloc(ctx, sa);

	if (!s) {
		bufferevent_free(dev);
		log_error("session", "out of memory accepting a device connection");
		return NULL;
	}
	s->dev = dev;
	session_start(s, false);
	/* The handshake may have left bytes read already (the first WebSocket frames after the
	 * upgrade, or a CONNECT that came with the TLS Finished): a filter passes them up when
	 * flushed, and what sits in the input is pumped now, not at the next read. */
	(void)bufferevent_flush(dev, EV_READ, BEV_NORMAL);
	if (evbuffer_get_length(bufferevent_get_input(dev)) != 0)
		bufferevent_trigger(dev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
	return s;
}

void session_resume_(struct session *s, enum session_dir d)
{
	if (s->state >= SESSION_DRAINING || !session_src(s, d))
		return;
	if (!(d == DIR_UP && s->state == SESSION_STOPPING))
		pump_hold(&s->pump, session_side(d), false); /* reads again unless backpressure holds it */
	session_pump(s, d, false);
}
