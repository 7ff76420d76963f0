/* announce_wire.c - the byte-level helpers of announcements and confirmations (announce.c): the
 * node-id and group fields on top of the wire cursor (wire/wire.h), node-id validation (also used
 * by the key ring), the common preamble and the labelled Ed25519 signature of PROTOCOL.md §7.2
 * and §8. */
#include "announce_internal.h"

#include <stdlib.h>
#include <string.h>

/* str8 with its content checked before it is copied: 1..max bytes of [A-Za-z0-9._-] (or empty,
 * when empty_ok). */
static void ann_rd_name(struct wire_rd *r, char *out, size_t max, bool empty_ok)
{
	size_t n;
	const uint8_t *p = wire_rd_str8(r, &n);

	out[0] = '\0';
	if (!p || (n == 0 && empty_ok))
		return;
	if (n > max || !ann_id_ok_(p, n)) {
		wire_rd_fail(r, WIRE_INVALID);
		return;
	}
	memcpy(out, p, n);
	out[n] = '\0';
}

void ann_rd_id_(struct wire_rd *r, char out[static ANN_ID_MAX + 1])
{
	ann_rd_name(r, out, ANN_ID_MAX, false);
}

void ann_rd_group_(struct wire_rd *r, char out[static ANN_GROUP_MAX + 1])
{
	ann_rd_name(r, out, ANN_GROUP_MAX, true);
}

void ann_wr_id_(struct wire_wr *w, const char *id)
{
	wire_wr_str8(w, id, strlen(id));
}

bool ann_group_len_(const char *group, size_t *len)
{
	size_t n = group ? strnlen(group, ANN_GROUP_MAX + 1) : 0;

	*len = n;
	return n == 0 || (n <= ANN_GROUP_MAX && ann_id_ok_((const uint8_t *)group, n));
}

bool ann_id_ok_(const uint8_t *id, size_t len)
{
	size_t i;

	if (len < 1 || len > ANN_ID_MAX)
		return false;
	for (i = 0; i < len; i++) {
		uint8_t c = id[i];
		bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			  c == '.' || c == '_' || c == '-';
		if (!ok)
			return false;
	}
	return true;
}

size_t ann_id_len_(const char *id)
{
	size_t n;

	if (!id)
		return 0;
	n = strnlen(id, ANN_ID_MAX + 1);
	return ann_id_ok_((const uint8_t *)id, n) ? n : 0;
}

enum px_err ann_preamble_(struct wire_rd *r, uint8_t type, uint8_t known, uint8_t *suite, uint8_t *flags)
{
	const uint8_t *p = wire_rd_bytes(r, ANN_PREAMBLE_LEN);

	if (!p || memcmp(p, ANN_MAGIC, ANN_MAGIC_LEN) != 0)
		return PX_ERR_MALFORMED;
	/* §7.2/§8: only version 2, suite 1, and the flag bits of known are defined; anything else
	 * is a version this node does not speak (no negotiation, R42). */
	if (p[4] != ANN_VERSION || p[6] != ANN_SUITE_1 || (p[7] & (uint8_t)~known) != 0)
		return PX_ERR_VERSION;
	if (p[5] != type)
		return PX_ERR_MALFORMED;
	*suite = p[6];
	*flags = p[7];
	return PX_OK;
}

/* Builds label || u16(len(topic)) || topic || body into a fresh buffer (the caller frees it). The
 * body is at most ANN_MAX_LEN and the topic at most 65,535 bytes, so the message stays < 128 KiB. */
static enum px_err ann_signed_msg(const char *label, const char *topic, const uint8_t *body, size_t body_len,
				  uint8_t **out, size_t *out_len)
{
	size_t llen = strlen(label), tlen, len;
	uint8_t *buf;
	struct wire_wr w;

	if (!topic || body_len > ANN_MAX_LEN)
		return PX_ERR_INVAL;
	tlen = strnlen(topic, ANN_TOPIC_MAX + 1);
	if (tlen > ANN_TOPIC_MAX)
		return PX_ERR_TOPIC;
	len = llen + 2 + tlen + body_len;
	buf = malloc(len);
	if (!buf)
		return PX_ERR_NOMEM;
	wire_wr_init(&w, buf, len);
	wire_wr_bytes(&w, label, llen);
	wire_wr_str16(&w, topic, tlen);
	wire_wr_bytes(&w, body, body_len);
	if (!wire_wr_ok(&w) || wire_wr_remaining(&w) != 0) {
		free(buf);
		return PX_ERR_INVAL; /* a sizing bug above: never sign a message that is not whole */
	}
	*out = buf;
	*out_len = len;
	return PX_OK;
}

enum px_err ann_sign_(const struct id_key *id, const char *label, const char *topic, uint8_t *body,
		      size_t body_len)
{
	uint8_t *msg = NULL;
	size_t msg_len = 0;
	enum px_err rc;

	rc = ann_signed_msg(label, topic, body, body_len, &msg, &msg_len);
	if (rc != PX_OK)
		return rc;
	rc = id_key_sign(id, msg, msg_len, body + body_len);
	free(msg);
	return rc;
}

enum px_err ann_verify_sig_(const struct id_pub *pub, const char *label, const char *topic,
			    const uint8_t *msg, size_t msg_len)
{
	uint8_t *signed_msg = NULL;
	size_t signed_len = 0;
	enum px_err rc;

	if (!pub || !msg || msg_len < ANN_SIG_LEN)
		return PX_ERR_INVAL;
	rc = ann_signed_msg(label, topic, msg, msg_len - ANN_SIG_LEN, &signed_msg, &signed_len);
	if (rc != PX_OK)
		return rc;
	rc = id_pub_verify(pub, signed_msg, signed_len, msg + msg_len - ANN_SIG_LEN);
	free(signed_msg);
	return rc == PX_OK ? PX_OK : PX_ERR_AUTH;
}
