/* listener_internal.h - what listener.c (the listening sockets, the TLS contexts, the connection
 * limit) and listener_hs.c (a TLS or WebSocket connection's handshake before its session) share.
 * Not for other modules. */
#ifndef PX_LISTENER_INTERNAL_H
#define PX_LISTENER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <event2/listener.h>
#include <event2/util.h>

#include "ctx.h"
#include "listener.h"
#include "log.h"

struct ssl_ctx_st;
struct listener_hs;

/* One listening socket: listen, or an entry of listeners. */
struct listener_sock {
	struct listener *owner;
	struct evconnlistener *evl;
	struct ssl_ctx_st *tls; /* server context, built at start and again by each reload (the
				 * connections made with the old one keep it: OpenSSL counts) */
	const struct conf_listener *conf; /* its entry (NULL for listen): the files a reload reads */
	const char *ws_path;    /* WebSocket request path (the configuration's); NULL = raw MQTT */
	int64_t not_after;      /* the TLS certificate's notAfter, Unix time */
	char addr[72];          /* "host:port" ("[v6]:port"): the metric's label */
	char name[96];          /* for log lines: "listeners[0] 0.0.0.0:8883 (TLS)" */
};

struct listener {
	struct px_ctx *ctx;
	struct event *resume;           /* re-enables accepting after descriptors ran out */
	struct log_limit reject_limit;
	struct listener_hs *hs;         /* handshakes under way (listener_hs.c) */
	size_t nhs;                     /* they count against listen.max_connections */
	size_t nsocks;
	struct listener_sock socks[];   /* listen first, then listeners[] in order */
};

/* Takes fd, accepted on a TLS or WebSocket socket, through its handshake to session_new_dev. */
void listener_hs_start_(struct listener_sock *ls, evutil_socket_t fd, const struct sockaddr *sa, int salen);
/* Drops every handshake under way (shutdown). */
void listener_hs_free_all_(struct listener *l);

#endif
