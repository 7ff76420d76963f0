/* kx_sim.c - the fleet simulation's command line (issue 15 item 2).
 *   kx_sim [--seed N] [--seeds K] [--star B,S | --mesh N | --nodes N] [--trace] [options]
 * runs seeds N..N+K-1 of a faulty fleet and checks the invariants (sim_check.c); a failing seed
 * prints the invariant and the command that replays it with a trace. With more than 500 nodes (or
 * --scale) it runs the scale benchmark instead: no faults, the time until every trusting pair is
 * keyed after a cold start, broker messages and bytes per rotation round, heap per node. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "sim_fleet.h"

static void usage(void)
{
	fprintf(stderr,
		"usage: kx_sim [--seed N] [--seeds K] [--star B,S | --mesh N | --nodes N] [--trace] [--quiet]\n"
		"  fleet:  --interval S (keyex.interval_seconds, 20) --keepalive S (5) --skew S (max_skew, 10)\n"
		"          --seals N (per node per second, 2)\n"
		"  faults: --no-faults --pure-loss --loss PM --dup PM --reorder PM (per mille) --faults-end S (60)\n"
		"          --restarts N --crashes N --drops N --reloads N --bound S (keyed bound, 60)\n"
		"  scale:  --scale [--rounds R] (no faults; automatic above 500 nodes)\n"
		"  checks: --sabotage trust|rollback|nonce|revocation|keyed (break one invariant on purpose)\n");
}

static int num(const char *s, unsigned long long max, unsigned long long *out)
{
	char *end;

	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || end == s || *end || *out > max ? -1 : 0;
}

static int parse_star(const char *s, struct sim_opts *o)
{
	unsigned long long b, n;
	const char *comma = strchr(s, ',');
	char head[32];

	if (!comma || (size_t)(comma - s) >= sizeof(head))
		return -1;
	memcpy(head, s, (size_t)(comma - s));
	head[comma - s] = '\0';
	if (num(head, 1000, &b) || num(comma + 1, 1000000, &n) || !b)
		return -1;
	o->backends = (unsigned)b;
	o->sensors = (unsigned)n;
	o->mesh = 0;
	return 0;
}

/* One option with a numeric value: 0 done, 1 not one of these, -1 bad value. */
static int parse_num_opt(const char *name, const char *val, struct sim_opts *o, unsigned long long *seeds)
{
	static const struct {
		const char *name;
		unsigned long long max;
	} t[] = { { "--seed", ~0ull }, { "--seeds", 1000000 }, { "--mesh", 100000 }, { "--nodes", 100000 },
		  { "--interval", 86400 }, { "--keepalive", 3600 }, { "--skew", 3600 }, { "--seals", 1000 },
		  { "--loss", 1000 }, { "--dup", 1000 }, { "--reorder", 1000 }, { "--faults-end", 86400 },
		  { "--restarts", 100 }, { "--crashes", 1000 }, { "--drops", 1000 }, { "--reloads", 8 },
		  { "--bound", 86400 }, { "--rounds", 100 } };
	unsigned long long v;
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]) && strcmp(name, t[i].name) != 0; i++)
		;
	if (i == sizeof(t) / sizeof(t[0]))
		return 1;
	if (!val || num(val, t[i].max, &v))
		return -1;
	switch (i) {
	case 0: o->seed = v; break;
	case 1: *seeds = v; break;
	case 2: case 3: o->mesh = (unsigned)v; break;
	case 4: o->interval_s = (unsigned)v; break;
	case 5: o->keepalive_s = (unsigned)v; break;
	case 6: o->max_skew_s = (unsigned)v; o->fp.max_skew_ms = (uint32_t)v * 1000; break;
	case 7: o->seals_per_s = (unsigned)v; break;
	case 8: o->fp.loss_pm = (unsigned)v; break;
	case 9: o->fp.dup_pm = (unsigned)v; break;
	case 10: o->fp.reorder_pm = (unsigned)v; break;
	case 11: o->fp.faults_end_ms = v * 1000; break;
	case 12: o->fp.broker_restarts = (unsigned)v; break;
	case 13: o->fp.crashes = (unsigned)v; break;
	case 14: o->fp.drops = (unsigned)v; break;
	case 15: o->fp.reloads = (unsigned)v; break;
	case 16: o->bound_ms = v * 1000; break;
	default: o->rounds = v; break;
	}
	return 0;
}

struct cli {
	struct sim_opts o;
	unsigned long long seeds;
	int scale; /* -1 automatic */
};

static int parse(int argc, char **argv, struct cli *c)
{
	int i, rc;

	sim_opts_defaults(&c->o);
	c->seeds = 1;
	c->scale = -1;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--trace") == 0)
			c->o.trace = true;
		else if (strcmp(a, "--quiet") == 0)
			c->o.quiet = true;
		else if (strcmp(a, "--no-faults") == 0)
			c->o.faults = false;
		else if (strcmp(a, "--pure-loss") == 0)
			c->o.fp.loss_resets = false;
		else if (strcmp(a, "--scale") == 0)
			c->scale = 1;
		else if (strcmp(a, "--sabotage") == 0) {
			if (!v || sim_sabotage_parse(v, &c->o.sabotage) != 0)
				return -1;
			i++;
		}
		else if (strcmp(a, "--star") == 0) {
			if (!v || parse_star(v, &c->o) != 0)
				return -1;
			i++;
		} else if ((rc = parse_num_opt(a, v, &c->o, &c->seeds)) <= 0) {
			if (rc < 0)
				return -1;
			i++;
		} else {
			return -1;
		}
	}
	return 0;
}

/* The command that replays seed with a trace: this command line with --seed/--seeds/--quiet
 * replaced. */
static void print_replay(int argc, char **argv, unsigned long long seed)
{
	int i;

	fprintf(stderr, "  replay: %s", argv[0]);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seed") == 0 || strcmp(argv[i], "--seeds") == 0) {
			i++;
			continue;
		}
		if (strcmp(argv[i], "--quiet") != 0 && strcmp(argv[i], "--trace") != 0)
			fprintf(stderr, " %s", argv[i]);
	}
	fprintf(stderr, " --seed %llu --trace\n", seed);
}

static void print_scale(const struct sim_opts *o, const struct sim_result *r, double cpu_s)
{
	printf("kx_sim scale: %zu nodes (%s %u,%u), %zu trusting pairs (ordered), T = %u s\n", r->nodes,
	       o->mesh ? "mesh" : "star", o->mesh ? o->mesh : o->backends, o->mesh ? 0 : o->sensors, r->pairs,
	       o->interval_s);
	printf("  keyed after cold start: %.3f s (simulated; starts spread over %.1f s)\n", (double)r->cold_keyed_ms / 1000.0,
	       (double)o->start_spread_ms / 1000.0);
	printf("  per rotation round (%.1f s measured once keyed): broker in %llu msgs %llu B, out %llu msgs %llu B\n",
	       (double)r->round_ms / 1000.0, (unsigned long long)r->round_msgs_in,
	       (unsigned long long)r->round_bytes_in, (unsigned long long)r->round_msgs_out,
	       (unsigned long long)r->round_bytes_out);
	printf("  whole run (%.1f s): broker in %llu msgs %llu B, out %llu msgs %llu B\n", (double)r->end_ms / 1000.0,
	       (unsigned long long)r->msgs_in, (unsigned long long)r->bytes_in, (unsigned long long)r->msgs_out,
	       (unsigned long long)r->bytes_out);
	printf("  heap when keyed: %zu B, %zu B more than before the first core started: %zu B per node\n"
	       "    (cores with their key rings, the broker's retained store and queues, events in flight)\n",
	       r->heap_bytes, r->heap_bytes - r->heap_base, r->nodes ? (r->heap_bytes - r->heap_base) / r->nodes : 0);
	printf("  one core's heap (given back by kx_core_free at the end): first node %zu B, last node %zu B\n",
	       r->core_first, r->core_last);
	printf("  events %llu, core calls %llu, seals %llu, CPU %.1f s\n", (unsigned long long)r->events,
	       (unsigned long long)r->core_calls, (unsigned long long)r->seals, cpu_s);
}

int main(int argc, char **argv)
{
	struct cli c;
	struct sim_result r;
	bool seals_set = false;
	unsigned long long s, failed = 0;
	size_t nodes;

	if (parse(argc, argv, &c) != 0) {
		usage();
		return 2;
	}
	log_set_level(c.o.trace ? LOG_DEBUG : LOG_ERROR);
	for (int i = 1; i < argc; i++)
		seals_set |= strcmp(argv[i], "--seals") == 0;
	nodes = c.o.mesh ? c.o.mesh : (size_t)c.o.backends + c.o.sensors;
	if (c.scale == 1 || (c.scale < 0 && nodes > 500)) {
		c.o.faults = false;
		c.o.seals_per_s = seals_set ? c.o.seals_per_s : 0; /* the nonce record would weigh in the heap */
		c.o.rounds = c.o.rounds ? c.o.rounds : 1;
		c.o.start_spread_ms = 5000;
	}
	if (!c.o.faults)
		c.o.fp.faults_end_ms = 0;
	for (s = c.o.seed; s < c.o.seed + c.seeds; s++) {
		struct sim_opts o = c.o;
		clock_t t0 = clock();

		o.seed = s;
		if (sim_run(&o, &r) != 0)
			return 2;
		if (!r.ok) {
			failed++;
			fprintf(stderr, "kx_sim: FAIL seed %llu at %llu ms: %s\n", s, (unsigned long long)r.violation_at,
				r.violation);
			print_replay(argc, argv, s);
		} else if (o.rounds) {
			print_scale(&o, &r, (double)(clock() - t0) / CLOCKS_PER_SEC);
		} else if (!o.quiet) {
			printf("kx_sim: seed %llu ok: %zu nodes, %zu pairs keyed %.1f s after the faults ended%s "
			       "(%llu events, %llu seals)\n", s, r.nodes, r.pairs,
			       (double)(r.quiet_keyed_ms - o.fp.faults_end_ms) / 1000.0,
			       r.relapse_ms ? ", later unkeyed for a while" : "", (unsigned long long)r.events,
			       (unsigned long long)r.seals);
			if (r.relapse_ms)
				printf("  (longest: %.1f s; replay with --trace: \"fleet fell out of keyed state\")\n",
				       (double)r.relapse_ms / 1000.0);
		}
	}
	printf("kx_sim: %llu seed(s) from %llu, %llu failed\n", c.seeds, (unsigned long long)c.o.seed, failed);
	return failed ? 1 : 0;
}
