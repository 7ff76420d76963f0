/* devstate.c - per-device receive state kept across reconnects (devstate.h). A device's state is
 * found by client id in a hash table; its pending (unacknowledged) deliveries are a small array,
 * bounded by the device's own in-flight window (MQTT Receive Maximum, at most 65535). */
#include "devstate.h"

#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "keyring.h"

#define DEVSTATE_BUCKETS 1024
#define DEVSTATE_PENDING_MAX 65535

struct pending {
	uint16_t pid;
	uint8_t key_id[ENV_KEY_ID_LEN];
	uint64_t counter;
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

static void devstate_free(struct devstate *d)
{
	keyring_rx_free(d->rx);
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

struct devstate *devstate_attach(struct devstate_table *t, const uint8_t *client_id, size_t len, bool fresh)
{
	struct devstate **pp, *d;

	if (len == 0) {
		d = devstate_new(client_id, 0);
		if (d)
			d->attached = 1;
		return d;
	}
	pp = &t->buckets[devstate_hash(client_id, len)];
	for (d = *pp; d; d = d->next)
		if (d->client_len == len && memcmp(d->client_id, client_id, len) == 0)
			break;
	if (d && d->attached == 0)
		t->detached--; /* back, or replaced by a fresh one */
	if (d && fresh && d->attached == 0) {
		devstate_unlink(t, d);
		devstate_free(d);
		d = NULL;
	}
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
	return d;
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
	if (!d->shared || !persistent || t->detached >= max_kept) {
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
