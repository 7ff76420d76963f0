/* mqtt_frame.h - sans-I/O MQTT framing: fixed header and remaining length (MQTT 3.1.1 §2.2,
 * MQTT 5.0 §2.1). Takes a byte range, never touches a socket or a bufferevent. */
#ifndef PX_MQTT_FRAME_H
#define PX_MQTT_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define MQTT_MAX_REMAINING 268435455u /* 0xFF,0xFF,0xFF,0x7F: the largest 4-byte varint */
#define MQTT_VARINT_MAX 4
#define MQTT_FIXED_HDR_MAX 5 /* type byte + 4 varint bytes */

/* Protocol levels (CONNECT byte "protocol level"). 0 = not yet known (before CONNECT). */
#define MQTT_LEVEL_UNKNOWN 0
#define MQTT_LEVEL_31 3  /* MQTT 3.1, protocol name "MQIsdp" */
#define MQTT_LEVEL_311 4 /* MQTT 3.1.1 */
#define MQTT_LEVEL_5 5   /* MQTT 5.0 */

enum mqtt_type {
	MQTT_CONNECT = 1,
	MQTT_CONNACK = 2,
	MQTT_PUBLISH = 3,
	MQTT_PUBACK = 4,
	MQTT_PUBREC = 5,
	MQTT_PUBREL = 6,
	MQTT_PUBCOMP = 7,
	MQTT_SUBSCRIBE = 8,
	MQTT_SUBACK = 9,
	MQTT_UNSUBSCRIBE = 10,
	MQTT_UNSUBACK = 11,
	MQTT_PINGREQ = 12,
	MQTT_PINGRESP = 13,
	MQTT_DISCONNECT = 14,
	MQTT_AUTH = 15, /* MQTT 5 only */
};

/* The four outcomes of every sans-I/O parser in proxy/. */
enum mqtt_parse {
	MQTT_PARSE_OK = 0,    /* complete */
	MQTT_PARSE_NEED_MORE, /* a prefix of something valid so far: wait for more bytes */
	MQTT_PARSE_MALFORMED, /* can never become valid */
	MQTT_PARSE_TOO_LARGE, /* exceeds the configured limit */
};

struct mqtt_frame {
	uint8_t type;       /* enum mqtt_type */
	uint8_t flags;      /* low nibble of byte 1 */
	uint8_t hdr_len;    /* 2..5: type byte + varint */
	uint32_t remaining; /* remaining length */
	size_t total;       /* hdr_len + remaining */
};

/* Parses the fixed header at buf. Needs at most MQTT_FIXED_HDR_MAX bytes to decide, so the caller
 * may peek only that much; OK means the header is complete and valid (the body may not have
 * arrived yet: compare out->total with what is buffered). Checks: reserved type 0, AUTH only at
 * level 5 (or unknown), the fixed flag bits of each type, PUBLISH QoS 3, varint of at most 4 bytes
 * in its shortest form, the per-type minimum (and, where fixed, exact) remaining length for the
 * level, and total <= max_packet (TOO_LARGE, decided from the header alone).
 * On MALFORMED or TOO_LARGE, *why (if not NULL) is set to a static reason string. */
enum mqtt_parse mqtt_frame_parse(const uint8_t *buf, size_t len, size_t max_packet, uint8_t level,
				 struct mqtt_frame *out, const char **why);

/* Variable byte integer (MQTT 5 §1.5.5). decode: OK, NEED_MORE, or MALFORMED (5th byte or
 * overlong form). encode writes 1..4 bytes and returns the count, 0 if value > MQTT_MAX_REMAINING. */
enum mqtt_parse mqtt_varint_decode(const uint8_t *buf, size_t len, uint32_t *value, size_t *used);
size_t mqtt_varint_encode(uint32_t value, uint8_t out[static MQTT_VARINT_MAX]);
size_t mqtt_varint_size(uint32_t value); /* 1..4, 0 if too large */

const char *mqtt_type_name(uint8_t type); /* "PUBLISH", ...; "?" for unknown */

#endif
