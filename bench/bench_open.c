/* bench_open.c - micro-benchmark of opening one sealed PUBLISH payload from the input buffer into
 * the device's output buffer, the two ways mqseal has done it (issue 18, item 2):
 *   "copy":  pull the frame up into one piece (evbuffer_pullup), open it into a scratch buffer
 *            (keyring_open_decide), then copy header and payload into the output (evbuffer_add):
 *            what seal_open did before seal_open_pieces;
 *   "chain": open from the input's chains (evbuffer_peek, keyring_open_parts) into space reserved
 *            in a chain of its own, write the header into the output and move the chain in behind
 *            it (evbuffer_add_buffer): what seal_open_pieces does for a large message.
 * The input holds the envelope as the relay's reads leave it: chains of at most 64 KiB (its direct
 * reads, SESSION_READ_BATCH) after a 30-byte MQTT header. Timed in thread CPU time (other
 * processes do not count): refilling the input and draining the output, measured alone, are
 * subtracted.
 *
 * Output: one JSON line per (way, size):
 *   {"op":"open-chain","size":16384,"ns_per_msg":5123.4,"mb_per_s":3198.0,"msgs":20000}
 * Usage: bench_open [seconds per measurement, default 1]. Sizes: 16 KiB and 256 KiB. Not a test. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "keyring.h"

#define BENCH_TOPIC "bench/open/topic"
#define BENCH_HEAD  30	     /* an MQTT fixed and variable header, roughly */
#define BENCH_READ  65536    /* the relay's direct reads */

struct bench_world {
	struct keyring *a, *b;
	struct keyring_rx *rx;
	uint8_t *env, *scratch, head[BENCH_HEAD];
	size_t elen;
	struct evbuffer *in, *out, *stage;
};

static void die(const char *what, enum px_err rc)
{
	fprintf(stderr, "bench_open: %s: %s\n", what, px_strerror(rc));
	exit(1);
}

static struct keyring *bench_ring(const char *self)
{
	struct keyring_params p = {.self_id = self, .interval_s = 3600, .padding = 16, .replay_bits = 8192,
				   .max_keys = 8};
	struct keyring *kr = NULL;
	enum px_err rc = keyring_new(&p, &kr);

	if (rc != PX_OK)
		die("keyring_new", rc);
	return kr;
}

/* Sealer a, opener b, one envelope of a size-byte payload. */
static void world_init(struct bench_world *w, size_t size)
{
	uint8_t *payload = calloc(1, size);
	enum px_err rc;

	memset(w, 0, sizeof(*w));
	w->a = bench_ring("node-a");
	w->b = bench_ring("node-b");
	if ((rc = keyring_epoch_create(w->a, 1, 0)) != PX_OK || (rc = keyring_epoch_activate(w->a, 0)) != PX_OK ||
	    (rc = keyring_recv_install(w->b, "node-a", 1, keyring_newest_secret(w->a), 3600, 0, 0)) != PX_OK ||
	    (rc = keyring_rx_new(&w->rx)) != PX_OK)
		die("keys", rc);
	w->elen = keyring_sealed_size(w->a, 0, size);
	w->env = malloc(w->elen);
	w->scratch = malloc(w->elen);
	w->in = evbuffer_new();
	w->out = evbuffer_new();
	w->stage = evbuffer_new();
	if (!payload || !w->env || !w->scratch || !w->in || !w->out || !w->stage)
		die("malloc", PX_ERR_NOMEM);
	rc = keyring_seal(w->a, 1, 0, 0, (const uint8_t *)BENCH_TOPIC, strlen(BENCH_TOPIC), NULL, 0, payload, size,
			  w->env, w->elen);
	if (rc != PX_OK)
		die("keyring_seal", rc);
	memset(w->head, 0x30, sizeof(w->head));
	free(payload);
}

static void world_free(struct bench_world *w)
{
	evbuffer_free(w->in);
	evbuffer_free(w->out);
	evbuffer_free(w->stage);
	free(w->env);
	free(w->scratch);
	keyring_rx_free(w->rx);
	keyring_free(w->a);
	keyring_free(w->b);
}

/* The input as the relay reads it: header and envelope in chains of at most BENCH_READ bytes. */
static void world_fill(struct bench_world *w)
{
	struct evbuffer_iovec v;
	size_t off = 0, k;

	evbuffer_drain(w->in, evbuffer_get_length(w->in));
	evbuffer_drain(w->out, evbuffer_get_length(w->out));
	while (off < BENCH_HEAD + w->elen) {
		k = BENCH_HEAD + w->elen - off < BENCH_READ ? BENCH_HEAD + w->elen - off : BENCH_READ;
		if (evbuffer_reserve_space(w->in, (ev_ssize_t)k, &v, 1) != 1)
			die("reserve", PX_ERR_NOMEM);
		if (off < BENCH_HEAD) { /* the first read holds the header too */
			memcpy(v.iov_base, w->head, BENCH_HEAD);
			memcpy((uint8_t *)v.iov_base + BENCH_HEAD, w->env, k - BENCH_HEAD);
		} else {
			memcpy(v.iov_base, w->env + off - BENCH_HEAD, k);
		}
		v.iov_len = k;
		if (evbuffer_commit_space(w->in, &v, 1) != 0)
			die("commit", PX_ERR_NOMEM);
		off += k;
	}
}

/* How many chains the input is in (the copy way pulls up all but a single one). */
static int world_chains(struct bench_world *w)
{
	return evbuffer_peek(w->in, -1, NULL, NULL, 0);
}

static void open_copy(struct bench_world *w)
{
	const uint8_t *p = evbuffer_pullup(w->in, -1);
	struct kr_opened k;
	enum px_err rc;

	if (!p)
		die("pullup", PX_ERR_NOMEM);
	rc = keyring_open_decide(w->b, w->rx, 1, (const uint8_t *)BENCH_TOPIC, strlen(BENCH_TOPIC), p + BENCH_HEAD,
				 w->elen, w->scratch, &k);
	if (rc != PX_OK || evbuffer_add(w->out, w->head, BENCH_HEAD) != 0 ||
	    evbuffer_add(w->out, k.o.payload, k.o.payload_len) != 0)
		die("open (copy)", rc);
}

static void open_chain(struct bench_world *w)
{
	struct evbuffer_iovec iv[ENV_PARTS_MAX], v;
	struct aead_part parts[ENV_PARTS_MAX];
	struct evbuffer_ptr pos;
	struct kr_opened k;
	size_t left = w->elen, skip;
	int n, i;
	enum px_err rc;

	if (evbuffer_ptr_set(w->in, &pos, BENCH_HEAD, EVBUFFER_PTR_SET) != 0 ||
	    (n = evbuffer_peek(w->in, (ev_ssize_t)left, &pos, iv, ENV_PARTS_MAX)) <= 0 || n > ENV_PARTS_MAX)
		die("peek", PX_ERR_INVAL);
	for (i = 0; i < n; i++) {
		parts[i] = (struct aead_part){iv[i].iov_base, iv[i].iov_len < left ? iv[i].iov_len : left};
		left -= parts[i].len;
	}
	if (evbuffer_reserve_space(w->stage, (ev_ssize_t)(w->elen - ENV_OVERHEAD), &v, 1) != 1)
		die("reserve", PX_ERR_NOMEM);
	rc = keyring_open_parts(w->b, w->rx, 1, (const uint8_t *)BENCH_TOPIC, strlen(BENCH_TOPIC), parts,
				(size_t)n, v.iov_base, &k);
	if (rc != PX_OK)
		die("open (chain)", rc);
	skip = (size_t)(k.o.payload - (const uint8_t *)v.iov_base);
	v.iov_len = skip + k.o.payload_len;
	if (evbuffer_add(w->out, w->head, BENCH_HEAD) != 0 || evbuffer_commit_space(w->stage, &v, 1) != 0 ||
	    evbuffer_drain(w->stage, skip) != 0 || evbuffer_add_buffer(w->out, w->stage) != 0)
		die("output", PX_ERR_NOMEM);
}

/* Thread CPU time, so that other processes on the machine do not count. */
static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void op_none(struct bench_world *w)
{
	(void)w;
}

/* CPU seconds per message of refilling the input and then op, over about secs. */
static double per_msg(struct bench_world *w, void (*op)(struct bench_world *), double secs, unsigned long *msgs)
{
	double t0 = cpu_s();
	unsigned long n = 0;

	while (cpu_s() - t0 < secs) {
		world_fill(w);
		op(w);
		n++;
	}
	*msgs = n;
	return (cpu_s() - t0) / (double)n;
}

static void measure(const char *name, void (*op)(struct bench_world *), size_t size, double secs)
{
	struct bench_world w;
	unsigned long msgs, fills;
	double t_op, t_fill;

	world_init(&w, size);
	world_fill(&w);
	fprintf(stderr, "bench_open: %s %zu: input in %d chains\n", name, size, world_chains(&w));
	(void)per_msg(&w, op, 0.2, &msgs); /* warm-up */
	t_fill = per_msg(&w, op_none, secs / 2, &fills);
	t_op = per_msg(&w, op, secs, &msgs) - t_fill;
	printf("{\"op\":\"%s\",\"size\":%zu,\"ns_per_msg\":%.1f,\"mb_per_s\":%.1f,\"msgs\":%lu}\n", name, size,
	       t_op * 1e9, (double)size / t_op / 1e6, msgs);
	world_free(&w);
}

int main(int argc, char **argv)
{
	static const size_t sizes[] = {16384, 262144};
	double secs = argc > 1 ? atof(argv[1]) : 1.0;
	size_t i;

	if (secs <= 0)
		secs = 1.0;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		measure("open-copy", open_copy, sizes[i], secs);
		measure("open-chain", open_chain, sizes[i], secs);
	}
	return 0;
}
