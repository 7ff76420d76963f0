/* test_envelope_source.c - source authentication of sealed payloads (PROTOCOL.md §5.8): the signed
 * envelope (flag bit 2 + 64-byte Ed25519 signature after the tag), its golden vector
 * (data_sealed_signed of tests/vectors/golden.txt: §12.5 with the flag set, signed by identity A),
 * round trips, every bit flipped (header, ciphertext, tag, signature), wrong topic, wrong identity
 * key, the flag cleared, the flag without a signature, truncation, and keyring_open_source: the
 * source rule on the opening path, which leaves the replay window alone for what it refuses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "announce.h"
#include "envelope.h"
#include "keyring.h"
#include "replay.h"

#include "check.h"
#include "golden_vectors.h"

#define BUF 1024

struct fixture {
	struct epoch_keys k;
	struct aead_key *key;
	struct id_key *id_a, *id_b;
	struct id_pub *pub_a, *pub_b;
	char topic[128];
	uint8_t props[256], payload[256], signed_env[BUF];
	size_t props_len, payload_len, signed_len;
	struct env_header hdr;
	unsigned padding;
};

static void load_ids(struct fixture *f)
{
	uint8_t seed[ID_SEED_LEN], raw[ID_PUB_LEN];

	CHECK_EQ(golden_hex("id_seed_a", seed, sizeof(seed)), ID_SEED_LEN);
	CHECK_EQ(id_key_from_seed(seed, &f->id_a), PX_OK);
	CHECK_EQ(golden_hex("id_seed_b", seed, sizeof(seed)), ID_SEED_LEN);
	CHECK_EQ(id_key_from_seed(seed, &f->id_b), PX_OK);
	CHECK_EQ(id_key_public(f->id_a, raw), PX_OK);
	CHECK_EQ(id_pub_new(raw, &f->pub_a), PX_OK);
	CHECK_EQ(id_key_public(f->id_b, raw), PX_OK);
	CHECK_EQ(id_pub_new(raw, &f->pub_b), PX_OK);
}

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
	load_ids(f);
	golden_str("topic_data", f->topic, sizeof(f->topic));
	f->props_len = golden_hex("data_props", f->props, sizeof(f->props));
	f->payload_len = golden_hex("data_payload", f->payload, sizeof(f->payload));
	f->signed_len = golden_hex("data_sealed_signed", f->signed_env, sizeof(f->signed_env));
	f->hdr.flags = (uint8_t)golden_u64("data_flags");
	f->hdr.counter = golden_u64("data_counter");
	f->hdr.sealed_at = golden_u64("data_sealed_at");
	memcpy(f->hdr.key_id, f->k.key_id, ENV_KEY_ID_LEN);
	f->padding = (unsigned)golden_u64("data_padding");
}

static size_t tlen(const char *t)
{
	return strlen(t);
}

/* The receiver's whole check: header, AEAD, signature under pub. PX_OK only if all pass; else
 * the first refusal. A refused open leaves no plaintext behind. */
static enum px_err accept(struct fixture *f, const struct id_pub *pub, const uint8_t *env, size_t len,
			  const char *topic)
{
	uint8_t inner[BUF];
	struct env_opened o;
	struct env_header h;
	enum px_err rc;
	size_t i;
	uint8_t acc = 0;

	memset(inner, 0, sizeof(inner));
	rc = env_parse_header(env, len, &h);
	if (rc != PX_OK)
		return rc;
	rc = env_open(f->key, &h, (const uint8_t *)topic, tlen(topic), env, len, inner, &o);
	if (rc != PX_OK) {
		for (i = 0; i < sizeof(inner); i++)
			acc |= inner[i];
		CHECK_EQ(acc, 0);
		return rc;
	}
	CHECK_EQ(o.payload_len, f->payload_len);
	CHECK_MEM(o.payload, f->payload, f->payload_len);
	return env_source_verify(pub, (const uint8_t *)topic, tlen(topic), env, len);
}

/* §12.5 with the signed flag, signed by A: the bytes of golden.txt, made by both ways of signing
 * (one call, or seal with the flag and sign in place as the node's sealing path does). */
static void test_golden(struct fixture *f)
{
	uint8_t out[BUF], want[BUF] = {0};
	struct env_header h = f->hdr;
	size_t n = env_signed_size(f->props_len, f->payload_len, f->padding), wn;

	CHECK_EQ(n, env_sealed_size(f->props_len, f->payload_len, f->padding) + ENV_SIG_LEN);
	CHECK_EQ(n, f->signed_len);
	CHECK_EQ(env_seal_signed(f->key, f->id_a, &f->hdr, (const uint8_t *)f->topic, tlen(f->topic), f->props,
				 f->props_len, f->payload, f->payload_len, f->padding, out, n),
		 PX_OK);
	CHECK_MEM(out, f->signed_env, n);
	/* The AEAD part is the unsigned §12.5 envelope but for the flag byte (and so the tag). */
	wn = golden_hex("data_sealed", want, sizeof(want));
	CHECK_EQ(wn + ENV_SIG_LEN, n);
	CHECK_MEM(out, want, 1);
	CHECK_EQ(out[1], want[1] | ENV_FLAG_SIGNED);
	CHECK_MEM(out + 2, want + 2, ENV_HDR_LEN - 2);

	memset(out, 0xee, sizeof(out));
	h.flags |= ENV_FLAG_SIGNED;
	CHECK_EQ(env_seal(f->key, &h, (const uint8_t *)f->topic, tlen(f->topic), f->props, f->props_len, f->payload,
			  f->payload_len, f->padding, out, n - ENV_SIG_LEN),
		 PX_OK);
	CHECK_EQ(env_source_sign(f->id_a, (const uint8_t *)f->topic, tlen(f->topic), out, n), PX_OK);
	CHECK_MEM(out, f->signed_env, n);

	CHECK_EQ(env_aead_len(f->signed_env, n), n - ENV_SIG_LEN);
	CHECK_EQ(env_parse_header(f->signed_env, n, &h), PX_OK);
	CHECK_EQ(h.flags, ENV_FLAG_RETAIN | ENV_FLAG_SIGNED);
	CHECK_EQ(accept(f, f->pub_a, f->signed_env, n, f->topic), PX_OK);
}

/* Every single-bit flip anywhere is refused: in the header before any cryptography or by the tag,
 * in the ciphertext and tag by the tag, in the signature by the signature. */
static void test_bit_flips(struct fixture *f)
{
	uint8_t buf[BUF] = {0};
	size_t i, n = f->signed_len;
	unsigned b;
	int opened = 0, sig_refused = 0;

	for (i = 0; i < n; i++) {
		for (b = 0; b < 8; b++) {
			enum px_err rc;
			memcpy(buf, f->signed_env, n);
			buf[i] ^= (uint8_t)(1u << b);
			rc = accept(f, f->pub_a, buf, n, f->topic);
			if (rc == PX_OK)
				opened++;
			if (i >= n - ENV_SIG_LEN) {
				CHECK_EQ(rc, PX_ERR_AUTH); /* opens, but the signature fails */
				sig_refused += rc == PX_ERR_AUTH;
			} else if (i >= 2) {
				CHECK_EQ(rc, PX_ERR_AUTH); /* the tag fails */
			}
		}
	}
	CHECK_EQ(opened, 0);
	CHECK_EQ(sig_refused, ENV_SIG_LEN * 8);
	/* A flipped byte the AEAD does not see (the signature) still fails the verification alone;
	 * one it does see fails the signature too, were the tag not checked at all. */
	for (i = 0; i < n - ENV_SIG_LEN; i += 7) {
		memcpy(buf, f->signed_env, n);
		buf[i] ^= 0x40;
		CHECK(env_source_verify(f->pub_a, (const uint8_t *)f->topic, tlen(f->topic), buf, n) != PX_OK);
	}
}

static void test_topic_and_key(struct fixture *f)
{
	char t[160];
	size_t n = tlen(f->topic), i;

	for (i = 0; i < n; i++) {
		memcpy(t, f->topic, n + 1);
		t[i] ^= 0x20;
		CHECK_EQ(env_source_verify(f->pub_a, (const uint8_t *)t, n, f->signed_env, f->signed_len), PX_ERR_AUTH);
		CHECK_EQ(accept(f, f->pub_a, f->signed_env, f->signed_len, t), PX_ERR_AUTH);
	}
	CHECK_EQ(env_source_verify(f->pub_a, (const uint8_t *)f->topic, n - 1, f->signed_env, f->signed_len),
		 PX_ERR_AUTH);
	CHECK_EQ(env_source_verify(f->pub_a, (const uint8_t *)"", 0, f->signed_env, f->signed_len), PX_ERR_AUTH);
	/* Another node's identity key: the AEAD opens (same epoch key), the source is not A. */
	CHECK_EQ(accept(f, f->pub_b, f->signed_env, f->signed_len, f->topic), PX_ERR_AUTH);
}

/* A reader of the group holds A's epoch key and seals a message as A, signed by itself (B):
 * the tag verifies, A's signature does not. */
static void test_forgery_by_reader(struct fixture *f)
{
	uint8_t out[BUF] = {0};
	size_t n = f->signed_len;

	CHECK_EQ(env_seal_signed(f->key, f->id_b, &f->hdr, (const uint8_t *)f->topic, tlen(f->topic), f->props,
				 f->props_len, f->payload, f->payload_len, f->padding, out, n),
		 PX_OK);
	CHECK_EQ(accept(f, f->pub_b, out, n, f->topic), PX_OK);
	CHECK_EQ(accept(f, f->pub_a, out, n, f->topic), PX_ERR_AUTH);
	/* A's signature moved onto B's envelope (same header, same plaintext: the same bytes but for the
	 * signature) is A's: deterministic signatures over the same bytes. So vary the plaintext. */
	f->payload[0] ^= 1;
	CHECK_EQ(env_seal_signed(f->key, f->id_b, &f->hdr, (const uint8_t *)f->topic, tlen(f->topic), f->props,
				 f->props_len, f->payload, f->payload_len, f->padding, out, n),
		 PX_OK);
	f->payload[0] ^= 1;
	memcpy(out + n - ENV_SIG_LEN, f->signed_env + n - ENV_SIG_LEN, ENV_SIG_LEN);
	CHECK_EQ(env_source_verify(f->pub_a, (const uint8_t *)f->topic, tlen(f->topic), out, n), PX_ERR_AUTH);
}

/* The flag is in the AAD: clearing it on a signed envelope, or dropping the signature, or adding
 * the flag to an unsigned one fails the tag; an unsigned envelope never proves a source. */
static void test_flag(struct fixture *f)
{
	uint8_t buf[BUF] = {0}, sealed[BUF] = {0};
	size_t n = f->signed_len, un = n - ENV_SIG_LEN;

	memcpy(buf, f->signed_env, n);
	buf[1] &= (uint8_t)~ENV_FLAG_SIGNED;
	CHECK_EQ(env_aead_len(buf, n), n);
	CHECK_EQ(accept(f, f->pub_a, buf, n, f->topic), PX_ERR_AUTH);	/* the signature taken as ciphertext */
	CHECK_EQ(accept(f, f->pub_a, buf, un, f->topic), PX_ERR_AUTH);	/* signature stripped: the flag is in the AAD */
	CHECK_EQ(env_source_verify(f->pub_a, (const uint8_t *)f->topic, tlen(f->topic), buf, n), PX_ERR_AUTH);

	/* The unsigned §12.5 envelope: opens, proves nothing, with or without 64 bytes appended. */
	CHECK_EQ(golden_hex("data_sealed", sealed, sizeof(sealed)), un);
	CHECK_EQ(env_source_verify(f->pub_a, (const uint8_t *)f->topic, tlen(f->topic), sealed, un), PX_ERR_AUTH);
	memcpy(sealed + un, f->signed_env + un, ENV_SIG_LEN);
	CHECK_EQ(env_source_verify(f->pub_a, (const uint8_t *)f->topic, tlen(f->topic), sealed, n), PX_ERR_AUTH);
	/* ... and with the flag added: the tag fails, and the signature is not over these bytes. */
	sealed[1] |= ENV_FLAG_SIGNED;
	CHECK_EQ(accept(f, f->pub_a, sealed, n, f->topic), PX_ERR_AUTH);

	/* The flag set but the signature never written (zeros): opens, does not verify. */
	memcpy(buf, f->signed_env, n);
	memset(buf + un, 0, ENV_SIG_LEN);
	CHECK_EQ(accept(f, f->pub_a, buf, n, f->topic), PX_ERR_AUTH);
	/* The flag set and nothing after the tag at all: too short here (90 < 114), and a longer one
	 * loses its last 64 bytes to the "signature", so the tag fails. */
	CHECK_EQ(accept(f, f->pub_a, buf, un, f->topic), PX_ERR_MALFORMED);
	CHECK_EQ(env_source_sign(f->id_a, (const uint8_t *)f->topic, tlen(f->topic), sealed, un), PX_ERR_INVAL);
	/* Signing needs the flag already in the sealed header (it is authenticated by the tag). */
	CHECK_EQ(golden_hex("data_sealed", sealed, sizeof(sealed)), un);
	memset(sealed + un, 0, ENV_SIG_LEN);
	CHECK_EQ(env_source_sign(f->id_a, (const uint8_t *)f->topic, tlen(f->topic), sealed, n), PX_ERR_INVAL);
}

static void test_flag_long(struct fixture *f)
{
	uint8_t payload[200] = {0}, env[BUF];
	struct env_header h = f->hdr;
	size_t n = env_sealed_size(0, sizeof(payload), 16);

	h.flags = ENV_FLAG_SIGNED;
	CHECK_EQ(env_seal(f->key, &h, (const uint8_t *)"t", 1, NULL, 0, payload, sizeof(payload), 16, env, n), PX_OK);
	CHECK(n >= ENV_MIN_LEN_SIGNED);
	{
		uint8_t inner[BUF];
		struct env_opened o;
		struct env_header g;
		CHECK_EQ(env_parse_header(env, n, &g), PX_OK);
		CHECK_EQ(env_open(f->key, &g, (const uint8_t *)"t", 1, env, n, inner, &o), PX_ERR_AUTH);
	}
}

static void test_truncation(struct fixture *f)
{
	uint8_t buf[BUF] = {0};
	size_t n;

	for (n = 0; n < f->signed_len; n++) {
		enum px_err rc = accept(f, f->pub_a, f->signed_env, n, f->topic);
		CHECK(rc != PX_OK);
		if (n < ENV_MIN_LEN_SIGNED)
			CHECK_EQ(rc, PX_ERR_MALFORMED);
		else
			CHECK_EQ(rc, PX_ERR_AUTH);
		CHECK(env_source_verify(f->pub_a, (const uint8_t *)f->topic, tlen(f->topic), f->signed_env, n) != PX_OK);
	}
	memcpy(buf, f->signed_env, f->signed_len);
	buf[f->signed_len] = 0;
	CHECK_EQ(accept(f, f->pub_a, buf, f->signed_len + 1, f->topic), PX_ERR_AUTH);
	CHECK_EQ(env_aead_len(buf, ENV_MIN_LEN - 1), 0);
	CHECK_EQ(env_aead_len(buf, ENV_MIN_LEN_SIGNED - 1), 0);
}

static void test_sizes(void)
{
	CHECK_EQ(ENV_SIG_LEN, ID_SIG_LEN);
	CHECK_EQ(ENV_MIN_LEN_SIGNED, 114);
	CHECK_EQ(env_signed_size(0, 0, 1), 114);
	CHECK_EQ(env_signed_size(0, 0, 0), 0);
	CHECK_EQ(ENV_MAX_OVERHEAD_SIGNED(16), ENV_MAX_OVERHEAD(16) + 64);
	CHECK_EQ(ENV_MAX_OVERHEAD(16), 65); /* unsigned figure unchanged */
}

/* ---- keyring_open_source: the source rule on the opening path ---- */
struct writers {
	const char *name;
	const struct id_pub *pub;
};

static const struct id_pub *writer_pub(void *ctx, const char *sender)
{
	const struct writers *w = ctx;

	return strcmp(sender, w->name) == 0 ? w->pub : NULL;
}

/* Seals payload "cmd" on topic cmd/x under f's epoch key (as sender "node-a") at counter c,
 * signed by id (NULL: unsigned). */
static size_t seal_cmd(struct fixture *f, const struct id_key *id, uint64_t c, uint8_t *out)
{
	struct env_header h = {.counter = c};
	size_t n = id ? env_signed_size(0, 3, 16) : env_sealed_size(0, 3, 16);

	memcpy(h.key_id, f->k.key_id, ENV_KEY_ID_LEN);
	if (id)
		CHECK_EQ(env_seal_signed(f->key, id, &h, (const uint8_t *)"cmd/x", 5, NULL, 0,
					 (const uint8_t *)"cmd", 3, 16, out, n),
			 PX_OK);
	else
		CHECK_EQ(env_seal(f->key, &h, (const uint8_t *)"cmd/x", 5, NULL, 0, (const uint8_t *)"cmd", 3, 16, out, n),
			 PX_OK);
	return n;
}

static enum px_err open_src(struct keyring *kr, struct keyring_rx *rx, const struct kr_source *src,
			    const uint8_t *env, size_t n, struct kr_opened *k)
{
	uint8_t inner[BUF];

	return keyring_open_source(kr, rx, 1, (const uint8_t *)"cmd/x", 5, env, n, src, inner, k);
}

static void test_keyring_source(struct fixture *f)
{
	struct keyring_params p = {.self_id = "node-b", .interval_s = 3600, .padding = 16,
				   .replay_bits = REPLAY_BITS_DEFAULT, .max_keys = 8};
	struct writers w = {"node-a", f->pub_a}, none = {"backend", f->pub_a};
	struct kr_source src = {writer_pub, &w}, src_none = {writer_pub, &none};
	uint8_t secret[ANN_SECRET_LEN], env[BUF];
	struct keyring *kr = NULL;
	struct keyring_rx *rx = NULL;
	struct kr_opened k;
	size_t n;

	CHECK_EQ(golden_hex("sender_secret_a", secret, sizeof(secret)), sizeof(secret));
	CHECK_EQ(keyring_new(&p, &kr), PX_OK);
	CHECK_EQ(keyring_rx_new(&rx), PX_OK);
	CHECK_EQ(keyring_recv_install(kr, "node-a", golden_u64("epoch_a"), secret, 3600, 0, 0), PX_OK);

	/* A reader (B) forges counter 5 as A, and a far-ahead counter: refused as not proven, the
	 * sender named, no plaintext, and the window untouched ... */
	n = seal_cmd(f, f->id_b, 5, env);
	CHECK_EQ(open_src(kr, rx, &src, env, n, &k), PX_ERR_SOURCE);
	CHECK(k.sender && strcmp(k.sender, "node-a") == 0);
	CHECK_EQ(k.o.payload_len, 0);
	n = seal_cmd(f, f->id_b, 100000, env);
	CHECK_EQ(open_src(kr, rx, &src, env, n, &k), PX_ERR_SOURCE);
	/* ... so A's own 5 and 6 still open as new. */
	n = seal_cmd(f, f->id_a, 5, env);
	CHECK_EQ(open_src(kr, rx, &src, env, n, &k), PX_OK);
	CHECK_EQ(k.seen, KR_SEEN_NEW);
	CHECK(k.o.payload_len == 3 && memcmp(k.o.payload, "cmd", 3) == 0);
	CHECK(k.sender && strcmp(k.sender, "node-a") == 0);
	CHECK_EQ(open_src(kr, rx, &src, env, n, &k), PX_OK);
	CHECK_EQ(k.seen, KR_SEEN_WINDOW); /* the delivery rule decides on copies */
	n = seal_cmd(f, f->id_a, 6, env);
	CHECK_EQ(open_src(kr, rx, &src, env, n, &k), PX_OK);
	CHECK_EQ(k.seen, KR_SEEN_NEW);
	/* Unsigned, or signed by a node that is not a writer of the topic: not proven. */
	n = seal_cmd(f, NULL, 7, env);
	CHECK_EQ(open_src(kr, rx, &src, env, n, &k), PX_ERR_SOURCE);
	n = seal_cmd(f, f->id_a, 7, env);
	CHECK_EQ(open_src(kr, rx, &src_none, env, n, &k), PX_ERR_SOURCE);
	CHECK_EQ(open_src(kr, rx, &src, env, n, &k), PX_OK);
	/* A bad tag is still an AEAD failure, before any signature. */
	n = seal_cmd(f, f->id_a, 8, env);
	env[n - ENV_SIG_LEN - 1] ^= 1;
	CHECK_EQ(open_src(kr, rx, &src, env, n, &k), PX_ERR_AUTH);
	/* Without a source rule a signed envelope opens like any other. */
	n = seal_cmd(f, f->id_b, 9, env);
	CHECK_EQ(open_src(kr, rx, NULL, env, n, &k), PX_OK);
	{
		uint8_t inner[BUF];
		n = seal_cmd(f, f->id_a, 10, env);
		CHECK_EQ(keyring_open_decide(kr, rx, 1, (const uint8_t *)"cmd/x", 5, env, n, inner, &k), PX_OK);
	}
	keyring_rx_free(rx);
	keyring_free(kr);
}

int main(int argc, char **argv)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (argc < 2 || !f || golden_load(argv[1]) <= 0) {
		free(f);
		return 2;
	}
	load_fixture(f);
	test_golden(f);
	test_bit_flips(f);
	test_topic_and_key(f);
	test_forgery_by_reader(f);
	test_flag(f);
	test_flag_long(f);
	test_truncation(f);
	test_sizes();
	test_keyring_source(f);
	aead_key_free(f->key);
	id_key_free(f->id_a);
	id_key_free(f->id_b);
	id_pub_free(f->pub_a);
	id_pub_free(f->pub_b);
	free(f);
	CHECK_DONE();
}
