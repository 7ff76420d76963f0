/* announce.h - key announcements (PROTOCOL.md §7, protocol version 2: one message per sender and
 * recipient, 0 entries or one per group the recipient reads, §11.1) and key confirmations (§8): build, parse, verify, and the pairwise
 * wrap of the epoch sender secret (§4.3); epoch key derivation (§4.2). Pure: times and identities
 * are given by the caller. */
#ifndef PX_ANNOUNCE_H
#define PX_ANNOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "identity.h"
#include "kex.h"
#include "px_err.h"

#define ANN_MAGIC	  "MQSL"
#define ANN_VERSION	  0x02 /* protocol version 2 (announcements and confirmations) */
#define ANN_TYPE_ANNOUNCE 0x01
#define ANN_TYPE_ACK	  0x02
#define ANN_SUITE_1	  0x01
#define ANN_MAX_LEN	  65536
#define ANN_MAX_ENTRIES	  65 /* v2: one recipient; the default group and up to 64 named groups */
#define ANN_GROUP_MAX	  32 /* a group name: 1..32 bytes of [A-Za-z0-9._-]; "" = default group */
#define ANN_FLAG_REVOKE	  0x01 /* this epoch began because a peer was removed (§9.6) */
#define ANN_FLAGS_KNOWN	  ANN_FLAG_REVOKE
#define ANN_ID_MAX	  64
#define ANN_SECRET_LEN	  32
#define ANN_WRAPPED_LEN	  48

/* ---- epoch keys (§4.2) ---- */
struct epoch_keys {
	uint8_t key[32];
	uint8_t iv[12];
	uint8_t key_id[8];
};
/* Derives the epoch keys of the default group; the caller erases secret and (later) out. */
enum px_err epoch_derive(const uint8_t secret[static ANN_SECRET_LEN], const char *sender_id, uint64_t epoch,
			 uint8_t suite, struct epoch_keys *out);
/* The same for a group: NULL or "" is the default group (ctx_epoch without a group), else a group
 * name of 1..ANN_GROUP_MAX bytes of [A-Za-z0-9._-] appended as str8(group) (§4.2); PX_ERR_INVAL
 * for an invalid name. */
enum px_err epoch_derive_group(const uint8_t secret[static ANN_SECRET_LEN], const char *sender_id,
			       uint64_t epoch, uint8_t suite, const char *group, struct epoch_keys *out);

/* ---- announcement ---- */
/* One entry to write: the recipient, and the group whose secret it wraps. */
struct ann_recipient {
	const char *id;
	const char *group;     /* NULL or "": the default group; else a group name (at most once per message) */
	const uint8_t *secret; /* ANN_SECRET_LEN bytes of that group's secret; NULL: ann_params.secret */
	uint8_t eph_pub[KEX_PUB_LEN];
	uint64_t acked_epoch;
	uint64_t counter_floor; /* the sender's counter when the recipient's current epoch began (§6.3) */
};

struct ann_params {
	const char *sender_id;
	uint8_t flags; /* ANN_FLAG_*; reserved bits must be 0 */
	uint64_t epoch;
	uint32_t rev;
	uint64_t issued_at_ms;
	uint32_t interval_s;
	const struct kex_key *eph; /* this epoch's ephemeral key */
	const uint8_t *secret;	   /* ANN_SECRET_LEN bytes: the epoch sender secret (of entries without their own) */
	const struct ann_recipient *recipients;
	size_t nrecipients; /* <= ANN_MAX_ENTRIES */
};

/* Builds and signs an announcement for topic. *out is malloc'd, the caller's (free()). A recipient
 * whose ephemeral key gives an all-zero X25519 result makes the build fail (PX_ERR_WEAK_KEY):
 * callers drop such a peer key when they accept its announcement, so it cannot happen there. */
enum px_err ann_build(const struct id_key *id, const char *topic, const struct ann_params *p, uint8_t **out,
		      size_t *out_len);

/* A parsed announcement: scalar fields copied, entries as a view into the buffer. */
struct ann_view {
	uint8_t suite;
	uint8_t flags; /* ANN_FLAG_* (reserved bits are refused as PX_ERR_VERSION) */
	char sender_id[ANN_ID_MAX + 1];
	uint64_t epoch;
	uint32_t rev;
	uint64_t issued_at_ms;
	uint32_t interval_s;
	uint8_t eph_pub[KEX_PUB_LEN];
	uint16_t nentries;
	const uint8_t *buf; /* the whole announcement (for verification and entries) */
	size_t len;
	size_t entries_off; /* offset of the first entry */
};

struct ann_entry {
	char recipient_id[ANN_ID_MAX + 1];
	char group[ANN_GROUP_MAX + 1]; /* "" for the default group */
	uint16_t index;		       /* position in the message: the wrap nonce is u32(index) || u64(rev) */
	uint8_t recipient_eph[KEX_PUB_LEN];
	uint64_t acked_epoch;
	uint64_t counter_floor; /* the floor for this recipient's receive key (§6.3) */
	const uint8_t *wrapped; /* ANN_WRAPPED_LEN bytes in the buffer */
};

/* Parses everything with strict checks (magic, version 2, type, suite 1, flags within
 * ANN_FLAGS_KNOWN, lengths, ids 1..64 bytes of [A-Za-z0-9._-], groups empty or 1..32 such bytes and
 * none twice, entries <= ANN_MAX_ENTRIES (more: PX_ERR_TOO_LARGE), exact total length); does NOT verify the signature, nor that the entry's
 * recipient is the topic's (the key exchange checks that: wrong_topic).
 * Errors: PX_ERR_MALFORMED, PX_ERR_VERSION, PX_ERR_TOO_LARGE. */
enum px_err ann_parse(const uint8_t *buf, size_t len, struct ann_view *out);
/* Cheap header-only peek (magic..epoch, rev, issued_at) for the checks before verification. */
enum px_err ann_peek(const uint8_t *buf, size_t len, struct ann_view *out);
/* Entry i (< nentries) of a parsed announcement. */
void ann_entry_at(const struct ann_view *a, size_t i, struct ann_entry *out);
/* The default-group entry for recipient_id (§7.2: the first of its message); false if none.
 * Entries of named groups are read with ann_entry_at. */
bool ann_find_entry(const struct ann_view *a, const char *recipient_id, struct ann_entry *out);
/* PX_OK if the signature over (label, topic, bytes) verifies with pub; PX_ERR_AUTH otherwise. */
enum px_err ann_verify(const struct ann_view *a, const struct id_pub *pub, const char *topic);
/* Unwraps the sender secret from entry e, addressed to my_id with my ephemeral key my_eph (whose
 * public key the caller matched against e->recipient_eph). PX_ERR_AUTH if the wrap does not open. */
enum px_err ann_unwrap(const struct ann_view *a, const struct ann_entry *e, const char *my_id,
		       const struct kex_key *my_eph, uint8_t secret[static ANN_SECRET_LEN]);

/* ---- key confirmation (§8) ---- */
struct ack_view {
	uint8_t suite;
	char sender_id[ANN_ID_MAX + 1];
	char recipient_id[ANN_ID_MAX + 1];
	uint64_t acked_epoch;
	uint64_t issued_at_ms;
	const uint8_t *buf;
	size_t len;
};
enum px_err ack_build(const struct id_key *id, const char *topic, const char *sender_id,
		      const char *recipient_id, uint64_t acked_epoch, uint64_t issued_at_ms, uint8_t **out,
		      size_t *out_len);
enum px_err ack_parse(const uint8_t *buf, size_t len, struct ack_view *out);
enum px_err ack_verify(const struct ack_view *a, const struct id_pub *pub, const char *topic);

#endif
