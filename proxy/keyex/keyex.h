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

/* Source authentication (PROTOCOL.md §5.8): the identity key this node signs its messages on
 * groups with writers with, and the pinned public identity key of sender (this node's own for its
 * own id, a configured peer's, NULL for anyone else). Both owned by kx; a peer's is valid until
 * the next reload. */
struct id_key;
struct id_pub;
const struct id_key *keyex_identity(const struct keyex *kx);
const struct id_pub *keyex_sender_pub(const struct keyex *kx, const char *sender);

/* Applies a reloaded configuration's peers (PROTOCOL.md R15): a removed peer's keys are erased and
 * a new epoch starts at once without it; an added peer gets the current key as soon as its
 * announcement is seen. nc must stay alive while in use (it becomes ctx->conf). -1 with err set
 * if a peer key does not decode (nothing changed then). */
int keyex_reload(struct keyex *kx, const struct px_conf *nc, char *err, size_t errlen);

/* 1 when the control connection is up and every configured peer is keyed; otherwise 0 and a
 * short reason. */
int keyex_healthy(const struct keyex *kx, char *reason, size_t len);

/* ---- per-peer state for operators (keyex_peers.c): GET /peers, `mqseal status`, /readyz ---- */

/* What this node knows about one configured peer. Strings are static or the peer's id (valid
 * until the next reload); times are wall-clock milliseconds, 0 = never. */
struct keyex_peer_info {
	const char *id;
	/* "keyed", or why not: never_announced, no_entry (its announcement has no entry for us),
	 * unknown_key (its entry for us wraps to an ephemeral key we no longer hold), bad_signature,
	 * clock_skew, stale (its last announcement expired or was older than one we had), or the
	 * name of another rejection reason (mqseal_announcements_rejected_total's labels) */
	const char *why;
	const char *last_rejected;     /* reason of its last rejected message; NULL = none */
	uint64_t their_epoch;          /* newest epoch of theirs accepted (0: none) */
	uint64_t their_epoch_held;     /* newest epoch of theirs whose key we hold (0: none) */
	uint64_t our_epoch_held;       /* newest epoch of ours it confirmed holding (0: none) */
	uint64_t last_announcement_ms; /* last announcement accepted */
	uint64_t last_confirmation_ms; /* last confirmation accepted */
	uint64_t last_rejected_ms;
	uint64_t opened;               /* its messages opened for this node's devices */
	const uint64_t *dropped;       /* DROP__COUNT counters (stats.h): its messages dropped */
	bool keyed;                    /* live, and we hold its current key */
	int present;                   /* presence: 1 online, 0 offline (away), -1 unknown or off */
};

/* This node's public key line ("ed25519:..."), as the peers must list it; "" if it does not fit. */
void keyex_public_text(const struct keyex *kx, char *out, size_t len);
size_t keyex_peer_count(const struct keyex *kx);
/* Fills out for peer i (0 <= i < keyex_peer_count), in configuration order. */
void keyex_peer_info(const struct keyex *kx, size_t i, struct keyex_peer_info *out);
/* A message sealed by sender was opened for a device (reason < 0) or dropped for reason (an enum
 * stats_drop). Senders that are not peers (this node's own devices) are not counted. */
void keyex_peer_count_message(struct keyex *kx, const char *sender, int reason);
/* Announcements from nodes that are not configured peers (not a failure: mqseal_announcements_ignored_total). */
uint64_t keyex_ignored_not_a_peer(const struct keyex *kx);
/* Entries of named groups this node's configuration does not let it read (the fleet's groups differ). */
uint64_t keyex_group_entries_ignored(const struct keyex *kx);
/* 1 when the control connection is up and at least need peers are keyed (need is capped at the
 * number of peers); otherwise 0 and a short reason. */
int keyex_ready(const struct keyex *kx, size_t need, char *reason, size_t len);

#endif
