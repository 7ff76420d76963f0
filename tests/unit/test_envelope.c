/* test_envelope.c - the sealed payload of PROTOCOL.md §5: the golden vector of §12 (epoch keys of
 * §4.2 and one sealed payload), sizes and block counts, every single-bit flip, topic changes,
 * every truncation, and inner plaintexts with bad lengths or padding (sealed with the AEAD
 * directly, so only the inner checks can refuse them); sealing from and opening from pieces cut at
 * every point. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "announce.h"
#include "envelope.h"

#include "check.h"
#include "golden_vectors.h"

struct fixture {
	struct epoch_keys k;
	struct aead_key *key;
	char topic[128];
	uint8_t props[256], payload[256], sealed[1024], inner[1024];
	size_t props_len, payload_len, sealed_len, inner_len;
	struct env_header hdr;
	unsigned padding;
};

static void load_fixture(struct fixture *f)
{
	uint8_t secret[ANN_SECRET_LEN];
	char id[80];

	memset(f, 0, sizeof(*f));
	CHECK_EQ(golden_hex("sender_secret_a", secret, sizeof(secret)), sizeof(secret));
	CHECK_EQ(epoch_derive(secret, golden_str("id_a", id, sizeof(id)), golden_u64("epoch_a"), ANN_SUITE_1,
			      &f->k),
		 PX_OK);
	CHECK_EQ(aead_key_new(f->k.key, f->k.iv, &f->key), PX_OK);
	golden_str("topic_data", f->topic, sizeof(f->topic));
	f->props_len = golden_hex("data_props", f->props, sizeof(f->props));
	f->payload_len = golden_hex("data_payload", f->payload, sizeof(f->payload));
	f->sealed_len = golden_hex("data_sealed", f->sealed, sizeof(f->sealed));
	f->inner_len = golden_hex("data_inner", f->inner, sizeof(f->inner));
	f->hdr.flags = (uint8_t)golden_u64("data_flags");
	f->hdr.counter = golden_u64("data_counter");
	f->hdr.sealed_at = golden_u64("data_sealed_at");
	memcpy(f->hdr.key_id, f->k.key_id, ENV_KEY_ID_LEN);
	f->padding = (unsigned)golden_u64("data_padding");
}

static void test_golden(struct fixture *f)
{
	uint8_t want[64], out[1024], inner[1024];
	struct env_opened o;
	struct env_header h;
	size_t n;

	CHECK_EQ(golden_hex("data_key", want, sizeof(want)), 32);
	CHECK_MEM(f->k.key, want, 32);
	CHECK_EQ(golden_hex("data_iv", want, sizeof(want)), 12);
	CHECK_MEM(f->k.iv, want, 12);
	CHECK_EQ(golden_hex("key_id", want, sizeof(want)), 8);
	CHECK_MEM(f->k.key_id, want, 8);

	n = env_sealed_size(f->props_len, f->payload_len, f->padding);
	CHECK_EQ(n, f->sealed_len);
	CHECK_EQ(env_seal(f->key, &f->hdr, (const uint8_t *)f->topic, strlen(f->topic), f->props,
			  f->props_len, f->payload, f->payload_len, f->padding, out, n),
		 PX_OK);
	CHECK_MEM(out, f->sealed, f->sealed_len);

	CHECK_EQ(env_parse_header(f->sealed, f->sealed_len, &h), PX_OK);
	CHECK_EQ(h.flags, ENV_FLAG_RETAIN);
	CHECK_EQ(h.counter, f->hdr.counter);
	CHECK_EQ(h.sealed_at, f->hdr.sealed_at);
	CHECK_MEM(h.key_id, f->k.key_id, 8);
	CHECK_EQ(env_open(f->key, &h, (const uint8_t *)f->topic, strlen(f->topic), f->sealed, f->sealed_len,
			  inner, &o),
		 PX_OK);
	CHECK_EQ(f->sealed_len - ENV_OVERHEAD, f->inner_len);
	CHECK_MEM(inner, f->inner, f->inner_len);
	CHECK_EQ(o.props_len, f->props_len);
	CHECK_MEM(o.props, f->props, f->props_len);
	CHECK_EQ(o.payload_len, f->payload_len);
	CHECK_MEM(o.payload, f->payload, f->payload_len);
}

/* Opens buf as an envelope on topic: PX_OK only if the header parses and the open succeeds. */
static enum px_err try_open(struct fixture *f, const uint8_t *buf, size_t len, const char *topic, size_t tlen)
{
	uint8_t inner[1024];
	struct env_opened o;
	struct env_header h;
	enum px_err rc;

	rc = env_parse_header(buf, len, &h);
	if (rc != PX_OK)
		return rc;
	rc = env_open(f->key, &h, (const uint8_t *)topic, tlen, buf, len, inner, &o);
	if (rc != PX_OK) {
		size_t i;
		uint8_t acc = 0;
		/* A refused open leaves nothing of the plaintext behind. */
		for (i = 0; i < len - ENV_OVERHEAD; i++)
			acc |= inner[i];
		CHECK_EQ(acc, 0);
	}
	return rc;
}

static void test_bit_flips(struct fixture *f)
{
	uint8_t buf[1024];
	size_t i;
	unsigned b;
	int opened = 0, hdr_refused = 0;

	for (i = 0; i < f->sealed_len; i++) {
		for (b = 0; b < 8; b++) {
			enum px_err rc;
			memcpy(buf, f->sealed, f->sealed_len);
			buf[i] ^= (uint8_t)(1u << b);
			rc = try_open(f, buf, f->sealed_len, f->topic, strlen(f->topic));
			if (rc == PX_OK)
				opened++;
			else if (rc == PX_ERR_VERSION || rc == PX_ERR_MALFORMED)
				hdr_refused++;
			else
				CHECK_EQ(rc, PX_ERR_AUTH);
		}
	}
	CHECK_EQ(opened, 0);
	/* version (8 bits) and the reserved flag bits 4..7 (4 bits) are refused before any
	 * cryptography, and so is flag bit 2 (signed, §5.8) here: 90 bytes are too short for a
	 * signed envelope */
	CHECK_EQ(hdr_refused, 13);
}

static void test_topic(struct fixture *f)
{
	char t[160];
	size_t n = strlen(f->topic), i;

	CHECK_EQ(try_open(f, f->sealed, f->sealed_len, f->topic, n), PX_OK);
	for (i = 0; i < n; i++) {
		memcpy(t, f->topic, n);
		t[i] ^= 0x20;
		CHECK_EQ(try_open(f, f->sealed, f->sealed_len, t, n), PX_ERR_AUTH);
	}
	CHECK_EQ(try_open(f, f->sealed, f->sealed_len, f->topic, n - 1), PX_ERR_AUTH);
	snprintf(t, sizeof(t), "%s/", f->topic);
	CHECK_EQ(try_open(f, f->sealed, f->sealed_len, t, n + 1), PX_ERR_AUTH);
	CHECK_EQ(try_open(f, f->sealed, f->sealed_len, "", 0), PX_ERR_AUTH);
}

static void test_truncation(struct fixture *f)
{
	size_t n;

	for (n = 0; n < f->sealed_len; n++) {
		enum px_err rc = try_open(f, f->sealed, n, f->topic, strlen(f->topic));
		CHECK(rc != PX_OK);
		if (n < ENV_MIN_LEN)
			CHECK_EQ(rc, PX_ERR_MALFORMED);
		else
			CHECK_EQ(rc, PX_ERR_AUTH);
	}
	/* Trailing bytes are no better than missing ones. */
	{
		uint8_t buf[1024];
		memcpy(buf, f->sealed, f->sealed_len);
		buf[f->sealed_len] = 0;
		CHECK_EQ(try_open(f, buf, f->sealed_len + 1, f->topic, strlen(f->topic)), PX_ERR_AUTH);
	}
}

/* Seals inner (any bytes) as the ciphertext of a well-formed envelope with the AEAD directly. */
static size_t seal_raw(struct fixture *f, const uint8_t *inner, size_t n, uint8_t *out)
{
	static const char label[] = "mqseal v1 data";
	size_t tl = strlen(f->topic);
	uint8_t tlen[2] = {(uint8_t)(tl >> 8), (uint8_t)tl};
	struct aead_part aad[4], pt = {inner, n};

	out[0] = ENV_VERSION;
	out[1] = 0;
	memcpy(out + 2, f->k.key_id, 8);
	memset(out + 10, 0, 8);
	out[17] = 9; /* counter 9 */
	aad[0] = (struct aead_part){(const uint8_t *)label, strlen(label)};
	aad[1] = (struct aead_part){out, ENV_HDR_LEN};
	aad[2] = (struct aead_part){tlen, 2};
	aad[3] = (struct aead_part){(const uint8_t *)f->topic, tl};
	CHECK_EQ(aead_seal(f->key, 9, aad, 4, &pt, 1, out + ENV_HDR_LEN, out + ENV_HDR_LEN + n), PX_OK);
	return n + ENV_OVERHEAD;
}

static enum px_err open_crafted(struct fixture *f, const uint8_t *inner, size_t n)
{
	uint8_t env[1024];
	size_t len = seal_raw(f, inner, n, env);

	return try_open(f, env, len, f->topic, strlen(f->topic));
}

static void test_crafted_inner(struct fixture *f)
{
	/* props_len 2, props "ab", payload_len 3, "xyz", then 5 bytes of padding: 16 bytes */
	uint8_t good[16] = {0, 0, 0, 2, 'a', 'b', 0, 0, 0, 3, 'x', 'y', 'z', 0, 0, 0};
	uint8_t bad[16];
	size_t i;

	CHECK_EQ(open_crafted(f, good, sizeof(good)), PX_OK);
	/* any non-zero padding byte */
	for (i = 13; i < 16; i++) {
		memcpy(bad, good, 16);
		bad[i] = 0x80;
		CHECK_EQ(open_crafted(f, bad, 16), PX_ERR_MALFORMED);
	}
	/* payload_len reaching past the end by one, and lying wildly */
	memcpy(bad, good, 16);
	bad[9] = 7; /* 8 + 2 + 7 = 17 > 16 */
	CHECK_EQ(open_crafted(f, bad, 16), PX_ERR_MALFORMED);
	bad[9] = 6; /* 8 + 2 + 6 = 16: fits exactly, no padding: accepted */
	CHECK_EQ(open_crafted(f, bad, 16), PX_OK);
	memset(bad + 6, 0xff, 4);
	CHECK_EQ(open_crafted(f, bad, 16), PX_ERR_MALFORMED);
	/* props_len past the end, so payload_len cannot even be read */
	memcpy(bad, good, 16);
	bad[3] = 9; /* 8 + 9 = 17 > 16 */
	CHECK_EQ(open_crafted(f, bad, 16), PX_ERR_MALFORMED);
	bad[3] = 8; /* props fill everything, payload_len read from bytes 12..15 = 0 */
	memset(bad + 12, 0, 4);
	CHECK_EQ(open_crafted(f, bad, 16), PX_OK);
	memset(bad, 0xff, 4);
	CHECK_EQ(open_crafted(f, bad, 16), PX_ERR_MALFORMED);
	/* the shortest inner: both lengths 0, nothing else */
	memset(bad, 0, 8);
	CHECK_EQ(open_crafted(f, bad, 8), PX_OK);
}

static void test_header(void)
{
	uint8_t env[ENV_MIN_LEN] = {ENV_VERSION, 0};
	struct env_header h;
	unsigned b;

	CHECK_EQ(env_parse_header(env, ENV_MIN_LEN, &h), PX_OK);
	CHECK_EQ(env_parse_header(env, ENV_MIN_LEN - 1, &h), PX_ERR_MALFORMED);
	for (b = 0; b < 8; b++) {
		env[1] = (uint8_t)(1u << b);
		CHECK_EQ(env_parse_header(env, ENV_MIN_LEN, &h),
			 (b == 0 || b == 3) ? PX_OK : (b == 1 || b == 2) ? PX_ERR_MALFORMED : PX_ERR_VERSION);
	}
	/* signed (§5.8): the 64-byte signature must fit after the tag */
	{
		uint8_t big[ENV_MIN_LEN_SIGNED] = {ENV_VERSION, ENV_FLAG_SIGNED};
		CHECK_EQ(env_parse_header(big, ENV_MIN_LEN_SIGNED, &h), PX_OK);
		CHECK_EQ(h.flags, ENV_FLAG_SIGNED);
		CHECK_EQ(env_parse_header(big, ENV_MIN_LEN_SIGNED - 1, &h), PX_ERR_MALFORMED);
	}
	/* republish without retain_intent: not something a sender makes (§5.1) */
	env[1] = ENV_FLAG_REPUBLISH | ENV_FLAG_WILL;
	CHECK_EQ(env_parse_header(env, ENV_MIN_LEN, &h), PX_ERR_MALFORMED);
	env[1] = ENV_FLAG_RETAIN | ENV_FLAG_REPUBLISH | ENV_FLAG_WILL;
	CHECK_EQ(env_parse_header(env, ENV_MIN_LEN, &h), PX_OK);
	env[0] = 0;
	CHECK_EQ(env_parse_header(env, ENV_MIN_LEN, &h), PX_ERR_VERSION);
	env[0] = 1; /* version 1 (no sealed_at) is not read any more */
	CHECK_EQ(env_parse_header(env, ENV_MIN_LEN, &h), PX_ERR_VERSION);
	env[0] = 3;
	CHECK_EQ(env_parse_header(env, ENV_MIN_LEN, &h), PX_ERR_VERSION);
	env[0] = ENV_VERSION;
	env[10] = 0x01;
	env[17] = 0x02;
	env[18] = 0x03;
	env[25] = 0x04;
	CHECK_EQ(env_parse_header(env, ENV_MIN_LEN, &h), PX_OK);
	CHECK(h.counter == ((uint64_t)1 << 56 | 2));
	CHECK(h.sealed_at == ((uint64_t)3 << 56 | 4));
}

static void test_sizes(void)
{
	size_t n;

	/* §5.1: 50 to 65 bytes of overhead at padding 16, whatever the payload size */
	for (n = 0; n < 100; n++) {
		size_t s = env_sealed_size(0, n, 16);
		CHECK(s - n >= 50 && s - n <= 65);
		CHECK(s - n <= ENV_MAX_OVERHEAD(16));
		CHECK_EQ((s - ENV_OVERHEAD) % 16, 0);
	}
	CHECK_EQ(env_sealed_size(0, 0, 1), ENV_MIN_LEN);
	CHECK_EQ(env_sealed_size(3, 5, 1), ENV_MIN_LEN + 8);
	CHECK_EQ(env_sealed_size(0, 0, 256), ENV_OVERHEAD + 256);
	CHECK_EQ(env_sealed_size(0, 248, 256), ENV_OVERHEAD + 256);
	CHECK_EQ(env_sealed_size(0, 249, 256), ENV_OVERHEAD + 512);
	CHECK_EQ(env_sealed_size(0, 0, 0), 0);
	CHECK_EQ(env_sealed_size(0, 0, 257), 0);
	CHECK_EQ(env_sealed_size((size_t)UINT32_MAX + 1, 0, 16), 0);
	CHECK_EQ(env_sealed_size(SIZE_MAX - 4, 4, 16), 0);
	/* §9.4: ceil((len(AAD) + len(inner)) / 16) + 1; AAD = 14 + 26 + 2 + topic */
	CHECK_EQ(env_blocks(0, ENV_MIN_LEN), (42 + 8 + 15) / 16 + 1);
	CHECK_EQ(env_blocks(6, ENV_OVERHEAD + 16), 5);	/* 48 + 16 = 64 -> 4 + 1 */
	CHECK_EQ(env_blocks(7, ENV_OVERHEAD + 16), 6);	/* 65 -> 5 + 1 */
	CHECK_EQ(env_blocks(22, ENV_OVERHEAD + 16), 6); /* 80 -> 5 + 1 */
	CHECK_EQ(env_blocks(23, ENV_OVERHEAD + 16), 7); /* 81 -> 6 + 1 */
}

/* Round trips at several paddings and sizes, including empty props and payload. */
static void test_round_trips(struct fixture *f)
{
	static const unsigned pads[] = {1, 2, 16, 100, 256};
	uint8_t payload[600], out[1200], inner[1200];
	size_t p, n;

	for (n = 0; n < sizeof(payload); n++)
		payload[n] = (uint8_t)(n * 7 + 1);
	for (p = 0; p < sizeof(pads) / sizeof(pads[0]); p++) {
		for (n = 0; n < sizeof(payload); n += 37) {
			struct env_header h = f->hdr;
			struct env_opened o;
			size_t len = env_sealed_size(n % 5, n, pads[p]);
			h.counter = n;
			CHECK_EQ(env_seal(f->key, &h, (const uint8_t *)"t", 1, payload, n % 5, payload, n,
					  pads[p], out, len),
				 PX_OK);
			CHECK_EQ((len - ENV_OVERHEAD) % pads[p], 0);
			CHECK_EQ(env_open(f->key, &h, (const uint8_t *)"t", 1, out, len, inner, &o), PX_OK);
			CHECK_EQ(o.props_len, n % 5);
			CHECK_EQ(o.payload_len, n);
			CHECK_MEM(o.payload, payload, n);
			CHECK_MEM(o.props, payload, n % 5);
			/* a wrong counter is a wrong nonce */
			h.counter++;
			CHECK_EQ(env_open(f->key, &h, (const uint8_t *)"t", 1, out, len, inner, &o),
				 PX_ERR_AUTH);
		}
	}
	/* wrong out_len and reserved flags are refused before sealing */
	CHECK_EQ(env_seal(f->key, &f->hdr, (const uint8_t *)"t", 1, NULL, 0, payload, 1, 16, out, 67),
		 PX_ERR_INVAL);
	{
		struct env_header h = f->hdr;
		h.flags = 0x10;
		CHECK_EQ(env_seal(f->key, &h, (const uint8_t *)"t", 1, NULL, 0, payload, 1, 16, out, 66),
			 PX_ERR_INVAL);
	}
}

/* env_seal_parts gives the bytes of env_seal for every split of the payload: into two pieces at
 * every byte boundary, into three around every pair of a stride of boundaries, into one piece per
 * byte (at most ENV_PARTS_MAX), with empty and NULL pieces among them; too many pieces refused. */
static void test_seal_parts(struct fixture *f)
{
	uint8_t payload[300], want[400], got[400];
	struct aead_part parts[ENV_PARTS_MAX + 1];
	size_t n = sizeof(payload), len = env_sealed_size(3, n, 16), i, j;

	for (i = 0; i < n; i++)
		payload[i] = (uint8_t)(i * 13 + 5);
	CHECK_EQ(env_seal(f->key, &f->hdr, (const uint8_t *)"t/x", 3, payload, 3, payload, n, 16, want, len), PX_OK);
	for (i = 0; i <= n; i++) {
		parts[0] = (struct aead_part){payload, i};
		parts[1] = (struct aead_part){payload + i, n - i};
		memset(got, 0, sizeof(got));
		CHECK_EQ(env_seal_parts(f->key, &f->hdr, (const uint8_t *)"t/x", 3, payload, 3, parts, 2, 16, got, len),
			 PX_OK);
		CHECK_MEM(got, want, len);
	}
	for (i = 0; i <= n; i += 7) {
		for (j = i; j <= n; j += 11) {
			parts[0] = (struct aead_part){payload, i};
			parts[1] = (struct aead_part){j == i ? NULL : payload + i, j - i};
			parts[2] = (struct aead_part){payload + j, n - j};
			CHECK_EQ(env_seal_parts(f->key, &f->hdr, (const uint8_t *)"t/x", 3, payload, 3, parts, 3, 16,
						got, len),
				 PX_OK);
			CHECK_MEM(got, want, len);
		}
	}
	len = env_sealed_size(3, ENV_PARTS_MAX, 16);
	CHECK_EQ(env_seal(f->key, &f->hdr, (const uint8_t *)"t/x", 3, payload, 3, payload, ENV_PARTS_MAX, 16, want,
			  len),
		 PX_OK);
	for (i = 0; i < ENV_PARTS_MAX; i++)
		parts[i] = (struct aead_part){payload + i, 1};
	CHECK_EQ(env_seal_parts(f->key, &f->hdr, (const uint8_t *)"t/x", 3, payload, 3, parts, ENV_PARTS_MAX, 16, got,
				len),
		 PX_OK);
	CHECK_MEM(got, want, len);
	parts[ENV_PARTS_MAX] = (struct aead_part){NULL, 0};
	CHECK_EQ(env_seal_parts(f->key, &f->hdr, (const uint8_t *)"t/x", 3, payload, 3, parts, ENV_PARTS_MAX + 1, 16,
				got, len),
		 PX_ERR_INVAL);
	parts[0] = (struct aead_part){NULL, 1}; /* a NULL piece with a length */
	CHECK_EQ(env_seal_parts(f->key, &f->hdr, (const uint8_t *)"t/x", 3, payload, 3, parts, 2, 16, got, len),
		 PX_ERR_INVAL);
}

/* env_open_parts: the golden envelope cut at every point (and at pairs of points, with an empty
 * piece) opens to the same inner plaintext as env_open; every flipped bit of a cut envelope is
 * refused with the inner buffer wiped; too many pieces are refused. */
static void test_open_parts(struct fixture *f)
{
	struct aead_part parts[ENV_PARTS_MAX + 1];
	uint8_t inner[1024], buf[1024];
	struct env_opened o, one;
	size_t n = f->sealed_len, i, j, bad = 0, refused = 0, flips = 0;

	CHECK_EQ(env_open(f->key, &f->hdr, (const uint8_t *)f->topic, strlen(f->topic), f->sealed, n, buf, &one),
		 PX_OK);
	for (i = 0; i <= n; i++) {
		for (j = i; j <= n; j += (i % 5) + 1) {
			parts[0] = (struct aead_part){f->sealed, i};
			parts[1] = (struct aead_part){j == i ? NULL : f->sealed + i, j - i};
			parts[2] = (struct aead_part){f->sealed + j, n - j};
			memset(inner, 0xaa, sizeof(inner));
			if (env_open_parts(f->key, &f->hdr, (const uint8_t *)f->topic, strlen(f->topic), parts, 3, inner,
					   &o) != PX_OK ||
			    memcmp(inner, buf, n - ENV_OVERHEAD) || o.payload_len != one.payload_len ||
			    o.props_len != one.props_len || o.payload != inner + (one.payload - buf))
				bad++;
		}
	}
	CHECK_EQ(bad, 0);
	for (i = ENV_HDR_LEN * 8; i < n * 8; i++) { /* past the header: flips there are env_parse_header's */
		size_t cut = (i / 8) % (n + 1);
		memcpy(buf, f->sealed, n);
		buf[i / 8] ^= (uint8_t)(1u << (i % 8));
		parts[0] = (struct aead_part){buf, cut};
		parts[1] = (struct aead_part){buf + cut, n - cut};
		memset(inner, 0xaa, sizeof(inner));
		flips++;
		if (env_open_parts(f->key, &f->hdr, (const uint8_t *)f->topic, strlen(f->topic), parts, 2, inner, &o) ==
			    PX_ERR_AUTH) {
			uint8_t acc = 0;
			for (j = 0; j < n - ENV_OVERHEAD; j++)
				acc |= inner[j];
			refused += acc == 0;
		}
	}
	CHECK_EQ(refused, flips);
	for (i = 0; i <= ENV_PARTS_MAX; i++)
		parts[i] = (struct aead_part){f->sealed + (i < n ? i : n), i < ENV_PARTS_MAX ? 1 : n - ENV_PARTS_MAX};
	CHECK_EQ(env_open_parts(f->key, &f->hdr, (const uint8_t *)f->topic, strlen(f->topic), parts, ENV_PARTS_MAX + 1,
				inner, &o),
		 PX_ERR_INVAL);
	CHECK_EQ(env_open_parts(f->key, &f->hdr, (const uint8_t *)f->topic, strlen(f->topic), parts, ENV_PARTS_MAX,
				inner, &o),
		 PX_ERR_MALFORMED); /* 16 bytes: shorter than any envelope */
}

int main(int argc, char **argv)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (argc < 2 || !f || golden_load(argv[1]) <= 0)
		return 2;
	load_fixture(f);
	test_golden(f);
	test_bit_flips(f);
	test_topic(f);
	test_truncation(f);
	test_crafted_inner(f);
	test_header();
	test_sizes();
	test_round_trips(f);
	test_seal_parts(f);
	test_open_parts(f);
	aead_key_free(f->key);
	free(f);
	CHECK_DONE();
}
