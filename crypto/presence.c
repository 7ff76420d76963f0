/* presence.c - the presence message of key-exchange protocol version 2 (type 0x03, presence.h):
 * build, strict parse, and the check of topic and signature. The byte-level helpers (cursors,
 * node ids, the labelled Ed25519 signature) are announcements' (announce_wire.c); the preamble is
 * checked here, because presence exists only in version 2. */
#include "presence.h"

#include <string.h>

#include "announce_internal.h"

#define PRES_LABEL_SIG "mqseal v1 presence"

_Static_assert(PRES_ID_MAX == ANN_ID_MAX, "presence ids are announcement ids");

/* The last level of topic: what follows its last '/', or all of it. */
static const char *pres_last_level(const char *topic)
{
	const char *slash = strrchr(topic, '/');

	return slash ? slash + 1 : topic;
}

static bool pres_topic_ok(const char *topic, const char *sender_id)
{
	return topic && strcmp(pres_last_level(topic), sender_id) == 0;
}

enum px_err pres_build(const struct id_key *id, const char *topic, const struct pres_info *info,
		       uint8_t out[static PRES_MAX_LEN], size_t *out_len)
{
	struct wire_wr w;
	size_t k;
	enum px_err rc;

	if (!id || !info || !out || !out_len)
		return PX_ERR_INVAL;
	*out_len = 0;
	k = ann_id_len_(info->sender_id);
	/* A message its receivers would refuse as wrong_topic is a caller bug, not a message. */
	if (k == 0 || !pres_topic_ok(topic, info->sender_id))
		return PX_ERR_INVAL;
	wire_wr_init(&w, out, PRES_FIXED_LEN + k);
	wire_wr_bytes(&w, ANN_MAGIC, ANN_MAGIC_LEN);
	wire_wr_u8(&w, PRES_VERSION);
	wire_wr_u8(&w, PRES_TYPE);
	wire_wr_u8(&w, PRES_SUITE_1);
	wire_wr_u8(&w, 0);
	ann_wr_id_(&w, info->sender_id);
	wire_wr_u8(&w, info->online ? PRES_STATE_ONLINE : PRES_STATE_OFFLINE);
	wire_wr_u64(&w, info->session);
	wire_wr_u64(&w, info->issued_at_ms);
	/* Exactly the signature is left; anything else is a sizing bug. */
	rc = wire_wr_ok(&w) && wire_wr_remaining(&w) == ANN_SIG_LEN ? PX_OK : PX_ERR_INVAL;
	if (rc == PX_OK)
		rc = ann_sign_(id, PRES_LABEL_SIG, topic, out, wire_wr_len(&w));
	if (rc != PX_OK) {
		memset(out, 0, PRES_FIXED_LEN + k);
		return rc;
	}
	*out_len = PRES_FIXED_LEN + k;
	return PX_OK;
}

/* magic, version 2, type 3, suite 1, flags 0. An unknown version, suite or flag bit is a message
 * this node does not speak (no negotiation); a known version with another type is not presence. */
static enum px_err pres_preamble(struct wire_rd *r, uint8_t *suite)
{
	const uint8_t *p = wire_rd_bytes(r, ANN_PREAMBLE_LEN);

	if (!p || memcmp(p, ANN_MAGIC, ANN_MAGIC_LEN) != 0)
		return PX_ERR_MALFORMED;
	if (p[4] != PRES_VERSION || p[6] != PRES_SUITE_1 || p[7] != 0)
		return PX_ERR_VERSION;
	if (p[5] != PRES_TYPE)
		return PX_ERR_MALFORMED;
	*suite = p[6];
	return PX_OK;
}

static enum px_err pres_parse_fields(struct wire_rd *r, struct pres_view *out)
{
	enum px_err rc = pres_preamble(r, &out->suite);

	if (rc != PX_OK)
		return rc;
	ann_rd_id_(r, out->sender_id);
	out->state = wire_rd_u8(r);
	out->session = wire_rd_u64(r);
	out->issued_at_ms = wire_rd_u64(r);
	if (!wire_rd_ok(r) || (out->state != PRES_STATE_ONLINE && out->state != PRES_STATE_OFFLINE))
		return PX_ERR_MALFORMED;
	/* Exactly the signature follows. */
	if (wire_rd_remaining(r) != ANN_SIG_LEN)
		return PX_ERR_MALFORMED;
	return PX_OK;
}

enum px_err pres_parse(const uint8_t *buf, size_t len, struct pres_view *out)
{
	struct wire_rd r;
	enum px_err rc;

	if (!buf || !out)
		return PX_ERR_INVAL;
	memset(out, 0, sizeof(*out));
	/* The size bounds come first, before any field is read. */
	if (len > PRES_MAX_LEN)
		return PX_ERR_TOO_LARGE;
	if (len < PRES_MIN_LEN)
		return PX_ERR_MALFORMED;
	wire_rd_init(&r, buf, len);
	rc = pres_parse_fields(&r, out);
	if (rc != PX_OK) {
		memset(out, 0, sizeof(*out));
		return rc;
	}
	out->buf = buf;
	out->len = len;
	return PX_OK;
}

bool pres_topic_names_sender(const struct pres_view *p, const char *topic)
{
	return p && p->sender_id[0] != '\0' && pres_topic_ok(topic, p->sender_id);
}

enum px_err pres_verify(const struct pres_view *p, const struct id_pub *pub, const char *topic)
{
	if (!p || !p->buf || !topic)
		return PX_ERR_INVAL;
	if (!pres_topic_names_sender(p, topic))
		return PX_ERR_TOPIC;
	return ann_verify_sig_(pub, PRES_LABEL_SIG, topic, p->buf, p->len);
}
