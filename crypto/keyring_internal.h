/* keyring_internal.h - the key ring's state, shared by keyring.c (own epochs, sealing, time) and
 * keyring_recv.c (the receive-key table, installing and opening). Not for use outside crypto/,
 * except by the key ring's own unit tests (the hooks at the end). */
#ifndef PX_KEYRING_INTERNAL_H
#define PX_KEYRING_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "aead.h"
#include "announce_internal.h"
#include "envelope.h"
#include "keyring.h"
#include "replay.h"

#define KR_DIGEST_LEN 32    /* SHA-256 of a topic name */
#define KR_TOPICS_MAX 1024  /* retained topics remembered per receive key (PROTOCOL.md §6.3) */
#define KR_MAX_KEYS   65536 /* receive-table capacity bound: 256 peers * 3 is far below */
#define KR_MS_PER_S   1000u

/* One slot of a receive key's retained map: topic -> last counter accepted with retain_intent. */
struct kr_topic {
	uint8_t digest[KR_DIGEST_LEN];
	uint64_t counter;
	bool used;
};

/* Open addressing over the topic digests; grows by doubling up to 2 * KR_TOPICS_MAX slots. */
struct kr_topics {
	struct kr_topic *slots;
	size_t cap;
	size_t count;
};

/* One receive key of (peer, epoch), PROTOCOL.md §6. From OPENSSL_zalloc, freed cleansed. */
struct kr_recv {
	uint8_t key_id[ENV_KEY_ID_LEN];
	char peer_id[ANN_ID_MAX + 1];
	uint64_t epoch;
	uint64_t expires_ms;
	struct aead_key *aead;
	struct replay *window;
	struct kr_topics topics;
};

/* One own sending epoch (pending or active). aead is NULL once the key is retired (§9.6). */
struct kr_send {
	uint64_t epoch;
	uint8_t key_id[ENV_KEY_ID_LEN];
	uint8_t secret[ANN_SECRET_LEN];
	struct aead_key *aead;
	uint64_t counter;
	uint64_t blocks;
	uint64_t created_ms;
};

/* An own ephemeral key pair: [0] the newest epoch's, [1] the previous one while kept. */
struct kr_eph {
	struct kex_key *key;
	uint8_t pub[KEX_PUB_LEN];
	uint64_t expires_ms; /* UINT64_MAX for the newest */
};

struct keyring {
	char self_id[ANN_ID_MAX + 1];
	uint32_t interval_s;
	unsigned grace_s;
	unsigned padding;
	unsigned replay_bits;
	size_t max_keys;

	struct kr_send *pending;
	struct kr_send *active;
	struct kr_eph eph[2];
	uint64_t last_epoch;
	bool any_epoch;

	struct kr_recv **slots; /* open addressing, linear probing, keyed by key id */
	size_t cap;		/* a power of two >= 2 * max_keys */
	size_t nrecv;

	EVP_MD *sha256; /* fetched once (R46) */
	EVP_MD_CTX *mdctx;
	uint64_t auth_failures;
};

/* keyring_recv.c */
enum px_err kr_table_init_(struct keyring *kr);
void kr_table_free_(struct keyring *kr);
/* Installs already derived keys (the caller erases k). Errors as keyring_recv_install. */
enum px_err kr_recv_install_keys_(struct keyring *kr, const char *peer_id, uint64_t epoch,
				  const struct epoch_keys *k, uint32_t interval_s, uint64_t floor,
				  uint64_t now_ms);
void kr_recv_remove_epoch_(struct keyring *kr, const char *peer_id, uint64_t epoch);
void kr_recv_expire_(struct keyring *kr, uint64_t now_ms);
uint64_t kr_recv_next_expiry_(const struct keyring *kr);

/* 1.5 * interval_s in milliseconds (§9.4, §9.6). */
uint64_t kr_lifetime_ms_(uint32_t interval_s);

/* Test hook: sets the active key's usage counters, to exercise the limits of §9.4. */
void keyring_set_usage_(struct keyring *kr, uint64_t counter, uint64_t blocks);

#endif
