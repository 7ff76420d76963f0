/* bench_source.c - the cost per message of source authentication (PROTOCOL.md §5.8, issue 17) next
 * to plain sealing, in one run: for each size (64 B and 1 KiB by default), batches of
 *   seal         keyring_seal (the unsigned envelope, as today)
 *   seal+sign    keyring_seal with the signed flag, then env_source_sign (one Ed25519 signature)
 *   open         keyring_open_decide through a per-device replay state, as the proxy opens
 *   open+verify  keyring_open_source with the writer rule (AEAD, then one Ed25519 verification)
 * alternate (seal, open, seal+sign, open+verify, again), so that load on a shared machine hits all
 * four alike, and the ratios come from the same seconds. Each message has a fresh counter.
 *
 * Output: one JSON line per size:
 *   {"op":"source","size":64,"seal_ns":..,"seal_sign_ns":..,"open_ns":..,"open_verify_ns":..,
 *    "sign_ratio":..,"verify_ratio":..,"bytes":114,"bytes_signed":178,"msgs":..}
 * Times are CPU time of the process (see now_s). bytes: the envelope of one message at padding 16
 * (payload + overhead); bytes_signed: the same signed (+64). Usage: bench_source [--size N] [seconds per size, default 1]. Not a test. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "envelope.h"
#include "identity.h"
#include "keyring.h"
#include "replay.h"

#define SRC_MAX	    16384
#define SRC_BATCH   32
#define SRC_WARMUP  0.2
#define SRC_TOPIC   "cmd/actuator-1/valve"
#define SRC_SENDER  "backend"

/* CPU time of this process, not wall-clock: on the shared 2-core machine (load 4-9 while other
 * builds run) wall-clock counts the time the process waits for a core, which swamps a few hundred
 * ns. The process is single-threaded, so this is the time its work took. */
static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, enum px_err rc)
{
	fprintf(stderr, "bench_source: %s: %s\n", what, px_strerror(rc));
	exit(1);
}

struct src_world {
	struct keyring *a, *b; /* sender (backend), receiver */
	struct keyring_rx *rx;
	struct id_key *id;
	struct id_pub *pub;
	uint8_t payload[SRC_MAX], inner[SRC_MAX + 128];
	uint8_t env[SRC_BATCH][SRC_MAX + 128];
};

struct src_times {
	double t[4]; /* seal, seal+sign, open, open+verify */
	unsigned long msgs;
};

static const struct id_pub *src_writer_pub(void *ctx, const char *sender)
{
	const struct src_world *w = ctx;

	return strcmp(sender, SRC_SENDER) == 0 ? w->pub : NULL;
}

static struct keyring *src_ring(const char *self)
{
	struct keyring_params p = {.self_id = self, .interval_s = 3600, .padding = 16,
				   .replay_bits = REPLAY_BITS_DEFAULT, .max_keys = 8};
	struct keyring *kr = NULL;
	enum px_err rc = keyring_new(&p, &kr);

	if (rc != PX_OK)
		die("keyring_new", rc);
	return kr;
}

static void src_world_init(struct src_world *w)
{
	uint8_t raw[ID_PUB_LEN];
	enum px_err rc;

	w->a = src_ring(SRC_SENDER);
	w->b = src_ring("actuator-2");
	if ((rc = keyring_epoch_create(w->a, 1, 0)) != PX_OK || (rc = keyring_epoch_activate(w->a, 0)) != PX_OK)
		die("epoch", rc);
	if ((rc = keyring_recv_install(w->b, SRC_SENDER, 1, keyring_newest_secret(w->a), 3600, 0, 0)) != PX_OK)
		die("keyring_recv_install", rc);
	if ((rc = keyring_rx_new(&w->rx)) != PX_OK || (rc = id_key_generate(&w->id)) != PX_OK ||
	    (rc = id_key_public(w->id, raw)) != PX_OK || (rc = id_pub_new(raw, &w->pub)) != PX_OK)
		die("keys", rc);
}

static void src_world_free(struct src_world *w)
{
	keyring_free(w->a);
	keyring_free(w->b);
	keyring_rx_free(w->rx);
	id_key_free(w->id);
	id_pub_free(w->pub);
}

/* Seals n messages of size bytes (signed or not) into w->env; returns the seconds taken. */
static double src_seal(struct src_world *w, size_t size, size_t elen, bool sign, size_t n)
{
	const uint8_t *t = (const uint8_t *)SRC_TOPIC;
	double t0 = now_s();
	enum px_err rc;
	size_t i;

	for (i = 0; i < n; i++) {
		rc = keyring_seal(w->a, 1, 0, sign ? ENV_FLAG_SIGNED : 0, t, strlen(SRC_TOPIC), NULL, 0, w->payload,
				  size, w->env[i], elen);
		if (rc == PX_OK && sign)
			rc = env_source_sign(w->id, t, strlen(SRC_TOPIC), w->env[i], elen + ENV_SIG_LEN);
		if (rc != PX_OK)
			die("seal", rc);
	}
	return now_s() - t0;
}

/* Opens the n messages of w->env (with the writer rule when signed); returns the seconds taken. */
static double src_open(struct src_world *w, size_t size, size_t len, bool sign, size_t n)
{
	const struct kr_source src = {src_writer_pub, w};
	double t0 = now_s();
	struct kr_opened k;
	enum px_err rc;
	size_t i;

	for (i = 0; i < n; i++) {
		rc = keyring_open_source(w->b, w->rx, 1, (const uint8_t *)SRC_TOPIC, strlen(SRC_TOPIC), w->env[i], len,
					 sign ? &src : NULL, w->inner, &k);
		if (rc != PX_OK || k.o.payload_len != size || k.seen != KR_SEEN_NEW)
			die("open", rc == PX_OK ? PX_ERR_MALFORMED : rc);
	}
	return now_s() - t0;
}

static void src_round(struct src_world *w, size_t size, size_t elen, struct src_times *r)
{
	r->t[0] += src_seal(w, size, elen, false, SRC_BATCH);
	r->t[2] += src_open(w, size, elen, false, SRC_BATCH);
	r->t[1] += src_seal(w, size, elen, true, SRC_BATCH);
	r->t[3] += src_open(w, size, elen + ENV_SIG_LEN, true, SRC_BATCH);
	r->msgs += SRC_BATCH;
}

static void bench_size(struct src_world *w, size_t size, double secs)
{
	size_t elen = keyring_sealed_size(w->a, 0, size);
	struct src_times r = {{0}, 0};
	double t_end, ns[4];
	int i;

	if (elen == 0)
		die("keyring_sealed_size", PX_ERR_INVAL);
	for (t_end = now_s() + SRC_WARMUP; now_s() < t_end;)
		src_round(w, size, elen, &r);
	memset(&r, 0, sizeof(r));
	while (r.t[0] + r.t[1] + r.t[2] + r.t[3] < secs)
		src_round(w, size, elen, &r);
	for (i = 0; i < 4; i++)
		ns[i] = r.t[i] * 1e9 / (double)r.msgs;
	printf("{\"op\":\"source\",\"size\":%zu,\"seal_ns\":%.1f,\"seal_sign_ns\":%.1f,\"open_ns\":%.1f,"
	       "\"open_verify_ns\":%.1f,\"sign_ratio\":%.2f,\"verify_ratio\":%.2f,\"bytes\":%zu,"
	       "\"bytes_signed\":%zu,\"msgs\":%lu}\n",
	       size, ns[0], ns[1], ns[2], ns[3], ns[1] / ns[0], ns[3] / ns[2], elen, elen + ENV_SIG_LEN, r.msgs);
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_source [--size N] [seconds per size, default 1]\n");
	exit(1);
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = {64, 1024};
	struct src_world *w = calloc(1, sizeof(*w));
	double secs = 1.0;
	size_t size = 0, i;
	char *end;
	int arg = 1;

	if (!w)
		die("calloc", PX_ERR_NOMEM);
	if (arg + 1 < argc && strcmp(argv[arg], "--size") == 0) {
		long n = strtol(argv[arg + 1], &end, 10);
		if (*end != '\0' || n < 1 || n > SRC_MAX)
			usage();
		size = (size_t)n;
		arg += 2;
	}
	if (arg < argc) {
		secs = strtod(argv[arg++], &end);
		if (*end != '\0' || !(secs > 0 && secs <= 600))
			usage();
	}
	if (arg < argc)
		usage();
	src_world_init(w);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		if (!size || size == sizes[i])
			bench_size(w, size ? size : sizes[i], secs);
	if (size && size != 64 && size != 1024)
		bench_size(w, size, secs);
	src_world_free(w);
	free(w);
	return 0;
}
