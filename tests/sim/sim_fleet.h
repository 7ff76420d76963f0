/* sim_fleet.h - one run of the fleet simulation: N real key-exchange cores (proxy/keyex/kx_core.h),
 * each with its own identity key, configuration, clocks and persisted state, against the simulated
 * broker, under a seeded fault plan, with the invariants of issue 15 checked during and after the
 * run. A run is a pure function of its options (seed included): `--trace` replays it with every
 * event printed. */
#ifndef PX_SIM_FLEET_H
#define PX_SIM_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim_fault.h"

/* --sabotage: break one invariant on purpose (sim_sabotage.c), to show its check fires. */
enum sim_sabotage { SAB_NONE = 0, SAB_TRUST, SAB_ROLLBACK, SAB_NONCE, SAB_REVOKE, SAB_KEYED };
int sim_sabotage_parse(const char *s, enum sim_sabotage *out);

struct sim_opts {
	uint64_t seed;
	unsigned backends, sensors; /* star: each sensor trusts only the backends (which trust all) */
	unsigned mesh;              /* mesh of this many nodes (instead of a star) when > 0 */
	unsigned interval_s;        /* keyex.interval_seconds */
	unsigned keepalive_s;       /* keyex.keepalive_seconds */
	unsigned max_skew_s;        /* keyex.max_skew_seconds; node clocks within +-half of it */
	unsigned seals_per_s;       /* messages each node seals per simulated second */
	unsigned start_spread_ms;   /* nodes start at random times in [0, this) */
	bool faults;                /* false: a clean run (the scale benchmark) */
	struct sim_fault_params fp; /* when faults */
	uint64_t bound_ms;          /* every trusting pair keyed within this after the faults end */
	uint64_t max_ms;            /* hard stop of the run (simulated) */
	uint64_t rounds;            /* scale mode: rotation rounds measured after the fleet is keyed */
	enum sim_sabotage sabotage;
	bool trace;
	bool quiet;                 /* no per-run line on success */
};

/* What a run found and measured. */
struct sim_result {
	bool ok;
	char violation[512];   /* the first invariant broken (empty when ok) */
	uint64_t violation_at; /* simulated ms */
	uint64_t cold_keyed_ms;     /* first time every trusting pair was keyed (0: never) */
	uint64_t quiet_keyed_ms;    /* first time after the faults ended (0: never) */
	uint64_t relapse_ms;        /* longest time unkeyed again after that */
	uint64_t end_ms;
	uint64_t seals, events, core_calls;
	uint64_t msgs_in, msgs_out, bytes_in, bytes_out; /* broker, whole run */
	uint64_t round_msgs_in, round_msgs_out, round_bytes_in, round_bytes_out; /* per rotation round */
	uint64_t round_ms;          /* length of the measured window */
	size_t nodes, pairs;
	size_t heap_bytes;          /* heap in use with every node up and keyed (mallinfo2) */
	size_t heap_base;           /* the same before the first core started */
	size_t core_first, core_last; /* heap freed by kx_core_free of node 0 and of the last node */
};

/* Defaults for a small faulty fleet. */
void sim_opts_defaults(struct sim_opts *o);
/* Runs one simulation. 0 (r filled, r->ok tells), -1 when it could not be set up (message on
 * stderr). */
int sim_run(const struct sim_opts *o, struct sim_result *r);

#endif
