/* announce.c - key announcements (PROTOCOL.md §7) and key confirmations (§8): the epoch keys of
 * §4.2, the pairwise wrap of the sender secret of §4.3 and §7.2, and the build, strict parse,
 * signature check and unwrap of an announcement; build, parse and check of a confirmation (its
 * acceptance rules - addressee, freshness, epoch - are the caller's). The byte-level helpers
 * (cursors, ids, labelled signatures) live in announce_wire.c. */
#include "announce_internal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "aead.h"
#include "kdf.h"

#define ANN_LABEL_SIG  "mqseal v1 announce"
#define ANN_LABEL_WRAP "mqseal v1 wrap"
#define ANN_SALT_EPOCH "mqseal v1 epoch"
#define ANN_SALT_PAIR  "mqseal v1 pair"
/* After the sender id: epoch 8, rev 4, issued_at 8, interval_s 4, eph_pub 32, n 2 (§7.2). */
#define ANN_FIXED_AFTER_ID 58
/* The smallest announcement: preamble, a 1-byte id, the fixed fields, no entry, the signature. */
#define ANN_MIN_LEN (ANN_PREAMBLE_LEN + 2 + ANN_FIXED_AFTER_ID + ANN_SIG_LEN)
/* An entry after its recipient id and group: recipient_eph 32, acked_epoch 8, counter_floor 8, wrapped 48. */
#define ANN_ENTRY_AFTER_ID (KEX_PUB_LEN + 8 + 8 + ANN_WRAPPED_LEN)
#define ACK_LABEL_SIG	   "mqseal v1 ack"
/* After the two ids: acked_epoch 8, issued_at 8. */
#define ACK_FIXED_AFTER_IDS 16
/* Preamble, two ids of 1..64 bytes, the fixed fields and the signature: 92..218 bytes. */
#define ACK_MIN_LEN (ANN_PREAMBLE_LEN + 2 + 2 + ACK_FIXED_AFTER_IDS + ANN_SIG_LEN)

enum px_err epoch_derive(const uint8_t secret[static ANN_SECRET_LEN], const char *sender_id, uint64_t epoch,
			 uint8_t suite, struct epoch_keys *out)
{
	return epoch_derive_group(secret, sender_id, epoch, suite, NULL, out);
}

enum px_err epoch_derive_group(const uint8_t secret[static ANN_SECRET_LEN], const char *sender_id,
			       uint64_t epoch, uint8_t suite, const char *group, struct epoch_keys *out)
{
	uint8_t prk[KDF_PRK_LEN], ctx[1 + ANN_ID_MAX + 8 + 1 + 1 + ANN_GROUP_MAX];
	size_t idlen = ann_id_len_(sender_id), glen, n;
	struct wire_wr w;
	enum px_err rc;

	if (!secret || !out || idlen == 0 || !ann_group_len_(group, &glen))
		return PX_ERR_INVAL;
	/* ctx_epoch = str8(sender_id) || u64(epoch) || u8(suite), then str8(group) for a named
	 * group (§4.2): a key is bound to its group. */
	wire_wr_init(&w, ctx, sizeof(ctx));
	wire_wr_str8(&w, sender_id, idlen);
	wire_wr_u64(&w, epoch);
	wire_wr_u8(&w, suite);
	if (glen && group)
		wire_wr_str8(&w, group, glen);
	if (!wire_wr_ok(&w))
		return PX_ERR_INVAL;
	n = wire_wr_len(&w);
	rc = kdf_extract((const uint8_t *)ANN_SALT_EPOCH, strlen(ANN_SALT_EPOCH), secret, ANN_SECRET_LEN,
			 prk);
	if (rc == PX_OK)
		rc = kdf_expand_label(prk, "data key", ctx, n, out->key, sizeof(out->key));
	if (rc == PX_OK)
		rc = kdf_expand_label(prk, "data iv", ctx, n, out->iv, sizeof(out->iv));
	if (rc == PX_OK)
		rc = kdf_expand_label(prk, "key id", ctx, n, out->key_id, sizeof(out->key_id));
	OPENSSL_cleanse(prk, sizeof(prk));
	if (rc != PX_OK)
		OPENSSL_cleanse(out, sizeof(*out));
	return rc;
}

enum px_err ann_wrap_key_(const struct kex_key *mine, const uint8_t peer_pub[static KEX_PUB_LEN],
			  const char *s_id, const char *r_id, const uint8_t s_pub[static KEX_PUB_LEN],
			  const uint8_t r_pub[static KEX_PUB_LEN], uint8_t wrap_key[static AEAD_KEY_LEN])
{
	uint8_t shared[KEX_SHARED_LEN], prk[KDF_PRK_LEN], ctx[2 * (1 + ANN_ID_MAX) + 2 * KEX_PUB_LEN];
	size_t slen = ann_id_len_(s_id), rlen = ann_id_len_(r_id), n;
	struct wire_wr w;
	enum px_err rc;

	if (!mine || slen == 0 || rlen == 0)
		return PX_ERR_INVAL;
	/* ctx_pair = str8(S_id) || str8(R_id) || S_pub || R_pub (§4.3): sender first, so the two
	 * directions get different keys, and both public keys bind the transcript (R9). */
	wire_wr_init(&w, ctx, sizeof(ctx));
	wire_wr_str8(&w, s_id, slen);
	wire_wr_str8(&w, r_id, rlen);
	wire_wr_bytes(&w, s_pub, KEX_PUB_LEN);
	wire_wr_bytes(&w, r_pub, KEX_PUB_LEN);
	if (!wire_wr_ok(&w))
		return PX_ERR_INVAL;
	n = wire_wr_len(&w);
	/* An all-zero X25519 result is refused inside kex_derive (R8). */
	rc = kex_derive(mine, peer_pub, shared);
	if (rc == PX_OK)
		rc = kdf_extract((const uint8_t *)ANN_SALT_PAIR, strlen(ANN_SALT_PAIR), shared,
				 sizeof(shared), prk);
	if (rc == PX_OK)
		rc = kdf_expand_label(prk, "wrap key", ctx, n, wrap_key, AEAD_KEY_LEN);
	OPENSSL_cleanse(shared, sizeof(shared));
	OPENSSL_cleanse(prk, sizeof(prk));
	if (rc != PX_OK)
		OPENSSL_cleanse(wrap_key, AEAD_KEY_LEN);
	return rc;
}

/* Where an entry's wrap sits: its index in the message (the nonce is u32(index) || u64(rev)) and
 * its group (the AAD ends with str8(group) for a named group). */
struct ann_wrap_at {
	uint16_t index;
	uint32_t rev;
	uint64_t epoch;
	const char *group; /* NULL or "": the default group */
};

/* AES-256-GCM under the wrap key with nonce u32(index) || u64(rev) - an IV of u32(index) || 0^8
 * XORed with counter rev - and AAD "mqseal v1 wrap" || u64(epoch) [|| str8(group)] (§7.2). seal:
 * in = secret, out = 48 bytes; else the reverse. */
static enum px_err ann_wrap_run(const uint8_t wrap_key[static AEAD_KEY_LEN], const struct ann_wrap_at *at,
				bool seal, const uint8_t *in, uint8_t *out)
{
	uint8_t iv[AEAD_IV_LEN] = {0}, ep[8 + 1 + ANN_GROUP_MAX];
	struct aead_key *k = NULL;
	struct aead_part aad[2], pt;
	struct wire_wr w;
	size_t glen = 0;
	enum px_err rc;

	if (!ann_group_len_(at->group, &glen))
		return PX_ERR_INVAL;
	wire_wr_init(&w, iv, sizeof(iv));
	wire_wr_u32(&w, at->index); /* u32(index), then 0^8 */
	wire_wr_init(&w, ep, sizeof(ep));
	wire_wr_u64(&w, at->epoch);
	if (glen && at->group)
		wire_wr_str8(&w, at->group, glen);
	aad[0] = (struct aead_part){(const uint8_t *)ANN_LABEL_WRAP, strlen(ANN_LABEL_WRAP)};
	aad[1] = (struct aead_part){ep, wire_wr_len(&w)};
	rc = aead_key_new(wrap_key, iv, &k);
	if (rc != PX_OK)
		goto out;
	if (seal) {
		pt = (struct aead_part){in, ANN_SECRET_LEN};
		rc = aead_seal(k, at->rev, aad, 2, &pt, 1, out, out + ANN_SECRET_LEN);
	} else {
		rc = aead_open(k, at->rev, aad, 2, in, ANN_SECRET_LEN, in + ANN_SECRET_LEN, out);
	}
out:
	aead_key_free(k);
	return rc;
}

/* Entry i's group appears in no earlier entry (§7.2: each group at most once per message). */
static bool ann_group_first(const struct ann_recipient *r, size_t i)
{
	const char *g = r[i].group ? r[i].group : "";
	size_t k;

	for (k = 0; k < i; k++)
		if (strcmp(r[k].group ? r[k].group : "", g) == 0)
			return false;
	return true;
}

static size_t ann_size(const struct ann_params *p)
{
	size_t n, i, k, g;

	k = ann_id_len_(p->sender_id);
	if (k == 0 || !p->eph || p->nrecipients > ANN_MAX_ENTRIES || (!p->recipients && p->nrecipients) ||
	    (p->flags & (uint8_t)~ANN_FLAGS_KNOWN) != 0)
		return 0;
	n = ANN_PREAMBLE_LEN + 1 + k + ANN_FIXED_AFTER_ID + ANN_SIG_LEN;
	for (i = 0; i < p->nrecipients; i++) {
		k = ann_id_len_(p->recipients[i].id);
		if (k == 0 || !ann_group_len_(p->recipients[i].group, &g) || !ann_group_first(p->recipients, i) ||
		    (!p->recipients[i].secret && !p->secret))
			return 0;
		n += 1 + k + 1 + g + ANN_ENTRY_AFTER_ID; /* at most 65 entries of 195 bytes: no overflow */
	}
	return n;
}

static enum px_err ann_write_entry(struct wire_wr *w, const struct ann_params *p,
				   const uint8_t s_pub[static KEX_PUB_LEN], size_t index)
{
	const struct ann_recipient *r = &p->recipients[index];
	const struct ann_wrap_at at = {(uint16_t)index, p->rev, p->epoch, r->group};
	uint8_t wrap_key[AEAD_KEY_LEN], *wrapped;
	size_t glen = r->group ? strlen(r->group) : 0; /* checked by ann_size */
	enum px_err rc;

	ann_wr_id_(w, r->id);
	wire_wr_str8(w, r->group, glen);
	wire_wr_bytes(w, r->eph_pub, KEX_PUB_LEN);
	wire_wr_u64(w, r->acked_epoch);
	wire_wr_u64(w, r->counter_floor);
	wrapped = wire_wr_reserve(w, ANN_WRAPPED_LEN);
	if (!wrapped)
		return PX_ERR_INVAL; /* ann_size was wrong: a bug, refused rather than written past */
	rc = ann_wrap_key_(p->eph, r->eph_pub, p->sender_id, r->id, s_pub, r->eph_pub, wrap_key);
	if (rc == PX_OK)
		rc = ann_wrap_run(wrap_key, &at, true, r->secret ? r->secret : p->secret, wrapped);
	OPENSSL_cleanse(wrap_key, sizeof(wrap_key));
	return rc;
}

static void ann_write_header(struct wire_wr *w, const struct ann_params *p,
			     const uint8_t s_pub[static KEX_PUB_LEN])
{
	wire_wr_bytes(w, ANN_MAGIC, ANN_MAGIC_LEN);
	wire_wr_u8(w, ANN_VERSION);
	wire_wr_u8(w, ANN_TYPE_ANNOUNCE);
	wire_wr_u8(w, ANN_SUITE_1);
	wire_wr_u8(w, p->flags);
	ann_wr_id_(w, p->sender_id);
	wire_wr_u64(w, p->epoch);
	wire_wr_u32(w, p->rev);
	wire_wr_u64(w, p->issued_at_ms);
	wire_wr_u32(w, p->interval_s);
	wire_wr_bytes(w, s_pub, KEX_PUB_LEN);
	wire_wr_u16(w, (uint16_t)p->nrecipients);
}

/* Signs what w holds (exactly ANN_SIG_LEN bytes must be left for the signature) and hands the
 * buffer over to *out; on failure the caller frees it. */
static enum px_err ann_finish_signed(const struct id_key *id, const char *label, const char *topic,
				     struct wire_wr *w, uint8_t **out, size_t *out_len)
{
	enum px_err rc;

	if (!wire_wr_ok(w) || wire_wr_remaining(w) != ANN_SIG_LEN)
		return PX_ERR_INVAL; /* a sizing bug: never sign a message that is not whole */
	rc = ann_sign_(id, label, topic, w->p, wire_wr_len(w));
	if (rc != PX_OK)
		return rc;
	*out = w->p;
	*out_len = wire_wr_len(w) + ANN_SIG_LEN;
	return PX_OK;
}

enum px_err ann_build(const struct id_key *id, const char *topic, const struct ann_params *p, uint8_t **out,
		      size_t *out_len)
{
	struct wire_wr w;
	uint8_t s_pub[KEX_PUB_LEN], *buf;
	size_t i, len;
	enum px_err rc;

	if (!id || !topic || !p || !out || !out_len)
		return PX_ERR_INVAL;
	*out = NULL;
	*out_len = 0;
	len = ann_size(p);
	if (len == 0)
		return PX_ERR_INVAL;
	if (len > ANN_MAX_LEN)
		return PX_ERR_TOO_LARGE;
	rc = kex_key_public(p->eph, s_pub);
	if (rc != PX_OK)
		return rc;
	buf = malloc(len);
	if (!buf)
		return PX_ERR_NOMEM;
	wire_wr_init(&w, buf, len);
	ann_write_header(&w, p, s_pub);
	for (i = 0; i < p->nrecipients && rc == PX_OK; i++)
		rc = ann_write_entry(&w, p, s_pub, i);
	if (rc == PX_OK)
		rc = ann_finish_signed(id, ANN_LABEL_SIG, topic, &w, out, out_len);
	if (rc != PX_OK)
		free(buf);
	return rc;
}

enum px_err ann_peek(const uint8_t *buf, size_t len, struct ann_view *out)
{
	struct wire_rd r;
	enum px_err rc;

	if (!buf || !out)
		return PX_ERR_INVAL;
	memset(out, 0, sizeof(*out));
	/* §7.3 step 1: the size bounds come first, before any field is read. */
	if (len > ANN_MAX_LEN)
		return PX_ERR_TOO_LARGE;
	if (len < ANN_MIN_LEN)
		return PX_ERR_MALFORMED;
	wire_rd_init(&r, buf, len);
	rc = ann_preamble_(&r, ANN_TYPE_ANNOUNCE, ANN_FLAGS_KNOWN, &out->suite, &out->flags);
	if (rc != PX_OK)
		return rc;
	ann_rd_id_(&r, out->sender_id);
	out->epoch = wire_rd_u64(&r);
	out->rev = wire_rd_u32(&r);
	out->issued_at_ms = wire_rd_u64(&r);
	out->interval_s = wire_rd_u32(&r);
	wire_rd_copy(&r, out->eph_pub, KEX_PUB_LEN);
	out->nentries = wire_rd_u16(&r);
	if (!wire_rd_ok(&r))
		return PX_ERR_MALFORMED;
	if (out->nentries > ANN_MAX_ENTRIES)
		return PX_ERR_TOO_LARGE;
	out->buf = buf;
	out->len = len;
	out->entries_off = r.pos;
	return PX_OK;
}

/* Reads entry index at the cursor; fails the cursor if it does not parse. */
static void ann_rd_entry(struct wire_rd *r, size_t index, struct ann_entry *e)
{
	e->index = (uint16_t)index; /* < ANN_MAX_ENTRIES */
	ann_rd_id_(r, e->recipient_id);
	ann_rd_group_(r, e->group);
	wire_rd_copy(r, e->recipient_eph, KEX_PUB_LEN);
	e->acked_epoch = wire_rd_u64(r);
	e->counter_floor = wire_rd_u64(r);
	e->wrapped = wire_rd_bytes(r, ANN_WRAPPED_LEN);
}

enum px_err ann_parse(const uint8_t *buf, size_t len, struct ann_view *out)
{
	struct wire_rd r;
	char groups[ANN_MAX_ENTRIES][ANN_GROUP_MAX + 1];
	struct ann_entry e;
	size_t i, k;
	enum px_err rc;

	rc = ann_peek(buf, len, out);
	if (rc != PX_OK)
		return rc;
	wire_rd_init(&r, buf, len);
	wire_rd_skip(&r, out->entries_off);
	/* §7.3 step 3: no group twice in a message (at most 65 x 64 short compares). */
	for (i = 0; i < out->nentries && wire_rd_ok(&r); i++) {
		ann_rd_entry(&r, i, &e);
		memcpy(groups[i], e.group, sizeof(e.group));
		for (k = 0; k < i; k++)
			if (strcmp(groups[k], e.group) == 0)
				wire_rd_fail(&r, WIRE_INVALID);
	}
	/* Exactly the signature may follow the last entry (§7.2). */
	if (!wire_rd_ok(&r) || wire_rd_remaining(&r) != ANN_SIG_LEN) {
		memset(out, 0, sizeof(*out));
		return PX_ERR_MALFORMED;
	}
	return PX_OK;
}

void ann_entry_at(const struct ann_view *a, size_t i, struct ann_entry *out)
{
	struct wire_rd r;
	size_t k;

	memset(out, 0, sizeof(*out));
	if (i >= a->nentries)
		return;
	wire_rd_init(&r, a->buf, a->len);
	wire_rd_skip(&r, a->entries_off);
	for (k = 0; k <= i && wire_rd_ok(&r); k++)
		ann_rd_entry(&r, k, out);
	/* a came from ann_parse, so every entry reads; a view that did not is answered with nothing. */
	if (!wire_rd_ok(&r))
		memset(out, 0, sizeof(*out));
}

bool ann_find_entry(const struct ann_view *a, const char *recipient_id, struct ann_entry *out)
{
	struct wire_rd r;
	size_t k;

	if (!recipient_id)
		return false;
	wire_rd_init(&r, a->buf, a->len);
	wire_rd_skip(&r, a->entries_off);
	for (k = 0; k < a->nentries; k++) {
		ann_rd_entry(&r, k, out);
		if (!wire_rd_ok(&r))
			break;
		if (strcmp(out->recipient_id, recipient_id) == 0 && out->group[0] == '\0')
			return true;
	}
	memset(out, 0, sizeof(*out));
	return false;
}

enum px_err ann_verify(const struct ann_view *a, const struct id_pub *pub, const char *topic)
{
	if (!a || !a->buf)
		return PX_ERR_INVAL;
	return ann_verify_sig_(pub, ANN_LABEL_SIG, topic, a->buf, a->len);
}

enum px_err ann_unwrap(const struct ann_view *a, const struct ann_entry *e, const char *my_id,
		       const struct kex_key *my_eph, uint8_t secret[static ANN_SECRET_LEN])
{
	uint8_t my_pub[KEX_PUB_LEN], wrap_key[AEAD_KEY_LEN];
	enum px_err rc;

	if (!a || !e || !e->wrapped || !my_eph || !secret)
		return PX_ERR_INVAL;
	/* R_pub is this node's own public key: if the entry was wrapped to another one, the
	 * transcript differs and the wrap does not open. */
	rc = kex_key_public(my_eph, my_pub);
	if (rc == PX_OK)
		rc = ann_wrap_key_(my_eph, a->eph_pub, a->sender_id, my_id, a->eph_pub, my_pub, wrap_key);
	if (rc == PX_OK)
		rc = ann_wrap_run(wrap_key, &(const struct ann_wrap_at){e->index, a->rev, a->epoch, e->group}, false,
				  e->wrapped, secret);
	OPENSSL_cleanse(wrap_key, sizeof(wrap_key));
	if (rc != PX_OK)
		OPENSSL_cleanse(secret, ANN_SECRET_LEN);
	return rc;
}

/* ---- key confirmation (§8) ---- */

enum px_err ack_build(const struct id_key *id, const char *topic, const char *sender_id,
		      const char *recipient_id, uint64_t acked_epoch, uint64_t issued_at_ms, uint8_t **out,
		      size_t *out_len)
{
	size_t slen = ann_id_len_(sender_id), rlen = ann_id_len_(recipient_id);
	size_t len = ANN_PREAMBLE_LEN + 1 + slen + 1 + rlen + ACK_FIXED_AFTER_IDS + ANN_SIG_LEN;
	struct wire_wr w;
	uint8_t *buf;
	enum px_err rc;

	if (!id || !topic || !out || !out_len || slen == 0 || rlen == 0)
		return PX_ERR_INVAL;
	*out = NULL;
	*out_len = 0;
	buf = malloc(len);
	if (!buf)
		return PX_ERR_NOMEM;
	wire_wr_init(&w, buf, len);
	wire_wr_bytes(&w, ANN_MAGIC, ANN_MAGIC_LEN);
	wire_wr_u8(&w, ANN_VERSION);
	wire_wr_u8(&w, ANN_TYPE_ACK);
	wire_wr_u8(&w, ANN_SUITE_1);
	wire_wr_u8(&w, 0);
	ann_wr_id_(&w, sender_id);
	ann_wr_id_(&w, recipient_id);
	wire_wr_u64(&w, acked_epoch);
	wire_wr_u64(&w, issued_at_ms);
	rc = ann_finish_signed(id, ACK_LABEL_SIG, topic, &w, out, out_len);
	if (rc != PX_OK)
		free(buf);
	return rc;
}

enum px_err ack_parse(const uint8_t *buf, size_t len, struct ack_view *out)
{
	struct wire_rd r;
	uint8_t flags = 0;
	enum px_err rc;

	if (!buf || !out)
		return PX_ERR_INVAL;
	memset(out, 0, sizeof(*out));
	if (len > ANN_MAX_LEN)
		return PX_ERR_TOO_LARGE;
	if (len < ACK_MIN_LEN)
		return PX_ERR_MALFORMED;
	wire_rd_init(&r, buf, len);
	rc = ann_preamble_(&r, ANN_TYPE_ACK, 0, &out->suite, &flags);
	if (rc != PX_OK)
		return rc;
	ann_rd_id_(&r, out->sender_id);
	ann_rd_id_(&r, out->recipient_id);
	out->acked_epoch = wire_rd_u64(&r);
	out->issued_at_ms = wire_rd_u64(&r);
	/* Exactly the signature follows (§8). */
	if (!wire_rd_ok(&r) || wire_rd_remaining(&r) != ANN_SIG_LEN) {
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
