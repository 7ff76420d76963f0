/* devstate.h - what a node remembers about one device (MQTT client id) across its reconnects:
 * its replay state for every receive key, and the sealed messages delivered to it that it has not
 * acknowledged yet (which the broker must redeliver, same packet id, after a reconnect). Kept
 * while the device is connected and, for a persistent session, until every key it could hold
 * state for has expired. */
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

/* The state of client_id (len bytes; empty = a state of its own, never shared). fresh: the device
 * starts a clean session: any old state is dropped. NULL on allocation failure. */
struct devstate *devstate_attach(struct devstate_table *t, const uint8_t *client_id, size_t len, bool fresh);
/* The session closed at now_ms; persistent: the broker keeps the session (state kept until
 * keep_ms later), else it is dropped at once. At most max_kept states are kept for devices that
 * are gone (client ids are the devices' choice: a stream of new ones must not grow memory); past
 * that, the state is dropped at once. */
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

#endif
