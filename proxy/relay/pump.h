/* pump.h - the relay core: a byte pump between two bufferevents of any kind (a plain socket, an
 * OpenSSL one, the WebSocket filter, one end of a bufferevent_pair in tests). It knows nothing of
 * MQTT. It owns, per side: the bufferevent, backpressure (the other side's output past a high
 * watermark stops reading this side, draining to the low one resumes it), direct writes and reads
 * (a capability of a connected plain socket only), and, for the pump as a whole, the orderly
 * finish (flush both outputs, then FIN to the device side and discard what it still sends until
 * it closes: a lingering close) and the deferred free. The owner (relay/session.c, or a test)
 * reads frames from a side's input and tells the pump what to do with them (ARCHITECTURE.md,
 * "The pump"). Single-threaded: everything runs on the event base given to pump_init. */
#ifndef PX_PUMP_H
#define PX_PUMP_H

#include <stdbool.h>
#include <stddef.h>

#include "transport.h"

struct bufferevent;
struct event_base;
struct evbuffer;
struct pump;
struct verdict;

/* The two sides. PUMP_DEV is the side that gets the lingering close (the device); PUMP_UP the
 * other (the broker). A direction is named by its source side; pump_other() is its destination. */
enum pump_side {
	PUMP_DEV = 0,
	PUMP_UP = 1,
};

static inline enum pump_side pump_other(enum pump_side side)
{
	return side == PUMP_DEV ? PUMP_UP : PUMP_DEV;
}

/* Default watermarks of the output queues (the session's): reading the source stops when the
 * destination's queue passes HIGH (one frame may overshoot it) and resumes when it drains to LOW. */
#define PUMP_OUT_HIGH ((size_t)512 * 1024)
#define PUMP_OUT_LOW ((size_t)128 * 1024)

/* What the owner is told. Every callback gets the pump; an owner that embeds it finds itself with
 * offsetof. None is called from inside a pump_* call the owner made, except on_linger (from
 * pump_finish when nothing is left to flush). The owner must not call pump_release from any
 * callback but on_done. */
struct pump_ops {
	/* New input on side (reading was on): take what frames are complete. */
	void (*on_read)(struct pump *p, enum pump_side side);
	/* side's output drained to out_low and the other side, paused by backpressure, reads again:
	 * take what waits in the other side's input. */
	void (*on_drained)(struct pump *p, enum pump_side side);
	/* BEV_EVENT_* of side: CONNECTED, EOF, ERROR, TIMEOUT (not while lingering). On EOF the
	 * side's input still holds what came before it (half-close: take it, then pump_drop the side
	 * and pump_finish). While finishing, the pump goes on with the finish after the call. */
	void (*on_event)(struct pump *p, enum pump_side side, short what);
	/* Finishing: both outputs are flushed, the device side got a FIN and its input is discarded
	 * from now on. The other side is the owner's to drop. May be NULL. */
	void (*on_linger)(struct pump *p);
	/* The pump is done (finished, or pump_end): called from a fresh event, never inside the
	 * owner's own callback stack; the owner calls pump_release here and frees itself. */
	void (*on_done)(struct pump *p);
	/* The bytes the frame at the head of in still lacks (0: complete, or its header is not):
	 * a direct read takes at most that much (or PUMP_READ_BATCH when that is more). May be NULL. */
	size_t (*head_missing)(struct pump *p, enum pump_side side, struct evbuffer *in);
	size_t out_high, out_low; /* PUMP_OUT_HIGH, PUMP_OUT_LOW for the session */
};

/* Prepares p (owned by the caller, usually inside its own struct) with no sides. -1: out of
 * memory (p holds nothing then). ops must outlive p. */
int pump_init(struct pump *p, struct event_base *base, const struct pump_ops *ops);
/* Frees both sides (closing their sockets when they were created with BEV_OPT_CLOSE_ON_FREE) and
 * the pump's event. Does not free p itself. Accepts a pump that pump_init failed on. */
void pump_release(struct pump *p);

/* Takes ownership of bev as side (which must be empty): installs the pump's callbacks and
 * watermarks (reading stops at read_max unread bytes: one maximal frame), enables reading. The
 * bufferevent should have BEV_OPT_DEFER_CALLBACKS. */
void pump_attach(struct pump *p, enum pump_side side, struct bufferevent *bev, size_t read_max);
/* side is a connected plain TCP socket: from now on its output is written directly at the end of
 * the loop pass (no write event) and large inputs are read directly. Never call it for a side
 * with a framing layer (TLS, WebSocket): the bytes would bypass it. -1: out of memory (the side
 * stays with its bufferevent's own I/O). */
int pump_direct(struct pump *p, enum pump_side side);
/* Lends bev to side (which must be empty) without the pump's callbacks: its output takes what the
 * owner queues for side and counts in pump_out_len, but the pump neither reads, writes, watches
 * nor frees it (a broker connection still being made, owned by struct upstream). pump_attach of
 * the same bufferevent takes it over; pump_drop forgets it (and, finishing, goes on with the
 * finish: what was queued for it is not waited for). */
void pump_lend(struct pump *p, enum pump_side side, struct bufferevent *bev);
/* Frees side's bufferevent now (what is queued for it is lost); a lent one is only forgotten. */
void pump_drop(struct pump *p, enum pump_side side);
/* side's bufferevent, NULL when it has none. */
struct bufferevent *pump_bev(const struct pump *p, enum pump_side side);
/* side's input (NULL when it has none). */
struct evbuffer *pump_input(const struct pump *p, enum pump_side side);
/* What is queued for side down to its socket (a filter's queue plus the one under it). */
size_t pump_out_len(const struct pump *p, enum pump_side side);

/* Moves n bytes from the head of src's input to the other side's output (evbuffer chains, no copy
 * of the bytes); without the other side they are discarded. -1: out of memory. */
int pump_forward(struct pump *p, enum pump_side src, size_t n);
/* Drops n bytes from the head of src's input. */
void pump_discard(struct pump *p, enum pump_side src, size_t n);
/* Queues buf[0..len) to side's output (nothing without the side). -1: out of memory. */
int pump_send(struct pump *p, enum pump_side side, const void *buf, size_t len);
/* Carries out v for the frame of frame_len bytes at the head of src's input: FORWARD moves it,
 * DROP discards it, REPLACE discards it and sends v->bytes to the other side, WAIT leaves it and
 * holds src (pump_hold) until the owner resumes it. Returns 0 (carried out), 1 (WAIT), -1 for
 * ABORT (nothing done: the owner decides how to close) or out of memory. */
int pump_apply(struct pump *p, enum pump_side src, size_t frame_len, const struct verdict *v);

/* Backpressure: true when the other side's output has reached out_high; src's reading is then
 * paused until that output drains to out_low (then on_drained). Call before taking each frame. */
bool pump_full(struct pump *p, enum pump_side src);
/* The owner stops (on) or allows (off) reading side, whatever backpressure says; reading runs
 * when neither holds it. */
void pump_hold(struct pump *p, enum pump_side side, bool on);

/* Orderly finish: stop reading both sides, flush both outputs; then end the device side's
 * transport (transport.h: a WebSocket Close frame with the status for why, written before going
 * on; TLS close_notify), FIN it and discard its input until it closes (on_linger), or, without a
 * device side, end the broker side's transport and be done. The owner bounds it with its own
 * timer (pump_end). A side attached while finishing is flushed, not read. */
void pump_finish(struct pump *p, enum relay_end why);
/* Ends now: nothing more is read, written or reported; on_done follows from a fresh event. */
void pump_end(struct pump *p);

#endif
