/* forge.c - test-only builder of sealed payloads from key material the test made (see forge.h). */
#include "forge.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

enum px_err forge_envelope(const struct epoch_keys *k, const struct id_key *id, const struct forge_msg *m,
			   uint8_t **out, size_t *out_len)
{
	struct aead_key *key = NULL;
	struct env_header h;
	uint8_t *buf = NULL;
	size_t n;
	enum px_err rc;

	if (!k || !m || !out || !out_len)
		return PX_ERR_INVAL;
	n = id ? env_signed_size(m->props_len, m->payload_len, m->padding)
	       : env_sealed_size(m->props_len, m->payload_len, m->padding);
	if (n == 0)
		return PX_ERR_INVAL;
	memset(&h, 0, sizeof(h));
	h.flags = m->flags;
	h.counter = m->counter;
	h.sealed_at = m->sealed_at;
	memcpy(h.key_id, k->key_id, ENV_KEY_ID_LEN);
	rc = aead_key_new(k->key, k->iv, &key);
	if (rc != PX_OK)
		goto out;
	rc = PX_ERR_NOMEM;
	buf = malloc(n);
	if (!buf)
		goto out;
	if (id)
		rc = env_seal_signed(key, id, &h, m->topic, m->topic_len, m->props, m->props_len, m->payload,
				     m->payload_len, m->padding, buf, n);
	else
		rc = env_seal(key, &h, m->topic, m->topic_len, m->props, m->props_len, m->payload, m->payload_len,
			      m->padding, buf, n);
	if (rc != PX_OK)
		goto out;
	*out = buf;
	*out_len = n;
	buf = NULL;
out:
	free(buf);
	aead_key_free(key);
	return rc;
}
