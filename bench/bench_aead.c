/* bench_aead.c - micro-benchmark of the per-message AEAD path (crypto/aead.c): aead_seal and
 * aead_open at 64 B, 1 KiB and 16 KiB, each timed for about a second after a warm-up, next to a
 * plain EVP loop in the style of `openssl speed -evp aes-256-gcm` (one preallocated context; per
 * block a fresh nonce, Update, Final and the tag) as the in-process ceiling.
 *
 * Output: one JSON line per (op, size), op in "seal", "open", "evp":
 *   {"op":"seal","size":64,"ns_per_msg":123.4,"mb_per_s":518.7,"msgs":8100000}
 * mb_per_s counts plaintext bytes in units of 10^6 per second (as `openssl speed` reports kB as
 * 1000 bytes). Usage: bench_aead [--size N] [seconds per measurement, default 1]; --size N measures
 * only messages of N bytes. Not a test. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "aead.h"

#define BENCH_MAX    16384
#define BENCH_BATCH  256 /* messages between clock reads */
#define BENCH_WARMUP 0.2

/* One benchmarked operation: run n messages starting at counter *ctr; 0 on success. */
struct bench_op {
	const char *name;
	int (*run)(void *state, size_t size, uint64_t *ctr, unsigned n);
	void *state;
};

struct aead_state {
	struct aead_key *key;
	uint8_t pt[BENCH_MAX], ct[BENCH_MAX], out[BENCH_MAX], tag[AEAD_TAG_LEN];
	uint8_t aad[16];
	uint64_t sealed_ctr; /* the counter ct/tag were sealed under, for open */
	size_t sealed_size;
};

struct evp_state {
	EVP_CIPHER_CTX *ctx;
	uint8_t buf[BENCH_MAX], iv[12], tag[16];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int run_seal(void *state, size_t size, uint64_t *ctr, unsigned n)
{
	struct aead_state *st = state;
	struct aead_part aad = {st->aad, sizeof(st->aad)}, pt = {st->pt, size};
	unsigned i;

	for (i = 0; i < n; i++)
		if (aead_seal(st->key, (*ctr)++, &aad, 1, &pt, 1, st->ct, st->tag) != PX_OK)
			return -1;
	return 0;
}

/* Opens the same sealed message again and again (the replay window is not part of this path). */
static int run_open(void *state, size_t size, uint64_t *ctr, unsigned n)
{
	struct aead_state *st = state;
	struct aead_part aad = {st->aad, sizeof(st->aad)}, pt = {st->pt, size};
	unsigned i;

	(void)ctr;
	if (st->sealed_size != size) {
		st->sealed_ctr = 1;
		if (aead_seal(st->key, st->sealed_ctr, &aad, 1, &pt, 1, st->ct, st->tag) != PX_OK)
			return -1;
		st->sealed_size = size;
	}
	for (i = 0; i < n; i++)
		if (aead_open(st->key, st->sealed_ctr, &aad, 1, st->ct, size, st->tag, st->out) != PX_OK)
			return -1;
	return 0;
}

/* The ceiling: what EVP itself costs per block with a fresh nonce, as `openssl speed` drives it. */
static int run_evp(void *state, size_t size, uint64_t *ctr, unsigned n)
{
	struct evp_state *st = state;
	unsigned i;
	int outl;

	for (i = 0; i < n; i++) {
		memcpy(st->iv + 4, ctr, 8);
		(*ctr)++;
		if (EVP_EncryptInit_ex2(st->ctx, NULL, NULL, st->iv, NULL) != 1 ||
		    EVP_EncryptUpdate(st->ctx, st->buf, &outl, st->buf, (int)size) != 1 ||
		    EVP_EncryptFinal_ex(st->ctx, st->buf + outl, &outl) != 1 ||
		    EVP_CIPHER_CTX_ctrl(st->ctx, EVP_CTRL_AEAD_GET_TAG, 16, st->tag) != 1)
			return -1;
	}
	return 0;
}

/* Runs op at size for warm-up then `seconds`, and prints its JSON line. */
static int measure(const struct bench_op *op, size_t size, double seconds)
{
	uint64_t ctr = 0, msgs = 0;
	double t0, t, end;

	t0 = now_s();
	while (now_s() - t0 < BENCH_WARMUP)
		if (op->run(op->state, size, &ctr, BENCH_BATCH) != 0)
			return -1;
	t0 = now_s();
	end = t0 + seconds;
	do {
		if (op->run(op->state, size, &ctr, BENCH_BATCH) != 0)
			return -1;
		msgs += BENCH_BATCH;
		t = now_s();
	} while (t < end);
	t -= t0;
	printf("{\"op\":\"%s\",\"size\":%zu,\"ns_per_msg\":%.1f,\"mb_per_s\":%.1f,\"msgs\":%llu}\n", op->name,
	       size, t * 1e9 / (double)msgs, (double)size * (double)msgs / t / 1e6, (unsigned long long)msgs);
	fflush(stdout);
	return 0;
}

static int setup(struct aead_state *as, struct evp_state *es, EVP_CIPHER **cipher)
{
	static const uint8_t key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
	static const uint8_t iv[12] = {0xca, 0xfe, 0xba, 0xbe};
	size_t i;

	for (i = 0; i < BENCH_MAX; i++)
		as->pt[i] = es->buf[i] = (uint8_t)i;
	memset(as->aad, 0x5a, sizeof(as->aad));
	memcpy(es->iv, iv, sizeof(iv));
	if (aead_key_new(key, iv, &as->key) != PX_OK)
		return -1;
	*cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	es->ctx = EVP_CIPHER_CTX_new();
	if (!*cipher || !es->ctx || EVP_EncryptInit_ex2(es->ctx, *cipher, key, NULL, NULL) != 1)
		return -1;
	return 0;
}

/* [--size N] [seconds]: N restricts the run to one message size. */
static int parse_args(int argc, char **argv, size_t *size, double *seconds)
{
	char *end;
	long n;
	int arg = 1;

	if (arg + 1 < argc && strcmp(argv[arg], "--size") == 0) {
		n = strtol(argv[arg + 1], &end, 10);
		if (*end != '\0' || n < 1 || n > BENCH_MAX)
			return -1;
		*size = (size_t)n;
		arg += 2;
	}
	if (arg < argc) {
		*seconds = strtod(argv[arg++], &end);
		if (*end != '\0' || !(*seconds > 0 && *seconds < 3600))
			return -1;
	}
	return arg < argc ? -1 : 0;
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = {64, 1024, 16384};
	static struct aead_state as;
	static struct evp_state es;
	EVP_CIPHER *cipher = NULL;
	double seconds = 1.0;
	int rc = 1;
	size_t i, j, nsizes, only = 0;
	const size_t *list;
	const struct bench_op ops[] = {
		{"seal", run_seal, &as}, {"open", run_open, &as}, {"evp", run_evp, &es}};

	if (parse_args(argc, argv, &only, &seconds) != 0) {
		fprintf(stderr, "usage: %s [--size N] [seconds per measurement]\n", argv[0]);
		return 2;
	}
	list = only ? &only : sizes;
	nsizes = only ? 1 : sizeof(sizes) / sizeof(sizes[0]);
	if (setup(&as, &es, &cipher) != 0) {
		fprintf(stderr, "bench_aead: setup failed\n");
		goto out;
	}
	for (i = 0; i < nsizes; i++)
		for (j = 0; j < sizeof(ops) / sizeof(ops[0]); j++)
			if (measure(&ops[j], list[i], seconds) != 0) {
				fprintf(stderr, "bench_aead: %s failed\n", ops[j].name);
				goto out;
			}
	rc = 0;
out:
	aead_key_free(as.key);
	EVP_CIPHER_CTX_free(es.ctx);
	EVP_CIPHER_free(cipher);
	return rc;
}
