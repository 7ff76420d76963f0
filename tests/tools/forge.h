/* forge.h - test-only: builds sealed payloads (PROTOCOL.md §5, signed ones §5.8) from key material
 * the test made itself, so that integration tests can inject forgeries (a reader sealing as the
 * writer, a writer's message re-signed by someone else, a signed flag without a signature) without
 * extracting anything from a running node. Never linked into mqseal. */
#ifndef PX_FORGE_H
#define PX_FORGE_H

#include <stddef.h>
#include <stdint.h>

#include "announce.h"
#include "envelope.h"
#include "identity.h"

struct forge_msg {
	const uint8_t *topic; /* the AAD topic (after topic_prefix_map) */
	size_t topic_len;
	const uint8_t *props; /* protected MQTT 5 properties, may be NULL */
	size_t props_len;
	const uint8_t *payload;
	size_t payload_len;
	uint8_t flags; /* envelope flags; ENV_FLAG_SIGNED is added when signing */
	uint64_t counter;
	uint64_t sealed_at; /* ms since the Unix epoch */
	unsigned padding;   /* 1..ENV_PAD_MAX */
};

/* Seals m under the epoch key k (data key, IV, key id) and, when id is not NULL, signs it with id
 * (flag bit 2 set, 64 bytes appended). With id NULL and ENV_FLAG_SIGNED in m->flags, the envelope
 * carries the flag but no signature (a forgery of its own kind). *out is malloc'd, the caller's
 * (free). Errors from env_seal / env_seal_signed, PX_ERR_NOMEM. */
enum px_err forge_envelope(const struct epoch_keys *k, const struct id_key *id, const struct forge_msg *m,
			   uint8_t **out, size_t *out_len);

#endif
