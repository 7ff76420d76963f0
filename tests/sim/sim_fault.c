/* sim_fault.c - making and applying the fault plan. Timed faults are spread uniformly over
 * [1 s, faults_end_ms - their own duration), so every node is back and every broker up before the
 * quiet period starts. */
#include <stdio.h>
#include <stdlib.h>

#include "sim_fault.h"

void sim_fault_defaults(struct sim_fault_params *p, uint64_t faults_end_ms, uint32_t max_skew_ms)
{
	*p = (struct sim_fault_params){
		.loss_pm = 20,
		.dup_pm = 20,
		.reorder_pm = 50,
		.loss_resets = true,
		.delay_min_ms = 1,
		.delay_max_ms = 40,
		.reorder_ms = 500,
		.persist_fail_pm = 5,
		.faults_end_ms = faults_end_ms,
		.broker_restarts = 1,
		.crashes = 2,
		.drops = 2,
		.reloads = 1,
		.max_skew_ms = max_skew_ms,
	};
}

static int ev_cmp(const void *a, const void *b)
{
	const struct sim_fault_ev *x = a, *y = b;

	if (x->at != y->at)
		return x->at < y->at ? -1 : 1;
	/* Stable in generation order: the events were made with distinct (node, kind) rarely equal. */
	return x < y ? -1 : x > y;
}

/* A start time for a fault lasting `dur` ms that ends before the quiet period. */
static uint64_t fault_time(const struct sim_fault_params *p, struct sim_rng *r, uint64_t dur)
{
	uint64_t hi = p->faults_end_ms > dur + 1000 ? p->faults_end_ms - dur - 1 : 1000;

	return sim_rng_range(r, 1000, hi);
}

static void make_events(struct sim_fault_plan *pl, struct sim_rng *r)
{
	const struct sim_fault_params *p = &pl->p;
	size_t n = 0;
	unsigned i;

	for (i = 0; i < p->broker_restarts; i++) {
		uint32_t down = (uint32_t)sim_rng_range(r, 500, 10000);

		pl->ev[n++] = (struct sim_fault_ev){ .at = fault_time(p, r, down), .kind = SF_BROKER_RESTART,
						     .down_ms = down, .keep_retained = sim_rng_below(r, 2) };
	}
	for (i = 0; i < p->crashes; i++) {
		uint32_t down = (uint32_t)sim_rng_range(r, 100, 30000);

		pl->ev[n++] = (struct sim_fault_ev){ .at = fault_time(p, r, down), .kind = SF_NODE_CRASH,
						     .node = (uint32_t)sim_rng_below(r, pl->nodes),
						     .down_ms = down, .host = sim_rng_below(r, 2),
						     .clean = sim_rng_below(r, 3) == 0 };
	}
	for (i = 0; i < p->drops; i++)
		pl->ev[n++] = (struct sim_fault_ev){ .at = fault_time(p, r, 0), .kind = SF_CONN_DROP,
						     .node = (uint32_t)sim_rng_below(r, pl->nodes) };
	for (i = 0; i < p->reloads; i++) {
		uint32_t back = (uint32_t)sim_rng_range(r, 1000, 60000);
		bool readd = sim_rng_below(r, 2);
		struct sim_fault_ev rm = { .at = fault_time(p, r, readd ? back : 0), .kind = SF_RELOAD_REMOVE,
					   .node = (uint32_t)sim_rng_below(r, pl->nodes),
					   .peer = (uint32_t)sim_rng_next(r) };

		pl->ev[n++] = rm;
		if (readd)
			pl->ev[n++] = (struct sim_fault_ev){ .at = rm.at + back, .kind = SF_RELOAD_ADD, .node = rm.node };
	}
	pl->nev = n;
	qsort(pl->ev, n, sizeof(*pl->ev), ev_cmp);
}

int sim_fault_plan_make(uint64_t seed, const struct sim_fault_params *p, size_t nodes, struct sim_fault_plan **out)
{
	struct sim_fault_plan *pl = calloc(1, sizeof(*pl));
	size_t cap = (size_t)p->broker_restarts + p->crashes + p->drops + (size_t)2 * p->reloads;
	struct sim_rng r;
	size_t i;

	*out = NULL;
	if (!pl)
		return -1;
	pl->p = *p;
	pl->nodes = nodes;
	pl->ev = calloc(cap ? cap : 1, sizeof(*pl->ev));
	pl->skew_ms = calloc(nodes ? nodes : 1, sizeof(*pl->skew_ms));
	if (!pl->ev || !pl->skew_ms) {
		sim_fault_plan_free(pl);
		return -1;
	}
	sim_rng_seed(&r, seed, 1);
	for (i = 0; i < nodes; i++)
		pl->skew_ms[i] = (int64_t)sim_rng_range(&r, 0, p->max_skew_ms) - (int64_t)(p->max_skew_ms / 2);
	if (nodes)
		make_events(pl, &r);
	*out = pl;
	return 0;
}

void sim_fault_plan_free(struct sim_fault_plan *plan)
{
	if (!plan)
		return;
	free(plan->ev);
	free(plan->skew_ms);
	free(plan);
}

unsigned sim_fault_link(const struct sim_fault_plan *plan, struct sim_rng *rng, uint64_t now, uint64_t delays[2])
{
	const struct sim_fault_params *p = &plan->p;
	unsigned n = 1, i;

	if (now >= p->faults_end_ms) {
		delays[0] = p->delay_min_ms;
		return 1;
	}
	if (sim_rng_permille(rng, p->loss_pm))
		return 0;
	if (sim_rng_permille(rng, p->dup_pm))
		n = 2;
	for (i = 0; i < n; i++) {
		delays[i] = sim_rng_range(rng, p->delay_min_ms, p->delay_max_ms);
		if (sim_rng_permille(rng, p->reorder_pm))
			delays[i] += sim_rng_range(rng, 1, p->reorder_ms);
	}
	return n;
}

bool sim_fault_persist_fails(const struct sim_fault_plan *plan, struct sim_rng *rng, uint64_t now)
{
	return now < plan->p.faults_end_ms && sim_rng_permille(rng, plan->p.persist_fail_pm);
}

static const char *kind_name(enum sim_fault_kind k)
{
	switch (k) {
	case SF_BROKER_RESTART:
		return "broker-restart";
	case SF_NODE_CRASH:
		return "node-crash";
	case SF_CONN_DROP:
		return "conn-drop";
	case SF_RELOAD_REMOVE:
		return "reload-remove";
	case SF_RELOAD_ADD:
		return "reload-add";
	}
	return "?";
}

void sim_fault_plan_print(const struct sim_fault_plan *plan, void *file)
{
	FILE *f = file;
	size_t i;

	fprintf(f, "plan: per mille: loss %u dup %u reorder %u (loss %s), delay %u..%u ms, faults end at %llu ms\n",
		plan->p.loss_pm, plan->p.dup_pm, plan->p.reorder_pm,
		plan->p.loss_resets ? "resets" : "pure", plan->p.delay_min_ms, plan->p.delay_max_ms,
		(unsigned long long)plan->p.faults_end_ms);
	for (i = 0; i < plan->nev; i++) {
		const struct sim_fault_ev *e = &plan->ev[i];

		fprintf(f, "plan: %8llu ms %-14s node %u peer#%u down %u ms%s%s\n", (unsigned long long)e->at,
			kind_name(e->kind), e->node, e->peer, e->down_ms,
			e->kind == SF_BROKER_RESTART ? (e->keep_retained ? " keep-retained" : " lose-retained") : "",
			e->kind == SF_NODE_CRASH ? (e->clean ? " clean-stop" : e->host ? " host" : " process") : "");
	}
}
