/* kx_presence.h - presence in the key exchange (protocol version 2, crypto/presence.h): what this
 * node knows of each peer's control connection, and the messages that tell the peers about its
 * own. Pure: no I/O, no clock reads (the wall-clock time is passed in), no logging; the core
 * (kx_core) verifies, rate-limits, logs and counts, and publishes what the builders make.
 *
 * Receiving: a peer's messages are ordered by (session, rank) with rank(online) < rank(offline):
 *   (s, online) < (s, offline) < (s' > s, either)
 * and one is accepted only if it is greater than the last accepted one. Older ones are `stale`; a
 * copy of the last accepted (session, state) (a retained copy sent again after a reconnect, the
 * will after the node's own offline) is a `duplicate` that changes nothing and need not be
 * counted. A session or issued_at more than max_skew ahead of this node's clock is `clock_skew`.
 *
 * Sending: every control connection gets a session (the wall-clock ms when it was opened, kept
 * strictly increasing); its will is presence(offline, session, issued_at = session), signed before
 * CONNECT; after CONNACK the node publishes presence(online, session) retained; on a clean stop
 * presence(offline, session) before DISCONNECT (which discards the will). */
#ifndef PX_KX_PRESENCE_H
#define PX_KX_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "identity.h"
#include "presence.h"
#include "px_err.h"

/* ---- a peer's presence, as this node knows it ---- */

enum kx_pres_state {
	KX_PRES_UNKNOWN = 0, /* nothing accepted yet (or presence is off): not away */
	KX_PRES_ONLINE,	     /* its control connection is up */
	KX_PRES_OFFLINE,     /* it went away: its will, or its clean stop */
};

/* One peer's record, embedded in the core's per-peer state. All zero = nothing heard. Written
 * only by kx_pres_accept and kx_pres_forget; read through the accessors below. */
struct kx_pres_peer {
	uint64_t session;      /* of the last accepted message */
	uint64_t issued_at_ms; /* of the last accepted message (the peer's clock) */
	uint64_t since_wall_ms; /* this node's clock when the state last changed; 0 = never */
	uint8_t state;	       /* enum kx_pres_state */
};

enum kx_pres_verdict {
	KX_PRES_ACCEPTED = 0, /* newer than the last accepted: recorded (kx_pres_accept) */
	KX_PRES_DUPLICATE,    /* the same (session, state) again: dropped, not a rejection */
	KX_PRES_STALE,	      /* older: dropped, counted `stale` */
	KX_PRES_CLOCK_SKEW,   /* session or issued_at > now + max_skew: dropped, counted `clock_skew` */
};

/* What an accepted message changed. */
enum kx_pres_change {
	KX_PRES_NO_CHANGE = 0, /* same state as before (e.g. the will of a session never seen online) */
	KX_PRES_FIRST_ONLINE,  /* first news of the peer, and it is online: nothing to re-send */
	KX_PRES_CAME_BACK,     /* online with a new session after earlier news: re-send its
				* announcement at once, log "peer X back" */
	KX_PRES_WENT_AWAY,     /* offline (first news or after online): not waited for at activation */
};

/* Would m (parsed, not yet verified) be accepted? Changes nothing: call it before spending a
 * verification token, and verify only on KX_PRES_ACCEPTED. */
enum kx_pres_verdict kx_pres_check(const struct kx_pres_peer *p, const struct pres_view *m,
				   uint64_t now_wall_ms, uint64_t max_skew_ms);
/* m's signature verified: checks again and, if KX_PRES_ACCEPTED, records m and sets *change (else
 * *change = KX_PRES_NO_CHANGE and p is untouched). */
enum kx_pres_verdict kx_pres_accept(struct kx_pres_peer *p, const struct pres_view *m, uint64_t now_wall_ms,
				    uint64_t max_skew_ms, enum kx_pres_change *change);
/* Forgets everything (the peer was removed from the configuration, or presence turned off). */
void kx_pres_forget(struct kx_pres_peer *p);

enum kx_pres_state kx_pres_state(const struct kx_pres_peer *p);
/* Known to be offline: not waited for at activation, shown as away. */
bool kx_pres_away(const struct kx_pres_peer *p);
/* For GET /peers: "online", "offline" or "unknown". */
const char *kx_pres_state_name(enum kx_pres_state s);
/* For logs: "accepted", "duplicate", "stale", "clock_skew". */
const char *kx_pres_verdict_name(enum kx_pres_verdict v);

/* ---- this node's own presence ---- */

struct kx_pres_self {
	uint64_t session; /* of the current (or last) control connection; 0 = none yet */
	bool online;	  /* presence(online, session) was built for the current connection */
};

/* A control connection is about to be opened at now: gives it a session, now or, if the clock
 * has not moved past the last one (same millisecond, or stepped back), last + 1. Returns it. */
uint64_t kx_pres_self_connect(struct kx_pres_self *s, uint64_t now_wall_ms);
/* The will of the current connection: presence(offline, session, issued_at = session). topic is
 * the presence topic as signed (after topic_prefix_map). PX_ERR_INVAL before kx_pres_self_connect. */
enum px_err kx_pres_build_will(const struct kx_pres_self *s, const struct id_key *id, const char *topic,
			       const char *node_id, uint8_t out[static PRES_MAX_LEN], size_t *out_len);
/* presence(online, session, now), to publish retained once the connection is up (CONNACK). */
enum px_err kx_pres_build_online(struct kx_pres_self *s, const struct id_key *id, const char *topic,
				 const char *node_id, uint64_t now_wall_ms, uint8_t out[static PRES_MAX_LEN],
				 size_t *out_len);
/* presence(offline, session, now), to publish retained on a clean stop, before DISCONNECT. */
enum px_err kx_pres_build_offline(struct kx_pres_self *s, const struct id_key *id, const char *topic,
				  const char *node_id, uint64_t now_wall_ms, uint8_t out[static PRES_MAX_LEN],
				  size_t *out_len);
/* m arrived on this node's own presence topic while its connection is up: true if it is not the
 * current (session, online), i.e. the retained copy at the broker says something else (an older
 * connection's will that a broker cluster delivered late, or a forgery): publish online again
 * (debounced by the caller). */
bool kx_pres_self_needs_repair(const struct kx_pres_self *s, const struct pres_view *m);

/* "<prefix>/presence/<node_id>" into buf; its length, or 0 if it does not fit in len (NUL
 * included) or an argument is NULL. */
size_t kx_pres_topic(const char *prefix, const char *node_id, char *buf, size_t len);

#endif
