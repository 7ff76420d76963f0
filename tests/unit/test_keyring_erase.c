/* test_keyring_erase.c - "no secret of an erased epoch remains in the key ring" (PROTOCOL.md
 * §9.6, R41). Every OpenSSL allocation goes through a tracking allocator installed before any
 * OpenSSL call: it keeps the list of live blocks and, on every free, scans the block for the
 * watched secrets (an epoch's sender secret, data key and data IV) before releasing it. The test
 * first shows the secrets are in live memory while the epoch lives (so it is not vacuous), then
 * that after activation of the next epoch, expiry, a fourth key or peer removal no live block
 * holds them, and that no block was ever freed with one still in it. */
/* memmem: _GNU_SOURCE comes from px_flags */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "keyring.h"

#include "check.h"

#define WATCH_MAX 8

struct block {
	void *p;
	size_t n;
};

static struct block *blocks;
static size_t nblocks, capblocks;

static struct {
	const char *name;
	uint8_t bytes[32];
	size_t len;
} watch[WATCH_MAX];
static size_t nwatch;
static unsigned long freed_with_secret;

/* Which watched secret (index) b contains, or -1. */
static int scan(const void *p, size_t n)
{
	size_t i;

	for (i = 0; i < nwatch; i++)
		if (memmem(p, n, watch[i].bytes, watch[i].len))
			return (int)i;
	return -1;
}

static void track(void *p, size_t n)
{
	if (nblocks == capblocks) {
		size_t cap = capblocks ? 2 * capblocks : 1024;
		struct block *b = realloc(blocks, cap * sizeof(*b));
		if (!b)
			abort();
		blocks = b;
		capblocks = cap;
	}
	blocks[nblocks].p = p;
	blocks[nblocks].n = n;
	nblocks++;
}

static size_t untrack(void *p)
{
	size_t i, n;

	for (i = nblocks; i-- > 0;)
		if (blocks[i].p == p) {
			n = blocks[i].n;
			blocks[i] = blocks[--nblocks];
			return n;
		}
	abort(); /* freeing something OpenSSL never allocated through us */
}

static void *t_malloc(size_t n, const char *file, int line)
{
	void *p = malloc(n ? n : 1);

	(void)file;
	(void)line;
	if (p)
		track(p, n);
	return p;
}

static void t_free(void *p, const char *file, int line)
{
	size_t n;
	int w;

	if (!p)
		return;
	n = untrack(p);
	w = scan(p, n);
	if (w >= 0) {
		fprintf(stderr, "freed %zu bytes still holding %s (%s:%d)\n", n, watch[w].name, file, line);
		freed_with_secret++;
	}
	free(p);
}

/* realloc as malloc + copy + free, so the old block is scanned like any other free. */
static void *t_realloc(void *p, size_t n, const char *file, int line)
{
	size_t old, i;
	void *q;

	if (!p)
		return t_malloc(n, file, line);
	if (n == 0) {
		t_free(p, file, line);
		return NULL;
	}
	for (i = 0, old = 0; i < nblocks; i++)
		if (blocks[i].p == p)
			old = blocks[i].n;
	q = t_malloc(n, file, line);
	if (!q)
		return NULL;
	memcpy(q, p, old < n ? old : n);
	t_free(p, file, line);
	return q;
}

/* Whether any live OpenSSL block holds watched secret i. */
static int live_holds(size_t i)
{
	size_t b;

	for (b = 0; b < nblocks; b++)
		if (memmem(blocks[b].p, blocks[b].n, watch[i].bytes, watch[i].len))
			return 1;
	return 0;
}

static size_t add_watch(const char *name, const uint8_t *bytes, size_t len)
{
	watch[nwatch].name = name;
	memcpy(watch[nwatch].bytes, bytes, len);
	watch[nwatch].len = len;
	return nwatch++;
}

static struct keyring *ring(void)
{
	struct keyring_params p = {
		.self_id = "me", .interval_s = 60, .padding = 16, .replay_bits = 8192, .max_keys = 16};
	struct keyring *kr = NULL;

	CHECK_EQ(keyring_new(&p, &kr), PX_OK);
	return kr;
}

static void seal_one(struct keyring *kr, uint64_t now)
{
	uint8_t out[128], inner[128];
	struct env_opened o;
	size_t n = keyring_sealed_size(kr, 0, 5);

	CHECK_EQ(keyring_seal(kr, now, 0, 0, (const uint8_t *)"t", 1, NULL, 0, (const uint8_t *)"hello", 5, out,
			      n),
		 PX_OK);
	CHECK_EQ(keyring_open(kr, NULL, now, (const uint8_t *)"t", 1, out, n, false, 0, inner, &o, NULL),
		 PX_OK);
}

/* Own epoch: secret, data key and IV live while the epoch is active; the secret goes at the next
 * activation; key and IV stay in the own receive key until it expires (1.5 * 60 s). */
static void test_own_epoch(void)
{
	static const uint8_t secret[32] = "own sender secret of epoch 1000";
	static const uint8_t priv[32] = {0x40, 1, 2, 3, 4, 5, 6, 7};
	struct keyring *kr = ring();
	struct kex_key *eph = NULL;
	struct epoch_keys k;
	size_t ws, wk, wi;

	CHECK_EQ(epoch_derive(secret, "me", 1000, ANN_SUITE_1, &k), PX_OK);
	CHECK_EQ(kex_key_from_private(priv, &eph), PX_OK);
	ws = add_watch("own sender secret", secret, 32);
	wk = add_watch("own data key", k.key, 32);
	wi = add_watch("own data iv", k.iv, 12);
	OPENSSL_cleanse(&k, sizeof(k));

	CHECK_EQ(keyring_epoch_create_fixed(kr, 1000, 0, eph, secret), PX_OK);
	CHECK_EQ(keyring_epoch_activate(kr, 0), PX_OK);
	seal_one(kr, 1);
	CHECK(live_holds(ws));
	CHECK(live_holds(wk));
	CHECK(live_holds(wi));

	CHECK_EQ(keyring_epoch_create(kr, 1001, 1000), PX_OK);
	CHECK(live_holds(ws)); /* pending only: epoch 1000 is still the one sealing */
	CHECK_EQ(keyring_epoch_activate(kr, 1000), PX_OK);
	CHECK(!live_holds(ws));
	CHECK(live_holds(wk)); /* the own receive key of 1000 lives on */
	keyring_expire(kr, 90000 - 1);
	CHECK(live_holds(wk));
	keyring_expire(kr, 90000);
	CHECK(!live_holds(wk));
	CHECK(!live_holds(wi));
	keyring_free(kr);
	nwatch = 0;
}

/* Own epoch retired at a hard limit: the sending key and secret go at once. */
static void test_own_retire(void)
{
	static const uint8_t secret[32] = "own sender secret, retired";
	static const uint8_t priv[32] = {0x41, 1, 2, 3};
	struct keyring *kr = ring();
	struct kex_key *eph = NULL;
	size_t ws;

	CHECK_EQ(kex_key_from_private(priv, &eph), PX_OK);
	ws = add_watch("retired sender secret", secret, 32);
	CHECK_EQ(keyring_epoch_create_fixed(kr, 5, 0, eph, secret), PX_OK);
	CHECK_EQ(keyring_epoch_activate(kr, 0), PX_OK);
	CHECK(live_holds(ws));
	keyring_epoch_retire(kr);
	CHECK(!live_holds(ws));
	keyring_free(kr);
	nwatch = 0;
}

/* Receive keys: the sender secret never stays; data key and IV go at expiry, when a fourth key
 * of the peer arrives, or when the peer is removed. */
static void test_receive_keys(void)
{
	static const uint8_t s1[32] = "peer secret of epoch 1", s2[32] = "peer secret of epoch 2";
	static const uint8_t s3[32] = "peer secret of epoch 3", s4[32] = "peer secret of epoch 4";
	struct keyring *kr = ring();
	struct epoch_keys k1, k2;
	size_t w1, w2, ws;

	CHECK_EQ(epoch_derive(s1, "peer", 1, ANN_SUITE_1, &k1), PX_OK);
	CHECK_EQ(epoch_derive(s2, "peer", 2, ANN_SUITE_1, &k2), PX_OK);
	w1 = add_watch("receive key 1", k1.key, 32);
	w2 = add_watch("receive key 2", k2.key, 32);
	ws = add_watch("peer secret 1", s1, 32);
	OPENSSL_cleanse(&k1, sizeof(k1));
	OPENSSL_cleanse(&k2, sizeof(k2));

	CHECK_EQ(keyring_recv_install(kr, "peer", 1, s1, 60, 0, 0), PX_OK);
	CHECK(live_holds(w1));
	CHECK(!live_holds(ws)); /* §4.2: receivers erase the sender secret right after derivation */
	CHECK_EQ(keyring_recv_install(kr, "peer", 2, s2, 60, 0, 0), PX_OK);
	CHECK_EQ(keyring_recv_install(kr, "peer", 3, s3, 60, 0, 0), PX_OK);
	CHECK_EQ(keyring_recv_install(kr, "peer", 4, s4, 60, 0, 0), PX_OK);
	CHECK(!live_holds(w1)); /* a fourth key of the peer erased the oldest */
	CHECK(live_holds(w2));
	keyring_remove_peer(kr, "peer");
	CHECK(!live_holds(w2));

	CHECK_EQ(keyring_recv_install(kr, "peer", 2, s2, 60, 0, 1000), PX_OK);
	CHECK(live_holds(w2));
	keyring_expire(kr, 1000 + 90000);
	CHECK(!live_holds(w2));
	keyring_free(kr);
	nwatch = 0;
}

/* Everything goes at keyring_free. */
static void test_free(void)
{
	static const uint8_t secret[32] = "sender secret freed with ring";
	static const uint8_t priv[32] = {0x42, 9};
	struct keyring *kr = ring();
	struct kex_key *eph = NULL;
	struct epoch_keys k;
	size_t ws, wk;

	CHECK_EQ(epoch_derive(secret, "me", 7, ANN_SUITE_1, &k), PX_OK);
	CHECK_EQ(kex_key_from_private(priv, &eph), PX_OK);
	ws = add_watch("sender secret at free", secret, 32);
	wk = add_watch("data key at free", k.key, 32);
	OPENSSL_cleanse(&k, sizeof(k));
	CHECK_EQ(keyring_epoch_create_fixed(kr, 7, 0, eph, secret), PX_OK);
	CHECK_EQ(keyring_epoch_activate(kr, 0), PX_OK);
	CHECK_EQ(keyring_recv_install(kr, "peer", 1, secret, 60, 0, 0), PX_OK);
	seal_one(kr, 0);
	CHECK(live_holds(ws) && live_holds(wk));
	keyring_free(kr);
	CHECK(!live_holds(ws) && !live_holds(wk));
	nwatch = 0;
}

int main(void)
{
	/* First thing, before any OpenSSL call: every OpenSSL allocation is tracked. */
	if (CRYPTO_set_mem_functions(t_malloc, t_realloc, t_free) != 1) {
		fprintf(stderr, "CRYPTO_set_mem_functions failed\n");
		return 1;
	}
	test_own_epoch();
	test_own_retire();
	test_receive_keys();
	test_free();
	CHECK_EQ(freed_with_secret, 0);
	CHECK_DONE();
}
