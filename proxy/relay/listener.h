/* listener.h - the device-facing listening socket (listen.host:listen.port), and the address
 * resolution every listening socket of the node uses (the admin endpoint's too). */
#ifndef PX_LISTENER_H
#define PX_LISTENER_H

#include <stddef.h>

#include <event2/util.h>

#include "ctx.h"

struct listener;

/* Resolves host:port for a passive TCP socket (what: the option's name, for the error message).
 * 0 with *out set (evutil_freeaddrinfo), or -1 with a message in err. */
int listener_resolve(const char *what, const char *host, unsigned port, struct evutil_addrinfo **out,
		     char *err, size_t errlen);

/* Binds and starts accepting. NULL with a message in err on failure. */
struct listener *listener_new(struct px_ctx *ctx, char *err, size_t errlen);
/* Stops accepting new connections (shutdown); existing sessions are not touched. */
void listener_stop(struct listener *l);
void listener_free(struct listener *l); /* accepts NULL */

#endif
