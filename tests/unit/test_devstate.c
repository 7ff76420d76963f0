/* test_devstate.c - per-device receive state across reconnects: shared by client id, dropped for
 * clean sessions, kept (bounded in time) for persistent ones, and the pending redelivery map. */
#include <string.h>

#include "check.h"
#include "devstate.h"
#include "keyring.h"

#define ID(s) (const uint8_t *)(s), strlen(s)

static void test_sharing_and_lifetime(void)
{
	struct devstate_table *t = devstate_table_new();
	struct devstate *a, *b, *c;

	CHECK(t != NULL);
	a = devstate_attach(t, ID("dev-1"), false);
	b = devstate_attach(t, ID("dev-1"), false);
	CHECK(a != NULL && a == b); /* one state per client id */
	CHECK_EQ(devstate_count(t), 1);
	devstate_detach(t, b, true, 1000, 5000, 1000);
	devstate_detach(t, a, true, 1000, 5000, 1000); /* persistent: kept until 6000 */
	CHECK_EQ(devstate_count(t), 1);
	c = devstate_attach(t, ID("dev-1"), false);
	CHECK(c == a); /* the reconnect finds it again */
	devstate_detach(t, c, true, 2000, 5000, 1000);
	devstate_gc(t, NULL, 6999);
	CHECK_EQ(devstate_count(t), 1);
	devstate_gc(t, NULL, 7000);
	CHECK_EQ(devstate_count(t), 0);
	/* A clean session starts afresh and is dropped when it ends. */
	a = devstate_attach(t, ID("dev-2"), false);
	devstate_pending_put(a, 7, (const uint8_t *)"KEYID-01", 42);
	devstate_detach(t, a, true, 0, 100000, 1000);
	b = devstate_attach(t, ID("dev-2"), true);
	CHECK(!devstate_pending_match(b, 7, (const uint8_t *)"KEYID-01", 42));
	devstate_detach(t, b, false, 0, 100000, 1000);
	CHECK_EQ(devstate_count(t), 0);
	/* An empty client id is never shared. */
	a = devstate_attach(t, ID(""), false);
	b = devstate_attach(t, ID(""), false);
	CHECK(a && b && a != b);
	CHECK_EQ(devstate_count(t), 0);
	devstate_detach(t, a, true, 0, 1000, 1000);
	devstate_detach(t, b, true, 0, 1000, 1000);
	devstate_table_free(t);
}

static void test_pending(void)
{
	struct devstate_table *t = devstate_table_new();
	struct devstate *d = devstate_attach(t, ID("dev-3"), false);
	const uint8_t *k1 = (const uint8_t *)"KEYID-01", *k2 = (const uint8_t *)"KEYID-02";
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
	devstate_detach(t, d, false, 0, 0, 1000);
	devstate_table_free(t);
}

static void test_kept_is_bounded(void)
{
	struct devstate_table *t = devstate_table_new();
	char id[32];
	int i;

	for (i = 0; i < 50; i++) { /* fifty devices with persistent sessions come and go */
		struct devstate *d;
		snprintf(id, sizeof(id), "roamer-%d", i);
		d = devstate_attach(t, ID(id), false);
		devstate_detach(t, d, true, 0, 100000, 10);
	}
	CHECK_EQ(devstate_count(t), 10); /* only ten kept */
	snprintf(id, sizeof(id), "roamer-%d", 3);
	devstate_detach(t, devstate_attach(t, ID(id), false), true, 0, 100000, 10); /* a kept one returns */
	CHECK_EQ(devstate_count(t), 10);
	devstate_gc(t, NULL, 200000);
	CHECK_EQ(devstate_count(t), 0);
	devstate_table_free(t);
}

int main(void)
{
	test_sharing_and_lifetime();
	test_pending();
	test_kept_is_bounded();
	CHECK_DONE();
}
