/* keyex_internal.h - struct keyex and its peers, shared by keyex.c (epochs, rotation, activation,
 * announcing), keyex_rx.c (what arrives on the key-exchange topics) and keyex_state.c (the
 * persisted epoch record). Not for other modules. */
#ifndef PX_KEYEX_INTERNAL_H
#define PX_KEYEX_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "announce.h"
#include "ctx.h"
#include "identity.h"
#include "keyex.h"
#include "keyring.h"
#include "log.h"
#include "stats.h"

#define KEYEX_REISSUE_DEBOUNCE_MS 1000   /* R37 */
#define KEYEX_IN_FLIGHT_MS 3000          /* our last announcement may still be on its way */
#define KEYEX_CROSSED_MS 250             /* a peer announcing this long after us had the time to see it */
#define KEYEX_REPUBLISH_FLAP_MS 2000     /* connection lost this soon after re-publishing: refused */
#define KEYEX_ACK_SLACK_MS 300000        /* §14 confirmation slack */
#define KEYEX_BUCKET_BURST 10            /* R44: per-peer verification burst */
#define KEYEX_BUCKET_MS 1000             /* one token per second per peer */
#define KEYEX_GLOBAL_PER_S 50            /* R44: verifications per second overall */
/* Flood resistance (PROTOCOL.md §7.3 step 5). Failed verifications are charged to the peer whose
 * topic carried them: for KEYEX_SUSPECT_MS after a bad signature that peer is "suspect": its bucket
 * holds at most KEYEX_SUSPECT_BURST tokens, and suspect peers together take at most
 * KEYEX_GLOBAL_SUSPECT_PER_S of the overall KEYEX_GLOBAL_PER_S, so forgeries on some topics never
 * eat the budget of the others. */
#define KEYEX_SUSPECT_MS 10000
#define KEYEX_SUSPECT_BURST 2
#define KEYEX_GLOBAL_SUSPECT_PER_S 25
/* Rate-limited announcements kept per peer: the newest KEYEX_DEFERRED_MAX live ones, plus one
 * delivered as the broker's retained copy, which live messages never displace. 4 x 65 KiB at most
 * per peer. */
#define KEYEX_DEFERRED_MAX 4
/* While a peer's topic is contested (a bad signature or a displaced candidate within
 * KEYEX_SUSPECT_MS), the retained announcements are asked for again (a new SUBSCRIBE) at most
 * this often: the retained copy is the peer's own unless someone can publish retained on its topic. */
#define KEYEX_REREQUEST_MS 2000
#define KEYEX_TICK_MS 250                /* housekeeping timer, and counter sampling */
#define KEYEX_HISTORY 1024               /* counter samples kept: 256 s at one per tick */

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
	struct kx_deferred ann_live[KEYEX_DEFERRED_MAX]; /* newest first */
	struct kx_deferred pending_ack;                  /* the newest confirmation */
	struct log_limit reject_log; /* log once per state, not per message */
	/* What GET /peers and `mqseal status` say about it (keyex_peers.c); wall-clock ms, 0 = never */
	uint64_t last_ann_wall;    /* last announcement accepted */
	uint64_t last_ack_wall;    /* last confirmation accepted */
	uint64_t last_reject_wall; /* last announcement or confirmation rejected */
	uint64_t no_entry_mono;    /* since when its announcements have had no entry for us (0: they have) */
	uint64_t no_entry_epoch;   /* its epoch last warned about for having no entry for us */
	uint64_t opened;           /* its messages opened for our devices */
	uint64_t dropped[DROP__COUNT]; /* its messages dropped, where the drop knows the sender */
	unsigned last_reject;      /* 1 + enum stats_reject of the last rejection; 0 = none */
	uint32_t rev;
	uint32_t interval_s;
	unsigned tokens, ack_tokens;
	bool have_ann;             /* the last announcement is accepted */
	bool floor_known;          /* epoch_start_wall was set for its current epoch */
	bool eph_weak;             /* eph_pub gave an all-zero X25519 result: never wrap to it */
	bool wrapped_valid;        /* our latest announcement has an entry for the peer's eph_pub */
	bool must_confirm;         /* a live peer at the last rotation: activation waits for it */
	bool no_entry;             /* its accepted announcement has no entry for us */
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

struct keyex {
	struct px_ctx *ctx;
	struct id_key *id;
	struct keyring *kr;
	struct control *ctl;
	struct kx_peer *peers;
	size_t npeers;
	bool restricted;         /* some peer has a publish list (R6): keyex_may_publish looks */
	char *topic_self;        /* <prefix>/keyex/<node_id> */
	char *topic_keyex_sub;   /* <prefix>/keyex/+ */
	char *topic_ack_sub;     /* <prefix>/ack/<node_id>/+ */
	size_t prefix_len;
	/* own epochs */
	uint32_t rev;            /* revision of the newest epoch's announcement */
	uint64_t state_epoch;    /* last epoch written to the state file */
	char *state_path;
	uint64_t epoch_created_mono; /* when the newest epoch was created */
	uint64_t rotate_at_mono;     /* next rotation (jittered) */
	uint64_t activate_at_mono;   /* activation deadline of the pending epoch; 0 = none */
	bool announce_due;           /* newest epoch not yet announced on this connection */
	bool ready;                  /* some peer holds our active key (or we have no peers) */
	bool revoking;               /* a reload removed a peer: the next epoch is active at once (§9.6) */
	uint64_t reissue_last_mono;
	uint64_t announced_mono;     /* when the last announcement was published (monotonic) */
	uint64_t announced_wall;     /* the same, wall clock (compared with peers' issued_at) */
	uint64_t republished_mono;   /* when retained values were last re-published */
	bool republish_refused;      /* the broker closed the connection at a re-publish: stop */
	bool reissue_pending;
	uint64_t global_window_start;
	uint64_t rerequest_mono;     /* last SUBSCRIBE that asked for the retained announcements again */
	unsigned global_count;       /* verifications in the current second */
	unsigned global_suspect;     /* of which for suspect peers */
	struct kx_sample hist[KEYEX_HISTORY];
	size_t hist_next, hist_n;
	struct event *tick;
	struct log_limit log_reject;
	uint64_t ignored_not_a_peer; /* announcements of nodes that are not our peers (a star fleet) */
	void (*on_keys_changed)(void *arg); /* tells the data path that keys changed */
	void (*on_activated)(void *arg);    /* a new epoch is active: re-seal the retained cache */
	void (*on_up)(void *arg);           /* the control connection is up: watch the cached topics */
	void (*on_watched)(void *arg, const char *topic, const uint8_t *payload, size_t len);
	void *cb_arg;
};

/* keyex.c */
void keyex_announce_(struct keyex *kx, bool reissue);
void keyex_request_reissue_(struct keyex *kx);
void keyex_check_activation_(struct keyex *kx);
void keyex_keys_changed_(struct keyex *kx);
struct kx_peer *keyex_peer_(struct keyex *kx, const char *id, size_t len);
void keyex_reject_(struct keyex *kx, struct kx_peer *peer, int reason, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

void keyex_sample_(struct keyex *kx);
bool keyex_peer_live_(const struct kx_peer *p, uint64_t now_wall);
uint64_t keyex_floor_at_(const struct keyex *kx, uint64_t wall_ms);

/* keyex_rx.c */
/* The longest key-exchange topic as signed (after topic_prefix_map), NUL included. */
#define KX_SIGNED_TOPIC_MAX 2048
/* The name an announcement or confirmation on topic is signed and verified under: topic through
 * topic_prefix_map (R24, PROTOCOL.md §5.4), NUL-terminated in buf, or topic itself; NULL (and
 * logged) when the rewritten name does not fit. */
const char *keyex_signed_topic_(const struct keyex *kx, const char *topic, char buf[static KX_SIGNED_TOPIC_MAX]);
void keyex_on_message_(void *arg, const char *topic, const uint8_t *payload, size_t len, bool retained);
void keyex_process_pending_(struct keyex *kx);
/* Frees what peer p keeps for later (its deferred messages). */
void keyex_peer_drop_deferred_(struct kx_peer *p);

/* keyex_peers.c: the per-peer state kept for operators (GET /peers, `mqseal status`) */
/* Records a rejection of p's message (called by keyex_reject_). */
void keyex_peer_rejected_(struct kx_peer *p, int reason);
/* p's announcement was accepted: whether it has an entry for us (has_entry) and whether that
 * entry names an ephemeral key we hold (keyex_peers_tick_ warns when it has none for long). */
void keyex_peer_entry_(struct kx_peer *p, bool has_entry, bool eph_known);
/* Once per tick: warns about peers whose announcements have lacked an entry for us too long. */
void keyex_peers_tick_(struct keyex *kx, uint64_t now_mono);

/* keyex_state.c: "<state_dir>/state" (PROTOCOL.md §9.5) */
int keyex_state_load_(struct keyex *kx);
int keyex_state_save_(struct keyex *kx);

#endif
