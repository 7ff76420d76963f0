/* devstate.c - per-device receive state kept across reconnects (devstate.h). A device's state is
 * found by client id in a hash table; its pending (unacknowledged) deliveries are a small array,
 * bounded by the device's own in-flight window (MQTT Receive Maximum, at most 65535); its
 * subscriptions a small array (DEVSTATE_SUBS_MAX), its recent copies and retained repeats two
 * fixed rings. */
#include "devstate.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "keyring.h"
#include "mqtt_topic.h"

#define DEVSTATE_BUCKETS 1024
#define DEVSTATE_PENDING_MAX 65535

struct pending {
	uint16_t pid;
	uint8_t key_id[ENV_KEY_ID_LEN];
	uint64_t counter;
};

struct dev_sub {
	uint8_t *filter; /* the filter as matched ("$share/g/" removed) */
	size_t len;
	uint64_t start_ms; /* wall clock when first subscribed */
	uint32_t gen;      /* subscribe generation of the latest (re)subscription */
};

struct dev_copy {
	uint8_t key_id[ENV_KEY_ID_LEN];
	uint64_t counter;
	unsigned sent; /* 0: slot unused */
};

struct dev_credit {
	uint8_t digest[DEVSTATE_DIGEST_LEN];
	uint32_t gen_used; /* subscribe generation when the value was last delivered */
	bool used;
};

struct devstate {
	struct devstate *next;   /* in its bucket; NULL for private states */
	uint8_t *client_id;
	size_t client_len;
	bool shared;             /* in the table (non-empty client id) */
	unsigned attached;       /* live sessions using it */
	uint64_t keep_until;     /* detached: dropped after this (monotonic ms) */
	struct keyring_rx *rx;
	struct pending *pend;
	size_t npend, cap;
	struct dev_sub *subs;    /* DEVSTATE_SUBS_MAX at most */
	size_t nsubs;
	uint64_t conn_ms;        /* wall clock at the latest connection */
	uint64_t untracked_ms;   /* newest start of a subscription not tracked (0: none) */
	uint32_t sub_gen;        /* +1 per subscribed filter */
	uint32_t untracked_gen;
	struct dev_copy copies[DEVSTATE_COPIES];
	unsigned copies_next;
	struct dev_credit *credits; /* DEVSTATE_CREDITS, allocated on first use */
	unsigned credits_next;
};

struct devstate_table {
	struct devstate *buckets[DEVSTATE_BUCKETS];
	size_t count;
	size_t detached; /* kept for devices that are not connected */
};

struct devstate_table *devstate_table_new(void)
{
	return calloc(1, sizeof(struct devstate_table));
}

static void devstate_subs_clear(struct devstate *d)
{
	size_t i;

	for (i = 0; i < d->nsubs; i++)
		free(d->subs[i].filter);
	free(d->subs);
	d->subs = NULL;
	d->nsubs = 0;
	d->untracked_ms = 0;
	d->untracked_gen = 0;
}

static void devstate_free(struct devstate *d)
{
	keyring_rx_free(d->rx);
	devstate_subs_clear(d);
	free(d->credits);
	free(d->pend);
	free(d->client_id);
	free(d);
}

void devstate_table_free(struct devstate_table *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < DEVSTATE_BUCKETS; i++) {
		while (t->buckets[i]) {
			struct devstate *d = t->buckets[i];
			t->buckets[i] = d->next;
			devstate_free(d);
		}
	}
	free(t);
}

static size_t devstate_hash(const uint8_t *p, size_t len)
{
	return px_fnv1a(p, len) % DEVSTATE_BUCKETS;
}

static struct devstate *devstate_new(const uint8_t *client_id, size_t len)
{
	struct devstate *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->client_id = malloc(len ? len : 1);
	if (!d->client_id || keyring_rx_new(&d->rx) != PX_OK) {
		devstate_free(d);
		return NULL;
	}
	if (len)
		memcpy(d->client_id, client_id, len);
	d->client_len = len;
	return d;
}

/* Unlinks d from its bucket (it must be there). */
static void devstate_unlink(struct devstate_table *t, struct devstate *d)
{
	struct devstate **pp = &t->buckets[devstate_hash(d->client_id, d->client_len)];

	while (*pp && *pp != d)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = d->next;
		t->count--;
	}
}

struct devstate *devstate_attach(struct devstate_table *t, const uint8_t *client_id, size_t len, uint64_t wall_ms)
{
	struct devstate **pp, *d;

	if (len == 0) {
		d = devstate_new(client_id, 0);
		if (d) {
			d->attached = 1;
			d->conn_ms = wall_ms;
		}
		return d;
	}
	pp = &t->buckets[devstate_hash(client_id, len)];
	for (d = *pp; d; d = d->next)
		if (d->client_len == len && memcmp(d->client_id, client_id, len) == 0)
			break;
	if (d && d->attached == 0)
		t->detached--; /* back: its windows hold whatever session it starts (§6.2) */
	if (!d) {
		d = devstate_new(client_id, len);
		if (!d)
			return NULL;
		d->shared = true;
		d->next = *pp;
		*pp = d;
		t->count++;
	}
	d->attached++;
	d->conn_ms = wall_ms;
	return d;
}

/* Nothing a reconnect could be replayed against: no window, no pending or retained note. */
static bool devstate_empty(const struct devstate *d)
{
	return keyring_rx_empty(d->rx) && d->npend == 0 && !d->credits;
}

void devstate_adopt(struct devstate_table *t, struct devstate *d, const uint8_t *client_id, size_t len)
{
	struct devstate **pp, *o;
	uint8_t *id;

	if (!d || d->shared || len == 0)
		return;
	pp = &t->buckets[devstate_hash(client_id, len)];
	for (o = *pp; o; o = o->next)
		if (o->client_len == len && memcmp(o->client_id, client_id, len) == 0)
			return;
	id = malloc(len);
	if (!id)
		return; /* stays private: the device resumes with fresh state, judged by subscription times */
	memcpy(id, client_id, len);
	free(d->client_id);
	d->client_id = id;
	d->client_len = len;
	d->shared = true;
	d->next = *pp;
	*pp = d;
	t->count++;
}

void devstate_detach(struct devstate_table *t, struct devstate *d, bool persistent, uint64_t now_ms,
		     uint64_t keep_ms, size_t max_kept)
{
	if (!d)
		return;
	if (d->attached)
		d->attached--;
	if (d->attached)
		return;
	if (!d->shared || t->detached >= max_kept || (!persistent && devstate_empty(d))) {
		if (d->shared)
			devstate_unlink(t, d);
		devstate_free(d);
		return;
	}
	d->keep_until = now_ms + keep_ms;
	t->detached++;
}

void devstate_gc(struct devstate_table *t, const struct keyring *kr, uint64_t now_ms)
{
	size_t i;

	for (i = 0; i < DEVSTATE_BUCKETS; i++) {
		struct devstate **pp = &t->buckets[i];
		while (*pp) {
			struct devstate *d = *pp;
			if (d->attached == 0 && now_ms >= d->keep_until) {
				*pp = d->next;
				t->count--;
				t->detached--;
				devstate_free(d);
				continue;
			}
			if (kr)
				keyring_rx_gc(kr, d->rx);
			pp = &d->next;
		}
	}
}

size_t devstate_count(const struct devstate_table *t)
{
	return t->count;
}

struct keyring_rx *devstate_rx(struct devstate *d)
{
	return d->rx;
}

static struct pending *devstate_pending_find(const struct devstate *d, uint16_t pid)
{
	size_t i;

	for (i = 0; i < d->npend; i++)
		if (d->pend[i].pid == pid)
			return &d->pend[i];
	return NULL;
}

void devstate_pending_put(struct devstate *d, uint16_t pid, const uint8_t key_id[static ENV_KEY_ID_LEN],
			  uint64_t counter)
{
	struct pending *p = devstate_pending_find(d, pid), *n;

	if (!p) {
		if (d->npend == d->cap) {
			size_t cap = d->cap ? d->cap * 2 : 8;
			if (cap > DEVSTATE_PENDING_MAX || !(n = realloc(d->pend, cap * sizeof(*n))))
				return; /* at worst a redelivery is refused as a replay */
			d->pend = n;
			d->cap = cap;
		}
		p = &d->pend[d->npend++];
	}
	p->pid = pid;
	memcpy(p->key_id, key_id, ENV_KEY_ID_LEN);
	p->counter = counter;
}

bool devstate_pending_match(const struct devstate *d, uint16_t pid, const uint8_t key_id[static ENV_KEY_ID_LEN],
			    uint64_t counter)
{
	const struct pending *p = devstate_pending_find(d, pid);

	return p && p->counter == counter && memcmp(p->key_id, key_id, ENV_KEY_ID_LEN) == 0;
}

void devstate_pending_ack(struct devstate *d, uint16_t pid)
{
	struct pending *p = devstate_pending_find(d, pid);

	if (p)
		*p = d->pend[--d->npend];
}

/* ---- subscriptions and delivery ---- */

void devstate_session_reset(struct devstate *d)
{
	devstate_subs_clear(d);
	d->npend = 0;
}

/* The filter a subscription matches topics with: "$share/<group>/<f>" delivers f's topics. */
static void devstate_inner_filter(const uint8_t **f, size_t *len)
{
	const uint8_t *inner;
	size_t ilen;

	if (mqtt_topic_share_split(*f, *len, &inner, &ilen)) {
		*f = inner;
		*len = ilen;
	}
}

static struct dev_sub *devstate_sub_find(const struct devstate *d, const uint8_t *f, size_t len)
{
	size_t i;

	for (i = 0; i < d->nsubs; i++)
		if (d->subs[i].len == len && memcmp(d->subs[i].filter, f, len) == 0)
			return &d->subs[i];
	return NULL;
}

static void devstate_untracked(struct devstate *d, uint64_t wall_ms)
{
	d->untracked_ms = wall_ms;
	d->untracked_gen = d->sub_gen;
}

int devstate_subscribe(struct devstate *d, const uint8_t *filter, size_t len, uint64_t wall_ms)
{
	struct dev_sub *sub = devstate_sub_find(d, filter, len), *n;

	d->sub_gen++;
	if (sub) { /* replaced, not new: it covered its topics all along (MQTT-3.8.4-3) */
		sub->gen = d->sub_gen;
		return 0;
	}
	if (d->nsubs >= DEVSTATE_SUBS_MAX) {
		devstate_untracked(d, wall_ms);
		return 0;
	}
	n = realloc(d->subs, (d->nsubs + 1) * sizeof(*n));
	if (!n) {
		devstate_untracked(d, wall_ms);
		return -1;
	}
	d->subs = n;
	sub = &d->subs[d->nsubs];
	sub->filter = malloc(len ? len : 1);
	if (!sub->filter) {
		devstate_untracked(d, wall_ms);
		return -1;
	}
	memcpy(sub->filter, filter, len);
	sub->len = len;
	sub->start_ms = wall_ms;
	sub->gen = d->sub_gen;
	d->nsubs++;
	return 0;
}

void devstate_unsubscribe(struct devstate *d, const uint8_t *filter, size_t len)
{
	struct dev_sub *sub = devstate_sub_find(d, filter, len);

	if (!sub)
		return;
	free(sub->filter);
	*sub = d->subs[--d->nsubs];
}

void devstate_match(const struct devstate *d, const uint8_t *topic, size_t len, struct devstate_match *out)
{
	size_t i;

	out->start_ms = UINT64_MAX;
	out->count = 0;
	out->gen = 0;
	for (i = 0; i < d->nsubs; i++) {
		const uint8_t *f = d->subs[i].filter;
		size_t flen = d->subs[i].len;
		devstate_inner_filter(&f, &flen);
		if (!mqtt_topic_match(f, flen, topic, len))
			continue;
		out->count++;
		if (d->subs[i].start_ms < out->start_ms)
			out->start_ms = d->subs[i].start_ms;
		if (d->subs[i].gen > out->gen)
			out->gen = d->subs[i].gen;
	}
	if (d->untracked_ms) { /* an untracked subscription may match: judged by the newest such */
		out->count++;
		if (out->start_ms == UINT64_MAX)
			out->start_ms = d->untracked_ms;
		if (d->untracked_gen > out->gen)
			out->gen = d->untracked_gen;
	}
	if (out->count == 0) { /* nothing known covers it (a session the node did not see made) */
		out->count = 1;
		out->start_ms = d->conn_ms;
	}
}

static struct dev_copy *devstate_copy_find(struct devstate *d, const uint8_t key_id[static ENV_KEY_ID_LEN],
					   uint64_t counter)
{
	unsigned i;

	for (i = 0; i < DEVSTATE_COPIES; i++)
		if (d->copies[i].sent && d->copies[i].counter == counter &&
		    memcmp(d->copies[i].key_id, key_id, ENV_KEY_ID_LEN) == 0)
			return &d->copies[i];
	return NULL;
}

void devstate_copy_first(struct devstate *d, const uint8_t key_id[static ENV_KEY_ID_LEN], uint64_t counter)
{
	struct dev_copy *c = devstate_copy_find(d, key_id, counter);

	if (!c) {
		c = &d->copies[d->copies_next];
		d->copies_next = (d->copies_next + 1) % DEVSTATE_COPIES;
		memcpy(c->key_id, key_id, ENV_KEY_ID_LEN);
		c->counter = counter;
	}
	c->sent = 1; /* a new round: a retained repeat to a new subscription starts one too */
}

bool devstate_copy_take(struct devstate *d, const uint8_t key_id[static ENV_KEY_ID_LEN], uint64_t counter,
			unsigned max)
{
	struct dev_copy *c = devstate_copy_find(d, key_id, counter);

	if (!c || c->sent >= max)
		return false;
	c->sent++;
	return true;
}

static struct dev_credit *devstate_credit_find(const struct devstate *d,
					       const uint8_t digest[static DEVSTATE_DIGEST_LEN])
{
	unsigned i;

	for (i = 0; d->credits && i < DEVSTATE_CREDITS; i++)
		if (d->credits[i].used && memcmp(d->credits[i].digest, digest, DEVSTATE_DIGEST_LEN) == 0)
			return &d->credits[i];
	return NULL;
}

void devstate_credit_note(struct devstate *d, const uint8_t digest[static DEVSTATE_DIGEST_LEN])
{
	struct dev_credit *c = devstate_credit_find(d, digest);

	if (!c) {
		if (!d->credits && !(d->credits = calloc(DEVSTATE_CREDITS, sizeof(*d->credits))))
			return; /* no memory: no repeat will be allowed for this topic */
		c = &d->credits[d->credits_next];
		d->credits_next = (d->credits_next + 1) % DEVSTATE_CREDITS;
		memcpy(c->digest, digest, DEVSTATE_DIGEST_LEN);
		c->used = true;
	}
	c->gen_used = d->sub_gen;
}

bool devstate_credit_take(struct devstate *d, const uint8_t digest[static DEVSTATE_DIGEST_LEN], uint32_t gen)
{
	struct dev_credit *c = devstate_credit_find(d, digest);

	if (!c || gen <= c->gen_used)
		return false;
	c->gen_used = d->sub_gen;
	return true;
}

bool devstate_credit_had(const struct devstate *d, const uint8_t digest[static DEVSTATE_DIGEST_LEN])
{
	return devstate_credit_find(d, digest) != NULL;
}
