/* envelope.h - the sealed payload of PROTOCOL.md §5: encode (seal) and decode (open) one PUBLISH
 * payload under an epoch key. Pure: the caller supplies key, counter, topic and buffers. */
#ifndef PX_ENVELOPE_H
#define PX_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "aead.h"
#include "px_err.h"

#define ENV_VERSION 0x02
#define ENV_KEY_ID_LEN 8
#define ENV_HDR_LEN 26     /* version, flags, key id, counter, sealed_at */
#define ENV_INNER_FIXED 8  /* u32 props_len + u32 payload_len */
#define ENV_OVERHEAD (ENV_HDR_LEN + AEAD_TAG_LEN)                 /* 42 */
#define ENV_MIN_LEN (ENV_HDR_LEN + ENV_INNER_FIXED + AEAD_TAG_LEN) /* 50 */
/* The most a sealed payload adds to a plaintext one at padding p: header, inner lengths, tag and
 * p - 1 bytes of padding (65 at the default 16). Protected properties move inside: they count in
 * both. */
#define ENV_MAX_OVERHEAD(p) (ENV_MIN_LEN + (size_t)(p) - 1)
#define ENV_FLAG_RETAIN 0x01    /* retain_intent */
#define ENV_FLAG_REPUBLISH 0x02 /* re-sealed from the retained cache */
#define ENV_FLAG_WILL 0x08      /* a will: published by the broker at an unknown later time */
#define ENV_FLAG_KNOWN 0x0b     /* bit 2 (per-message signature) and bits 4..7 are reserved, 0 */
#define ENV_PAD_MAX 256

struct env_header {
	uint8_t flags;
	uint8_t key_id[ENV_KEY_ID_LEN];
	uint64_t counter;
	uint64_t sealed_at; /* sender's wall clock, ms since the Unix epoch, when the value was sealed (§5.1) */
};

/* What an opened envelope holds: views into the caller's inner buffer. */
struct env_opened {
	const uint8_t *props; /* protected MQTT 5 properties, not validated here */
	size_t props_len;
	const uint8_t *payload;
	size_t payload_len;
};

/* Total envelope size for these lengths and padding (1..ENV_PAD_MAX); 0 if it would overflow. */
size_t env_sealed_size(size_t props_len, size_t payload_len, unsigned padding);

/* Reads and checks the 26-byte header (length >= ENV_MIN_LEN, version, reserved flags):
 * PX_ERR_MALFORMED or PX_ERR_VERSION. Cheap; no cryptography. */
enum px_err env_parse_header(const uint8_t *env, size_t len, struct env_header *out);

/* Seals: writes exactly env_sealed_size(props_len, payload_len, padding) bytes to out (out_len
 * must equal it). The caller owns the counter discipline (never the same counter twice per key). */
enum px_err env_seal(struct aead_key *key, const struct env_header *hdr, const uint8_t *topic,
		     size_t topic_len, const uint8_t *props, size_t props_len, const uint8_t *payload,
		     size_t payload_len, unsigned padding, uint8_t *out, size_t out_len);

/* Opens env (len bytes, header already parsed into hdr) into inner (len - ENV_OVERHEAD bytes,
 * caller's; may not overlap env). PX_ERR_AUTH on a failed tag (inner wiped), PX_ERR_MALFORMED on
 * inconsistent inner lengths or non-zero padding (inner wiped). */
enum px_err env_open(struct aead_key *key, const struct env_header *hdr, const uint8_t *topic,
		     size_t topic_len, const uint8_t *env, size_t len, uint8_t *inner,
		     struct env_opened *out);

/* AES blocks this message costs against the key's usage limit (PROTOCOL.md §9.4). */
uint64_t env_blocks(size_t topic_len, size_t sealed_len);

#endif
