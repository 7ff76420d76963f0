/* kex.c - ephemeral X25519 key agreement (RFC 7748) over OpenSSL 3 EVP, with the all-zero
 * (small-order peer point) check of RFC 7748 §6.1 made explicit (PROTOCOL-REQUIREMENTS R8). */
#include "kex.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

struct kex_key {
	EVP_PKEY *pkey;
};

static enum px_err kex_key_wrap(EVP_PKEY *pkey, struct kex_key **out)
{
	struct kex_key *key = OPENSSL_zalloc(sizeof(*key));

	if (!key) {
		EVP_PKEY_free(pkey);
		return PX_ERR_NOMEM;
	}
	key->pkey = pkey;
	*out = key;
	return PX_OK;
}

enum px_err kex_key_generate(struct kex_key **out)
{
	EVP_PKEY *pkey;

	if (!out)
		return PX_ERR_INVAL;
	*out = NULL;
	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	if (!pkey)
		return PX_ERR_CRYPTO;
	return kex_key_wrap(pkey, out);
}

enum px_err kex_key_from_private(const uint8_t priv[static KEX_PRIV_LEN], struct kex_key **out)
{
	EVP_PKEY *pkey;

	if (!out)
		return PX_ERR_INVAL;
	*out = NULL;
	/* OpenSSL copies the scalar (clamping happens inside X25519, RFC 7748 §5) and erases its copy
	 * in EVP_PKEY_free. */
	pkey = EVP_PKEY_new_raw_private_key_ex(NULL, "X25519", NULL, priv, KEX_PRIV_LEN);
	if (!pkey)
		return PX_ERR_CRYPTO;
	return kex_key_wrap(pkey, out);
}

void kex_key_free(struct kex_key *key)
{
	if (!key)
		return;
	EVP_PKEY_free(key->pkey);
	OPENSSL_clear_free(key, sizeof(*key));
}

enum px_err kex_key_public(const struct kex_key *key, uint8_t pub[static KEX_PUB_LEN])
{
	size_t len = KEX_PUB_LEN;

	if (!key)
		return PX_ERR_INVAL;
	if (EVP_PKEY_get_raw_public_key(key->pkey, pub, &len) != 1 || len != KEX_PUB_LEN)
		return PX_ERR_CRYPTO;
	return PX_OK;
}

/* 1 if all n bytes are zero. Runs over every byte whatever the data (no early exit), since
 * the shared secret must not leak through timing (RFC 7748 §6.1: "check ... in constant time"). */
static int kex_all_zero(const uint8_t *b, size_t n)
{
	unsigned acc = 0;
	size_t i;

	for (i = 0; i < n; i++)
		acc |= b[i];
	/* (acc - 1) has bit 8 set only when acc == 0 (acc <= 0xff). */
	return (int)(((acc - 1u) >> 8) & 1u);
}

/* Runs EVP_PKEY_derive on a ready context. Every setup step failing is PX_ERR_CRYPTO; the derive
 * itself, given a valid key, a valid peer key and a 32-byte buffer, fails in OpenSSL 3.0 only
 * because the result is all-zero (providers/implementations/exchange/ecx_exch.c), so that is
 * PX_ERR_WEAK_KEY. The explicit check below keeps this true if a later OpenSSL stops failing. */
static enum px_err kex_run(EVP_PKEY_CTX *ctx, uint8_t shared[static KEX_SHARED_LEN])
{
	size_t len = KEX_SHARED_LEN;

	if (EVP_PKEY_derive(ctx, shared, &len) != 1) {
		ERR_clear_error();
		return PX_ERR_WEAK_KEY;
	}
	if (len != KEX_SHARED_LEN)
		return PX_ERR_CRYPTO;
	if (kex_all_zero(shared, KEX_SHARED_LEN))
		return PX_ERR_WEAK_KEY;
	return PX_OK;
}

enum px_err kex_derive(const struct kex_key *key, const uint8_t peer_pub[static KEX_PUB_LEN],
		       uint8_t shared[static KEX_SHARED_LEN])
{
	EVP_PKEY *peer = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	enum px_err rc = PX_ERR_CRYPTO;

	memset(shared, 0, KEX_SHARED_LEN);
	if (!key)
		return PX_ERR_INVAL;
	peer = EVP_PKEY_new_raw_public_key_ex(NULL, "X25519", NULL, peer_pub, KEX_PUB_LEN);
	if (!peer)
		goto out;
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
	if (!ctx)
		goto out;
	if (EVP_PKEY_derive_init(ctx) != 1 || EVP_PKEY_derive_set_peer(ctx, peer) != 1)
		goto out;
	rc = kex_run(ctx, shared);
out:
	if (rc != PX_OK)
		OPENSSL_cleanse(shared, KEX_SHARED_LEN);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(peer);
	return rc;
}
