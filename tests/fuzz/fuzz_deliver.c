/* fuzz_deliver.c - stateful fuzzing of the receive path (PROTOCOL.md §6.2, §6.3): the key ring's
 * open (keyring_open_decide, with each device's windows), the per-device state (devstate: kept
 * across reconnects, subscriptions, copies, retained notes) and the node-wide retained marks, driven
 * through deliver_decide / deliver_done exactly as seal_deliver.c drives them. The input is a
 * program for a hostile broker: seal messages (live or retained, on four topics), deliver any
 * captured one to any device with RETAIN set or not, subscribe and unsubscribe devices (exact,
 * '+' and '#' filters, so subscriptions overlap), reconnect them with or without a clean session,
 * rotate the sending key, let time pass. An oracle that knows nothing of the implementation
 * aborts on a violation of the guarantee:
 *  - never twice to one client id: a message goes to a device again only as a copy while fewer
 *    than its subscriptions matching the topic have been delivered since that device's last
 *    subscription to it, or, retained, as the topic's newest value once per new subscription;
 *  - never older: a retained delivery is never older than the newest retain_intent value any
 *    device of the node got for that topic;
 *  - never sealed before the subscription: a live first delivery was sealed at most the
 *    tolerance before the earliest subscription of the device matching the topic. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver.h"
#include "devstate.h"
#include "envelope.h"
#include "keyring.h"
#include "marks.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_TOPICS  4
#define FZ_DEVICES 2
#define FZ_MSGS	   48
#define FZ_SUBS	   8
#define FZ_OPS	   400
#define FZ_TOL_MS  2000
#define FZ_T0	   1800000000000ull

static const char *const fz_topics[FZ_TOPICS] = {"t/0", "t/1", "u/0", "u/1"};
static const char *const fz_filters[] = {"t/0", "t/1", "u/0", "u/1", "t/+", "u/+", "#", "+/0"};
#define FZ_NFILTERS (sizeof(fz_filters) / sizeof(fz_filters[0]))

struct fz_msg {
	uint8_t env[96];
	size_t len;
	unsigned topic;
	bool intent;
	uint64_t sealed_at, epoch, counter;
};

/* The oracle's view of one device: its subscriptions (as the broker has them) and, per message,
 * whether it got it and how many copies went in the current round (a round starts with the first
 * delivery, or with a retained repeat to a new subscription). */
struct fz_dev {
	struct devstate *d;
	bool subs[FZ_NFILTERS];
	uint64_t sub_start[FZ_NFILTERS]; /* kept across re-subscription, as MQTT-3.8.4-3 */
	unsigned round[FZ_MSGS];
	bool got[FZ_MSGS];
	bool sub_since_topic[FZ_TOPICS]; /* subscribed matching the topic since its last value */
};

struct fz {
	struct keyring *kr;
	struct devstate_table *t;
	struct marks *marks;
	struct fz_dev dev[FZ_DEVICES];
	struct fz_msg msg[FZ_MSGS];
	unsigned nmsg;
	uint64_t epoch, now, mono;
	bool have_newest[FZ_TOPICS];
	struct fz_msg newest[FZ_TOPICS];
};

static bool fz_match(unsigned filter, unsigned topic)
{
	const char *f = fz_filters[filter], *t = fz_topics[topic];

	if (strcmp(f, "#") == 0 || strcmp(f, t) == 0)
		return true;
	if (strcmp(f, "+/0") == 0)
		return t[2] == '0';
	return f[1] == '/' && f[2] == '+' && f[0] == t[0];
}

static unsigned fz_nmatch(const struct fz_dev *v, unsigned topic)
{
	unsigned i, n = 0;

	for (i = 0; i < FZ_NFILTERS; i++)
		n += v->subs[i] && fz_match(i, topic);
	return n;
}

static bool fz_newer(const struct fz_msg *a, const struct fz_msg *b)
{
	if (a->sealed_at != b->sealed_at)
		return a->sealed_at > b->sealed_at;
	if (a->epoch != b->epoch)
		return a->epoch > b->epoch;
	return a->counter > b->counter;
}

static void fz_rotate(struct fz *z)
{
	z->epoch++;
	if (keyring_epoch_create(z->kr, z->epoch, z->mono) != PX_OK || keyring_epoch_activate(z->kr, z->mono) != PX_OK)
		abort();
}

static void fz_seal(struct fz *z, uint8_t arg)
{
	struct fz_msg *m = &z->msg[z->nmsg % FZ_MSGS];
	const char *topic = fz_topics[arg % FZ_TOPICS];
	struct env_header h;

	memset(m, 0, sizeof(*m));
	m->topic = arg % FZ_TOPICS;
	m->intent = (arg & 0x10) != 0;
	m->len = keyring_sealed_size(z->kr, 0, 1);
	if (m->len > sizeof(m->env) ||
	    keyring_seal(z->kr, z->mono, z->now, m->intent ? ENV_FLAG_RETAIN : 0, (const uint8_t *)topic,
			 strlen(topic), NULL, 0, &arg, 1, m->env, m->len) != PX_OK ||
	    env_parse_header(m->env, m->len, &h) != PX_OK)
		abort();
	m->sealed_at = h.sealed_at;
	m->epoch = z->epoch;
	m->counter = h.counter;
	/* A slot reused: the oracle forgets what devices got of the message that was there. */
	for (unsigned i = 0; i < FZ_DEVICES; i++) {
		z->dev[i].round[z->nmsg % FZ_MSGS] = 0;
		z->dev[i].got[z->nmsg % FZ_MSGS] = false;
	}
	z->nmsg++;
}

static void fz_subscribe(struct fz *z, struct fz_dev *v, unsigned f)
{
	unsigned i;

	if (devstate_subscribe(v->d, (const uint8_t *)fz_filters[f], strlen(fz_filters[f]), z->now) != 0)
		abort();
	if (!v->subs[f])
		v->sub_start[f] = z->now;
	v->subs[f] = true;
	for (i = 0; i < FZ_TOPICS; i++)
		if (fz_match(f, i))
			v->sub_since_topic[i] = true;
}

static void fz_reconnect(struct fz *z, unsigned di, bool clean)
{
	struct fz_dev *v = &z->dev[di];
	char id[8];

	snprintf(id, sizeof(id), "dev-%u", di);
	devstate_detach(z->t, v->d, !clean, z->mono, 600000, 100);
	v->d = devstate_attach(z->t, (const uint8_t *)id, strlen(id), z->now);
	if (!v->d)
		abort();
	if (clean) {
		devstate_session_reset(v->d);
		memset(v->subs, 0, sizeof(v->subs));
	}
}

/* The earliest start of a subscription of v matching topic (UINT64_MAX: none). */
static uint64_t fz_sub_start(const struct fz_dev *v, unsigned topic)
{
	uint64_t s = UINT64_MAX;
	unsigned i;

	for (i = 0; i < FZ_NFILTERS; i++)
		if (v->subs[i] && fz_match(i, topic) && v->sub_start[i] < s)
			s = v->sub_start[i];
	return s;
}

static void fz_check(struct fz *z, struct fz_dev *v, unsigned mi, bool retained)
{
	struct fz_msg *m = &z->msg[mi];
	unsigned n = fz_nmatch(v, m->topic);

	if (retained && z->have_newest[m->topic] && fz_newer(&z->newest[m->topic], m))
		abort(); /* a retained value older than one the node delivered */
	if (!v->got[mi]) {
		uint64_t start = fz_sub_start(v, m->topic);
		if (!retained && start != UINT64_MAX && m->sealed_at + FZ_TOL_MS < start)
			abort(); /* sealed before the subscription */
		v->round[mi] = 0;
	} else if (v->round[mi] >= (n ? n : 1)) {
		/* Beyond the copies: only the newest retained value, once per new subscription. */
		if (!retained || !v->sub_since_topic[m->topic])
			abort();
		v->round[mi] = 0;
	}
	v->got[mi] = true;
	v->round[mi]++;
	if (m->intent) {
		v->sub_since_topic[m->topic] = false;
		if (!z->have_newest[m->topic] || fz_newer(m, &z->newest[m->topic])) {
			z->newest[m->topic] = *m;
			z->have_newest[m->topic] = true;
		}
	}
}

static void fz_deliver(struct fz *z, unsigned di, unsigned mi, bool retain)
{
	struct fz_dev *v = &z->dev[di];
	struct fz_msg *m = &z->msg[mi];
	const char *topic = fz_topics[m->topic];
	const struct deliver_params p = {.tolerance_ms = FZ_TOL_MS, .started_ms = FZ_T0, .now_ms = z->now};
	uint8_t inner[96];
	struct deliver_msg dm;
	struct kr_opened k;
	enum deliver_verdict verdict;
	enum stats_drop reason;
	enum px_err rc;

	rc = keyring_open_decide(z->kr, devstate_rx(v->d), z->mono, (const uint8_t *)topic, strlen(topic), m->env,
				 m->len, inner, &k);
	if (rc == PX_ERR_UNKNOWN_KEY || rc == PX_ERR_EXPIRED)
		return; /* erased by rotations */
	if (rc != PX_OK)
		abort();
	memset(&dm, 0, sizeof(dm));
	dm.h = k.h;
	dm.epoch = k.epoch;
	dm.seen = k.seen;
	dm.retain_delivered = retain;
	dm.topic = (const uint8_t *)topic;
	dm.topic_len = strlen(topic);
	dm.digest[0] = (uint8_t)(m->topic + 1); /* any digest that tells the topics apart */
	verdict = deliver_decide(v->d, z->marks, &p, &dm, &reason);
	if (verdict != DELIVER_YES && verdict != DELIVER_COPY)
		return;
	fz_check(z, v, mi, retain && m->intent);
	deliver_done(v->d, z->marks, &p, &dm, verdict);
}

static void fz_setup(struct fz *z)
{
	struct keyring_params kp = {.self_id = "self", .interval_s = 3600, .padding = 16, .replay_bits = 8192,
				    .max_keys = 8};
	unsigned i;

	memset(z, 0, sizeof(*z));
	z->now = FZ_T0;
	z->mono = 1000;
	if (keyring_new(&kp, &z->kr) != PX_OK || !(z->t = devstate_table_new()) || !(z->marks = marks_new()))
		abort();
	fz_rotate(z);
	for (i = 0; i < FZ_DEVICES; i++) {
		char id[8];
		snprintf(id, sizeof(id), "dev-%u", i);
		z->dev[i].d = devstate_attach(z->t, (const uint8_t *)id, strlen(id), z->now);
		if (!z->dev[i].d)
			abort();
	}
}

static void fz_teardown(struct fz *z)
{
	unsigned i;

	for (i = 0; i < FZ_DEVICES; i++)
		devstate_detach(z->t, z->dev[i].d, false, z->mono, 0, 0);
	devstate_table_free(z->t);
	marks_free(z->marks);
	keyring_free(z->kr);
}

static void fz_step(struct fz *z, uint8_t op, uint8_t arg)
{
	unsigned di = arg & 1;

	switch (op % 8) {
	case 0:
	case 1:
		fz_seal(z, arg);
		break;
	case 2:
	case 3:
		if (z->nmsg)
			fz_deliver(z, di, (unsigned)(arg >> 2) % (z->nmsg < FZ_MSGS ? z->nmsg : FZ_MSGS), (arg & 2) != 0);
		break;
	case 4:
		fz_subscribe(z, &z->dev[di], (unsigned)(arg >> 1) % FZ_NFILTERS);
		break;
	case 5: {
		unsigned f = (unsigned)(arg >> 1) % FZ_NFILTERS;
		devstate_unsubscribe(z->dev[di].d, (const uint8_t *)fz_filters[f], strlen(fz_filters[f]));
		z->dev[di].subs[f] = false;
		break;
	}
	case 6:
		fz_reconnect(z, di, (arg & 2) != 0);
		break;
	default:
		if (arg & 0x80)
			fz_rotate(z);
		z->now += (uint64_t)(arg & 0x7f) * 50; /* up to 6.35 s: past the tolerance */
		z->mono += (uint64_t)(arg & 0x7f) * 50;
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz z;
	size_t i;

	fz_setup(&z);
	for (i = 0; i + 1 < size && i / 2 < FZ_OPS; i += 2)
		fz_step(&z, data[i], data[i + 1]);
	fz_teardown(&z);
	return 0;
}
