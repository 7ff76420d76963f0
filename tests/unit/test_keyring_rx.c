/* test_keyring_rx.c - replay state per receiver (PROTOCOL.md §6.2, §6.3): struct keyring_rx gives
 * each device its own 2048-bit window and retained map per key, starting at the key's floor;
 * KR_OPEN_REPEAT lets a vouched redelivery of a seen counter through only with a valid tag and
 * never past the floor or the window's reach; keyring_rx_gc and the bound on states; memory
 * accounting; keyring_open_parts (the envelope in pieces) keeps the same windows. Messages are sealed with env_seal under keys from epoch_derive, any counter. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyring_internal.h"

#include "check.h"

#define T_MS 3600000u /* interval_s = 3600 */

static const uint8_t secret_p[ANN_SECRET_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

struct sender {
	struct epoch_keys k;
	struct aead_key *key;
};

static void sender_init(struct sender *s, const uint8_t secret[static ANN_SECRET_LEN], const char *id,
			uint64_t epoch)
{
	CHECK_EQ(epoch_derive(secret, id, epoch, ANN_SUITE_1, &s->k), PX_OK);
	CHECK_EQ(aead_key_new(s->k.key, s->k.iv, &s->key), PX_OK);
}

static size_t sender_seal(struct sender *s, uint64_t counter, uint8_t flags, const char *topic, uint8_t *out)
{
	struct env_header h = {.flags = flags, .counter = counter};
	size_t n = env_sealed_size(0, 4, 16);

	memcpy(h.key_id, s->k.key_id, ENV_KEY_ID_LEN);
	CHECK_EQ(env_seal(s->key, &h, (const uint8_t *)topic, strlen(topic), NULL, 0, (const uint8_t *)"data",
			  4, 16, out, n),
		 PX_OK);
	return n;
}

static struct keyring *ring(const char *self, unsigned grace_s, size_t max_keys)
{
	struct keyring_params p = {.self_id = self,
				   .interval_s = 3600,
				   .grace_s = grace_s,
				   .padding = 16,
				   .replay_bits = REPLAY_BITS_DEFAULT,
				   .max_keys = max_keys};
	struct keyring *kr = NULL;

	CHECK_EQ(keyring_new(&p, &kr), PX_OK);
	return kr;
}

/* Seals counter under s and opens it with kr (and rx, may be NULL) at time now: the result of
 * keyring_open. */
static enum px_err deliver_rx(struct keyring *kr, struct keyring_rx *rx, struct sender *s, uint64_t now,
			      uint64_t counter, uint8_t flags, const char *topic, bool retain_delivered,
			      unsigned open_flags)
{
	uint8_t env[128], inner[128];
	struct env_opened o;
	size_t n = sender_seal(s, counter, flags, topic, env);
	enum px_err rc = keyring_open(kr, rx, now, (const uint8_t *)topic, strlen(topic), env, n,
				      retain_delivered, open_flags, inner, &o, NULL);

	if (rc == PX_OK)
		CHECK(o.payload_len == 4 && memcmp(o.payload, "data", 4) == 0);
	return rc;
}

static enum px_err deliver(struct keyring *kr, struct sender *s, uint64_t now, uint64_t counter,
			   uint8_t flags, const char *topic, bool retain_delivered)
{
	return deliver_rx(kr, NULL, s, now, counter, flags, topic, retain_delivered, 0);
}

/* Seals counter under s with one bit of the tag flipped and opens it: a forgery. */
static enum px_err deliver_forged(struct keyring *kr, struct keyring_rx *rx, struct sender *s,
				  uint64_t counter, unsigned open_flags)
{
	uint8_t env[128], inner[128];
	struct env_opened o;
	size_t n = sender_seal(s, counter, 0, "a/b", env);

	env[n - 1] ^= 0x80;
	return keyring_open(kr, rx, 1, (const uint8_t *)"a/b", 3, env, n, false, open_flags, inner, &o, NULL);
}

/* §6.2: each receiver (device) has its own window; the key's own window is a third one. */
static void test_rx_per_device(void)
{
	struct keyring *kr = ring("me", 0, 16);
	struct keyring_rx *rx1 = NULL, *rx2 = NULL;
	struct sender s;
	size_t empty;

	sender_init(&s, secret_p, "peer", 7);
	CHECK_EQ(keyring_recv_install(kr, "peer", 7, secret_p, 3600, 0, 0), PX_OK);
	CHECK_EQ(keyring_rx_new(&rx1), PX_OK);
	CHECK_EQ(keyring_rx_new(&rx2), PX_OK);
	CHECK_EQ(keyring_rx_new(NULL), PX_ERR_INVAL);
	empty = keyring_rx_bytes(rx1);
	CHECK(empty > 0);
	CHECK_EQ(deliver_rx(kr, rx1, &s, 1, 5, 0, "a/b", false, 0), PX_OK);
	CHECK(keyring_rx_bytes(rx1) >= empty + KR_RX_REPLAY_BITS / 8);
	CHECK_EQ(keyring_rx_bytes(rx2), empty);
	CHECK_EQ(deliver_rx(kr, rx2, &s, 1, 5, 0, "a/b", false, 0), PX_OK);
	CHECK_EQ(deliver_rx(kr, rx1, &s, 1, 5, 0, "a/b", false, 0), PX_ERR_REPLAY);
	CHECK_EQ(deliver_rx(kr, rx2, &s, 1, 5, 0, "a/b", false, 0), PX_ERR_REPLAY);
	CHECK_EQ(deliver(kr, &s, 1, 5, 0, "a/b", false), PX_OK);
	CHECK_EQ(deliver(kr, &s, 1, 5, 0, "a/b", false), PX_ERR_REPLAY);
	/* a per-device window has 2048 bits, 1984 usable */
	CHECK_EQ(deliver_rx(kr, rx1, &s, 1, 5000, 0, "a/b", false, 0), PX_OK);
	CHECK_EQ(deliver_rx(kr, rx1, &s, 1, 5000 - 1984, 0, "a/b", false, 0), PX_ERR_REPLAY);
	CHECK_EQ(deliver_rx(kr, rx1, &s, 1, 5000 - 1983, 0, "a/b", false, 0), PX_OK);
	/* the key's own window keeps its 8192 bits */
	CHECK_EQ(deliver(kr, &s, 1, 9000, 0, "a/b", false), PX_OK);
	CHECK_EQ(deliver(kr, &s, 1, 9000 - 8000, 0, "a/b", false), PX_OK);
	/* lifetime and the hard limit hold per device as well */
	CHECK_EQ(deliver_rx(kr, rx2, &s, 1, KR_HARD_MESSAGES, 0, "a/b", false, 0), PX_ERR_LIMIT);
	CHECK_EQ(deliver_rx(kr, rx2, &s, T_MS * 3 / 2, 6, 0, "a/b", false, 0), PX_ERR_EXPIRED);
	keyring_rx_free(rx1);
	keyring_rx_free(rx2);
	keyring_rx_free(NULL);
	CHECK_EQ(keyring_rx_bytes(NULL), 0);
	aead_key_free(s.key);
	keyring_free(kr);
}

/* KR_OPEN_REPEAT: a seen counter passes again if and only if the tag verifies; the floor, the
 * window's reach and unknown flags are still refused. */
static void test_rx_repeat(void)
{
	struct keyring *kr = ring("me", 0, 16);
	struct keyring_rx *rx = NULL;
	struct keyring_stats st;
	struct sender s;
	size_t before;

	sender_init(&s, secret_p, "peer", 7);
	CHECK_EQ(keyring_recv_install(kr, "peer", 7, secret_p, 3600, 50, 0), PX_OK);
	CHECK_EQ(keyring_rx_new(&rx), PX_OK);
	CHECK_EQ(deliver_rx(kr, rx, &s, 1, 60, 0, "a/b", false, 0x02), PX_ERR_INVAL);
	/* a forgery creates no state */
	before = keyring_rx_bytes(rx);
	CHECK_EQ(deliver_forged(kr, rx, &s, 60, KR_OPEN_REPEAT), PX_ERR_AUTH);
	CHECK_EQ(keyring_rx_bytes(rx), before);
	CHECK_EQ(deliver_rx(kr, rx, &s, 1, 60, 0, "a/b", false, 0), PX_OK);
	CHECK_EQ(deliver_rx(kr, rx, &s, 1, 60, 0, "a/b", false, 0), PX_ERR_REPLAY);
	CHECK_EQ(deliver_rx(kr, rx, &s, 1, 60, 0, "a/b", false, KR_OPEN_REPEAT), PX_OK);
	CHECK_EQ(deliver_forged(kr, rx, &s, 60, KR_OPEN_REPEAT), PX_ERR_AUTH);
	CHECK_EQ(deliver_rx(kr, rx, &s, 1, 60, 0, "a/b", false, 0), PX_ERR_REPLAY); /* still seen */
	/* a new counter under the flag is simply new, and recorded */
	CHECK_EQ(deliver_rx(kr, rx, &s, 1, 61, 0, "a/b", false, KR_OPEN_REPEAT), PX_OK);
	CHECK_EQ(deliver_rx(kr, rx, &s, 1, 61, 0, "a/b", false, 0), PX_ERR_REPLAY);
	/* never below the floor, never behind the window */
	CHECK_EQ(deliver_rx(kr, rx, &s, 1, 49, 0, "a/b", false, KR_OPEN_REPEAT), PX_ERR_REPLAY);
	CHECK_EQ(deliver_rx(kr, rx, &s, 1, 10000, 0, "a/b", false, 0), PX_OK);
	CHECK_EQ(deliver_rx(kr, rx, &s, 1, 100, 0, "a/b", false, KR_OPEN_REPEAT), PX_ERR_REPLAY);
	CHECK_EQ(deliver_rx(kr, rx, &s, 1, 10000, 0, "a/b", false, KR_OPEN_REPEAT), PX_OK);
	/* without a receiver the flag works on the key's own window */
	CHECK_EQ(deliver(kr, &s, 1, 70, 0, "a/b", false), PX_OK);
	CHECK_EQ(deliver_rx(kr, NULL, &s, 1, 70, 0, "a/b", false, KR_OPEN_REPEAT), PX_OK);
	CHECK_EQ(deliver_forged(kr, NULL, &s, 70, KR_OPEN_REPEAT), PX_ERR_AUTH);
	keyring_get_stats(kr, &st);
	CHECK_EQ(st.auth_failures, 3);
	keyring_rx_free(rx);
	aead_key_free(s.key);
	keyring_free(kr);
}

/* §6.3 per receiver: every new receiver's state starts at the key's floor; the retained
 * exception and its no-rollback mark are per receiver. */
static void test_rx_floor_and_retained(void)
{
	struct keyring *kr = ring("me", 0, 16);
	struct keyring_rx *rx1 = NULL, *rx2 = NULL;
	struct sender s;

	sender_init(&s, secret_p, "peer", 7);
	CHECK_EQ(keyring_recv_install(kr, "peer", 7, secret_p, 3600, 50, 0), PX_OK);
	CHECK_EQ(keyring_rx_new(&rx1), PX_OK);
	CHECK_EQ(keyring_rx_new(&rx2), PX_OK);
	CHECK_EQ(deliver_rx(kr, rx1, &s, 1, 49, 0, "t/0", false, 0), PX_ERR_REPLAY);
	CHECK_EQ(deliver_rx(kr, rx1, &s, 1, 50, 0, "t/0", false, 0), PX_OK);
	CHECK_EQ(deliver_rx(kr, rx2, &s, 1, 49, 0, "t/0", false, 0), PX_ERR_REPLAY);
	CHECK_EQ(deliver_rx(kr, rx2, &s, 1, 50, 0, "t/0", false, 0), PX_OK);
	/* retained below the floor: allowed for each receiver, no rollback for either */
	CHECK_EQ(deliver_rx(kr, rx1, &s, 1, 10, ENV_FLAG_RETAIN, "t/1", true, 0), PX_OK);
	CHECK_EQ(deliver_rx(kr, rx1, &s, 1, 12, ENV_FLAG_RETAIN, "t/1", true, 0), PX_OK);
	CHECK_EQ(deliver_rx(kr, rx1, &s, 1, 10, ENV_FLAG_RETAIN, "t/1", true, 0), PX_ERR_REPLAY);
	CHECK_EQ(deliver_rx(kr, rx1, &s, 1, 12, ENV_FLAG_RETAIN, "t/1", true, 0), PX_OK);
	CHECK_EQ(deliver_rx(kr, rx2, &s, 1, 10, ENV_FLAG_RETAIN, "t/1", true, 0), PX_OK);
	CHECK_EQ(deliver_rx(kr, rx2, &s, 1, 11, ENV_FLAG_RETAIN, "t/1", true, 0), PX_OK);
	CHECK_EQ(deliver_rx(kr, rx2, &s, 1, 10, ENV_FLAG_RETAIN, "t/1", true, 0), PX_ERR_REPLAY);
	/* without RETAIN as delivered, the floor holds */
	CHECK_EQ(deliver_rx(kr, rx2, &s, 1, 13, ENV_FLAG_RETAIN, "t/1", false, 0), PX_ERR_REPLAY);
	/* a fresh receiver's first message may be a retained one */
	keyring_rx_free(rx2);
	rx2 = NULL;
	CHECK_EQ(keyring_rx_new(&rx2), PX_OK);
	CHECK_EQ(deliver_rx(kr, rx2, &s, 1, 5, ENV_FLAG_RETAIN, "t/2", true, 0), PX_OK);
	CHECK_EQ(deliver_rx(kr, rx2, &s, 1, 4, ENV_FLAG_RETAIN, "t/2", true, 0), PX_ERR_REPLAY);
	/* the key's own state saw none of it */
	CHECK_EQ(deliver(kr, &s, 1, 4, ENV_FLAG_RETAIN, "t/2", true), PX_OK);
	keyring_rx_free(rx1);
	keyring_rx_free(rx2);
	aead_key_free(s.key);
	keyring_free(kr);
}

/* keyring_rx_gc drops the states of erased keys; a reinstalled key gets a fresh state; rx never
 * holds more states than the ring has keys, even without gc. */
static void test_rx_gc(void)
{
	struct keyring *kr = ring("me", 0, 16);
	struct keyring_rx *rx = NULL;
	struct sender s1, s2;
	size_t one, two, state, base;
	uint64_t e;

	sender_init(&s1, secret_p, "p", 1);
	sender_init(&s2, secret_p, "p", 2);
	CHECK_EQ(keyring_rx_new(&rx), PX_OK);
	keyring_rx_gc(kr, rx);
	keyring_rx_gc(NULL, rx);
	keyring_rx_gc(kr, NULL);
	CHECK_EQ(keyring_recv_install(kr, "p", 1, secret_p, 3600, 0, 0), PX_OK);
	CHECK_EQ(keyring_recv_install(kr, "p", 2, secret_p, 3600, 0, 0), PX_OK);
	CHECK_EQ(deliver_rx(kr, rx, &s1, 1, 3, 0, "a", false, 0), PX_OK);
	one = keyring_rx_bytes(rx);
	CHECK_EQ(deliver_rx(kr, rx, &s2, 1, 3, 0, "a", false, 0), PX_OK);
	two = keyring_rx_bytes(rx);
	state = two - one;
	base = one - state; /* the table without states */
	CHECK(state >= KR_RX_REPLAY_BITS / 8);
	keyring_rx_gc(kr, rx); /* both keys live: nothing goes */
	CHECK_EQ(keyring_rx_bytes(rx), two);
	CHECK_EQ(deliver_rx(kr, rx, &s1, 1, 3, 0, "a", false, 0), PX_ERR_REPLAY);
	CHECK_EQ(deliver_rx(kr, rx, &s2, 1, 3, 0, "a", false, 0), PX_ERR_REPLAY);
	/* erased and installed again (same key id): a fresh state at the new floor, as the key's
	 * own window, even before gc */
	keyring_remove_peer(kr, "p");
	CHECK_EQ(keyring_recv_install(kr, "p", 1, secret_p, 3600, 2, 0), PX_OK);
	CHECK_EQ(deliver_rx(kr, rx, &s1, 1, 1, 0, "a", false, 0), PX_ERR_REPLAY);
	CHECK_EQ(deliver_rx(kr, rx, &s1, 1, 3, 0, "a", false, 0), PX_OK);
	/* replacing the stale state collected the erased p/2 on the way */
	CHECK_EQ(keyring_rx_bytes(rx), one);
	keyring_rx_gc(kr, rx);
	CHECK_EQ(keyring_rx_bytes(rx), one);
	CHECK_EQ(deliver_rx(kr, rx, &s1, 1, 3, 0, "a", false, 0), PX_ERR_REPLAY);
	keyring_remove_peer(kr, "p");
	keyring_rx_gc(kr, rx);
	CHECK_EQ(keyring_rx_bytes(rx), base);
	/* many rotations, no gc: at most as many states as keys (three of p) */
	for (e = 10; e < 40; e++) {
		struct sender s;
		sender_init(&s, secret_p, "p", e);
		CHECK_EQ(keyring_recv_install(kr, "p", e, secret_p, 3600, 0, 0), PX_OK);
		CHECK_EQ(deliver_rx(kr, rx, &s, 1, 0, 0, "a", false, 0), PX_OK);
		aead_key_free(s.key);
	}
	CHECK_EQ(keyring_rx_bytes(rx), base + 3 * state);
	keyring_rx_free(rx);
	aead_key_free(s1.key);
	aead_key_free(s2.key);
	keyring_free(kr);
}

/* keyring_open_parts opens an envelope given in pieces like keyring_open_decide: the same
 * plaintext, the same per-device window (a counter seen through one is seen through the other),
 * floor, lifetime and hard limit; a forgery in pieces is refused with the inner buffer wiped and
 * its counter left unseen. */
static void test_rx_open_parts(void)
{
	struct keyring *kr = ring("me", 0, 16);
	struct keyring_rx *rx = NULL;
	uint8_t env[128], inner[128];
	struct kr_opened o;
	struct aead_part parts[3];
	struct sender s;
	size_t n, i, bad = 0;

	sender_init(&s, secret_p, "peer", 7);
	CHECK_EQ(keyring_recv_install(kr, "peer", 7, secret_p, 3600, 10, 0), PX_OK);
	CHECK_EQ(keyring_rx_new(&rx), PX_OK);
	for (i = 0; i <= env_sealed_size(0, 4, 16); i++) { /* counter 20 + i, cut at i */
		n = sender_seal(&s, 20 + i, 0, "a/b", env);
		parts[0] = (struct aead_part){env, i};
		parts[1] = (struct aead_part){NULL, 0};
		parts[2] = (struct aead_part){env + i, n - i};
		if (keyring_open_parts(kr, rx, 1, (const uint8_t *)"a/b", 3, parts, 3, inner, &o) != PX_OK ||
		    o.seen != KR_SEEN_NEW || o.o.payload_len != 4 || memcmp(o.o.payload, "data", 4) != 0 ||
		    o.epoch != 7 || strcmp(o.sender, "peer") != 0)
			bad++;
		/* the whole-envelope open now sees the counter */
		if (keyring_open_decide(kr, rx, 1, (const uint8_t *)"a/b", 3, env, n, inner, &o) != PX_OK ||
		    o.seen != KR_SEEN_WINDOW)
			bad++;
	}
	CHECK_EQ(bad, 0);
	n = sender_seal(&s, 5, 0, "a/b", env); /* below the floor */
	parts[0] = (struct aead_part){env, 30};
	parts[1] = (struct aead_part){env + 30, n - 30};
	CHECK_EQ(keyring_open_parts(kr, rx, 1, (const uint8_t *)"a/b", 3, parts, 2, inner, &o), PX_OK);
	CHECK_EQ(o.seen, KR_SEEN_FLOOR);
	n = sender_seal(&s, 100, 0, "a/b", env);
	env[40] ^= 1;
	parts[1] = (struct aead_part){env + 30, n - 30};
	memset(inner, 0xaa, sizeof(inner));
	CHECK_EQ(keyring_open_parts(kr, rx, 1, (const uint8_t *)"a/b", 3, parts, 2, inner, &o), PX_ERR_AUTH);
	for (i = 0; i < n - ENV_OVERHEAD; i++)
		bad |= inner[i];
	CHECK_EQ(bad, 0);
	env[40] ^= 1;
	CHECK_EQ(keyring_open_parts(kr, rx, 1, (const uint8_t *)"a/b", 3, parts, 2, inner, &o), PX_OK);
	CHECK_EQ(o.seen, KR_SEEN_NEW); /* the forgery did not use its counter up */
	CHECK_EQ(keyring_open_parts(kr, rx, 1, (const uint8_t *)"x/y", 3, parts, 2, inner, &o), PX_ERR_AUTH);
	CHECK_EQ(keyring_open_parts(kr, rx, T_MS * 3 / 2, (const uint8_t *)"a/b", 3, parts, 2, inner, &o),
		 PX_ERR_EXPIRED);
	CHECK_EQ(keyring_open_parts(kr, NULL, 1, (const uint8_t *)"a/b", 3, parts, 2, inner, &o), PX_ERR_INVAL);
	keyring_rx_free(rx);
	aead_key_free(s.key);
	keyring_free(kr);
}

int main(void)
{
	test_rx_per_device();
	test_rx_repeat();
	test_rx_floor_and_retained();
	test_rx_gc();
	test_rx_open_parts();
	CHECK_DONE();
}
