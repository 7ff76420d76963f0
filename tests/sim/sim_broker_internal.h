/* sim_broker_internal.h - what sim_broker.c (clients, queues, wills) and sim_broker_index.c
 * (subscription and retained indexes) share. */
#ifndef PX_SIM_BROKER_INTERNAL_H
#define PX_SIM_BROKER_INTERNAL_H

#include "sim_broker.h"
#include "sim_map.h"

struct sim_ulist { /* client indices */
	uint32_t *v;
	size_t n, cap;
};

struct sim_rlist { /* retained messages with one parent topic */
	struct sim_msg **v;
	size_t n, cap;
};

struct sim_wsub { /* a wildcard filter the indexes do not cover: matched one by one */
	uint32_t c;
	char *filter;
};

struct sim_client {
	struct sim_map *subs; /* filter -> (void *)1 */
	struct sim_msg *qhead, *qtail;
	size_t qlen;
	struct sim_msg *will;
	uint64_t gen, stamp;
	bool connected, will_pending, ready;
};

struct sim_broker {
	struct sim_client *cl;
	size_t ncl;
	struct sim_map *retained; /* topic -> struct sim_msg */
	struct sim_map *rparent;  /* parent topic -> struct sim_rlist */
	struct sim_map *subidx;   /* "=" filter (exact) or "+" parent (for "parent/+") -> sim_ulist */
	struct sim_wsub *wild;
	size_t nwild, capwild;
	uint32_t *ready; /* ring of clients with a non-empty queue */
	size_t rhead, rlen;
	uint64_t stamp;
	struct sim_broker_stats st;
};

/* sim_broker_index.c */
int sim_index_add_(struct sim_broker *b, size_t c, const char *filter);
void sim_index_remove_(struct sim_broker *b, size_t c, const char *filter);
/* Queues for c every retained message filter matches. */
int sim_index_retained_for_(struct sim_broker *b, size_t c, const char *filter);
/* Queues m (RETAIN clear) for every connected subscriber whose filters match, once each. */
int sim_index_route_(struct sim_broker *b, const struct sim_msg *m);
int sim_index_retain_(struct sim_broker *b, const struct sim_msg *m);
void sim_index_clear_retained_(struct sim_broker *b);
void sim_index_free_(struct sim_broker *b);

/* sim_broker.c */
int sim_broker_enqueue_(struct sim_broker *b, size_t c, const struct sim_msg *m, bool retain);

#endif
