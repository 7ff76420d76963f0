/* keyring_internal.h - the key ring's state, shared by keyring.c (own epochs, sealing, time),
 * keyring_recv.c (the receive-key table, installing and opening) and keyring_rx.c (replay state:
 * windows and retained maps, per key and per receiver). Not for use outside crypto/, except by the
 * key ring's own unit tests (the hooks at the end). */
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

/* The replay state of one key for one receiver (§6.2, §6.3): the window, whose floor is kept
 * here too (replay.h does not expose it), and the retained map. No secret. */
struct kr_state {
	struct replay *window; /* NULL: not initialised */
	uint64_t floor;
	struct kr_topics topics;
};

/* One receive key of (peer, epoch, group), PROTOCOL.md §6, §11.1. From OPENSSL_zalloc, freed
 * cleansed. */
struct kr_recv {
	uint8_t key_id[ENV_KEY_ID_LEN];
	char peer_id[ANN_ID_MAX + 1];
	char group[ANN_GROUP_MAX + 1]; /* "" for the default group */
	uint64_t epoch;
	uint64_t expires_ms;
	uint64_t floor;	 /* counter floor from the announcement entry (§6.3) */
	uint64_t serial; /* unique per installation in this ring: tells a reinstalled key apart */
	struct kr_recv *peer_next; /* the next key of the same peer (keyring_peers.c) */
	struct aead_key *aead;
	struct kr_state own; /* used when keyring_open gets no keyring_rx */
};

/* A peer's entry in the index by peer id (keyring_peers.c): the list of its receive keys. */
struct kr_peer_ix {
	char id[ANN_ID_MAX + 1];
	struct kr_recv *keys; /* linked through kr_recv.peer_next; never empty in the table */
};

/* One own sending key of an epoch (pending or active) and a group (§4.2: one secret per group
 * this node seals for): the default group's heads the epoch, the named groups' follow through
 * next, each with its own counter and usage limits (§9.4). aead is NULL once the key is retired
 * (§9.6). */
struct kr_send {
	struct kr_send *next;	       /* the epoch's next group key, or NULL */
	char group[ANN_GROUP_MAX + 1]; /* "" for the default group */
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
	uint64_t next_serial; /* kr_recv.serial of the next installation */
	struct kr_peer_ix **peers; /* index by peer id: open addressing, cap slots, keyring_peers.c */

	/* key ids of the latest erased receive keys (not secret: they travel in every envelope), so
	 * a message under one is dropped at once as stale instead of waiting for an announcement */
	uint8_t erased[KR_ERASED_IDS][ENV_KEY_ID_LEN];
	unsigned erased_next, nerased;

	EVP_MD *sha256; /* fetched once (R46) */
	EVP_MD_CTX *mdctx;
	uint64_t auth_failures;
};

/* keyring_recv.c */
enum px_err kr_table_init_(struct keyring *kr);
void kr_table_free_(struct keyring *kr);
/* Installs already derived keys of group (NULL or "": default; the caller checked the name and
 * erases k). Errors as keyring_recv_install_group. */
enum px_err kr_recv_install_keys_(struct keyring *kr, const char *peer_id, uint64_t epoch, const char *group,
				  const struct epoch_keys *k, uint32_t interval_s, uint64_t floor,
				  uint64_t now_ms);
/* Erases every key (of every group) of (peer_id, epoch). */
void kr_recv_remove_epoch_(struct keyring *kr, const char *peer_id, uint64_t epoch);
/* The receive key with this key id, or NULL. */
struct kr_recv *kr_lookup_(const struct keyring *kr, const uint8_t key_id[static ENV_KEY_ID_LEN]);
/* Table slot of a key id: its first 8 bytes (uniform HKDF output, see keyring_recv.c) masked. */
size_t kr_key_home_(const uint8_t key_id[static ENV_KEY_ID_LEN], size_t cap);

/* keyring_peers.c: the index of receive keys by peer id. */
enum px_err kr_peers_init_(struct keyring *kr); /* after kr->cap is set */
void kr_peers_free_(struct keyring *kr);	/* frees the index only, not the keys */
/* The first of peer_id's keys (then through peer_next), or NULL. */
struct kr_recv *kr_peer_keys_(const struct keyring *kr, const char *peer_id);
/* Adds r (r->peer_id set) to its peer's list; PX_ERR_NOMEM if a new entry cannot be made. */
enum px_err kr_peer_link_(struct keyring *kr, struct kr_recv *r);
/* Removes r from its peer's list (a peer left without keys leaves the index). */
void kr_peer_unlink_(struct keyring *kr, const struct kr_recv *r);

/* keyring_rx.c */
enum px_err kr_state_init_(struct kr_state *st, unsigned bits, uint64_t floor);
void kr_state_free_(struct kr_state *st);
/* §6.1 step 5, the replay pre-check of counter under st (NULL: a state not created yet, as if
 * fresh, with this floor). digest is the topic's SHA-256 when exception (RETAIN=1 as delivered
 * and retain_intent); *retained tells whether the retained exception carried the message.
 * repeat: KR_OPEN_REPEAT, a seen counter may pass. */
enum px_err kr_state_check_(const struct kr_state *st, uint64_t floor, uint64_t counter, bool exception,
			    bool repeat, const uint8_t digest[static KR_DIGEST_LEN], bool *retained);
/* §6.1 step 7, after the tag verified (open_rc: PX_OK or PX_ERR_MALFORMED): records counter in
 * the window and, for an opened message with retain_intent, in the retained map. Returns PX_OK,
 * or PX_ERR_REPLAY if the window refuses a counter that only the pre-check let through. */
enum px_err kr_state_accept_(struct kr_state *st, uint64_t counter, bool retained, bool repeat, bool intent,
			     const uint8_t digest[static KR_DIGEST_LEN], enum px_err open_rc);
/* The state of (rx, r) if rx has one for this installation of r, else NULL. */
struct kr_state *kr_rx_find_(const struct keyring_rx *rx, const struct kr_recv *r);
/* The state of (rx, r), created with r's floor on first use, or reset if r was reinstalled. */
enum px_err kr_rx_state_(const struct keyring *kr, struct keyring_rx *rx, const struct kr_recv *r,
			 struct kr_state **out);
void kr_recv_expire_(struct keyring *kr, uint64_t now_ms);
uint64_t kr_recv_next_expiry_(const struct keyring *kr);

/* 1.5 * interval_s in milliseconds (§9.4, §9.6). */
uint64_t kr_lifetime_ms_(uint32_t interval_s);

/* Test hook: sets the active key's usage counters, to exercise the limits of §9.4. */
void keyring_set_usage_(struct keyring *kr, uint64_t counter, uint64_t blocks);

#endif
