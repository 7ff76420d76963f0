/* announce_internal.h - what announce.c, announce_wire.c and the key ring share: the id and group
 * fields on top of the wire cursor (wire/wire.h), node-id validation,
 * and the signed message of §7.2 / §8 (label || u16(len(topic)) || topic || bytes). Not for use
 * outside crypto/, except by the unit tests. */
#ifndef PX_ANNOUNCE_INTERNAL_H
#define PX_ANNOUNCE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aead.h"
#include "announce.h"
#include "wire.h"

#define ANN_MAGIC_LEN	 4
#define ANN_PREAMBLE_LEN 8 /* magic, version, type, suite, flags */
#define ANN_SIG_LEN	 64
#define ANN_TOPIC_MAX	 65535 /* MQTT-1.5.4: a topic is a UTF-8 string of at most 65,535 bytes */

/* Messages are read and written with the checked cursor of wire/wire.h (sticky error, one check
 * at the end); these add the node-id and group fields, whose content is checked as they are read. */
/* str8 node id: 1..ANN_ID_MAX bytes of [A-Za-z0-9._-], copied NUL-terminated into out; anything
 * else fails the cursor (WIRE_INVALID) and leaves out empty. */
void ann_rd_id_(struct wire_rd *r, char out[static ANN_ID_MAX + 1]);
void ann_wr_id_(struct wire_wr *w, const char *id); /* str8; the id was checked by ann_id_len_ */

/* A group name: true and *len (0 for NULL or "", the default group) if it is empty or 1..ANN_GROUP_MAX
 * bytes of [A-Za-z0-9._-] (§7.2); false otherwise. */
bool ann_group_len_(const char *group, size_t *len);
/* str8 group: 0..ANN_GROUP_MAX bytes of [A-Za-z0-9._-], copied NUL-terminated into out. */
void ann_rd_group_(struct wire_rd *r, char out[static ANN_GROUP_MAX + 1]);

/* Length of a valid node id (1..ANN_ID_MAX of [A-Za-z0-9._-], PROTOCOL.md §1), 0 if invalid. */
size_t ann_id_len_(const char *id);
bool ann_id_ok_(const uint8_t *id, size_t len);

/* Checks the 8-byte preamble (magic, version, type, suite 1, no flag outside known) and returns
 * the suite and the flags. */
enum px_err ann_preamble_(struct wire_rd *r, uint8_t type, uint8_t known, uint8_t *suite, uint8_t *flags);

/* Signs label || u16(len(topic)) || topic || body[0..body_len) and writes the 64-byte signature
 * at body + body_len (the caller sized body for it). */
enum px_err ann_sign_(const struct id_key *id, const char *label, const char *topic, uint8_t *body,
		      size_t body_len);
/* Verifies the last 64 bytes of msg (msg_len >= 64) as that signature over the rest. */
enum px_err ann_verify_sig_(const struct id_pub *pub, const char *label, const char *topic,
			    const uint8_t *msg, size_t msg_len);

/* The pairwise wrap key of §4.3 from this node's key mine and the other side's public key:
 * X25519, then HKDF with ctx_pair = str8(s_id) || str8(r_id) || s_pub || r_pub. Exposed for the
 * golden-vector test. */
enum px_err ann_wrap_key_(const struct kex_key *mine, const uint8_t peer_pub[static KEX_PUB_LEN],
			  const char *s_id, const char *r_id, const uint8_t s_pub[static KEX_PUB_LEN],
			  const uint8_t r_pub[static KEX_PUB_LEN], uint8_t wrap_key[static AEAD_KEY_LEN]);

#endif
