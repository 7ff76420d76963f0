/* mqtt_reason.c - which reason codes each MQTT 5 packet may carry (§2.4 table 2-6), and the single
 * mapping from a codec failure to the DISCONNECT reason a broker answers it with (STYLE habit 8).
 *
 * The mapping follows mosquitto 2.0 (the reference broker of the paired tests in
 * tests/integration/test_mqtt5_errors.py), which was asked each case: a field that does not decode
 * is a Malformed Packet (0x81, also for a Topic Alias of 0, a property value out of range); a field
 * that decodes but breaks a rule is a Protocol Error (0x82: a wildcard in a topic name, packet id 0,
 * reserved type 0, an unknown alias); an alias above the maximum is Topic Alias invalid (0x94); a
 * packet over the size limit is Packet too large (0x95). A fixed header that does not frame and a
 * duplicate property end the connection without a DISCONNECT there, so they do here. */
#include "mqtt_reason.h"

#include <stddef.h>
#include <string.h>

/* Reason codes per packet type, as a server sends them (§3.2.2.2, §3.4.2.1, §3.5.2.1, §3.6.2.1,
 * §3.7.2.1, §3.9.3, §3.11.3, §3.14.2.1, §3.15.2.1). */
static const uint8_t rc_connack[] = {0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
				     0x8A, 0x8C, 0x90, 0x95, 0x97, 0x99, 0x9A, 0x9B, 0x9C, 0x9D, 0x9F};
static const uint8_t rc_puback[] = {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99};
static const uint8_t rc_pubrel[] = {0x00, 0x92};
static const uint8_t rc_suback[] = {0x00, 0x01, 0x02, 0x80, 0x83, 0x87, 0x8F, 0x91, 0x97, 0x9E, 0xA1, 0xA2};
static const uint8_t rc_unsuback[] = {0x00, 0x11, 0x80, 0x83, 0x87, 0x8F, 0x91};
static const uint8_t rc_disconnect[] = {0x00, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8B, 0x8D, 0x8E,
					0x8F, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9A,
					0x9B, 0x9C, 0x9D, 0x9E, 0x9F, 0xA0, 0xA1, 0xA2};
static const uint8_t rc_auth[] = {0x00, 0x18, 0x19};

struct rc_set {
	const uint8_t *codes;
	size_t n;
};

#define RC_SET(a)                                                                                            \
	{                                                                                                    \
		a, sizeof(a)                                                                                 \
	}

static const struct rc_set rc_sets[16] = {
	[MQTT_CONNACK] = RC_SET(rc_connack),   [MQTT_PUBACK] = RC_SET(rc_puback),
	[MQTT_PUBREC] = RC_SET(rc_puback),     [MQTT_PUBREL] = RC_SET(rc_pubrel),
	[MQTT_PUBCOMP] = RC_SET(rc_pubrel),    [MQTT_SUBACK] = RC_SET(rc_suback),
	[MQTT_UNSUBACK] = RC_SET(rc_unsuback), [MQTT_DISCONNECT] = RC_SET(rc_disconnect),
	[MQTT_AUTH] = RC_SET(rc_auth),
};

bool mqtt_reason_valid(uint8_t type, uint8_t code)
{
	if (type >= 16 || !rc_sets[type].codes)
		return false;
	return memchr(rc_sets[type].codes, code, rc_sets[type].n) != NULL;
}

/* The codec's reasons (its *why strings) that a broker answers with something other than 0x81,
 * plus the 0x81 ones by name, so that a reason missing here is a visible choice (MQTT_RC_NONE). */
struct why_rc {
	const char *why;
	uint8_t rc;
};

static const struct why_rc why_rcs[] = {
	/* framing (mqtt_frame.c): mosquitto closes without a DISCONNECT when the fixed header is bad,
	 * except for a reserved type (0x82) and QoS 3 (0x81) */
	{"remaining length over 4 bytes", MQTT_RC_NONE},
	{"remaining length overlong", MQTT_RC_NONE},
	{"remaining length not exact", MQTT_RC_NONE},
	{"remaining length too short", MQTT_RC_NONE},
	{"fixed header flags invalid", MQTT_RC_NONE},
	{"reserved packet type 0", MQTT_RC_PROTOCOL_ERROR},
	{"PUBLISH QoS 3", MQTT_RC_MALFORMED_PACKET},
	{"packet over limit", MQTT_RC_PACKET_TOO_LARGE},
	/* PUBLISH (mqtt_codec.c) and the Topic Alias table (mqtt_alias.c) */
	{"PUBLISH truncated", MQTT_RC_MALFORMED_PACKET},
	{"topic not UTF-8", MQTT_RC_MALFORMED_PACKET},
	{"topic name invalid", MQTT_RC_PROTOCOL_ERROR}, /* mosquitto: 0x82, not 0x90 */
	{"empty topic", MQTT_RC_MALFORMED_PACKET},
	{"empty topic without topic alias", MQTT_RC_PROTOCOL_ERROR},
	{"packet id 0", MQTT_RC_PROTOCOL_ERROR},
	{"topic alias above maximum", MQTT_RC_TOPIC_ALIAS_INVALID},
	{"topic alias unknown", MQTT_RC_PROTOCOL_ERROR},
	{"topic alias table full", MQTT_RC_QUOTA_EXCEEDED}, /* mqseal's own memory cap */
	/* properties (mqtt_props.c): a Topic Alias of 0 is "property value out of range" */
	{"property truncated", MQTT_RC_MALFORMED_PACKET},
	{"unknown property", MQTT_RC_MALFORMED_PACKET},
	{"property varint invalid", MQTT_RC_MALFORMED_PACKET},
	{"property not UTF-8", MQTT_RC_MALFORMED_PACKET},
	{"property not allowed in packet", MQTT_RC_MALFORMED_PACKET},
	{"property value out of range", MQTT_RC_MALFORMED_PACKET},
	{"response topic invalid", MQTT_RC_MALFORMED_PACKET},
	{"property length truncated", MQTT_RC_MALFORMED_PACKET},
	{"property length invalid", MQTT_RC_MALFORMED_PACKET},
	{"properties truncated", MQTT_RC_MALFORMED_PACKET},
	{"trailing bytes after properties", MQTT_RC_MALFORMED_PACKET},
	{"duplicate property", MQTT_RC_NONE},
	/* SUBSCRIBE (mqtt_codec.c): mosquitto calls every bad entry malformed */
	{"packet id truncated", MQTT_RC_MALFORMED_PACKET},
	{"no topic filters", MQTT_RC_MALFORMED_PACKET},
	{"topic filter truncated", MQTT_RC_MALFORMED_PACKET},
	{"topic filter invalid", MQTT_RC_MALFORMED_PACKET},
	{"shared subscription invalid", MQTT_RC_MALFORMED_PACKET},
	{"subscription options invalid", MQTT_RC_MALFORMED_PACKET},
	{"no local on shared subscription", MQTT_RC_PROTOCOL_ERROR}, /* [MQTT-3.8.3-4] */
	/* acks a device sends (mqtt_props.c) */
	{"ack truncated", MQTT_RC_MALFORMED_PACKET},
};

uint8_t mqtt_reason_of(enum mqtt_parse rc, const char *why)
{
	size_t i;

	if (rc == MQTT_PARSE_OK || rc == MQTT_PARSE_NEED_MORE)
		return MQTT_RC_NONE;
	for (i = 0; why && i < sizeof(why_rcs) / sizeof(why_rcs[0]); i++)
		if (strcmp(why, why_rcs[i].why) == 0)
			return why_rcs[i].rc;
	return rc == MQTT_PARSE_TOO_LARGE ? MQTT_RC_PACKET_TOO_LARGE : MQTT_RC_NONE;
}
