/* mqtt_reason.h - the one table of MQTT reason codes: MQTT 5 reason codes (§2.4, table 2-6) and the
 * MQTT 3.1.1 CONNACK / SUBACK return codes (3.1.1 §3.2.2.3, §3.9.3), which packet may carry which
 * code, and the single mapping from a codec failure to the DISCONNECT reason a broker sends for it
 * (STYLE habit 8). Sans-I/O: plain functions of their arguments. */
#ifndef PX_MQTT_REASON_H
#define PX_MQTT_REASON_H

#include <stdbool.h>
#include <stdint.h>

#include "mqtt_frame.h"

/* MQTT 5 reason codes (§2.4). */
enum mqtt_rc {
	MQTT_RC_SUCCESS = 0x00, /* also Normal disconnection, Granted QoS 0 */
	MQTT_RC_GRANTED_QOS1 = 0x01,
	MQTT_RC_GRANTED_QOS2 = 0x02,
	MQTT_RC_DISCONNECT_WITH_WILL = 0x04,
	MQTT_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
	MQTT_RC_NO_SUBSCRIPTION_EXISTED = 0x11,
	MQTT_RC_CONTINUE_AUTHENTICATION = 0x18,
	MQTT_RC_REAUTHENTICATE = 0x19,
	MQTT_RC_UNSPECIFIED_ERROR = 0x80,
	MQTT_RC_MALFORMED_PACKET = 0x81,
	MQTT_RC_PROTOCOL_ERROR = 0x82,
	MQTT_RC_IMPLEMENTATION_SPECIFIC = 0x83,
	MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION = 0x84,
	MQTT_RC_CLIENT_ID_NOT_VALID = 0x85,
	MQTT_RC_BAD_USERNAME_OR_PASSWORD = 0x86,
	MQTT_RC_NOT_AUTHORIZED = 0x87,
	MQTT_RC_SERVER_UNAVAILABLE = 0x88,
	MQTT_RC_SERVER_BUSY = 0x89,
	MQTT_RC_BANNED = 0x8A,
	MQTT_RC_SERVER_SHUTTING_DOWN = 0x8B,
	MQTT_RC_BAD_AUTHENTICATION_METHOD = 0x8C,
	MQTT_RC_KEEP_ALIVE_TIMEOUT = 0x8D,
	MQTT_RC_SESSION_TAKEN_OVER = 0x8E,
	MQTT_RC_TOPIC_FILTER_INVALID = 0x8F,
	MQTT_RC_TOPIC_NAME_INVALID = 0x90,
	MQTT_RC_PACKET_ID_IN_USE = 0x91,
	MQTT_RC_PACKET_ID_NOT_FOUND = 0x92,
	MQTT_RC_RECEIVE_MAXIMUM_EXCEEDED = 0x93,
	MQTT_RC_TOPIC_ALIAS_INVALID = 0x94,
	MQTT_RC_PACKET_TOO_LARGE = 0x95,
	MQTT_RC_MESSAGE_RATE_TOO_HIGH = 0x96,
	MQTT_RC_QUOTA_EXCEEDED = 0x97,
	MQTT_RC_ADMINISTRATIVE_ACTION = 0x98,
	MQTT_RC_PAYLOAD_FORMAT_INVALID = 0x99,
	MQTT_RC_RETAIN_NOT_SUPPORTED = 0x9A,
	MQTT_RC_QOS_NOT_SUPPORTED = 0x9B,
	MQTT_RC_USE_ANOTHER_SERVER = 0x9C,
	MQTT_RC_SERVER_MOVED = 0x9D,
	MQTT_RC_SHARED_SUBS_NOT_SUPPORTED = 0x9E,
	MQTT_RC_CONNECTION_RATE_EXCEEDED = 0x9F,
	MQTT_RC_MAXIMUM_CONNECT_TIME = 0xA0,
	MQTT_RC_SUB_IDS_NOT_SUPPORTED = 0xA1,
	MQTT_RC_WILDCARD_SUBS_NOT_SUPPORTED = 0xA2,
};

/* The lowest failure code: below it a reason code reports success (§2.4). */
#define MQTT_RC_FAILURE_MIN 0x80

/* MQTT 3.1.1 CONNACK return codes (3.1.1 §3.2.2.3; 3.1 uses the same values). */
enum mqtt_connack_311 {
	MQTT_CONNACK_311_ACCEPTED = 0x00,
	MQTT_CONNACK_311_BAD_PROTOCOL_VERSION = 0x01,
	MQTT_CONNACK_311_ID_REJECTED = 0x02,
	MQTT_CONNACK_311_SERVER_UNAVAILABLE = 0x03,
	MQTT_CONNACK_311_BAD_USERNAME_OR_PASSWORD = 0x04,
	MQTT_CONNACK_311_NOT_AUTHORIZED = 0x05,
};

/* MQTT 3.1.1 SUBACK return code for a refused filter (3.1.1 §3.9.3). */
#define MQTT_SUBACK_311_FAILURE 0x80

/* No DISCONNECT: the connection is closed without one (what mqtt_reason_of returns when a broker
 * closes silently). 0x00 can never be an error's reason, so it doubles as "none". */
#define MQTT_RC_NONE 0x00

/* Is code a reason code that packet type may carry at MQTT 5 (§2.4 table 2-6), sent by a server
 * (for DISCONNECT: the codes a server may send)? CONNACK, PUBACK..PUBCOMP, SUBACK, UNSUBACK,
 * DISCONNECT and AUTH; false for any other type. */
bool mqtt_reason_valid(uint8_t type, uint8_t code);

/* The one mapping from a codec failure to the reason code of the DISCONNECT an MQTT 5 broker sends
 * before it closes: rc is the parser's outcome (MALFORMED or TOO_LARGE), why its static reason (the
 * *why of mqtt_frame_parse, the mqtt_*_parse functions and mqtt_alias_resolve). Follows what
 * mosquitto 2.0 answers (docs/OPERATIONS.md "Protocol errors"): most malformed fields 0x81, rule
 * violations 0x82, Topic Alias above the maximum 0x94, packet over the size limit 0x95; a fixed
 * header that does not frame (remaining length form, flags), a duplicate property, and any why this
 * table does not know (including mqseal's own, like "out of memory"): MQTT_RC_NONE. */
uint8_t mqtt_reason_of(enum mqtt_parse rc, const char *why);

#endif
