/* upstream.h - the TLS client context for broker connections (broker.tls.*). The per-session
 * connection itself is opened by session_upstream_start_ (upstream.c). */
#ifndef PX_UPSTREAM_H
#define PX_UPSTREAM_H

#include <stddef.h>

#include <openssl/ssl.h>

struct conf_tls;

/* Builds a client SSL_CTX: TLS 1.2 or later, peer verification against ca_file/ca_path (or the
 * system store), optional client certificate. NULL with a message in err on failure. */
SSL_CTX *upstream_tls_new(const struct conf_tls *tls, char *err, size_t errlen);

#endif
