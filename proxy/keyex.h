/* keyex.h - key exchange (PROTOCOL.md §7-§9): the node's identity, its pinned peers, its epochs
 * and their rotation, announcements and confirmations over the control connection, and the key
 * ring the data path seals and opens with. */
#ifndef PX_KEYEX_H
#define PX_KEYEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctx.h"

struct keyex;
struct keyring;
struct px_conf;

struct keyex_hooks {
	void (*keys_changed)(void *arg); /* a key was installed or activated: retry what waits */
	void (*activated)(void *arg);    /* a new own epoch is active: re-seal the retained cache */
	void (*up)(void *arg);           /* the control connection is (again) up: watch again */
	/* A message on a topic watched with keyex_watch (outside the key-exchange topics). */
	void (*watched)(void *arg, const char *topic, const uint8_t *payload, size_t len);
	void *arg;
};

/* Loads the identity key (refusing one that others can read), decodes the peers' keys, reads the
 * state file. NULL with a message in err on failure. */
struct keyex *keyex_new(struct px_ctx *ctx, const struct keyex_hooks *hooks, char *err, size_t errlen);
void keyex_free(struct keyex *kx); /* erases every key; accepts NULL */
/* Starts the control connection; the first epoch is made once it is up. */
int keyex_start(struct keyex *kx);

/* The data path's view. keyex_can_seal: an active key exists, some peer holds it (or no peers are
 * configured), and it is within its limits. */
struct keyring *keyex_keyring(struct keyex *kx);
bool keyex_can_seal(const struct keyex *kx);
/* Subscribes the control connection to topic (on) or unsubscribes it; messages on it go to the
 * watched hook. -1 if the connection is down (the up hook is the time to watch again). */
int keyex_watch(struct keyex *kx, const char *topic, bool on);
/* Called after each seal: starts an early rotation at the soft usage limits. */
void keyex_after_seal(struct keyex *kx);
/* Publishes a sealed retained message over the control connection (QoS 1, RETAIN). Refused (-1)
 * once the broker has shown it does not allow that (it closed the connection at a re-publish). */
int keyex_publish_retained(struct keyex *kx, const char *topic, const uint8_t *payload, size_t len);
bool keyex_republish_allowed(const struct keyex *kx);
/* PROTOCOL.md R6: may a message sealed by sender (a key ring sender id) carry this topic? Yes for
 * this node's own devices and for a peer without a publish list; else only on a topic that one of
 * the peer's publish filters matches. */
bool keyex_may_publish(const struct keyex *kx, const char *sender, const uint8_t *topic, size_t len);

/* Applies a reloaded configuration's peers (PROTOCOL.md R15): a removed peer's keys are erased and
 * a new epoch starts at once without it; an added peer gets the current key as soon as its
 * announcement is seen. nc must stay alive while in use (it becomes ctx->conf). -1 with err set
 * if a peer key does not decode (nothing changed then). */
int keyex_reload(struct keyex *kx, const struct px_conf *nc, char *err, size_t errlen);

/* 1 when the control connection is up and every configured peer is keyed; otherwise 0 and a
 * short reason. */
int keyex_healthy(const struct keyex *kx, char *reason, size_t len);

#endif
