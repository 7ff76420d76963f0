/* ctx.h - the wiring of one running node: what every proxy/ module may reach. Built and owned by
 * main.c (node.c); modules read the pointers and never replace them. */
#ifndef PX_CTX_H
#define PX_CTX_H

#include <stdbool.h>
#include <stdint.h>

struct event_base;
struct evdns_base;
struct ssl_ctx_st;
struct px_conf;
struct stats;
struct session_set;
struct keyex;
struct policy;
struct seal;
struct devstate_table;

struct px_ctx {
	struct event_base *base;
	struct evdns_base *dns;        /* resolves broker.host without blocking */
	const struct px_conf *conf;    /* replaced as a whole on reload (SIGHUP) */
	struct ssl_ctx_st *tls;        /* upstream TLS context; NULL for plain TCP. The node replaces it
					* on reload (renewed certificates): take a reference (SSL_new)
					* rather than keep the pointer */
	struct stats *stats;
	struct session_set *sessions;  /* every device connection */
	struct keyex *keyex;           /* keys and the control connection; NULL in tests of the relay */
	struct policy *policy;         /* topic policy; NULL = every topic plaintext (no keyex) */
	struct seal *seal;             /* sealing and the retained cache; with keyex */
	struct devstate_table *devices; /* per-device replay state, kept across reconnects */
	struct marks *marks;           /* retained order marks per topic (marks.h), node-wide */
	uint64_t started_wall_ms;      /* wall clock at start: older live messages are not delivered */
	/* Incoming sealed messages held aside by all sessions together (session_held.c), against
	 * seal.held_max_kb and seal.held_max_messages; bytes include each copy's bookkeeping. */
	size_t held_bytes, held_count;
	bool shutting_down;
};

#endif
