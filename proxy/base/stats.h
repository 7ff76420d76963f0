/* stats.h - the counters a node keeps and /metrics exports (docs/OPERATIONS.md). Plain data:
 * written by the module that owns the event, read by the metrics endpoint. */
#ifndef PX_STATS_H
#define PX_STATS_H

#include <stdint.h>

/* Why a message from the broker was not delivered (PROTOCOL.md §6.4); all but too_large concern
 * sealed topics only. */
enum stats_drop {
	DROP_EMPTY = 0,
	DROP_MALFORMED,
	DROP_UNKNOWN_KEY,
	DROP_STALE_KEY,
	DROP_LIMIT,
	DROP_REPLAY,
	DROP_AUTH,
	DROP_PLAINTEXT,
	DROP_POLICY,
	DROP_UNAUTHORIZED, /* opened, but its sender may not publish on this topic (R6) */
	DROP_BEFORE_SUB,   /* sealed before the device's subscription (or this node) began (§6.2) */
	DROP_ROLLBACK,     /* a retained value older than the topic's newest (§6.3) */
	DROP_TOO_LARGE,    /* larger than the device's Maximum Packet Size once opened (MQTT 5 §3.1.2.11.4) */
	DROP_NOT_A_READER, /* its topic's group is one this node does not read, or another key's (§6.1 step 3) */
	DROP_WRITER_NOT_PROVEN, /* a group with writers: no valid signature by a writer (§5.8, §6.1 step 6) */
	DROP__COUNT
};

/* Why an announcement or confirmation was rejected (PROTOCOL.md §7.3, §8). */
enum stats_reject {
	REJECT_MALFORMED = 0,
	REJECT_VERSION,
	REJECT_UNKNOWN_PEER,
	REJECT_WRONG_TOPIC,
	REJECT_STALE,
	REJECT_CLOCK_SKEW,
	REJECT_EXPIRED,
	REJECT_BAD_SIGNATURE,
	REJECT_BAD_WRAP,
	REJECT_RATE_LIMITED,
	REJECT__COUNT
};

struct stats {
	/* device connections */
	uint64_t conn_current;
	uint64_t conn_total;
	uint64_t conn_rejected;      /* over listen.max_connections */
	uint64_t handshake_failed_tls; /* TLS listeners: no TLS, a failed or unfinished handshake */
	uint64_t handshake_failed_ws;  /* WebSocket listeners: no valid upgrade (400/404/426, timeout) */
	uint64_t conn_protocol_errors; /* closed for a malformed or oversize packet, or a timeout */
	uint64_t upstream_failures;  /* broker unreachable for a device connection */
	uint64_t broker_malformed;   /* broker packets that were not valid MQTT (or out of place) */
	/* traffic */
	uint64_t bytes_from_device, bytes_to_broker, bytes_from_broker, bytes_to_device;
	uint64_t packets_from_device, packets_from_broker;
	/* sealing */
	uint64_t sealed, opened, plaintext_out, plaintext_in;
	uint64_t held, refused, denied;
	uint64_t held_incoming;       /* incoming sealed messages kept aside until their key came */
	uint64_t dropped[DROP__COUNT];
	/* key exchange */
	uint64_t rotations, activations, epochs_erased;
	uint64_t announcements_sent, announcements_accepted, acks_sent, acks_accepted;
	uint64_t rejected[REJECT__COUNT];
	uint64_t peers_keyed;         /* gauge: peers whose current key this node holds */
	uint64_t current_epoch;       /* gauge */
	uint64_t last_rotation_wall_ms;
	uint64_t control_connected;   /* gauge: 1 when the key-exchange connection is up */
	uint64_t control_reconnects;
	/* presence (keyex.presence) */
	uint64_t peers_present;       /* gauge: peers whose last presence message said online */
	uint64_t presence_rejected[REJECT__COUNT]; /* malformed, version, stale, clock_skew, bad_signature, rate_limited */
};

const char *stats_drop_name(enum stats_drop d);
const char *stats_reject_name(enum stats_reject r);

#endif
