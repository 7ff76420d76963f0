/* sim_net.c - the links between the nodes and the simulated broker. Node to broker: in order (one
 * TCP connection), after the link delay; what reaches the broker on a connection it no longer has
 * is lost. Broker to node: each queued message gets its fate from the fault plan (lost,
 * duplicated, delayed, reordered); a loss can also cut the connection, as on TCP. A connection is
 * identified by the broker's generation: whatever was in flight on an older one is dropped.
 * Reconnection backs off as control.c does (1 s doubling to 30 s, with jitter). */
#include <stdlib.h>

#include "sim_fleet_internal.h"

void sim_pkt_free_(struct sim_pkt *p)
{
	size_t i;

	if (!p)
		return;
	sim_msg_free(p->msg);
	for (i = 0; p->filters && i < p->nfilters; i++)
		free(p->filters[i]);
	free(p->filters);
	free(p);
}

static uint64_t link_delay(struct sim_fleet *f)
{
	const struct sim_fault_params *p = &f->plan->p;

	if (f->now >= p->faults_end_ms)
		return p->delay_min_ms;
	return sim_rng_range(&f->rng_net, p->delay_min_ms, p->delay_max_ms);
}

void sim_net_connect_start_(struct sim_fleet *f, struct sim_node *n)
{
	struct kx_event ev = { .type = KX_EV_CONNECTING };

	if (!n->core || n->conn != CONN_DOWN)
		return;
	n->conn = CONN_CONNECTING; /* first: the event's actions must not start another attempt */
	sim_node_handle_(f, n, &ev); /* the will of this connection (SET_WILL) */
	if (!n->core || n->conn != CONN_CONNECTING)
		return;
	sim_push_(f, f->now + link_delay(f), EV_CONNECT, n->idx, ++n->attempt, NULL);
}

static void reconnect_later(struct sim_fleet *f, struct sim_node *n)
{
	uint64_t d = n->backoff_ms + sim_rng_below(&n->rng_misc, n->backoff_ms / 2 + 1);

	n->conn = CONN_DOWN;
	n->backoff_ms = n->backoff_ms >= 15000 ? 30000 : n->backoff_ms * 2;
	sim_push_(f, f->now + d, EV_RECONNECT, n->idx, ++n->attempt, NULL);
}

int sim_net_send_(struct sim_fleet *f, struct sim_node *n, struct sim_pkt *p)
{
	uint64_t at;

	if (n->conn != CONN_UP) {
		sim_pkt_free_(p);
		return -1;
	}
	at = f->now + link_delay(f);
	if (at < n->up_last)
		at = n->up_last;
	n->up_last = at;
	if (sim_push_(f, at, EV_UPLINK, n->idx, n->conn_gen, p) != 0) {
		sim_pkt_free_(p);
		return -1;
	}
	return 0;
}

void sim_net_disconnect_(struct sim_fleet *f, struct sim_node *n)
{
	struct sim_pkt *p;

	if (n->conn != CONN_UP)
		return;
	p = calloc(1, sizeof(*p));
	if (!p) {
		sim_violation_(f, "out of memory");
		return;
	}
	p->type = PKT_DISCONNECT;
	(void)sim_net_send_(f, n, p);
	n->conn = CONN_DOWN; /* the process is about to end: sim_node_crash_ cuts nothing more */
}

void sim_net_cut_(struct sim_fleet *f, struct sim_node *n, bool will_now)
{
	size_t c = n->idx;

	if (n->conn == CONN_DOWN)
		return;
	if (sim_broker_connected(f->b, c) && sim_broker_gen(f->b, c) == n->conn_gen) {
		sim_broker_drop(f->b, c);
		if (will_now) {
			sim_broker_will_due(f->b, c, n->conn_gen);
			sim_net_flush_(f);
		} else {
			sim_push_(f, f->now + 1500ull * f->o->keepalive_s, EV_WILL_DUE, n->idx, n->conn_gen, NULL);
		}
	}
	sim_push_(f, f->now + sim_rng_range(&f->rng_net, 50, 2000), EV_CONN_LOST, n->idx, n->conn_gen, NULL);
}

static void deliver_copy(struct sim_fleet *f, size_t c, struct sim_msg *m, uint64_t d)
{
	struct sim_node *n = &f->n[c];
	uint64_t at = f->now + d;

	if (d <= f->plan->p.delay_max_ms) { /* in order, unless the plan reordered this one */
		if (at < n->down_last)
			at = n->down_last;
		n->down_last = at;
	}
	if (sim_push_(f, at, EV_DELIVER, (uint32_t)c, sim_broker_gen(f->b, c), m) != 0)
		sim_msg_free(m);
}

static void link_one(struct sim_fleet *f, size_t c, struct sim_msg *m)
{
	uint64_t d[2];
	unsigned copies = sim_fault_link(f->plan, &f->rng_net, f->now, d);
	struct sim_msg *dup;

	if (copies == 0) {
		sim_trace_(f, "net: LOST %s -> %s", m->topic, f->n[c].id);
		sim_msg_free(m);
		if (f->plan->p.loss_resets)
			sim_net_cut_(f, &f->n[c], false);
		return;
	}
	if (copies == 2) {
		dup = sim_msg_new(m->topic, m->payload, m->len, m->retain);
		if (dup) {
			sim_trace_(f, "net: DUPLICATED %s -> %s", m->topic, f->n[c].id);
			deliver_copy(f, c, dup, d[1]);
		}
	}
	deliver_copy(f, c, m, d[0]);
}

void sim_net_flush_(struct sim_fleet *f)
{
	size_t c;
	struct sim_msg *m;

	while (sim_broker_next_ready(f->b, &c))
		while ((m = sim_broker_pop(f->b, c)) != NULL)
			link_one(f, c, m);
}

static void on_connect(struct sim_fleet *f, struct sim_node *n, uint64_t gen)
{
	uint64_t g;

	if (!n->core || gen != n->attempt || n->conn != CONN_CONNECTING)
		return;
	if (!f->broker_up) {
		sim_trace_(f, "%s connect refused (broker down)", n->id);
		reconnect_later(f, n);
		return;
	}
	g = sim_broker_connect(f->b, n->idx, n->will);
	if (!g) {
		sim_violation_(f, "out of memory");
		return;
	}
	n->conn_gen = g;
	n->up_last = n->down_last = f->now;
	sim_net_flush_(f); /* a takeover publishes the previous connection's will */
	sim_push_(f, f->now + link_delay(f), EV_CONNACK, n->idx, g, NULL);
}

static void on_connack(struct sim_fleet *f, struct sim_node *n, uint64_t gen)
{
	struct kx_event ev = { .type = KX_EV_UP };

	if (!n->core || n->conn != CONN_CONNECTING || gen != n->conn_gen)
		return;
	if (!sim_broker_connected(f->b, n->idx) || sim_broker_gen(f->b, n->idx) != gen)
		return; /* lost before CONNACK: EV_CONN_LOST follows */
	n->conn = CONN_UP;
	n->backoff_ms = 1000;
	sim_trace_(f, "%s UP (connection %llu)", n->id, (unsigned long long)gen);
	sim_node_handle_(f, n, &ev);
}

static void on_lost(struct sim_fleet *f, struct sim_node *n, uint64_t gen)
{
	struct kx_event ev = { .type = KX_EV_DOWN };
	bool was_up = n->conn == CONN_UP;

	if (!n->core || gen != n->conn_gen || n->conn == CONN_DOWN)
		return;
	sim_trace_(f, "%s DOWN (connection %llu)", n->id, (unsigned long long)gen);
	reconnect_later(f, n);
	if (was_up)
		sim_node_handle_(f, n, &ev);
}

static void on_uplink(struct sim_fleet *f, uint32_t c, uint64_t gen, struct sim_pkt *p)
{
	size_t i;
	int rc = 0;

	if (!f->broker_up || !sim_broker_connected(f->b, c) || sim_broker_gen(f->b, c) != gen) {
		sim_pkt_free_(p);
		return;
	}
	if (p->type == PKT_DISCONNECT) {
		sim_broker_disconnect(f->b, c);
		sim_pkt_free_(p);
		return;
	}
	if (p->type == PKT_PUBLISH)
		rc = sim_broker_publish(f->b, c, p->msg->topic, p->msg->payload, p->msg->len, p->msg->retain);
	for (i = 0; rc == 0 && i < p->nfilters; i++)
		rc = p->type == PKT_SUBSCRIBE ? sim_broker_subscribe(f->b, c, p->filters[i])
					      : sim_broker_unsubscribe(f->b, c, p->filters[i]);
	if (rc != 0)
		sim_violation_(f, "%s sent the broker an invalid topic or filter (%s)", f->n[c].id,
			       p->msg ? p->msg->topic : p->filters[i - 1]);
	sim_pkt_free_(p);
	sim_net_flush_(f);
}

static void on_deliver(struct sim_fleet *f, struct sim_node *n, uint64_t gen, struct sim_msg *m)
{
	struct kx_event ev = { .type = KX_EV_MESSAGE, .topic = m->topic, .payload = m->payload, .len = m->len,
			       .retained = m->retain };

	if (n->core && n->conn == CONN_UP && gen == n->conn_gen && !sim_sabotage_muted_(f, n)) {
		sim_trace_(f, "%s <- %s (%zu B%s)", n->id, m->topic, m->len, m->retain ? ", retained" : "");
		sim_node_handle_(f, n, &ev);
	}
	sim_msg_free(m);
}

void sim_net_on_event_(struct sim_fleet *f, const struct sim_ev *ev)
{
	struct sim_node *n = &f->n[ev->node];

	switch (ev->kind) {
	case EV_CONNECT:
		on_connect(f, n, ev->gen);
		break;
	case EV_CONNACK:
		on_connack(f, n, ev->gen);
		break;
	case EV_CONN_LOST:
		on_lost(f, n, ev->gen);
		break;
	case EV_RECONNECT:
		if (n->core && ev->gen == n->attempt && n->conn == CONN_DOWN)
			sim_net_connect_start_(f, n);
		break;
	case EV_WILL_DUE:
		if (sim_broker_will_due(f->b, ev->node, ev->gen))
			sim_trace_(f, "broker: will of %s published", n->id);
		sim_net_flush_(f);
		break;
	case EV_UPLINK:
		on_uplink(f, ev->node, ev->gen, ev->data);
		break;
	case EV_DELIVER:
		on_deliver(f, n, ev->gen, ev->data);
		break;
	default:
		break;
	}
}
