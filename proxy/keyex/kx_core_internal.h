/* kx_internal.h - struct keyex and its peers, shared by keyex.c (epochs, rotation, activation,
 * announcing), kx_rx.c (what arrives on the key-exchange topics) and kx_state.c (the
 * persisted epoch record). Not for other modules. */
#ifndef PX_KX_INTERNAL_H
#define PX_KX_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "announce.h"
#include "identity.h"
#include "keyex.h"
#include "kx_core.h"
#include "kx_presence.h"
#include "keyring.h"
#include "log.h"
#include "stats.h"

#define KX_REISSUE_DEBOUNCE_MS 1000   /* R37, per peer */
/* The longest key-exchange topic we build: prefix (<= 64, conf) + "/presence/" or "/kx/" + two
 * ids (<= 64 each), NUL included. */
#define KX_TOPIC_MAX 256
#define KX_KEYRING_MAX 65536 /* the key ring's bound on its receive table (keyring_new) */
#define KX_IN_FLIGHT_MS 3000          /* our last announcement may still be on its way */
#define KX_CROSSED_MS 250             /* a peer announcing this long after us had the time to see it */
#define KX_REPUBLISH_FLAP_MS 2000     /* connection lost this soon after re-publishing: refused */
#define KX_ACK_SLACK_MS 300000        /* §14 confirmation slack */
#define KX_BUCKET_BURST 10            /* R44: per-peer verification burst */
#define KX_BUCKET_MS 1000             /* one token per second per peer */
/* R44: verifications per second overall. With exact per-peer subscriptions (protocol v2) only
 * peers' messages reach us, and 1,000 peers starting cold must verify in about a second
 * (Ed25519 verification is ~60 us). */
#define KX_GLOBAL_PER_S 2000
/* Flood resistance (PROTOCOL.md §7.3 step 5). Failed verifications are charged to the peer whose
 * topic carried them: for KX_SUSPECT_MS after a bad signature that peer is "suspect": its bucket
 * holds at most KX_SUSPECT_BURST tokens, and suspect peers together take at most
 * KX_GLOBAL_SUSPECT_PER_S of the overall KX_GLOBAL_PER_S, so forgeries on some topics never
 * eat the budget of the others. */
#define KX_SUSPECT_MS 10000
#define KX_SUSPECT_BURST 2
#define KX_GLOBAL_SUSPECT_PER_S 25
/* Rate-limited announcements kept per peer: the newest KX_DEFERRED_MAX live ones, plus one
 * delivered as the broker's retained copy, which live messages never displace. 4 x 65 KiB at most
 * per peer. */
#define KX_DEFERRED_MAX 4
/* While a peer's topic is contested (a bad signature or a displaced candidate within
 * KX_SUSPECT_MS), the retained announcements are asked for again (a new SUBSCRIBE) at most
 * this often: the retained copy is the peer's own unless someone can publish retained on its topic. */
#define KX_REREQUEST_MS 2000
/* After a reload made us a reader of a group: how long a peer's current announcement may be taken
 * once more, from the SUBSCRIBE that asks the broker for its retained copy (§11.1). */
#define KX_REFETCH_MS 30000
#define KX_TICK_MS 250                /* housekeeping timer, and counter sampling */
#define KX_HISTORY 1024               /* counter samples kept: 256 s at one per tick */
#define KX_GROUPS_MAX (ANN_MAX_ENTRIES - 1) /* named groups per epoch (§7.2: 1 + groups entries) */

/* A message kept for later because the verification budget was spent. */
struct kx_deferred {
	uint8_t *buf;
	size_t len;
	char *topic;
};

struct conf_peer;

struct kx_peer {
	/* 8-byte fields first, then 4, then bytes: no padding holes (clang-analyzer optin.Padding) */
	struct id_pub *pub;
	const struct conf_peer *conf; /* its entry in the running configuration (the publish list) */
	uint64_t epoch;            /* last accepted, persisted with rev: nothing older or equal again */
	uint64_t ann_expires_wall; /* issued_at + 1.5 * interval + skew: then the peer is not live */
	uint64_t epoch_start_wall; /* when it began to hold none of our keys (its restart); 0: floor 0 */
	uint64_t acked;            /* newest of our epochs the peer confirmed holding */
	/* rate limits (R44), announcements and confirmations apart, and what waits for a token */
	uint64_t tokens_at, ack_tokens_at;
	uint64_t failed_mono;      /* last bad signature on its topics (0: none): suspect for a while */
	uint64_t contested_mono;   /* last bad signature or displaced candidate (0: none) */
	struct kx_deferred ann_retained;                 /* delivered with RETAIN=1: verified first */
	struct kx_deferred ann_live[KX_DEFERRED_MAX]; /* newest first */
	struct kx_deferred pending_ack;                  /* the newest confirmation */
	struct log_limit reject_log; /* log once per state, not per message */
	/* What GET /peers and `mqseal status` say about it (kx_peers.c); wall-clock ms, 0 = never */
	uint64_t last_ann_wall;    /* last announcement accepted */
	uint64_t last_ack_wall;    /* last confirmation accepted */
	uint64_t last_reject_wall; /* last announcement or confirmation rejected */
	uint64_t no_entry_mono;    /* since when its announcements have had no entry for us (0: they have) */
	uint64_t no_entry_epoch;   /* its epoch last warned about for having no entry for us */
	uint64_t opened;           /* its messages opened for our devices */
	uint64_t dropped[DROP__COUNT]; /* its messages dropped, where the drop knows the sender */
	unsigned last_reject;      /* 1 + enum stats_reject of the last rejection; 0 = none */
	/* our messages to it (protocol v2: one per recipient) */
	uint64_t out_epoch;        /* the epoch rev_out counts in */
	uint64_t reissue_last_mono;
	uint64_t announced_mono;   /* when our last message to it was published (monotonic) */
	uint64_t announced_wall;   /* the same, wall clock (compared with its issued_at) */
	/* the newest epoch of its whose key we installed, and when that key expires (the key ring's
	 * lifetime, mirrored: no scan of the key ring per peer) */
	uint64_t held_epoch;
	uint64_t held_until_mono;
	uint32_t rev_out;          /* rev of our last message to it in out_epoch */
	uint32_t rev;
	uint32_t interval_s;
	unsigned tokens, ack_tokens;
	bool have_ann;             /* the last announcement is accepted */
	bool floor_known;          /* epoch_start_wall was set for its current epoch */
	bool holds_none;           /* its last accepted announcement held none of our keys */
	bool eph_weak;             /* eph_pub gave an all-zero X25519 result: never wrap to it */
	bool wrapped_valid;        /* our latest announcement has an entry for the peer's eph_pub */
	bool must_confirm;         /* a live peer at the last rotation: activation waits for it */
	bool no_entry;             /* its accepted announcement has no entry for us */
	bool out_sent;             /* a message of out_epoch went out (the next is a re-issue) */
	bool announce_due;         /* our message to it is still to be sent (connection down) */
	bool reissue_pending;      /* a re-issue waits for its debounce */
	bool added;                /* new in this reload: subscribe to it */
	bool refetch;              /* a reload made us a reader of a group it seals: its current
				    * announcement (the retained copy) is taken once more (§7.3 step 4) */
	struct kx_pres_peer pres;  /* its presence (kx_presence.h) */
	bool unknown_key;          /* ... has one, wrapped to an ephemeral key we do not hold */
	uint8_t eph_pub[KEX_PUB_LEN];
	uint8_t wrapped_to[KEX_PUB_LEN];
	char id[ANN_ID_MAX + 1];
};

/* The newest epoch's data counter at a moment, for the per-peer counter floor (PROTOCOL.md §6.3). */
struct kx_sample {
	uint64_t wall_ms;
	uint64_t epoch;
	uint64_t counter;
};

/* One queued action (kx_core.h): owned copies of what it points to. */
struct kx_qaction {
	struct kx_action a;
	char *topic;
	uint8_t *data;
	char **filters;
	int tag;      /* enum kx_tag: what kx_core_action_failed must undo */
	char *peer;   /* the peer a PUBLISH is for (NULL: none) */
	bool dropped; /* after a failed PERSIST: skipped */
};

enum kx_tag { KX_TAG_NONE = 0, KX_TAG_ANNOUNCE, KX_TAG_ACK };

struct kx_core {
	struct kx_env env;
	const struct px_conf *conf; /* env.conf, replaced by kx_core_reload */
	struct stats *stats;        /* env.stats */
	struct kx_now now;          /* the time of the entry point being run */
	struct keyring *kr;
	struct kx_peer *peers;
	size_t npeers;
	bool up;                 /* the control connection is up (UP/DOWN events) */
	bool restricted;         /* some peer has a publish list (R6): kx_may_publish looks */
	uint32_t *index;         /* open addressing by px_fnv1a(id): 1 + index into peers; 0 = empty */
	size_t index_cap;        /* a power of two >= 2 * npeers */
	size_t unconfirmed;      /* must_confirm peers that have not confirmed the pending epoch */
	uint64_t revoke_epoch;   /* an epoch begun because a peer was removed: its messages say REVOKE */
	struct kx_pres_self pres_self; /* this node's presence sessions */
	char **forget;           /* peers removed while disconnected: their retained message to clear */
	size_t nforget;
	uint64_t pres_repair_mono;     /* own retained presence last said again */
	char *topic_ack_sub;     /* <prefix>/ack/<node_id>/+ */
	size_t prefix_len;
	/* own epochs */
	uint32_t rev;            /* revision of the newest epoch's announcement */
	uint64_t state_epoch;    /* last epoch written to the state file */
	bool persist_due;        /* peers' (epoch, rev) changed: persist at the next tick */
	uint64_t epoch_created_mono; /* when the newest epoch was created */
	uint64_t rotate_at_mono;     /* next rotation (jittered) */
	uint64_t activate_at_mono;   /* activation deadline of the pending epoch; 0 = none */
	uint64_t last_tick_mono;     /* the last kx_core_tick */
	bool ready;                  /* some peer holds our active key (or we have no peers) */
	bool revoking;               /* a reload removed a peer: the next epoch is active at once (§9.6) */
	uint64_t global_window_start;
	uint64_t rerequest_mono;     /* last SUBSCRIBE that asked for the retained announcements again */
	unsigned global_count;       /* verifications in the current second */
	unsigned global_suspect;     /* of which for suspect peers */
	struct kx_sample hist[KX_HISTORY];
	size_t hist_next, hist_n;
	/* the named-group keys' counters of each sample, KX_GROUPS_MAX per sample in the order of the
	 * newest epoch's groups (keyring_newest_group_at); NULL until an epoch has named groups */
	uint64_t *ghist;
	struct log_limit log_reject;
	struct log_limit log_group;  /* entries of groups this node does not read (§7.3 step 8) */
	uint64_t ignored_group_entries;
	bool refetch_due;            /* peers with refetch: subscribe to their topics again (next tick) */
	uint64_t refetch_until_mono; /* refetch is honoured until then (KX_REFETCH_MS) */
	uint64_t ignored_not_a_peer; /* announcements of nodes that are not our peers (a star fleet) */
	/* the action queue: q[qhead..qn) wait; q[qhead - 1] is the one last taken */
	struct kx_qaction *q;
	size_t qn, qcap, qhead;
};

struct kx_batch;

/* kx_core.c */
/* Our announcement to every peer; to one peer (<prefix>/kx/<peer>/<me>). */
void kx_announce_(struct kx_core *kx, bool reissue);
void kx_announce_peer_(struct kx_core *kx, struct kx_peer *p, bool reissue);
void kx_request_reissue_(struct kx_core *kx, struct kx_peer *p);
/* Sets p->acked, keeping kx->unconfirmed right; kx_count_unconfirmed_ counts it afresh. */
void kx_set_acked_(struct kx_core *kx, struct kx_peer *p, uint64_t acked);
void kx_count_unconfirmed_(struct kx_core *kx);
bool kx_peer_keyed_(const struct kx_peer *p, const struct kx_now *now);
/* <prefix>/<kind>/<a>/<b> into out; -1 if it does not fit. */
int kx_topic_(const struct kx_core *kx, char out[static KX_TOPIC_MAX], const char *kind, const char *a,
	      const char *b);
/* The filters this node subscribes to for peer p (its messages to us). */
int kx_peer_filters_(struct kx_core *kx, struct kx_batch *b, const struct kx_peer *p);
/* Subscribes to every peer's topics (only_added: the peers a reload added). */
int kx_subscribe_peers_(struct kx_core *kx, bool only_added);
/* Clears our retained messages to peers removed while the connection was down (on UP). */
void kx_forget_pending_(struct kx_core *kx);
/* Starts a new epoch (persisted before it is announced). */
void kx_rotate_(struct kx_core *kx, const char *why);
void kx_on_up_(struct kx_core *kx);
void kx_on_down_(struct kx_core *kx);
void kx_on_sealed_(struct kx_core *kx);
void kx_check_activation_(struct kx_core *kx);
void kx_keys_changed_(struct kx_core *kx);
struct kx_peer *kx_peer_(const struct kx_core *kx, const char *id, size_t len);
void kx_reject_(struct kx_core *kx, struct kx_peer *peer, int reason, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

void kx_sample_(struct kx_core *kx);
bool kx_peer_live_(const struct kx_peer *p, uint64_t now_wall);
uint64_t kx_floor_at_(const struct kx_core *kx, uint64_t wall_ms);
/* The same for the newest epoch's k-th named group key (keyring_newest_group_at order). */
uint64_t kx_group_floor_at_(const struct kx_core *kx, size_t k, uint64_t wall_ms);
/* The configured group named name, or NULL; does id read it / does this node seal for it (§4.2:
 * it has no writers, or lists this node among them)? */
const struct conf_group *kx_group_(const struct kx_core *kx, const char *name);
bool kx_group_reader_(const struct conf_group *g, const char *id);
bool kx_group_sealed_(const struct kx_core *kx, const struct conf_group *g);
/* Does node id seal group g: g has no writers, or id is one of them? */
bool kx_group_writer_(const struct conf_group *g, const char *id);

/* kx_core_groups.c: what reloading `groups` (nc's, against the running kx->conf's) requires. */
enum kx_groups_change {
	KX_GROUPS_SAME,	  /* nothing, or re-issues only (marked on the peers that gained a group) */
	KX_GROUPS_ROTATE, /* this node seals for a new group: a new epoch makes its key */
	KX_GROUPS_REVOKE, /* a reader lost a group this node seals for: a new epoch at once, REVOKE */
};
enum kx_groups_change kx_groups_reload_(struct kx_core *kx, const struct px_conf *nc);
/* The longest key-exchange topic as signed (after topic_prefix_map), NUL included. */
#define KX_SIGNED_TOPIC_MAX 2048
/* The name an announcement or confirmation on topic is signed and verified under: topic through
 * topic_prefix_map (R24, PROTOCOL.md §5.4), NUL-terminated in buf, or topic itself; NULL (and
 * logged) when the rewritten name does not fit. */
const char *kx_signed_topic_(const struct kx_core *kx, const char *topic, char buf[static KX_SIGNED_TOPIC_MAX]);

/* The action queue (kx_core_queue.c). Each push copies what it is given; -1 when out of memory
 * (logged; the action is lost, as a failed publish would be). */
int kx_push_publish_(struct kx_core *kx, const char *topic, const uint8_t *data, size_t len, bool retain, int tag,
		     const char *peer);
int kx_push_filters_(struct kx_core *kx, enum kx_action_type type, const char *const *filters, size_t n);
int kx_push_simple_(struct kx_core *kx, enum kx_action_type type);
/* Queues a PERSIST of the current state text (kx_core_state.c). */
int kx_push_persist_(struct kx_core *kx);
void kx_queue_free_(struct kx_core *kx);
/* Filters gathered into SUBSCRIBE/UNSUBSCRIBE actions of at most KX_SUB_BATCH each. */
struct kx_batch {
	enum kx_action_type type;
	size_t n;
	int rc; /* -1 once something failed */
	char *f[KX_SUB_BATCH];
};
int kx_batch_add_(struct kx_core *kx, struct kx_batch *b, const char *filter);
/* Queues what is gathered; b->rc. */
int kx_batch_flush_(struct kx_core *kx, struct kx_batch *b);

/* kx_core_pres.c: presence (keyex.presence) */
bool kx_pres_on_(const struct kx_core *kx);
void kx_pres_connecting_(struct kx_core *kx);
void kx_pres_say_(struct kx_core *kx, bool online);
void kx_on_presence_(struct kx_core *kx, const char *topic, const char *id, const uint8_t *buf, size_t len);

/* kx_core_rx.c */
/* One verification token of p's announcement bucket (and the global budget); false: none now. */
bool kx_bucket_take_ann_(struct kx_core *kx, struct kx_peer *p);
void kx_on_message_(struct kx_core *kx, const char *topic, const uint8_t *payload, size_t len, bool retained);
void kx_process_pending_(struct kx_core *kx);
/* Frees what peer p keeps for later (its deferred messages). */
void kx_peer_drop_deferred_(struct kx_peer *p);

/* kx_core_peers.c: the per-peer state kept for operators (GET /peers, `mqseal status`) */
/* Records a rejection of p's message (called by kx_reject_). */
void kx_peer_rejected_(struct kx_peer *p, int reason, uint64_t now_wall);
/* p's announcement was accepted: whether it has an entry for us (has_entry) and whether that
 * entry names an ephemeral key we hold (kx_peers_tick_ warns when it has none for long). */
void kx_peer_entry_(struct kx_peer *p, bool has_entry, bool eph_known, const struct kx_now *now);
/* Once per tick: warns about peers whose announcements have lacked an entry for us too long. */
void kx_peers_tick_(struct kx_core *kx);

/* kx_core_state.c: the text of "<state_dir>/state" (PROTOCOL.md §9.5) */
void kx_state_load_(struct kx_core *kx, const char *text);
/* The state text, malloc'd (the caller frees it), its length in *len; NULL when out of memory. */
char *kx_state_text_(const struct kx_core *kx, size_t *len);

#endif
