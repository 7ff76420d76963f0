/* test_devstate.c - per-device receive state across reconnects: shared by client id, kept (bounded
 * in time and number) after every session, clean or not, reset of what belonged to the broker's
 * session, the pending redelivery map, subscriptions and their start times, copies for
 * overlapping subscriptions and retained repeats (PROTOCOL.md §6.2, §6.3). */
#include <string.h>

#include "check.h"
#include "devstate.h"
#include "keyring.h"

#define ID(s) (const uint8_t *)(s), strlen(s)
#define F(s)  (const uint8_t *)(s), strlen(s)

static const uint8_t k1[ENV_KEY_ID_LEN] = "KEYID-01", k2[ENV_KEY_ID_LEN] = "KEYID-02";

static void test_sharing_and_lifetime(void)
{
	struct devstate_table *t = devstate_table_new();
	struct devstate *a, *b, *c;

	CHECK(t != NULL);
	a = devstate_attach(t, ID("dev-1"), 100);
	b = devstate_attach(t, ID("dev-1"), 100);
	CHECK(a != NULL && a == b); /* one state per client id (a takeover shares it) */
	CHECK_EQ(devstate_count(t), 1);
	devstate_detach(t, b, true, 1000, 5000, 1000);
	devstate_detach(t, a, true, 1000, 5000, 1000); /* kept until 6000 */
	CHECK_EQ(devstate_count(t), 1);
	c = devstate_attach(t, ID("dev-1"), 200);
	CHECK(c == a); /* the reconnect finds it again */
	devstate_detach(t, c, true, 2000, 5000, 1000);
	devstate_gc(t, NULL, 6999);
	CHECK_EQ(devstate_count(t), 1);
	devstate_gc(t, NULL, 7000);
	CHECK_EQ(devstate_count(t), 0);
	/* A clean session keeps the state (its windows); the broker's session part goes on reset. */
	a = devstate_attach(t, ID("dev-2"), 100);
	devstate_pending_put(a, 7, k1, 42);
	CHECK_EQ(devstate_subscribe(a, F("x/#"), 100), 0);
	devstate_detach(t, a, false, 0, 100000, 1000); /* clean, but holds something: kept */
	b = devstate_attach(t, ID("dev-2"), 300);
	CHECK(b == a);
	CHECK(devstate_pending_match(b, 7, k1, 42));
	devstate_session_reset(b);
	CHECK(!devstate_pending_match(b, 7, k1, 42));
	{
		struct devstate_match m;
		devstate_match(b, F("x/1"), &m);
		CHECK(m.start_ms == 300 && m.count == 1); /* no subscription known: the connection's start */
	}
	devstate_detach(t, b, true, 0, 100000, 1000);
	CHECK_EQ(devstate_count(t), 1);
	devstate_gc(t, NULL, 100000);
	/* Nothing to protect and no persistent session: dropped at once (a stream of client ids that
	 * never receive a sealed message costs nothing); a persistent one keeps its subscriptions. */
	a = devstate_attach(t, ID("dev-2b"), 100);
	CHECK_EQ(devstate_subscribe(a, F("x/#"), 100), 0);
	devstate_detach(t, a, false, 0, 100000, 1000);
	CHECK_EQ(devstate_count(t), 0);
	a = devstate_attach(t, ID("dev-2c"), 100);
	CHECK_EQ(devstate_subscribe(a, F("x/#"), 100), 0);
	devstate_detach(t, a, true, 0, 100000, 1000);
	CHECK_EQ(devstate_count(t), 1);
	b = devstate_attach(t, ID("dev-2c"), 900);
	{
		struct devstate_match m;
		devstate_match(b, F("x/1"), &m);
		CHECK(b == a && m.start_ms == 100); /* the broker kept the subscription: so did we */
	}
	devstate_detach(t, b, true, 0, 0, 1000);
	devstate_gc(t, NULL, 1);
	/* An empty client id is never shared, and not kept. */
	a = devstate_attach(t, ID(""), 1);
	b = devstate_attach(t, ID(""), 1);
	CHECK(a && b && a != b);
	CHECK_EQ(devstate_count(t), 0);
	/* the broker assigns one an id: its state is known by it from then on */
	devstate_pending_put(a, 3, k1, 9);
	devstate_adopt(t, a, ID("auto-1"));
	devstate_adopt(t, b, ID("auto-1")); /* in use: b stays private */
	CHECK_EQ(devstate_count(t), 1);
	devstate_detach(t, a, true, 0, 1000, 1000);
	devstate_detach(t, b, true, 0, 1000, 1000);
	c = devstate_attach(t, ID("auto-1"), 5);
	CHECK(c == a && devstate_pending_match(c, 3, k1, 9)); /* resumed under the assigned id */
	devstate_detach(t, c, true, 0, 0, 1000);
	devstate_gc(t, NULL, 1);
	devstate_table_free(t);
}

static void test_pending(void)
{
	struct devstate_table *t = devstate_table_new();
	struct devstate *d = devstate_attach(t, ID("dev-3"), 0);
	uint16_t pid;

	CHECK(keyring_rx_bytes(devstate_rx(d)) < 4096); /* nothing allocated per key yet */
	devstate_pending_put(d, 1, k1, 10);
	CHECK(devstate_pending_match(d, 1, k1, 10));
	CHECK(!devstate_pending_match(d, 1, k2, 10)); /* another key */
	CHECK(!devstate_pending_match(d, 1, k1, 11)); /* another counter */
	CHECK(!devstate_pending_match(d, 2, k1, 10)); /* another packet id */
	devstate_pending_put(d, 1, k2, 99);           /* the broker reused the id for a new message */
	CHECK(devstate_pending_match(d, 1, k2, 99) && !devstate_pending_match(d, 1, k1, 10));
	for (pid = 100; pid < 400; pid++)
		devstate_pending_put(d, pid, k1, pid);
	CHECK(devstate_pending_match(d, 399, k1, 399));
	devstate_pending_ack(d, 399);
	CHECK(!devstate_pending_match(d, 399, k1, 399));
	CHECK(devstate_pending_match(d, 250, k1, 250));
	devstate_detach(t, d, true, 0, 0, 1000);
	devstate_table_free(t);
}

static void test_kept_is_bounded(void)
{
	struct devstate_table *t = devstate_table_new();
	char id[32];
	int i;

	for (i = 0; i < 50; i++) { /* fifty devices come and go */
		struct devstate *d;
		snprintf(id, sizeof(id), "roamer-%d", i);
		d = devstate_attach(t, ID(id), 0);
		devstate_detach(t, d, true, 0, 100000, 10);
	}
	CHECK_EQ(devstate_count(t), 10); /* only ten kept */
	snprintf(id, sizeof(id), "roamer-%d", 3);
	devstate_detach(t, devstate_attach(t, ID(id), 0), true, 0, 100000, 10); /* a kept one returns */
	CHECK_EQ(devstate_count(t), 10);
	devstate_gc(t, NULL, 200000);
	CHECK_EQ(devstate_count(t), 0);
	devstate_table_free(t);
}

static void test_subscriptions(void)
{
	struct devstate_table *t = devstate_table_new();
	struct devstate *d = devstate_attach(t, ID("dev-4"), 50);
	struct devstate_match m;
	char f[32];
	int i;

	CHECK_EQ(devstate_subscribe(d, F("a/+"), 100), 0);
	CHECK_EQ(devstate_subscribe(d, F("a/#"), 200), 0);
	CHECK_EQ(devstate_subscribe(d, F("$share/g/a/b"), 300), 0);
	devstate_match(d, F("a/b"), &m);
	CHECK(m.start_ms == 100 && m.count == 3); /* three subscriptions cover it, the first at 100 */
	devstate_match(d, F("a/b/c"), &m);
	CHECK(m.start_ms == 200 && m.count == 1);
	devstate_match(d, F("b"), &m);
	CHECK(m.start_ms == 50 && m.count == 1); /* none: the connection's start */
	/* Re-subscribing keeps the start (it covered its topics all along), a new gen. */
	devstate_match(d, F("a/b/c"), &m);
	{
		uint32_t gen = m.gen;
		CHECK_EQ(devstate_subscribe(d, F("a/#"), 900), 0);
		devstate_match(d, F("a/b/c"), &m);
		CHECK(m.start_ms == 200 && m.gen > gen);
	}
	devstate_unsubscribe(d, F("a/+"));
	devstate_match(d, F("a/b"), &m);
	CHECK(m.start_ms == 200 && m.count == 2);
	/* Past DEVSTATE_SUBS_MAX, topics are judged by the newest untracked start. */
	for (i = 0; i < DEVSTATE_SUBS_MAX + 5; i++) {
		snprintf(f, sizeof(f), "z/%d", i);
		CHECK_EQ(devstate_subscribe(d, F(f), 1000 + (uint64_t)i), 0);
	}
	devstate_match(d, F("q"), &m);
	CHECK(m.start_ms == 1000 + DEVSTATE_SUBS_MAX + 4 && m.count == 1);
	devstate_match(d, F("z/0"), &m); /* a tracked one and the untracked ones */
	CHECK(m.start_ms == 1000 && m.count == 2);
	devstate_session_reset(d);
	devstate_match(d, F("z/0"), &m);
	CHECK(m.start_ms == 50 && m.count == 1);
	devstate_detach(t, d, true, 0, 0, 0);
	devstate_table_free(t);
}

static void test_copies_and_credits(void)
{
	struct devstate_table *t = devstate_table_new();
	struct devstate *d = devstate_attach(t, ID("dev-5"), 0);
	uint8_t dg[DEVSTATE_DIGEST_LEN] = {1, 2, 3}, other[DEVSTATE_DIGEST_LEN] = {9};
	struct devstate_match m;
	uint64_t c;

	/* copies: at most max in all, per message */
	CHECK(!devstate_copy_take(d, k1, 5, 2)); /* never delivered */
	devstate_copy_first(d, k1, 5);
	CHECK(devstate_copy_take(d, k1, 5, 2));
	CHECK(!devstate_copy_take(d, k1, 5, 2));
	CHECK(!devstate_copy_take(d, k2, 5, 2));
	/* the ring forgets the oldest: a late copy is refused */
	for (c = 100; c < 100 + DEVSTATE_COPIES; c++)
		devstate_copy_first(d, k1, c);
	CHECK(!devstate_copy_take(d, k1, 5, 9));
	/* credits: one repeat per subscription made after the value was delivered */
	CHECK_EQ(devstate_subscribe(d, F("r/#"), 10), 0);
	devstate_match(d, F("r/1"), &m);
	CHECK(!devstate_credit_had(d, dg));
	CHECK(!devstate_credit_take(d, dg, m.gen)); /* never delivered: no repeat */
	devstate_credit_note(d, dg);
	CHECK(devstate_credit_had(d, dg) && !devstate_credit_had(d, other));
	CHECK(!devstate_credit_take(d, dg, m.gen)); /* delivered after that subscription */
	CHECK_EQ(devstate_subscribe(d, F("r/#"), 20), 0);
	devstate_match(d, F("r/1"), &m);
	CHECK(devstate_credit_take(d, dg, m.gen));
	CHECK(!devstate_credit_take(d, dg, m.gen)); /* once */
	devstate_detach(t, d, true, 0, 0, 0);
	devstate_table_free(t);
}

int main(void)
{
	test_sharing_and_lifetime();
	test_pending();
	test_kept_is_bounded();
	test_subscriptions();
	test_copies_and_credits();
	CHECK_DONE();
}
