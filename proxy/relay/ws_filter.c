/* ws_filter.c - the WebSocket framing layer under a device session, as a libevent filter
 * bufferevent (bufferevent_filter_new): the input filter decodes client frames (ws_decode) into
 * MQTT bytes, streaming a large frame's payload straight into the session's input buffer; the
 * output filter puts what the session queued into binary frames, moving the chains (no copy).
 * Why our own and not libwebsockets: ARCHITECTURE.md, "Device listeners". */
#include "ws_filter.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "clock.h"
#include "log.h"
#include "ws_frame.h"

/* Most bytes one server frame carries: the session's largest single write. */
#define WS_OUT_FRAME_MAX ((size_t)256 * 1024)
/* Most payload bytes decoded per step: one reserved chunk of the session's input. */
#define WS_IN_STEP ((size_t)64 * 1024)

struct ws_filter {
	struct ws_decoder dec;
	struct bufferevent *bev;   /* the filter (set once created) */
	struct bufferevent *under; /* the connection under it */
	bool done;                 /* a close was sent: nothing more is decoded or framed */
	char peer[64];
};

/* Queues a server frame of op with payload p[0..n) on the connection (control frames). */
static void ws_filter_send(struct ws_filter *w, enum ws_opcode op, const uint8_t *p, size_t n)
{
	struct evbuffer *out = bufferevent_get_output(w->under);
	uint8_t h[10];
	size_t hl = ws_frame_header(h, op, n);

	if (evbuffer_add(out, h, hl) != 0 || (n && evbuffer_add(out, p, n) != 0))
		log_emit(LOG_WARN, "websocket", w->peer, NULL, "out of memory queueing a control frame");
}

/* Ends the connection from our side: a close frame with code, then EOF or error to the session. */
static void ws_filter_end(struct ws_filter *w, uint16_t code, short what)
{
	uint8_t body[2] = {(uint8_t)(code >> 8), (uint8_t)code};

	w->done = true;
	ws_filter_send(w, WS_OP_CLOSE, body, code ? 2 : 0);
	bufferevent_trigger_event(w->bev, what, BEV_TRIG_DEFER_CALLBACKS);
}

static void ws_filter_event(struct ws_filter *w, enum ws_event ev)
{
	static struct log_limit lim;
	unsigned suppressed = 0;
	char note[LOG_NOTE_MAX];

	switch (ev) {
	case WS_EV_PING:
		ws_filter_send(w, WS_OP_PONG, w->dec.ctl, w->dec.ctl_len);
		break;
	case WS_EV_CLOSE: /* RFC 6455 §5.5.1: answer with the code received */
		ws_filter_end(w, w->dec.close_code ? w->dec.close_code : 0, BEV_EVENT_EOF | BEV_EVENT_READING);
		break;
	case WS_EV_ERROR:
		if (log_limit_allow(&lim, clock_mono_ms(), &suppressed))
			log_emit(LOG_WARN, "websocket", w->peer, NULL, "closing connection: %s (close code %u)%s",
				 w->dec.why, w->dec.close_code, log_suppressed_note(suppressed, note));
		ws_filter_end(w, w->dec.close_code, BEV_EVENT_ERROR | BEV_EVENT_READING);
		break;
	default:
		break;
	}
}

/* One decoding step from the front of src: a header or control frame (copied out, at most 139
 * bytes), or a stretch of payload from src's first chain into space reserved in dst. Returns the
 * event; *got the payload bytes added to dst. */
static enum ws_event ws_filter_step(struct ws_filter *w, struct evbuffer *src, struct evbuffer *dst, size_t room,
				    size_t *got)
{
	uint8_t tmp[WS_HEADER_MAX + WS_CONTROL_MAX];
	struct evbuffer_iovec in, out;
	size_t used = 0, want;
	enum ws_event ev;
	ev_ssize_t n;

	*got = 0;
	if (!w->dec.in_frame) {
		n = evbuffer_copyout(src, tmp, sizeof(tmp));
		ev = ws_decode(&w->dec, tmp, n > 0 ? (size_t)n : 0, &used, NULL, 0, got);
	} else {
		if (evbuffer_peek(src, -1, NULL, &in, 1) < 1)
			return WS_EV_NONE;
		want = in.iov_len < room ? in.iov_len : room;
		if (evbuffer_reserve_space(dst, (ev_ssize_t)want, &out, 1) < 1) {
			w->dec.why = "out of memory";
			w->dec.close_code = 1011; /* RFC 6455 §7.4.1: internal error */
			return WS_EV_ERROR;
		}
		ev = ws_decode(&w->dec, in.iov_base, want, &used, out.iov_base, out.iov_len, got);
		out.iov_len = *got;
		(void)evbuffer_commit_space(dst, &out, 1);
	}
	if (used)
		(void)evbuffer_drain(src, used);
	return ev;
}

static enum bufferevent_filter_result ws_filter_in(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t lim,
						   enum bufferevent_flush_mode mode, void *arg)
{
	struct ws_filter *w = arg;
	size_t room = lim < 0 ? SIZE_MAX : (size_t)lim, got, before = evbuffer_get_length(src);
	enum ws_event ev = WS_EV_DATA;

	(void)mode;
	if (w->done) { /* after a close: what still comes is not read */
		(void)evbuffer_drain(src, before);
		return BEV_NEED_MORE;
	}
	while (room > 0 && ev != WS_EV_NONE && !w->done && evbuffer_get_length(src) > 0) {
		ev = ws_filter_step(w, src, dst, room < WS_IN_STEP ? room : WS_IN_STEP, &got);
		room -= got;
		ws_filter_event(w, ev);
	}
	/* BEV_OK only after progress: libevent calls again while it is OK and input remains */
	return evbuffer_get_length(src) < before ? BEV_OK : BEV_NEED_MORE;
}

/* The end of the stream (ws_filter_close): what src holds is the body of our Close frame (RFC
 * 6455 §5.5.1), framed as one; nothing once a close was sent (either side's: one each way). */
static enum bufferevent_filter_result ws_filter_out_close(struct ws_filter *w, struct evbuffer *src,
							  struct evbuffer *dst)
{
	size_t n = evbuffer_get_length(src), hl;
	uint8_t h[10];

	if (w->done || n > WS_CONTROL_MAX) {
		(void)evbuffer_drain(src, n);
		return BEV_NEED_MORE;
	}
	w->done = true;
	hl = ws_frame_header(h, WS_OP_CLOSE, n);
	if (evbuffer_add(dst, h, hl) != 0 || evbuffer_remove_buffer(src, dst, n) != (int)n)
		return BEV_ERROR;
	return BEV_OK;
}

static enum bufferevent_filter_result ws_filter_out(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t lim,
						    enum bufferevent_flush_mode mode, void *arg)
{
	struct ws_filter *w = arg;
	size_t n = evbuffer_get_length(src), hl;
	uint8_t h[10];

	if (mode == BEV_FINISHED) /* ws_filter_close: src holds the Close frame's body */
		return ws_filter_out_close(w, src, dst);
	if (n == 0)
		return BEV_NEED_MORE;
	if (w->done) { /* a close frame was the last thing sent */
		(void)evbuffer_drain(src, n);
		return BEV_NEED_MORE;
	}
	if (n > WS_OUT_FRAME_MAX)
		n = WS_OUT_FRAME_MAX;
	if (lim > 0 && n > (size_t)lim)
		n = (size_t)lim;
	hl = ws_frame_header(h, WS_OP_BINARY, n);
	if (evbuffer_add(dst, h, hl) != 0 || evbuffer_remove_buffer(src, dst, n) != (int)n)
		return BEV_ERROR;
	return BEV_OK;
}

/* The connection's queue drained to the filter's write low watermark: the session's write
 * callback (backpressure resume, the drained check of a close) would otherwise not run, since
 * the filter itself only calls it when it moves bytes. */
static void ws_filter_on_drain(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct ws_filter *w = arg;
	size_t low = 0, high = 0, after = info->orig_size + info->n_added - info->n_deleted;

	(void)buf;
	if (!w->bev || info->n_deleted == 0 || bufferevent_getwatermark(w->bev, EV_WRITE, &low, &high) != 0)
		return;
	if (info->orig_size > low && after <= low && evbuffer_get_length(bufferevent_get_output(w->bev)) == 0)
		bufferevent_trigger(w->bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
}

static void ws_filter_free(void *arg)
{
	struct ws_filter *w = arg;

	/* called while the filter still holds its reference to the connection */
	evbuffer_remove_cb(bufferevent_get_output(w->under), ws_filter_on_drain, w);
	free(w);
}

struct bufferevent *ws_filter_new(struct bufferevent *under, uint64_t max_frame, const char *peer)
{
	struct ws_filter *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->dec.max_frame = max_frame;
	w->under = under;
	strncpy(w->peer, peer, sizeof(w->peer) - 1);
	if (!evbuffer_add_cb(bufferevent_get_output(under), ws_filter_on_drain, w)) {
		free(w);
		return NULL;
	}
	w->bev = bufferevent_filter_new(under, ws_filter_in, ws_filter_out,
				       BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS, ws_filter_free, w);
	if (!w->bev) {
		evbuffer_remove_cb(bufferevent_get_output(under), ws_filter_on_drain, w);
		free(w);
		return NULL;
	}
	return w->bev;
}

int ws_filter_close(struct bufferevent *bev, uint16_t code)
{
	struct evbuffer *out = bufferevent_get_output(bev);
	uint8_t body[2] = {(uint8_t)(code >> 8), (uint8_t)code};
	bool writing = (bufferevent_get_enabled(bev) & EV_WRITE) != 0;
	int framed = 0;

	if (evbuffer_get_length(out) != 0)
		return 0;
	/* Writing off: the body must not go out as a data frame the moment it is added (libevent
	 * runs the output filter on every addition while writing is on). The flush returns 1 when
	 * the filter framed it (BEV_OK), 0 when a close was sent already. */
	(void)bufferevent_disable(bev, EV_WRITE);
	if (evbuffer_add(out, body, sizeof(body)) == 0)
		framed = bufferevent_flush(bev, EV_WRITE, BEV_FINISHED) > 0;
	(void)evbuffer_drain(out, evbuffer_get_length(out));
	if (writing)
		(void)bufferevent_enable(bev, EV_WRITE);
	return framed;
}
