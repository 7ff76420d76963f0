/* keyring_rx.c - replay state of received keys (PROTOCOL.md §6.2, §6.3): the sliding window with
 * its counter floor and the retained map (topic -> last counter accepted with retain_intent), and
 * the check and update of §6.1 steps 5 and 7 over them. A state belongs either to a receive key
 * itself (keyring_open without a receiver) or to one (receiver, key) pair, kept in a struct
 * keyring_rx: one per device, so each device session the broker delivers a message to gets it
 * once, whatever other devices of this node got (§6.2). The per-receiver states are found by key
 * id in a small open-addressing table and tagged with the key's installation serial, so the state
 * of an erased key never applies to a later installation. Nothing here is secret: counters and
 * topic digests only, plain frees. */
#include "keyring_internal.h"

#include <string.h>

#include <openssl/crypto.h>

#define KR_TOPICS_MIN_CAP 16
#define KR_RX_MIN_CAP	  8
/* keyring_rx_bytes: struct replay is opaque (replay.c); its header (floor, highest, flags, sizes)
 * is counted as 32 bytes besides the bitmap. An estimate for accounting, not an allocation size. */
#define KR_REPLAY_HDR_BYTES 32

/* One (receiver, key) state; free when st.window is NULL. */
struct kr_rx_slot {
	uint8_t key_id[ENV_KEY_ID_LEN];
	uint64_t serial;
	struct kr_state st;
};

struct keyring_rx {
	struct kr_rx_slot *slots; /* open addressing, linear probing by key id; NULL until first use */
	size_t cap;		  /* 0 or a power of two, at least twice count */
	size_t count;
};

/* ---- the retained map (§6.3) ---- */

static size_t kr_topic_home(const uint8_t digest[static KR_DIGEST_LEN], size_t cap)
{
	return ((size_t)digest[0] << 8 | digest[1]) & (cap - 1);
}

static struct kr_topic *kr_topic_find(const struct kr_topics *t, const uint8_t digest[static KR_DIGEST_LEN])
{
	size_t i;

	if (!t->cap)
		return NULL;
	for (i = kr_topic_home(digest, t->cap); t->slots[i].used; i = (i + 1) & (t->cap - 1))
		if (memcmp(t->slots[i].digest, digest, KR_DIGEST_LEN) == 0)
			return &t->slots[i];
	return NULL;
}

static void kr_topic_put(struct kr_topics *t, const uint8_t digest[static KR_DIGEST_LEN], uint64_t counter)
{
	size_t i = kr_topic_home(digest, t->cap);

	while (t->slots[i].used)
		i = (i + 1) & (t->cap - 1);
	memcpy(t->slots[i].digest, digest, KR_DIGEST_LEN);
	t->slots[i].counter = counter;
	t->slots[i].used = true;
	t->count++;
}

/* Doubles the map (kept at most half full); 2 * KR_TOPICS_MAX slots at most. */
static enum px_err kr_topics_grow(struct kr_topics *t)
{
	struct kr_topics n = {0};
	size_t i;

	n.cap = t->cap ? 2 * t->cap : KR_TOPICS_MIN_CAP;
	n.slots = OPENSSL_zalloc(n.cap * sizeof(*n.slots));
	if (!n.slots)
		return PX_ERR_NOMEM;
	for (i = 0; i < t->cap; i++)
		if (t->slots[i].used)
			kr_topic_put(&n, t->slots[i].digest, t->slots[i].counter);
	OPENSSL_free(t->slots);
	*t = n;
	return PX_OK;
}

/* Records counter as the topic's last retained counter (never lowering it). A full map refuses
 * new topics: that bounds it at 2048 slots of 48 bytes (96 KiB) per key and receiver, allocated
 * only as retained topics arrive. */
static void kr_topic_record(struct kr_topics *t, const uint8_t digest[static KR_DIGEST_LEN], uint64_t counter)
{
	struct kr_topic *e = kr_topic_find(t, digest);

	if (e) {
		if (counter > e->counter)
			e->counter = counter;
		return;
	}
	if (t->count >= KR_TOPICS_MAX)
		return;
	if (2 * (t->count + 1) > t->cap && kr_topics_grow(t) != PX_OK)
		return;
	kr_topic_put(t, digest, counter);
}

/* ---- one replay state ---- */

enum px_err kr_state_init_(struct kr_state *st, unsigned bits, uint64_t floor)
{
	memset(st, 0, sizeof(*st));
	st->floor = floor;
	return replay_new(bits, floor, &st->window);
}

void kr_state_free_(struct kr_state *st)
{
	replay_free(st->window);
	OPENSSL_free(st->topics.slots);
	memset(st, 0, sizeof(*st));
}

/* The window part of step 5. With repeat, a counter the window has seen passes (the caller
 * vouches for a redelivery, §6.2); the floor and the window's reach still hold. */
static enum px_err kr_window_check(const struct kr_state *st, uint64_t floor, uint64_t counter, bool repeat)
{
	uint64_t hi;

	if (!st)
		return counter < floor ? PX_ERR_REPLAY : PX_OK;
	if (!repeat)
		return replay_check(st->window, counter) == PX_OK ? PX_OK : PX_ERR_REPLAY;
	if (counter < st->floor)
		return PX_ERR_REPLAY;
	/* Behind the window nothing says whether it was seen: refused, as replay_check does. */
	if (replay_highest(st->window, &hi) && counter <= hi &&
	    hi - counter >= replay_window_size(st->window))
		return PX_ERR_REPLAY;
	return PX_OK;
}

enum px_err kr_state_check_(const struct kr_state *st, uint64_t floor, uint64_t counter, bool exception,
			    bool repeat, const uint8_t digest[static KR_DIGEST_LEN], bool *retained)
{
	const struct kr_topic *e = NULL;
	size_t count = st ? st->topics.count : 0;

	*retained = false;
	/* §6.3: RETAIN=1 as delivered and an authenticated retain_intent (the tag is checked next,
	 * and covers the flags) may pass the window and the floor, at or above the topic's last
	 * retained counter. A rollback is refused, unless the caller vouches for a redelivery, which
	 * then faces the window like any other. */
	if (exception) {
		if (st)
			e = kr_topic_find(&st->topics, digest);
		if (e && counter < e->counter && !repeat)
			return PX_ERR_REPLAY;
		if ((e && counter >= e->counter) || (!e && count < KR_TOPICS_MAX)) {
			*retained = true;
			return PX_OK;
		}
	}
	return kr_window_check(st, floor, counter, repeat);
}

enum px_err kr_state_accept_(struct kr_state *st, uint64_t counter, bool retained, bool repeat, bool intent,
			     const uint8_t digest[static KR_DIGEST_LEN], enum px_err open_rc)
{
	/* Under the retained exception the counter may be old or seen already, and under repeat
	 * seen already: that is what they allow. Otherwise the pre-check said it is new. */
	if (replay_accept(st->window, counter) != PX_OK && !retained && !repeat && open_rc == PX_OK)
		return PX_ERR_REPLAY;
	if (open_rc == PX_OK && intent)
		kr_topic_record(&st->topics, digest, counter);
	return PX_OK;
}

/* ---- the states of one receiver ---- */

enum px_err keyring_rx_new(struct keyring_rx **out)
{
	if (!out)
		return PX_ERR_INVAL;
	*out = OPENSSL_zalloc(sizeof(**out));
	return *out ? PX_OK : PX_ERR_NOMEM;
}

void keyring_rx_free(struct keyring_rx *rx)
{
	size_t i;

	if (!rx)
		return;
	for (i = 0; i < rx->cap; i++)
		kr_state_free_(&rx->slots[i].st);
	OPENSSL_free(rx->slots);
	OPENSSL_free(rx);
}

static size_t kr_rx_find_slot(const struct keyring_rx *rx, const uint8_t key_id[static ENV_KEY_ID_LEN])
{
	size_t i;

	if (!rx->cap)
		return SIZE_MAX;
	for (i = kr_key_home_(key_id, rx->cap); rx->slots[i].st.window; i = (i + 1) & (rx->cap - 1))
		if (memcmp(rx->slots[i].key_id, key_id, ENV_KEY_ID_LEN) == 0)
			return i;
	return SIZE_MAX;
}

struct kr_state *kr_rx_find_(const struct keyring_rx *rx, const struct kr_recv *r)
{
	size_t i = kr_rx_find_slot(rx, r->key_id);

	return i != SIZE_MAX && rx->slots[i].serial == r->serial ? &rx->slots[i].st : NULL;
}

/* Moves a slot's content into the table (a free slot exists: the table is at most half full). */
static struct kr_rx_slot *kr_rx_put(struct keyring_rx *rx, const struct kr_rx_slot *s)
{
	size_t i = kr_key_home_(s->key_id, rx->cap);

	while (rx->slots[i].st.window)
		i = (i + 1) & (rx->cap - 1);
	rx->slots[i] = *s;
	rx->count++;
	return &rx->slots[i];
}

/* Frees slot i; later members of its probe run move back (backward-shift deletion, as the key
 * table of keyring_recv.c does). */
static void kr_rx_delete(struct keyring_rx *rx, size_t i)
{
	size_t mask = rx->cap - 1, j = i, home;

	kr_state_free_(&rx->slots[i].st);
	rx->count--;
	for (;;) {
		j = (j + 1) & mask;
		if (!rx->slots[j].st.window)
			return;
		home = kr_key_home_(rx->slots[j].key_id, rx->cap);
		/* Stays if its home lies cyclically in (i, j]. */
		if ((i < j) ? (home > i && home <= j) : (home > i || home <= j))
			continue;
		rx->slots[i] = rx->slots[j];
		memset(&rx->slots[j], 0, sizeof(rx->slots[j]));
		i = j;
	}
}

/* Doubles the table (kept at most half full). */
static enum px_err kr_rx_grow(struct keyring_rx *rx)
{
	struct keyring_rx n = {0};
	size_t i;

	n.cap = rx->cap ? 2 * rx->cap : KR_RX_MIN_CAP;
	n.slots = OPENSSL_zalloc(n.cap * sizeof(*n.slots));
	if (!n.slots)
		return PX_ERR_NOMEM;
	for (i = 0; i < rx->cap; i++)
		if (rx->slots[i].st.window)
			kr_rx_put(&n, &rx->slots[i]);
	OPENSSL_free(rx->slots);
	rx->slots = n.slots;
	rx->cap = n.cap;
	return PX_OK;
}

void keyring_rx_gc(const struct keyring *kr, struct keyring_rx *rx)
{
	const struct kr_recv *r;
	size_t i = 0;

	if (!kr || !rx)
		return;
	/* A deletion may move a later state into slot i, so i is looked at again before moving on. */
	while (i < rx->cap) {
		const struct kr_rx_slot *s = &rx->slots[i];
		if (s->st.window && (!(r = kr_lookup_(kr, s->key_id)) || r->serial != s->serial))
			kr_rx_delete(rx, i);
		else
			i++;
	}
}

enum px_err kr_rx_state_(const struct keyring *kr, struct keyring_rx *rx, const struct kr_recv *r,
			 struct kr_state **out)
{
	struct kr_rx_slot s = {0};
	size_t i = kr_rx_find_slot(rx, r->key_id);
	enum px_err rc;

	if (i != SIZE_MAX && rx->slots[i].serial == r->serial) {
		*out = &rx->slots[i].st;
		return PX_OK;
	}
	/* A state of an earlier installation of this key id, or, when rx holds as many states as
	 * kr has keys (so at least one is of an erased key), those of erased keys go first: rx
	 * never holds more than kr->nrecv states, whenever the caller runs keyring_rx_gc. */
	if (i != SIZE_MAX || rx->count >= kr->nrecv)
		keyring_rx_gc(kr, rx);
	if (2 * (rx->count + 1) > rx->cap && (rc = kr_rx_grow(rx)) != PX_OK)
		return rc;
	memcpy(s.key_id, r->key_id, ENV_KEY_ID_LEN);
	s.serial = r->serial;
	rc = kr_state_init_(&s.st, KR_RX_REPLAY_BITS, r->floor);
	if (rc != PX_OK)
		return rc;
	*out = &kr_rx_put(rx, &s)->st;
	return PX_OK;
}

bool keyring_rx_empty(const struct keyring_rx *rx)
{
	return !rx || rx->count == 0;
}

size_t keyring_rx_bytes(const struct keyring_rx *rx)
{
	size_t n, i;

	if (!rx)
		return 0;
	n = sizeof(*rx) + rx->cap * sizeof(*rx->slots);
	for (i = 0; i < rx->cap; i++)
		if (rx->slots[i].st.window)
			n += KR_REPLAY_HDR_BYTES + KR_RX_REPLAY_BITS / 8 +
			     rx->slots[i].st.topics.cap * sizeof(*rx->slots[i].st.topics.slots);
	return n;
}
