/* sim_fault.h - the seeded fault schedule of one simulation run: per-message link faults (loss,
 * duplication, reordering, delay) and timed events (broker restarts that keep or lose the retained
 * store, node crashes and restarts, dropped connections, configuration reloads that remove a peer
 * and maybe add it back, persist failures), plus each node's clock skew. Every fault happens before
 * faults_end_ms; after it the links deliver everything once, in order, with the base delay, so the
 * fleet must converge. The plan is a pure function of (seed, parameters, node count). */
#ifndef PX_SIM_FAULT_H
#define PX_SIM_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim_rng.h"

enum sim_fault_kind {
	SF_BROKER_RESTART, /* down_ms, keep_retained */
	SF_NODE_CRASH,     /* node, down_ms; host: the broker notices only at the keepalive bound */
	SF_CONN_DROP,      /* node: its control connection is cut (the node reconnects) */
	SF_RELOAD_REMOVE,  /* node removes its peer number `peer` (mod its peer count) */
	SF_RELOAD_ADD,     /* node adds back the peer it removed last */
};

struct sim_fault_ev {
	uint64_t at; /* ms of simulated time */
	enum sim_fault_kind kind;
	uint32_t node;
	uint32_t peer;
	uint32_t down_ms;
	bool keep_retained; /* SF_BROKER_RESTART */
	bool host;          /* SF_NODE_CRASH: the host died (will after 1.5 x keepalive), not the process */
	bool clean;         /* SF_NODE_CRASH: a clean stop (KX_EV_STOP, DISCONNECT) and start instead */
};

/* What a run's faults look like; sim_fault_defaults gives a moderate mix. */
struct sim_fault_params {
	unsigned loss_pm, dup_pm, reorder_pm; /* per delivered message, per mille */
	bool loss_resets;                     /* a lost message also cuts the receiver's connection
					       * (what loss on a TCP connection looks like); false: the
					       * message just vanishes (a broker dropping from a full queue) */
	uint32_t delay_min_ms, delay_max_ms;  /* link delay; reordered messages get up to reorder_ms more */
	uint32_t reorder_ms;
	unsigned persist_fail_pm;             /* a PERSIST action fails (disk full), per mille */
	uint64_t faults_end_ms;
	unsigned broker_restarts, crashes, drops, reloads; /* how many of each timed fault */
	uint32_t max_skew_ms;                 /* node clocks within +-max_skew_ms/2 of true time */
};

struct sim_fault_plan {
	struct sim_fault_params p;
	struct sim_fault_ev *ev; /* sorted by at */
	size_t nev;
	int64_t *skew_ms; /* per node */
	size_t nodes;
};

void sim_fault_defaults(struct sim_fault_params *p, uint64_t faults_end_ms, uint32_t max_skew_ms);
/* A plan for `nodes` nodes; *out is the caller's (sim_fault_plan_free). -1 on allocation failure. */
int sim_fault_plan_make(uint64_t seed, const struct sim_fault_params *p, size_t nodes, struct sim_fault_plan **out);
void sim_fault_plan_free(struct sim_fault_plan *plan); /* accepts NULL */

/* The fate of one message on a link at time now: how many copies arrive (0 lost, 1, or 2
 * duplicated) and the delay of each (delays[0..n)). */
unsigned sim_fault_link(const struct sim_fault_plan *plan, struct sim_rng *rng, uint64_t now, uint64_t delays[2]);
/* Does a PERSIST at time now fail? */
bool sim_fault_persist_fails(const struct sim_fault_plan *plan, struct sim_rng *rng, uint64_t now);
/* One line per fault (for --trace). */
void sim_fault_plan_print(const struct sim_fault_plan *plan, void *file);

#endif
