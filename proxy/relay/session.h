/* session.h - one device connection and its own connection to the broker: the MQTT session that
 * mqseal relays packet by packet (ARCHITECTURE.md, "Session states"). */
#ifndef PX_SESSION_H
#define PX_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include <event2/util.h>

#include "ctx.h"

struct bufferevent;
struct sockaddr;
struct session;
struct session_set;

/* The set of live sessions of a node. */
struct session_set *session_set_new(void);
/* Frees the set and every session in it (closing their sockets at once). Accepts NULL. */
void session_set_free(struct session_set *set);
size_t session_set_count(const struct session_set *set);
/* Calls fn for each live session; fn may close the session it is given. */
void session_set_foreach(struct session_set *set, void (*fn)(struct session *s, void *arg), void *arg);

/* Takes ownership of fd (an accepted device connection) and adds the session to ctx->sessions.
 * Returns NULL (fd closed) on allocation failure. */
struct session *session_new(struct px_ctx *ctx, evutil_socket_t fd, const struct sockaddr *sa, int salen);

/* Takes ownership of dev, the device side of a TLS or WebSocket listener after its handshake (an
 * OpenSSL bufferevent, or a WebSocket filter over a socket or OpenSSL one), and adds the session.
 * Such a side has no direct writes: every byte goes through the bufferevent (its framing layer).
 * sa: the device's address. Returns NULL (dev freed) on allocation failure. */
struct session *session_new_dev(struct px_ctx *ctx, struct bufferevent *dev, const struct sockaddr *sa);

/* Orderly close: flushes what is queued for each side, then frees (from a deferred callback). */
void session_close(struct session *s, const char *why);

/* Node shutdown: stop reading from the device, let the device's in-flight QoS 1/2 publishes be
 * acknowledged by the broker (and the acks reach the device), then close. */
void session_shutdown(struct session *s);

/* Called by keyex when keys change: held publishes may go out, waiting opens may retry. */
void session_keys_changed(struct session *s);

#endif
