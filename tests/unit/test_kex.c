/* test_kex.c - X25519 (crypto/kex.c) against RFC 7748: the §5.2 single-shot and iterated vectors,
 * the §6.1 Alice/Bob exchange, and small-order peer points that must give PX_ERR_WEAK_KEY with the
 * output zeroed (tests/vectors/x25519.txt). Plus generated key pairs agreeing with each other. */
#include <string.h>

#include "check.h"
#include "kex.h"
#include "../vectors/vecfile.h"

static const uint8_t zero32[32];

/* X25519(scalar, u) through the public API; returns the px_err of kex_derive. */
static enum px_err x25519(const uint8_t scalar[32], const uint8_t u[32], uint8_t out[32])
{
	struct kex_key *key = NULL;
	enum px_err rc;

	rc = kex_key_from_private(scalar, &key);
	CHECK_EQ(rc, PX_OK);
	if (rc != PX_OK)
		return rc;
	rc = kex_derive(key, u, out);
	kex_key_free(key);
	return rc;
}

static int t_single(const struct vec_rec *r)
{
	uint8_t k[32], u[32], want[32], got[32];

	CHECK_EQ(vec_hex(r, "Scalar", k, 32), 32);
	CHECK_EQ(vec_hex(r, "U", u, 32), 32);
	CHECK_EQ(vec_hex(r, "Out", want, 32), 32);
	CHECK_EQ(x25519(k, u, got), PX_OK);
	CHECK_MEM(got, want, 32);
	return 0;
}

/* RFC 7748 §5.2: k = u = 9; each round k, u = X25519(k, u), k. */
static int t_iterated(const struct vec_rec *r)
{
	uint8_t k[32] = {9}, u[32] = {9}, next[32], want[32];
	const char *its = vec_get(r, "Iterations");
	long i, n = its ? strtol(its, NULL, 10) : 0;

	CHECK(n > 0);
	CHECK_EQ(vec_hex(r, "K", want, 32), 32);
	for (i = 0; i < n; i++) {
		if (x25519(k, u, next) != PX_OK) {
			CHECK(0);
			break;
		}
		memcpy(u, k, 32);
		memcpy(k, next, 32);
	}
	CHECK_MEM(k, want, 32);
	return 0;
}

static int t_dh(const struct vec_rec *r)
{
	uint8_t apriv[32], apub[32], bpriv[32], bpub[32], want[32], got[32];
	struct kex_key *a = NULL, *b = NULL;

	CHECK_EQ(vec_hex(r, "AlicePriv", apriv, 32), 32);
	CHECK_EQ(vec_hex(r, "AlicePub", apub, 32), 32);
	CHECK_EQ(vec_hex(r, "BobPriv", bpriv, 32), 32);
	CHECK_EQ(vec_hex(r, "BobPub", bpub, 32), 32);
	CHECK_EQ(vec_hex(r, "K", want, 32), 32);
	CHECK_EQ(kex_key_from_private(apriv, &a), PX_OK);
	CHECK_EQ(kex_key_from_private(bpriv, &b), PX_OK);
	if (!a || !b)
		goto out;
	CHECK_EQ(kex_key_public(a, got), PX_OK);
	CHECK_MEM(got, apub, 32);
	CHECK_EQ(kex_key_public(b, got), PX_OK);
	CHECK_MEM(got, bpub, 32);
	CHECK_EQ(kex_derive(a, bpub, got), PX_OK);
	CHECK_MEM(got, want, 32);
	CHECK_EQ(kex_derive(b, apub, got), PX_OK);
	CHECK_MEM(got, want, 32);
out:
	kex_key_free(a);
	kex_key_free(b);
	return 0;
}

/* A small-order u must give PX_ERR_WEAK_KEY and a zeroed output, for any private key: try the
 * §6.1 Alice key and a freshly generated one, with the output buffer pre-filled. */
static int t_low_order(const struct vec_rec *r)
{
	static const uint8_t alice[32] = {0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1,
					  0x72, 0x51, 0xb2, 0x66, 0x45, 0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0,
					  0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5, 0x1d, 0xb9, 0x2c, 0x2a};
	uint8_t u[32], out[32];
	struct kex_key *fresh = NULL;
	enum px_err rc;

	CHECK_EQ(vec_hex(r, "U", u, 32), 32);
	memset(out, 0xa5, sizeof(out));
	rc = x25519(alice, u, out);
	if (rc != PX_ERR_WEAK_KEY)
		fprintf(stderr, "%s:%u: low-order u not refused\n", r->file, r->line);
	CHECK_EQ(rc, PX_ERR_WEAK_KEY);
	CHECK_MEM(out, zero32, 32);
	CHECK_EQ(kex_key_generate(&fresh), PX_OK);
	if (fresh) {
		memset(out, 0x5a, sizeof(out));
		CHECK_EQ(kex_derive(fresh, u, out), PX_ERR_WEAK_KEY);
		CHECK_MEM(out, zero32, 32);
	}
	kex_key_free(fresh);
	return 0;
}

struct counts {
	int single, iterated, dh, low;
};

static int t_record(const struct vec_rec *r, void *arg)
{
	struct counts *c = arg;
	const char *t = vec_get(r, "Test");

	if (t && strcmp(t, "single") == 0)
		return c->single++, t_single(r);
	if (t && strcmp(t, "iterated") == 0)
		return c->iterated++, t_iterated(r);
	if (t && strcmp(t, "dh") == 0)
		return c->dh++, t_dh(r);
	if (t && strcmp(t, "low-order") == 0)
		return c->low++, t_low_order(r);
	fprintf(stderr, "%s:%u: unknown Test\n", r->file, r->line);
	return 1;
}

/* Two generated pairs agree, and differ from a third; public keys are not all-zero. */
static void t_generated(void)
{
	struct kex_key *a = NULL, *b = NULL, *c = NULL;
	uint8_t pa[32], pb[32], pc[32], sab[32], sba[32], sac[32];

	CHECK_EQ(kex_key_generate(&a), PX_OK);
	CHECK_EQ(kex_key_generate(&b), PX_OK);
	CHECK_EQ(kex_key_generate(&c), PX_OK);
	if (!a || !b || !c)
		goto out;
	CHECK_EQ(kex_key_public(a, pa), PX_OK);
	CHECK_EQ(kex_key_public(b, pb), PX_OK);
	CHECK_EQ(kex_key_public(c, pc), PX_OK);
	CHECK(memcmp(pa, pb, 32) != 0);
	CHECK_EQ(kex_derive(a, pb, sab), PX_OK);
	CHECK_EQ(kex_derive(b, pa, sba), PX_OK);
	CHECK_EQ(kex_derive(a, pc, sac), PX_OK);
	CHECK_MEM(sab, sba, 32);
	CHECK(memcmp(sab, sac, 32) != 0);
	CHECK(memcmp(sab, zero32, 32) != 0);
out:
	kex_key_free(a);
	kex_key_free(b);
	kex_key_free(c);
}

static void t_bad_args(void)
{
	uint8_t buf[32] = {9};

	CHECK_EQ(kex_key_generate(NULL), PX_ERR_INVAL);
	CHECK_EQ(kex_key_from_private(buf, NULL), PX_ERR_INVAL);
	CHECK_EQ(kex_key_public(NULL, buf), PX_ERR_INVAL);
	memset(buf, 0xff, sizeof(buf));
	CHECK_EQ(kex_derive(NULL, buf, buf), PX_ERR_INVAL);
	CHECK_MEM(buf, zero32, 32);
	kex_key_free(NULL);
}

int main(int argc, char **argv)
{
	struct counts c = {0};

	CHECK(argc > 1);
	if (argc < 2)
		CHECK_DONE();
	CHECK_EQ(vec_each(argv[1], "x25519.txt", t_record, &c), 19);
	CHECK_EQ(c.single, 2);
	CHECK_EQ(c.iterated, 2);
	CHECK_EQ(c.dh, 1);
	CHECK_EQ(c.low, 14);
	t_generated();
	t_bad_args();
	CHECK_DONE();
}
