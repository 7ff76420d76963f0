/* bench_crypto.c - micro-benchmark of the protocol layer of crypto/ (PROTOCOL.md §5, §7, §4.2):
 *  - keyring_seal and keyring_open (envelope, counters, replay window) at 64 B, 1 KiB and 16 KiB,
 *    with the bytes of overhead per message at the default padding of 16;
 *  - ann_build with 1, 10 and 50 entries (one X25519 + HKDF + wrap per entry, one signature);
 *  - the receiver's ann_parse + ann_verify + ann_find_entry + ann_unwrap of those announcements;
 *  - epoch_derive (one HKDF extract and three labelled expands);
 *  - with --telemetry, the demo's telemetry messages (see tlm_* below).
 * Each is timed for about the given seconds after a short warm-up. Not a test.
 *
 * Output: one JSON line per measurement, e.g.
 *   {"op":"seal","size":64,"ns_per_msg":812.3,"mb_per_s":78.8,"overhead":50,"msgs":1231000}
 *   {"op":"ann_build","entries":10,"per_s":2712.0,"bytes":1131}
 *   {"op":"telemetry","rows":180,"msgs":..,"seal_ns":..,"open_ns":..,"payload_bytes":16.07,..}
 * mb_per_s counts payload bytes in units of 10^6 per second.
 * Usage: bench_crypto [--size N | --keys | --telemetry FILE] [seconds per measurement, default 1]
 *   --size N          only keyring_seal/keyring_open at N bytes
 *   --keys            only the announcements and epoch_derive
 *   --telemetry FILE  only the demo's readings (scripts/telemetry.csv): each row's payload and topic
 *                     as scripts/demo.py publishes them, sealed, then opened through a per-device
 *                     replay state; averages of time, payload, sealed size and overhead. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "announce.h"
#include "keyring.h"
#include "replay.h"

#define BENCH_MAX   16384
#define BENCH_BATCH 64 /* messages sealed, then opened, between clock reads */
/* ... but no more envelopes per batch than fit this many bytes: the batch stays in the L2 cache,
 * as a message the proxy seals or opens is in its buffer, fresh from the socket or about to go. */
#define BENCH_BATCH_BYTES ((size_t)128 * 1024)
#define BENCH_WARMUP	  0.2
#define BENCH_PEERS	  50
#define BENCH_TOPIC	  "bench/sensors/temperature"

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

/* The receiving device's replay state, as the proxy keeps one per device (keyring_rx). */
static struct keyring_rx *bench_rx;

/* A sender ring (sender) with an active epoch and a receiver ring (receiver) holding its key, and
 * a fresh bench_rx. */
static void bench_pair(const char *sender, const char *receiver, struct keyring **a, struct keyring **b)
{
	enum px_err rc;

	keyring_rx_free(bench_rx);
	if ((rc = keyring_rx_new(&bench_rx)) != PX_OK)
		die("keyring_rx_new", rc);
	*a = bench_ring(sender);
	*b = bench_ring(receiver);
	if ((rc = keyring_epoch_create(*a, 1, 0)) != PX_OK || (rc = keyring_epoch_activate(*a, 0)) != PX_OK)
		die("epoch", rc);
	rc = keyring_recv_install(*b, sender, 1, keyring_newest_secret(*a), 3600, 0, 0);
	if (rc != PX_OK)
		die("keyring_recv_install", rc);
}

struct seal_run {
	double seal_s, open_s;
	unsigned long msgs;
};

/* Seals a batch of n messages into env[], then opens them: both timed separately. */
static void seal_open_batch(struct keyring *a, struct keyring *b, const uint8_t *payload, size_t size,
			    uint8_t *env, size_t elen, size_t n, uint8_t *inner, struct seal_run *r)
{
	struct env_opened o;
	double t0, t1, t2;
	size_t i;
	enum px_err rc;

	t0 = now_s();
	for (i = 0; i < n; i++) {
		rc = keyring_seal(a, 1, 0, 0, (const uint8_t *)BENCH_TOPIC, strlen(BENCH_TOPIC), NULL, 0,
				  payload, size, env + i * elen, elen);
		if (rc != PX_OK)
			die("keyring_seal", rc);
	}
	t1 = now_s();
	for (i = 0; i < n; i++) {
		rc = keyring_open(b, bench_rx, 1, (const uint8_t *)BENCH_TOPIC, strlen(BENCH_TOPIC),
				  env + i * elen, elen, false, 0, inner, &o, NULL);
		if (rc != PX_OK || o.payload_len != size)
			die("keyring_open", rc);
	}
	t2 = now_s();
	r->seal_s += t1 - t0;
	r->open_s += t2 - t1;
	r->msgs += n;
}

static void bench_seal_open(size_t size, double secs)
{
	struct keyring *a, *b;
	struct seal_run r = {0};
	uint8_t *payload = calloc(1, BENCH_MAX), *env, *inner;
	size_t elen, n;
	double t_end;

	bench_pair("node-a", "node-b", &a, &b);
	elen = keyring_sealed_size(a, 0, size);
	n = BENCH_BATCH_BYTES / elen;
	n = n < 1 ? 1 : n > BENCH_BATCH ? BENCH_BATCH : n;
	env = malloc(elen * n);
	inner = malloc(elen);
	if (!payload || !env || !inner)
		die("malloc", PX_ERR_NOMEM);
	for (t_end = now_s() + BENCH_WARMUP; now_s() < t_end;)
		seal_open_batch(a, b, payload, size, env, elen, n, inner, &r);
	memset(&r, 0, sizeof(r));
	while (r.seal_s + r.open_s < 2 * secs)
		seal_open_batch(a, b, payload, size, env, elen, n, inner, &r);
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
	enum px_err rc = ann_build(w->id, "mqseal/kx/node-b/node-a", &p, out, len);

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
	    (rc = ann_verify(&v, w->pub, "mqseal/kx/node-b/node-a")) != PX_OK)
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

/* ---- --telemetry: the demo's readings, sealed and opened as the two demo nodes would ---- */
/* scripts/demo.py (reading()) publishes CSV row number seq (from 1) as payload
 * "#<seq> <temperature_c>C <humidity_pct>%" on topic "plant/<sensor>", with mosquitto_pub at QoS 1,
 * MQTT 3.1.1 (no properties) and no retain; the demo's sidecars seal with the default padding 16. */
#define TLM_HEADER   "second,sensor,temperature_c,humidity_pct"
#define TLM_ROOT     "plant" /* demo.py TOPIC_ROOT */
#define TLM_MAX_ROWS 100000  /* bounds the arrays; the sample has 180 rows */
#define TLM_FIELD    64	     /* a field of the sample is at most 11 bytes */

struct tlm_msg {
	char topic[TLM_FIELD + sizeof(TLM_ROOT)];
	char payload[3 * TLM_FIELD];
	size_t topic_len, payload_len, sealed_len, off; /* off: of its envelope in the pass buffer */
};

struct tlm_set {
	struct tlm_msg *m;
	size_t n, env_total, sealed_max;
};

/* Splits "second,sensor,temperature_c,humidity_pct" (newline removed) into msg number seq. */
static int tlm_row(char *line, size_t seq, struct tlm_msg *m)
{
	char *f[4], *save = NULL;
	size_t k;
	int n;

	for (k = 0; k < 4; k++) {
		f[k] = strtok_r(k ? NULL : line, ",", &save);
		if (!f[k] || strlen(f[k]) >= TLM_FIELD)
			return -1;
	}
	if (strtok_r(NULL, ",", &save))
		return -1;
	n = snprintf(m->topic, sizeof(m->topic), "%s/%s", TLM_ROOT, f[1]);
	if (n < 0 || (size_t)n >= sizeof(m->topic))
		return -1;
	m->topic_len = (size_t)n;
	n = snprintf(m->payload, sizeof(m->payload), "#%zu %sC %s%%", seq, f[2], f[3]);
	if (n < 0 || (size_t)n >= sizeof(m->payload))
		return -1;
	m->payload_len = (size_t)n;
	return 0;
}

/* Reads the CSV (header checked, every row well-formed and ending in a newline) into t. */
static void tlm_load(const char *path, struct tlm_set *t)
{
	char line[4 * TLM_FIELD + 8];
	size_t lineno = 0, len;
	FILE *f = fopen(path, "r");

	if (!f) {
		perror(path);
		exit(1);
	}
	t->m = calloc(TLM_MAX_ROWS, sizeof(*t->m));
	if (!t->m)
		die("calloc", PX_ERR_NOMEM);
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		len = strlen(line);
		if (len == 0 || line[len - 1] != '\n' || t->n == TLM_MAX_ROWS)
			goto bad;
		line[len - 1] = '\0';
		if (lineno == 1 ? strcmp(line, TLM_HEADER) != 0 : tlm_row(line, t->n + 1, &t->m[t->n]) != 0)
			goto bad;
		t->n += lineno > 1;
	}
	if (ferror(f) || t->n == 0)
		goto bad;
	fclose(f);
	return;
bad:
	fprintf(stderr, "bench_crypto: %s:%zu: not a telemetry row (or no rows at all)\n", path, lineno);
	exit(1);
}

/* Sizes every message's envelope under kr and lays them out one after the other. */
static void tlm_layout(const struct keyring *kr, struct tlm_set *t)
{
	size_t i;

	for (i = 0, t->env_total = t->sealed_max = 0; i < t->n; i++) {
		t->m[i].sealed_len = keyring_sealed_size(kr, 0, t->m[i].payload_len);
		t->m[i].off = t->env_total;
		t->env_total += t->m[i].sealed_len;
		if (t->m[i].sealed_len > t->sealed_max)
			t->sealed_max = t->m[i].sealed_len;
	}
}

/* One pass: every row sealed by a, then every envelope opened by b through bench_rx (the proxy's
 * per-device replay state); both timed. With check, the opened payloads are compared too. */
static void tlm_pass(struct keyring *a, struct keyring *b, const struct tlm_set *t, uint8_t *env,
		     uint8_t *inner, bool check, struct seal_run *r)
{
	const struct tlm_msg *m;
	struct env_opened o;
	double t0, t1, t2;
	size_t i;
	enum px_err rc;

	t0 = now_s();
	for (i = 0, m = t->m; i < t->n; i++, m++) {
		rc = keyring_seal(a, 1, 0, 0, (const uint8_t *)m->topic, m->topic_len, NULL, 0,
				  (const uint8_t *)m->payload, m->payload_len, env + m->off, m->sealed_len);
		if (rc != PX_OK)
			die("keyring_seal", rc);
	}
	t1 = now_s();
	for (i = 0, m = t->m; i < t->n; i++, m++) {
		rc = keyring_open(b, bench_rx, 1, (const uint8_t *)m->topic, m->topic_len, env + m->off,
				  m->sealed_len, false, 0, inner, &o, NULL);
		if (rc != PX_OK || o.payload_len != m->payload_len ||
		    (check && memcmp(o.payload, m->payload, m->payload_len) != 0))
			die("keyring_open", rc == PX_OK ? PX_ERR_MALFORMED : rc);
	}
	t2 = now_s();
	r->seal_s += t1 - t0;
	r->open_s += t2 - t1;
	r->msgs += t->n;
}

static void tlm_report(const struct tlm_set *t, const struct seal_run *r)
{
	size_t i, payload = 0, topic = 0, sealed = 0, omin = SIZE_MAX, omax = 0, o;
	double n = (double)t->n;

	for (i = 0; i < t->n; i++) {
		payload += t->m[i].payload_len;
		topic += t->m[i].topic_len;
		sealed += t->m[i].sealed_len;
		o = t->m[i].sealed_len - t->m[i].payload_len;
		omin = o < omin ? o : omin;
		omax = o > omax ? o : omax;
	}
	printf("{\"op\":\"telemetry\",\"rows\":%zu,\"msgs\":%lu,\"seal_ns\":%.1f,\"open_ns\":%.1f,"
	       "\"payload_bytes\":%.2f,\"topic_bytes\":%.2f,\"sealed_bytes\":%.2f,\"overhead_bytes\":%.2f,"
	       "\"overhead_min\":%zu,\"overhead_max\":%zu,\"padding\":16}\n",
	       t->n, r->msgs, r->seal_s * 1e9 / (double)r->msgs, r->open_s * 1e9 / (double)r->msgs,
	       (double)payload / n, (double)topic / n, (double)sealed / n, (double)(sealed - payload) / n,
	       omin, omax);
}

static void bench_telemetry(const char *path, double secs)
{
	struct tlm_set t = {0};
	struct seal_run r = {0};
	struct keyring *a, *b;
	uint8_t *env, *inner;
	double t_end;

	tlm_load(path, &t);
	bench_pair("sensor", "backend", &a, &b);
	tlm_layout(a, &t);
	if (t.env_total == 0)
		die("keyring_sealed_size", PX_ERR_INVAL);
	env = malloc(t.env_total);
	inner = malloc(t.sealed_max);
	if (!env || !inner)
		die("malloc", PX_ERR_NOMEM);
	tlm_pass(a, b, &t, env, inner, true, &r);
	for (t_end = now_s() + BENCH_WARMUP; now_s() < t_end;)
		tlm_pass(a, b, &t, env, inner, false, &r);
	memset(&r, 0, sizeof(r));
	while (r.seal_s + r.open_s < secs)
		tlm_pass(a, b, &t, env, inner, false, &r);
	tlm_report(&t, &r);
	free(env);
	free(inner);
	free(t.m);
	keyring_free(a);
	keyring_free(b);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_crypto [--size N | --keys | --telemetry FILE] [seconds per measurement, "
		"default 1]\n");
	exit(1);
}

/* The arguments: at most one option, then at most the seconds. */
static void parse_args(int argc, char **argv, size_t *size, bool *keys, const char **telemetry, double *secs)
{
	char *end;
	long n;
	int arg = 1;

	if (arg < argc && strcmp(argv[arg], "--keys") == 0) {
		*keys = true;
		arg++;
	} else if (arg + 1 < argc && strcmp(argv[arg], "--telemetry") == 0) {
		*telemetry = argv[arg + 1];
		arg += 2;
	} else if (arg + 1 < argc && strcmp(argv[arg], "--size") == 0) {
		n = strtol(argv[arg + 1], &end, 10);
		if (*end != '\0' || n < 1 || n > BENCH_MAX)
			usage();
		*size = (size_t)n;
		arg += 2;
	}
	if (arg < argc) {
		*secs = strtod(argv[arg++], &end);
		if (*end != '\0' || !(*secs > 0 && *secs <= 600))
			usage();
	}
	if (arg < argc)
		usage();
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = {64, 1024, 16384};
	static const size_t entries[] = {1}; /* protocol v2: one recipient per announcement */
	const char *telemetry = NULL;
	double secs = 1.0;
	struct ann_world w;
	size_t i, size = 0;
	bool keys = false;

	parse_args(argc, argv, &size, &keys, &telemetry, &secs);
	if (telemetry || size) {
		if (telemetry)
			bench_telemetry(telemetry, secs);
		else
			bench_seal_open(size, secs);
		keyring_rx_free(bench_rx);
		return 0;
	}
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && !keys; i++)
		bench_seal_open(sizes[i], secs);
	memset(&w, 0, sizeof(w));
	ann_world_init(&w);
	for (i = 0; i < sizeof(entries) / sizeof(entries[0]); i++)
		bench_announce(&w, entries[i], secs);
	ann_world_free(&w);
	bench_derive(secs);
	keyring_rx_free(bench_rx);
	return 0;
}
