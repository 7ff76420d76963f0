/* aead.c - AES-256-GCM sealing and opening over OpenSSL 3 EVP (PROTOCOL-REQUIREMENTS R19, R25,
 * R46). The per-message path is hot: one EVP_CIPHER_CTX per key and direction is keyed once in
 * aead_key_new, and each message only installs its nonce (EVP_EncryptInit_ex2 with NULL cipher
 * and key keeps the key schedule), streams the pieces through Update and reads or sets the full
 * 16-byte tag. Nothing on that path allocates. Contexts are not thread-safe; mqseal's event loop
 * is single-threaded. */
#include "aead.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

struct aead_key {
	EVP_CIPHER *cipher;
	EVP_CIPHER_CTX *enc;
	EVP_CIPHER_CTX *dec;
	uint8_t iv[AEAD_IV_LEN];
};

static enum px_err aead_key_init(struct aead_key *k, const uint8_t key[static AEAD_KEY_LEN])
{
	k->cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	if (!k->cipher)
		return PX_ERR_CRYPTO;
	k->enc = EVP_CIPHER_CTX_new();
	k->dec = EVP_CIPHER_CTX_new();
	if (!k->enc || !k->dec)
		return PX_ERR_NOMEM;
	/* Key only; the default GCM IV length is the 96 bits we use (SP 800-38D §5.2.1.1). */
	if (EVP_EncryptInit_ex2(k->enc, k->cipher, key, NULL, NULL) != 1 ||
	    EVP_DecryptInit_ex2(k->dec, k->cipher, key, NULL, NULL) != 1)
		return PX_ERR_CRYPTO;
	if (EVP_CIPHER_CTX_get_iv_length(k->enc) != AEAD_IV_LEN ||
	    EVP_CIPHER_CTX_get_key_length(k->enc) != AEAD_KEY_LEN)
		return PX_ERR_CRYPTO;
	return PX_OK;
}

enum px_err aead_key_new(const uint8_t key[static AEAD_KEY_LEN], const uint8_t iv[static AEAD_IV_LEN],
			 struct aead_key **out)
{
	struct aead_key *k;
	enum px_err rc;

	if (!out)
		return PX_ERR_INVAL;
	*out = NULL;
	k = OPENSSL_zalloc(sizeof(*k));
	if (!k)
		return PX_ERR_NOMEM;
	rc = aead_key_init(k, key);
	if (rc != PX_OK) {
		aead_key_free(k);
		return rc;
	}
	memcpy(k->iv, iv, AEAD_IV_LEN);
	*out = k;
	return PX_OK;
}

void aead_key_free(struct aead_key *key)
{
	if (!key)
		return;
	/* The GCM provider context holds the key schedule and erases it when freed. */
	EVP_CIPHER_CTX_free(key->enc);
	EVP_CIPHER_CTX_free(key->dec);
	EVP_CIPHER_free(key->cipher);
	OPENSSL_clear_free(key, sizeof(*key));
}

/* nonce = iv XOR (0^32 || counter as 8 bytes big-endian): RFC 8446 §5.3, PROTOCOL.md §5 (R25). */
static void aead_nonce(const struct aead_key *key, uint64_t counter, uint8_t nonce[static AEAD_IV_LEN])
{
	size_t i;

	memcpy(nonce, key->iv, AEAD_IV_LEN);
	for (i = 0; i < 8; i++)
		nonce[AEAD_IV_LEN - 1 - i] ^= (uint8_t)(counter >> (8 * i));
}

/* EVP takes int lengths; longer inputs go through in chunks of this size (GCM is a stream mode, so
 * how the input is cut does not change the result). */
#define AEAD_CHUNK (1 << 30)

/* Checks a list of pieces: a NULL list only when empty, no NULL data with a length, and a total
 * that fits size_t. Sums the lengths into *total. */
static enum px_err aead_parts_ok(const struct aead_part *parts, size_t n, size_t *total)
{
	size_t i, sum = 0;

	if (!parts && n)
		return PX_ERR_INVAL;
	for (i = 0; i < n; i++) {
		if (!parts[i].data && parts[i].len)
			return PX_ERR_INVAL;
		if (parts[i].len > SIZE_MAX - sum)
			return PX_ERR_TOO_LARGE;
		sum += parts[i].len;
	}
	*total = sum;
	return PX_OK;
}

/* One Update over len bytes, chunked. out == NULL feeds AAD (authenticated, not encrypted);
 * otherwise exactly len bytes are written to out. */
static int aead_update(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in, size_t len)
{
	int n, outl;

	while (len) {
		n = len > AEAD_CHUNK ? AEAD_CHUNK : (int)len;
		if (EVP_CipherUpdate(ctx, out, &outl, in, n) != 1 || (out && outl != n))
			return 0;
		if (out)
			out += n;
		in += n;
		len -= (size_t)n;
	}
	return 1;
}

/* Each EVP_CipherUpdate call costs about 400 instructions on OpenSSL 3.0 whatever its length
 * (dispatch into the provider, GCM's partial-block bookkeeping; measured with callgrind, see
 * bench/results/crypto.md): more than AES-GCM itself spends on a 64-byte message, and the envelope
 * hands over 4 AAD and up to 5 plaintext pieces. So consecutive pieces that fit AEAD_GATHER bytes
 * together are copied into a stack buffer and go through in one call (a sealed 64-byte envelope:
 * 2 calls instead of 8, a third fewer instructions). A piece is copied only when a neighbour joins
 * it: a lone piece, and any longer one, goes straight through, so a large payload is never copied.
 * 512 bytes: copying that much costs less than the call it saves. */
#define AEAD_GATHER 512

struct aead_feed {
	EVP_CIPHER_CTX *ctx;
	uint8_t *out;	    /* where the next output byte goes; NULL while feeding AAD */
	const uint8_t *run; /* the bytes waiting: one caller's piece, or buf */
	size_t used;	    /* how many */
	size_t dirty;	    /* how much of buf was ever written: erased at the end, it held plaintext */
	uint8_t buf[AEAD_GATHER];
};

static int aead_feed_flush(struct aead_feed *f)
{
	int ok = aead_update(f->ctx, f->out, f->run, f->used);

	if (f->out)
		f->out += f->used;
	f->used = 0;
	return ok;
}

/* Queues a piece after the waiting bytes, joining them in buf when both fit, or else sends the
 * waiting bytes first. Output stays in order. */
static int aead_feed_put(struct aead_feed *f, const uint8_t *in, size_t len)
{
	if (len == 0)
		return 1;
	/* The waiting bytes may be one caller's piece longer than buf. */
	if (f->used && f->used < sizeof(f->buf) && len <= sizeof(f->buf) - f->used) {
		if (f->run != f->buf)
			memmove(f->buf, f->run, f->used);
		memcpy(f->buf + f->used, in, len);
		f->run = f->buf;
		f->used += len;
		if (f->used > f->dirty)
			f->dirty = f->used;
		return 1;
	}
	if (f->used && !aead_feed_flush(f))
		return 0;
	f->run = in;
	f->used = len;
	return 1;
}

static int aead_feed_aad(struct aead_feed *f, const struct aead_part *aad, size_t naad)
{
	size_t i;

	f->out = NULL;
	for (i = 0; i < naad; i++)
		if (!aead_feed_put(f, aad[i].data, aad[i].len))
			return 0;
	return aead_feed_flush(f);
}

/* Encrypts the pieces into ct, one after the other (long pieces are not copied together). */
static int aead_feed_pt(struct aead_feed *f, const struct aead_part *pt, size_t npt, uint8_t *ct)
{
	uint8_t fin[16]; /* GCM's Final writes nothing; EVP wants a buffer anyway */
	size_t i;
	int outl;

	f->out = ct;
	for (i = 0; i < npt; i++)
		if (!aead_feed_put(f, pt[i].data, pt[i].len))
			return 0;
	return aead_feed_flush(f) && EVP_EncryptFinal_ex(f->ctx, fin, &outl) == 1 && outl == 0;
}

enum px_err aead_seal(struct aead_key *key, uint64_t counter, const struct aead_part *aad, size_t naad,
		      const struct aead_part *pt, size_t npt, uint8_t *ct, uint8_t tag[static AEAD_TAG_LEN])
{
	struct aead_feed f;
	uint8_t nonce[AEAD_IV_LEN];
	size_t aad_len, total;
	enum px_err rc;
	int ok;

	if (!key)
		return PX_ERR_INVAL;
	if ((rc = aead_parts_ok(aad, naad, &aad_len)) != PX_OK ||
	    (rc = aead_parts_ok(pt, npt, &total)) != PX_OK)
		return rc;
	if (!ct && total)
		return PX_ERR_INVAL;
	aead_nonce(key, counter, nonce);
	f.ctx = key->enc;
	f.run = NULL;
	f.used = f.dirty = 0;
	ok = EVP_EncryptInit_ex2(key->enc, NULL, NULL, nonce, NULL) == 1 && aead_feed_aad(&f, aad, naad) &&
	     aead_feed_pt(&f, pt, npt, ct) &&
	     EVP_CIPHER_CTX_ctrl(key->enc, EVP_CTRL_AEAD_GET_TAG, AEAD_TAG_LEN, tag) == 1;
	OPENSSL_cleanse(f.buf, f.dirty);
	if (!ok) {
		/* Nothing half-made leaves: no partial ciphertext, no tag. */
		if (total)
			OPENSSL_cleanse(ct, total);
		OPENSSL_cleanse(tag, AEAD_TAG_LEN);
		return PX_ERR_CRYPTO;
	}
	return PX_OK;
}

/* Checks a list of output pieces like aead_parts_ok. */
static enum px_err aead_outs_ok(const struct aead_out *parts, size_t n, size_t *total)
{
	size_t i, sum = 0;

	if (!parts && n)
		return PX_ERR_INVAL;
	for (i = 0; i < n; i++) {
		if (!parts[i].data && parts[i].len)
			return PX_ERR_INVAL;
		if (parts[i].len > SIZE_MAX - sum)
			return PX_ERR_TOO_LARGE;
		sum += parts[i].len;
	}
	*total = sum;
	return PX_OK;
}

/* Wipes every output piece: nothing of a failed open is released. */
static void aead_outs_wipe(const struct aead_out *pt, size_t npt)
{
	size_t i;

	for (i = 0; pt && i < npt; i++)
		if (pt[i].data && pt[i].len)
			OPENSSL_cleanse(pt[i].data, pt[i].len);
}

/* Decrypts the ciphertext pieces into the output pieces (same total), one Update per stretch
 * where neither list changes piece: at most nct + npt calls, and no byte is copied besides. */
static int aead_decrypt_parts(EVP_CIPHER_CTX *ctx, const struct aead_part *ct, size_t nct,
			      const struct aead_out *pt, size_t npt)
{
	size_t i = 0, j = 0, ci = 0, pj = 0, n;

	while (i < nct && j < npt) {
		if (ci == ct[i].len) {
			i++;
			ci = 0;
			continue;
		}
		if (pj == pt[j].len) {
			j++;
			pj = 0;
			continue;
		}
		n = ct[i].len - ci < pt[j].len - pj ? ct[i].len - ci : pt[j].len - pj;
		if (!aead_update(ctx, pt[j].data + pj, ct[i].data + ci, n))
			return 0;
		ci += n;
		pj += n;
	}
	return 1;
}

/* Decrypts ct into pt and checks the tag. Returns 1 only if the tag verified. */
static int aead_decrypt(struct aead_key *key, const uint8_t nonce[static AEAD_IV_LEN],
			const struct aead_part *aad, size_t naad, const struct aead_part *ct, size_t nct,
			const uint8_t tag[static AEAD_TAG_LEN], const struct aead_out *pt, size_t npt)
{
	/* EVP_CIPHER_CTX_ctrl takes a non-const pointer; give it our own copy of the tag. */
	uint8_t want[AEAD_TAG_LEN], fin[16];
	struct aead_feed f;
	int finl = 0;

	memcpy(want, tag, AEAD_TAG_LEN);
	f.ctx = key->dec;
	f.run = NULL;
	f.used = f.dirty = 0;
	if (EVP_DecryptInit_ex2(key->dec, NULL, NULL, nonce, NULL) != 1 || !aead_feed_aad(&f, aad, naad))
		return 0;
	if (!aead_decrypt_parts(key->dec, ct, nct, pt, npt))
		return 0;
	if (EVP_CIPHER_CTX_ctrl(key->dec, EVP_CTRL_AEAD_SET_TAG, AEAD_TAG_LEN, want) != 1)
		return 0;
	/* DecryptFinal compares the full 16-byte tag in constant time (CRYPTO_memcmp in the provider)
	 * and writes nothing to fin. */
	return EVP_DecryptFinal_ex(key->dec, fin, &finl) > 0 && finl == 0;
}

enum px_err aead_open_parts(struct aead_key *key, uint64_t counter, const struct aead_part *aad, size_t naad,
			    const struct aead_part *ct, size_t nct, const uint8_t tag[static AEAD_TAG_LEN],
			    const struct aead_out *pt, size_t npt)
{
	uint8_t nonce[AEAD_IV_LEN];
	size_t aad_len, ct_len, pt_len;
	enum px_err rc;

	if ((rc = aead_outs_ok(pt, npt, &pt_len)) != PX_OK)
		return rc; /* no list of outputs to wipe */
	if (!key) {
		rc = PX_ERR_INVAL;
		goto fail;
	}
	if ((rc = aead_parts_ok(aad, naad, &aad_len)) != PX_OK || (rc = aead_parts_ok(ct, nct, &ct_len)) != PX_OK)
		goto fail;
	if (ct_len != pt_len) {
		rc = PX_ERR_INVAL;
		goto fail;
	}
	aead_nonce(key, counter, nonce);
	if (aead_decrypt(key, nonce, aad, naad, ct, nct, tag, pt, npt))
		return PX_OK;
	/* One generic answer whatever failed (R19, STYLE 10); clear what the provider queued so a
	 * flood of forgeries cannot leave errors behind for the TLS code on this thread. */
	ERR_clear_error();
	rc = PX_ERR_AUTH;
fail:
	/* No unauthenticated byte is released: the output is wiped on every failure. */
	aead_outs_wipe(pt, npt);
	return rc;
}

enum px_err aead_open(struct aead_key *key, uint64_t counter, const struct aead_part *aad, size_t naad,
		      const uint8_t *ct, size_t ct_len, const uint8_t tag[static AEAD_TAG_LEN], uint8_t *pt)
{
	struct aead_part in = {ct, ct_len};
	struct aead_out out = {pt, ct_len};

	if (ct_len && (!ct || !pt)) {
		if (pt)
			OPENSSL_cleanse(pt, ct_len);
		return PX_ERR_INVAL;
	}
	return aead_open_parts(key, counter, aad, naad, &in, 1, tag, &out, 1);
}
