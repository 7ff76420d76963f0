/* sim_broker_index.c - who receives what at the simulated broker. The key exchange subscribes
 * with exact filters and one "<p>/ack/<N>/+" per node, so both get an index (an exact filter by
 * itself, "parent/+" by its parent) and a 10,000-node fleet routes each message in constant time;
 * any other wildcard filter is matched one by one with px_mqtt's matcher (MQTT 3.1.1 §4.7). The
 * retained store is indexed by topic and by parent topic, for the same two kinds of filter. */
#include <stdlib.h>
#include <string.h>

#include "mqtt_topic.h"
#include "sim_broker_internal.h"

enum fkind { F_EXACT, F_PLUS, F_OTHER };

/* The kind of a valid filter, and the length of its index part (the filter, or the parent). */
static enum fkind filter_kind(const char *f, size_t *plen)
{
	size_t n = strlen(f);

	*plen = n;
	if (!strpbrk(f, "+#"))
		return F_EXACT;
	if (n >= 3 && f[n - 1] == '+' && f[n - 2] == '/' && !memchr(f, '+', n - 1) && !memchr(f, '#', n)) {
		*plen = n - 2;
		return F_PLUS;
	}
	return F_OTHER;
}

/* "=" filter or "+" parent, NUL-terminated; the caller frees. */
static char *index_key(char tag, const char *s, size_t len)
{
	char *k = malloc(len + 2);

	if (!k)
		return NULL;
	k[0] = tag;
	memcpy(k + 1, s, len);
	k[len + 1] = '\0';
	return k;
}

static void ulist_free(void *p)
{
	struct sim_ulist *l = p;

	if (l)
		free(l->v);
	free(l);
}

static void rlist_free(void *p)
{
	struct sim_rlist *l = p;

	if (l)
		free(l->v);
	free(l);
}

static int wild_add(struct sim_broker *b, size_t c, const char *filter)
{
	if (b->nwild == b->capwild) {
		size_t ncap = b->capwild ? b->capwild * 2 : 16;
		struct sim_wsub *n = realloc(b->wild, ncap * sizeof(*n));

		if (!n)
			return -1;
		b->wild = n;
		b->capwild = ncap;
	}
	b->wild[b->nwild].filter = strdup(filter);
	if (!b->wild[b->nwild].filter)
		return -1;
	b->wild[b->nwild++].c = (uint32_t)c;
	return 0;
}

int sim_index_add_(struct sim_broker *b, size_t c, const char *filter)
{
	size_t plen;
	enum fkind k = filter_kind(filter, &plen);
	char *key;
	struct sim_ulist *l;
	void *old;
	int rc = -1;

	if (k == F_OTHER)
		return wild_add(b, c, filter);
	key = index_key(k == F_EXACT ? '=' : '+', filter, plen);
	if (!key)
		return -1;
	l = sim_map_get(b->subidx, key, plen + 1);
	if (!l) {
		l = calloc(1, sizeof(*l));
		if (!l || sim_map_put(b->subidx, key, plen + 1, l, &old) != 0) {
			free(l);
			goto out;
		}
	}
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 4;
		uint32_t *n = realloc(l->v, ncap * sizeof(*n));

		if (!n)
			goto out;
		l->v = n;
		l->cap = ncap;
	}
	l->v[l->n++] = (uint32_t)c;
	rc = 0;
out:
	free(key);
	return rc;
}

static void wild_remove(struct sim_broker *b, size_t c, const char *filter)
{
	size_t i;

	for (i = 0; i < b->nwild; i++) {
		if (b->wild[i].c == c && strcmp(b->wild[i].filter, filter) == 0) {
			free(b->wild[i].filter);
			/* Keep the order: matching order is delivery order. */
			memmove(&b->wild[i], &b->wild[i + 1], (b->nwild - i - 1) * sizeof(*b->wild));
			b->nwild--;
			return;
		}
	}
}

void sim_index_remove_(struct sim_broker *b, size_t c, const char *filter)
{
	size_t plen, i;
	enum fkind k = filter_kind(filter, &plen);
	char *key;
	struct sim_ulist *l;

	if (k == F_OTHER) {
		wild_remove(b, c, filter);
		return;
	}
	key = index_key(k == F_EXACT ? '=' : '+', filter, plen);
	if (!key)
		return;
	l = sim_map_get(b->subidx, key, plen + 1);
	for (i = 0; l && i < l->n; i++) {
		if (l->v[i] == c) {
			memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(*l->v));
			l->n--;
			break;
		}
	}
	if (l && !l->n)
		ulist_free(sim_map_del(b->subidx, key, plen + 1));
	free(key);
}

struct scan_arg {
	struct sim_broker *b;
	size_t c;
	const char *filter;
	int rc;
};

static void scan_one(void *arg, const char *key, size_t klen, void *val)
{
	struct scan_arg *a = arg;

	if (a->rc == 0 && mqtt_topic_match((const uint8_t *)a->filter, strlen(a->filter), (const uint8_t *)key, klen))
		a->rc = sim_broker_enqueue_(a->b, a->c, val, true);
}

int sim_index_retained_for_(struct sim_broker *b, size_t c, const char *filter)
{
	size_t plen, i;
	enum fkind k = filter_kind(filter, &plen);
	struct scan_arg a = { b, c, filter, 0 };
	const struct sim_msg *m;
	const struct sim_rlist *l;

	if (k == F_EXACT) {
		m = sim_map_get(b->retained, filter, plen);
		return m ? sim_broker_enqueue_(b, c, m, true) : 0;
	}
	if (k == F_PLUS) {
		l = sim_map_get(b->rparent, filter, plen);
		for (i = 0; l && i < l->n; i++)
			if (sim_broker_enqueue_(b, c, l->v[i], true) != 0)
				return -1;
		return 0;
	}
	sim_map_each(b->retained, scan_one, &a);
	return a.rc;
}

static int deliver(struct sim_broker *b, uint32_t c, const struct sim_msg *m)
{
	struct sim_client *cl = &b->cl[c];

	if (!cl->connected || cl->stamp == b->stamp)
		return 0;
	cl->stamp = b->stamp;
	return sim_broker_enqueue_(b, c, m, false);
}

static int deliver_list(struct sim_broker *b, char tag, const char *s, size_t len, const struct sim_msg *m)
{
	char *key = index_key(tag, s, len);
	const struct sim_ulist *l;
	size_t i;
	int rc = 0;

	if (!key)
		return -1;
	l = sim_map_get(b->subidx, key, len + 1);
	for (i = 0; l && i < l->n && rc == 0; i++)
		rc = deliver(b, l->v[i], m);
	free(key);
	return rc;
}

int sim_index_route_(struct sim_broker *b, const struct sim_msg *m)
{
	size_t tlen = strlen(m->topic), i;
	const char *slash = strrchr(m->topic, '/');
	int rc;

	b->stamp++;
	rc = deliver_list(b, '=', m->topic, tlen, m);
	if (rc == 0 && slash)
		rc = deliver_list(b, '+', m->topic, (size_t)(slash - m->topic), m);
	for (i = 0; rc == 0 && i < b->nwild; i++)
		if (mqtt_topic_match((const uint8_t *)b->wild[i].filter, strlen(b->wild[i].filter),
				     (const uint8_t *)m->topic, tlen))
			rc = deliver(b, b->wild[i].c, m);
	return rc;
}

/* The parent list of topic (created if `create`); NULL if none (or on allocation failure). */
static struct sim_rlist *rparent_of(struct sim_broker *b, const char *topic, bool create)
{
	const char *slash = strrchr(topic, '/');
	size_t plen = slash ? (size_t)(slash - topic) : 0;
	struct sim_rlist *l = sim_map_get(b->rparent, topic, plen);
	void *old;

	if (!slash)
		return NULL; /* a one-level topic: only F_OTHER filters ("+", "#") match it */
	if (l || !create)
		return l;
	l = calloc(1, sizeof(*l));
	if (!l || sim_map_put(b->rparent, topic, plen, l, &old) != 0) {
		free(l);
		return NULL;
	}
	return l;
}

static void rparent_remove(struct sim_broker *b, const struct sim_msg *m)
{
	struct sim_rlist *l = rparent_of(b, m->topic, false);
	size_t i;

	for (i = 0; l && i < l->n; i++) {
		if (l->v[i] == m) {
			memmove(&l->v[i], &l->v[i + 1], (l->n - i - 1) * sizeof(struct sim_msg *));
			l->n--;
			return;
		}
	}
}

static int rparent_add(struct sim_broker *b, struct sim_msg *m)
{
	struct sim_rlist *l;

	if (!strchr(m->topic, '/'))
		return 0;
	l = rparent_of(b, m->topic, true);
	if (!l)
		return -1;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 4;
		struct sim_msg **n = realloc(l->v, ncap * sizeof(struct sim_msg *));

		if (!n)
			return -1;
		l->v = n;
		l->cap = ncap;
	}
	l->v[l->n++] = m;
	return 0;
}

int sim_index_retain_(struct sim_broker *b, const struct sim_msg *m)
{
	size_t tlen = strlen(m->topic);
	struct sim_msg *old = sim_map_del(b->retained, m->topic, tlen), *n;
	void *prev;

	if (old) {
		rparent_remove(b, old);
		sim_msg_free(old);
	}
	if (!m->len)
		return 0; /* an empty retained message clears the topic (§3.3.1.3) */
	n = sim_msg_new(m->topic, m->payload, m->len, true);
	if (!n)
		return -1;
	if (sim_map_put(b->retained, m->topic, tlen, n, &prev) != 0) {
		sim_msg_free(n);
		return -1;
	}
	if (rparent_add(b, n) != 0) {
		sim_map_del(b->retained, m->topic, tlen);
		sim_msg_free(n);
		return -1;
	}
	return 0;
}

static void msg_free_v(void *p)
{
	sim_msg_free(p);
}

void sim_index_clear_retained_(struct sim_broker *b)
{
	sim_map_clear(b->rparent, rlist_free);
	sim_map_clear(b->retained, msg_free_v);
}

void sim_index_free_(struct sim_broker *b)
{
	size_t i;

	for (i = 0; i < b->nwild; i++)
		free(b->wild[i].filter);
	free(b->wild);
	sim_map_free(b->subidx, ulist_free);
	sim_map_free(b->rparent, rlist_free);
	sim_map_free(b->retained, msg_free_v);
}
