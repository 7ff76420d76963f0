/* sim_map.c - separate chaining, doubling at load 1. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "sim_map.h"

struct sim_ent {
	struct sim_ent *next;
	void *val;
	uint32_t hash;
	size_t klen;
	char key[]; /* klen bytes + NUL */
};

struct sim_map {
	struct sim_ent **b;
	size_t nb, count;
};

struct sim_map *sim_map_new(void)
{
	struct sim_map *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->nb = 64;
	m->b = calloc(m->nb, sizeof(struct sim_ent *));
	if (!m->b) {
		free(m);
		return NULL;
	}
	return m;
}

void sim_map_clear(struct sim_map *m, void (*free_val)(void *val))
{
	size_t i;

	for (i = 0; i < m->nb; i++) {
		struct sim_ent *e = m->b[i], *n;

		for (; e; e = n) {
			n = e->next;
			if (free_val)
				free_val(e->val);
			free(e);
		}
		m->b[i] = NULL;
	}
	m->count = 0;
}

void sim_map_free(struct sim_map *m, void (*free_val)(void *val))
{
	if (!m)
		return;
	sim_map_clear(m, free_val);
	free(m->b);
	free(m);
}

static struct sim_ent **find(const struct sim_map *m, const char *key, size_t klen, uint32_t h)
{
	struct sim_ent **p = &m->b[h & (m->nb - 1)];

	for (; *p; p = &(*p)->next)
		if ((*p)->hash == h && (*p)->klen == klen && memcmp((*p)->key, key, klen) == 0)
			return p;
	return p;
}

void *sim_map_get(const struct sim_map *m, const char *key, size_t klen)
{
	uint32_t h = px_fnv1a((const uint8_t *)key, klen);
	struct sim_ent **p = find(m, key, klen, h);

	return *p ? (*p)->val : NULL;
}

static void grow(struct sim_map *m)
{
	size_t nb = m->nb * 2, i;
	struct sim_ent **b = calloc(nb, sizeof(struct sim_ent *));

	if (!b)
		return; /* stays correct, only slower */
	for (i = 0; i < m->nb; i++) {
		struct sim_ent *e = m->b[i], *n;

		for (; e; e = n) {
			n = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
}

int sim_map_put(struct sim_map *m, const char *key, size_t klen, void *val, void **old)
{
	uint32_t h = px_fnv1a((const uint8_t *)key, klen);
	struct sim_ent **p = find(m, key, klen, h), *e;

	*old = NULL;
	if (*p) {
		*old = (*p)->val;
		(*p)->val = val;
		return 0;
	}
	e = malloc(sizeof(*e) + klen + 1);
	if (!e)
		return -1;
	e->next = NULL;
	e->val = val;
	e->hash = h;
	e->klen = klen;
	memcpy(e->key, key, klen);
	e->key[klen] = '\0';
	*p = e;
	if (++m->count > m->nb)
		grow(m);
	return 0;
}

void *sim_map_del(struct sim_map *m, const char *key, size_t klen)
{
	uint32_t h = px_fnv1a((const uint8_t *)key, klen);
	struct sim_ent **p = find(m, key, klen, h), *e = *p;
	void *val;

	if (!e)
		return NULL;
	*p = e->next;
	val = e->val;
	free(e);
	m->count--;
	return val;
}

size_t sim_map_count(const struct sim_map *m)
{
	return m->count;
}

void sim_map_each(const struct sim_map *m, void (*fn)(void *arg, const char *key, size_t klen, void *val),
		  void *arg)
{
	size_t i;

	for (i = 0; i < m->nb; i++) {
		const struct sim_ent *e = m->b[i];

		for (; e; e = e->next)
			fn(arg, e->key, e->klen, e->val);
	}
}
