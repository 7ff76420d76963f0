/* source.c - source authentication of sealed payloads (PROTOCOL.md §5.8): the 64-byte Ed25519
 * signature that follows the tag of an envelope whose flag byte has ENV_FLAG_SIGNED.
 *
 * The AEAD tag proves only that a holder of the epoch key sealed a message; every reader of the
 * group holds that key. The signature, by the sealing node's identity key, proves which node it
 * was. It covers the envelope as sealed (header with the flag, ciphertext, tag) and the AAD topic,
 * so it cannot be moved to another topic or envelope; the flag itself is in the AAD (§5.4), so
 * neither a signature can be stripped nor a flag added without failing the tag.
 * Ed25519 has no streaming interface in OpenSSL (pure EdDSA hashes the message twice), so the
 * signed string is assembled in one allocation per call. None of it is secret. */
#include "envelope.h"

#include <string.h>

#include <openssl/crypto.h>

#include "wire.h"

#define ENV_SRC_LABEL	  "mqseal v1 source"
#define ENV_SRC_LABEL_LEN (sizeof(ENV_SRC_LABEL) - 1)
#define ENV_SRC_TOPIC_MAX 65535 /* MQTT-1.5.4: a UTF-8 string is at most 65,535 bytes */

size_t env_signed_size(size_t props_len, size_t payload_len, unsigned padding)
{
	size_t n = env_sealed_size(props_len, payload_len, padding);

	if (n == 0 || n > SIZE_MAX - ENV_SIG_LEN)
		return 0;
	return n + ENV_SIG_LEN;
}

size_t env_aead_len(const uint8_t *env, size_t len)
{
	if (!env || len < ENV_MIN_LEN)
		return 0;
	if ((env[1] & ENV_FLAG_SIGNED) == 0)
		return len;
	return len < ENV_MIN_LEN_SIGNED ? 0 : len - ENV_SIG_LEN;
}

/* "mqseal v1 source" || u16(len(topic)) || topic || env[0 .. n): *out is OPENSSL_malloc'd, the
 * caller's (OPENSSL_free). */
static enum px_err env_src_message(const uint8_t *topic, size_t topic_len, const uint8_t *env, size_t n,
				   uint8_t **out, size_t *out_len)
{
	size_t total = ENV_SRC_LABEL_LEN + 2 + topic_len + n;
	struct wire_wr w;
	uint8_t *m;

	m = OPENSSL_malloc(total);
	if (!m)
		return PX_ERR_NOMEM;
	wire_wr_init(&w, m, total);
	wire_wr_bytes(&w, ENV_SRC_LABEL, ENV_SRC_LABEL_LEN);
	wire_wr_str16(&w, topic, topic_len);
	wire_wr_bytes(&w, env, n);
	if (!wire_wr_ok(&w)) { /* topic_len > 65535: the callers refuse it first */
		OPENSSL_free(m);
		return PX_ERR_INVAL;
	}
	*out = m;
	*out_len = total;
	return PX_OK;
}

enum px_err env_source_sign(const struct id_key *key, const uint8_t *topic, size_t topic_len, uint8_t *env,
			    size_t len)
{
	uint8_t *msg = NULL;
	size_t msg_len = 0, n;
	enum px_err rc;

	if (!key || !env || (!topic && topic_len) || topic_len > ENV_SRC_TOPIC_MAX)
		return PX_ERR_INVAL;
	if (len < ENV_MIN_LEN_SIGNED || (env[1] & ENV_FLAG_SIGNED) == 0)
		return PX_ERR_INVAL;
	n = len - ENV_SIG_LEN;
	rc = env_src_message(topic, topic_len, env, n, &msg, &msg_len);
	if (rc == PX_OK)
		rc = id_key_sign(key, msg, msg_len, env + n);
	if (rc != PX_OK)
		memset(env + n, 0, ENV_SIG_LEN);
	OPENSSL_free(msg);
	return rc;
}

enum px_err env_seal_signed(struct aead_key *key, const struct id_key *id, const struct env_header *hdr,
			    const uint8_t *topic, size_t topic_len, const uint8_t *props, size_t props_len,
			    const uint8_t *payload, size_t payload_len, unsigned padding, uint8_t *out,
			    size_t out_len)
{
	struct env_header h;
	enum px_err rc;

	if (!hdr || !id || !out || out_len != env_signed_size(props_len, payload_len, padding) || out_len == 0)
		return PX_ERR_INVAL;
	h = *hdr;
	h.flags |= ENV_FLAG_SIGNED;
	rc = env_seal(key, &h, topic, topic_len, props, props_len, payload, payload_len, padding, out,
		      out_len - ENV_SIG_LEN);
	if (rc == PX_OK)
		rc = env_source_sign(id, topic, topic_len, out, out_len);
	if (rc != PX_OK)
		OPENSSL_cleanse(out, out_len);
	return rc;
}

enum px_err env_source_verify(const struct id_pub *pub, const uint8_t *topic, size_t topic_len,
			      const uint8_t *env, size_t len)
{
	uint8_t *msg = NULL;
	size_t msg_len = 0, n;
	enum px_err rc;

	if (!pub || !env || (!topic && topic_len) || topic_len > ENV_SRC_TOPIC_MAX)
		return PX_ERR_INVAL;
	if (len < ENV_MIN_LEN)
		return PX_ERR_MALFORMED;
	/* No flag, no proof: an unsigned envelope never proves its source. */
	if ((env[1] & ENV_FLAG_SIGNED) == 0)
		return PX_ERR_AUTH;
	if (len < ENV_MIN_LEN_SIGNED)
		return PX_ERR_MALFORMED;
	n = len - ENV_SIG_LEN;
	rc = env_src_message(topic, topic_len, env, n, &msg, &msg_len);
	if (rc == PX_OK)
		rc = id_pub_verify(pub, msg, msg_len, env + n);
	OPENSSL_free(msg);
	return rc;
}
