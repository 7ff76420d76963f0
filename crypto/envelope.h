/* envelope.h - the sealed payload of PROTOCOL.md §5: encode (seal) and decode (open) one PUBLISH
 * payload under an epoch key. Pure: the caller supplies key, counter, topic and buffers. */
#ifndef PX_ENVELOPE_H
#define PX_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "aead.h"
#include "identity.h"
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
/* A signed envelope (ENV_FLAG_SIGNED) is followed by a 64-byte Ed25519 source signature
 * (env_source_sign): the shortest is 114 bytes, and it adds 64 more to a plaintext one than an
 * unsigned envelope does. ENV_MAX_OVERHEAD stays the figure of unsigned envelopes. */
#define ENV_SIG_LEN 64
#define ENV_MIN_LEN_SIGNED (ENV_MIN_LEN + ENV_SIG_LEN) /* 114 */
#define ENV_MAX_OVERHEAD_SIGNED(p) (ENV_MAX_OVERHEAD(p) + ENV_SIG_LEN)
#define ENV_FLAG_RETAIN 0x01    /* retain_intent */
#define ENV_FLAG_REPUBLISH 0x02 /* re-sealed from the retained cache */
#define ENV_FLAG_SIGNED 0x04    /* a source signature follows the tag */
#define ENV_FLAG_WILL 0x08      /* a will: published by the broker at an unknown later time */
#define ENV_FLAG_KNOWN 0x0f     /* bits 4..7 are reserved, 0 */
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

/* Reads and checks the 26-byte header (length >= ENV_MIN_LEN, or ENV_MIN_LEN_SIGNED when the
 * signed flag is set; version, reserved flags):
 * PX_ERR_MALFORMED or PX_ERR_VERSION. Cheap; no cryptography. */
enum px_err env_parse_header(const uint8_t *env, size_t len, struct env_header *out);

/* Seals: writes exactly env_sealed_size(props_len, payload_len, padding) bytes to out (out_len
 * must equal it). The caller owns the counter discipline (never the same counter twice per key). */
enum px_err env_seal(struct aead_key *key, const struct env_header *hdr, const uint8_t *topic,
		     size_t topic_len, const uint8_t *props, size_t props_len, const uint8_t *payload,
		     size_t payload_len, unsigned padding, uint8_t *out, size_t out_len);

/* env_seal with the payload given as the concatenation of payload[0..npayload) (at most
 * ENV_PARTS_MAX pieces; empty ones may have NULL data), e.g. the chains a message arrived in:
 * the same bytes as env_seal of the joined payload, however it is split. */
#define ENV_PARTS_MAX 16
enum px_err env_seal_parts(struct aead_key *key, const struct env_header *hdr, const uint8_t *topic,
			   size_t topic_len, const uint8_t *props, size_t props_len, const struct aead_part *payload,
			   size_t npayload, unsigned padding, uint8_t *out, size_t out_len);

/* Opens env (len bytes, header already parsed into hdr) into inner (env_aead_len(env, len) -
 * ENV_OVERHEAD bytes, caller's; may not overlap env). A signed envelope's signature is not read
 * (env_source_verify checks it). PX_ERR_AUTH on a failed tag (inner wiped), PX_ERR_MALFORMED on
 * inconsistent inner lengths or non-zero padding (inner wiped). */
enum px_err env_open(struct aead_key *key, const struct env_header *hdr, const uint8_t *topic,
		     size_t topic_len, const uint8_t *env, size_t len, uint8_t *inner,
		     struct env_opened *out);

/* env_open with the envelope given as the concatenation of env[0..nenv) (at most ENV_PARTS_MAX
 * pieces; empty ones may have NULL data), e.g. the chains it arrived in, whose first ENV_HDR_LEN
 * bytes were parsed into hdr (hdr's signed flag says where the AEAD part ends). The ciphertext is
 * decrypted from the pieces straight into inner (env_open's size); only the 26-byte header and
 * the tag are copied. Same results and guarantees as env_open of the joined envelope. */
enum px_err env_open_parts(struct aead_key *key, const struct env_header *hdr, const uint8_t *topic,
			   size_t topic_len, const struct aead_part *env, size_t nenv, uint8_t *inner,
			   struct env_opened *out);

/* ---- source authentication (PROTOCOL.md §5.8; crypto/source.c) ----
 * A signed envelope is an envelope sealed with ENV_FLAG_SIGNED in its header (so the flag is in
 * the AAD) followed by ENV_SIG_LEN bytes: Ed25519 by the sealing node's identity key over
 * "mqseal v1 source" || u16(len(topic)) || topic || envelope[0 .. len-64), topic being the AAD
 * topic. env_parse_header and env_open take the whole signed envelope (the signature is not part
 * of the AEAD); only env_source_verify proves who sealed it. */

/* env_sealed_size + ENV_SIG_LEN, the size of a signed envelope; 0 if it would overflow. */
size_t env_signed_size(size_t props_len, size_t payload_len, unsigned padding);
/* The length of the AEAD part of env (len bytes): len - ENV_SIG_LEN if env's flag byte says
 * signed, else len; 0 if env is too short for an envelope of its kind. No other check. */
size_t env_aead_len(const uint8_t *env, size_t len);
/* Signs in place: env (len bytes) holds an envelope sealed with ENV_FLAG_SIGNED in env[0 .. len-64)
 * and ENV_SIG_LEN bytes reserved after its tag, which receive the signature. PX_ERR_INVAL if the
 * flag is clear, len < ENV_MIN_LEN_SIGNED or topic_len > 65535; PX_ERR_NOMEM, PX_ERR_CRYPTO
 * (the reserved bytes are then zero). */
enum px_err env_source_sign(const struct id_key *key, const uint8_t *topic, size_t topic_len, uint8_t *env,
			    size_t len);
/* Seals and signs in one call (tests, benchmarks, the forging helper): env_seal with
 * ENV_FLAG_SIGNED added to hdr's flags into out[0 .. out_len-64), then env_source_sign. out_len
 * must equal env_signed_size(props_len, payload_len, padding). On failure out is wiped. */
enum px_err env_seal_signed(struct aead_key *key, const struct id_key *id, const struct env_header *hdr,
			    const uint8_t *topic, size_t topic_len, const uint8_t *props, size_t props_len,
			    const uint8_t *payload, size_t payload_len, unsigned padding, uint8_t *out,
			    size_t out_len);
/* Checks the proof of source of env (len bytes) on topic against the pinned identity key pub:
 * PX_OK only if env's flags say signed and the signature verifies. PX_ERR_AUTH if the flag is
 * clear or the signature is wrong, PX_ERR_MALFORMED if env is too short, PX_ERR_INVAL on bad
 * arguments. It opens nothing: the caller also opens env (AEAD) under the key of the node whose
 * pub this is, and accepts neither check alone. */
enum px_err env_source_verify(const struct id_pub *pub, const uint8_t *topic, size_t topic_len,
			      const uint8_t *env, size_t len);

/* AES blocks this message costs against the key's usage limit (PROTOCOL.md §9.4). */
uint64_t env_blocks(size_t topic_len, size_t sealed_len);

#endif
