/* listener.h - the device-facing listening sockets: listen (plain TCP) and the entries of
 * listeners (plain TCP, TLS, WebSocket, WebSocket over TLS); and the address resolution every
 * listening socket of the node uses (the admin endpoint's too). */
#ifndef PX_LISTENER_H
#define PX_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* One TLS listener's certificate, for mqseal_tls_cert_expiry_seconds. */
struct listener_cert {
	const char *addr; /* "host:port" as configured ("[v6]:port"); valid while the listener is */
	int64_t not_after; /* the certificate's notAfter, Unix time */
};

/* Binds every listener and starts accepting. NULL with a message in err on failure. */
struct listener *listener_new(struct px_ctx *ctx, char *err, size_t errlen);
/* Stops accepting new connections (shutdown); existing sessions are not touched. */
void listener_stop(struct listener *l);
void listener_free(struct listener *l); /* accepts NULL */

/* Reload (SIGHUP): each TLS listener reads its cert_file, key_file and client_ca_file again (the
 * paths in force) into a new context, checked as at start, which then replaces the old one for new
 * connections (open ones keep theirs). A listener whose files fail keeps its context; its problem
 * is logged ("FILE:LINE: listeners[i].tls.<option>: path: reason") and the first one goes to
 * err. Returns how many listeners failed (0: all reloaded, or none has TLS). */
size_t listener_reload_tls(struct listener *l, char *err, size_t errlen);
/* The i-th TLS listener's certificate (i from 0); false past the last one. */
bool listener_cert_at(const struct listener *l, size_t i, struct listener_cert *out);

#endif
