/* test_keyring_groups.c - the key ring with read groups (PROTOCOL.md §4.2, §7.3 step 8, §11.1):
 * an epoch's sending key per group, each with its own secret, key id, counter and usage limits;
 * own keys of every group open own messages; receive keys tagged with their group, counted per
 * (peer, group), and the group reported by the open path and by keyring_key_group; dropping a
 * pending epoch erases its keys of every group; the index of keys by peer (keyring_peers.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "keyring_internal.h"

#include "check.h"

static const uint8_t secret_d[ANN_SECRET_LEN] = {1, 2, 3};
static const uint8_t secret_g[ANN_SECRET_LEN] = {9, 8, 7};

static struct keyring *ring(const char *self)
{
	struct keyring_params p = {.self_id = self,
				   .interval_s = 3600,
				   .padding = 16,
				   .replay_bits = REPLAY_BITS_DEFAULT,
				   .max_keys = 64};
	struct keyring *kr = NULL;

	CHECK_EQ(keyring_new(&p, &kr), PX_OK);
	return kr;
}

static size_t seal_own(struct keyring *kr, const char *group, const char *topic, uint8_t *out)
{
	size_t n = keyring_sealed_size(kr, 0, 4);

	CHECK_EQ(keyring_seal_group(kr, group, 0, 0, 0, (const uint8_t *)topic, strlen(topic), NULL, 0,
				    (const uint8_t *)"data", 4, out, n),
		 PX_OK);
	return n;
}

/* Opens env with kr for rx; the result, and the key's group in *group. */
static enum px_err open_one(struct keyring *kr, struct keyring_rx *rx, const char *topic, const uint8_t *env,
			    size_t n, const char **group)
{
	uint8_t inner[256];
	struct kr_opened o;
	enum px_err rc = keyring_open_decide(kr, rx, 0, (const uint8_t *)topic, strlen(topic), env, n, inner, &o);

	*group = rc == PX_OK ? o.group : NULL;
	return rc;
}

static void test_own_group_keys(void)
{
	struct keyring *kr = ring("me");
	struct keyring_rx *rx = NULL;
	struct epoch_keys k;
	uint8_t out[256];
	struct env_header h;
	const char *g = NULL;
	size_t n, i;

	CHECK_EQ(keyring_epoch_add_group(kr, "commands"), PX_ERR_INVAL); /* nothing pending */
	CHECK_EQ(keyring_epoch_create(kr, 100, 0), PX_OK);
	CHECK_EQ(keyring_epoch_add_group_fixed(kr, "commands", secret_g), PX_OK);
	CHECK_EQ(keyring_epoch_add_group_fixed(kr, "commands", secret_g), PX_ERR_EXISTS);
	CHECK_EQ(keyring_epoch_add_group(kr, "a b"), PX_ERR_INVAL);
	CHECK_EQ(keyring_epoch_add_group(kr, ""), PX_ERR_INVAL); /* the default group is the epoch's own */
	CHECK_EQ(keyring_epoch_add_group(kr, "telemetry"), PX_OK);
	CHECK(strcmp(keyring_newest_group_at(kr, 0), "commands") == 0);
	CHECK(strcmp(keyring_newest_group_at(kr, 1), "telemetry") == 0);
	CHECK(keyring_newest_group_at(kr, 2) == NULL);
	CHECK_MEM(keyring_newest_group_secret(kr, "commands"), secret_g, ANN_SECRET_LEN);
	/* independent secrets: the default's and telemetry's are not commands' nor each other's */
	CHECK(memcmp(keyring_newest_group_secret(kr, "telemetry"), keyring_newest_secret(kr), ANN_SECRET_LEN) != 0);
	CHECK(keyring_newest_group_secret(kr, "other") == NULL);
	CHECK_EQ(keyring_can_seal_group(kr, "commands", 0), PX_ERR_UNKNOWN_KEY); /* pending only */
	CHECK_EQ(keyring_epoch_activate(kr, 0), PX_OK);
	CHECK_EQ(keyring_can_seal_group(kr, "other", 0), PX_ERR_UNKNOWN_KEY);
	/* one counter per key: 3 messages under the default key, then the first under commands */
	for (i = 0; i < 3; i++)
		(void)seal_own(kr, NULL, "a/b", out);
	CHECK_EQ(keyring_newest_next_counter(kr), 3);
	CHECK_EQ(keyring_newest_group_next_counter(kr, "commands"), 0);
	n = seal_own(kr, "commands", "cmd/x", out);
	CHECK_EQ(keyring_newest_group_next_counter(kr, "commands"), 1);
	CHECK_EQ(keyring_newest_group_next_counter(kr, "telemetry"), 0);
	CHECK_EQ(env_parse_header(out, n, &h), PX_OK);
	CHECK_EQ(h.counter, 0);
	/* the key id is the group's (§4.2 with str8(group)), not the default's */
	CHECK_EQ(epoch_derive_group(secret_g, "me", 100, ANN_SUITE_1, "commands", &k), PX_OK);
	CHECK_MEM(h.key_id, k.key_id, ENV_KEY_ID_LEN);
	CHECK(strcmp(keyring_key_group(kr, h.key_id), "commands") == 0);
	/* own keys of every group open own messages, and say which group */
	CHECK_EQ(keyring_rx_new(&rx), PX_OK);
	CHECK_EQ(open_one(kr, rx, "cmd/x", out, n, &g), PX_OK);
	CHECK(g && strcmp(g, "commands") == 0);
	n = seal_own(kr, NULL, "a/b", out);
	CHECK_EQ(open_one(kr, rx, "a/b", out, n, &g), PX_OK);
	CHECK(g && strcmp(g, "") == 0);
	/* usage limits per key: the default key at its hard limit, commands still seals */
	keyring_set_usage_(kr, KR_HARD_MESSAGES, 0);
	CHECK_EQ(keyring_can_seal(kr, 0), PX_ERR_LIMIT);
	CHECK_EQ(keyring_can_seal_group(kr, "commands", 0), PX_OK);
	CHECK(keyring_wants_rotation(kr)); /* the epoch rotates as a whole */
	/* retiring the epoch retires every group key */
	keyring_epoch_retire(kr);
	CHECK_EQ(keyring_can_seal_group(kr, "commands", 0), PX_ERR_LIMIT);
	keyring_rx_free(rx);
	OPENSSL_cleanse(&k, sizeof(k));
	keyring_free(kr);
}

static void test_drop_pending_all_groups(void)
{
	struct keyring *kr = ring("me");
	struct keyring_stats st;

	CHECK_EQ(keyring_epoch_create(kr, 1, 0), PX_OK);
	CHECK_EQ(keyring_epoch_activate(kr, 0), PX_OK);
	CHECK_EQ(keyring_epoch_create(kr, 2, 0), PX_OK);
	CHECK_EQ(keyring_epoch_add_group(kr, "commands"), PX_OK);
	keyring_get_stats(kr, &st);
	CHECK_EQ(st.recv_keys, 3); /* self: epoch 1, epoch 2 default and commands */
	keyring_epoch_drop_pending(kr);
	keyring_get_stats(kr, &st);
	CHECK_EQ(st.recv_keys, 1);
	CHECK(!keyring_recv_has_group(kr, "me", 2, "commands"));
	CHECK(keyring_newest_group_at(kr, 0) == NULL);
	keyring_free(kr);
}

/* A peer's message of epoch under group's key (derived as the peer does). */
static size_t peer_seal(const uint8_t secret[static ANN_SECRET_LEN], uint64_t epoch, const char *group,
			uint64_t counter, const char *topic, uint8_t *out)
{
	struct env_header h = {.counter = counter};
	struct aead_key *key = NULL;
	struct epoch_keys k;
	size_t n = env_sealed_size(0, 4, 16);

	CHECK_EQ(epoch_derive_group(secret, "p", epoch, ANN_SUITE_1, group, &k), PX_OK);
	CHECK_EQ(aead_key_new(k.key, k.iv, &key), PX_OK);
	memcpy(h.key_id, k.key_id, ENV_KEY_ID_LEN);
	CHECK_EQ(env_seal(key, &h, (const uint8_t *)topic, strlen(topic), NULL, 0, (const uint8_t *)"data", 4, 16,
			  out, n),
		 PX_OK);
	aead_key_free(key);
	OPENSSL_cleanse(&k, sizeof(k));
	return n;
}

static void test_recv_group_keys(void)
{
	struct keyring *kr = ring("me");
	struct keyring_rx *rx = NULL;
	uint8_t out[256];
	const char *g = NULL;
	uint64_t e, epoch;
	size_t n;

	CHECK_EQ(keyring_rx_new(&rx), PX_OK);
	CHECK_EQ(keyring_recv_install_group(kr, "p", 1, NULL, secret_d, 3600, 0, 0), PX_OK);
	CHECK_EQ(keyring_recv_install_group(kr, "p", 1, "commands", secret_g, 3600, 0, 0), PX_OK);
	CHECK_EQ(keyring_recv_install_group(kr, "p", 1, "commands", secret_g, 3600, 0, 0), PX_ERR_EXISTS);
	CHECK_EQ(keyring_recv_install(kr, "p", 1, secret_d, 3600, 0, 0), PX_ERR_EXISTS);
	CHECK_EQ(keyring_recv_install_group(kr, "p", 1, "x y", secret_g, 3600, 0, 0), PX_ERR_INVAL);
	CHECK(keyring_recv_has(kr, "p", 1) && keyring_recv_has_group(kr, "p", 1, "commands"));
	CHECK(!keyring_recv_has_group(kr, "p", 1, "telemetry"));
	/* the same secret under another group name is another key: a key is bound to its group */
	n = peer_seal(secret_g, 1, NULL, 0, "cmd/x", out);
	CHECK_EQ(open_one(kr, rx, "cmd/x", out, n, &g), PX_ERR_UNKNOWN_KEY);
	n = peer_seal(secret_g, 1, "commands", 0, "cmd/x", out);
	CHECK_EQ(open_one(kr, rx, "cmd/x", out, n, &g), PX_OK);
	CHECK(g && strcmp(g, "commands") == 0);
	n = peer_seal(secret_d, 1, NULL, 0, "a/b", out);
	CHECK_EQ(open_one(kr, rx, "a/b", out, n, &g), PX_OK);
	CHECK(g && strcmp(g, "") == 0);
	/* three keys per (peer, group): commands epochs 2..4 push out commands 1, not the default's */
	for (epoch = 2; epoch <= 4; epoch++)
		CHECK_EQ(keyring_recv_install_group(kr, "p", epoch, "commands", secret_g, 3600, 0, 0), PX_OK);
	CHECK(!keyring_recv_has_group(kr, "p", 1, "commands"));
	CHECK(keyring_recv_has(kr, "p", 1));
	/* acked_epoch (the newest default-group key) ignores group keys */
	CHECK(keyring_recv_newest(kr, "p", &e) && e == 1);
	keyring_remove_peer(kr, "p");
	CHECK(!keyring_recv_has_group(kr, "p", 4, "commands") && !keyring_recv_has(kr, "p", 1));
	keyring_rx_free(rx);
	keyring_free(kr);
}

/* Keys of peer_id as the table holds them, and as its index list does: the same count. */
static void check_index(const struct keyring *kr, const char *peer_id)
{
	const struct kr_recv *r;
	size_t i, in_table = 0, in_list = 0;

	for (i = 0; i < kr->cap; i++)
		in_table += kr->slots[i] && strcmp(kr->slots[i]->peer_id, peer_id) == 0;
	for (r = kr_peer_keys_(kr, peer_id); r && in_list <= in_table; r = r->peer_next) {
		CHECK(strcmp(r->peer_id, peer_id) == 0);
		CHECK(kr_lookup_(kr, r->key_id) == r);
		in_list++;
	}
	CHECK_EQ(in_list, in_table);
}

/* The index by peer stays the table's view through installs (with the fourth key of a group
 * pushing out the oldest), epoch removal, shortening and expiry, peer removal, over many peers. */
static void test_peer_index(void)
{
	struct keyring_params p = {.self_id = "me", .interval_s = 3600, .padding = 16,
				   .replay_bits = REPLAY_BITS_DEFAULT, .max_keys = 4096};
	static const char *groups[] = {NULL, "g1", "g2"};
	struct keyring *kr = NULL;
	uint8_t secret[ANN_SECRET_LEN] = {0};
	char id[16];
	size_t peer, g, e;

	CHECK_EQ(keyring_new(&p, &kr), PX_OK);
	for (peer = 0; peer < 300; peer++) {
		snprintf(id, sizeof(id), "peer-%zu", peer);
		for (e = 1; e <= 4; e++)
			for (g = 0; g < 3; g++) {
				secret[0] = (uint8_t)peer;
				secret[1] = (uint8_t)(peer >> 8);
				secret[2] = (uint8_t)e;
				secret[3] = (uint8_t)g;
				CHECK_EQ(keyring_recv_install_group(kr, id, e, groups[g], secret, 3600, 0,
								    e * 1000u),
					 PX_OK);
			}
	}
	CHECK_EQ(kr->nrecv, 300u * 3 * 3); /* epoch 1 of each group pushed out */
	for (peer = 0; peer < 300; peer += 7) {
		snprintf(id, sizeof(id), "peer-%zu", peer);
		check_index(kr, id);
		CHECK(!keyring_recv_has_group(kr, id, 1, "g1") && keyring_recv_has_group(kr, id, 4, "g2"));
		if (peer % 2)
			keyring_remove_peer(kr, id);
		else
			kr_recv_remove_epoch_(kr, id, 3);
		CHECK_EQ(keyring_recv_shorten(kr, id, 4, 5000), peer % 2 ? 0u : 3u);
		check_index(kr, id);
	}
	keyring_expire(kr, 5000); /* the shortened epoch-2 keys go */
	for (peer = 0; peer < 300; peer++) {
		snprintf(id, sizeof(id), "peer-%zu", peer);
		check_index(kr, id);
	}
	keyring_free(kr);
}

int main(void)
{
	test_own_group_keys();
	test_drop_pending_all_groups();
	test_recv_group_keys();
	test_peer_index();
	CHECK_DONE();
}
