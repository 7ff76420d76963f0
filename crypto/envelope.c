/* envelope.c - the sealed payload of PROTOCOL.md §5: header parsing, sealing and opening.
 * Sealing streams the inner plaintext (§5.2: u32 props_len, props, u32 payload_len, payload, zero
 * padding) into the AEAD as a list of pieces, so the payload is never copied (env_seal_parts takes
 * the payload itself in pieces, e.g. the chains of an input buffer); opening decrypts into
 * the caller's buffer and then checks the inner lengths and the padding. Nothing here allocates. */
#include "envelope.h"

#include <string.h>

#include <openssl/crypto.h>

#include "wire.h"

/* §5.4: AAD = "mqseal v1 data" || envelope[0..26) || u16(len(topic)) || topic. */
#define ENV_AAD_LABEL	  "mqseal v1 data"
#define ENV_AAD_LABEL_LEN (sizeof(ENV_AAD_LABEL) - 1)
#define ENV_TOPIC_MAX	  65535 /* MQTT-1.5.4: a UTF-8 string is at most 65,535 bytes */
#define ENV_AES_BLOCK	  16

/* Padding source: at most ENV_PAD_MAX - 1 zero bytes are ever appended (§5.2, §14). */
static const uint8_t env_zeros[ENV_PAD_MAX];

/* Length of the padded inner plaintext, or 0 on overflow or bad arguments. Both lengths travel as
 * u32 (§5.2), so each must fit one. */
static size_t env_inner_size(size_t props_len, size_t payload_len, unsigned padding)
{
	size_t n;

	if (padding < 1 || padding > ENV_PAD_MAX || props_len > UINT32_MAX || payload_len > UINT32_MAX)
		return 0;
	if (props_len > SIZE_MAX - ENV_INNER_FIXED - payload_len)
		return 0;
	n = ENV_INNER_FIXED + props_len + payload_len;
	if (n % padding && n > SIZE_MAX - padding)
		return 0;
	if (n % padding)
		n += padding - n % padding;
	return n;
}

size_t env_sealed_size(size_t props_len, size_t payload_len, unsigned padding)
{
	size_t inner = env_inner_size(props_len, payload_len, padding);

	if (inner == 0 || inner > SIZE_MAX - ENV_OVERHEAD)
		return 0;
	return inner + ENV_OVERHEAD;
}

enum px_err env_parse_header(const uint8_t *env, size_t len, struct env_header *out)
{
	struct wire_rd r;
	struct env_header h;
	uint8_t version;

	if (!env || !out)
		return PX_ERR_INVAL;
	/* §5.1: shorter than header + inner lengths + tag cannot be an envelope. */
	if (len < ENV_MIN_LEN)
		return PX_ERR_MALFORMED;
	wire_rd_init(&r, env, ENV_HDR_LEN); /* < ENV_MIN_LEN: every read below is in bounds */
	version = wire_rd_u8(&r);
	h.flags = wire_rd_u8(&r);
	wire_rd_copy(&r, h.key_id, ENV_KEY_ID_LEN);
	h.counter = wire_rd_u64(&r);
	h.sealed_at = wire_rd_u64(&r);
	if (version != ENV_VERSION || (h.flags & ~ENV_FLAG_KNOWN) != 0)
		return PX_ERR_VERSION;
	/* §5.8: a signed envelope also carries the 64-byte signature after its tag. */
	if ((h.flags & ENV_FLAG_SIGNED) && len < ENV_MIN_LEN_SIGNED)
		return PX_ERR_MALFORMED;
	/* §5.1: a re-publication is always of a retained value. */
	if ((h.flags & ENV_FLAG_REPUBLISH) && !(h.flags & ENV_FLAG_RETAIN))
		return PX_ERR_MALFORMED;
	*out = h;
	return PX_OK;
}

static void env_write_header(const struct env_header *hdr, uint8_t out[static ENV_HDR_LEN])
{
	struct wire_wr w;

	wire_wr_init(&w, out, ENV_HDR_LEN);
	wire_wr_u8(&w, ENV_VERSION);
	wire_wr_u8(&w, hdr->flags);
	wire_wr_bytes(&w, hdr->key_id, ENV_KEY_ID_LEN);
	wire_wr_u64(&w, hdr->counter);
	wire_wr_u64(&w, hdr->sealed_at);
}

/* The AAD pieces of §5.4 around the 26-byte header; tlen holds u16(len(topic)). */
static void env_aad(struct aead_part aad[static 4], const uint8_t *hdr, uint8_t tlen[static 2],
		    const uint8_t *topic, size_t topic_len)
{
	struct wire_wr w;

	wire_wr_init(&w, tlen, 2);
	wire_wr_u16(&w, (uint16_t)topic_len); /* callers checked topic_len <= ENV_TOPIC_MAX */
	aad[0] = (struct aead_part){(const uint8_t *)ENV_AAD_LABEL, ENV_AAD_LABEL_LEN};
	aad[1] = (struct aead_part){hdr, ENV_HDR_LEN};
	aad[2] = (struct aead_part){tlen, 2};
	aad[3] = (struct aead_part){topic, topic_len};
}

/* The payload length of parts[0..n), or SIZE_MAX if a piece is NULL with a length or the sum
 * overflows. */
static size_t env_parts_len(const struct aead_part *parts, size_t n)
{
	size_t i, total = 0;

	for (i = 0; i < n; i++) {
		if ((!parts[i].data && parts[i].len) || parts[i].len > SIZE_MAX - 1 - total)
			return SIZE_MAX;
		total += parts[i].len;
	}
	return total;
}

enum px_err env_seal(struct aead_key *key, const struct env_header *hdr, const uint8_t *topic,
		     size_t topic_len, const uint8_t *props, size_t props_len, const uint8_t *payload,
		     size_t payload_len, unsigned padding, uint8_t *out, size_t out_len)
{
	struct aead_part part = {payload, payload_len};

	if (!payload && payload_len)
		return PX_ERR_INVAL;
	return env_seal_parts(key, hdr, topic, topic_len, props, props_len, &part, 1, padding, out, out_len);
}

enum px_err env_seal_parts(struct aead_key *key, const struct env_header *hdr, const uint8_t *topic,
			   size_t topic_len, const uint8_t *props, size_t props_len, const struct aead_part *payload,
			   size_t npayload, unsigned padding, uint8_t *out, size_t out_len)
{
	struct aead_part aad[4], pt[ENV_PARTS_MAX + 4];
	uint8_t tlen[2], plen[4], ylen[4];
	struct wire_wr w;
	size_t inner, payload_len = payload ? env_parts_len(payload, npayload) : SIZE_MAX, i;
	enum px_err rc;

	if (!key || !hdr || !out || (!topic && topic_len) || (!props && props_len) || npayload > ENV_PARTS_MAX ||
	    payload_len == SIZE_MAX)
		return PX_ERR_INVAL;
	if ((hdr->flags & ~ENV_FLAG_KNOWN) != 0 || topic_len > ENV_TOPIC_MAX)
		return PX_ERR_INVAL;
	if ((hdr->flags & ENV_FLAG_REPUBLISH) && !(hdr->flags & ENV_FLAG_RETAIN))
		return PX_ERR_INVAL;
	inner = env_inner_size(props_len, payload_len, padding);
	if (inner == 0 || out_len != env_sealed_size(props_len, payload_len, padding))
		return PX_ERR_INVAL;
	env_write_header(hdr, out);
	env_aad(aad, out, tlen, topic, topic_len);
	wire_wr_init(&w, plen, sizeof(plen));
	wire_wr_u32(&w, (uint32_t)props_len); /* both <= UINT32_MAX (env_inner_size) */
	wire_wr_init(&w, ylen, sizeof(ylen));
	wire_wr_u32(&w, (uint32_t)payload_len);
	pt[0] = (struct aead_part){plen, sizeof(plen)};
	pt[1] = (struct aead_part){props, props_len};
	pt[2] = (struct aead_part){ylen, sizeof(ylen)};
	for (i = 0; i < npayload; i++)
		pt[3 + i] = payload[i];
	pt[3 + npayload] = (struct aead_part){env_zeros, inner - ENV_INNER_FIXED - props_len - payload_len};
	rc = aead_seal(key, hdr->counter, aad, 4, pt, npayload + 4, out + ENV_HDR_LEN, out + ENV_HDR_LEN + inner);
	if (rc != PX_OK)
		OPENSSL_cleanse(out, out_len);
	return rc;
}

/* §5.2: 8 + props_len + payload_len <= len(inner), and every padding byte is 0. The padding is
 * OR-ed as a whole, with no early exit, so the time taken does not depend on where a non-zero
 * byte sits. */
static enum px_err env_check_inner(const uint8_t *inner, size_t n, struct env_opened *out)
{
	struct wire_rd r;
	const uint8_t *props, *payload, *pad;
	size_t props_len, payload_len, pad_len, i;
	uint8_t acc = 0;

	wire_rd_init(&r, inner, n);
	props_len = wire_rd_u32(&r);
	props = wire_rd_bytes(&r, props_len);
	payload_len = wire_rd_u32(&r);
	payload = wire_rd_bytes(&r, payload_len);
	pad = wire_rd_rest(&r, &pad_len);
	if (!wire_rd_ok(&r))
		return PX_ERR_MALFORMED;
	for (i = 0; i < pad_len; i++)
		acc |= pad[i];
	if (acc != 0)
		return PX_ERR_MALFORMED;
	out->props = props;
	out->props_len = props_len;
	out->payload = payload;
	out->payload_len = payload_len;
	return PX_OK;
}

enum px_err env_open(struct aead_key *key, const struct env_header *hdr, const uint8_t *topic,
		     size_t topic_len, const uint8_t *env, size_t len, uint8_t *inner, struct env_opened *out)
{
	const struct aead_part whole = {env, len};

	if (!env)
		return PX_ERR_INVAL;
	return env_open_parts(key, hdr, topic, topic_len, &whole, 1, inner, out); /* its one-piece case */
}

/* Copies len bytes at offset off of the pieces into dst; 0 if they hold fewer. */
static int env_parts_copy(const struct aead_part *parts, size_t n, size_t off, size_t len, uint8_t *dst)
{
	size_t i, k;

	for (i = 0; i < n && len; i++) {
		if (off >= parts[i].len) {
			off -= parts[i].len;
			continue;
		}
		k = parts[i].len - off < len ? parts[i].len - off : len;
		memcpy(dst, parts[i].data + off, k);
		dst += k;
		len -= k;
		off = 0;
	}
	return len == 0;
}

/* The pieces of the stretch [off, off + len) of parts[0..n) into out (n entries of room);
 * returns how many, 0 if the pieces hold fewer bytes. */
static size_t env_parts_slice(const struct aead_part *parts, size_t n, size_t off, size_t len,
			      struct aead_part *out)
{
	size_t i, k, m = 0;

	for (i = 0; i < n && len; i++) {
		if (off >= parts[i].len) {
			off -= parts[i].len;
			continue;
		}
		k = parts[i].len - off < len ? parts[i].len - off : len;
		out[m++] = (struct aead_part){parts[i].data + off, k};
		len -= k;
		off = 0;
	}
	return len == 0 ? m : 0;
}

enum px_err env_open_parts(struct aead_key *key, const struct env_header *hdr, const uint8_t *topic,
			   size_t topic_len, const struct aead_part *env, size_t nenv, uint8_t *inner,
			   struct env_opened *out)
{
	uint8_t head[ENV_HDR_LEN], tag[AEAD_TAG_LEN], tlen[2];
	struct aead_part aad[4], ct[ENV_PARTS_MAX + 1];
	struct aead_out dst;
	size_t len = env ? env_parts_len(env, nenv) : SIZE_MAX, n, pieces;
	enum px_err rc;

	if (!key || !hdr || !env || !inner || !out || (!topic && topic_len) || topic_len > ENV_TOPIC_MAX ||
	    nenv > ENV_PARTS_MAX || len == SIZE_MAX)
		return PX_ERR_INVAL;
	/* §5.8: a signed envelope's AEAD part ends where its signature begins. */
	if ((hdr->flags & ENV_FLAG_SIGNED) && len < ENV_MIN_LEN_SIGNED)
		return PX_ERR_MALFORMED;
	if (hdr->flags & ENV_FLAG_SIGNED)
		len -= ENV_SIG_LEN;
	if (len < ENV_MIN_LEN)
		return PX_ERR_MALFORMED;
	n = len - ENV_OVERHEAD;
	pieces = env_parts_slice(env, nenv, ENV_HDR_LEN, n, ct);
	if (!env_parts_copy(env, nenv, 0, ENV_HDR_LEN, head) || !env_parts_copy(env, nenv, ENV_HDR_LEN + n,
										  AEAD_TAG_LEN, tag) ||
	    (n && !pieces))
		return PX_ERR_INVAL;
	/* The AAD takes the header exactly as received (§5.4); the counter for the nonce is hdr's. */
	env_aad(aad, head, tlen, topic, topic_len);
	dst = (struct aead_out){inner, n};
	rc = aead_open_parts(key, hdr->counter, aad, 4, ct, pieces, tag, &dst, 1);
	if (rc != PX_OK)
		return rc;
	rc = env_check_inner(inner, n, out);
	if (rc != PX_OK) {
		OPENSSL_cleanse(inner, n);
		memset(out, 0, sizeof(*out));
	}
	return rc;
}

uint64_t env_blocks(size_t topic_len, size_t sealed_len)
{
	/* §9.4: ceil((len(AAD) + len(inner)) / 16) + 1, the +1 for the tag's E(K, J0). */
	uint64_t aad = ENV_AAD_LABEL_LEN + ENV_HDR_LEN + 2 + (uint64_t)topic_len;
	uint64_t inner = sealed_len > ENV_OVERHEAD ? (uint64_t)(sealed_len - ENV_OVERHEAD) : 0;

	return (aad + inner + ENV_AES_BLOCK - 1) / ENV_AES_BLOCK + 1;
}
