/* test_identity.c - Ed25519 identity keys (crypto/identity.c): RFC 8032 §7.1 TEST 1, 2, 3, 1024 and
 * SHA(abc) (tests/vectors/ed25519.txt) signed and verified, a flipped bit in the signature or the
 * message refused; PKCS#8 PEM written byte-for-byte as `openssl pkey` writes it, read back, and
 * keys of other types, encrypted keys and junk refused; the "ed25519:" text form round-tripped and
 * its malformed variants refused. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "check.h"
#include "identity.h"
#include "../vectors/vecfile.h"

#define MSG_MAX 2048

/* RFC 8032 TEST 1 seed and public key, for the PEM and text-form tests. */
static const uint8_t t1_seed[32] = {0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a,
				    0xf4, 0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32,
				    0x69, 0x19, 0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60};
static const uint8_t t1_pub[32] = {0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe,
				   0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6,
				   0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a};

/* The TEST 1 seed as PKCS#8 (RFC 8410 §7: 302e020100300506032b657004220420 || seed), as written by
 * `openssl pkey` (OpenSSL 3.0). */
static const char t1_pem[] = "-----BEGIN PRIVATE KEY-----\n"
			     "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
			     "-----END PRIVATE KEY-----\n";
/* base64 of t1_pub (RFC 4648 §4). */
static const char t1_text[] = "ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

/* Signs with the seed, compares with the RFC signature, verifies it, and checks that flipping one
 * bit of the signature (each byte, a different bit) or of the message makes it fail. */
static void check_sig(const uint8_t *seed, const uint8_t *pub, const uint8_t *msg, size_t len,
		      const uint8_t *want)
{
	struct id_key *key = NULL;
	struct id_pub *vp = NULL;
	uint8_t got[ID_SIG_LEN], bad[ID_SIG_LEN], raw[ID_PUB_LEN], *m2 = NULL;
	size_t i;

	CHECK_EQ(id_key_from_seed(seed, &key), PX_OK);
	CHECK_EQ(id_pub_new(pub, &vp), PX_OK);
	if (!key || !vp)
		goto out;
	CHECK_EQ(id_key_public(key, raw), PX_OK);
	CHECK_MEM(raw, pub, ID_PUB_LEN);
	CHECK_MEM(id_pub_raw(vp), pub, ID_PUB_LEN);
	CHECK_EQ(id_key_sign(key, len ? msg : NULL, len, got), PX_OK);
	CHECK_MEM(got, want, ID_SIG_LEN);
	CHECK_EQ(id_pub_verify(vp, len ? msg : NULL, len, want), PX_OK);
	for (i = 0; i < ID_SIG_LEN; i++) {
		memcpy(bad, want, ID_SIG_LEN);
		bad[i] ^= (uint8_t)(1u << (i % 8));
		CHECK_EQ(id_pub_verify(vp, msg, len, bad), PX_ERR_AUTH);
	}
	if (len) {
		m2 = malloc(len);
		if (m2) {
			memcpy(m2, msg, len);
			m2[len / 2] ^= 0x10;
			CHECK_EQ(id_pub_verify(vp, m2, len, want), PX_ERR_AUTH);
		}
	} else {
		/* The empty message's signature does not verify a one-byte message. */
		CHECK_EQ(id_pub_verify(vp, (const uint8_t *)"", 1, want), PX_ERR_AUTH);
	}
out:
	free(m2);
	id_pub_free(vp);
	id_key_free(key);
}

static int t_rfc8032(const struct vec_rec *r, void *arg)
{
	uint8_t seed[32], pub[32], sig[64], *msg = malloc(MSG_MAX);
	long len;

	(*(int *)arg)++;
	CHECK_EQ(vec_hex(r, "Seed", seed, 32), 32);
	CHECK_EQ(vec_hex(r, "Pub", pub, 32), 32);
	CHECK_EQ(vec_hex(r, "Sig", sig, 64), 64);
	len = msg ? vec_hex(r, "Msg", msg, MSG_MAX) : -1;
	CHECK(len >= 0);
	if (len >= 0)
		check_sig(seed, pub, msg, (size_t)len, sig);
	free(msg);
	return 0;
}

/* Generated keys sign and verify; two keys differ; a signature does not verify under another key. */
static void t_generate(void)
{
	static const uint8_t msg[] = "key announcement";
	struct id_key *a = NULL, *b = NULL;
	struct id_pub *pa = NULL, *pb = NULL;
	uint8_t ra[32], rb[32], sig[64];

	CHECK_EQ(id_key_generate(&a), PX_OK);
	CHECK_EQ(id_key_generate(&b), PX_OK);
	if (!a || !b)
		goto out;
	CHECK_EQ(id_key_public(a, ra), PX_OK);
	CHECK_EQ(id_key_public(b, rb), PX_OK);
	CHECK(memcmp(ra, rb, 32) != 0);
	CHECK_EQ(id_pub_new(ra, &pa), PX_OK);
	CHECK_EQ(id_pub_new(rb, &pb), PX_OK);
	CHECK_EQ(id_key_sign(a, msg, sizeof(msg), sig), PX_OK);
	CHECK_EQ(id_pub_verify(pa, msg, sizeof(msg), sig), PX_OK);
	CHECK_EQ(id_pub_verify(pb, msg, sizeof(msg), sig), PX_ERR_AUTH);
out:
	id_pub_free(pa);
	id_pub_free(pb);
	id_key_free(a);
	id_key_free(b);
}

/* Writing TEST 1's key gives exactly the PEM `openssl pkey` writes; reading it back gives the same
 * public key; a generated key survives the round trip. */
static void t_pem_roundtrip(void)
{
	struct id_key *key = NULL, *back = NULL, *gen = NULL, *gen2 = NULL;
	uint8_t raw[32], raw2[32];
	char *pem = NULL;
	size_t len = 0;

	CHECK_EQ(id_key_from_seed(t1_seed, &key), PX_OK);
	CHECK_EQ(id_key_to_pem(key, &pem, &len), PX_OK);
	CHECK(pem && len == strlen(t1_pem) && strcmp(pem, t1_pem) == 0);
	if (pem) {
		OPENSSL_cleanse(pem, len);
		free(pem);
		pem = NULL;
	}
	CHECK_EQ(id_key_from_pem(t1_pem, strlen(t1_pem), &back), PX_OK);
	if (back) {
		CHECK_EQ(id_key_public(back, raw), PX_OK);
		CHECK_MEM(raw, t1_pub, 32);
	}
	CHECK_EQ(id_key_generate(&gen), PX_OK);
	CHECK_EQ(id_key_to_pem(gen, &pem, &len), PX_OK);
	CHECK_EQ(id_key_from_pem(pem ? pem : "", pem ? len : 0, &gen2), PX_OK);
	if (gen && gen2) {
		CHECK_EQ(id_key_public(gen, raw), PX_OK);
		CHECK_EQ(id_key_public(gen2, raw2), PX_OK);
		CHECK_MEM(raw, raw2, 32);
	}
	if (pem)
		OPENSSL_cleanse(pem, len);
	free(pem);
	id_key_free(key);
	id_key_free(back);
	id_key_free(gen);
	id_key_free(gen2);
}

/* Files that are not an unencrypted Ed25519 private key are refused, and *out stays NULL. */
static void t_pem_reject(void)
{
	/* RFC 7748 §6.1 Alice's X25519 key as PKCS#8 (OID 1.3.101.110). */
	static const char x25519_pem[] = "-----BEGIN PRIVATE KEY-----\n"
					 "MC4CAQAwBQYDK2VuBCIEIHcHbQpzGKV9PBbBclGyZkXfTC+H68CZKrF3+6UduSwq\n"
					 "-----END PRIVATE KEY-----\n";
	/* A P-256 key made with `openssl genpkey -algorithm EC` for this test. */
	static const char p256_pem[] = "-----BEGIN PRIVATE KEY-----\n"
				       "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgj8iYo0w/VbGT3vex\n"
				       "yOmdy4aAwG5z2y8jXYg0oSFXA0yhRANCAAT1czqnh57fmifw7r9tVj4EzVyRne94\n"
				       "aMTsBuMuf932m9nlU7feDsrpqws1M9lvTcs4roRBTKQfK8yUfMWSlU24\n"
				       "-----END PRIVATE KEY-----\n";
	/* TEST 1's key, PKCS#8-encrypted with passphrase "secret" (`openssl pkcs8 -topk8`). */
	static const char enc_pem[] = "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
				      "MIGbMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAikevwOmvgdagICCAAw\n"
				      "DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEOSrcGr1Lz6szOD/UzEfUfEEQE3T\n"
				      "KI8LWGI5DfXi2ib422hUXOK6K8UZLVixO23v0vt+0JCz8Oey/9JBbLjL2p+lnrb3\n"
				      "R0ZlAQEQtH6Xv/V4Bbs=\n"
				      "-----END ENCRYPTED PRIVATE KEY-----\n";
	static const char junk[] = "not a key at all\n";
	struct id_key *key = (struct id_key *)&key; /* any non-NULL value: must be reset */
	char big[5000];

	CHECK_EQ(id_key_from_pem(x25519_pem, strlen(x25519_pem), &key), PX_ERR_MALFORMED);
	CHECK(key == NULL);
	CHECK_EQ(id_key_from_pem(p256_pem, strlen(p256_pem), &key), PX_ERR_MALFORMED);
	CHECK_EQ(id_key_from_pem(enc_pem, strlen(enc_pem), &key), PX_ERR_MALFORMED);
	CHECK_EQ(id_key_from_pem(junk, strlen(junk), &key), PX_ERR_MALFORMED);
	CHECK_EQ(id_key_from_pem("", 0, &key), PX_ERR_MALFORMED);
	/* Cut off before the END line, and cut inside the base64. */
	CHECK_EQ(id_key_from_pem(t1_pem, strlen(t1_pem) - 26, &key), PX_ERR_MALFORMED);
	CHECK_EQ(id_key_from_pem(t1_pem, 40, &key), PX_ERR_MALFORMED);
	CHECK(key == NULL);
	/* A valid key followed by enough padding to pass the size cap is refused unread. */
	memset(big, '\n', sizeof(big));
	memcpy(big, t1_pem, strlen(t1_pem));
	CHECK_EQ(id_key_from_pem(big, sizeof(big), &key), PX_ERR_TOO_LARGE);
	CHECK_EQ(id_key_from_pem(NULL, 0, &key), PX_ERR_INVAL);
	CHECK_EQ(id_key_from_pem(t1_pem, strlen(t1_pem), NULL), PX_ERR_INVAL);
}

static void t_text(void)
{
	char text[ID_PUB_TEXT_LEN + 1], bad[80];
	uint8_t raw[32], gen[32];
	size_t i;

	id_pub_encode(t1_pub, text);
	CHECK(strcmp(text, t1_text) == 0);
	CHECK_EQ(strlen(text), ID_PUB_TEXT_LEN);
	CHECK_EQ(id_pub_decode(t1_text, raw), PX_OK);
	CHECK_MEM(raw, t1_pub, 32);
	/* Every byte value survives, in every position. */
	for (i = 0; i < 32; i++)
		gen[i] = (uint8_t)(0xff - 7 * i);
	id_pub_encode(gen, text);
	CHECK_EQ(id_pub_decode(text, raw), PX_OK);
	CHECK_MEM(raw, gen, 32);

	CHECK_EQ(id_pub_decode("", raw), PX_ERR_MALFORMED);
	CHECK_EQ(id_pub_decode(t1_text + 8, raw), PX_ERR_MALFORMED); /* no prefix */
	CHECK_EQ(id_pub_decode("Ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", raw),
		 PX_ERR_MALFORMED);
	CHECK_EQ(id_pub_decode("x25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", raw), PX_ERR_MALFORMED);
	/* Wrong lengths: one char short (no padding), one too many, 31 and 33 bytes. */
	CHECK_EQ(id_pub_decode("ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo", raw), PX_ERR_MALFORMED);
	CHECK_EQ(id_pub_decode("ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo==", raw),
		 PX_ERR_MALFORMED);
	CHECK_EQ(id_pub_decode("ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHUQ==", raw),
		 PX_ERR_MALFORMED);
	CHECK_EQ(id_pub_decode("ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURoA", raw),
		 PX_ERR_MALFORMED);
	/* Whitespace is not trimmed (the header says so). */
	CHECK_EQ(id_pub_decode("ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n", raw),
		 PX_ERR_MALFORMED);
	CHECK_EQ(id_pub_decode(" ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", raw),
		 PX_ERR_MALFORMED);
	/* Non-base64 characters anywhere, URL-safe alphabet, padding in the middle. */
	for (i = 8; i < ID_PUB_TEXT_LEN - 1; i++) {
		strcpy(bad, t1_text);
		bad[i] = (i % 3 == 0) ? '-' : (i % 3 == 1) ? '=' : '*';
		CHECK_EQ(id_pub_decode(bad, raw), PX_ERR_MALFORMED);
	}
	/* Non-canonical: the last data char 'o' (40 = 0b101000) with a low padding bit set -> 'p'. */
	CHECK_EQ(id_pub_decode("ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURp=", raw),
		 PX_ERR_MALFORMED);
	CHECK_EQ(id_pub_decode(NULL, raw), PX_ERR_INVAL);
}

static void t_bad_args(void)
{
	struct id_key *key = NULL;
	struct id_pub *pub = NULL;
	uint8_t buf[64] = {0};
	char *pem = NULL;
	size_t len;

	CHECK_EQ(id_key_generate(NULL), PX_ERR_INVAL);
	CHECK_EQ(id_key_from_seed(t1_seed, NULL), PX_ERR_INVAL);
	CHECK_EQ(id_key_to_pem(NULL, &pem, &len), PX_ERR_INVAL);
	CHECK_EQ(id_key_public(NULL, buf), PX_ERR_INVAL);
	CHECK_EQ(id_key_sign(NULL, buf, 1, buf), PX_ERR_INVAL);
	CHECK_EQ(id_pub_new(t1_pub, NULL), PX_ERR_INVAL);
	CHECK_EQ(id_pub_verify(NULL, buf, 1, buf), PX_ERR_INVAL);
	CHECK(id_pub_raw(NULL) == NULL);
	CHECK_EQ(id_key_from_seed(t1_seed, &key), PX_OK);
	CHECK_EQ(id_key_sign(key, NULL, 5, buf), PX_ERR_INVAL);
	CHECK_EQ(id_pub_new(t1_pub, &pub), PX_OK);
	CHECK_EQ(id_pub_verify(pub, NULL, 5, buf), PX_ERR_INVAL);
	id_pub_free(pub);
	id_key_free(key);
	id_pub_free(NULL);
	id_key_free(NULL);
}

int main(int argc, char **argv)
{
	int n = 0;

	CHECK(argc > 1);
	if (argc < 2)
		CHECK_DONE();
	CHECK_EQ(vec_each(argv[1], "ed25519.txt", t_rfc8032, &n), 5);
	CHECK_EQ(n, 5);
	t_generate();
	t_pem_roundtrip();
	t_pem_reject();
	t_text();
	t_bad_args();
	CHECK_DONE();
}
