/* mqtt_codec.h - sans-I/O MQTT packet codec: checked parse and exact-size encode of the packets
 * mqseal needs to look into or to write itself, for MQTT 3.1 (level 3), 3.1.1 (4) and 5.0 (5).
 * Parsers take the packet BODY (after the fixed header) and return views into it (no allocation);
 * every length is checked before use and every UTF-8 string is validated (MQTT 5 §1.5.4).
 * Encoders first compute the exact size (mqtt_*_size), then write into a buffer of that size. */
#ifndef PX_MQTT_CODEC_H
#define PX_MQTT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mqtt_frame.h"

/* A view of bytes owned by someone else (usually the packet buffer). */
struct mqtt_buf {
	const uint8_t *p;
	size_t len;
};

/* ---- MQTT 5 properties (§2.2.2) ---- */
enum mqtt_prop_id {
	MQTT_PROP_PAYLOAD_FORMAT = 0x01,
	MQTT_PROP_MESSAGE_EXPIRY = 0x02,
	MQTT_PROP_CONTENT_TYPE = 0x03,
	MQTT_PROP_RESPONSE_TOPIC = 0x08,
	MQTT_PROP_CORRELATION_DATA = 0x09,
	MQTT_PROP_SUBSCRIPTION_ID = 0x0B,
	MQTT_PROP_SESSION_EXPIRY = 0x11,
	MQTT_PROP_ASSIGNED_CLIENT_ID = 0x12,
	MQTT_PROP_SERVER_KEEPALIVE = 0x13,
	MQTT_PROP_AUTH_METHOD = 0x15,
	MQTT_PROP_AUTH_DATA = 0x16,
	MQTT_PROP_REQUEST_PROBLEM_INFO = 0x17,
	MQTT_PROP_WILL_DELAY = 0x18,
	MQTT_PROP_REQUEST_RESPONSE_INFO = 0x19,
	MQTT_PROP_RESPONSE_INFO = 0x1A,
	MQTT_PROP_SERVER_REFERENCE = 0x1C,
	MQTT_PROP_REASON_STRING = 0x1F,
	MQTT_PROP_RECEIVE_MAX = 0x21,
	MQTT_PROP_TOPIC_ALIAS_MAX = 0x22,
	MQTT_PROP_TOPIC_ALIAS = 0x23,
	MQTT_PROP_MAX_QOS = 0x24,
	MQTT_PROP_RETAIN_AVAILABLE = 0x25,
	MQTT_PROP_USER_PROPERTY = 0x26,
	MQTT_PROP_MAX_PACKET_SIZE = 0x27,
	MQTT_PROP_WILDCARD_SUB_AVAILABLE = 0x28,
	MQTT_PROP_SUB_ID_AVAILABLE = 0x29,
	MQTT_PROP_SHARED_SUB_AVAILABLE = 0x2A,
};

/* One decoded property. num holds byte / u16 / u32 / varint values; a holds a string or binary
 * value (or the name of a user property), b the value of a user property; raw is the whole
 * property as it appears on the wire (identifier included), for copying it unchanged. */
struct mqtt_prop {
	uint8_t id;
	uint32_t num;
	struct mqtt_buf a, b;
	struct mqtt_buf raw;
};

/* Iterates a property block that a parser has already validated (so iteration cannot fail). */
struct mqtt_prop_iter {
	struct mqtt_buf props;
	size_t pos;
};
void mqtt_prop_iter_init(struct mqtt_prop_iter *it, struct mqtt_buf props);
bool mqtt_prop_next(struct mqtt_prop_iter *it, struct mqtt_prop *out); /* false at the end */
/* First property with this id, if any. */
bool mqtt_prop_find(struct mqtt_buf props, uint8_t id, struct mqtt_prop *out);
/* Validates a property block (without its length prefix) for a packet type (MQTT_CONNECT etc.;
 * use 0 for will properties): known identifier allowed in that packet, well-formed value, UTF-8
 * strings, no duplicate of a single-instance property. */
enum mqtt_parse mqtt_props_validate(struct mqtt_buf props, uint8_t packet_type, const char **why);
/* Copies the properties for which keep(id, arg) is true, in order, into out (cap bytes) and
 * returns the bytes written; with out == NULL returns the size needed; 0 if cap is too small. */
size_t mqtt_props_filter(struct mqtt_buf props, bool (*keep)(uint8_t id, void *arg), void *arg,
			 uint8_t *out, size_t cap);
/* Writes one four-byte-integer property (e.g. Message Expiry Interval): 5 bytes. */
size_t mqtt_prop_write_u32(uint8_t id, uint32_t value, uint8_t out[static 5]);
/* Copies props with every property id removed and one four-byte-integer property id = value
 * appended (e.g. a Maximum Packet Size rewritten on its way through), into out (cap bytes); returns
 * the bytes written, or with out == NULL the size needed; 0 if cap is too small. */
size_t mqtt_props_set_u32(struct mqtt_buf props, uint8_t id, uint32_t value, uint8_t *out, size_t cap);

/* The largest packet MQTT can encode (1 type byte, 4 bytes of Remaining Length, MQTT_MAX_REMAINING):
 * the highest meaningful Maximum Packet Size (§3.1.2.11.4). */
#define MQTT_PACKET_MAX (MQTT_MAX_REMAINING + 1u + MQTT_VARINT_MAX)
/* A Maximum Packet Size moved by delta bytes (either sign) and kept within 1..MQTT_PACKET_MAX,
 * without overflow whatever the inputs (a peer may send any u32). */
uint32_t mqtt_max_packet_add(uint32_t max, int64_t delta);

/* ---- CONNECT (§3.1) ---- */
#define MQTT_CONNECT_FLAG_CLEAN 0x02
#define MQTT_CONNECT_FLAG_WILL 0x04
#define MQTT_CONNECT_WILL_QOS(f) (((f) >> 3) & 3)
#define MQTT_CONNECT_FLAG_WILL_RETAIN 0x20
#define MQTT_CONNECT_FLAG_PASSWORD 0x40
#define MQTT_CONNECT_FLAG_USERNAME 0x80

struct mqtt_connect {
	uint8_t level;              /* 3 ("MQIsdp"), 4 or 5 ("MQTT") */
	uint8_t flags;              /* connect flags byte */
	uint16_t keepalive;         /* seconds */
	struct mqtt_buf props;      /* level 5: CONNECT properties, without length; else empty */
	struct mqtt_buf client_id;
	struct mqtt_buf will_props; /* level 5 and will flag */
	struct mqtt_buf will_topic;
	struct mqtt_buf will_payload;
	struct mqtt_buf username;
	struct mqtt_buf password;
};
/* MALFORMED covers a bad protocol name/level pair too (callers answer with CONNACK 0x01/0x84);
 * *level_out (if not NULL) is set whenever the level byte could be read. */
enum mqtt_parse mqtt_connect_parse(const uint8_t *body, size_t len, struct mqtt_connect *out,
				   uint8_t *level_out, const char **why);
size_t mqtt_connect_size(const struct mqtt_connect *c); /* whole packet; 0 if too large */
size_t mqtt_connect_encode(const struct mqtt_connect *c, uint8_t *out, size_t cap);

/* ---- CONNACK (§3.2) ---- */
struct mqtt_connack {
	bool session_present;
	uint8_t reason;        /* 3.1.1 return code or MQTT 5 reason code */
	struct mqtt_buf props; /* level 5 */
};
enum mqtt_parse mqtt_connack_parse(uint8_t level, const uint8_t *body, size_t len,
				   struct mqtt_connack *out, const char **why);
size_t mqtt_connack_size(uint8_t level, const struct mqtt_connack *c);
size_t mqtt_connack_encode(uint8_t level, const struct mqtt_connack *c, uint8_t *out, size_t cap);

/* ---- PUBLISH (§3.3) ---- */
#define MQTT_PUBLISH_FLAG_RETAIN 0x01
#define MQTT_PUBLISH_QOS(f) (((f) >> 1) & 3)
#define MQTT_PUBLISH_FLAG_DUP 0x08

struct mqtt_publish {
	uint8_t qos;
	bool dup;
	bool retain;
	struct mqtt_buf topic;   /* may be empty at level 5 when a Topic Alias stands for it */
	uint16_t packet_id;      /* 0 at QoS 0 */
	struct mqtt_buf props;   /* level 5, without length */
	struct mqtt_buf payload;
};
/* flags: the fixed-header flags nibble. Checks QoS, packet id != 0 when QoS > 0, topic UTF-8 and
 * free of wildcards, properties valid for PUBLISH. */
enum mqtt_parse mqtt_publish_parse(uint8_t level, uint8_t flags, const uint8_t *body, size_t len,
				   struct mqtt_publish *out, const char **why);
/* The length of a PUBLISH's variable header (topic, packet id, properties) as far as the first
 * avail bytes of its body tell: a result above avail means "at least that many, look again with
 * more"; at most avail, it is the length (the payload follows). Reads nothing beyond avail and
 * checks nothing (mqtt_publish_parse of the first that many bytes does), so a session can parse a
 * large PUBLISH's header without its payload being contiguous. */
size_t mqtt_publish_head_len(uint8_t level, uint8_t flags, const uint8_t *body, size_t avail);
/* Size of the whole packet with a payload of payload_len bytes (p->payload is ignored); 0 if it
 * would exceed MQTT_MAX_REMAINING. */
size_t mqtt_publish_size(uint8_t level, const struct mqtt_publish *p, size_t payload_len);
/* Writes the fixed header, topic, packet id and properties for a payload of payload_len bytes,
 * leaving the payload to the caller; returns the bytes written (the payload starts there), 0 if
 * cap is too small. */
size_t mqtt_publish_encode_head(uint8_t level, const struct mqtt_publish *p, size_t payload_len,
				uint8_t *out, size_t cap);
/* Whole packet including p->payload; returns bytes written, 0 if cap is too small. */
size_t mqtt_publish_encode(uint8_t level, const struct mqtt_publish *p, uint8_t *out, size_t cap);

/* ---- PUBACK, PUBREC, PUBREL, PUBCOMP (§3.4-3.7) and UNSUBACK-free acks ---- */
struct mqtt_ack {
	uint16_t packet_id;
	uint8_t reason;        /* level 5; 0 = success */
	struct mqtt_buf props; /* level 5 */
};
enum mqtt_parse mqtt_ack_parse(uint8_t level, uint8_t type, const uint8_t *body, size_t len,
			       struct mqtt_ack *out, const char **why);
/* Encodes the shortest form (2 bytes of body when reason == 0 and no properties). */
size_t mqtt_ack_encode(uint8_t level, uint8_t type, const struct mqtt_ack *a, uint8_t *out, size_t cap);
#define MQTT_ACK_MAX_SIMPLE 8 /* buffer enough for any ack without properties */

/* ---- SUBSCRIBE / SUBACK / UNSUBSCRIBE / UNSUBACK (§3.8-3.11) ---- */
struct mqtt_subscribe {
	uint16_t packet_id;
	struct mqtt_buf props;   /* level 5 */
	struct mqtt_buf entries; /* the topic filter list, iterate with mqtt_sub_next */
	size_t count;            /* number of entries (>= 1) */
};
/* type is MQTT_SUBSCRIBE (entries are filter + options byte) or MQTT_UNSUBSCRIBE (filters only). */
enum mqtt_parse mqtt_subscribe_parse(uint8_t level, uint8_t type, const uint8_t *body, size_t len,
				     struct mqtt_subscribe *out, const char **why);
/* Iterates entries validated by mqtt_subscribe_parse: *pos starts at 0. options is 0 for UNSUBSCRIBE. */
bool mqtt_sub_next(const struct mqtt_subscribe *s, uint8_t type, size_t *pos, struct mqtt_buf *filter,
		   uint8_t *options);
/* Re-encodes a SUBSCRIBE/UNSUBSCRIBE keeping only the entries whose index has keep[i] true. */
size_t mqtt_subscribe_size_kept(uint8_t level, uint8_t type, const struct mqtt_subscribe *s,
				const bool *keep);
size_t mqtt_subscribe_encode_kept(uint8_t level, uint8_t type, const struct mqtt_subscribe *s,
				  const bool *keep, uint8_t *out, size_t cap);

struct mqtt_suback {
	uint16_t packet_id;
	struct mqtt_buf props; /* level 5 */
	struct mqtt_buf codes; /* one reason/return code per filter (UNSUBACK at level 4: empty) */
};
/* type is MQTT_SUBACK or MQTT_UNSUBACK. */
enum mqtt_parse mqtt_suback_parse(uint8_t level, uint8_t type, const uint8_t *body, size_t len,
				  struct mqtt_suback *out, const char **why);
size_t mqtt_suback_size(uint8_t level, uint8_t type, const struct mqtt_suback *s);
size_t mqtt_suback_encode(uint8_t level, uint8_t type, const struct mqtt_suback *s, uint8_t *out,
			  size_t cap);

/* ---- DISCONNECT (§3.14) and AUTH (§3.15): a reason code and properties ---- */
struct mqtt_reason_props {
	uint8_t reason;        /* level 5; 0 when omitted (normal disconnection / success) */
	struct mqtt_buf props; /* level 5, without length; else empty */
};
/* Level 3/4: the body must be empty. Level 5: reason code and property length, each of which may
 * be omitted when nothing follows (§3.14.2.1). */
enum mqtt_parse mqtt_disconnect_parse(uint8_t level, const uint8_t *body, size_t len,
				      struct mqtt_reason_props *out, const char **why);
/* AUTH exists only at level 5; same layout as a level-5 DISCONNECT (§3.15.2). */
enum mqtt_parse mqtt_auth_parse(const uint8_t *body, size_t len, struct mqtt_reason_props *out,
				const char **why);
/* Level 5: reason code and no properties; level 3/4: the 2-byte packet. Returns bytes written,
 * 0 if cap is too small. */
size_t mqtt_disconnect_encode(uint8_t level, uint8_t reason, uint8_t *out, size_t cap);

/* ---- a whole packet from a server (mqtt_check.c) ---- */
/* Validates every field of a packet a server (the broker) sends to a client, before it is relayed
 * to the device: CONNACK, PUBLISH, PUBACK..PUBCOMP, SUBACK, UNSUBACK, PINGRESP, DISCONNECT, AUTH
 * with their properties, and at level 5 that each reason code is one the packet may carry
 * (mqtt_reason_valid); 3.x return codes likewise. f is the frame mqtt_frame_parse returned (so the
 * fixed header, flags and length rules hold already), body its f->remaining bytes. A client-to-server
 * type is MALFORMED. */
enum mqtt_parse mqtt_server_packet_check(uint8_t level, const struct mqtt_frame *f, const uint8_t *body,
					 const char **why);

/* ---- strings ---- */
/* Well-formed UTF-8 without U+0000 and without surrogates (MQTT 5 §1.5.4). */
bool mqtt_utf8_valid(const uint8_t *p, size_t len);

#endif
