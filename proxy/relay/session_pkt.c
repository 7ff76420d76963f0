/* session_pkt.c - what a session does with each complete MQTT packet, returned as one verdict
 * (verdict.h) that session.c carries out: CONNECT starts the broker connection, CONNACK teaches the
 * broker's limits (the Maximum Packet Size of both is rewritten to leave room for the seal),
 * PUBLISH topics are resolved through the Topic Alias tables (sealing needs the real topic), acks
 * are read by the codec (mqtt_ack_parse), packets that may not flow in a direction close the
 * connection. Everything else is relayed unchanged. */
#include "session_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mqtt_codec.h"
#include "clock.h"
#include "mqtt_reason.h"
#include "devstate.h"
#include "seal.h"
#include "conf.h"

/* Body of a frame: after the fixed header. */
static const uint8_t *pkt_body(const struct mqtt_frame *f, const uint8_t *bytes)
{
	return bytes + f->hdr_len;
}

static void session_copy_client_id(struct session *s, struct mqtt_buf id)
{
	size_t i, n = id.len < sizeof(s->client) - 1 ? id.len : sizeof(s->client) - 1;

	for (i = 0; i < n; i++)
		s->client[i] = isprint(id.p[i]) ? (char)id.p[i] : '?';
	s->client[n] = '\0';
	if (n == 0)
		strcpy(s->client, "(empty)");
}

static uint16_t session_prop_u16(struct mqtt_buf props, uint8_t id)
{
	struct mqtt_prop p;

	return mqtt_prop_find(props, id, &p) ? (uint16_t)p.num : 0;
}

/* The device's receive state, found by client id (devstate.h), kept across clean sessions too
 * (PROTOCOL.md §6.2). What belonged to the broker's session (subscriptions, unacknowledged
 * deliveries) goes when the broker says it has none (CONNACK Session Present = 0; MQTT 3.1 has
 * no such flag: its clean flag says it). persistent: the broker keeps the session (3.x: clean =
 * 0; 5.0: Session Expiry Interval > 0). */
static int session_attach_devstate(struct session *s, const struct mqtt_connect *c)
{
	bool clean = c->flags & MQTT_CONNECT_FLAG_CLEAN;
	struct mqtt_prop p;

	if (s->devstate || !s->ctx->devices)
		return 0;
	if (c->level == MQTT_LEVEL_5)
		s->persistent = mqtt_prop_find(c->props, MQTT_PROP_SESSION_EXPIRY, &p) && p.num > 0;
	else
		s->persistent = !clean;
	s->devstate = devstate_attach(s->ctx->devices, c->client_id.p, c->client_id.len, clock_wall_ms());
	if (!s->devstate)
		return -1; /* out of memory */
	if (c->level < MQTT_LEVEL_311 && clean)
		devstate_session_reset(s->devstate);
	return 0;
}

/* MQTT 5 §3.1.2.11.4: the broker sends a client nothing larger than the client's Maximum Packet
 * Size. A sealed message is up to seal_overhead_max(any sender) larger at the broker than at the
 * device, so the limit goes to the broker raised by that (at most listen.max_packet_size, what this
 * node reads from the broker), and every message is measured against the device's own limit on its
 * way to it (session_seal.c). Sets c->props to a rewritten copy in *buf (the caller frees it): 1;
 * nothing to rewrite: 0; out of memory: -1. */
static int session_connect_limit(struct session *s, struct mqtt_connect *c, uint8_t **buf)
{
	struct mqtt_prop p;
	uint32_t raised;
	size_t n;

	*buf = NULL;
	if (c->level != MQTT_LEVEL_5 || !mqtt_prop_find(c->props, MQTT_PROP_MAX_PACKET_SIZE, &p))
		return 0;
	s->dev_max_packet = p.num;
	raised = mqtt_max_packet_add(p.num, seal_overhead_max(SEAL_PADDING_ANY, s->ctx->policy));
	if (raised > s->ctx->conf->listen.max_packet_size)
		raised = s->ctx->conf->listen.max_packet_size;
	if (raised == p.num)
		return 0;
	n = mqtt_props_set_u32(c->props, MQTT_PROP_MAX_PACKET_SIZE, raised, NULL, 0);
	*buf = malloc(n);
	if (!*buf || mqtt_props_set_u32(c->props, MQTT_PROP_MAX_PACKET_SIZE, raised, *buf, n) != n)
		return -1;
	c->props = (struct mqtt_buf){*buf, n};
	return 1;
}

/* c for the broker in place of the CONNECT: re-encoded (exact size, REPLACE), or with its will
 * sealed straight into the broker's output (DROP). */
static struct verdict session_connect_encoded(struct session *s, const struct mqtt_connect *c, bool seal_will)
{
	struct evbuffer *out = bufferevent_get_output(s->up);
	size_t before = evbuffer_get_length(out), n;
	uint8_t *buf = NULL;

	if (seal_will) {
		if (seal_connect(s->ctx->seal, c, out) != SEAL_OK) {
			/* Answers the device and drops the broker side unflushed (a sealed CONNECT
			 * may be cut short in it): the session is closed when this returns. */
			session_refuse_connect_(s, MQTT_CONNACK_311_SERVER_UNAVAILABLE, MQTT_RC_SERVER_UNAVAILABLE,
						"cannot seal the will");
			return verdict_then_close(verdict_drop(), "cannot seal the will");
		}
		s->ctx->stats->bytes_to_broker += evbuffer_get_length(out) - before;
		return verdict_drop();
	}
	n = mqtt_connect_size(c);
	buf = n ? malloc(n) : NULL;
	if (!buf || mqtt_connect_encode(c, buf, n) != n) {
		free(buf);
		return verdict_abort(MQTT_RC_NONE, "out of memory");
	}
	return verdict_replace_owned(buf, n);
}

/* The CONNECT goes to the broker: as it came, or rewritten (Maximum Packet Size, sealed will). */
static struct verdict session_connect_relay(struct session *s, struct mqtt_connect *c, bool seal_will)
{
	uint8_t *props = NULL;
	int rc = session_connect_limit(s, c, &props);
	struct verdict v;

	if (rc < 0)
		v = verdict_abort(MQTT_RC_NONE, "out of memory");
	else if (rc == 0 && !seal_will)
		v = verdict_forward();
	else
		v = session_connect_encoded(s, c, seal_will);
	free(props);
	return v;
}

#define SESSION_KEEPALIVE_FAILED "cannot set the keepalive timer"

/* The device's read timeout: a broker closes a client silent for 1.5 x the keep alive in force
 * (MQTT 5 §3.1.2.10), so do we; 0 turns it off. -1: it could not be set. */
static int session_set_keepalive(struct session *s, uint16_t seconds)
{
	struct timeval tv = {.tv_sec = (time_t)seconds + seconds / 2, .tv_usec = (seconds % 2) ? 500000 : 0};

	s->keepalive = seconds;
	return !s->dev || bufferevent_set_timeouts(s->dev, seconds ? &tv : NULL, NULL) == 0 ? 0 : -1;
}

struct verdict session_connect_refuse_(struct session *s, uint8_t reason_311, uint8_t reason_5, const char *why)
{
	uint8_t buf[8];
	struct mqtt_connack ack = {.session_present = false};
	uint8_t level = s->level ? s->level : MQTT_LEVEL_311;
	size_t n;

	ack.reason = level == MQTT_LEVEL_5 ? reason_5 : reason_311;
	n = mqtt_connack_encode(level, &ack, buf, sizeof(buf));
	if (n)
		session_send_(s, DIR_DOWN, buf, n);
	return verdict_then_close(verdict_drop(), why);
}

/* A CONNECT that does not parse: an unsupported protocol level is answered (CONNACK), the rest
 * breaks the protocol. */
static struct verdict session_connect_bad(struct session *s, uint8_t level, const char *why)
{
	if (level != 0 && level != MQTT_LEVEL_31 && level != MQTT_LEVEL_311 && level != MQTT_LEVEL_5) {
		s->level = level == MQTT_LEVEL_5 ? MQTT_LEVEL_5 : MQTT_LEVEL_311;
		return session_connect_refuse_(s, MQTT_CONNACK_311_BAD_PROTOCOL_VERSION,
					       MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION, "unsupported protocol level");
	}
	return verdict_protocol_error(why ? why : "malformed CONNECT");
}

static struct verdict session_on_connect(struct session *s, const struct mqtt_frame *f, const uint8_t *bytes)
{
	struct mqtt_connect c;
	uint8_t level = 0;
	const char *why = NULL;
	bool seal_will = false;
	struct verdict v;

	if (mqtt_connect_parse(pkt_body(f, bytes), f->remaining, &c, &level, &why) != MQTT_PARSE_OK)
		return session_connect_bad(s, level, why);
	s->level = c.level;
	session_copy_client_id(s, c.client_id);
	if (session_attach_devstate(s, &c) != 0)
		return verdict_abort(MQTT_RC_NONE, "out of memory");
	if (c.keepalive && session_set_keepalive(s, c.keepalive) != 0)
		return verdict_abort(MQTT_RC_NONE, SESSION_KEEPALIVE_FAILED);
	if (c.level == MQTT_LEVEL_5)
		mqtt_alias_set_max(s->alias[DIR_DOWN], session_prop_u16(c.props, MQTT_PROP_TOPIC_ALIAS_MAX));
	event_del(s->timer); /* the CONNECT is here: the connect timeout is met */
	v = session_connect_up_(s, &c, &seal_will);
	if (v.kind != VERDICT_FORWARD)
		return v; /* refused, or the will waits for a key */
	session_set_state_(s, SESSION_CONNECTING);
	if (session_upstream_start_(s) != 0)
		return verdict_drop(); /* refused (the device answered, the session closing) */
	return session_connect_relay(s, &c, seal_will);
}

/* The broker's Maximum Packet Size reaches the device less the seal's overhead at this node's own
 * padding (MQTT 5 §3.2.2.3.6), so that whatever the device may send still fits the broker once
 * sealed, and at most listen.max_packet_size, what this node reads from a device. A limit with no
 * room for the seal is passed on as it is (sealed publishes are then refused, session_seal.c). */
static struct verdict session_connack_limit(struct session *s, struct mqtt_connack *ack, uint32_t broker_max)
{
	uint32_t ovh = seal_overhead_max(s->ctx->conf->seal.padding, s->ctx->policy), told = broker_max;
	uint8_t *props = NULL, *pkt = NULL;
	struct verdict v = verdict_abort(MQTT_RC_NONE, "out of memory");
	size_t n, size;

	if (broker_max > ovh)
		told = mqtt_max_packet_add(broker_max, -(int64_t)ovh);
	if (told > s->ctx->conf->listen.max_packet_size)
		told = s->ctx->conf->listen.max_packet_size;
	if (told == broker_max)
		return verdict_forward();
	n = mqtt_props_set_u32(ack->props, MQTT_PROP_MAX_PACKET_SIZE, told, NULL, 0);
	props = malloc(n);
	if (!props || mqtt_props_set_u32(ack->props, MQTT_PROP_MAX_PACKET_SIZE, told, props, n) != n)
		goto out;
	ack->props = (struct mqtt_buf){props, n};
	size = mqtt_connack_size(s->level, ack);
	pkt = size ? malloc(size) : NULL;
	if (!pkt || mqtt_connack_encode(s->level, ack, pkt, size) != size)
		goto out;
	v = verdict_replace_owned(pkt, size);
	pkt = NULL;
out:
	free(pkt);
	free(props);
	return v;
}

static struct verdict session_on_connack(struct session *s, const struct mqtt_frame *f, const uint8_t *bytes)
{
	struct mqtt_connack ack;
	struct mqtt_prop p;
	const char *why = NULL;

	if (s->got_connack)
		return verdict_protocol_error("second CONNACK");
	if (mqtt_connack_parse(s->level, pkt_body(f, bytes), f->remaining, &ack, &why) != MQTT_PARSE_OK)
		return verdict_protocol_error(why ? why : "malformed CONNACK");
	s->got_connack = true;
	if (s->devstate && s->level >= MQTT_LEVEL_311 && !ack.session_present)
		devstate_session_reset(s->devstate);
	if (s->level == MQTT_LEVEL_5) {
		mqtt_alias_set_max(s->alias[DIR_UP], session_prop_u16(ack.props, MQTT_PROP_TOPIC_ALIAS_MAX));
		/* A device without a client id resumes under the one the broker assigned (PROTOCOL.md §6.2). */
		if (s->devstate && mqtt_prop_find(ack.props, MQTT_PROP_ASSIGNED_CLIENT_ID, &p))
			devstate_adopt(s->ctx->devices, s->devstate, p.a.p, p.a.len);
		/* The device must use the broker's Server Keep Alive instead of its own (MQTT-3.1.2-21). */
		if (mqtt_prop_find(ack.props, MQTT_PROP_SERVER_KEEPALIVE, &p) &&
		    session_set_keepalive(s, (uint16_t)p.num) != 0) {
			/* the device's timer: closed as the device's side, as at its CONNECT */
			session_abort_(s, DIR_UP, SESSION_KEEPALIVE_FAILED);
			return verdict_abort(MQTT_RC_NONE, SESSION_KEEPALIVE_FAILED);
		}
		if (mqtt_prop_find(ack.props, MQTT_PROP_MAX_PACKET_SIZE, &p)) {
			s->broker_max_packet = p.num;
			return session_connack_limit(s, &ack, p.num);
		}
	}
	return verdict_forward();
}

/* Parses a PUBLISH and resolves its real topic through the direction's alias table: NULL, or why
 * it breaks the protocol. */
static const char *session_parse_publish(struct session *s, enum session_dir d, const struct mqtt_frame *f,
				 const uint8_t *bytes, struct mqtt_publish *p, struct mqtt_buf *topic)
{
	const char *why = NULL;
	uint16_t alias = 0;

	size_t head = s->frame_head < f->total ? s->frame_head : f->total;

	/* A large PUBLISH may have only its header contiguous: parsed from it, payload length from
	 * the frame (the payload itself is read from the input chains: session_seal_up, and
	 * session_open_down_ from the broker). */
	if (mqtt_publish_parse(s->level, f->flags, pkt_body(f, bytes), head - f->hdr_len, p, &why) != MQTT_PARSE_OK)
		return why ? why : "malformed PUBLISH";
	if (head < f->total)
		p->payload = (struct mqtt_buf){NULL, f->total - head};
	if (s->level == MQTT_LEVEL_5)
		alias = session_prop_u16(p->props, MQTT_PROP_TOPIC_ALIAS);
	if (mqtt_alias_resolve(s->alias[d], alias, p->topic, topic, &why) != MQTT_PARSE_OK)
		return why ? why : "invalid topic alias";
	return NULL;
}

static struct verdict session_on_publish(struct session *s, enum session_dir d, const struct mqtt_frame *f,
					 const uint8_t *bytes)
{
	struct mqtt_publish p;
	struct mqtt_buf topic;
	const char *why = session_parse_publish(s, d, f, bytes, &p, &topic);

	if (why)
		return verdict_protocol_error(why);
	if (d == DIR_UP)
		return session_publish_up_(s, f, bytes, &p, topic);
	return session_publish_down_(s, f, bytes, &p, topic);
}

/* HTTP request methods (RFC 9110 §9) and the HTTP/2 preface ("PRI * HTTP/2.0", RFC 9113 §3.4),
 * each followed by a space: no MQTT packet starts with an upper-case letter and a space. */
static const char *const session_http_methods[] = {"GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "OPTIONS ",
						     "PATCH ", "CONNECT ", "TRACE ", "PRI "};

const char *session_sniff_foreign_(const uint8_t *p, size_t n, bool *need_more)
{
	size_t i, k, m;

	*need_more = false;
	if (n == 0 || p[0] == (MQTT_CONNECT << 4))
		return NULL;
	/* A TLS record of type handshake (22), version 3.x (RFC 8446 §5.1): a ClientHello. */
	if (p[0] == 0x16 && (n < 2 || p[1] == 0x03)) {
		*need_more = n < 2;
		return n < 2 ? NULL : "a TLS client connected to the plain MQTT port (it sent a TLS ClientHello; "
				      "connect without TLS, or to a TLS listener: listeners with tls)";
	}
	for (i = 0; i < sizeof(session_http_methods) / sizeof(session_http_methods[0]); i++) {
		m = strlen(session_http_methods[i]);
		for (k = 0; k < n && k < m && p[k] == (uint8_t)session_http_methods[i][k]; k++)
			;
		if (k == m)
			return "an HTTP client connected to the MQTT port (it sent an HTTP request; "
			       "the metrics endpoint is metrics.port)";
		if (k == n)
			*need_more = true; /* a prefix of a method so far */
	}
	return NULL;
}

/* Packets a client never sends (MQTT 5 §2.1.2 "direction of flow"). */
static bool session_server_only(uint8_t type)
{
	return type == MQTT_CONNACK || type == MQTT_SUBACK || type == MQTT_UNSUBACK || type == MQTT_PINGRESP;
}

static bool session_client_only(uint8_t type)
{
	return type == MQTT_CONNECT || type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE ||
	       type == MQTT_PINGREQ;
}

/* The packet id of a PUBACK, PUBREC, PUBREL or PUBCOMP, read by the codec (mqtt_ack_parse), the
 * one place an ack is judged: NULL, or why it is malformed. */
static const char *session_ack_id(const struct session *s, const struct mqtt_frame *f, const uint8_t *bytes,
				  uint16_t *pid)
{
	struct mqtt_ack a;
	const char *why = NULL;

	if (mqtt_ack_parse(s->level, f->type, pkt_body(f, bytes), f->remaining, &a, &why) != MQTT_PARSE_OK)
		return why ? why : "malformed ack";
	*pid = a.packet_id;
	return NULL;
}

static bool session_is_ack(uint8_t type)
{
	return type == MQTT_PUBACK || type == MQTT_PUBREC || type == MQTT_PUBREL || type == MQTT_PUBCOMP;
}

/* An ack from the device: a PUBREL may complete a flow mqseal answered itself (PUBCOMP, dropped);
 * a PUBACK or PUBREC means the device holds the message now, so a redelivery of it would be a
 * replay. A malformed one is not acted on and goes to the broker as it came: the broker answers it
 * (mosquitto 2.0 closes without a DISCONNECT; test_mqtt5_errors test_malformed_acks), as it does a
 * malformed UNSUBSCRIBE. */
static struct verdict session_device_ack(struct session *s, const struct mqtt_frame *f, const uint8_t *bytes)
{
	uint16_t pid = 0;

	if (session_ack_id(s, f, bytes, &pid) != NULL)
		return verdict_forward();
	if (f->type == MQTT_PUBREL && session_pubrel_local_(s, DIR_UP, pid))
		return verdict_drop();
	if ((f->type == MQTT_PUBACK || f->type == MQTT_PUBREC) && s->devstate)
		devstate_pending_ack(s->devstate, pid);
	return verdict_forward();
}

static struct verdict session_device_packet(struct session *s, const struct mqtt_frame *f, const uint8_t *bytes)
{
	if (s->state == SESSION_AWAIT_CONNECT) {
		if (f->type != MQTT_CONNECT)
			return verdict_protocol_error("first packet is not CONNECT");
		return session_on_connect(s, f, bytes);
	}
	if (f->type == MQTT_CONNECT)
		return verdict_protocol_error("second CONNECT");
	if (session_server_only(f->type))
		return verdict_protocol_error("server-to-client packet");
	if (session_is_ack(f->type))
		return session_device_ack(s, f, bytes);
	switch (f->type) {
	case MQTT_PUBLISH:
		return session_on_publish(s, DIR_UP, f, bytes);
	case MQTT_SUBSCRIBE:
		return session_subscribe_up_(s, f, bytes);
	case MQTT_UNSUBSCRIBE:
		session_unsubscribe_up_(s, f, bytes);
		break;
	default:
		break;
	}
	return verdict_forward();
}

/* An ack from the broker (checked already, mqtt_server_packet_check): a PUBREL may complete a flow
 * mqseal acknowledged for the device (PUBCOMP, dropped); a PUBACK or PUBREC settles an in-flight
 * device publish, and reaches the device before a stopping session closes. */
static struct verdict session_broker_ack(struct session *s, const struct mqtt_frame *f, const uint8_t *bytes)
{
	const char *why;
	uint16_t pid = 0;

	if ((why = session_ack_id(s, f, bytes, &pid)) != NULL)
		return verdict_protocol_error(why);
	if (f->type == MQTT_PUBREL && session_pubrel_local_(s, DIR_DOWN, pid))
		return verdict_drop();
	if ((f->type == MQTT_PUBACK || f->type == MQTT_PUBREC) && session_inflight_done_(s, pid))
		return verdict_then_close(verdict_forward(), "shutting down (in-flight publishes acknowledged)");
	return verdict_forward();
}

static struct verdict session_broker_packet(struct session *s, const struct mqtt_frame *f, const uint8_t *bytes)
{
	const char *why = NULL;

	if (!s->got_connack && f->type != MQTT_CONNACK && f->type != MQTT_AUTH)
		return verdict_protocol_error("first packet is not CONNACK");
	if (session_client_only(f->type))
		return verdict_protocol_error("client-to-server packet");
	/* Nothing reaches the device that is not valid MQTT: every packet but PUBLISH (parsed fully
	 * on its own way, session_parse_publish) is checked here, reason codes included. */
	if (f->type != MQTT_PUBLISH &&
	    mqtt_server_packet_check(s->level, f, pkt_body(f, bytes), &why) != MQTT_PARSE_OK)
		return verdict_protocol_error(why ? why : "malformed packet");
	if (session_is_ack(f->type))
		return session_broker_ack(s, f, bytes);
	switch (f->type) {
	case MQTT_CONNACK:
		return session_on_connack(s, f, bytes);
	case MQTT_PUBLISH:
		return session_on_publish(s, DIR_DOWN, f, bytes);
	case MQTT_SUBACK:
		return session_suback_down_(s, f, bytes);
	default:
		return verdict_forward();
	}
}

struct verdict session_packet_(struct session *s, enum session_dir d, const struct mqtt_frame *f,
			       const uint8_t *bytes)
{
	return d == DIR_UP ? session_device_packet(s, f, bytes) : session_broker_packet(s, f, bytes);
}
