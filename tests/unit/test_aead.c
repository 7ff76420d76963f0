/* test_aead.c - AES-256-GCM (crypto/aead.c): McGrew-Viega test cases 13-16 and NIST CAVP entries
 * (tests/vectors/aes256gcm.txt) driven through aead_seal/aead_open via the iv XOR counter nonce;
 * every single-bit flip of ciphertext and tag refused with the output wiped; pieces split at every
 * point equal to one piece; aead_open_parts (ciphertext in pieces, plaintext to pieces) split at
 * every pair of points equal to aead_open, and refusing every flipped bit with every output piece
 * wiped; in-place open; nonces differ per counter; and no allocation on the per-message path (counted through CRYPTO_set_mem_functions). */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "aead.h"
#include "check.h"
#include "../vectors/vecfile.h"

#define BUF_MAX 256

/* Allocation counter: every OpenSSL malloc/realloc after main() starts goes through here. */
static unsigned long n_allocs;

static void *count_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	n_allocs++;
	return malloc(n);
}

static void *count_realloc(void *p, size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	n_allocs++;
	return realloc(p, n);
}

static void count_free(void *p, const char *file, int line)
{
	(void)file;
	(void)line;
	free(p);
}

static int all_zero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* One vector, decoded. */
struct gcm_vec {
	uint8_t key[32], iv[12], aad[BUF_MAX], pt[BUF_MAX], ct[BUF_MAX], tag[16];
	size_t aad_len, ct_len;
	int has_pt, pass;
};

static int gcm_decode(const struct vec_rec *r, struct gcm_vec *v)
{
	long aad, pt, ct;
	const char *res = vec_get(r, "Result");

	aad = vec_hex(r, "AAD", v->aad, BUF_MAX);
	ct = vec_hex(r, "CT", v->ct, BUF_MAX);
	pt = vec_hex(r, "PT", v->pt, BUF_MAX);
	if (vec_hex(r, "Key", v->key, 32) != 32 || vec_hex(r, "IV", v->iv, 12) != 12 ||
	    vec_hex(r, "Tag", v->tag, 16) != 16 || aad < 0 || ct < 0 || !res)
		return -1;
	v->pass = strcmp(res, "PASS") == 0;
	v->has_pt = pt >= 0;
	/* A PASS record gives its plaintext, of the ciphertext's length; a FAIL record gives none. */
	if (v->pass != v->has_pt || (v->has_pt && pt != ct) || (!v->pass && strcmp(res, "FAIL") != 0))
		return -1;
	v->aad_len = (size_t)aad;
	v->ct_len = (size_t)ct;
	return 0;
}

/* iv = IV XOR (0^32 || counter BE), so that aead's nonce for `counter` is the vector's IV. */
static struct aead_key *key_for(const struct gcm_vec *v, uint64_t counter)
{
	uint8_t iv[12];
	struct aead_key *k = NULL;
	int i;

	memcpy(iv, v->iv, 12);
	for (i = 0; i < 8; i++)
		iv[11 - i] ^= (uint8_t)(counter >> (8 * i));
	CHECK_EQ(aead_key_new(v->key, iv, &k), PX_OK);
	return k;
}

struct run {
	int n, pass, fail;
};

static int t_vector(const struct vec_rec *r, void *arg)
{
	struct run *run = arg;
	/* A different counter for every record: 0, all-ones, and mixed bit patterns between. */
	uint64_t ctr = run->n == 0   ? 0
		       : run->n == 1 ? UINT64_MAX
				     : UINT64_C(0x9e3779b97f4a7c15) * (uint64_t)run->n;
	struct gcm_vec v;
	struct aead_key *k;
	struct aead_part aad, pt;
	uint8_t ct[BUF_MAX], tag[16], out[BUF_MAX];

	run->n++;
	if (gcm_decode(r, &v) != 0) {
		fprintf(stderr, "%s:%u: bad record\n", r->file, r->line);
		return 1;
	}
	k = key_for(&v, ctr);
	if (!k)
		return 0;
	aad = (struct aead_part){v.aad, v.aad_len};
	if (v.pass) {
		run->pass++;
		pt = (struct aead_part){v.pt, v.ct_len};
		CHECK_EQ(aead_seal(k, ctr, &aad, 1, &pt, 1, ct, tag), PX_OK);
		CHECK_MEM(ct, v.ct, v.ct_len);
		CHECK_MEM(tag, v.tag, 16);
		memset(out, 0xaa, sizeof(out));
		CHECK_EQ(aead_open(k, ctr, &aad, 1, v.ct, v.ct_len, v.tag, out), PX_OK);
		CHECK_MEM(out, v.pt, v.ct_len);
	} else {
		run->fail++;
		memset(out, 0xaa, sizeof(out));
		CHECK_EQ(aead_open(k, ctr, &aad, 1, v.ct, v.ct_len, v.tag, out), PX_ERR_AUTH);
		CHECK(all_zero(out, v.ct_len));
	}
	aead_key_free(k);
	return 0;
}

/* McGrew-Viega Test Case 16: 60-byte plaintext, 20-byte AAD. */
static struct gcm_vec tc16;

static int t_find_tc16(const struct vec_rec *r, void *arg)
{
	const char *src = vec_get(r, "Source");

	if (src && strcmp(src, "McGrew-Viega Test Case 16") == 0)
		*(int *)arg = gcm_decode(r, &tc16) == 0;
	return 0;
}

/* Every single-bit flip of the ciphertext and of the tag is refused, and the output is wiped; so
 * are a flipped AAD bit, a missing AAD, and the wrong counter. */
static void t_flips(struct aead_key *k)
{
	struct aead_part aad = {tc16.aad, tc16.aad_len};
	uint8_t ct[BUF_MAX], tag[16], out[BUF_MAX], bad_aad[BUF_MAX];
	size_t bit, bits = tc16.ct_len * 8 + 128;
	int refused = 0;

	for (bit = 0; bit < bits; bit++) {
		memcpy(ct, tc16.ct, tc16.ct_len);
		memcpy(tag, tc16.tag, 16);
		if (bit < tc16.ct_len * 8)
			ct[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		else
			tag[(bit - tc16.ct_len * 8) / 8] ^= (uint8_t)(1u << (bit % 8));
		memset(out, 0xaa, sizeof(out));
		if (aead_open(k, 0, &aad, 1, ct, tc16.ct_len, tag, out) == PX_ERR_AUTH &&
		    all_zero(out, tc16.ct_len))
			refused++;
	}
	CHECK_EQ(refused, (long long)bits);
	memcpy(bad_aad, tc16.aad, tc16.aad_len);
	bad_aad[tc16.aad_len - 1] ^= 0x80;
	aad.data = bad_aad;
	memset(out, 0xaa, sizeof(out));
	CHECK_EQ(aead_open(k, 0, &aad, 1, tc16.ct, tc16.ct_len, tc16.tag, out), PX_ERR_AUTH);
	CHECK(all_zero(out, tc16.ct_len));
	CHECK_EQ(aead_open(k, 0, NULL, 0, tc16.ct, tc16.ct_len, tc16.tag, out), PX_ERR_AUTH);
	aad.data = tc16.aad;
	CHECK_EQ(aead_open(k, 1, &aad, 1, tc16.ct, tc16.ct_len, tc16.tag, out), PX_ERR_AUTH);
	CHECK_EQ(aead_open(k, UINT64_C(1) << 63, &aad, 1, tc16.ct, tc16.ct_len, tc16.tag, out), PX_ERR_AUTH);
	CHECK(all_zero(out, tc16.ct_len));
	/* And the genuine message still opens with the same key: a failure leaves no state behind. */
	CHECK_EQ(aead_open(k, 0, &aad, 1, tc16.ct, tc16.ct_len, tc16.tag, out), PX_OK);
	CHECK_MEM(out, tc16.pt, tc16.ct_len);
}

/* Splitting AAD and plaintext into pieces at every point (with empty pieces, and NULL data for
 * empty pieces) gives the same ciphertext and tag as one piece, and opens with split AAD. */
static void t_pieces(struct aead_key *k)
{
	uint8_t ct[BUF_MAX], tag[16], out[BUF_MAX];
	size_t a, p, mismatches = 0;

	for (a = 0; a <= tc16.aad_len; a++) {
		for (p = 0; p <= tc16.ct_len; p++) {
			struct aead_part aad[3] = {
				{tc16.aad, a}, {NULL, 0}, {tc16.aad + a, tc16.aad_len - a}};
			struct aead_part pt[4] = {{tc16.pt, p / 2},
						  {tc16.pt + p / 2, p - p / 2},
						  {NULL, 0},
						  {tc16.pt + p, tc16.ct_len - p}};

			memset(ct, 0, sizeof(ct));
			if (aead_seal(k, 0, aad, 3, pt, 4, ct, tag) != PX_OK ||
			    memcmp(ct, tc16.ct, tc16.ct_len) || memcmp(tag, tc16.tag, 16))
				mismatches++;
			if (aead_open(k, 0, aad, 3, tc16.ct, tc16.ct_len, tc16.tag, out) != PX_OK ||
			    memcmp(out, tc16.pt, tc16.ct_len))
				mismatches++;
		}
	}
	CHECK_EQ(mismatches, 0);
}

/* Pieces whose sizes straddle aead.c's 512-byte join buffer (small neighbours are fed to EVP
 * together) give the same bytes as one piece, for AAD and plaintext alike. */
static void t_pieces_straddle(struct aead_key *k)
{
	static const size_t splits[][3] = {{600, 4, 0},  {300, 300, 0}, {511, 2, 0}, {2, 511, 0},
					   {512, 1, 0},  {1, 512, 0},   {256, 256, 1}, {4, 600, 4},
					   {510, 1, 513}, {0, 1024, 0}};
	static uint8_t msg[1100], one_ct[1100], ct[1100], out[1100];
	uint8_t one_tag[16], tag[16];
	size_t i, j, bad = 0;

	for (i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 13 + 5);
	for (i = 0; i < sizeof(splits) / sizeof(splits[0]); i++) {
		size_t a = splits[i][0], b = splits[i][1], c = splits[i][2], n = a + b + c;
		struct aead_part whole = {msg, n}, parts[3] = {{msg, a}, {msg + a, b}, {msg + a + b, c}};
		if (aead_seal(k, i, NULL, 0, &whole, 1, one_ct, one_tag) != PX_OK ||
		    aead_seal(k, i, NULL, 0, parts, 3, ct, tag) != PX_OK || memcmp(ct, one_ct, n) ||
		    memcmp(tag, one_tag, 16))
			bad++;
		/* The same pieces as AAD (over an empty message) must give one piece's tag. */
		if (aead_seal(k, i, &whole, 1, NULL, 0, NULL, one_tag) != PX_OK ||
		    aead_seal(k, i, parts, 3, NULL, 0, NULL, tag) != PX_OK || memcmp(tag, one_tag, 16))
			bad++;
		if (aead_open(k, i, NULL, 0, one_ct, n, one_tag, out) == PX_OK) /* tag of the AAD case */
			bad++;
		for (j = 0; j < 16; j++)
			one_tag[j] = 0;
	}
	CHECK_EQ(bad, 0);
}

/* aead_open_parts: the ciphertext cut at every point (with an empty piece) and the output cut at
 * every point give what aead_open gives; every flipped bit of the cut ciphertext and of the tag,
 * and a flipped AAD bit, is refused with every output piece wiped; lists of different totals are
 * refused (output wiped). */
static void t_open_parts(struct aead_key *k)
{
	struct aead_part aad = {tc16.aad, tc16.aad_len};
	uint8_t ct[BUF_MAX], tag[16], out[BUF_MAX + 8];
	size_t c, o, n = tc16.ct_len, bit, bad = 0, refused = 0;

	for (c = 0; c <= n; c++) {
		for (o = 0; o <= n; o++) {
			struct aead_part in[3] = {{tc16.ct, c}, {NULL, 0}, {tc16.ct + c, n - c}};
			/* the two output pieces are apart in out, with a gap between them */
			struct aead_out dst[2] = {{out, o}, {out + o + 8, n - o}};
			memset(out, 0xaa, sizeof(out));
			if (aead_open_parts(k, 0, &aad, 1, in, 3, tc16.tag, dst, 2) != PX_OK ||
			    memcmp(out, tc16.pt, o) || memcmp(out + o + 8, tc16.pt + o, n - o) ||
			    !(out[o] == 0xaa && out[o + 7] == 0xaa))
				bad++;
		}
	}
	CHECK_EQ(bad, 0);
	for (bit = 0; bit < n * 8 + 128; bit++) {
		size_t cut = bit % (n + 1);
		struct aead_part in[2] = {{ct, cut}, {ct + cut, n - cut}};
		struct aead_out dst[3] = {{out, n / 3}, {out + n / 3 + 8, n / 3}, {out + 2 * (n / 3) + 16, n - 2 * (n / 3)}};
		memcpy(ct, tc16.ct, n);
		memcpy(tag, tc16.tag, 16);
		if (bit < n * 8)
			ct[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		else
			tag[(bit - n * 8) / 8] ^= (uint8_t)(1u << (bit % 8));
		memset(out, 0xaa, sizeof(out));
		if (aead_open_parts(k, 0, &aad, 1, in, 2, tag, dst, 3) == PX_ERR_AUTH && all_zero(dst[0].data, dst[0].len) &&
		    all_zero(dst[1].data, dst[1].len) && all_zero(dst[2].data, dst[2].len) && out[n / 3] == 0xaa)
			refused++;
	}
	CHECK_EQ(refused, n * 8 + 128);
	{
		uint8_t bad_aad[BUF_MAX];
		struct aead_part in = {tc16.ct, n}, a2 = {bad_aad, tc16.aad_len};
		struct aead_out dst[2] = {{out, 1}, {out + 1, n - 1}}, shorter = {out, n - 1};
		memcpy(bad_aad, tc16.aad, tc16.aad_len);
		bad_aad[0] ^= 1;
		memset(out, 0xaa, sizeof(out));
		CHECK_EQ(aead_open_parts(k, 0, &a2, 1, &in, 1, tc16.tag, dst, 2), PX_ERR_AUTH);
		CHECK(all_zero(out, n));
		memset(out, 0xaa, sizeof(out));
		CHECK_EQ(aead_open_parts(k, 0, &aad, 1, &in, 1, tc16.tag, &shorter, 1), PX_ERR_INVAL);
		CHECK(all_zero(out, n - 1));
		CHECK_EQ(aead_open_parts(k, 0, &aad, 1, &in, 1, tc16.tag, NULL, 1), PX_ERR_INVAL);
		/* the genuine message still opens after all that */
		CHECK_EQ(aead_open_parts(k, 0, &aad, 1, &in, 1, tc16.tag, dst, 2), PX_OK);
		CHECK_MEM(out, tc16.pt, n);
	}
}

/* Open with pt == ct decrypts in place; a failed in-place open wipes the buffer. */
static void t_in_place(struct aead_key *k)
{
	struct aead_part aad = {tc16.aad, tc16.aad_len};
	uint8_t buf[BUF_MAX], tag[16];

	memcpy(buf, tc16.ct, tc16.ct_len);
	CHECK_EQ(aead_open(k, 0, &aad, 1, buf, tc16.ct_len, tc16.tag, buf), PX_OK);
	CHECK_MEM(buf, tc16.pt, tc16.ct_len);
	memcpy(buf, tc16.ct, tc16.ct_len);
	memcpy(tag, tc16.tag, 16);
	tag[0] ^= 1;
	CHECK_EQ(aead_open(k, 0, &aad, 1, buf, tc16.ct_len, tag, buf), PX_ERR_AUTH);
	CHECK(all_zero(buf, tc16.ct_len));
}

/* The counter is the nonce: different counters give different ciphertexts and tags, each opens
 * only under its own counter; a 16 KiB message round-trips; empty messages work. */
static void t_counters(struct aead_key *k)
{
	static uint8_t big[16384], big_ct[16384], big_out[16384];
	struct aead_part pt = {tc16.pt, tc16.ct_len}, bp = {big, sizeof(big)};
	uint8_t c0[BUF_MAX], c1[BUF_MAX], t0[16], t1[16], out[BUF_MAX];
	size_t i;

	CHECK_EQ(aead_seal(k, 7, NULL, 0, &pt, 1, c0, t0), PX_OK);
	CHECK_EQ(aead_seal(k, 8, NULL, 0, &pt, 1, c1, t1), PX_OK);
	CHECK(memcmp(c0, c1, tc16.ct_len) != 0 && memcmp(t0, t1, 16) != 0);
	CHECK_EQ(aead_open(k, 7, NULL, 0, c0, tc16.ct_len, t0, out), PX_OK);
	CHECK_MEM(out, tc16.pt, tc16.ct_len);
	CHECK_EQ(aead_open(k, 8, NULL, 0, c0, tc16.ct_len, t0, out), PX_ERR_AUTH);
	for (i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7 + (i >> 8));
	CHECK_EQ(aead_seal(k, UINT64_MAX, NULL, 0, &bp, 1, big_ct, t0), PX_OK);
	CHECK(memcmp(big_ct, big, sizeof(big)) != 0);
	CHECK_EQ(aead_open(k, UINT64_MAX, NULL, 0, big_ct, sizeof(big), t0, big_out), PX_OK);
	CHECK_MEM(big_out, big, sizeof(big));
	/* Empty message, no AAD: NULL buffers are fine when nothing is written. */
	CHECK_EQ(aead_seal(k, 9, NULL, 0, NULL, 0, NULL, t0), PX_OK);
	CHECK_EQ(aead_open(k, 9, NULL, 0, NULL, 0, t0, NULL), PX_OK);
	t0[15] ^= 1;
	CHECK_EQ(aead_open(k, 9, NULL, 0, NULL, 0, t0, NULL), PX_ERR_AUTH);
}

/* The per-message path allocates nothing: many seals and opens, good and bad, cost zero allocs. */
static void t_no_alloc(struct aead_key *k)
{
	struct aead_part aad = {tc16.aad, tc16.aad_len}, pt = {tc16.pt, tc16.ct_len};
	uint8_t ct[BUF_MAX], tag[16], out[BUF_MAX];
	unsigned long before;
	uint64_t i;
	int bad = 0;

	before = n_allocs;
	for (i = 0; i < 1000; i++) {
		bad |= aead_seal(k, i, &aad, 1, &pt, 1, ct, tag) != PX_OK;
		bad |= aead_open(k, i, &aad, 1, ct, tc16.ct_len, tag, out) != PX_OK;
		tag[i % 16] ^= 1;
		bad |= aead_open(k, i, &aad, 1, ct, tc16.ct_len, tag, out) != PX_ERR_AUTH;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(n_allocs - before, 0);
}

static void t_bad_args(struct aead_key *k)
{
	static const uint8_t key[32], iv[12];
	struct aead_part nul = {NULL, 5}, two[2] = {{iv, 1}, {iv, SIZE_MAX}};
	uint8_t ct[16], tag[16] = {0}, out[16];

	CHECK_EQ(aead_key_new(key, iv, NULL), PX_ERR_INVAL);
	CHECK_EQ(aead_seal(NULL, 0, NULL, 0, NULL, 0, ct, tag), PX_ERR_INVAL);
	CHECK_EQ(aead_seal(k, 0, NULL, 1, NULL, 0, ct, tag), PX_ERR_INVAL);
	CHECK_EQ(aead_seal(k, 0, &nul, 1, NULL, 0, ct, tag), PX_ERR_INVAL);
	CHECK_EQ(aead_seal(k, 0, NULL, 0, &nul, 1, ct, tag), PX_ERR_INVAL);
	CHECK_EQ(aead_seal(k, 0, NULL, 0, two, 1, NULL, tag), PX_ERR_INVAL);
	CHECK_EQ(aead_seal(k, 0, two, 2, NULL, 0, ct, tag), PX_ERR_TOO_LARGE);
	memset(out, 0xaa, sizeof(out));
	CHECK_EQ(aead_open(NULL, 0, NULL, 0, ct, sizeof(ct), tag, out), PX_ERR_INVAL);
	CHECK(all_zero(out, sizeof(out)));
	CHECK_EQ(aead_open(k, 0, NULL, 0, NULL, sizeof(ct), tag, out), PX_ERR_INVAL);
	CHECK_EQ(aead_open(k, 0, NULL, 0, ct, sizeof(ct), tag, NULL), PX_ERR_INVAL);
	memset(out, 0xaa, sizeof(out));
	CHECK_EQ(aead_open(k, 0, &nul, 1, ct, sizeof(ct), tag, out), PX_ERR_INVAL);
	CHECK(all_zero(out, sizeof(out)));
	aead_key_free(NULL);
}

int main(int argc, char **argv)
{
	struct run run = {0};
	struct aead_key *k = NULL;
	int found = 0;

	/* Before OpenSSL allocates anything. */
	CHECK_EQ(CRYPTO_set_mem_functions(count_malloc, count_realloc, count_free), 1);
	CHECK(argc > 1);
	if (argc < 2)
		CHECK_DONE();
	CHECK_EQ(vec_each(argv[1], "aes256gcm.txt", t_vector, &run), 30);
	CHECK_EQ(run.pass, 21);
	CHECK_EQ(run.fail, 9);
	vec_each(argv[1], "aes256gcm.txt", t_find_tc16, &found);
	CHECK(found);
	if (found) {
		/* A nonzero iv, counter 0: the nonce is iv itself. */
		CHECK_EQ(aead_key_new(tc16.key, tc16.iv, &k), PX_OK);
	}
	if (k) {
		t_flips(k);
		t_pieces(k);
		t_pieces_straddle(k);
		t_open_parts(k);
		t_in_place(k);
		t_counters(k);
		t_no_alloc(k);
		t_bad_args(k);
	}
	aead_key_free(k);
	CHECK_DONE();
}
