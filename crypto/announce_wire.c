/* announce_wire.c - the byte-level helpers of announcements and confirmations (announce.c): a
 * checked read cursor, an asserted write cursor, node-id validation (also used by the key ring),
 * the common preamble and the labelled Ed25519 signature of PROTOCOL.md §7.2 and §8. */
#include "announce_internal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

const uint8_t *ann_rd_take_(struct ann_rd *r, size_t n)
{
	const uint8_t *p;

	if (r->bad || n > r->len - r->pos) {
		r->bad = true;
		return NULL;
	}
	p = r->buf + r->pos;
	r->pos += n;
	return p;
}

static uint64_t ann_rd_be(struct ann_rd *r, size_t n)
{
	const uint8_t *p = ann_rd_take_(r, n);
	uint64_t v = 0;
	size_t i;

	if (!p)
		return 0;
	for (i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

uint8_t ann_rd_u8_(struct ann_rd *r)
{
	return (uint8_t)ann_rd_be(r, 1);
}

uint16_t ann_rd_u16_(struct ann_rd *r)
{
	return (uint16_t)ann_rd_be(r, 2);
}

uint32_t ann_rd_u32_(struct ann_rd *r)
{
	return (uint32_t)ann_rd_be(r, 4);
}

uint64_t ann_rd_u64_(struct ann_rd *r)
{
	return ann_rd_be(r, 8);
}

void ann_rd_id_(struct ann_rd *r, char out[static ANN_ID_MAX + 1])
{
	size_t n = ann_rd_u8_(r);
	const uint8_t *p;

	out[0] = '\0';
	if (r->bad)
		return;
	/* The length is checked against the id limit and the charset before anything is copied. */
	p = ann_rd_take_(r, n);
	if (!p || !ann_id_ok_(p, n)) {
		r->bad = true;
		return;
	}
	memcpy(out, p, n);
	out[n] = '\0';
}

static void ann_wr_be(struct ann_wr *w, uint64_t v, size_t n)
{
	size_t i;

	assert(n <= w->len - w->pos);
	for (i = 0; i < n; i++)
		w->buf[w->pos + i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	w->pos += n;
}

void ann_wr_bytes_(struct ann_wr *w, const void *p, size_t n)
{
	assert(n <= w->len - w->pos);
	memcpy(w->buf + w->pos, p, n);
	w->pos += n;
}

void ann_wr_u8_(struct ann_wr *w, uint8_t v)
{
	ann_wr_be(w, v, 1);
}

void ann_wr_u16_(struct ann_wr *w, uint16_t v)
{
	ann_wr_be(w, v, 2);
}

void ann_wr_u32_(struct ann_wr *w, uint32_t v)
{
	ann_wr_be(w, v, 4);
}

void ann_wr_u64_(struct ann_wr *w, uint64_t v)
{
	ann_wr_be(w, v, 8);
}

void ann_wr_id_(struct ann_wr *w, const char *id)
{
	size_t n = strlen(id);

	ann_wr_u8_(w, (uint8_t)n);
	ann_wr_bytes_(w, id, n);
}

bool ann_group_len_(const char *group, size_t *len)
{
	size_t n = group ? strnlen(group, ANN_GROUP_MAX + 1) : 0;

	*len = n;
	return n == 0 || (n <= ANN_GROUP_MAX && ann_id_ok_((const uint8_t *)group, n));
}

void ann_rd_group_(struct ann_rd *r, char out[static ANN_GROUP_MAX + 1])
{
	size_t n = ann_rd_u8_(r);
	const uint8_t *p;

	out[0] = '\0';
	if (r->bad || n == 0)
		return;
	/* Length and charset are checked before anything is copied. */
	p = n <= ANN_GROUP_MAX ? ann_rd_take_(r, n) : NULL;
	if (!p || !ann_id_ok_(p, n)) {
		r->bad = true;
		return;
	}
	memcpy(out, p, n);
	out[n] = '\0';
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

enum px_err ann_preamble_(struct ann_rd *r, uint8_t type, uint8_t known, uint8_t *suite, uint8_t *flags)
{
	const uint8_t *p = ann_rd_take_(r, ANN_PREAMBLE_LEN);

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
	size_t llen = strlen(label), tlen;
	struct ann_wr w;

	if (!topic || body_len > ANN_MAX_LEN)
		return PX_ERR_INVAL;
	tlen = strnlen(topic, ANN_TOPIC_MAX + 1);
	if (tlen > ANN_TOPIC_MAX)
		return PX_ERR_TOPIC;
	w.len = llen + 2 + tlen + body_len;
	w.pos = 0;
	w.buf = malloc(w.len);
	if (!w.buf)
		return PX_ERR_NOMEM;
	ann_wr_bytes_(&w, label, llen);
	ann_wr_u16_(&w, (uint16_t)tlen);
	ann_wr_bytes_(&w, topic, tlen);
	if (body_len)
		ann_wr_bytes_(&w, body, body_len);
	*out = w.buf;
	*out_len = w.len;
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
