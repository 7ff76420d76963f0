/* listener.h - the device-facing listening sockets: listen (plain TCP) and the entries of
 * listeners (plain TCP, TLS, WebSocket, WebSocket over TLS); and the address resolution every
 * listening socket of the node uses (the admin endpoint's too). */
#ifndef PX_LISTENER_H
#define PX_LISTENER_H

#include <stddef.h>

#include <event2/util.h>

#include "ctx.h"

struct listener;
struct conf_listener;
struct px_conf;
struct ssl_ctx_st;

/* The server TLS context of a TLS listener: TLS 1.2 or newer, its certificate chain and key,
 * and with client_ca_file, client certificates required and verified against it. NULL with
 * "FILE:LINE: listeners[i].tls.<option>: problem" in err (also used by `mqseal check`). The
 * caller frees it (SSL_CTX_free). */
struct ssl_ctx_st *listener_tls_new(const struct px_conf *conf, const struct conf_listener *l, char *err,
				    size_t errlen);

/* Resolves host:port for a passive TCP socket (what: the option's name, for the error message).
 * 0 with *out set (evutil_freeaddrinfo), or -1 with a message in err. */
int listener_resolve(const char *what, const char *host, unsigned port, struct evutil_addrinfo **out,
		     char *err, size_t errlen);

/* Binds every listener and starts accepting. NULL with a message in err on failure. */
struct listener *listener_new(struct px_ctx *ctx, char *err, size_t errlen);
/* Stops accepting new connections (shutdown); existing sessions are not touched. */
void listener_stop(struct listener *l);
void listener_free(struct listener *l); /* accepts NULL */

#endif
