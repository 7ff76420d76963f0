/* mqtt_frame.c - sans-I/O MQTT framing: the fixed header (type, flags, remaining length) of MQTT
 * 3.1, 3.1.1 (§2.2) and 5.0 (§2.1), decided from at most 5 bytes so that the session can refuse a
 * packet before its body arrives; plus the Variable Byte Integer (MQTT 5 §1.5.5). */
#include "mqtt_frame.h"
#include "mqtt_codec_internal.h"

/* ---- Variable Byte Integer (MQTT 5 §1.5.5, MQTT 3.1.1 §2.2.3) ---- */

_Static_assert(MQTT_VARINT_MAX == WIRE_VARINT_MAX_LEN && MQTT_MAX_REMAINING == WIRE_VARINT_MAX,
	       "the wire cursor's varint is MQTT's");

/* wire.h's decoder: an input that ends inside the varint needs more, a longer form than needed
 * [MQTT-1.5.5-1] or a 4th byte asking for a 5th is malformed. */
enum mqtt_parse mqtt_varint_decode(const uint8_t *buf, size_t len, uint32_t *value, size_t *used)
{
	enum wire_err err = wire_varint_decode(buf, len, value, used);

	if (err == WIRE_OK)
		return MQTT_PARSE_OK;
	return err == WIRE_SHORT ? MQTT_PARSE_NEED_MORE : MQTT_PARSE_MALFORMED;
}

size_t mqtt_varint_size(uint32_t value)
{
	return wire_varint_size(value);
}

size_t mqtt_varint_encode(uint32_t value, uint8_t out[static MQTT_VARINT_MAX])
{
	struct wire_wr w;

	wire_wr_init(&w, out, MQTT_VARINT_MAX);
	wire_wr_varint(&w, value);
	return wire_wr_len(&w);
}

/* ---- packet sizes and the fixed header writer (used by every encoder) ---- */

size_t mqtt_packet_size_(size_t remaining)
{
	if (remaining > MQTT_MAX_REMAINING)
		return 0;
	return 1 + mqtt_varint_size((uint32_t)remaining) + remaining;
}

void mqtt_wr_fixed_(struct wire_wr *w, uint8_t type, uint8_t flags, size_t remaining)
{
	assert(remaining <= MQTT_MAX_REMAINING);
	wire_wr_u8(w, (uint8_t)(type << 4 | (flags & 0x0F)));
	wire_wr_varint(w, (uint32_t)remaining);
}

/* ---- fixed header checks ---- */

/* Flag nibbles (MQTT 3.1.1 §2.2.2, MQTT 5 §2.1.3): PUBREL, SUBSCRIBE and UNSUBSCRIBE carry 0b0010,
 * PUBLISH carries DUP/QoS/RETAIN, every other type 0. MQTT 3.1 let a client set DUP on a resent
 * PUBREL/SUBSCRIBE/UNSUBSCRIBE (3.1 §3.6, §3.8, §3.10), so level 3 tolerates that one bit. */
static const char *frame_check_flags(uint8_t type, uint8_t flags, uint8_t level)
{
	uint8_t want = 0;

	if (type == MQTT_PUBLISH)
		return MQTT_PUBLISH_QOS(flags) == 3 ? "PUBLISH QoS 3" : NULL; /* [MQTT-3.3.1-4] */
	if (type == MQTT_PUBREL || type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE) {
		want = 0x02;
		if (level == MQTT_LEVEL_31)
			flags &= (uint8_t)~0x08;
	}
	return flags == want ? NULL : "fixed header flags invalid";
}

/* Smallest remaining length of each type, and whether that length is the only one allowed.
 * Levels 3/4 from MQTT 3.1.1 §3.x, level 5 from MQTT 5 §3.x:
 *  CONNECT     10 bytes of variable header + an empty client id (MQTT 5 adds 1 property-length
 *              byte, 3.1 a longer name): 12 is the smallest of any level.
 *  CONNACK     flags + code; MQTT 5 adds properties, but a 3.x broker refusing an MQTT 5 CONNECT
 *              answers with the 2-byte form and code 1 (§3.1.4; libmosquitto accepts it), so 2.
 *  PUBLISH     topic length + 1 byte of topic (level 5: empty topic + property length), plus a
 *              packet id at QoS > 0 (added in frame_check_length).
 *  PUBACK..    packet id; MQTT 5 may add reason and properties (§3.4.2.1).
 *  SUBSCRIBE   packet id + (level 5: property length) + one filter of >= 1 byte + options.
 *  SUBACK      packet id + (level 5: property length) + one code.
 *  UNSUBSCRIBE packet id + (level 5: property length) + one filter of >= 1 byte.
 *  UNSUBACK    packet id only at 3/4; level 5 adds property length and one reason code.
 *  PINGREQ/RESP no variable header at any level.
 *  DISCONNECT  empty at 3/4; level 5 may omit reason and properties (§3.14.2.1). AUTH likewise. */
struct frame_rule {
	uint8_t min34, min5;
	bool exact34, exact5;
};

static const struct frame_rule frame_rules[16] = {
	[MQTT_CONNECT] = {12, 12, false, false}, [MQTT_CONNACK] = {2, 2, true, false},
	[MQTT_PUBLISH] = {3, 3, false, false},	 [MQTT_PUBACK] = {2, 2, true, false},
	[MQTT_PUBREC] = {2, 2, true, false},	 [MQTT_PUBREL] = {2, 2, true, false},
	[MQTT_PUBCOMP] = {2, 2, true, false},	 [MQTT_SUBSCRIBE] = {6, 7, false, false},
	[MQTT_SUBACK] = {3, 4, false, false},	 [MQTT_UNSUBSCRIBE] = {5, 6, false, false},
	[MQTT_UNSUBACK] = {2, 4, true, false},	 [MQTT_PINGREQ] = {0, 0, true, true},
	[MQTT_PINGRESP] = {0, 0, true, true},	 [MQTT_DISCONNECT] = {0, 0, true, false},
	[MQTT_AUTH] = {0, 0, false, false},
};

static const char *frame_check_length(uint8_t type, uint8_t flags, uint32_t remaining, uint8_t level)
{
	const struct frame_rule *r = &frame_rules[type];
	uint32_t min;
	bool exact;

	if (level == MQTT_LEVEL_5) {
		min = r->min5;
		exact = r->exact5;
	} else if (level == MQTT_LEVEL_31 || level == MQTT_LEVEL_311) {
		min = r->min34;
		exact = r->exact34;
	} else { /* unknown level: only what holds at every level */
		min = r->min34 < r->min5 ? r->min34 : r->min5;
		exact = r->exact34 && r->exact5;
	}
	if (type == MQTT_PUBLISH && MQTT_PUBLISH_QOS(flags) > 0)
		min += 2;
	if (exact && remaining != min)
		return "remaining length not exact";
	return remaining < min ? "remaining length too short" : NULL;
}

static const char *frame_check_type(uint8_t type, uint8_t level)
{
	if (type == 0)
		return "reserved packet type 0";
	if (type == MQTT_AUTH && level != MQTT_LEVEL_5 && level != MQTT_LEVEL_UNKNOWN)
		return "AUTH before MQTT 5"; /* AUTH exists only in MQTT 5 (§3.15) */
	return NULL;
}

/* Which of the two MALFORMED varints: four continuation bits (a 5th byte would follow) or a
 * longer-than-needed form. */
static bool varint_over_four(const uint8_t *b, size_t len)
{
	return len >= MQTT_VARINT_MAX && (b[0] & b[1] & b[2] & b[3] & 0x80);
}

static enum mqtt_parse frame_fail(enum mqtt_parse rc, const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return rc;
}

enum mqtt_parse mqtt_frame_parse(const uint8_t *buf, size_t len, size_t max_packet, uint8_t level,
				 struct mqtt_frame *out, const char **why)
{
	uint8_t type, flags;
	uint32_t remaining;
	size_t used;
	const char *err;
	enum wire_err verr;

	if (len < 1)
		return MQTT_PARSE_NEED_MORE;
	type = buf[0] >> 4;
	flags = buf[0] & 0x0F;
	if ((err = frame_check_type(type, level)) || (err = frame_check_flags(type, flags, level)))
		return mqtt_bad_(why, err);
	verr = wire_varint_decode(buf + 1, len - 1, &remaining, &used);
	if (verr == WIRE_SHORT)
		return MQTT_PARSE_NEED_MORE;
	if (verr != WIRE_OK)
		return mqtt_bad_(why, varint_over_four(buf + 1, len - 1) ? "remaining length over 4 bytes"
									 : "remaining length overlong");
	if ((err = frame_check_length(type, flags, remaining, level)))
		return mqtt_bad_(why, err);
	out->type = type;
	out->flags = flags;
	out->hdr_len = (uint8_t)(1 + used);
	out->remaining = remaining;
	out->total = 1 + used + remaining;
	if (out->total > max_packet)
		return frame_fail(MQTT_PARSE_TOO_LARGE, why, "packet over limit");
	return MQTT_PARSE_OK;
}

static const char *const mqtt_type_names[16] = {
	[MQTT_CONNECT] = "CONNECT",	    [MQTT_CONNACK] = "CONNACK",	      [MQTT_PUBLISH] = "PUBLISH",
	[MQTT_PUBACK] = "PUBACK",	    [MQTT_PUBREC] = "PUBREC",	      [MQTT_PUBREL] = "PUBREL",
	[MQTT_PUBCOMP] = "PUBCOMP",	    [MQTT_SUBSCRIBE] = "SUBSCRIBE",   [MQTT_SUBACK] = "SUBACK",
	[MQTT_UNSUBSCRIBE] = "UNSUBSCRIBE", [MQTT_UNSUBACK] = "UNSUBACK",     [MQTT_PINGREQ] = "PINGREQ",
	[MQTT_PINGRESP] = "PINGRESP",	    [MQTT_DISCONNECT] = "DISCONNECT", [MQTT_AUTH] = "AUTH",
};

const char *mqtt_type_name(uint8_t type)
{
	if (type >= 16 || !mqtt_type_names[type])
		return "?";
	return mqtt_type_names[type];
}
