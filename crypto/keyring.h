/* keyring.h - all the keys of one node (PROTOCOL.md §6, §9): its own sending epochs (pending and
 * active) and the receive keys of its peers and of itself, looked up by key id; usage limits,
 * replay windows, lifetimes and erasure. Pure: the caller passes monotonic time in milliseconds
 * and does the I/O. Every secret lives in memory from OPENSSL_zalloc and leaves through
 * OPENSSL_clear_free (or OpenSSL's own cleansing frees). */
#ifndef PX_KEYRING_H
#define PX_KEYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "announce.h"
#include "envelope.h"
#include "kex.h"
#include "px_err.h"

#define KR_SOFT_MESSAGES (1ull << 23)
#define KR_HARD_MESSAGES (1ull << 24)
#define KR_SOFT_BLOCKS	 (1ull << 34)
#define KR_HARD_BLOCKS	 (1ull << 35)
#define KR_RECV_PER_PEER 3 /* previous, current, next (per peer and group) */
#define KR_MAX_KEYS	 (1u << 21) /* keyring_params.max_keys bound: 3 keys x 10,000 peers x groups (§14) */

struct keyring;

struct keyring_params {
	const char *self_id;
	uint32_t interval_s;  /* own rotation interval T */
	unsigned grace_s;     /* keyex.grace_seconds: extends receive-key lifetime */
	unsigned padding;     /* seal.padding */
	unsigned replay_bits; /* REPLAY_BITS_DEFAULT */
	size_t max_keys;      /* capacity of the receive table (peers * 3 + own) */
};

enum px_err keyring_new(const struct keyring_params *p, struct keyring **out);
void keyring_free(struct keyring *kr); /* erases everything; accepts NULL */

/* ---- own epochs ---- */
/* Creates a new pending epoch number `epoch` (> any before): fresh X25519 key, fresh sender secret
 * from RAND_priv_bytes, derived keys; also installs it as a receive key of self (so this node's
 * own devices open their messages). If a pending epoch exists already it is erased first.
 * The ephemeral key of the epoch before the previous one is erased. */
enum px_err keyring_epoch_create(struct keyring *kr, uint64_t epoch, uint64_t now_ms);
/* Test and golden-vector variant: the caller gives the ephemeral key (ownership passes to the
 * keyring, also on failure) and the secret. */
enum px_err keyring_epoch_create_fixed(struct keyring *kr, uint64_t epoch, uint64_t now_ms,
				       struct kex_key *eph, const uint8_t secret[static ANN_SECRET_LEN]);
/* Adds to the pending epoch a sending key of the named group (1..ANN_GROUP_MAX bytes of
 * [A-Za-z0-9._-]) from a fresh secret (§4.2: one per group this node seals for, drawn
 * independently), with its own counter and usage limits, and installs it as a receive key of
 * self tagged with the group. PX_ERR_INVAL without a pending epoch or for an invalid name,
 * PX_ERR_EXISTS if the epoch has that group already. _fixed: the caller gives the secret. */
enum px_err keyring_epoch_add_group(struct keyring *kr, const char *group);
enum px_err keyring_epoch_add_group_fixed(struct keyring *kr, const char *group,
					  const uint8_t secret[static ANN_SECRET_LEN]);
/* Makes the pending epoch the active one; the previously active sending key, IV and secret are
 * erased. PX_ERR_INVAL if nothing is pending. */
enum px_err keyring_epoch_activate(struct keyring *kr, uint64_t now_ms);
/* Erases the active sending key now (hard limit reached with no successor). */
void keyring_epoch_retire(struct keyring *kr);
/* Erases the pending epoch, if any, as if it had never been created (its sending key, secret,
 * ephemeral key and receive key of self): a revocation (PROTOCOL.md §9.6) must not activate an
 * epoch that was wrapped for the removed peer. */
void keyring_epoch_drop_pending(struct keyring *kr);

/* The newest own epoch (pending if any, else active): what announcements describe. */
bool keyring_newest(const struct keyring *kr, uint64_t *epoch);
bool keyring_active(const struct keyring *kr, uint64_t *epoch);
bool keyring_pending(const struct keyring *kr, uint64_t *epoch);
const struct kex_key *keyring_newest_eph(const struct keyring *kr);
const uint8_t *keyring_newest_secret(const struct keyring *kr); /* ANN_SECRET_LEN bytes */
/* Counter the newest epoch will use next (what the caller samples to compute the per-recipient
 * counter floor of announcement entries, §6.3). */
uint64_t keyring_newest_next_counter(const struct keyring *kr);
/* The same two for the newest epoch's key of group (NULL or "": the default group, as above):
 * NULL / 0 if the epoch has no key of that group. */
const uint8_t *keyring_newest_group_secret(const struct keyring *kr, const char *group);
uint64_t keyring_newest_group_next_counter(const struct keyring *kr, const char *group);
/* The name of the newest epoch's i-th named group (in the order they were added), NULL past the
 * last: what its announcements wrap besides the default group (§7.2). */
const char *keyring_newest_group_at(const struct keyring *kr, size_t i);
/* The own ephemeral key (newest or previous, while kept) whose public key is pub; NULL if none. */
const struct kex_key *keyring_eph_for(const struct keyring *kr, const uint8_t pub[static KEX_PUB_LEN]);

/* The usage limits of §9.4 as pure functions of one key's use, which keyring_can_seal and
 * keyring_wants_rotation apply to the active key: PX_ERR_LIMIT at 2^24 messages or 2^35 blocks,
 * PX_ERR_EXPIRED at an age of 1.5 * interval_s; soft: true at 2^23 messages or 2^34 blocks. */
enum px_err keyring_limit_hard(uint64_t messages, uint64_t blocks, uint64_t age_ms, uint32_t interval_s);
bool keyring_limit_soft(uint64_t messages, uint64_t blocks);
/* Can the active key seal one more message now? PX_OK, or PX_ERR_UNKNOWN_KEY (no active epoch),
 * PX_ERR_LIMIT (message/block hard limit), PX_ERR_EXPIRED (older than 1.5 T). */
enum px_err keyring_can_seal(const struct keyring *kr, uint64_t now_ms);
/* The same for the active epoch's key of group (NULL or "": exactly keyring_can_seal);
 * PX_ERR_UNKNOWN_KEY if the active epoch has no key of that group. */
enum px_err keyring_can_seal_group(const struct keyring *kr, const char *group, uint64_t now_ms);
/* Should a new epoch start early (a soft limit reached by any of its group keys)? */
bool keyring_wants_rotation(const struct keyring *kr);
/* Envelope size for a message of these lengths under this keyring's padding. */
size_t keyring_sealed_size(const struct keyring *kr, size_t props_len, size_t payload_len);
/* Seals under the active epoch: takes the next counter, counts blocks, writes the envelope (out_len
 * = keyring_sealed_size(...)) with sealed_at (wall clock ms: when the value was first sealed; a
 * re-publication of a cached retained value keeps the original's, §10.1). Errors as
 * keyring_can_seal, or from env_seal. */
enum px_err keyring_seal(struct keyring *kr, uint64_t now_ms, uint64_t sealed_at, uint8_t flags, const uint8_t *topic,
			 size_t topic_len, const uint8_t *props, size_t props_len, const uint8_t *payload,
			 size_t payload_len, uint8_t *out, size_t out_len);
/* keyring_seal with the payload in pieces (env_seal_parts): payload[0..npayload), at most
 * ENV_PARTS_MAX. */
enum px_err keyring_seal_parts(struct keyring *kr, uint64_t now_ms, uint64_t sealed_at, uint8_t flags,
			       const uint8_t *topic, size_t topic_len, const uint8_t *props, size_t props_len,
			       const struct aead_part *payload, size_t npayload, uint8_t *out, size_t out_len);

/* keyring_seal under the active epoch's key of group (NULL or "": exactly keyring_seal), with
 * that key's own counter and usage (§4.2, §9.4, §11.1). Errors as keyring_can_seal_group. */
enum px_err keyring_seal_group(struct keyring *kr, const char *group, uint64_t now_ms, uint64_t sealed_at,
			       uint8_t flags, const uint8_t *topic, size_t topic_len, const uint8_t *props,
			       size_t props_len, const uint8_t *payload, size_t payload_len, uint8_t *out,
			       size_t out_len);
/* keyring_seal_group with the payload in pieces (at most ENV_PARTS_MAX). */
enum px_err keyring_seal_group_parts(struct keyring *kr, const char *group, uint64_t now_ms, uint64_t sealed_at,
				     uint8_t flags, const uint8_t *topic, size_t topic_len, const uint8_t *props,
				     size_t props_len, const struct aead_part *payload, size_t npayload, uint8_t *out,
				     size_t out_len);

/* ---- receive keys ---- */
/* Installs the key of (peer_id, epoch) from its sender secret (which the caller erases), with the
 * counter floor (the counter_floor of the announcement entry, §6.3) and a lifetime of
 * 1.5 * interval_s + grace. PX_ERR_EXISTS if (peer, epoch) is installed already, PX_ERR_STALE if
 * the peer already has KR_RECV_PER_PEER keys all newer than this one, PX_ERR_LIMIT if the table
 * is full, PX_ERR_INVAL on a key id collision with another (peer, epoch). Installing a fourth key
 * of a peer erases its oldest. */
enum px_err keyring_recv_install(struct keyring *kr, const char *peer_id, uint64_t epoch,
				 const uint8_t secret[static ANN_SECRET_LEN], uint32_t interval_s,
				 uint64_t floor, uint64_t now_ms);
/* The same for a key of group (NULL or "": the default group, exactly keyring_recv_install; else
 * a group name, 1..ANN_GROUP_MAX bytes of [A-Za-z0-9._-]), derived with epoch_derive_group and
 * tagged with the group (PROTOCOL.md §7.3 step 8). The limits count per (peer, group): the
 * previous, current and next key of each group; PX_ERR_EXISTS per (peer, epoch, group). */
enum px_err keyring_recv_install_group(struct keyring *kr, const char *peer_id, uint64_t epoch, const char *group,
				       const uint8_t secret[static ANN_SECRET_LEN], uint32_t interval_s,
				       uint64_t floor, uint64_t now_ms);
/* Newest installed epoch of peer_id's default-group key (false if none): the acked_epoch of
 * announcement entries. */
bool keyring_recv_newest(const struct keyring *kr, const char *peer_id, uint64_t *epoch);
/* Is the default-group key of (peer_id, epoch) installed? _group: the key of that group. */
bool keyring_recv_has(const struct keyring *kr, const char *peer_id, uint64_t epoch);
bool keyring_recv_has_group(const struct keyring *kr, const char *peer_id, uint64_t epoch, const char *group);
/* The group ("" for the default) of the installed key with this id, or NULL if none: the open
 * path's check before it holds or opens a message (§6.1 step 3). Valid until the key is erased. */
const char *keyring_key_group(const struct keyring *kr, const uint8_t key_id[static ENV_KEY_ID_LEN]);
/* Erases every receive key of peer_id. */
void keyring_remove_peer(struct keyring *kr, const char *peer_id);
/* Revocation (PROTOCOL.md §9.6, REVOKE): every receive key of peer_id for an epoch below
 * below_epoch expires at until_ms at the latest (keyring_expire erases it then). Returns how many
 * keys were shortened. */
size_t keyring_recv_shorten(struct keyring *kr, const char *peer_id, uint64_t below_epoch, uint64_t until_ms);

/* ---- per-receiver replay state (PROTOCOL.md §6.2, §6.3) ---- */
/* Replay state of one receiver (one device client id) across all receive keys: for each key, a
 * replay window of KR_RX_REPLAY_BITS bits starting at the key's floor and a retained map, created
 * on first use. Counters and topic digests only, no secret. */
struct keyring_rx;
#define KR_RX_REPLAY_BITS 2048 /* per device: 1984 usable counters (§6.2) */
/* *out is the caller's (keyring_rx_free). */
enum px_err keyring_rx_new(struct keyring_rx **out);
void keyring_rx_free(struct keyring_rx *rx); /* accepts NULL */
/* Drops the per-key state of keys no longer in kr (erased, or erased and installed again). The
 * state of rx is also bounded without it: it never holds more keys than kr can. */
void keyring_rx_gc(const struct keyring *kr, struct keyring_rx *rx);
/* Does rx hold no state at all (no message of any key was ever opened for it)? */
bool keyring_rx_empty(const struct keyring_rx *rx);
/* Memory held by rx (windows, retained maps, table), for the caller's accounting. */
size_t keyring_rx_bytes(const struct keyring_rx *rx);

/* keyring_open flag. The caller vouches: redelivery of a message it delivered to this device and
 * the device has not acknowledged; an already-seen counter is accepted (the AEAD still runs). */
#define KR_OPEN_REPEAT 0x01

/* The self-contained open, which refuses replays itself: the node's data path uses
 * keyring_open_decide and the delivery rule of PROTOCOL.md §6.2/§6.3 instead (proxy/seal/deliver.c);
 * this one, with its older per-key retained exception, serves the unit tests and benchmarks and is
 * to be retired with it.
 * Opens a sealed payload received on topic (§6.1): header checks, key
 * lookup, lifetime, hard limit, replay pre-check (with the retained exception when
 * retain_delivered), AEAD, window update, inner checks. The replay state is that of (rx, key),
 * or the key's own (a window of keyring_params.replay_bits) when rx is NULL. flags: 0 or
 * KR_OPEN_REPEAT, which lets a counter the window has seen pass once the tag verifies; it never
 * passes the floor, a counter behind the window, the lifetime or the hard limit (§6.2). The caller
 * sets it only for the broker's redelivery, under the same packet id, of a message with the same
 * key id and counter that it delivered to this receiver and that was not acknowledged.
 * inner must have len bytes of room. On success *sender (if not NULL) points at the sender's id
 * (valid until the key is erased).
 * Errors: PX_ERR_INVAL, PX_ERR_NOMEM (rx state), PX_ERR_MALFORMED, PX_ERR_VERSION,
 * PX_ERR_UNKNOWN_KEY, PX_ERR_EXPIRED (stale key), PX_ERR_LIMIT, PX_ERR_REPLAY, PX_ERR_AUTH. */
enum px_err keyring_open(struct keyring *kr, struct keyring_rx *rx, uint64_t now_ms, const uint8_t *topic,
			 size_t topic_len, const uint8_t *env, size_t len, bool retain_delivered,
			 unsigned flags, uint8_t *inner, struct env_opened *out, const char **sender);

/* What the replay state of (receiver, key) says of a counter, for callers that apply the delivery
 * rule of PROTOCOL.md §6.2 themselves (keyring_open_decide). */
enum kr_seen {
	KR_SEEN_NEW,    /* above the floor and not seen: recorded now */
	KR_SEEN_WINDOW, /* seen already, or too far behind the window to tell */
	KR_SEEN_FLOOR,  /* below the key's counter floor (§6.3): sealed before this node held the key */
};

struct kr_opened {
	struct env_opened o;  /* views into inner */
	struct env_header h;
	const char *sender;   /* the sender's id (valid until the key is erased) */
	const char *group;    /* the key's group, "" for the default (valid as sender): the caller
			       * checks it is the topic's (§6.1 step 3, not_a_reader) */
	uint64_t epoch;       /* the sender's epoch of the key */
	enum kr_seen seen;
};

/* Opens a sealed payload for the receiver rx (PROTOCOL.md §6.1 steps 2-7) and reports what the
 * replay state says instead of refusing: header checks, key lookup, lifetime, hard limit, AEAD,
 * and, for a new counter only, the window update. The caller decides whether a seen counter, or
 * one below the floor, is delivered (copies, redelivery, retained values) and must drop it
 * otherwise. inner needs env_aead_len(env, len) - ENV_OVERHEAD bytes (len is always enough; a
 * signed envelope opens like any other here, its signature unread: keyring_open_source checks it).
 * Errors: PX_ERR_INVAL, PX_ERR_NOMEM, PX_ERR_MALFORMED, PX_ERR_VERSION,
 * PX_ERR_UNKNOWN_KEY, PX_ERR_EXPIRED, PX_ERR_LIMIT, PX_ERR_AUTH (no plaintext then). */
enum px_err keyring_open_decide(struct keyring *kr, struct keyring_rx *rx, uint64_t now_ms, const uint8_t *topic,
				size_t topic_len, const uint8_t *env, size_t len, uint8_t *inner,
				struct kr_opened *out);
/* The source rule of a topic whose group has `writers` (PROTOCOL.md §5.8), for
 * keyring_open_source. writer_pub returns the pinned identity key of sender (the node whose epoch
 * key opened the message) if sender is a writer of the topic's group, else NULL. */
struct kr_source {
	const struct id_pub *(*writer_pub)(void *ctx, const char *sender);
	void *ctx;
};
/* keyring_open_decide with the source rule src (NULL: none, exactly keyring_open_decide). With
 * src, a message that opens (or is malformed inside) is accepted only if it is signed
 * (ENV_FLAG_SIGNED) and its signature verifies under writer_pub(sender); else PX_ERR_SOURCE,
 * with no plaintext, the replay window untouched (a reader of the group cannot use up the
 * writer's counters) and out->sender / out->epoch naming the key's sender. The signature is
 * checked after the AEAD, so only key holders can make this node verify one.
 * Without src a signed envelope is opened like any other (its signature is not read). */
enum px_err keyring_open_source(struct keyring *kr, struct keyring_rx *rx, uint64_t now_ms, const uint8_t *topic,
				size_t topic_len, const uint8_t *env, size_t len, const struct kr_source *src,
				uint8_t *inner, struct kr_opened *out);
/* keyring_open_decide with the envelope given as the concatenation of env[0..nenv) (at most
 * ENV_PARTS_MAX pieces, e.g. the chains it arrived in), opened from there straight into inner
 * (env_open_parts; len = the pieces' total is always enough room). No source rule: a signed
 * envelope is opened like any other, its signature unread (an Ed25519 signature is checked over
 * the whole message at once: a caller with a source rule joins the pieces and uses
 * keyring_open_source). Same results and guarantees as keyring_open_decide. */
enum px_err keyring_open_parts(struct keyring *kr, struct keyring_rx *rx, uint64_t now_ms, const uint8_t *topic,
			       size_t topic_len, const struct aead_part *env, size_t nenv, uint8_t *inner,
			       struct kr_opened *out);
/* Was a key with this id installed and erased lately (the last KR_ERASED_IDS erasures)? A message
 * under it is stale (§6.1 step 4), not waiting for an announcement. */
#define KR_ERASED_IDS 64
bool keyring_recv_erased(const struct keyring *kr, const uint8_t key_id[static ENV_KEY_ID_LEN]);

/* ---- time ---- */
/* Erases whatever has outlived its lifetime (receive keys, old ephemeral keys). */
void keyring_expire(struct keyring *kr, uint64_t now_ms);
/* The earliest time keyring_expire has work (UINT64_MAX if never), for the caller's timer. */
uint64_t keyring_next_expiry(const struct keyring *kr);

struct keyring_stats {
	size_t recv_keys;	  /* installed receive keys, self included */
	uint64_t active_epoch;	  /* 0 if none */
	uint64_t active_messages; /* sealed under the active key */
	uint64_t auth_failures;	  /* tag failures over all keys, ever */
};
void keyring_get_stats(const struct keyring *kr, struct keyring_stats *out);

#endif
