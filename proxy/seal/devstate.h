/* devstate.h - what a node remembers about one device (MQTT client id) across its reconnects
 * (PROTOCOL.md §6.2): its replay state for every receive key, the sealed messages delivered to it
 * that it has not acknowledged yet (which the broker must redeliver, same packet id, after a
 * reconnect), its subscriptions with the time each began (a message sealed well before the
 * subscription that covers its topic is not delivered), the recent deliveries that overlapping
 * subscriptions may repeat, and the retained repeats its subscriptions allow. Kept while the device
 * is connected and afterwards, clean session or not, until every key it could hold state for has
 * expired (bounded: see devstate_detach). */
#ifndef PX_DEVSTATE_H
#define PX_DEVSTATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "envelope.h"

struct keyring;
struct keyring_rx;
struct devstate;
struct devstate_table;

struct devstate_table *devstate_table_new(void);
void devstate_table_free(struct devstate_table *t); /* accepts NULL */

/* The state of client_id (len bytes; empty = a state of its own, never shared), for a connection
 * that began at wall_ms. A clean session keeps the replay state (a clean start must not reopen
 * the replay window: §6.2); devstate_session_reset drops what belonged to the broker's session.
 * NULL on allocation failure. */
struct devstate *devstate_attach(struct devstate_table *t, const uint8_t *client_id, size_t len, uint64_t wall_ms);
/* A device that connected without a client id was given one by the broker (CONNACK Assigned
 * Client Identifier): its state is known by that id from now on, so that the device, resuming under
 * it, keeps its replay windows. Nothing happens if d has an id or the id is in use already. */
void devstate_adopt(struct devstate_table *t, struct devstate *d, const uint8_t *client_id, size_t len);
/* The session closed at now_ms (monotonic): the state is kept until keep_ms later, clean session
 * or not, so a reconnect cannot replay what the device already got; persistent: the broker keeps
 * the session (its subscriptions' start times matter for what it queues). A state with nothing to
 * protect (no message opened for it, no persistent session) is dropped at once, and so is a state
 * without client id. At most max_kept states are kept for devices that are gone (client ids are
 * the devices' choice: a stream of new ones must not grow memory); past that, the state is
 * dropped at once (such a device is then protected by the subscription times alone, §6.2). */
void devstate_detach(struct devstate_table *t, struct devstate *d, bool persistent, uint64_t now_ms,
		     uint64_t keep_ms, size_t max_kept);
/* Drops detached states past their time and per-key state of erased keys. */
void devstate_gc(struct devstate_table *t, const struct keyring *kr, uint64_t now_ms);
size_t devstate_count(const struct devstate_table *t);

struct keyring_rx *devstate_rx(struct devstate *d);
/* Delivered-but-unacknowledged sealed messages, by the broker's packet id. */
void devstate_pending_put(struct devstate *d, uint16_t pid, const uint8_t key_id[static ENV_KEY_ID_LEN],
			  uint64_t counter);
bool devstate_pending_match(const struct devstate *d, uint16_t pid, const uint8_t key_id[static ENV_KEY_ID_LEN],
			    uint64_t counter);
void devstate_pending_ack(struct devstate *d, uint16_t pid);

/* ---- subscriptions and delivery (PROTOCOL.md §6.2) ---- */
#define DEVSTATE_SUBS_MAX   256 /* subscriptions tracked per device; more are "untracked" */
#define DEVSTATE_COPIES     32  /* recent deliveries that overlapping subscriptions may repeat */
#define DEVSTATE_CREDITS    64  /* topics whose retained repeat is remembered */
#define DEVSTATE_DIGEST_LEN 16  /* topic digests here: the first 16 bytes of SHA-256 */

/* The broker has no session for the device (CONNACK Session Present = 0): its subscriptions and
 * unacknowledged deliveries are gone; the replay windows stay. */
void devstate_session_reset(struct devstate *d);
/* The device subscribed to filter (a "$share/g/f" counts as f) at wall_ms; re-subscribing keeps
 * the first start and grants one more retained repeat. 0, or -1 out of memory (the filter is then
 * untracked: its topics are judged by the newest untracked start). */
int devstate_subscribe(struct devstate *d, const uint8_t *filter, size_t len, uint64_t wall_ms);
void devstate_unsubscribe(struct devstate *d, const uint8_t *filter, size_t len);

/* What the device's subscriptions say about topic: the earliest start of a subscription that
 * matches it (the connection's start if none is known), and how many match (at least 1). */
struct devstate_match {
	uint64_t start_ms;
	unsigned count;
	uint32_t gen; /* newest subscribe generation among them (retained repeats) */
};
void devstate_match(const struct devstate *d, const uint8_t *topic, size_t len, struct devstate_match *out);

/* Copies: the first delivery of (key id, counter) is recorded; later ones (the broker's copy per
 * overlapping subscription, MQTT-3.3.4-5) pass while fewer than max have gone. */
void devstate_copy_first(struct devstate *d, const uint8_t key_id[static ENV_KEY_ID_LEN], uint64_t counter);
bool devstate_copy_take(struct devstate *d, const uint8_t key_id[static ENV_KEY_ID_LEN], uint64_t counter,
			unsigned max);
/* Retained repeats: the device got a retained-intent value on this topic (now, at the current
 * subscribe generation). A subscription matching the topic made after that (its generation gen
 * is newer) allows the broker to send the same value once more; nothing else does. */
void devstate_credit_note(struct devstate *d, const uint8_t digest[static DEVSTATE_DIGEST_LEN]);
bool devstate_credit_take(struct devstate *d, const uint8_t digest[static DEVSTATE_DIGEST_LEN], uint32_t gen);
/* Has the device had a retained-intent value on this topic (as far as the last DEVSTATE_CREDITS
 * topics go)? */
bool devstate_credit_had(const struct devstate *d, const uint8_t digest[static DEVSTATE_DIGEST_LEN]);

#endif
