/* kdf.c - HKDF-SHA256 (RFC 5869) through OpenSSL 3's EVP_KDF "HKDF" with the EXTRACT_ONLY and
 * EXPAND_ONLY modes, and the labelled expand of PROTOCOL.md §4 (PROTOCOL-REQUIREMENTS R10, R12).
 * Key derivation runs once per epoch or peer, not per message, so the KDF is fetched per call and
 * this file keeps no state. */
#include "kdf.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#define KDF_HASH_LEN 32
#define KDF_MAX_OUT  ((size_t)255 * KDF_HASH_LEN) /* RFC 5869 §2.3: L <= 255*HashLen */

/* One HKDF call: mode, then the optional octet-string parameters (skipped when empty). */
struct kdf_call {
	int mode;
	const uint8_t *key; /* IKM for extract, PRK for expand */
	size_t key_len;
	const uint8_t *salt;
	size_t salt_len;
	const uint8_t *info;
	size_t info_len;
};

static void kdf_params(const struct kdf_call *call, int *mode, OSSL_PARAM params[static 6])
{
	size_t n = 0;

	*mode = call->mode;
	/* "HKDF-SHA256" as a fixed name does not exist in OpenSSL 3.0 (R12): name the digest. */
	params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, mode);
	params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)call->key, call->key_len);
	/* An absent salt is HashLen zero bytes (RFC 5869 §2.2), which HMAC's key padding gives. */
	if (call->salt_len)
		params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)call->salt,
								call->salt_len);
	if (call->info_len)
		params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)call->info,
								call->info_len);
	params[n] = OSSL_PARAM_construct_end();
}

static enum px_err kdf_run(const struct kdf_call *call, uint8_t *out, size_t out_len)
{
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *kctx = NULL;
	OSSL_PARAM params[6];
	int mode;
	enum px_err rc = PX_ERR_CRYPTO;

	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (!kdf)
		goto out;
	kctx = EVP_KDF_CTX_new(kdf);
	if (!kctx)
		goto out;
	kdf_params(call, &mode, params);
	/* The context copies key, salt and info, and erases its copies in EVP_KDF_CTX_free. */
	if (EVP_KDF_derive(kctx, out, out_len, params) != 1)
		goto out;
	rc = PX_OK;
out:
	if (rc != PX_OK)
		OPENSSL_cleanse(out, out_len);
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return rc;
}

enum px_err kdf_extract(const uint8_t *salt, size_t salt_len, const uint8_t *ikm, size_t ikm_len,
			uint8_t prk[static KDF_PRK_LEN])
{
	struct kdf_call call = {
		.mode = EVP_KDF_HKDF_MODE_EXTRACT_ONLY,
		.key = ikm,
		.key_len = ikm_len,
		.salt = salt,
		.salt_len = salt_len,
	};

	if (!ikm || ikm_len == 0 || (!salt && salt_len))
		return PX_ERR_INVAL;
	return kdf_run(&call, prk, KDF_PRK_LEN);
}

enum px_err kdf_expand(const uint8_t prk[static KDF_PRK_LEN], const uint8_t *info, size_t info_len,
		       uint8_t *out, size_t out_len)
{
	struct kdf_call call = {
		.mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY,
		.key = prk,
		.key_len = KDF_PRK_LEN,
		.info = info,
		.info_len = info_len,
	};

	if (!out || out_len == 0 || out_len > KDF_MAX_OUT || (!info && info_len))
		return PX_ERR_INVAL;
	if (info_len > KDF_MAX_INFO)
		return PX_ERR_INVAL;
	return kdf_run(&call, out, out_len);
}

static void kdf_put_u16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Writes u16 out_len || u8 len || "mqseal v1 " label || u16 len || ctx into info (KDF_MAX_INFO
 * bytes) and returns its length, or 0 if it does not fit. The same shape as TLS 1.3's
 * HkdfLabel (RFC 8446 §7.1) with our own prefix, so keys of different purposes and lengths
 * never collide. */
static size_t kdf_label_info(uint8_t info[static KDF_MAX_INFO], const char *label, const uint8_t *ctx,
			     size_t ctx_len, size_t out_len)
{
	size_t plen = strlen(KDF_LABEL_PREFIX), llen = strlen(label), n = 0;

	/* The full label has a one-byte length; the total must fit OpenSSL 3.0's info limit. */
	if (plen + llen > 255 || 2 + 1 + plen + llen + 2 + ctx_len > KDF_MAX_INFO)
		return 0;
	kdf_put_u16(info + n, out_len);
	n += 2;
	info[n++] = (uint8_t)(plen + llen);
	memcpy(info + n, KDF_LABEL_PREFIX, plen);
	n += plen;
	memcpy(info + n, label, llen);
	n += llen;
	kdf_put_u16(info + n, ctx_len);
	n += 2;
	if (ctx_len)
		memcpy(info + n, ctx, ctx_len);
	return n + ctx_len;
}

enum px_err kdf_expand_label(const uint8_t prk[static KDF_PRK_LEN], const char *label, const uint8_t *ctx,
			     size_t ctx_len, uint8_t *out, size_t out_len)
{
	uint8_t info[KDF_MAX_INFO];
	size_t info_len;
	enum px_err rc;

	if (!label || (!ctx && ctx_len) || !out || out_len == 0 || out_len > KDF_MAX_OUT)
		return PX_ERR_INVAL;
	info_len = kdf_label_info(info, label, ctx, ctx_len, out_len);
	if (info_len == 0)
		return PX_ERR_INVAL;
	rc = kdf_expand(prk, info, info_len, out, out_len);
	/* ctx may carry secret-derived bytes (ids, public keys today; who knows tomorrow). */
	OPENSSL_cleanse(info, info_len);
	return rc;
}
