/* pump_internal.h - the body of struct pump, for owners that embed it by value (struct session:
 * no allocation of its own per connection, bench/README.md "memory"). Its fields are the pump's:
 * owners use pump.h only. */
#ifndef PX_PUMP_INTERNAL_H
#define PX_PUMP_INTERNAL_H

#include <stdint.h>

#include "pump.h"

/* Per-side flags (pump.flags[side]). */
enum {
	PUMP_F_PAUSED = 1,    /* backpressure: the other side's output passed out_high */
	PUMP_F_HELD = 2,      /* the owner holds reading (pump_hold) */
	PUMP_F_DIRECT_OK = 4, /* a connected plain socket: may be written and read directly */
	PUMP_F_DIRECT = 8,    /* written by the pump's event, no write event registered */
	PUMP_F_LENT = 16,     /* pump_lend: the owner's bufferevent, without the pump's callbacks */
};

enum pump_stage {
	PUMP_RUNNING,   /* relaying */
	PUMP_FINISHING, /* pump_finish: no reading, flushing both outputs */
	PUMP_LINGERING, /* flushed, FIN sent: discarding the device side's input until it closes */
	PUMP_DONE,      /* ended: on_done is due from the pump's event */
};

struct pump {
	struct bufferevent *bev[2];  /* the sides; NULL when absent. First: struct session names them
				      * s->dev and s->up (session_internal.h) */
	struct event *ev;            /* direct writes at the end of the loop pass, then the deferred
				      * on_done (one event for both: an idle connection costs less) */
	const struct pump_ops *ops;
	uint8_t flags[2];            /* PUMP_F_* */
	uint8_t stage;               /* enum pump_stage */
	uint8_t end;                 /* enum relay_end: why the finish (pump_finish) */
	bool flush_pending;          /* ev is active for direct writes */
};

#endif
