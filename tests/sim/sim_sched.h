/* sim_sched.h - the simulation's event queue: events ordered by simulated time, ties broken by the
 * order in which they were queued (a sequence number), so a run never depends on heap layout or
 * pointer values. The queue owns nothing but its array; an event's data is the pusher's, and
 * whoever pops (or sim_sched_free's callback) frees it. */
#ifndef PX_SIM_SCHED_H
#define PX_SIM_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sim_ev {
	uint64_t at;   /* simulated time, ms */
	uint64_t seq;  /* queue order, the tie-break */
	int kind;      /* the caller's event kind */
	uint32_t node; /* the caller's subject (node or client index) */
	uint64_t gen;  /* the caller's generation (a connection, a timer arming) */
	void *data;    /* the caller's; NULL allowed */
};

struct sim_sched;

/* NULL on allocation failure. */
struct sim_sched *sim_sched_new(void);
/* free_data (may be NULL) is called for each event still queued. Accepts NULL. */
void sim_sched_free(struct sim_sched *s, void (*free_data)(struct sim_ev *ev));
/* Queues an event at `at` (an event in the past is queued at the current time: it runs after the
 * ones due now). -1 on allocation failure (data stays the caller's). */
int sim_sched_push(struct sim_sched *s, uint64_t at, int kind, uint32_t node, uint64_t gen, void *data);
/* Pops the earliest event into *out and advances the current time to it; false if empty. */
bool sim_sched_pop(struct sim_sched *s, struct sim_ev *out);
/* The time of the earliest event; false if empty. */
bool sim_sched_peek(const struct sim_sched *s, uint64_t *at);
uint64_t sim_sched_now(const struct sim_sched *s);
size_t sim_sched_len(const struct sim_sched *s);

#endif
