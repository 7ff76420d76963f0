/* ack.c - key confirmations (PROTOCOL.md §8): a node tells a peer, signed, that it installed the
 * receive key of one of the peer's epochs. Build, strict parse and signature check; the acceptance
 * rules (addressee, freshness, epoch) are the caller's. */
#include "announce_internal.h"

#include <stdlib.h>
#include <string.h>

#define ACK_LABEL_SIG "mqseal v1 ack"
/* After the two ids: acked_epoch 8, issued_at 8. */
#define ACK_FIXED_AFTER_IDS 16
/* Preamble, two ids of 1..64 bytes, the fixed fields and the signature: 92..218 bytes. */
#define ACK_MIN_LEN (ANN_PREAMBLE_LEN + 2 + 2 + ACK_FIXED_AFTER_IDS + ANN_SIG_LEN)

enum px_err ack_build(const struct id_key *id, const char *topic, const char *sender_id,
		      const char *recipient_id, uint64_t acked_epoch, uint64_t issued_at_ms, uint8_t **out,
		      size_t *out_len)
{
	size_t slen = ann_id_len_(sender_id), rlen = ann_id_len_(recipient_id);
	struct ann_wr w = {0};
	enum px_err rc;

	if (!id || !topic || !out || !out_len || slen == 0 || rlen == 0)
		return PX_ERR_INVAL;
	*out = NULL;
	*out_len = 0;
	w.len = ANN_PREAMBLE_LEN + 1 + slen + 1 + rlen + ACK_FIXED_AFTER_IDS + ANN_SIG_LEN;
	w.buf = malloc(w.len);
	if (!w.buf)
		return PX_ERR_NOMEM;
	ann_wr_bytes_(&w, ANN_MAGIC, ANN_MAGIC_LEN);
	ann_wr_u8_(&w, ANN_VERSION);
	ann_wr_u8_(&w, ANN_TYPE_ACK);
	ann_wr_u8_(&w, ANN_SUITE_1);
	ann_wr_u8_(&w, 0);
	ann_wr_id_(&w, sender_id);
	ann_wr_id_(&w, recipient_id);
	ann_wr_u64_(&w, acked_epoch);
	ann_wr_u64_(&w, issued_at_ms);
	rc = ann_sign_(id, ACK_LABEL_SIG, topic, w.buf, w.len - ANN_SIG_LEN);
	if (rc != PX_OK)
		goto out;
	*out = w.buf;
	*out_len = w.len;
	w.buf = NULL;
out:
	free(w.buf);
	return rc;
}

enum px_err ack_parse(const uint8_t *buf, size_t len, struct ack_view *out)
{
	struct ann_rd r = {.buf = buf, .len = len};
	enum px_err rc;

	if (!buf || !out)
		return PX_ERR_INVAL;
	memset(out, 0, sizeof(*out));
	if (len > ANN_MAX_LEN)
		return PX_ERR_TOO_LARGE;
	if (len < ACK_MIN_LEN)
		return PX_ERR_MALFORMED;
	rc = ann_preamble_(&r, ANN_TYPE_ACK, &out->suite);
	if (rc != PX_OK)
		return rc;
	ann_rd_id_(&r, out->sender_id);
	ann_rd_id_(&r, out->recipient_id);
	out->acked_epoch = ann_rd_u64_(&r);
	out->issued_at_ms = ann_rd_u64_(&r);
	/* Exactly the signature follows (§8). */
	if (r.bad || len - r.pos != ANN_SIG_LEN) {
		memset(out, 0, sizeof(*out));
		return PX_ERR_MALFORMED;
	}
	out->buf = buf;
	out->len = len;
	return PX_OK;
}

enum px_err ack_verify(const struct ack_view *a, const struct id_pub *pub, const char *topic)
{
	if (!a || !a->buf)
		return PX_ERR_INVAL;
	return ann_verify_sig_(pub, ACK_LABEL_SIG, topic, a->buf, a->len);
}
