/* listener.h - the device-facing listening socket (listen.host:listen.port). */
#ifndef PX_LISTENER_H
#define PX_LISTENER_H

#include <stddef.h>

#include "ctx.h"

struct listener;

/* Binds and starts accepting. NULL with a message in err on failure. */
struct listener *listener_new(struct px_ctx *ctx, char *err, size_t errlen);
/* Stops accepting new connections (shutdown); existing sessions are not touched. */
void listener_stop(struct listener *l);
void listener_free(struct listener *l); /* accepts NULL */

#endif
