/* mqbench.c - MQTT load generator for bench/run.sh.
 *
 * One subscriber connects and subscribes to a fresh topic first, then K publishers send N messages
 * of S bytes. Every payload starts with a 16-byte header (magic, publisher index, message id,
 * CLOCK_MONOTONIC send time), so the subscriber can count losses, duplicates and reordering and
 * compute one-way latency (publisher and subscriber share this process and this clock).
 * At the end one JSON line goes to stdout: rates, latency percentiles and, for every --watch
 * process, its CPU seconds (utime+stime from /proc/<pid>/stat) and peak RSS (VmHWM).
 *
 * All clients run on one thread: libmosquitto is driven from a ppoll() loop through
 * mosquitto_socket()/loop_read/loop_write/loop_misc, so the generator itself has no locks and its
 * CPU cost stays small and comparable across the paths under test. Every loop is bounded in count
 * and in time. Exit status: 0 run completed (losses are reported, not fatal), 1 usage,
 * 2 connect/subscribe failure, 3 the run broke off (a client was disconnected, publish failed).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#define MQB_KEEPALIVE 60
/* Reads per readable socket per wake-up: enough to drain a burst, small enough to stay fair. */
#define MQB_READ_BURST 64
/* Messages queued per loop iteration before the sockets are serviced again. */
#define MQB_SEND_BURST 64
/* Longest sleep of the loop: bounds how late the quiet-period and timeout checks can fire. */
#define MQB_TICK_NS 20000000ull
#define MQB_MAGIC   0x4d42u /* "MB" */
#define MQB_HDR_LEN 16	    /* magic, publisher, id, send time: see mqb_header_write */
/* No delivery and no send for this long ends a run: nothing is in flight any more (lost). */
#define MQB_QUIET_S 2.0
/* Caps that bound every allocation before it is made: the bitmap and the latency array are sized
 * by count (10M ids -> 41 MB), the payload buffer by size (MQTT allows 256 MB, we need 256 KiB),
 * the poll set by publishers (each one is a socket; 1000 fits a raised descriptor limit). */
#define MQB_MAX_COUNT	   10000000L
#define MQB_MAX_SIZE	   (16L * 1024 * 1024)
#define MQB_MAX_PUBLISHERS 1000L
#define MQB_MAX_WINDOW	   65535L /* MQTT 5 Receive Maximum is a u16 (MQTT 5 section 3.1.2.11.3) */
#define MQB_MAX_WATCH	   16
#define MQB_NAME_MAX	   32
#define MQB_NAME_CHARS	   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"

/* A process whose CPU time and peak RSS the run reports (--watch name=pid). */
struct mqb_watch {
	char name[MQB_NAME_MAX];
	pid_t pid;
	double cpu0, cpu1; /* utime+stime in seconds, before and after the run; < 0 if unreadable */
	long hwm_kb;	   /* VmHWM after the run; -1 if unreadable */
};

struct mqb_opts {
	const char *pub_host, *sub_host, *prefix, *label;
	int pub_port, sub_port, qos, mqtt;
	size_t size;
	uint32_t count, window, publishers;
	double rate, timeout;
	struct mqb_watch watch[MQB_MAX_WATCH + 1]; /* [0] is mqbench itself */
	size_t nwatch;
};

/* One libmosquitto client and what its callbacks learned. */
struct mqb_conn {
	struct mosquitto *m;
	struct mqb_run *run;
	int connack;   /* -1 until CONNACK, then its return code */
	bool subacked; /* subscriber only: SUBACK granted the QoS */
	bool lost;     /* disconnected after CONNACK */
};

/* One publishing client: it sends the ids [first, first + n) in increasing order. */
struct mqb_pub {
	struct mqb_conn conn;
	uint32_t first;
	uint32_t n;
	uint32_t next;	  /* ids sent so far */
	uint32_t last_rx; /* highest id of this publisher received so far */
	bool any_rx;
};

struct mqb_run {
	struct mqb_opts *o;
	char topic[256];
	struct mqb_conn sub;
	struct mqb_pub *pubs;
	struct pollfd *pfd;
	struct mqb_conn **pconn; /* pfd[i] belongs to pconn[i] */
	unsigned char *payload;
	uint8_t *seen; /* bitmap over message ids */
	float *lat_us; /* one entry per first delivery */
	uint32_t rr;   /* next publisher to try */
	uint64_t sent, delivered, duplicated, out_of_order, corrupt;
	uint64_t t_start, t_first_send, t_last_rx, t_progress;
	const char *error;
	bool quiet; /* ended by the quiet period */
};

static uint64_t mqb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void mqb_put_u16(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void mqb_put_u32(unsigned char *p, uint32_t v)
{
	mqb_put_u16(p, v >> 16);
	mqb_put_u16(p + 2, v & 0xffffu);
}

static uint32_t mqb_get_u16(const unsigned char *p)
{
	return (uint32_t)p[0] << 8 | p[1];
}

static uint32_t mqb_get_u32(const unsigned char *p)
{
	return mqb_get_u16(p) << 16 | mqb_get_u16(p + 2);
}

/* Payload header, big-endian: magic u16 | publisher u16 | id u32 | send time ns u64. */
static void mqb_header_write(unsigned char *p, uint32_t pub, uint32_t id, uint64_t t_ns)
{
	mqb_put_u16(p, MQB_MAGIC);
	mqb_put_u16(p + 2, pub);
	mqb_put_u32(p + 4, id);
	mqb_put_u32(p + 8, (uint32_t)(t_ns >> 32));
	mqb_put_u32(p + 12, (uint32_t)t_ns);
}

/* ---- receiving ------------------------------------------------------------------------------- */

static bool mqb_seen_test_and_set(uint8_t *bits, uint32_t id)
{
	uint8_t mask = (uint8_t)(1u << (id & 7u));
	bool was = (bits[id >> 3] & mask) != 0;

	bits[id >> 3] = (uint8_t)(bits[id >> 3] | mask);
	return was;
}

/* Checks the header against what this run sent; returns the publisher or NULL if it is foreign. */
static struct mqb_pub *mqb_header_check(struct mqb_run *r, const unsigned char *p, size_t len, uint32_t *id)
{
	uint32_t pub;

	if (len != r->o->size || mqb_get_u16(p) != MQB_MAGIC)
		return NULL;
	pub = mqb_get_u16(p + 2);
	*id = mqb_get_u32(p + 4);
	if (pub >= r->o->publishers)
		return NULL;
	if (*id < r->pubs[pub].first || *id - r->pubs[pub].first >= r->pubs[pub].n)
		return NULL;
	return &r->pubs[pub];
}

static void mqb_on_payload(struct mqb_run *r, const unsigned char *p, size_t len, uint64_t now)
{
	struct mqb_pub *pub;
	uint32_t id = 0;
	uint64_t t_send;

	pub = len >= MQB_HDR_LEN ? mqb_header_check(r, p, len, &id) : NULL;
	if (pub == NULL) {
		r->corrupt++;
		return;
	}
	if (mqb_seen_test_and_set(r->seen, id)) {
		r->duplicated++;
		return;
	}
	if (pub->any_rx && id < pub->last_rx)
		r->out_of_order++;
	else
		pub->last_rx = id;
	pub->any_rx = true;
	t_send = (uint64_t)mqb_get_u32(p + 8) << 32 | mqb_get_u32(p + 12);
	r->lat_us[r->delivered++] = now > t_send ? (float)((double)(now - t_send) / 1000.0) : 0.0f;
	r->t_last_rx = now;
	r->t_progress = now;
}

/* ---- libmosquitto callbacks ------------------------------------------------------------------ */

static void mqb_on_connect(struct mosquitto *m, void *obj, int rc)
{
	struct mqb_conn *c = obj;

	(void)m;
	c->connack = rc;
}

static void mqb_on_disconnect(struct mosquitto *m, void *obj, int rc)
{
	struct mqb_conn *c = obj;

	(void)m;
	(void)rc;
	c->lost = true;
}

static void mqb_on_subscribe(struct mosquitto *m, void *obj, int mid, int n, const int *granted)
{
	struct mqb_conn *c = obj;

	(void)m;
	(void)mid;
	c->subacked = n == 1 && granted[0] == c->run->o->qos;
}

static void mqb_on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
	struct mqb_conn *c = obj;

	(void)m;
	if (msg->payloadlen < 0)
		return;
	mqb_on_payload(c->run, msg->payload, (size_t)msg->payloadlen, mqb_now_ns());
}

/* ---- clients --------------------------------------------------------------------------------- */

/* Receive Maximum (MQTT 5 section 3.1.2.11.3) is set to its maximum: --window bounds what is in flight,
 * and with libmosquitto 2.0.11's default of 20 a QoS 2 subscription failed after 20 messages with a
 * protocol error (measured). Send Maximum follows the window so libmosquitto does not hold messages
 * back below it. */
static int mqb_conn_setup(struct mqb_conn *c, struct mqb_run *r, const char *id)
{
	int ver = r->o->mqtt == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311;

	c->run = r;
	c->connack = -1;
	c->m = mosquitto_new(id, true, c);
	if (c->m == NULL)
		return -1;
	if (mosquitto_int_option(c->m, MOSQ_OPT_PROTOCOL_VERSION, ver) != MOSQ_ERR_SUCCESS ||
	    mosquitto_int_option(c->m, MOSQ_OPT_TCP_NODELAY, 1) != MOSQ_ERR_SUCCESS ||
	    mosquitto_int_option(c->m, MOSQ_OPT_RECEIVE_MAXIMUM, MQB_MAX_WINDOW) != MOSQ_ERR_SUCCESS ||
	    mosquitto_int_option(c->m, MOSQ_OPT_SEND_MAXIMUM, (int)r->o->window) != MOSQ_ERR_SUCCESS)
		return -1;
	mosquitto_connect_callback_set(c->m, mqb_on_connect);
	mosquitto_disconnect_callback_set(c->m, mqb_on_disconnect);
	mosquitto_subscribe_callback_set(c->m, mqb_on_subscribe);
	mosquitto_message_callback_set(c->m, mqb_on_message);
	return 0;
}

static int mqb_conn_start(struct mqb_conn *c, const char *host, int port)
{
	int rc = mosquitto_connect(c->m, host, port, MQB_KEEPALIVE);

	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "mqbench: connect to %s:%d: %s\n", host, port,
			rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
		return -1;
	}
	return 0;
}

/* Reads until the socket would block (bounded), then writes and does keepalive work. */
static int mqb_conn_service(struct mqb_conn *c, short revents)
{
	int rc = MOSQ_ERR_SUCCESS;

	if (revents & (POLLIN | POLLERR | POLLHUP)) {
		for (int i = 0; i < MQB_READ_BURST && rc == MOSQ_ERR_SUCCESS; i++) {
			errno = 0;
			rc = mosquitto_loop_read(c->m, 1);
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
		}
	}
	if (rc == MOSQ_ERR_SUCCESS && (revents & POLLOUT))
		rc = mosquitto_loop_write(c->m, 1);
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_loop_misc(c->m);
	if (rc != MOSQ_ERR_SUCCESS)
		c->lost = true;
	return rc == MOSQ_ERR_SUCCESS ? 0 : -1;
}

/* ---- the loop -------------------------------------------------------------------------------- */

static size_t mqb_poll_fill(struct mqb_run *r)
{
	size_t n = 0;

	for (uint32_t i = 0; i <= r->o->publishers; i++) {
		struct mqb_conn *c = i == 0 ? &r->sub : &r->pubs[i - 1].conn;
		int fd = c->m != NULL ? mosquitto_socket(c->m) : -1;

		if (fd < 0)
			continue;
		r->pfd[n].fd = fd;
		r->pfd[n].events = (short)(POLLIN | (mosquitto_want_write(c->m) ? POLLOUT : 0));
		r->pfd[n].revents = 0;
		r->pconn[n++] = c;
	}
	return n;
}

/* Waits for socket events (at most wait_ns) and services every client that has some. */
static int mqb_poll_once(struct mqb_run *r, uint64_t wait_ns)
{
	struct timespec ts = {(time_t)(wait_ns / 1000000000ull), (long)(wait_ns % 1000000000ull)};
	size_t n = mqb_poll_fill(r);
	int rc = ppoll(r->pfd, n, &ts, NULL);

	if (rc < 0)
		return errno == EINTR ? 0 : -1;
	for (size_t i = 0; i < n; i++) {
		if (mqb_conn_service(r->pconn[i], r->pfd[i].revents) != 0)
			return -1;
	}
	return 0;
}

/* Rate pacing: message number `sent` is due at t_first_send + sent / rate. */
static uint64_t mqb_due_ns(const struct mqb_run *r)
{
	if (r->o->rate <= 0.0 || r->sent == 0)
		return 0;
	return r->t_first_send + (uint64_t)((double)r->sent * 1e9 / r->o->rate);
}

/* A publisher may queue its next message when it has one left and its socket took the last one. */
static bool mqb_pub_ready(const struct mqb_pub *p)
{
	return p->next < p->n && !mosquitto_want_write(p->conn.m);
}

static struct mqb_pub *mqb_pub_pick(struct mqb_run *r)
{
	for (uint32_t k = 0; k < r->o->publishers; k++) {
		struct mqb_pub *p = &r->pubs[(r->rr + k) % r->o->publishers];

		if (mqb_pub_ready(p)) {
			r->rr = (r->rr + k + 1) % r->o->publishers;
			return p;
		}
	}
	return NULL;
}

static int mqb_send_one(struct mqb_run *r, struct mqb_pub *p, uint64_t now)
{
	uint32_t id = p->first + p->next;
	int rc;

	mqb_header_write(r->payload, (uint32_t)(p - r->pubs), id, now);
	rc = mosquitto_publish(p->conn.m, NULL, r->topic, (int)r->o->size, r->payload, r->o->qos, false);
	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "mqbench: publish: %s\n", mosquitto_strerror(rc));
		return -1;
	}
	if (r->sent == 0)
		r->t_first_send = now;
	p->next++;
	r->sent++;
	r->t_progress = now;
	return 0;
}

/* Queues up to MQB_SEND_BURST messages that the window, the rate and the sockets allow. Returns the
 * time until the next message is due (0: more could go now), or -1 on a publish failure. */
static int64_t mqb_send_some(struct mqb_run *r)
{
	for (int i = 0; i < MQB_SEND_BURST; i++) {
		uint64_t now = mqb_now_ns(), due = mqb_due_ns(r);
		struct mqb_pub *p;

		if (r->sent >= r->o->count || r->sent - r->delivered >= r->o->window)
			return (int64_t)MQB_TICK_NS;
		if (due > now)
			return (int64_t)(due - now);
		p = mqb_pub_pick(r);
		if (p == NULL)
			return (int64_t)MQB_TICK_NS;
		if (mqb_send_one(r, p, now) != 0)
			return -1;
	}
	return 0;
}

/* The run is over when everything arrived, nothing moved for the quiet period, or time is up. */
static bool mqb_finished(struct mqb_run *r, uint64_t now)
{
	double quiet = fmax(MQB_QUIET_S, r->o->rate > 0.0 ? 3.0 / r->o->rate : 0.0);

	if (r->delivered >= r->o->count)
		return true;
	if ((double)(now - r->t_progress) > quiet * 1e9) {
		r->quiet = true;
		return true;
	}
	return (double)(now - r->t_start) > r->o->timeout * 1e9;
}

static bool mqb_any_lost(const struct mqb_run *r)
{
	if (r->sub.lost)
		return true;
	for (uint32_t i = 0; i < r->o->publishers; i++) {
		if (r->pubs[i].conn.lost)
			return true;
	}
	return false;
}

static int mqb_run_loop(struct mqb_run *r)
{
	r->t_start = r->t_progress = mqb_now_ns();
	while (!mqb_finished(r, mqb_now_ns())) {
		int64_t wait = mqb_send_some(r);

		if (wait < 0) {
			r->error = "publish failed";
			return -1;
		}
		if (mqb_poll_once(r, (uint64_t)wait < MQB_TICK_NS ? (uint64_t)wait : MQB_TICK_NS) != 0 ||
		    mqb_any_lost(r)) {
			r->error = "client disconnected";
			return -1;
		}
	}
	return 0;
}

/* ---- setup ----------------------------------------------------------------------------------- */

static bool mqb_all_connacked(const struct mqb_run *r)
{
	for (uint32_t i = 0; i < r->o->publishers; i++) {
		if (r->pubs[i].conn.connack != MOSQ_ERR_SUCCESS)
			return false;
	}
	return r->sub.connack == MOSQ_ERR_SUCCESS;
}

/* Polls until cond holds, a client failed, or the deadline passes. */
static int mqb_wait(struct mqb_run *r, bool (*cond)(const struct mqb_run *r), uint64_t deadline)
{
	while (!cond(r)) {
		if (mqb_now_ns() > deadline || mqb_any_lost(r) || r->sub.connack > 0)
			return -1;
		for (uint32_t i = 0; i < r->o->publishers; i++) {
			if (r->pubs[i].conn.connack > 0)
				return -1;
		}
		if (mqb_poll_once(r, MQB_TICK_NS) != 0)
			return -1;
	}
	return 0;
}

static bool mqb_sub_ready(const struct mqb_run *r)
{
	return r->sub.connack == MOSQ_ERR_SUCCESS;
}

static bool mqb_sub_subscribed(const struct mqb_run *r)
{
	return r->sub.subacked;
}

/* Splits the N ids into K contiguous ranges, the first N % K publishers taking one more. */
static void mqb_pubs_split(struct mqb_run *r)
{
	uint32_t k = r->o->publishers, base = r->o->count / k, extra = r->o->count % k, next = 0;

	for (uint32_t i = 0; i < k; i++) {
		r->pubs[i].first = next;
		r->pubs[i].n = base + (i < extra ? 1u : 0u);
		next += r->pubs[i].n;
	}
}

static int mqb_connect_all(struct mqb_run *r)
{
	uint64_t deadline = mqb_now_ns() + (uint64_t)(r->o->timeout * 1e9);
	char id[64];

	snprintf(id, sizeof(id), "mqbench-%ld-s", (long)getpid());
	if (mqb_conn_setup(&r->sub, r, id) != 0 ||
	    mqb_conn_start(&r->sub, r->o->sub_host, r->o->sub_port) != 0 ||
	    mqb_wait(r, mqb_sub_ready, deadline) != 0 ||
	    mosquitto_subscribe(r->sub.m, NULL, r->topic, r->o->qos) != MOSQ_ERR_SUCCESS ||
	    mqb_wait(r, mqb_sub_subscribed, deadline) != 0) {
		fprintf(stderr, "mqbench: subscriber on %s:%d failed (connack %d)\n", r->o->sub_host,
			r->o->sub_port, r->sub.connack);
		return -1;
	}
	for (uint32_t i = 0; i < r->o->publishers; i++) {
		snprintf(id, sizeof(id), "mqbench-%ld-p%" PRIu32, (long)getpid(), i);
		if (mqb_conn_setup(&r->pubs[i].conn, r, id) != 0 ||
		    mqb_conn_start(&r->pubs[i].conn, r->o->pub_host, r->o->pub_port) != 0)
			return -1;
	}
	if (mqb_wait(r, mqb_all_connacked, deadline) != 0) {
		fprintf(stderr, "mqbench: publishers on %s:%d did not all connect\n", r->o->pub_host,
			r->o->pub_port);
		return -1;
	}
	return 0;
}

/* The topic is unique per run: prefix/pid-time-random, so no retained or stale traffic mixes in. */
static void mqb_topic_make(struct mqb_run *r)
{
	uint32_t rnd = 0;

	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd))
		rnd = (uint32_t)mqb_now_ns();
	snprintf(r->topic, sizeof(r->topic), "%s/%ld-%lld-%08" PRIx32, r->o->prefix, (long)getpid(),
		 (long long)time(NULL), rnd);
}

/* All sizes come from validated options (count <= MQB_MAX_COUNT, size <= MQB_MAX_SIZE, ...). */
static int mqb_run_alloc(struct mqb_run *r)
{
	size_t nconn = (size_t)r->o->publishers + 1;

	r->pubs = calloc(r->o->publishers, sizeof(*r->pubs));
	r->pfd = calloc(nconn, sizeof(*r->pfd));
	r->pconn = calloc(nconn, sizeof(*r->pconn));
	r->payload = calloc(1, r->o->size);
	r->seen = calloc((size_t)r->o->count / 8 + 1, 1);
	r->lat_us = calloc(r->o->count, sizeof(*r->lat_us));
	if (!r->pubs || !r->pfd || !r->pconn || !r->payload || !r->seen || !r->lat_us)
		return -1;
	for (size_t i = MQB_HDR_LEN; i < r->o->size; i++)
		r->payload[i] = (unsigned char)(i * 131u);
	return 0;
}

static void mqb_run_free(struct mqb_run *r)
{
	if (r->pubs != NULL) {
		for (uint32_t i = 0; i < r->o->publishers; i++)
			mosquitto_destroy(r->pubs[i].conn.m);
	}
	mosquitto_destroy(r->sub.m);
	free(r->pubs);
	free(r->pfd);
	free(r->pconn);
	free(r->payload);
	free(r->seen);
	free(r->lat_us);
}

/* ---- options --------------------------------------------------------------------------------- */

enum mqb_kind { MQB_STR, MQB_INT, MQB_U32, MQB_SIZE, MQB_DBL, MQB_WATCH };

/* One command-line option: its kind, its range and where it lands in struct mqb_opts. */
struct mqb_optdef {
	const char *name;
	enum mqb_kind kind;
	double min, max;
	size_t off;
};

#define MQB_OFF(field) offsetof(struct mqb_opts, field)
static const struct mqb_optdef mqb_optdefs[] = {
	{"pub-host", MQB_STR, 0, 0, MQB_OFF(pub_host)},
	{"pub-port", MQB_INT, 1, 65535, MQB_OFF(pub_port)},
	{"sub-host", MQB_STR, 0, 0, MQB_OFF(sub_host)},
	{"sub-port", MQB_INT, 1, 65535, MQB_OFF(sub_port)},
	{"size", MQB_SIZE, MQB_HDR_LEN, MQB_MAX_SIZE, MQB_OFF(size)},
	{"count", MQB_U32, 1, MQB_MAX_COUNT, MQB_OFF(count)},
	{"qos", MQB_INT, 0, 2, MQB_OFF(qos)},
	{"rate", MQB_DBL, 0, 1e7, MQB_OFF(rate)},
	{"window", MQB_U32, 1, MQB_MAX_WINDOW, MQB_OFF(window)},
	{"publishers", MQB_U32, 1, MQB_MAX_PUBLISHERS, MQB_OFF(publishers)},
	{"topic-prefix", MQB_STR, 0, 0, MQB_OFF(prefix)},
	{"mqtt", MQB_INT, 0, 311, MQB_OFF(mqtt)},
	{"watch", MQB_WATCH, 1, 2147483647, MQB_OFF(nwatch)},
	{"label", MQB_STR, 0, 0, MQB_OFF(label)},
	{"timeout", MQB_DBL, 0.1, 3600, MQB_OFF(timeout)},
};
#define MQB_NOPTS (sizeof(mqb_optdefs) / sizeof(mqb_optdefs[0]))

static void mqb_usage(void)
{
	fprintf(stderr, "usage: mqbench --pub-host H --pub-port P --sub-host H --sub-port P --size S"
			" --count N --qos Q\n  [--rate R (msgs/s, 0 = max)] [--window W (default 1000)]"
			" [--publishers K] [--topic-prefix T]\n  [--mqtt 311|5] [--watch name=pid ...]"
			" [--label L] [--timeout SEC (default 30)]\n");
}

/* Numbers go through strtod with an end-pointer and range check; integers must be integral. */
static int mqb_parse_num(const struct mqb_optdef *d, const char *s, double *out)
{
	char *end = NULL;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < d->min || v > d->max ||
	    (d->kind != MQB_DBL && v != floor(v))) {
		fprintf(stderr, "mqbench: --%s: '%s' is not a number in [%g, %g]\n", d->name, s, d->min,
			d->max);
		return -1;
	}
	*out = v;
	return 0;
}

/* --watch name=pid: the name becomes a JSON key, so it is restricted to [A-Za-z0-9_.-]. */
static int mqb_parse_watch(struct mqb_opts *o, const struct mqb_optdef *d, const char *s)
{
	const char *eq = strchr(s, '=');
	size_t n = eq != NULL ? (size_t)(eq - s) : 0;
	struct mqb_watch *w = &o->watch[o->nwatch + 1];
	double pid;

	if (o->nwatch >= MQB_MAX_WATCH || n == 0 || n >= MQB_NAME_MAX || strspn(s, MQB_NAME_CHARS) != n ||
	    strncmp(s, "mqbench=", 8) == 0) {
		fprintf(stderr, "mqbench: --watch: '%s' is not name=pid (at most %d)\n", s, MQB_MAX_WATCH);
		return -1;
	}
	if (mqb_parse_num(d, eq + 1, &pid) != 0)
		return -1;
	memcpy(w->name, s, n);
	w->name[n] = '\0';
	w->pid = (pid_t)pid;
	o->nwatch++;
	return 0;
}

static int mqb_opt_set(struct mqb_opts *o, const struct mqb_optdef *d, const char *arg)
{
	char *field = (char *)o + d->off;
	double v = 0;

	if (d->kind == MQB_STR) {
		memcpy(field, &arg, sizeof(arg));
		return 0;
	}
	if (d->kind == MQB_WATCH)
		return mqb_parse_watch(o, d, arg);
	if (mqb_parse_num(d, arg, &v) != 0)
		return -1;
	if (d->kind == MQB_INT)
		*(int *)(void *)field = (int)v;
	else if (d->kind == MQB_U32)
		*(uint32_t *)(void *)field = (uint32_t)v;
	else if (d->kind == MQB_SIZE)
		*(size_t *)(void *)field = (size_t)v;
	else
		*(double *)(void *)field = v;
	return 0;
}

static void mqb_opts_default(struct mqb_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->pub_port = o->sub_port = o->qos = -1;
	o->window = 1000;
	o->publishers = 1;
	o->prefix = "mqbench";
	o->label = "";
	o->mqtt = 311;
	o->timeout = 30.0;
	snprintf(o->watch[0].name, sizeof(o->watch[0].name), "mqbench");
	o->watch[0].pid = getpid();
}

static int mqb_opts_check(const struct mqb_opts *o)
{
	if (!o->pub_host || !o->sub_host || o->pub_port < 0 || o->sub_port < 0 || o->qos < 0 ||
	    o->size == 0 || o->count == 0) {
		fprintf(stderr, "mqbench: --pub-host, --pub-port, --sub-host, --sub-port, --size, --count"
				" and --qos are required\n");
		return -1;
	}
	if (o->mqtt != 5 && o->mqtt != 311) {
		fprintf(stderr, "mqbench: --mqtt must be 311 or 5\n");
		return -1;
	}
	if (strlen(o->prefix) > 128 || strpbrk(o->prefix, "+#") != NULL || strlen(o->label) > 200) {
		fprintf(stderr, "mqbench: --topic-prefix (<= 128, no wildcards) or --label (<= 200) bad\n");
		return -1;
	}
	return 0;
}

static int mqb_opts_parse(struct mqb_opts *o, int argc, char **argv)
{
	struct option lo[MQB_NOPTS + 1];
	int c;

	mqb_opts_default(o);
	memset(lo, 0, sizeof(lo));
	for (size_t i = 0; i < MQB_NOPTS; i++)
		lo[i] = (struct option){mqb_optdefs[i].name, required_argument, NULL, (int)i};
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		if (c < 0 || (size_t)c >= MQB_NOPTS || mqb_opt_set(o, &mqb_optdefs[c], optarg) != 0) {
			mqb_usage();
			return -1;
		}
	}
	if (optind != argc || mqb_opts_check(o) != 0) {
		mqb_usage();
		return -1;
	}
	return 0;
}

/* ---- watched processes (proc(5)) ------------------------------------------------------------- */

static size_t mqb_read_file(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return 0;
	n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n;
}

/* utime, stime, cutime and cstime are fields 14 to 17 of /proc/<pid>/stat, in clock ticks; they
 * cover every thread of the process and its children reaped so far. The command name (field 2)
 * may hold spaces, so parse after its ')'. */
static double mqb_proc_cpu_one(pid_t pid)
{
	char path[64], buf[2048];
	unsigned long long ut, st, cut, cst;
	const char *p;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if (mqb_read_file(path, buf, sizeof(buf)) == 0 || (p = strrchr(buf, ')')) == NULL)
		return -1.0;
	if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu", &ut, &st, &cut,
		   &cst) != 4)
		return -1.0;
	return (double)(ut + st + cut + cst) / (double)sysconf(_SC_CLK_TCK);
}

/* The CPU of pid and of its live children (a forking relay such as socat serves each connection
 * in a child; those that ended are in the parent's cutime/cstime once reaped). */
static double mqb_proc_cpu(pid_t pid)
{
	char path[96], buf[4096];
	double total = mqb_proc_cpu_one(pid), c;
	const char *p;
	long child;
	int used;

	snprintf(path, sizeof(path), "/proc/%ld/task/%ld/children", (long)pid, (long)pid);
	if (total < 0 || mqb_read_file(path, buf, sizeof(buf)) == 0)
		return total;
	for (p = buf; sscanf(p, "%ld%n", &child, &used) == 1; p += used)
		if ((c = mqb_proc_cpu_one((pid_t)child)) > 0)
			total += c;
	return total;
}

/* VmHWM of /proc/<pid>/status: the peak resident set size in kB. */
static long mqb_proc_hwm(pid_t pid)
{
	char path[64], buf[4096];
	const char *p;
	long kb;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
	if (mqb_read_file(path, buf, sizeof(buf)) == 0 || (p = strstr(buf, "\nVmHWM:")) == NULL)
		return -1;
	return sscanf(p + 7, "%ld", &kb) == 1 ? kb : -1;
}

static void mqb_watch_sample(struct mqb_opts *o, bool after)
{
	for (size_t i = 0; i <= o->nwatch; i++) {
		struct mqb_watch *w = &o->watch[i];

		if (!after) {
			w->cpu0 = mqb_proc_cpu(w->pid);
			continue;
		}
		w->cpu1 = mqb_proc_cpu(w->pid);
		w->hwm_kb = mqb_proc_hwm(w->pid);
	}
}

/* ---- report ---------------------------------------------------------------------------------- */

static void mqb_json_str(const char *s)
{
	putchar('"');
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			printf("\\%c", ch);
		else if (ch < 0x20)
			printf("\\u%04x", ch);
		else
			putchar(ch);
	}
	putchar('"');
}

static int mqb_float_cmp(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of the sorted latencies. */
static double mqb_pct(const struct mqb_run *r, double q)
{
	size_t rank = (size_t)ceil(q * (double)r->delivered);

	return r->lat_us[rank > 0 ? rank - 1 : 0];
}

static void mqb_report_latency(struct mqb_run *r)
{
	if (r->delivered == 0) {
		printf("\"lat_us\":{\"p50\":null,\"p90\":null,\"p99\":null,\"max\":null},");
		return;
	}
	qsort(r->lat_us, (size_t)r->delivered, sizeof(*r->lat_us), mqb_float_cmp);
	printf("\"lat_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"max\":%.1f},", mqb_pct(r, 0.50),
	       mqb_pct(r, 0.90), mqb_pct(r, 0.99), mqb_pct(r, 1.0));
}

static void mqb_report_watch(const struct mqb_opts *o)
{
	printf("\"cpu_s\":{");
	for (size_t i = 0; i <= o->nwatch; i++) {
		const struct mqb_watch *w = &o->watch[i];

		printf(w->cpu0 >= 0 && w->cpu1 >= 0 ? "%s\"%s\":%.3f" : "%s\"%s\":null", i ? "," : "",
		       w->name, w->cpu1 - w->cpu0);
	}
	printf("},\"rss_peak_kb\":{");
	for (size_t i = 0; i <= o->nwatch; i++) {
		const struct mqb_watch *w = &o->watch[i];

		printf(w->hwm_kb >= 0 ? "%s\"%s\":%ld" : "%s\"%s\":null", i ? "," : "", w->name, w->hwm_kb);
	}
	printf("}");
}

static const char *mqb_end_reason(const struct mqb_run *r)
{
	if (r->error != NULL)
		return "error";
	if (r->delivered >= r->o->count)
		return "complete";
	return r->quiet ? "quiet" : "timeout";
}

static void mqb_report(struct mqb_run *r)
{
	const struct mqb_opts *o = r->o;
	double secs = r->delivered > 0 ? (double)(r->t_last_rx - r->t_first_send) / 1e9 : 0.0;
	double mps = secs > 0 ? (double)r->delivered / secs : 0.0;

	printf("{\"label\":");
	mqb_json_str(o->label);
	printf(",\"size\":%zu,\"qos\":%d,\"count\":%" PRIu32 ",\"publishers\":%" PRIu32 ",\"rate\":%g,"
	       "\"window\":%" PRIu32 ",\"mqtt\":%d,\"sent\":%" PRIu64 ",\"delivered\":%" PRIu64
	       ",\"lost\":%" PRIu64 ",\"duplicated\":%" PRIu64 ",\"out_of_order\":%" PRIu64
	       ",\"corrupt\":%" PRIu64 ",\"seconds\":%.6f,\"msgs_per_s\":%.1f,\"mb_per_s\":%.3f,",
	       o->size, o->qos, o->count, o->publishers, o->rate, o->window, o->mqtt, r->sent, r->delivered,
	       r->sent - r->delivered, r->duplicated, r->out_of_order, r->corrupt, secs, mps,
	       mps * (double)o->size / 1e6);
	mqb_report_latency(r);
	mqb_report_watch(o);
	printf(",\"end\":\"%s\",\"error\":", mqb_end_reason(r));
	if (r->error != NULL)
		mqb_json_str(r->error);
	else
		printf("null");
	printf("}\n");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	struct mqb_opts o;
	struct mqb_run r = {.o = &o};
	int rc = 1;

	if (mqb_opts_parse(&o, argc, argv) != 0)
		return 1;
	mosquitto_lib_init();
	mqb_topic_make(&r);
	if (mqb_run_alloc(&r) != 0) {
		fprintf(stderr, "mqbench: out of memory\n");
		goto out;
	}
	mqb_pubs_split(&r);
	rc = 2;
	if (mqb_connect_all(&r) != 0)
		goto out;
	mqb_watch_sample(&o, false);
	rc = mqb_run_loop(&r) == 0 ? 0 : 3;
	mqb_watch_sample(&o, true);
	mqb_report(&r);
out:
	mqb_run_free(&r);
	mosquitto_lib_cleanup();
	return rc;
}
