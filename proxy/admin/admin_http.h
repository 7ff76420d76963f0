/* admin_http.h - read-only operations endpoint over HTTP (libevent evhttp): GET /metrics in the
 * Prometheus text format and GET /healthz (docs/OPERATIONS.md). */
#ifndef PX_ADMIN_HTTP_H
#define PX_ADMIN_HTTP_H

#include <stddef.h>

#include "ctx.h"

struct admin_http;
struct listener;

/* Binds metrics.host:metrics.port. NULL with a message in err on failure. */
struct admin_http *admin_http_new(struct px_ctx *ctx, char *err, size_t errlen);
void admin_http_free(struct admin_http *a); /* accepts NULL */
/* The device listeners whose certificates /metrics shows (mqseal_tls_cert_expiry_seconds); NULL
 * before they exist and once they are freed (at stop). Not owned. */
void admin_http_set_listener(struct admin_http *a, const struct listener *l);

#endif
