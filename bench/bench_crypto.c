/* bench_crypto.c - micro-benchmark of the protocol layer of crypto/ (PROTOCOL.md §5, §7, §4.2):
 *  - keyring_seal and keyring_open (envelope, counters, replay window) at 64 B, 1 KiB and 16 KiB,
 *    with the bytes of overhead per message at the default padding of 16;
 *  - ann_build with 1, 10 and 50 entries (one X25519 + HKDF + wrap per entry, one signature);
 *  - the receiver's ann_parse + ann_verify + ann_find_entry + ann_unwrap of those announcements;
 *  - epoch_derive (one HKDF extract and three labelled expands).
 * Each is timed for about the given seconds after a short warm-up. Not a test.
 *
 * Output: one JSON line per measurement, e.g.
 *   {"op":"seal","size":64,"ns_per_msg":812.3,"mb_per_s":78.8,"overhead":44,"msgs":1231000}
 *   {"op":"ann_build","entries":10,"per_s":2712.0,"bytes":1131}
 * mb_per_s counts payload bytes in units of 10^6 per second.
 * Usage: bench_crypto [seconds per measurement, default 1]. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "announce.h"
#include "keyring.h"
#include "replay.h"

#define BENCH_MAX    16384
#define BENCH_BATCH  64 /* messages sealed, then opened, between clock reads */
#define BENCH_WARMUP 0.2
#define BENCH_PEERS  50
#define BENCH_TOPIC  "bench/sensors/temperature"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, enum px_err rc)
{
	fprintf(stderr, "bench_crypto: %s: %s\n", what, px_strerror(rc));
	exit(1);
}

static struct keyring *bench_ring(const char *self)
{
	struct keyring_params p = {.self_id = self,
				   .interval_s = 3600,
				   .padding = 16,
				   .replay_bits = REPLAY_BITS_DEFAULT,
				   .max_keys = 8};
	struct keyring *kr = NULL;
	enum px_err rc = keyring_new(&p, &kr);

	if (rc != PX_OK)
		die("keyring_new", rc);
	return kr;
}

/* A sender ring with an active epoch and a receiver ring holding its key. */
/* The receiving device's replay state, as the proxy keeps one per device (keyring_rx). */
static struct keyring_rx *bench_rx;

static void bench_pair(struct keyring **a, struct keyring **b)
{
	enum px_err rc;

	keyring_rx_free(bench_rx);
	if ((rc = keyring_rx_new(&bench_rx)) != PX_OK)
		die("keyring_rx_new", rc);
	*a = bench_ring("node-a");
	*b = bench_ring("node-b");
	if ((rc = keyring_epoch_create(*a, 1, 0)) != PX_OK || (rc = keyring_epoch_activate(*a, 0)) != PX_OK)
		die("epoch", rc);
	rc = keyring_recv_install(*b, "node-a", 1, keyring_newest_secret(*a), 3600, 0, 0);
	if (rc != PX_OK)
		die("keyring_recv_install", rc);
}

struct seal_run {
	double seal_s, open_s;
	unsigned long msgs;
};

/* Seals a batch into env[], then opens it: both timed separately. */
static void seal_open_batch(struct keyring *a, struct keyring *b, const uint8_t *payload, size_t size,
			    uint8_t *env, size_t elen, uint8_t *inner, struct seal_run *r)
{
	struct env_opened o;
	double t0, t1, t2;
	unsigned i;
	enum px_err rc;

	t0 = now_s();
	for (i = 0; i < BENCH_BATCH; i++) {
		rc = keyring_seal(a, 1, 0, (const uint8_t *)BENCH_TOPIC, strlen(BENCH_TOPIC), NULL, 0,
				  payload, size, env + (size_t)i * elen, elen);
		if (rc != PX_OK)
			die("keyring_seal", rc);
	}
	t1 = now_s();
	for (i = 0; i < BENCH_BATCH; i++) {
		rc = keyring_open(b, bench_rx, 1, (const uint8_t *)BENCH_TOPIC, strlen(BENCH_TOPIC),
				  env + (size_t)i * elen, elen, false, 0, inner, &o, NULL);
		if (rc != PX_OK || o.payload_len != size)
			die("keyring_open", rc);
	}
	t2 = now_s();
	r->seal_s += t1 - t0;
	r->open_s += t2 - t1;
	r->msgs += BENCH_BATCH;
}

static void bench_seal_open(size_t size, double secs)
{
	struct keyring *a, *b;
	struct seal_run r = {0};
	uint8_t *payload = calloc(1, BENCH_MAX), *env, *inner;
	size_t elen;
	double t_end;

	bench_pair(&a, &b);
	elen = keyring_sealed_size(a, 0, size);
	env = malloc(elen * BENCH_BATCH);
	inner = malloc(elen);
	if (!payload || !env || !inner)
		die("malloc", PX_ERR_NOMEM);
	for (t_end = now_s() + BENCH_WARMUP; now_s() < t_end;)
		seal_open_batch(a, b, payload, size, env, elen, inner, &r);
	memset(&r, 0, sizeof(r));
	while (r.seal_s + r.open_s < 2 * secs)
		seal_open_batch(a, b, payload, size, env, elen, inner, &r);
	printf("{\"op\":\"seal\",\"size\":%zu,\"ns_per_msg\":%.1f,\"mb_per_s\":%.1f,\"overhead\":%zu,"
	       "\"msgs\":%lu}\n",
	       size, r.seal_s * 1e9 / (double)r.msgs, (double)size * (double)r.msgs / r.seal_s / 1e6,
	       elen - size, r.msgs);
	printf("{\"op\":\"open\",\"size\":%zu,\"ns_per_msg\":%.1f,\"mb_per_s\":%.1f,\"overhead\":%zu,"
	       "\"msgs\":%lu}\n",
	       size, r.open_s * 1e9 / (double)r.msgs, (double)size * (double)r.msgs / r.open_s / 1e6,
	       elen - size, r.msgs);
	free(payload);
	free(env);
	free(inner);
	keyring_free(a);
	keyring_free(b);
}

struct ann_world {
	struct id_key *id;
	struct id_pub *pub;
	struct kex_key *eph, *peer_eph[BENCH_PEERS];
	char peer_id[BENCH_PEERS][16];
	struct ann_recipient r[BENCH_PEERS];
	uint8_t secret[ANN_SECRET_LEN];
};

static void ann_world_init(struct ann_world *w)
{
	uint8_t pub[ID_PUB_LEN];
	enum px_err rc;
	int i;

	if ((rc = id_key_generate(&w->id)) != PX_OK || (rc = id_key_public(w->id, pub)) != PX_OK ||
	    (rc = id_pub_new(pub, &w->pub)) != PX_OK || (rc = kex_key_generate(&w->eph)) != PX_OK)
		die("keys", rc);
	memset(w->secret, 0x5a, sizeof(w->secret));
	for (i = 0; i < BENCH_PEERS; i++) {
		snprintf(w->peer_id[i], sizeof(w->peer_id[i]), "peer-%02d", i);
		if ((rc = kex_key_generate(&w->peer_eph[i])) != PX_OK ||
		    (rc = kex_key_public(w->peer_eph[i], w->r[i].eph_pub)) != PX_OK)
			die("peer keys", rc);
		w->r[i].id = w->peer_id[i];
		w->r[i].acked_epoch = 1;
	}
}

static void ann_world_free(struct ann_world *w)
{
	int i;

	id_key_free(w->id);
	id_pub_free(w->pub);
	kex_key_free(w->eph);
	for (i = 0; i < BENCH_PEERS; i++)
		kex_key_free(w->peer_eph[i]);
}

static void ann_build_one(struct ann_world *w, size_t n, uint8_t **out, size_t *len)
{
	struct ann_params p = {.sender_id = "node-a",
			       .epoch = 1764085542,
			       .rev = 0,
			       .issued_at_ms = 1,
			       .interval_s = 3600,
			       .eph = w->eph,
			       .secret = w->secret,
			       .recipients = w->r,
			       .nrecipients = n};
	enum px_err rc = ann_build(w->id, "mqseal/keyex/node-a", &p, out, len);

	if (rc != PX_OK)
		die("ann_build", rc);
}

/* The receiver's path (§7.3 steps 6-8): parse, verify, find its entry (the last one), unwrap. */
static void ann_receive_one(const struct ann_world *w, size_t n, const uint8_t *buf, size_t len)
{
	uint8_t secret[ANN_SECRET_LEN];
	struct ann_view v;
	struct ann_entry e;
	enum px_err rc;

	if ((rc = ann_parse(buf, len, &v)) != PX_OK ||
	    (rc = ann_verify(&v, w->pub, "mqseal/keyex/node-a")) != PX_OK)
		die("ann_parse/verify", rc);
	if (!ann_find_entry(&v, w->peer_id[n - 1], &e))
		die("ann_find_entry", PX_ERR_MALFORMED);
	rc = ann_unwrap(&v, &e, w->peer_id[n - 1], w->peer_eph[n - 1], secret);
	if (rc != PX_OK)
		die("ann_unwrap", rc);
}

static void bench_announce(struct ann_world *w, size_t n, double secs)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	unsigned long k;
	double t0, t;

	for (k = 0, t0 = now_s(); (t = now_s() - t0) < secs || k == 0; k++) {
		free(buf);
		ann_build_one(w, n, &buf, &len);
	}
	printf("{\"op\":\"ann_build\",\"entries\":%zu,\"per_s\":%.1f,\"bytes\":%zu}\n", n, (double)k / t,
	       len);
	for (k = 0, t0 = now_s(); (t = now_s() - t0) < secs || k == 0; k++)
		ann_receive_one(w, n, buf, len);
	printf("{\"op\":\"ann_verify_unwrap\",\"entries\":%zu,\"per_s\":%.1f,\"bytes\":%zu}\n", n,
	       (double)k / t, len);
	free(buf);
}

static void bench_derive(double secs)
{
	static const uint8_t secret[ANN_SECRET_LEN] = {1};
	struct epoch_keys k;
	unsigned long n;
	double t0, t;
	enum px_err rc;

	for (n = 0, t0 = now_s(); (t = now_s() - t0) < secs || n == 0; n++)
		if ((rc = epoch_derive(secret, "node-a", n, ANN_SUITE_1, &k)) != PX_OK)
			die("epoch_derive", rc);
	printf("{\"op\":\"epoch_derive\",\"per_s\":%.1f}\n", (double)n / t);
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = {64, 1024, 16384};
	static const size_t entries[] = {1, 10, 50};
	double secs = argc > 1 ? atof(argv[1]) : 1.0;
	struct ann_world w;
	size_t i;

	if (secs <= 0 || secs > 600) {
		fprintf(stderr, "usage: bench_crypto [seconds per measurement, default 1]\n");
		return 1;
	}
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		bench_seal_open(sizes[i], secs);
	memset(&w, 0, sizeof(w));
	ann_world_init(&w);
	for (i = 0; i < sizeof(entries) / sizeof(entries[0]); i++)
		bench_announce(&w, entries[i], secs);
	ann_world_free(&w);
	bench_derive(secs);
	return 0;
}
