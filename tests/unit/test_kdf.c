/* test_kdf.c - HKDF-SHA256 (crypto/kdf.c) against RFC 5869 Appendix A.1-A.3 (PRK and OKM,
 * tests/vectors/hkdf.txt), and the labelled expand of PROTOCOL.md §4 checked against a hand-built
 * info string fed to kdf_expand, plus its limits. */
#include <string.h>

#include "check.h"
#include "kdf.h"
#include "../vectors/vecfile.h"

static int t_rfc5869(const struct vec_rec *r, void *arg)
{
	uint8_t ikm[128], salt[128], info[128], prk[32], want_prk[32], okm[128], want_okm[128];
	long ikm_len, salt_len, info_len, okm_len;
	const char *l = vec_get(r, "L");

	(*(int *)arg)++;
	ikm_len = vec_hex(r, "IKM", ikm, sizeof(ikm));
	salt_len = vec_hex(r, "Salt", salt, sizeof(salt));
	info_len = vec_hex(r, "Info", info, sizeof(info));
	okm_len = vec_hex(r, "OKM", want_okm, sizeof(want_okm));
	CHECK(ikm_len > 0 && salt_len >= 0 && info_len >= 0 && okm_len > 0);
	CHECK_EQ(vec_hex(r, "PRK", want_prk, 32), 32);
	CHECK(l && strtol(l, NULL, 10) == okm_len);
	if (ikm_len <= 0 || salt_len < 0 || info_len < 0 || okm_len <= 0)
		return 0;
	CHECK_EQ(kdf_extract(salt_len ? salt : NULL, (size_t)salt_len, ikm, (size_t)ikm_len, prk), PX_OK);
	CHECK_MEM(prk, want_prk, 32);
	memset(okm, 0, sizeof(okm));
	CHECK_EQ(kdf_expand(prk, info_len ? info : NULL, (size_t)info_len, okm, (size_t)okm_len), PX_OK);
	CHECK_MEM(okm, want_okm, (size_t)okm_len);
	/* HKDF-Expand is a prefix function of L: a shorter output is the start of the longer one. */
	CHECK_EQ(kdf_expand(prk, info_len ? info : NULL, (size_t)info_len, okm, 7), PX_OK);
	CHECK_MEM(okm, want_okm, 7);
	return 0;
}

/* kdf_expand_label(prk, "data key", ctx, 32) must equal HKDF-Expand over the info bytes written out
 * here by hand: 00 20 | 12 | "mqseal v1 data key" | 00 05 | 01 02 03 04 05. */
static void t_label_by_hand(void)
{
	static const uint8_t info[] = {
		0x00, 0x20,					       /* u16 L = 32 */
		0x12,						       /* u8 len = 18 */
		'm',  'q',  's',  'e',	'a',  'l', ' ', 'v', '1', ' ', /* "mqseal v1 " */
		'd',  'a',  't',  'a',	' ',  'k', 'e', 'y',	       /* "data key" */
		0x00, 0x05,					       /* u16 len(ctx) = 5 */
		0x01, 0x02, 0x03, 0x04, 0x05,			       /* ctx */
	};
	static const uint8_t ctx[] = {1, 2, 3, 4, 5};
	uint8_t prk[32], a[32], b[32], c[12];
	size_t i;

	for (i = 0; i < sizeof(prk); i++)
		prk[i] = (uint8_t)(i * 3 + 1);
	CHECK_EQ(sizeof(info), 2 + 1 + 18 + 2 + 5);
	CHECK_EQ(kdf_expand(prk, info, sizeof(info), a, sizeof(a)), PX_OK);
	CHECK_EQ(kdf_expand_label(prk, "data key", ctx, sizeof(ctx), b, sizeof(b)), PX_OK);
	CHECK_MEM(a, b, 32);
	/* The length is inside the info: 12 bytes of "data key" are not a prefix of the 32. */
	CHECK_EQ(kdf_expand_label(prk, "data key", ctx, sizeof(ctx), c, sizeof(c)), PX_OK);
	CHECK(memcmp(c, a, sizeof(c)) != 0);
	/* Different label, different context: different keys. */
	CHECK_EQ(kdf_expand_label(prk, "data iv", ctx, sizeof(ctx), b, sizeof(b)), PX_OK);
	CHECK(memcmp(a, b, 32) != 0);
	CHECK_EQ(kdf_expand_label(prk, "data key", ctx, sizeof(ctx) - 1, b, sizeof(b)), PX_OK);
	CHECK(memcmp(a, b, 32) != 0);
}

/* An empty context and an empty label are encoded with zero lengths, not skipped. */
static void t_label_empty(void)
{
	static const uint8_t info[] = {0x00, 0x10, 0x0a, 'm', 'q', 's',	 'e', 'a',
				       'l',  ' ',  'v',	 '1', ' ', 0x00, 0x00};
	uint8_t prk[32] = {0x42}, a[16], b[16];

	CHECK_EQ(kdf_expand(prk, info, sizeof(info), a, sizeof(a)), PX_OK);
	CHECK_EQ(kdf_expand_label(prk, "", NULL, 0, b, sizeof(b)), PX_OK);
	CHECK_MEM(a, b, 16);
}

static void t_limits(void)
{
	static uint8_t big[KDF_MAX_INFO + 1];
	static uint8_t out[255 * 32 + 1];
	char label[300];
	uint8_t prk[32] = {1};

	/* RFC 5869 §2.3: L <= 255 * HashLen. */
	CHECK_EQ(kdf_expand(prk, NULL, 0, out, 255 * 32), PX_OK);
	CHECK_EQ(kdf_expand(prk, NULL, 0, out, 255 * 32 + 1), PX_ERR_INVAL);
	CHECK_EQ(kdf_expand(prk, NULL, 0, out, 0), PX_ERR_INVAL);
	CHECK_EQ(kdf_expand_label(prk, "x", NULL, 0, out, 255 * 32 + 1), PX_ERR_INVAL);
	/* OpenSSL 3.0's info limit (R12). */
	CHECK_EQ(kdf_expand(prk, big, KDF_MAX_INFO, out, 32), PX_OK);
	CHECK_EQ(kdf_expand(prk, big, KDF_MAX_INFO + 1, out, 32), PX_ERR_INVAL);
	/* Label info = 2 + 1 + 10 + 1 + 2 + ctx = 16 + ctx: ctx 1008 fits exactly, 1009 does not. */
	CHECK_EQ(kdf_expand_label(prk, "x", big, KDF_MAX_INFO - 16, out, 32), PX_OK);
	CHECK_EQ(kdf_expand_label(prk, "x", big, KDF_MAX_INFO - 15, out, 32), PX_ERR_INVAL);
	/* The full label has a one-byte length: 10 + 245 = 255 fits, 246 does not. */
	memset(label, 'a', sizeof(label));
	label[245] = '\0';
	CHECK_EQ(kdf_expand_label(prk, label, NULL, 0, out, 32), PX_OK);
	label[245] = 'a';
	label[246] = '\0';
	CHECK_EQ(kdf_expand_label(prk, label, NULL, 0, out, 32), PX_ERR_INVAL);
	/* Bad arguments. */
	CHECK_EQ(kdf_extract(NULL, 0, NULL, 0, prk), PX_ERR_INVAL);
	CHECK_EQ(kdf_extract(NULL, 4, big, 4, prk), PX_ERR_INVAL);
	CHECK_EQ(kdf_expand(prk, NULL, 3, out, 32), PX_ERR_INVAL);
	CHECK_EQ(kdf_expand(prk, NULL, 0, NULL, 32), PX_ERR_INVAL);
	CHECK_EQ(kdf_expand_label(prk, NULL, NULL, 0, out, 32), PX_ERR_INVAL);
	CHECK_EQ(kdf_expand_label(prk, "x", NULL, 1, out, 32), PX_ERR_INVAL);
}

int main(int argc, char **argv)
{
	int n = 0;

	CHECK(argc > 1);
	if (argc < 2)
		CHECK_DONE();
	CHECK_EQ(vec_each(argv[1], "hkdf.txt", t_rfc5869, &n), 3);
	CHECK_EQ(n, 3);
	t_label_by_hand();
	t_label_empty();
	t_limits();
	CHECK_DONE();
}
