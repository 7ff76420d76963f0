/* upstream.h - one attempt to connect to the broker for a device session (struct upstream), and
 * the TLS client context all of them share (broker.tls.*). The attempt resolves broker.host
 * without blocking, connects over plain TCP or TLS (SNI, certificate and host name verification),
 * bounds the whole by broker.connect_timeout_seconds, and hands its owner either the connected
 * bufferevent or a failure with the reason in words. It knows nothing of MQTT or sessions. */
#ifndef PX_UPSTREAM_H
#define PX_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

struct bufferevent;
struct conf_tls;
struct px_ctx;
struct upstream;

/* What the attempt tells its owner; arg is the owner's, given to upstream_open. Each attempt
 * calls exactly one of them, once, as the last thing it does: the owner may free the attempt
 * (upstream_free) from inside the call, and must free it at some point. */
struct upstream_owner {
	/* The connection is up (TLS: handshake done, certificate verified). bev is the owner's from
	 * now on (upstream_free no longer frees it), with no callbacks, reading and writing off: the
	 * owner sets its callbacks and enables it, and what it queued meanwhile is written then.
	 * plain: a plain TCP socket (no framing under it: the owner may write to it directly). */
	void (*connected)(void *arg, struct bufferevent *bev, bool plain);
	/* The connection could not be made; why says why, for a log line ("timed out after 10s",
	 * "cannot resolve HOST: ...", "TLS: ...", the socket error), valid during the call only. */
	void (*failed)(void *arg, const char *why);
};

/* Starts connecting to broker.host:broker.port with the node's broker settings (ctx->conf,
 * ctx->tls: TLS when set). owner must outlive the attempt (a static table). NULL when the attempt
 * could not even start, with why written into why[0..cap) and no callback to come. */
struct upstream *upstream_open(struct px_ctx *ctx, const struct upstream_owner *owner, void *arg, char *why,
			       size_t cap);
/* The bufferevent of the connection being made, still the attempt's: the owner may queue output
 * on it (written once connected) and turn its reading or writing off, but not set its callbacks,
 * enable it or free it. NULL once handed over. */
struct bufferevent *upstream_bev(const struct upstream *u);
/* Ends the attempt: frees its bufferevent (closing the socket) unless handed over. NULL is fine. */
void upstream_free(struct upstream *u);

/* Builds a client SSL_CTX: TLS 1.2 or later, peer verification against ca_file/ca_path (or the
 * system store), optional client certificate. NULL with a message in err on failure. */
SSL_CTX *upstream_tls_new(const struct conf_tls *tls, char *err, size_t errlen);

#endif
