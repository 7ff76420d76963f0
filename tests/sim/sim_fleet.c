/* sim_fleet.c - one simulation run: builds the fleet (topology, identities, configurations from a
 * template loaded through conf/, so every option has its real default), queues the node starts and
 * the fault plan, runs the event loop on simulated time, and applies the keyed bound. */
#include <malloc.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sim_fleet_internal.h"

void sim_opts_defaults(struct sim_opts *o)
{
	*o = (struct sim_opts){
		.seed = 1,
		.backends = 2,
		.sensors = 4,
		.interval_s = 20,
		.keepalive_s = 5,
		.max_skew_s = 10,
		.seals_per_s = 2,
		.start_spread_ms = 2000,
		.faults = true,
		.bound_ms = 60000,
		.max_ms = 0,
	};
	sim_fault_defaults(&o->fp, 60000, 10000);
}

void sim_violation_(struct sim_fleet *f, const char *fmt, ...)
{
	va_list ap;

	if (!f->r->ok)
		return; /* the first one is the one to replay */
	f->r->ok = false;
	f->r->violation_at = f->now;
	va_start(ap, fmt);
	vsnprintf(f->r->violation, sizeof(f->r->violation), fmt, ap);
	va_end(ap);
	sim_trace_(f, "VIOLATION: %s", f->r->violation);
	f->done = true;
}

void sim_trace_(struct sim_fleet *f, const char *fmt, ...)
{
	va_list ap;

	if (!f->trace)
		return;
	fprintf(f->trace, "%7llu.%03llu ", (unsigned long long)(f->now / 1000), (unsigned long long)(f->now % 1000));
	va_start(ap, fmt);
	vfprintf(f->trace, fmt, ap);
	va_end(ap);
	fputc('\n', f->trace);
}

int sim_push_(struct sim_fleet *f, uint64_t at, enum sim_ev_kind kind, uint32_t node, uint64_t gen, void *data)
{
	if (sim_sched_push(f->q, at, (int)kind, node, gen, data) != 0) {
		sim_violation_(f, "out of memory");
		return -1;
	}
	return 0;
}

struct kx_now sim_now_of_(const struct sim_fleet *f, const struct sim_node *n)
{
	return (struct kx_now){ .mono_ms = f->now + n->mono_off,
				.wall_ms = (uint64_t)((int64_t)(SIM_WALL_BASE_MS + f->now) + n->skew_ms) };
}

/* The template every node's configuration copies: loaded from a minimal file, so that every option
 * not set here has the default conf/ gives it. */
static struct px_conf *load_template(const struct sim_opts *o)
{
	char path[] = "/tmp/kx_sim_XXXXXX";
	struct conf_errors errs = { 0 };
	struct px_conf *c = NULL;
	size_t i;
	int fd = mkstemp(path);
	FILE *fp = fd >= 0 ? fdopen(fd, "w") : NULL;

	if (!fp) {
		perror("kx_sim: template");
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	fprintf(fp, "node_id = \"template\";\nstate_dir = \"/nonexistent/kx_sim\";\nbroker = { host = \"127.0.0.1\"; port = 1884; };\n"
		    "keyex = { interval_seconds = %u; keepalive_seconds = %u; max_skew_seconds = %u; };\n",
		o->interval_s, o->keepalive_s, o->max_skew_s);
	fclose(fp);
	if (conf_load(path, false, &c, &errs) != 0) {
		for (i = 0; i < errs.count; i++)
			fprintf(stderr, "kx_sim: template: %s\n", errs.lines[i]);
		c = NULL;
	}
	conf_errors_clear(&errs);
	unlink(path);
	return c;
}

static int topo_add(struct sim_fleet *f, uint32_t a, uint32_t b)
{
	struct sim_node *n = &f->n[a];
	uint32_t k[2] = { a, b };
	void *old;

	n->topo[n->ntopo] = b;
	return sim_map_put(f->slots, (const char *)k, sizeof(k), &n->topo[n->ntopo++], &old);
}

/* Star: backends 0..B-1 trust each other and every sensor; sensors trust only the backends.
 * Mesh: everyone trusts everyone. */
static int build_topology(struct sim_fleet *f)
{
	const struct sim_opts *o = f->o;
	size_t nb = o->mesh ? o->mesh : o->backends, a, b;

	for (a = 0; a < f->nn; a++) {
		struct sim_node *n = &f->n[a];

		n->idx = (uint32_t)a;
		if (o->mesh)
			snprintf(n->id, sizeof(n->id), "m%zu", a);
		else if (a < nb)
			snprintf(n->id, sizeof(n->id), "b%zu", a);
		else
			snprintf(n->id, sizeof(n->id), "s%zu", a - nb);
		n->topo = calloc(a < nb ? f->nn : nb + 1, sizeof(*n->topo));
		if (!n->topo)
			return -1;
		for (b = 0; b < (a < nb ? f->nn : nb); b++)
			if (b != a && topo_add(f, (uint32_t)a, (uint32_t)b) != 0)
				return -1;
	}
	return 0;
}

static int setup(struct sim_fleet *f)
{
	const struct sim_opts *o = f->o;
	struct sim_fault_params fp = o->fp;
	size_t i;

	f->nn = o->mesh ? o->mesh : (size_t)o->backends + o->sensors;
	if (!o->faults) {
		memset(&fp, 0, sizeof(fp));
		fp.delay_min_ms = fp.delay_max_ms = o->fp.delay_min_ms;
	}
	sim_rng_seed(&f->rng_net, o->seed, 2);
	f->tmpl = load_template(o);
	f->n = calloc(f->nn, sizeof(*f->n));
	f->b = sim_broker_new(f->nn);
	f->q = sim_sched_new();
	f->nonces = sim_map_new();
	f->slots = sim_map_new();
	if (!f->tmpl || !f->n || !f->b || !f->q || !f->nonces || !f->slots ||
	    sim_fault_plan_make(o->seed, &fp, f->nn, &f->plan) != 0 || build_topology(f) != 0)
		return -1;
	for (i = 0; i < f->nn; i++)
		if (sim_node_init_(f, &f->n[i]) != 0)
			return -1;
	f->broker_up = true;
	f->keys_dirty = true;
	for (i = 0; i < f->nn; i++)
		if (sim_push_(f, sim_rng_below(&f->rng_net, o->start_spread_ms + 1), EV_NODE_START, (uint32_t)i, 0,
			      NULL) != 0)
			return -1;
	for (i = 0; i < f->plan->nev; i++)
		if (sim_push_(f, f->plan->ev[i].at, EV_FAULT, (uint32_t)i, 0, NULL) != 0)
			return -1;
	return sim_push_(f, SIM_CHECK_MS, EV_CHECK, 0, 0, NULL);
}

static void free_ev(struct sim_ev *ev)
{
	if (ev->kind == EV_DELIVER)
		sim_msg_free(ev->data);
	else if (ev->kind == EV_UPLINK)
		sim_pkt_free_(ev->data);
}

static void teardown(struct sim_fleet *f)
{
	size_t i;

	sim_sched_free(f->q, free_ev);
	for (i = 0; f->n && i < f->nn; i++)
		sim_node_free_(&f->n[i]);
	free(f->n);
	sim_broker_free(f->b);
	sim_map_free(f->nonces, NULL);
	sim_map_free(f->slots, NULL);
	sim_fault_plan_free(f->plan);
	conf_free(f->tmpl);
}

static void broker_restart(struct sim_fleet *f, const struct sim_fault_ev *e)
{
	size_t i;

	sim_trace_(f, "BROKER RESTART (%s retained), down %u ms", e->keep_retained ? "keeps" : "loses", e->down_ms);
	for (i = 0; i < f->nn; i++) /* every node sees its connection go */
		if (f->n[i].conn != CONN_DOWN)
			sim_push_(f, f->now + sim_rng_range(&f->rng_net, 10, 1000), EV_CONN_LOST, (uint32_t)i,
				  f->n[i].conn_gen, NULL);
	sim_broker_restart(f->b, e->keep_retained);
	f->broker_up = false;
	sim_push_(f, f->now + e->down_ms, EV_BROKER_UP, 0, 0, NULL);
}

static void on_fault(struct sim_fleet *f, const struct sim_fault_ev *e)
{
	struct sim_node *n = &f->n[e->node];

	switch (e->kind) {
	case SF_BROKER_RESTART:
		broker_restart(f, e);
		break;
	case SF_NODE_CRASH:
		if (e->clean)
			sim_node_stop_(f, n, e->down_ms);
		else
			sim_node_crash_(f, n, e->host, e->down_ms);
		break;
	case SF_CONN_DROP:
		if (n->conn == CONN_UP) {
			sim_trace_(f, "%s connection CUT", n->id);
			sim_net_cut_(f, n, false);
		}
		break;
	case SF_RELOAD_REMOVE:
	case SF_RELOAD_ADD:
		sim_node_reload_(f, n, e->kind == SF_RELOAD_ADD, e->peer);
		break;
	}
}

/* The heap one node's core holds (peers, key ring, queues): what freeing it gives back. Ends that
 * node; only at the end of a scale run. */
static size_t core_bytes(struct sim_node *n)
{
	size_t before = mallinfo2().uordblks, after;

	kx_core_free(n->core);
	n->core = NULL;
	after = mallinfo2().uordblks;
	return before > after ? before - after : 0;
}

/* Scale mode: after the fleet is keyed, measure `rounds` rotation intervals of broker traffic. */
static void measure(struct sim_fleet *f)
{
	struct sim_broker_stats st;
	struct sim_result *r = f->r;

	if (!f->measuring) {
		struct mallinfo2 mi = mallinfo2();

		r->heap_bytes = mi.uordblks;
		f->measuring = true;
		f->round_start = f->now;
		sim_broker_get_stats(f->b, &f->round_base);
		return;
	}
	if (f->now < f->round_start + f->o->rounds * 1000ull * f->o->interval_s)
		return;
	sim_broker_get_stats(f->b, &st);
	r->round_ms = (f->now - f->round_start) / f->o->rounds;
	r->round_msgs_in = (st.msgs_in - f->round_base.msgs_in) / f->o->rounds;
	r->round_msgs_out = (st.msgs_out - f->round_base.msgs_out) / f->o->rounds;
	r->round_bytes_in = (st.bytes_in - f->round_base.bytes_in) / f->o->rounds;
	r->round_bytes_out = (st.bytes_out - f->round_base.bytes_out) / f->o->rounds;
	r->core_first = core_bytes(&f->n[0]);
	r->core_last = core_bytes(&f->n[f->nn - 1]);
	f->done = true;
}

/* The keyed check, every SIM_CHECK_MS. */
static void on_check(struct sim_fleet *f)
{
	const uint64_t quiet = f->plan->p.faults_end_ms, settle = 1500ull * f->o->interval_s;
	struct sim_result *r = f->r;
	size_t bad;

	/* Key rings only change in the calls that say so (KEYS_CHANGED, ACTIVATED, start, crash,
	 * reload); a full pass every 2 s covers expiry. Key lookups are linear in the key ring. */
	if (f->keys_dirty || f->now >= f->last_full_check + 2000) {
		f->last_unkeyed = sim_check_unkeyed_(f, false);
		f->keys_dirty = false;
		f->last_full_check = f->now;
	}
	bad = f->last_unkeyed;
	if (f->o->rounds && f->now % 5000 == 0) /* the scale benchmark's progress */
		fprintf(stderr, "kx_sim: %llu s simulated, %llu events, %zu pairs unkeyed\n",
			(unsigned long long)(f->now / 1000), (unsigned long long)r->events, bad);

	sim_push_(f, f->now + SIM_CHECK_MS, EV_CHECK, 0, 0, NULL);
	if (!bad && !r->cold_keyed_ms) {
		r->cold_keyed_ms = f->now;
		sim_sabotage_keyed_(f);
	}
	if (f->now < quiet)
		return;
	if (!r->quiet_keyed_ms) {
		if (!bad) {
			r->quiet_keyed_ms = f->now;
			sim_trace_(f, "fleet keyed (%zu pairs)", sim_check_pairs_(f));
		} else if (f->now > quiet + f->o->bound_ms) {
			fprintf(stderr, "kx_sim: seed %llu: %zu pairs unkeyed at %llu ms:\n",
				(unsigned long long)f->o->seed, bad, (unsigned long long)f->now);
			sim_check_unkeyed_(f, true);
			sim_violation_(f, "keyed: %zu trusting pairs not keyed %llu ms after the faults ended", bad,
				       (unsigned long long)f->o->bound_ms);
		}
		return;
	}
	if (f->o->rounds) {
		measure(f);
		return;
	}
	/* Once keyed with no faults, a pair may still fall out for a while (an epoch whose
	 * announcement a peer lost during the faults is activated at the activation deadline; the
	 * peer's next announcement makes it re-issued), but never for longer than the bound; the run
	 * ends keyed. */
	if (!bad) {
		if (f->unkeyed_since) {
			sim_trace_(f, "fleet keyed again after %llu ms", (unsigned long long)(f->now - f->unkeyed_since));
			if (f->now - f->unkeyed_since > r->relapse_ms)
				r->relapse_ms = f->now - f->unkeyed_since;
		}
		f->unkeyed_since = 0;
	} else if (!f->unkeyed_since) {
		f->unkeyed_since = f->now;
		sim_trace_(f, "fleet fell out of keyed state (%zu pairs)", bad);
	} else if (f->now - f->unkeyed_since > f->o->bound_ms) {
		fprintf(stderr, "kx_sim: seed %llu: fell out of keyed state:\n", (unsigned long long)f->o->seed);
		sim_check_unkeyed_(f, true);
		sim_violation_(f, "keyed: %zu pairs unkeyed for %llu ms after the fleet was keyed with no faults", bad,
			       (unsigned long long)f->o->bound_ms);
	}
	if (f->now >= r->quiet_keyed_ms + settle && !bad)
		f->done = true;
}

static void dispatch(struct sim_fleet *f, struct sim_ev *ev)
{
	struct sim_node *n = &f->n[ev->node];

	switch ((enum sim_ev_kind)ev->kind) {
	case EV_TIMER:
		sim_node_tick_(f, n, ev->gen);
		break;
	case EV_FAULT:
		on_fault(f, &f->plan->ev[ev->node]);
		break;
	case EV_BROKER_UP:
		sim_trace_(f, "broker up");
		f->broker_up = true;
		break;
	case EV_NODE_START:
		sim_node_start_(f, n);
		break;
	case EV_SEAL:
		sim_node_seal_(f, n, ev->gen);
		break;
	case EV_CHECK:
		on_check(f);
		break;
	default:
		sim_net_on_event_(f, ev); /* owns ev->data */
		return;
	}
}

int sim_run(const struct sim_opts *o, struct sim_result *r)
{
	struct sim_fleet f = { .o = o, .r = r, .trace = o->trace ? stderr : NULL };
	struct sim_broker_stats st;
	struct sim_ev ev;
	uint64_t stop;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	r->ok = true;
	if (setup(&f) != 0) {
		fprintf(stderr, "kx_sim: setup failed\n");
		goto out;
	}
	if (f.trace)
		sim_fault_plan_print(f.plan, f.trace);
	r->heap_base = mallinfo2().uordblks;
	stop = o->max_ms ? o->max_ms : f.plan->p.faults_end_ms + 2 * o->bound_ms + 3000ull * o->interval_s;
	while (!f.done && sim_sched_pop(f.q, &ev)) {
		f.now = ev.at;
		if (f.now > stop) {
			free_ev(&ev);
			sim_violation_(&f, "run did not finish within %llu ms of simulated time", (unsigned long long)stop);
			break;
		}
		r->events++;
		dispatch(&f, &ev);
	}
	if (r->ok)
		sim_check_final_(&f);
	r->end_ms = f.now;
	r->nodes = f.nn;
	r->pairs = sim_check_pairs_(&f);
	sim_broker_get_stats(f.b, &st);
	r->msgs_in = st.msgs_in;
	r->msgs_out = st.msgs_out;
	r->bytes_in = st.bytes_in;
	r->bytes_out = st.bytes_out;
	rc = 0;
out:
	teardown(&f);
	return rc;
}
