/* test_sim_broker.c - the fleet simulation's own parts, tested without the key-exchange core: the
 * simulated broker (matching, retained messages, clean sessions, queues, wills, restarts), the
 * event queue's order, the random streams and the fault plan's determinism. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sim_broker.h"
#include "sim_fault.h"
#include "sim_map.h"
#include "sim_rng.h"
#include "sim_sched.h"

/* Pops everything queued for c into a "topic=payload[r]" list separated by spaces. */
static void drain(struct sim_broker *b, size_t c, char *out, size_t cap)
{
	struct sim_msg *m;
	size_t n = 0;

	out[0] = '\0';
	while ((m = sim_broker_pop(b, c)) != NULL) {
		int w = snprintf(out + n, cap - n, "%s%s=%.*s%s", n ? " " : "", m->topic, (int)m->len,
				 (const char *)m->payload, m->retain ? "[r]" : "");

		if (w > 0 && (size_t)w < cap - n)
			n += (size_t)w;
		sim_msg_free(m);
	}
}

static int pub(struct sim_broker *b, size_t c, const char *topic, const char *payload, bool retain)
{
	return sim_broker_publish(b, c, topic, (const uint8_t *)payload, strlen(payload), retain);
}

static void test_matching(void)
{
	struct sim_broker *b = sim_broker_new(4);
	char got[512];

	CHECK(b != NULL);
	CHECK(sim_broker_connect(b, 0, NULL) == 1);
	CHECK(sim_broker_connect(b, 1, NULL) == 1);
	CHECK(sim_broker_connect(b, 2, NULL) == 1);
	CHECK_EQ(sim_broker_subscribe(b, 1, "p/kx/a/b"), 0);
	CHECK_EQ(sim_broker_subscribe(b, 1, "p/ack/a/+"), 0);
	CHECK_EQ(sim_broker_subscribe(b, 2, "p/#"), 0);
	CHECK_EQ(sim_broker_subscribe(b, 2, "p/+/a/+"), 0);
	CHECK_EQ(sim_broker_subscribe(b, 2, "p/a+"), -1); /* invalid filter */
	CHECK_EQ(pub(b, 0, "p/kx/a/b", "1", false), 0);
	CHECK_EQ(pub(b, 0, "p/ack/a/x", "2", false), 0);
	CHECK_EQ(pub(b, 0, "p/ack/a/x/y", "3", false), 0); /* + is one level */
	CHECK_EQ(pub(b, 0, "q/kx/a/b", "4", false), 0);
	CHECK_EQ(pub(b, 0, "p/+", "5", false), -1); /* not a topic name */
	drain(b, 1, got, sizeof(got));
	CHECK(strcmp(got, "p/kx/a/b=1 p/ack/a/x=2") == 0);
	drain(b, 2, got, sizeof(got)); /* two matching filters: one copy each */
	CHECK(strcmp(got, "p/kx/a/b=1 p/ack/a/x=2 p/ack/a/x/y=3") == 0);
	CHECK_EQ(sim_broker_queued(b, 0), 0);
	CHECK_EQ(sim_broker_unsubscribe(b, 2, "p/#"), 0);
	CHECK_EQ(pub(b, 0, "p/kx/z/b", "6", false), 0);
	CHECK_EQ(pub(b, 0, "p/kx/a/b", "7", false), 0);
	drain(b, 2, got, sizeof(got));
	CHECK(strcmp(got, "p/kx/a/b=7") == 0);
	CHECK_EQ(pub(b, 3, "p/kx/a/b", "8", false), -1); /* not connected */
	sim_broker_free(b);
}

static void test_retained(void)
{
	struct sim_broker *b = sim_broker_new(3);
	char got[512];

	sim_broker_connect(b, 0, NULL);
	sim_broker_connect(b, 1, NULL);
	CHECK_EQ(pub(b, 0, "p/kx/a/b", "old", true), 0);
	CHECK_EQ(pub(b, 0, "p/kx/a/b", "new", true), 0);
	CHECK_EQ(pub(b, 0, "p/kx/a/c", "c", true), 0);
	CHECK_EQ(pub(b, 0, "p/presence/b", "on", true), 0);
	CHECK_EQ(sim_broker_retained_count(b), 3);
	CHECK_EQ(sim_broker_subscribe(b, 1, "p/kx/a/b"), 0);
	drain(b, 1, got, sizeof(got));
	CHECK(strcmp(got, "p/kx/a/b=new[r]") == 0);
	CHECK_EQ(sim_broker_subscribe(b, 1, "p/kx/a/+"), 0);
	drain(b, 1, got, sizeof(got));
	CHECK(strcmp(got, "p/kx/a/b=new[r] p/kx/a/c=c[r]") == 0);
	CHECK_EQ(sim_broker_subscribe(b, 1, "p/kx/a/b"), 0); /* again: the retained copy again */
	drain(b, 1, got, sizeof(got));
	CHECK(strcmp(got, "p/kx/a/b=new[r]") == 0);
	CHECK_EQ(sim_broker_subscribe(b, 1, "+/presence/#"), 0);
	drain(b, 1, got, sizeof(got));
	CHECK(strcmp(got, "p/presence/b=on[r]") == 0);
	/* Live subscribers get RETAIN clear (MQTT 3.1.1 §3.3.1.3). */
	CHECK_EQ(pub(b, 0, "p/kx/a/b", "newer", true), 0);
	drain(b, 1, got, sizeof(got));
	CHECK(strcmp(got, "p/kx/a/b=newer") == 0);
	/* An empty retained message clears the topic and still reaches subscribers. */
	CHECK_EQ(pub(b, 0, "p/kx/a/b", "", true), 0);
	drain(b, 1, got, sizeof(got));
	CHECK(strcmp(got, "p/kx/a/b=") == 0);
	CHECK(sim_broker_retained(b, "p/kx/a/b") == NULL);
	CHECK_EQ(sim_broker_retained_count(b), 2);
	CHECK_EQ(sim_broker_subscribe(b, 1, "p/kx/a/+"), 0);
	drain(b, 1, got, sizeof(got));
	CHECK(strcmp(got, "p/kx/a/c=c[r]") == 0);
	sim_broker_free(b);
}

static void test_sessions_and_wills(void)
{
	struct sim_broker *b = sim_broker_new(3);
	struct sim_msg *will = sim_msg_new("p/presence/a", (const uint8_t *)"off", 3, true);
	char got[512];
	uint64_t g;

	sim_broker_connect(b, 0, NULL);
	CHECK_EQ(sim_broker_connect(b, 1, will), 1);
	CHECK_EQ(sim_broker_subscribe(b, 0, "p/presence/a"), 0);
	CHECK_EQ(sim_broker_subscribe(b, 1, "x/y"), 0);
	CHECK_EQ(pub(b, 0, "x/y", "q", false), 0);
	CHECK_EQ(sim_broker_queued(b, 1), 1);
	/* Lost connection: queue and subscriptions gone, will pending until the keepalive bound. */
	sim_broker_drop(b, 1);
	CHECK(!sim_broker_connected(b, 1));
	CHECK_EQ(sim_broker_queued(b, 1), 0);
	CHECK_EQ(sim_broker_queued(b, 0), 0);
	CHECK_EQ(sim_broker_will_due(b, 1, 7), 0); /* another generation */
	CHECK_EQ(sim_broker_will_due(b, 1, 1), 1);
	drain(b, 0, got, sizeof(got));
	CHECK(strcmp(got, "p/presence/a=off") == 0);
	CHECK(sim_broker_retained(b, "p/presence/a") != NULL);
	CHECK_EQ(sim_broker_will_due(b, 1, 1), 0); /* once */
	/* Clean session: the subscription of the last connection is gone. */
	g = sim_broker_connect(b, 1, will);
	CHECK_EQ(g, 2);
	CHECK_EQ(pub(b, 0, "x/y", "q", false), 0);
	CHECK_EQ(sim_broker_queued(b, 1), 0);
	/* Takeover before the keepalive bound: the old will is published at the new CONNECT. */
	sim_broker_drop(b, 1);
	CHECK_EQ(sim_broker_connect(b, 1, NULL), 3);
	drain(b, 0, got, sizeof(got));
	CHECK(strcmp(got, "p/presence/a=off") == 0);
	CHECK_EQ(sim_broker_will_due(b, 1, 2), 0);
	/* Clean DISCONNECT discards the will. */
	sim_broker_disconnect(b, 1);
	CHECK_EQ(sim_broker_will_due(b, 1, 3), 0);
	sim_broker_connect(b, 1, will);
	sim_broker_drop(b, 1);
	/* A restart loses every connection and the wills with them. */
	sim_broker_restart(b, true);
	CHECK(!sim_broker_connected(b, 0));
	CHECK_EQ(sim_broker_will_due(b, 1, 4), 0);
	CHECK(sim_broker_retained(b, "p/presence/a") != NULL);
	sim_broker_restart(b, false);
	CHECK_EQ(sim_broker_retained_count(b), 0);
	CHECK_EQ(pub(b, 0, "x/y", "q", false), -1);
	sim_msg_free(will);
	sim_broker_free(b);
}

static void test_ready_and_stats(void)
{
	struct sim_broker *b = sim_broker_new(3);
	struct sim_broker_stats st;
	size_t c, order[3] = { 0 }, n = 0;
	struct sim_msg *m;

	sim_broker_connect(b, 0, NULL);
	sim_broker_connect(b, 1, NULL);
	sim_broker_connect(b, 2, NULL);
	sim_broker_subscribe(b, 2, "t/2");
	sim_broker_subscribe(b, 1, "t/1");
	pub(b, 0, "t/2", "ab", false);
	pub(b, 0, "t/1", "ab", false);
	pub(b, 0, "t/2", "ab", false);
	while (n < 3 && sim_broker_next_ready(b, &c)) {
		order[n++] = c;
		while ((m = sim_broker_pop(b, c)) != NULL)
			sim_msg_free(m);
	}
	CHECK_EQ(n, 2);
	CHECK_EQ(order[0], 2);
	CHECK_EQ(order[1], 1);
	sim_broker_get_stats(b, &st);
	CHECK_EQ(st.msgs_in, 3);
	CHECK_EQ(st.msgs_out, 3);
	/* PUBLISH QoS 1 "t/2", 2 bytes: 1 + 1 + (2 + 3 + 2 + 2) = 11 */
	CHECK_EQ(st.bytes_in, 33);
	CHECK_EQ(st.bytes_out, 33);
	sim_broker_free(b);
}

static void test_scale_index(void)
{
	/* 2,000 clients on exact and "/+" filters: routing uses the indexes, each message once. */
	enum { N = 2000 };
	struct sim_broker *b = sim_broker_new(N);
	char t[64];
	size_t i, total = 0;

	for (i = 0; i < N; i++) {
		sim_broker_connect(b, i, NULL);
		snprintf(t, sizeof(t), "p/ack/n%zu/+", i);
		CHECK_EQ(sim_broker_subscribe(b, i, t), 0);
		CHECK_EQ(sim_broker_subscribe(b, i, "p/presence/b0"), 0);
	}
	for (i = 0; i < N; i++) {
		snprintf(t, sizeof(t), "p/ack/n%zu/b0", i);
		CHECK_EQ(pub(b, 0, t, "a", false), 0);
	}
	pub(b, 0, "p/presence/b0", "on", true);
	for (i = 0; i < N; i++)
		total += sim_broker_queued(b, i);
	CHECK_EQ(total, 2 * N);
	for (i = 0; i < N; i += 2)
		sim_broker_drop(b, i);
	CHECK_EQ(sim_broker_publish(b, SIM_BROKER_SELF, "p/presence/b0", (const uint8_t *)"on", 2, true), 0);
	total = 0;
	for (i = 0; i < N; i++)
		total += sim_broker_queued(b, i);
	CHECK_EQ(total, 2 * (N / 2) + N / 2);
	sim_broker_free(b);
}

static void test_sched(void)
{
	struct sim_sched *s = sim_sched_new();
	struct sim_ev ev;
	uint64_t at;
	int order[6] = { 0 }, n = 0;

	sim_sched_push(s, 30, 1, 0, 0, NULL);
	sim_sched_push(s, 10, 2, 0, 0, NULL);
	sim_sched_push(s, 30, 3, 0, 0, NULL); /* same time as kind 1: after it */
	sim_sched_push(s, 20, 4, 0, 0, NULL);
	CHECK(sim_sched_peek(s, &at) && at == 10);
	while (n < 6 && sim_sched_pop(s, &ev)) {
		order[n++] = ev.kind;
		if (ev.kind == 4)
			sim_sched_push(s, 5, 5, 0, 0, NULL); /* in the past: runs now, after those due now */
	}
	CHECK_EQ(n, 5);
	CHECK_EQ(order[0], 2);
	CHECK_EQ(order[1], 4);
	CHECK_EQ(order[2], 5);
	CHECK_EQ(order[3], 1);
	CHECK_EQ(order[4], 3);
	CHECK_EQ(sim_sched_now(s), 30);
	sim_sched_free(s, NULL);
}

static void test_rng_and_plan(void)
{
	struct sim_rng a, b, c;
	struct sim_fault_params p;
	struct sim_fault_plan *x = NULL, *y = NULL;
	uint64_t d[2], i;
	unsigned lost = 0, dup = 0;

	sim_rng_seed(&a, 42, 0);
	sim_rng_seed(&b, 42, 0);
	sim_rng_seed(&c, 42, 1);
	CHECK(sim_rng_next(&a) == sim_rng_next(&b));
	CHECK(sim_rng_next(&a) != sim_rng_next(&c));
	for (i = 0; i < 1000; i++)
		CHECK(sim_rng_range(&a, 5, 7) >= 5 && sim_rng_range(&a, 5, 7) <= 7);
	sim_fault_defaults(&p, 60000, 10000);
	p.reloads = 3;
	CHECK_EQ(sim_fault_plan_make(7, &p, 5, &x), 0);
	CHECK_EQ(sim_fault_plan_make(7, &p, 5, &y), 0);
	CHECK(x->nev == y->nev && memcmp(x->ev, y->ev, x->nev * sizeof(*x->ev)) == 0);
	CHECK(memcmp(x->skew_ms, y->skew_ms, 5 * sizeof(*x->skew_ms)) == 0);
	for (i = 0; i < x->nev; i++) {
		CHECK(x->ev[i].at + x->ev[i].down_ms < p.faults_end_ms);
		CHECK(i == 0 || x->ev[i - 1].at <= x->ev[i].at);
		CHECK(x->ev[i].node < 5);
	}
	for (i = 0; i < 5; i++)
		CHECK(x->skew_ms[i] >= -5000 && x->skew_ms[i] <= 5000);
	for (i = 0; i < 100000; i++) {
		unsigned n = sim_fault_link(x, &a, 1000, d);

		lost += n == 0;
		dup += n == 2;
	}
	CHECK(lost > 1000 && lost < 3000); /* 2% */
	CHECK(dup > 1000 && dup < 3000);
	CHECK_EQ(sim_fault_link(x, &a, 60000, d), 1); /* quiet: one copy, base delay */
	CHECK_EQ(d[0], p.delay_min_ms);
	sim_fault_plan_free(x);
	sim_fault_plan_free(y);
}

int main(void)
{
	test_matching();
	test_retained();
	test_sessions_and_wills();
	test_ready_and_stats();
	test_scale_index();
	test_sched();
	test_rng_and_plan();
	CHECK_DONE();
}
