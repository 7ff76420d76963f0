/* test_keyring.c - the key ring (PROTOCOL.md §6, §9): replay window, floor and the retained
 * exception through keyring_open (the key's own state; per-receiver states are test_keyring_rx.c),
 * the usage limits of §9.4 (pure and through keyring_seal), lifetimes with synthetic clocks, at
 * most three keys per peer, peer removal, key id collisions, a full table, the hash table under
 * many insertions and deletions, and own messages. Peers' messages are sealed here with env_seal
 * under keys derived by epoch_derive, so any counter can be chosen. */
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

static void test_params(void)
{
	struct keyring_params p = {
		.self_id = "me", .interval_s = 60, .padding = 16, .replay_bits = 8192, .max_keys = 4};
	struct keyring *kr = NULL;

	CHECK_EQ(keyring_new(&p, &kr), PX_OK);
	keyring_free(kr);
	kr = NULL;
	p.self_id = "m e";
	CHECK_EQ(keyring_new(&p, &kr), PX_ERR_INVAL);
	p.self_id = "me";
	p.padding = 0;
	CHECK_EQ(keyring_new(&p, &kr), PX_ERR_INVAL);
	p.padding = 257;
	CHECK_EQ(keyring_new(&p, &kr), PX_ERR_INVAL);
	p.padding = 16;
	p.replay_bits = 1000;
	CHECK_EQ(keyring_new(&p, &kr), PX_ERR_INVAL);
	p.replay_bits = 8192;
	p.max_keys = 0;
	CHECK_EQ(keyring_new(&p, &kr), PX_ERR_INVAL);
	p.max_keys = 4;
	p.interval_s = 0;
	CHECK_EQ(keyring_new(&p, &kr), PX_ERR_INVAL);
	CHECK(kr == NULL);
	keyring_free(NULL);
}

static void test_replay(void)
{
	struct keyring *kr = ring("me", 0, 16);
	struct sender s;
	struct keyring_stats st;
	uint8_t env[128], inner[128];
	struct env_opened o;
	size_t n;

	sender_init(&s, secret_p, "peer", 7);
	CHECK_EQ(keyring_recv_install(kr, "peer", 7, secret_p, 3600, 0, 0), PX_OK);
	CHECK_EQ(deliver(kr, &s, 1, 5, 0, "a/b", false), PX_OK);
	CHECK_EQ(deliver(kr, &s, 1, 5, 0, "a/b", false), PX_ERR_REPLAY);
	CHECK_EQ(deliver(kr, &s, 1, 3, 0, "a/b", false), PX_OK); /* reordered, within the window */
	CHECK_EQ(deliver(kr, &s, 1, 3, 0, "a/b", false), PX_ERR_REPLAY);
	CHECK_EQ(deliver(kr, &s, 1, 10000, 0, "a/b", false), PX_OK);
	CHECK_EQ(deliver(kr, &s, 1, 10000 - 8200, 0, "a/b", false), PX_ERR_REPLAY); /* too old */
	CHECK_EQ(deliver(kr, &s, 1, 10000 - 8127, 0, "a/b", false), PX_OK);	    /* oldest usable */
	CHECK_EQ(deliver(kr, &s, 1, 9999, 0, "a/b", false), PX_OK);
	/* §6.1 step 4: counters at the hard limit are refused, even with a valid tag */
	CHECK_EQ(deliver(kr, &s, 1, KR_HARD_MESSAGES, 0, "a/b", false), PX_ERR_LIMIT);
	CHECK_EQ(deliver(kr, &s, 1, KR_HARD_MESSAGES - 1, 0, "a/b", false), PX_OK);
	aead_key_free(s.key);
	keyring_free(kr);

	/* a failed tag does not move the window: a forged counter 20 (tag or ciphertext flipped)
	 * neither burns counter 20 nor advances the window past it */
	kr = ring("me", 0, 16);
	sender_init(&s, secret_p, "peer", 7);
	CHECK_EQ(keyring_recv_install(kr, "peer", 7, secret_p, 3600, 0, 0), PX_OK);
	n = sender_seal(&s, 20, 0, "a/b", env);
	env[20] ^= 1;
	CHECK_EQ(keyring_open(kr, NULL, 1, (const uint8_t *)"a/b", 3, env, n, false, 0, inner, &o, NULL),
		 PX_ERR_AUTH);
	n = sender_seal(&s, 100000, 0, "a/b", env);
	env[n - 1] ^= 1;
	CHECK_EQ(keyring_open(kr, NULL, 1, (const uint8_t *)"a/b", 3, env, n, false, 0, inner, &o, NULL),
		 PX_ERR_AUTH);
	CHECK_EQ(deliver(kr, &s, 1, 20, 0, "a/b", false), PX_OK);
	CHECK_EQ(deliver(kr, &s, 1, 20, 0, "a/b", false), PX_ERR_REPLAY);
	CHECK_EQ(deliver(kr, &s, 1, 19, 0, "a/b", false), PX_OK);
	keyring_get_stats(kr, &st);
	CHECK_EQ(st.auth_failures, 2);
	aead_key_free(s.key);
	keyring_free(kr);
}

/* §6.1 steps 7-8: an authenticated but malformed inner still uses up its counter. */
static void test_malformed_inner(void)
{
	static const char label[] = "mqseal v1 data";
	struct keyring *kr = ring("me", 0, 16);
	struct sender s;
	uint8_t env[128], inner[128], pt[16] = {0, 0, 0, 0, 0, 0, 0, 1, 'x', 1}; /* padding byte 1 */
	uint8_t tlen[2] = {0, 1};
	struct aead_part aad[4], part = {pt, sizeof(pt)};
	struct env_opened o;

	sender_init(&s, secret_p, "peer", 7);
	CHECK_EQ(keyring_recv_install(kr, "peer", 7, secret_p, 3600, 0, 0), PX_OK);
	memset(env, 0, ENV_HDR_LEN);
	env[0] = ENV_VERSION;
	memcpy(env + 2, s.k.key_id, 8);
	env[17] = 30;
	aad[0] = (struct aead_part){(const uint8_t *)label, strlen(label)};
	aad[1] = (struct aead_part){env, ENV_HDR_LEN};
	aad[2] = (struct aead_part){tlen, 2};
	aad[3] = (struct aead_part){(const uint8_t *)"t", 1};
	CHECK_EQ(aead_seal(s.key, 30, aad, 4, &part, 1, env + ENV_HDR_LEN, env + ENV_HDR_LEN + sizeof(pt)),
		 PX_OK);
	CHECK_EQ(keyring_open(kr, NULL, 1, (const uint8_t *)"t", 1, env, ENV_OVERHEAD + sizeof(pt), false, 0,
			      inner, &o, NULL),
		 PX_ERR_MALFORMED);
	CHECK_EQ(keyring_open(kr, NULL, 1, (const uint8_t *)"t", 1, env, ENV_OVERHEAD + sizeof(pt), false, 0,
			      inner, &o, NULL),
		 PX_ERR_REPLAY);
	aead_key_free(s.key);
	keyring_free(kr);
}

static void test_floor_and_retained(void)
{
	struct keyring *kr = ring("me", 0, 16);
	struct sender s;
	char topic[32];
	int i;

	sender_init(&s, secret_p, "peer", 7);
	/* floor 50: as if this node restarted after the sender had sealed 50 messages */
	CHECK_EQ(keyring_recv_install(kr, "peer", 7, secret_p, 3600, 50, 0), PX_OK);
	CHECK_EQ(deliver(kr, &s, 1, 49, 0, "t/0", false), PX_ERR_REPLAY);
	CHECK_EQ(deliver(kr, &s, 1, 50, 0, "t/0", false), PX_OK);
	/* the retained exception: RETAIN=1 as delivered and retain_intent */
	CHECK_EQ(deliver(kr, &s, 1, 10, ENV_FLAG_RETAIN, "t/1", true), PX_OK);
	CHECK_EQ(deliver(kr, &s, 1, 10, ENV_FLAG_RETAIN, "t/1", true), PX_OK); /* redelivery */
	CHECK_EQ(deliver(kr, &s, 1, 12, ENV_FLAG_RETAIN, "t/1", true), PX_OK);
	CHECK_EQ(deliver(kr, &s, 1, 10, ENV_FLAG_RETAIN, "t/1", true), PX_ERR_REPLAY); /* rollback */
	CHECK_EQ(deliver(kr, &s, 1, 5, ENV_FLAG_RETAIN, "t/2", true), PX_OK);	       /* per topic */
	/* without RETAIN=1 as delivered, or without retain_intent, the window and floor apply */
	CHECK_EQ(deliver(kr, &s, 1, 12, ENV_FLAG_RETAIN, "t/1", false), PX_ERR_REPLAY);
	CHECK_EQ(deliver(kr, &s, 1, 60, 0, "t/4", false), PX_OK);
	CHECK_EQ(deliver(kr, &s, 1, 60, 0, "t/4", true), PX_ERR_REPLAY);
	CHECK_EQ(deliver(kr, &s, 1, 40, 0, "t/4", true), PX_ERR_REPLAY);
	/* a live message with retain_intent sets the topic's mark too: no rollback behind it */
	CHECK_EQ(deliver(kr, &s, 1, 70, ENV_FLAG_RETAIN, "t/3", false), PX_OK);
	CHECK_EQ(deliver(kr, &s, 1, 65, ENV_FLAG_RETAIN, "t/3", true), PX_ERR_REPLAY);
	CHECK_EQ(deliver(kr, &s, 1, 70, ENV_FLAG_RETAIN, "t/3", true), PX_OK);
	/* the counter limit holds under the exception as well */
	CHECK_EQ(deliver(kr, &s, 1, KR_HARD_MESSAGES, ENV_FLAG_RETAIN, "t/1", true), PX_ERR_LIMIT);
	/* fill the map (t/0 had no retain_intent; t/1, t/2, t/3 are in it) */
	for (i = 5; i < 5 + KR_TOPICS_MAX - 3; i++) {
		snprintf(topic, sizeof(topic), "t/%d", i);
		CHECK_EQ(deliver(kr, &s, 1, 20, ENV_FLAG_RETAIN, topic, true), PX_OK);
	}
	/* full: a new topic gets no exception, known topics keep theirs */
	CHECK_EQ(deliver(kr, &s, 1, 21, ENV_FLAG_RETAIN, "t/new", true), PX_ERR_REPLAY);
	CHECK_EQ(deliver(kr, &s, 1, 3000, ENV_FLAG_RETAIN, "t/new", true), PX_OK); /* fresh: normal path */
	CHECK_EQ(deliver(kr, &s, 1, 20, ENV_FLAG_RETAIN, "t/5", true), PX_OK);
	CHECK_EQ(deliver(kr, &s, 1, 19, ENV_FLAG_RETAIN, "t/5", true), PX_ERR_REPLAY);
	CHECK_EQ(deliver(kr, &s, 1, 12, ENV_FLAG_RETAIN, "t/1", true), PX_OK);
	aead_key_free(s.key);
	keyring_free(kr);
}

static void test_limits_pure(void)
{
	CHECK_EQ(keyring_limit_hard(0, 0, 0, 3600), PX_OK);
	CHECK_EQ(keyring_limit_hard(KR_HARD_MESSAGES - 1, KR_HARD_BLOCKS - 1, T_MS * 3 / 2 - 1, 3600), PX_OK);
	CHECK_EQ(keyring_limit_hard(KR_HARD_MESSAGES, 0, 0, 3600), PX_ERR_LIMIT);
	CHECK_EQ(keyring_limit_hard(0, KR_HARD_BLOCKS, 0, 3600), PX_ERR_LIMIT);
	CHECK_EQ(keyring_limit_hard(0, 0, T_MS * 3 / 2, 3600), PX_ERR_EXPIRED);
	CHECK_EQ(keyring_limit_hard(0, 0, 90000, 60), PX_ERR_EXPIRED);
	CHECK(!keyring_limit_soft(KR_SOFT_MESSAGES - 1, KR_SOFT_BLOCKS - 1));
	CHECK(keyring_limit_soft(KR_SOFT_MESSAGES, 0));
	CHECK(keyring_limit_soft(0, KR_SOFT_BLOCKS));
}

static enum px_err seal_small(struct keyring *kr, uint64_t now, uint8_t *out)
{
	return keyring_seal(kr, now, 0, 0, (const uint8_t *)"t", 1, NULL, 0, (const uint8_t *)"x", 1, out,
			    keyring_sealed_size(kr, 0, 1));
}

static void test_limits_seal(void)
{
	struct keyring *kr = ring("me", 0, 16);
	uint8_t out[128], inner[128];
	struct env_opened o;
	struct env_header h;
	uint64_t b = env_blocks(1, keyring_sealed_size(kr, 0, 1));

	CHECK_EQ(keyring_can_seal(kr, 0), PX_ERR_UNKNOWN_KEY);
	CHECK_EQ(seal_small(kr, 0, out), PX_ERR_UNKNOWN_KEY);
	CHECK_EQ(keyring_epoch_create(kr, 1, 0), PX_OK);
	CHECK_EQ(keyring_can_seal(kr, 0), PX_ERR_UNKNOWN_KEY); /* pending is not active */
	CHECK_EQ(keyring_epoch_activate(kr, 0), PX_OK);
	CHECK_EQ(seal_small(kr, 0, out), PX_OK);
	CHECK_EQ(keyring_seal(kr, 0, 0, 0x10, (const uint8_t *)"t", 1, NULL, 0, (const uint8_t *)"x", 1, out,
			      keyring_sealed_size(kr, 0, 1)),
		 PX_ERR_INVAL);
	CHECK_EQ(keyring_seal(kr, 0, 0, 0, (const uint8_t *)"t", 1, NULL, 0, (const uint8_t *)"x", 1, out, 10),
		 PX_ERR_INVAL);
	/* soft */
	keyring_set_usage_(kr, KR_SOFT_MESSAGES - 1, 0);
	CHECK(!keyring_wants_rotation(kr));
	CHECK_EQ(seal_small(kr, 0, out), PX_OK);
	CHECK(keyring_wants_rotation(kr));
	keyring_set_usage_(kr, 0, KR_SOFT_BLOCKS);
	CHECK(keyring_wants_rotation(kr));
	/* hard messages: the last counter seals, then the key is gone */
	keyring_set_usage_(kr, KR_HARD_MESSAGES - 1, 0);
	CHECK_EQ(keyring_can_seal(kr, 0), PX_OK);
	CHECK_EQ(seal_small(kr, 0, out), PX_OK);
	CHECK_EQ(env_parse_header(out, keyring_sealed_size(kr, 0, 1), &h), PX_OK);
	CHECK_EQ(h.counter, KR_HARD_MESSAGES - 1);
	CHECK_EQ(keyring_can_seal(kr, 0), PX_ERR_LIMIT);
	CHECK_EQ(seal_small(kr, 0, out), PX_ERR_LIMIT);
	CHECK(keyring_newest_secret(kr) == NULL);
	/* what was sealed under it still opens with the own receive key, at a counter < 2^24 */
	CHECK_EQ(keyring_open(kr, NULL, 0, (const uint8_t *)"t", 1, out, keyring_sealed_size(kr, 0, 1), false,
			      0, inner, &o, NULL),
		 PX_OK);
	/* hard blocks */
	CHECK_EQ(keyring_epoch_create(kr, 2, 0), PX_OK);
	CHECK_EQ(keyring_epoch_activate(kr, 0), PX_OK);
	keyring_set_usage_(kr, 0, KR_HARD_BLOCKS - b - 1);
	CHECK_EQ(seal_small(kr, 0, out), PX_OK);
	CHECK_EQ(seal_small(kr, 0, out), PX_ERR_LIMIT); /* one block short */
	CHECK(keyring_newest_secret(kr) != NULL);
	keyring_set_usage_(kr, 1, KR_HARD_BLOCKS - b);
	CHECK_EQ(seal_small(kr, 0, out), PX_OK);
	CHECK_EQ(keyring_can_seal(kr, 0), PX_ERR_LIMIT);
	CHECK(keyring_newest_secret(kr) == NULL);
	/* age: 1.5 T after creation */
	CHECK_EQ(keyring_epoch_create(kr, 3, 1000), PX_OK);
	CHECK_EQ(keyring_epoch_activate(kr, 1000), PX_OK);
	CHECK_EQ(keyring_can_seal(kr, 1000 + T_MS * 3 / 2 - 1), PX_OK);
	CHECK_EQ(keyring_can_seal(kr, 1000 + T_MS * 3 / 2), PX_ERR_EXPIRED);
	CHECK_EQ(seal_small(kr, 1000 + T_MS * 3 / 2, out), PX_ERR_EXPIRED);
	CHECK(keyring_next_expiry(kr) <= 1000 + T_MS * 3 / 2);
	keyring_expire(kr, 1000 + T_MS * 3 / 2);
	CHECK(keyring_newest_secret(kr) == NULL);
	/* explicit retirement */
	CHECK_EQ(keyring_epoch_create(kr, 4, 2000), PX_OK);
	CHECK_EQ(keyring_epoch_activate(kr, 2000), PX_OK);
	keyring_epoch_retire(kr);
	CHECK_EQ(keyring_can_seal(kr, 2000), PX_ERR_LIMIT);
	keyring_free(kr);
}

static void test_lifetimes(void)
{
	struct keyring *kr = ring("me", 10, 16);
	struct sender s;
	struct keyring_stats st;
	uint64_t t0 = 1000, end = 1000 + 90000 + 10000; /* 1.5 * 60 s + grace 10 s */

	sender_init(&s, secret_p, "peer", 7);
	CHECK_EQ(keyring_recv_install(kr, "peer", 7, secret_p, 60, 0, t0), PX_OK);
	CHECK_EQ(keyring_next_expiry(kr), end);
	CHECK_EQ(deliver(kr, &s, end - 1, 1, 0, "a", false), PX_OK);
	CHECK_EQ(deliver(kr, &s, end, 2, 0, "a", false), PX_ERR_EXPIRED);
	keyring_expire(kr, end - 1);
	CHECK(keyring_recv_has(kr, "peer", 7));
	keyring_expire(kr, end);
	CHECK(!keyring_recv_has(kr, "peer", 7));
	CHECK_EQ(deliver(kr, &s, end, 3, 0, "a", false), PX_ERR_UNKNOWN_KEY);
	CHECK_EQ(keyring_next_expiry(kr), UINT64_MAX);
	keyring_get_stats(kr, &st);
	CHECK_EQ(st.recv_keys, 0);
	aead_key_free(s.key);
	keyring_free(kr);
}

/* §9.6: the previous ephemeral key is kept 1.5 T after its successor was created, the one
 * before it goes when the next epoch is created; a replaced pending epoch goes entirely. */
static void test_eph_lifetimes(void)
{
	struct keyring *kr = ring("me", 0, 16);
	uint8_t p1[KEX_PUB_LEN], p2[KEX_PUB_LEN], p3[KEX_PUB_LEN], p4[KEX_PUB_LEN];
	uint64_t e;

	CHECK(!keyring_newest(kr, &e));
	CHECK(keyring_newest_eph(kr) == NULL);
	CHECK_EQ(keyring_epoch_activate(kr, 0), PX_ERR_INVAL);
	CHECK_EQ(keyring_epoch_create(kr, 10, 0), PX_OK);
	CHECK(keyring_pending(kr, &e) && e == 10);
	CHECK(!keyring_active(kr, &e));
	CHECK_EQ(kex_key_public(keyring_newest_eph(kr), p1), PX_OK);
	CHECK_EQ(keyring_epoch_activate(kr, 0), PX_OK);
	CHECK(keyring_active(kr, &e) && e == 10);
	CHECK_EQ(keyring_epoch_create(kr, 10, 0), PX_ERR_INVAL); /* epochs only grow */
	CHECK_EQ(keyring_epoch_create(kr, 11, 1000), PX_OK);
	CHECK(keyring_newest(kr, &e) && e == 11);
	CHECK(keyring_active(kr, &e) && e == 10);
	CHECK_EQ(kex_key_public(keyring_newest_eph(kr), p2), PX_OK);
	CHECK(keyring_eph_for(kr, p1) != NULL);
	CHECK(keyring_eph_for(kr, p2) == keyring_newest_eph(kr));
	CHECK(keyring_recv_has(kr, "me", 10) && keyring_recv_has(kr, "me", 11));
	/* replace the pending epoch 11 by 12: 11's ephemeral key and receive key go, 10's stays */
	CHECK_EQ(keyring_epoch_create(kr, 12, 2000), PX_OK);
	CHECK_EQ(kex_key_public(keyring_newest_eph(kr), p3), PX_OK);
	CHECK(keyring_eph_for(kr, p2) == NULL);
	CHECK(keyring_eph_for(kr, p1) != NULL);
	CHECK(!keyring_recv_has(kr, "me", 11));
	/* 1.5 T after 11 was created, 10's ephemeral key expires */
	CHECK(keyring_next_expiry(kr) <= 1000 + T_MS * 3 / 2);
	keyring_expire(kr, 1000 + T_MS * 3 / 2);
	CHECK(keyring_eph_for(kr, p1) == NULL);
	CHECK(keyring_eph_for(kr, p3) != NULL);
	CHECK_EQ(keyring_epoch_activate(kr, 3000), PX_OK);
	CHECK_EQ(keyring_epoch_create(kr, 13, 4000), PX_OK);
	CHECK_EQ(kex_key_public(keyring_newest_eph(kr), p4), PX_OK);
	CHECK(keyring_eph_for(kr, p3) != NULL);
	CHECK_EQ(keyring_epoch_activate(kr, 4000), PX_OK);
	CHECK_EQ(keyring_epoch_create(kr, 14, 5000), PX_OK);
	CHECK(keyring_eph_for(kr, p3) == NULL); /* epoch e's key goes when e+2 is created */
	CHECK(keyring_eph_for(kr, p4) != NULL);
	keyring_free(kr);
}

static void test_per_peer(void)
{
	struct keyring *kr = ring("me", 0, 16);
	struct sender s1;
	uint64_t e = 0;

	sender_init(&s1, secret_p, "peer", 1);
	CHECK(!keyring_recv_newest(kr, "peer", &e));
	CHECK_EQ(keyring_recv_install(kr, "peer", 1, secret_p, 3600, 0, 0), PX_OK);
	CHECK_EQ(deliver(kr, &s1, 0, 0, 0, "a", false), PX_OK);
	CHECK_EQ(keyring_recv_install(kr, "peer", 3, secret_p, 3600, 0, 0), PX_OK);
	CHECK_EQ(keyring_recv_install(kr, "peer", 2, secret_p, 3600, 0, 0), PX_OK);
	CHECK_EQ(keyring_recv_install(kr, "peer", 2, secret_p, 3600, 0, 0), PX_ERR_EXISTS);
	CHECK(keyring_recv_newest(kr, "peer", &e) && e == 3);
	/* a fourth key erases the oldest */
	CHECK_EQ(keyring_recv_install(kr, "peer", 4, secret_p, 3600, 0, 0), PX_OK);
	CHECK(!keyring_recv_has(kr, "peer", 1));
	CHECK(keyring_recv_has(kr, "peer", 2) && keyring_recv_has(kr, "peer", 3) &&
	      keyring_recv_has(kr, "peer", 4));
	CHECK_EQ(deliver(kr, &s1, 0, 1, 0, "a", false), PX_ERR_UNKNOWN_KEY);
	/* older than all three kept: refused */
	CHECK_EQ(keyring_recv_install(kr, "peer", 1, secret_p, 3600, 0, 0), PX_ERR_STALE);
	CHECK(keyring_recv_newest(kr, "peer", &e) && e == 4);
	aead_key_free(s1.key);
	keyring_free(kr);
}

static void test_remove_peer_and_full(void)
{
	struct keyring *kr = ring("me", 0, 4);
	struct sender sp, sq;
	struct keyring_stats st;
	static const uint8_t secret_q[ANN_SECRET_LEN] = {9, 9, 9};

	sender_init(&sp, secret_p, "p", 1);
	sender_init(&sq, secret_q, "q", 1);
	CHECK_EQ(keyring_recv_install(kr, "p", 1, secret_p, 3600, 0, 0), PX_OK);
	CHECK_EQ(keyring_recv_install(kr, "p", 2, secret_p, 3600, 0, 0), PX_OK);
	CHECK_EQ(keyring_recv_install(kr, "q", 1, secret_q, 3600, 0, 0), PX_OK);
	CHECK_EQ(keyring_recv_install(kr, "q", 2, secret_q, 3600, 0, 0), PX_OK);
	CHECK_EQ(keyring_recv_install(kr, "r", 1, secret_q, 3600, 0, 0), PX_ERR_LIMIT);
	CHECK_EQ(keyring_recv_install(kr, "p", 3, secret_p, 3600, 0, 0), PX_ERR_LIMIT);
	keyring_remove_peer(kr, "p");
	keyring_get_stats(kr, &st);
	CHECK_EQ(st.recv_keys, 2);
	CHECK_EQ(deliver(kr, &sp, 0, 0, 0, "a", false), PX_ERR_UNKNOWN_KEY);
	CHECK_EQ(deliver(kr, &sq, 0, 0, 0, "a", false), PX_OK);
	CHECK_EQ(keyring_recv_install(kr, "q", 3, secret_q, 3600, 0, 0), PX_OK);
	CHECK_EQ(keyring_recv_install(kr, "p", 3, secret_p, 3600, 0, 0), PX_OK);
	/* full, but a fourth key of q replaces q's oldest */
	CHECK_EQ(keyring_recv_install(kr, "q", 4, secret_q, 3600, 0, 0), PX_OK);
	CHECK(!keyring_recv_has(kr, "q", 1));
	aead_key_free(sp.key);
	aead_key_free(sq.key);
	keyring_free(kr);
}

static void test_collision(void)
{
	struct keyring *kr = ring("me", 0, 16);
	struct epoch_keys k;

	CHECK_EQ(epoch_derive(secret_p, "p", 1, ANN_SUITE_1, &k), PX_OK);
	CHECK_EQ(kr_recv_install_keys_(kr, "p", 1, NULL, &k, 3600, 0, 0), PX_OK);
	/* another (peer, epoch) whose key id happens to be the same */
	k.key[0] ^= 1;
	CHECK_EQ(kr_recv_install_keys_(kr, "q", 1, NULL, &k, 3600, 0, 0), PX_ERR_INVAL);
	CHECK_EQ(kr_recv_install_keys_(kr, "p", 2, NULL, &k, 3600, 0, 0), PX_ERR_INVAL);
	CHECK(!keyring_recv_has(kr, "q", 1));
	keyring_free(kr);
}

/* Many keys, many removals: every remaining key is still found through the hash table. */
static void test_table(void)
{
	enum { PEERS = 100 };
	struct keyring *kr = ring("me", 0, PEERS * 3);
	uint8_t sec[ANN_SECRET_LEN] = {0};
	char id[16];
	int p, e, removed = 0;

	for (p = 0; p < PEERS; p++)
		for (e = 1; e <= 3; e++) {
			snprintf(id, sizeof(id), "n%d", p);
			sec[0] = (uint8_t)p;
			sec[1] = (uint8_t)e;
			CHECK_EQ(keyring_recv_install(kr, id, (uint64_t)e, sec, 3600, 0, 0), PX_OK);
		}
	for (p = 0; p < PEERS; p += 3) {
		snprintf(id, sizeof(id), "n%d", p);
		keyring_remove_peer(kr, id);
		removed++;
	}
	for (p = 0; p < PEERS; p++)
		for (e = 1; e <= 3; e++) {
			struct sender s;
			snprintf(id, sizeof(id), "n%d", p);
			sec[0] = (uint8_t)p;
			sec[1] = (uint8_t)e;
			sender_init(&s, sec, id, (uint64_t)e);
			CHECK_EQ(deliver(kr, &s, 0, 0, 0, "x", false), p % 3 ? PX_OK : PX_ERR_UNKNOWN_KEY);
			aead_key_free(s.key);
		}
	{
		struct keyring_stats st;
		keyring_get_stats(kr, &st);
		CHECK_EQ(st.recv_keys, (size_t)(PEERS - removed) * 3);
	}
	keyring_free(kr);
}

static void test_own_messages(void)
{
	struct keyring *kr = ring("me", 0, 16);
	uint8_t out[256], inner[256];
	struct env_opened o;
	struct keyring_stats st;
	const char *sender = NULL;
	size_t n = keyring_sealed_size(kr, 3, 5);
	uint64_t e;

	CHECK_EQ(keyring_epoch_create(kr, 100, 0), PX_OK);
	CHECK_EQ(keyring_epoch_activate(kr, 0), PX_OK);
	CHECK_EQ(keyring_seal(kr, 0, 0, ENV_FLAG_RETAIN, (const uint8_t *)"a/b", 3,
			      (const uint8_t *)"\x01\x00\x01", 3, (const uint8_t *)"hello", 5, out, n),
		 PX_OK);
	CHECK_EQ(keyring_newest_next_counter(kr), 1);
	CHECK_EQ(keyring_open(kr, NULL, 0, (const uint8_t *)"a/b", 3, out, n, false, 0, inner, &o, &sender),
		 PX_OK);
	CHECK(sender && strcmp(sender, "me") == 0);
	CHECK(o.props_len == 3 && memcmp(o.props, "\x01\x00\x01", 3) == 0);
	CHECK(o.payload_len == 5 && memcmp(o.payload, "hello", 5) == 0);
	/* after the next activation, messages of the old epoch still open (own receive key) */
	CHECK_EQ(keyring_seal(kr, 0, 0, 0, (const uint8_t *)"a/b", 3, NULL, 0, (const uint8_t *)"later", 5, out,
			      keyring_sealed_size(kr, 0, 5)),
		 PX_OK);
	CHECK_EQ(keyring_epoch_create(kr, 101, 10), PX_OK);
	CHECK(keyring_newest(kr, &e) && e == 101);
	CHECK_EQ(keyring_newest_next_counter(kr), 0);
	CHECK_EQ(keyring_epoch_activate(kr, 10), PX_OK);
	CHECK_EQ(keyring_open(kr, NULL, 10, (const uint8_t *)"a/b", 3, out, keyring_sealed_size(kr, 0, 5),
			      false, 0, inner, &o, NULL),
		 PX_OK);
	keyring_get_stats(kr, &st);
	CHECK_EQ(st.active_epoch, 101);
	CHECK_EQ(st.active_messages, 0);
	CHECK_EQ(st.recv_keys, 2);
	keyring_free(kr);
}

int main(void)
{
	test_params();
	test_replay();
	test_malformed_inner();
	test_floor_and_retained();
	test_limits_pure();
	test_limits_seal();
	test_lifetimes();
	test_eph_lifetimes();
	test_per_peer();
	test_remove_peer_and_full();
	test_collision();
	test_table();
	test_own_messages();
	CHECK_DONE();
}
