/* presence.h - the signed presence message of key-exchange protocol version 2 (type 0x03): a
 * node says on <prefix>/presence/<id> whether its control connection is up (online) or gone
 * (offline; also its MQTT will). Build, strict parse, and the check of the labelled signature and
 * of the topic. Pure: the session, the times and the identity key are given by the caller; which
 * message is newer is the receiver's rule (proxy/keyex/kx_presence.h). */
#ifndef PX_PRESENCE_H
#define PX_PRESENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "identity.h"
#include "px_err.h"

#define PRES_VERSION	   0x02
#define PRES_TYPE	   0x03
#define PRES_SUITE_1	   0x01
#define PRES_STATE_OFFLINE 0x00
#define PRES_STATE_ONLINE  0x01
#define PRES_ID_MAX	   64
/* magic 4, version, type, suite, flags, str8 id (1 + 1..64), state 1, session 8, issued_at 8,
 * signature 64: 91..154 bytes. */
#define PRES_FIXED_LEN (8 + 1 + 1 + 8 + 8 + 64)
#define PRES_MIN_LEN   (PRES_FIXED_LEN + 1)
#define PRES_MAX_LEN   (PRES_FIXED_LEN + PRES_ID_MAX)

/* What a presence message says. */
struct pres_info {
	const char *sender_id;	/* this node's id: 1..64 bytes of [A-Za-z0-9._-] */
	bool online;		/* false: offline (the will, or a clean stop) */
	uint64_t session;	/* wall-clock ms when this control connection was opened */
	uint64_t issued_at_ms;	/* wall-clock ms; the will carries issued_at = session */
};

/* Builds and signs a presence message for topic (the topic name as signed: after
 * topic_prefix_map, like announcements; its last level must be the sender id). Writes *out_len
 * bytes (PRES_MIN_LEN..PRES_MAX_LEN) into out. PX_ERR_INVAL on a bad id, a NULL argument, or a
 * topic whose last level is not the sender id. */
enum px_err pres_build(const struct id_key *id, const char *topic, const struct pres_info *info,
		       uint8_t out[static PRES_MAX_LEN], size_t *out_len);

/* A parsed presence message: fields copied, buf points at the caller's bytes. */
struct pres_view {
	uint8_t suite;
	uint8_t state; /* PRES_STATE_ONLINE or PRES_STATE_OFFLINE */
	char sender_id[PRES_ID_MAX + 1];
	uint64_t session;
	uint64_t issued_at_ms;
	const uint8_t *buf; /* the whole message (for verification) */
	size_t len;
};

/* Strict parse: the length bounds first (over PRES_MAX_LEN: PX_ERR_TOO_LARGE, under PRES_MIN_LEN:
 * PX_ERR_MALFORMED), magic "MQSL", version 0x02, suite 1 and flags 0 (else PX_ERR_VERSION), type
 * 0x03 (else PX_ERR_MALFORMED), the sender id as announcements' ids, state 0 or 1, and exactly
 * the signature after issued_at. Does NOT verify the signature. On error *out is zeroed. */
enum px_err pres_parse(const uint8_t *buf, size_t len, struct pres_view *out);

/* True if the last level of topic (after its last '/') is p's sender id. */
bool pres_topic_names_sender(const struct pres_view *p, const char *topic);

/* PX_ERR_TOPIC if the last level of topic is not the sender id; else PX_OK if the signature over
 * "mqseal v1 presence" || u16(len(topic)) || topic || bytes[0..len-64) verifies with pub, and
 * PX_ERR_AUTH if it does not. */
enum px_err pres_verify(const struct pres_view *p, const struct id_pub *pub, const char *topic);

#endif
