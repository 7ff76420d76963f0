/* kx_core.h - the sans-I/O key-exchange core (PROTOCOL.md §7-§9, issue 15): announcing, verifying,
 * deferring (rate limits), re-issuing, confirming, activating and expiring epochs, counter floors.
 * It owns no socket, no timer and reads no clock: every entry point takes the time as an argument
 * (struct kx_now), and what the core wants done comes out as a queue of actions (publish these
 * bytes, subscribe to these filters, persist this state text, keys changed, ...) that the adapter
 * (keyex.c: libmosquitto through control.c, one libevent timer, the state file) drains in order
 * after every call. A deterministic simulation drives many cores the same way with a fake clock, a
 * fake broker and a seeded random source.
 *
 * Calling pattern (adapter or simulation):
 *   core = kx_core_new(&env, state_text, &now, err, sizeof(err));
 *   loop: kx_core_handle(core, &now, &event) or kx_core_tick(core, &now) when
 *         now.mono_ms >= kx_core_next_wakeup(core);
 *         while (kx_core_next_action(core, &a)) { carry a out; if it failed: kx_core_action_failed(core, &now); }
 * A restart is kx_core_free + kx_core_new with the text of the last PERSIST action that succeeded.
 *
 * Randomness: the rotation jitter comes from env->rng (a seeded PRNG in the simulation). Key
 * material (X25519, Ed25519, AES-GCM) comes from OpenSSL: it changes bytes, never control flow.
 * Logging goes through log.h (log_set_level silences it) and counters into env->stats. */
#ifndef PX_KX_CORE_H
#define PX_KX_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kx_core;
struct keyring;
struct px_conf;
struct id_key;
struct policy;
struct stats;
struct keyex_peer_info;

/* The time of an event, from the caller's clocks. mono_ms never goes backwards; wall_ms is the
 * wall clock (ms since the Unix epoch), compared with the issued_at of peers' messages. */
struct kx_now {
	uint64_t mono_ms;
	uint64_t wall_ms;
};

/* What the core runs with. Every pointer is borrowed and must outlive the core. */
struct kx_env {
	const struct px_conf *conf;  /* node_id, keyex.*, peers, seal.padding */
	const struct id_key *id;     /* this node's identity (signs announcements, confirmations) */
	const struct policy *policy; /* topic_prefix_map for the names messages are signed under; NULL = none */
	struct stats *stats;         /* counters and gauges (stats.h); required */
	/* A uniform 32-bit random value for timing jitter; NULL = OpenSSL RAND_bytes. */
	uint32_t (*rng)(void *arg);
	void *rng_arg;
	/* The state file the PERSIST actions' text goes to: only named in log lines here. */
	const char *persist_path;
};

/* ---- events in ---- */

enum kx_event_type {
	KX_EV_UP,      /* the control connection is up (CONNACK accepted): subscribe, announce */
	KX_EV_DOWN,    /* the control connection was lost (the adapter reconnects by itself) */
	KX_EV_MESSAGE, /* a message arrived on a subscribed key-exchange topic */
	KX_EV_SEALED,  /* the data path sealed a message: the soft usage limits may start a rotation */
	KX_EV_STOP,    /* a clean stop is coming: last messages before DISCONNECT (presence offline) */
	KX_EV_CONNECTING, /* a control connection is about to be opened: its will (SET_WILL) */
};

struct kx_event {
	enum kx_event_type type;
	/* KX_EV_MESSAGE only: */
	const char *topic;
	const uint8_t *payload;
	size_t len;
	bool retained; /* delivered with RETAIN=1 (the broker's retained copy) */
};

/* ---- actions out ---- */

/* The most filters in one SUBSCRIBE or UNSUBSCRIBE action (kx2.md: batches of at most 100). */
#define KX_SUB_BATCH 100

enum kx_action_type {
	KX_ACT_PUBLISH,      /* topic, data/len, qos, retain (len 0 + retain: clear a retained message) */
	KX_ACT_SUBSCRIBE,    /* filters[nfilters] (<= KX_SUB_BATCH), qos; a SUBSCRIBE replays retained ones */
	KX_ACT_UNSUBSCRIBE,  /* filters[nfilters] (<= KX_SUB_BATCH) */
	KX_ACT_PERSIST,      /* data/len: the whole new text of the state file; write it atomically
	                      * (temporary file, fsync, rename). If that fails, call kx_core_action_failed:
	                      * the publishes queued after it are dropped (nothing is announced that a
	                      * restart could contradict) and retried after the next PERSIST. */
	KX_ACT_KEYS_CHANGED, /* a key was installed, activated or erased: retry what waits for keys */
	KX_ACT_ACTIVATED,    /* a new own epoch is active: re-seal the retained cache */
	KX_ACT_SET_WILL,     /* topic, data/len, qos, retain: the MQTT will for the next CONNECT
	                      * (data NULL: no will) */
};

struct kx_action {
	enum kx_action_type type;
	const char *topic;
	const uint8_t *data;
	size_t len;
	int qos;
	bool retain;
	const char *const *filters;
	size_t nfilters;
};

/* ---- life cycle ---- */

/* Decodes the peers' keys, reads state_text (the state file's content, NULL or "" when there is
 * none) and queues a PERSIST of it. NULL with a message in err on failure. */
struct kx_core *kx_core_new(const struct kx_env *env, const char *state_text, const struct kx_now *now,
			    char *err, size_t errlen);
void kx_core_free(struct kx_core *c); /* erases every key; accepts NULL */

/* Feeds one event. 0, or -1 if ev is not understood (nothing changed). */
int kx_core_handle(struct kx_core *c, const struct kx_now *now, const struct kx_event *ev);
/* Housekeeping (rotation, activation deadline, expiry, deferred verifications, re-issues): call
 * when now->mono_ms >= kx_core_next_wakeup(c); calling it earlier is harmless. */
void kx_core_tick(struct kx_core *c, const struct kx_now *now);
/* The monotonic ms at which kx_core_tick must be called next (never more than 250 ms after the
 * last call of an entry point). */
uint64_t kx_core_next_wakeup(const struct kx_core *c);

/* Applies a reloaded configuration's peers (R15): a removed peer's keys are erased and a new
 * epoch (REVOKE) starts at once without it; added peers are subscribed to. Only nc's peers are
 * read, and nc->peers (the array: the node moves it into the running configuration) must stay
 * alive while in use; every other option keeps coming from env->conf, which the caller updates
 * in place (the node copies the reloadable options into it). -1 with err set if a peer key does
 * not decode (nothing changed then). */
int kx_core_reload(struct kx_core *c, const struct kx_now *now, const struct px_conf *nc, char *err,
		   size_t errlen);

/* Replaces env->policy (the node builds a new one on reload, after kx_core_reload). */
void kx_core_set_policy(struct kx_core *c, const struct policy *policy);

/* Takes the oldest queued action into *out; false when the queue is empty. out's pointers stay
 * valid until the next call of any kx_core_* function. */
bool kx_core_next_action(struct kx_core *c, struct kx_action *out);
/* The action last taken could not be carried out (a PUBLISH refused, a PERSIST not written): the
 * core marks that work as due again; after a PERSIST the rest of the queue is dropped. */
void kx_core_action_failed(struct kx_core *c, const struct kx_now *now);

/* ---- queries (the data path, admin /peers, status, the simulation's invariants) ---- */

/* The key ring the data path seals and opens with; owned by the core. */
struct keyring *kx_core_keyring(struct kx_core *c);
/* The control connection is up, as the last UP/DOWN event said. */
bool kx_core_is_up(const struct kx_core *c);
/* An active key exists, some peer holds it (or no peers are configured), within its limits. */
bool kx_core_can_seal(const struct kx_core *c, const struct kx_now *now);
/* R6: may a message sealed by sender carry this topic (see keyex_may_publish)? */
bool kx_core_may_publish(const struct kx_core *c, const char *sender, const uint8_t *topic, size_t len);
struct id_pub;
/* The pinned identity key of the configured peer sender; NULL if sender is not one. */
const struct id_pub *kx_core_peer_pub(const struct kx_core *c, const char *sender);
/* Peers keyed now: live, and this node holds their current key (the peers_keyed gauge). */
size_t kx_core_peers_keyed(const struct kx_core *c, const struct kx_now *now);
size_t kx_core_peer_count(const struct kx_core *c);
/* Fills out for peer i (0 <= i < kx_core_peer_count), in configuration order. */
void kx_core_peer_info(const struct kx_core *c, const struct kx_now *now, size_t i,
		       struct keyex_peer_info *out);
/* Is id a configured peer, and is it keyed now (live, current key held)? */
bool kx_core_peer_keyed(const struct kx_core *c, const struct kx_now *now, const char *id);
/* A message sealed by sender was opened (reason < 0) or dropped for reason (enum stats_drop). */
void kx_core_count_message(struct kx_core *c, const char *sender, int reason);
uint64_t kx_core_ignored_not_a_peer(const struct kx_core *c);
/* Entries of a named group this node's configuration does not let it read (PROTOCOL.md §7.3 step 8). */
uint64_t kx_core_ignored_group_entries(const struct kx_core *c);
/* Peers whose last presence message said online (keyex.presence). */
size_t kx_core_peers_present(const struct kx_core *c);

#endif
