/* mqtt_check.c - validation of a whole packet a server sends (mqtt_server_packet_check): every
 * broker->device packet goes through it before it is relayed, so that a device never receives bytes
 * that are not valid MQTT (a mutated SUBACK property crashed a client library's network thread).
 * The parsers do the field work; this adds which reason codes each packet may carry (§2.4). */
#include "mqtt_codec.h"
#include "mqtt_codec_internal.h"
#include "mqtt_reason.h"

/* MQTT 3.1.1 CONNACK return codes 0..5 (3.1.1 §3.2.2.3; 3.1 the same). */
#define CONNACK_311_MAX MQTT_CONNACK_311_NOT_AUTHORIZED

static enum mqtt_parse check_code(uint8_t type, uint8_t code, const char **why)
{
	return mqtt_reason_valid(type, code) ? MQTT_PARSE_OK
					     : mqtt_bad_(why, "reason code not allowed in packet");
}

static enum mqtt_parse check_connack(uint8_t level, const uint8_t *body, size_t len, const char **why)
{
	struct mqtt_connack c;
	enum mqtt_parse rc = mqtt_connack_parse(level, body, len, &c, why);

	if (rc != MQTT_PARSE_OK)
		return rc;
	if (level != MQTT_LEVEL_5 || len == 2) /* 3.x, or a 3.x broker refusing an MQTT 5 CONNECT */
		return c.reason <= CONNACK_311_MAX ? MQTT_PARSE_OK
						   : mqtt_bad_(why, "CONNACK return code invalid");
	return check_code(MQTT_CONNACK, c.reason, why);
}

static enum mqtt_parse check_ack(uint8_t level, uint8_t type, const uint8_t *body, size_t len,
				 const char **why)
{
	struct mqtt_ack a;
	enum mqtt_parse rc = mqtt_ack_parse(level, type, body, len, &a, why);

	if (rc != MQTT_PARSE_OK || level != MQTT_LEVEL_5)
		return rc;
	return check_code(type, a.reason, why);
}

static enum mqtt_parse check_suback(uint8_t level, uint8_t type, const uint8_t *body, size_t len,
				    const char **why)
{
	struct mqtt_suback s;
	enum mqtt_parse rc = mqtt_suback_parse(level, type, body, len, &s, why);
	size_t i;

	if (rc != MQTT_PARSE_OK || level != MQTT_LEVEL_5)
		return rc; /* 3.x SUBACK codes are checked by the parser */
	for (i = 0; i < s.codes.len; i++)
		if ((rc = check_code(type, s.codes.p[i], why)) != MQTT_PARSE_OK)
			return rc;
	return MQTT_PARSE_OK;
}

static enum mqtt_parse check_reason_props(uint8_t level, uint8_t type, const uint8_t *body, size_t len,
					  const char **why)
{
	struct mqtt_reason_props d;
	enum mqtt_parse rc;

	if (type == MQTT_AUTH && level != MQTT_LEVEL_5)
		return mqtt_bad_(why, "AUTH before MQTT 5");
	rc = type == MQTT_AUTH ? mqtt_auth_parse(body, len, &d, why)
			       : mqtt_disconnect_parse(level, body, len, &d, why);
	if (rc != MQTT_PARSE_OK || level != MQTT_LEVEL_5)
		return rc;
	return check_code(type, d.reason, why);
}

enum mqtt_parse mqtt_server_packet_check(uint8_t level, const struct mqtt_frame *f, const uint8_t *body,
					 const char **why)
{
	struct mqtt_publish p;
	size_t len = f->remaining;

	switch (f->type) {
	case MQTT_CONNACK:
		return check_connack(level, body, len, why);
	case MQTT_PUBLISH:
		return mqtt_publish_parse(level, f->flags, body, len, &p, why);
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		return check_ack(level, f->type, body, len, why);
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		return check_suback(level, f->type, body, len, why);
	case MQTT_PINGRESP: /* no variable header at any level (§3.13) */
		return len == 0 ? MQTT_PARSE_OK : mqtt_bad_(why, "remaining length not exact");
	case MQTT_DISCONNECT:
	case MQTT_AUTH:
		return check_reason_props(level, f->type, body, len, why);
	default:
		return mqtt_bad_(why, "client-to-server packet");
	}
}
