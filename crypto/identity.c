/* identity.c - long-term Ed25519 identity keys (RFC 8032) over OpenSSL 3 EVP: generation, PKCS#8 PEM
 * files, pure (one-shot, no prehash) signing and verification, and the "ed25519:<base64>" text form
 * used in configuration and trust lists (PROTOCOL-REQUIREMENTS R47).
 *
 * Failures that a peer or a file can cause (bad signature, bad PEM, bad text) clear the thread's
 * OpenSSL error queue before returning, so stale entries cannot confuse a later SSL_get_error() on
 * the same thread; PX_ERR_CRYPTO leaves the queue for the caller to report. */
#include "identity.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

/* A PKCS#8 Ed25519 private key is 119 bytes of PEM; 4 KiB leaves room for comments around it and
 * keeps a wrong file (a certificate chain, a log) from being parsed at all. */
#define ID_PEM_MAX 4096
#define ID_B64_LEN 44 /* 4 * ceil(32 / 3): 43 data chars and one '=' */

struct id_key {
	EVP_PKEY *pkey;
};

struct id_pub {
	EVP_PKEY *pkey;
	uint8_t raw[ID_PUB_LEN];
};

static enum px_err id_key_wrap(EVP_PKEY *pkey, struct id_key **out)
{
	struct id_key *key = OPENSSL_zalloc(sizeof(*key));

	if (!key) {
		EVP_PKEY_free(pkey);
		return PX_ERR_NOMEM;
	}
	key->pkey = pkey;
	*out = key;
	return PX_OK;
}

enum px_err id_key_generate(struct id_key **out)
{
	EVP_PKEY *pkey;

	if (!out)
		return PX_ERR_INVAL;
	*out = NULL;
	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!pkey)
		return PX_ERR_CRYPTO;
	return id_key_wrap(pkey, out);
}

enum px_err id_key_from_seed(const uint8_t seed[static ID_SEED_LEN], struct id_key **out)
{
	EVP_PKEY *pkey;

	if (!out)
		return PX_ERR_INVAL;
	*out = NULL;
	/* OpenSSL keeps its own copy of the seed and erases it in EVP_PKEY_free. */
	pkey = EVP_PKEY_new_raw_private_key_ex(NULL, "ED25519", NULL, seed, ID_SEED_LEN);
	if (!pkey)
		return PX_ERR_CRYPTO;
	return id_key_wrap(pkey, out);
}

void id_key_free(struct id_key *key)
{
	if (!key)
		return;
	EVP_PKEY_free(key->pkey);
	OPENSSL_clear_free(key, sizeof(*key));
}

/* Copies the memory BIO's contents into a NUL-terminated malloc'd string, then erases the BIO's
 * buffer so the key text only exists in the caller's copy. */
static enum px_err id_bio_take(BIO *bio, char **out, size_t *out_len)
{
	BUF_MEM *mem = NULL;
	char *text;

	if (BIO_get_mem_ptr(bio, &mem) != 1 || !mem || mem->length == 0)
		return PX_ERR_CRYPTO;
	text = malloc(mem->length + 1);
	if (!text) {
		OPENSSL_cleanse(mem->data, mem->length);
		return PX_ERR_NOMEM;
	}
	memcpy(text, mem->data, mem->length);
	text[mem->length] = '\0';
	*out = text;
	*out_len = mem->length;
	OPENSSL_cleanse(mem->data, mem->length);
	return PX_OK;
}

enum px_err id_key_to_pem(const struct id_key *key, char **out, size_t *out_len)
{
	BIO *bio = NULL;
	enum px_err rc = PX_ERR_CRYPTO;

	if (!key || !out || !out_len)
		return PX_ERR_INVAL;
	*out = NULL;
	*out_len = 0;
	bio = BIO_new(BIO_s_mem());
	if (!bio)
		goto out;
	/* No cipher and no passphrase: PKCS#8 "PRIVATE KEY", as `openssl genpkey` writes it. */
	if (PEM_write_bio_PrivateKey(bio, key->pkey, NULL, NULL, 0, NULL, NULL) != 1)
		goto out;
	rc = id_bio_take(bio, out, out_len);
out:
	BIO_free(bio);
	return rc;
}

/* Passphrase callback that refuses: an encrypted key file fails instead of prompting on a tty. */
static int id_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

enum px_err id_key_from_pem(const char *pem, size_t len, struct id_key **out)
{
	BIO *bio = NULL;
	EVP_PKEY *pkey = NULL;
	enum px_err rc = PX_ERR_MALFORMED;

	if (!pem || !out)
		return PX_ERR_INVAL;
	*out = NULL;
	if (len > ID_PEM_MAX)
		return PX_ERR_TOO_LARGE;
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio) {
		rc = PX_ERR_NOMEM;
		goto out;
	}
	pkey = PEM_read_bio_PrivateKey(bio, NULL, id_no_passphrase, NULL);
	if (!pkey || !EVP_PKEY_is_a(pkey, "ED25519"))
		goto out;
	rc = id_key_wrap(pkey, out);
	pkey = NULL;
out:
	if (rc == PX_ERR_MALFORMED)
		ERR_clear_error();
	EVP_PKEY_free(pkey);
	BIO_free(bio);
	return rc;
}

enum px_err id_key_public(const struct id_key *key, uint8_t pub[static ID_PUB_LEN])
{
	size_t len = ID_PUB_LEN;

	if (!key)
		return PX_ERR_INVAL;
	if (EVP_PKEY_get_raw_public_key(key->pkey, pub, &len) != 1 || len != ID_PUB_LEN)
		return PX_ERR_CRYPTO;
	return PX_OK;
}

/* EVP_DigestSign/Verify want a non-NULL pointer even for an empty message (RFC 8032 TEST 1). */
static const uint8_t id_empty_msg[1];

enum px_err id_key_sign(const struct id_key *key, const uint8_t *msg, size_t len,
			uint8_t sig[static ID_SIG_LEN])
{
	EVP_MD_CTX *mctx = NULL;
	size_t sig_len = ID_SIG_LEN;
	enum px_err rc = PX_ERR_CRYPTO;

	if (!key || (!msg && len))
		return PX_ERR_INVAL;
	if (!msg)
		msg = id_empty_msg;
	mctx = EVP_MD_CTX_new();
	if (!mctx)
		return PX_ERR_NOMEM;
	/* NULL digest: pure Ed25519 (RFC 8032 §5.1.6), not Ed25519ph. */
	if (EVP_DigestSignInit_ex(mctx, NULL, NULL, NULL, NULL, key->pkey, NULL) != 1)
		goto out;
	if (EVP_DigestSign(mctx, sig, &sig_len, msg, len) != 1 || sig_len != ID_SIG_LEN)
		goto out;
	rc = PX_OK;
out:
	if (rc != PX_OK)
		OPENSSL_cleanse(sig, ID_SIG_LEN);
	EVP_MD_CTX_free(mctx);
	return rc;
}

enum px_err id_pub_new(const uint8_t raw[static ID_PUB_LEN], struct id_pub **out)
{
	struct id_pub *pub;

	if (!out)
		return PX_ERR_INVAL;
	*out = NULL;
	pub = OPENSSL_zalloc(sizeof(*pub));
	if (!pub)
		return PX_ERR_NOMEM;
	pub->pkey = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, raw, ID_PUB_LEN);
	if (!pub->pkey) {
		OPENSSL_free(pub);
		return PX_ERR_CRYPTO;
	}
	memcpy(pub->raw, raw, ID_PUB_LEN);
	*out = pub;
	return PX_OK;
}

void id_pub_free(struct id_pub *pub)
{
	if (!pub)
		return;
	EVP_PKEY_free(pub->pkey);
	OPENSSL_free(pub);
}

const uint8_t *id_pub_raw(const struct id_pub *pub)
{
	return pub ? pub->raw : NULL;
}

enum px_err id_pub_verify(const struct id_pub *pub, const uint8_t *msg, size_t len,
			  const uint8_t sig[static ID_SIG_LEN])
{
	EVP_MD_CTX *mctx = NULL;
	enum px_err rc = PX_ERR_CRYPTO;

	if (!pub || (!msg && len))
		return PX_ERR_INVAL;
	if (!msg)
		msg = id_empty_msg;
	mctx = EVP_MD_CTX_new();
	if (!mctx)
		return PX_ERR_NOMEM;
	if (EVP_DigestVerifyInit_ex(mctx, NULL, NULL, NULL, NULL, pub->pkey, NULL) != 1)
		goto out;
	/* 1 is a valid signature; 0 a wrong one; < 0 a malformed one (e.g. S >= L, RFC 8032
	 * §5.1.7 step 1). All of them are the peer's fault: one answer, PX_ERR_AUTH. */
	if (EVP_DigestVerify(mctx, sig, ID_SIG_LEN, msg, len) == 1) {
		rc = PX_OK;
	} else {
		rc = PX_ERR_AUTH;
		ERR_clear_error();
	}
out:
	EVP_MD_CTX_free(mctx);
	return rc;
}

void id_pub_encode(const uint8_t raw[static ID_PUB_LEN], char out[static ID_PUB_TEXT_LEN + 1])
{
	size_t plen = strlen(ID_PUB_TEXT_PREFIX);

	memcpy(out, ID_PUB_TEXT_PREFIX, plen);
	/* Writes exactly ID_B64_LEN characters and a NUL (EVP_EncodeBlock(3)). */
	EVP_EncodeBlock((unsigned char *)out + plen, raw, ID_PUB_LEN);
}

/* The value of a standard base64 character (RFC 4648 §4, Table 1), or -1. */
static int id_b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	return c == '/' ? 63 : -1;
}

/* Accepts only the canonical encoding of 32 bytes: 43 alphabet characters, one '=', and zero in the
 * two unused low bits of the last character (RFC 4648 §3.5), so each key has exactly one text form
 * and text forms can be compared as strings. */
static int id_b64_canonical(const char *b64)
{
	size_t i;

	for (i = 0; i < ID_B64_LEN - 1; i++)
		if (id_b64_value(b64[i]) < 0)
			return 0;
	if (b64[ID_B64_LEN - 1] != '=' || b64[ID_B64_LEN] != '\0')
		return 0;
	return (id_b64_value(b64[ID_B64_LEN - 2]) & 3) == 0;
}

enum px_err id_pub_decode(const char *text, uint8_t raw[static ID_PUB_LEN])
{
	size_t plen = strlen(ID_PUB_TEXT_PREFIX);
	/* EVP_DecodeBlock decodes whole quads and returns the '=' padding as zero bytes: 33 here. */
	uint8_t buf[ID_B64_LEN / 4 * 3];
	const char *b64;

	if (!text)
		return PX_ERR_INVAL;
	if (strncmp(text, ID_PUB_TEXT_PREFIX, plen) != 0)
		return PX_ERR_MALFORMED;
	b64 = text + plen;
	if (strnlen(b64, ID_B64_LEN + 1) != ID_B64_LEN || !id_b64_canonical(b64))
		return PX_ERR_MALFORMED;
	if (EVP_DecodeBlock(buf, (const unsigned char *)b64, ID_B64_LEN) != (int)sizeof(buf) ||
	    buf[ID_PUB_LEN] != 0) {
		ERR_clear_error();
		return PX_ERR_MALFORMED;
	}
	memcpy(raw, buf, ID_PUB_LEN);
	return PX_OK;
}
