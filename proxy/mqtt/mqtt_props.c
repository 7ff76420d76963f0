/* mqtt_props.c - MQTT 5 properties (§2.2.2): the identifier table of §2.2.2.2 (type, packets it may
 * appear in, value range, single or multiple instance), validation of a whole block, iteration,
 * filtering and writing. Also the packets that are nothing but a packet id and/or a reason code
 * plus properties: PUBACK..PUBCOMP, CONNACK, DISCONNECT and AUTH. */
#include "mqtt_codec.h"
#include "mqtt_codec_internal.h"
#include "mqtt_topic.h"

/* Value types of §2.2.2.2 (§1.5 data representation). */
enum prop_kind {
	PK_NONE = 0, /* unknown identifier */
	PK_BYTE,
	PK_U16,
	PK_U32,
	PK_VARINT,
	PK_UTF8,
	PK_BIN,
	PK_PAIR,
};

#define PF_MULTI     0x01 /* may appear more than once */
#define PF_MULTI_PUB 0x02 /* may appear more than once in PUBLISH only (Subscription Identifier) */
#define PF_BOOL	     0x04 /* 0 or 1 */
#define PF_NONZERO   0x08 /* 0 is a Protocol Error */
#define PF_TOPIC     0x10 /* the value is a topic name (Response Topic, [MQTT-3.3.2-14]) */

#define IN(t)	(1u << (t))
#define IN_WILL IN(0) /* will properties: packet type 0 */
#define IN_ACKS (IN(MQTT_PUBACK) | IN(MQTT_PUBREC) | IN(MQTT_PUBREL) | IN(MQTT_PUBCOMP))

struct prop_rule {
	uint8_t kind;
	uint8_t flags;
	uint16_t packets; /* bit n: allowed in packet type n (bit 0: will properties) */
};

/* MQTT 5 §2.2.2.2 table 2-4, with the range rules of §3.1.2.11, §3.2.2.3, §3.3.2.3, §3.8.2.1. */
static const struct prop_rule prop_rules[0x2B] = {
	[MQTT_PROP_PAYLOAD_FORMAT] = {PK_BYTE, PF_BOOL, IN(MQTT_PUBLISH) | IN_WILL},
	[MQTT_PROP_MESSAGE_EXPIRY] = {PK_U32, 0, IN(MQTT_PUBLISH) | IN_WILL},
	[MQTT_PROP_CONTENT_TYPE] = {PK_UTF8, 0, IN(MQTT_PUBLISH) | IN_WILL},
	[MQTT_PROP_RESPONSE_TOPIC] = {PK_UTF8, PF_TOPIC, IN(MQTT_PUBLISH) | IN_WILL},
	[MQTT_PROP_CORRELATION_DATA] = {PK_BIN, 0, IN(MQTT_PUBLISH) | IN_WILL},
	[MQTT_PROP_SUBSCRIPTION_ID] = {PK_VARINT, PF_MULTI_PUB | PF_NONZERO,
				       IN(MQTT_PUBLISH) | IN(MQTT_SUBSCRIBE)},
	[MQTT_PROP_SESSION_EXPIRY] = {PK_U32, 0, IN(MQTT_CONNECT) | IN(MQTT_CONNACK) | IN(MQTT_DISCONNECT)},
	[MQTT_PROP_ASSIGNED_CLIENT_ID] = {PK_UTF8, 0, IN(MQTT_CONNACK)},
	[MQTT_PROP_SERVER_KEEPALIVE] = {PK_U16, 0, IN(MQTT_CONNACK)},
	[MQTT_PROP_AUTH_METHOD] = {PK_UTF8, 0, IN(MQTT_CONNECT) | IN(MQTT_CONNACK) | IN(MQTT_AUTH)},
	[MQTT_PROP_AUTH_DATA] = {PK_BIN, 0, IN(MQTT_CONNECT) | IN(MQTT_CONNACK) | IN(MQTT_AUTH)},
	[MQTT_PROP_REQUEST_PROBLEM_INFO] = {PK_BYTE, PF_BOOL, IN(MQTT_CONNECT)},
	[MQTT_PROP_WILL_DELAY] = {PK_U32, 0, IN_WILL},
	[MQTT_PROP_REQUEST_RESPONSE_INFO] = {PK_BYTE, PF_BOOL, IN(MQTT_CONNECT)},
	[MQTT_PROP_RESPONSE_INFO] = {PK_UTF8, 0, IN(MQTT_CONNACK)},
	[MQTT_PROP_SERVER_REFERENCE] = {PK_UTF8, 0, IN(MQTT_CONNACK) | IN(MQTT_DISCONNECT)},
	[MQTT_PROP_REASON_STRING] = {PK_UTF8, 0,
				     IN(MQTT_CONNACK) | IN_ACKS | IN(MQTT_SUBACK) | IN(MQTT_UNSUBACK) |
					     IN(MQTT_DISCONNECT) | IN(MQTT_AUTH)},
	[MQTT_PROP_RECEIVE_MAX] = {PK_U16, PF_NONZERO, IN(MQTT_CONNECT) | IN(MQTT_CONNACK)},
	[MQTT_PROP_TOPIC_ALIAS_MAX] = {PK_U16, 0, IN(MQTT_CONNECT) | IN(MQTT_CONNACK)},
	[MQTT_PROP_TOPIC_ALIAS] = {PK_U16, PF_NONZERO, IN(MQTT_PUBLISH)},
	[MQTT_PROP_MAX_QOS] = {PK_BYTE, PF_BOOL, IN(MQTT_CONNACK)},
	[MQTT_PROP_RETAIN_AVAILABLE] = {PK_BYTE, PF_BOOL, IN(MQTT_CONNACK)},
	[MQTT_PROP_USER_PROPERTY] = {PK_PAIR, PF_MULTI, 0xFFFF & ~IN(MQTT_PINGREQ) & ~IN(MQTT_PINGRESP)},
	[MQTT_PROP_MAX_PACKET_SIZE] = {PK_U32, PF_NONZERO, IN(MQTT_CONNECT) | IN(MQTT_CONNACK)},
	[MQTT_PROP_WILDCARD_SUB_AVAILABLE] = {PK_BYTE, PF_BOOL, IN(MQTT_CONNACK)},
	[MQTT_PROP_SUB_ID_AVAILABLE] = {PK_BYTE, PF_BOOL, IN(MQTT_CONNACK)},
	[MQTT_PROP_SHARED_SUB_AVAILABLE] = {PK_BYTE, PF_BOOL, IN(MQTT_CONNACK)},
};

static const struct prop_rule *prop_rule_of(uint8_t id)
{
	if (id >= sizeof(prop_rules) / sizeof(prop_rules[0]) || prop_rules[id].kind == PK_NONE)
		return NULL;
	return &prop_rules[id];
}

/* Reads the value of a property of this kind; the cursor's error says whether it was there. */
static void prop_read_value(struct wire_rd *r, uint8_t kind, struct mqtt_prop *p)
{
	switch (kind) {
	case PK_BYTE:
		p->num = wire_rd_u8(r);
		break;
	case PK_U16:
		p->num = wire_rd_u16(r);
		break;
	case PK_U32:
		p->num = wire_rd_u32(r);
		break;
	case PK_VARINT:
		p->num = wire_rd_varint(r);
		break;
	case PK_PAIR:
		p->a = mqtt_rd_bin_(r);
		p->b = mqtt_rd_bin_(r);
		break;
	default: /* PK_UTF8, PK_BIN */
		p->a = mqtt_rd_bin_(r);
		break;
	}
}

/* Strings (UTF-8 and both halves of a pair) must be UTF-8; binary data need not. */
static bool prop_utf8_ok(uint8_t kind, const struct mqtt_prop *p)
{
	if (kind != PK_UTF8 && kind != PK_PAIR)
		return true;
	return mqtt_utf8_valid(p->a.p, p->a.len) && (kind != PK_PAIR || mqtt_utf8_valid(p->b.p, p->b.len));
}

/* Reads one property. The identifier is a Variable Byte Integer (§2.2.2.2), but every defined one
 * is below 128, so a byte with the continuation bit is an unknown identifier or an overlong form. */
static const char *prop_read(struct wire_rd *r, struct mqtt_prop *p)
{
	const struct prop_rule *rule;
	size_t start = r->pos;

	memset(p, 0, sizeof(*p));
	p->id = wire_rd_u8(r);
	if (!wire_rd_ok(r))
		return "property truncated";
	if (!(rule = prop_rule_of(p->id)))
		return "unknown property";
	prop_read_value(r, rule->kind, p);
	if (!wire_rd_ok(r))
		return wire_rd_err(r) == WIRE_INVALID ? "property varint invalid" : "property truncated";
	if (!prop_utf8_ok(rule->kind, p))
		return "property not UTF-8";
	p->raw.p = r->p + start;
	p->raw.len = r->pos - start;
	return NULL;
}

/* Packet, instance and range rules for one property; seen tracks single-instance identifiers. */
static const char *prop_check(const struct mqtt_prop *p, uint8_t packet_type, uint64_t *seen)
{
	const struct prop_rule *rule = prop_rule_of(p->id);
	bool multi =
		(rule->flags & PF_MULTI) || ((rule->flags & PF_MULTI_PUB) && packet_type == MQTT_PUBLISH);

	if (packet_type >= 16 || !(rule->packets & IN(packet_type)))
		return "property not allowed in packet";
	if (!multi && (*seen & (1ull << p->id)))
		return "duplicate property";
	*seen |= 1ull << p->id;
	if (((rule->flags & PF_BOOL) && p->num > 1) || ((rule->flags & PF_NONZERO) && p->num == 0))
		return "property value out of range";
	if ((rule->flags & PF_TOPIC) && !mqtt_topic_name_valid(p->a.p, p->a.len))
		return "response topic invalid";
	return NULL;
}

enum mqtt_parse mqtt_props_validate(struct mqtt_buf props, uint8_t packet_type, const char **why)
{
	struct wire_rd r;
	struct mqtt_prop p;
	uint64_t seen = 0;
	const char *err;

	wire_rd_init(&r, props.p, props.len);
	while (wire_rd_remaining(&r) > 0) {
		if ((err = prop_read(&r, &p)) || (err = prop_check(&p, packet_type, &seen)))
			return mqtt_bad_(why, err);
	}
	return MQTT_PARSE_OK;
}

void mqtt_prop_iter_init(struct mqtt_prop_iter *it, struct mqtt_buf props)
{
	it->props = props;
	it->pos = 0;
}

bool mqtt_prop_next(struct mqtt_prop_iter *it, struct mqtt_prop *out)
{
	struct wire_rd r;

	wire_rd_init(&r, it->props.p, it->props.len);
	wire_rd_skip(&r, it->pos);
	if (wire_rd_remaining(&r) == 0 || prop_read(&r, out) != NULL)
		return false; /* the end, or a block nobody validated: stop rather than misread */
	it->pos = r.pos;
	return true;
}

bool mqtt_prop_find(struct mqtt_buf props, uint8_t id, struct mqtt_prop *out)
{
	struct mqtt_prop_iter it;

	mqtt_prop_iter_init(&it, props);
	while (mqtt_prop_next(&it, out))
		if (out->id == id)
			return true;
	return false;
}

size_t mqtt_props_filter(struct mqtt_buf props, bool (*keep)(uint8_t id, void *arg), void *arg, uint8_t *out,
			 size_t cap)
{
	struct mqtt_prop_iter it;
	struct mqtt_prop p;
	size_t need = 0, pos = 0;

	mqtt_prop_iter_init(&it, props);
	while (mqtt_prop_next(&it, &p))
		if (keep(p.id, arg))
			need += p.raw.len;
	if (!out)
		return need;
	if (need > cap)
		return 0;
	mqtt_prop_iter_init(&it, props);
	while (mqtt_prop_next(&it, &p)) {
		if (keep(p.id, arg)) {
			memcpy(out + pos, p.raw.p, p.raw.len);
			pos += p.raw.len;
		}
	}
	return pos;
}

size_t mqtt_prop_write_u32(uint8_t id, uint32_t value, uint8_t out[static 5])
{
	struct wire_wr w;

	wire_wr_init(&w, out, 5);
	wire_wr_u8(&w, id);
	wire_wr_u32(&w, value);
	return wire_wr_len(&w);
}

static bool prop_not_id(uint8_t id, void *arg)
{
	return id != *(const uint8_t *)arg;
}

size_t mqtt_props_set_u32(struct mqtt_buf props, uint8_t id, uint32_t value, uint8_t *out, size_t cap)
{
	size_t kept = mqtt_props_filter(props, prop_not_id, &id, NULL, 0);
	uint8_t prop[5];

	if (!out)
		return kept + sizeof(prop);
	if (cap < kept + sizeof(prop) || mqtt_props_filter(props, prop_not_id, &id, out, kept) != kept)
		return 0;
	mqtt_prop_write_u32(id, value, prop);
	memcpy(out + kept, prop, sizeof(prop));
	return kept + sizeof(prop);
}

uint32_t mqtt_max_packet_add(uint32_t max, int64_t delta)
{
	int64_t v;

	/* Past these, the answer is known (max is 0..UINT32_MAX), and max + delta cannot overflow. */
	if (delta >= (int64_t)MQTT_PACKET_MAX)
		return MQTT_PACKET_MAX;
	if (delta <= -(int64_t)UINT32_MAX)
		return 1;
	v = (int64_t)max + delta;
	if (v < 1)
		return 1;
	return v > (int64_t)MQTT_PACKET_MAX ? MQTT_PACKET_MAX : (uint32_t)v;
}

/* ---- property blocks inside packets (cross-file helpers) ---- */

enum mqtt_parse mqtt_rd_props_(struct wire_rd *r, uint8_t packet_type, struct mqtt_buf *props,
			       const char **why)
{
	uint32_t n = wire_rd_varint(r);

	if (wire_rd_err(r) == WIRE_SHORT)
		return mqtt_bad_(why, "property length truncated");
	if (!wire_rd_ok(r))
		return mqtt_bad_(why, "property length invalid"); /* [MQTT-1.5.5-1], 5th byte */
	props->p = wire_rd_bytes(r, n);
	props->len = n;
	if (!props->p)
		return mqtt_bad_(why, "properties truncated");
	return mqtt_props_validate(*props, packet_type, why);
}

size_t mqtt_props_wire_size_(size_t len)
{
	if (len > MQTT_MAX_REMAINING)
		return 0;
	return mqtt_varint_size((uint32_t)len) + len;
}

void mqtt_wr_props_(struct wire_wr *w, struct mqtt_buf props)
{
	assert(props.len <= MQTT_MAX_REMAINING);
	wire_wr_varint(w, (uint32_t)props.len);
	wire_wr_bytes(w, props.p, props.len);
}

/* ---- packets made of a packet id and/or a reason code and properties ---- */

/* The MQTT 5 tail of PUBACK..PUBCOMP, DISCONNECT and AUTH: the reason code, then the property
 * length, may each be left out when nothing follows (§3.4.2.1, §3.14.2.1, §3.15.2.1). */
static enum mqtt_parse reason_tail(struct wire_rd *r, uint8_t type, uint8_t *reason, struct mqtt_buf *props,
				   const char **why)
{
	enum mqtt_parse rc;

	*reason = 0;
	props->p = NULL;
	props->len = 0;
	if (wire_rd_remaining(r) == 0)
		return MQTT_PARSE_OK;
	*reason = wire_rd_u8(r);
	if (wire_rd_remaining(r) == 0)
		return MQTT_PARSE_OK;
	if ((rc = mqtt_rd_props_(r, type, props, why)) != MQTT_PARSE_OK)
		return rc;
	return wire_rd_remaining(r) == 0 ? MQTT_PARSE_OK : mqtt_bad_(why, "trailing bytes after properties");
}

static bool ack_type(uint8_t type)
{
	return type >= MQTT_PUBACK && type <= MQTT_PUBCOMP;
}

enum mqtt_parse mqtt_ack_parse(uint8_t level, uint8_t type, const uint8_t *body, size_t len,
			       struct mqtt_ack *out, const char **why)
{
	struct wire_rd r;
	struct mqtt_ack a;
	enum mqtt_parse rc;

	memset(&a, 0, sizeof(a));
	if (!ack_type(type))
		return mqtt_bad_(why, "not an ack type");
	wire_rd_init(&r, body, len);
	a.packet_id = wire_rd_u16(&r);
	if (!wire_rd_ok(&r))
		return mqtt_bad_(why, "ack truncated");
	if (a.packet_id == 0)
		return mqtt_bad_(why, "packet id 0"); /* acks echo a non-zero id [MQTT-2.3.1-1] */
	if (level == MQTT_LEVEL_5)
		rc = reason_tail(&r, type, &a.reason, &a.props, why);
	else /* 3.1.1 §3.4-3.7: the packet id is all there is */
		rc = wire_rd_remaining(&r) ? mqtt_bad_(why, "remaining length not exact") : MQTT_PARSE_OK;
	if (rc == MQTT_PARSE_OK)
		*out = a;
	return rc;
}

/* Shortest form: 2 bytes when reason == 0 and no properties, 3 with a reason only (§3.4.2.1). */
static size_t ack_body_size(uint8_t level, const struct mqtt_ack *a)
{
	size_t props;

	if (level != MQTT_LEVEL_5 || (a->reason == 0 && a->props.len == 0))
		return 2;
	if (a->props.len == 0)
		return 3;
	props = mqtt_props_wire_size_(a->props.len);
	return props ? 3 + props : 0;
}

size_t mqtt_ack_encode(uint8_t level, uint8_t type, const struct mqtt_ack *a, uint8_t *out, size_t cap)
{
	size_t body = ack_body_size(level, a), size = body ? mqtt_packet_size_(body) : 0;
	struct wire_wr w;

	if (!ack_type(type) || a->packet_id == 0 || size == 0 || !out || cap < size)
		return 0;
	wire_wr_init(&w, out, size);
	mqtt_wr_fixed_(&w, type, type == MQTT_PUBREL ? 0x02 : 0, body);
	wire_wr_u16(&w, a->packet_id);
	if (body > 2)
		wire_wr_u8(&w, a->reason);
	if (body > 3)
		mqtt_wr_props_(&w, a->props);
	return mqtt_wr_done_(&w, size);
}

enum mqtt_parse mqtt_connack_parse(uint8_t level, const uint8_t *body, size_t len, struct mqtt_connack *out,
				   const char **why)
{
	struct wire_rd r;
	struct mqtt_connack c;
	uint8_t flags;
	enum mqtt_parse rc = MQTT_PARSE_OK;

	memset(&c, 0, sizeof(c));
	wire_rd_init(&r, body, len);
	flags = wire_rd_u8(&r);
	c.reason = wire_rd_u8(&r);
	if (!wire_rd_ok(&r))
		return mqtt_bad_(why, "CONNACK truncated");
	/* Bits 7-1 reserved [MQTT-3.2.2-1] (MQTT 5 §3.2.2.1); MQTT 3.1 left the whole byte unused. */
	if (level != MQTT_LEVEL_31 && (flags & 0xFE))
		return mqtt_bad_(why, "CONNACK reserved flags set");
	c.session_present = level != MQTT_LEVEL_31 && (flags & 0x01);
	/* A 3.x broker refuses an MQTT 5 CONNECT with the 2-byte CONNACK and code 1 (§3.1.4). */
	if (level == MQTT_LEVEL_5 && !(wire_rd_remaining(&r) == 0 && c.reason == 0x01))
		rc = mqtt_rd_props_(&r, MQTT_CONNACK, &c.props, why);
	if (rc == MQTT_PARSE_OK && wire_rd_remaining(&r))
		rc = mqtt_bad_(why, "trailing bytes in CONNACK");
	if (rc == MQTT_PARSE_OK)
		*out = c;
	return rc;
}

static size_t connack_body_size(uint8_t level, const struct mqtt_connack *c)
{
	size_t props;

	if (level != MQTT_LEVEL_5)
		return 2;
	props = mqtt_props_wire_size_(c->props.len);
	return props ? 2 + props : 0;
}

size_t mqtt_connack_size(uint8_t level, const struct mqtt_connack *c)
{
	size_t body = connack_body_size(level, c);

	return body ? mqtt_packet_size_(body) : 0;
}

size_t mqtt_connack_encode(uint8_t level, const struct mqtt_connack *c, uint8_t *out, size_t cap)
{
	size_t body = connack_body_size(level, c), size = mqtt_connack_size(level, c);
	struct wire_wr w;

	if (size == 0 || !out || cap < size)
		return 0;
	wire_wr_init(&w, out, size);
	mqtt_wr_fixed_(&w, MQTT_CONNACK, 0, body);
	wire_wr_u8(&w, level != MQTT_LEVEL_31 && c->session_present ? 0x01 : 0x00);
	wire_wr_u8(&w, c->reason);
	if (level == MQTT_LEVEL_5)
		mqtt_wr_props_(&w, c->props);
	return mqtt_wr_done_(&w, size);
}

enum mqtt_parse mqtt_disconnect_parse(uint8_t level, const uint8_t *body, size_t len,
				      struct mqtt_reason_props *out, const char **why)
{
	struct wire_rd r;
	struct mqtt_reason_props d;
	enum mqtt_parse rc;

	memset(&d, 0, sizeof(d));
	wire_rd_init(&r, body, len);
	if (level == MQTT_LEVEL_5)
		rc = reason_tail(&r, MQTT_DISCONNECT, &d.reason, &d.props, why);
	else /* 3.1.1 §3.14: no variable header */
		rc = len ? mqtt_bad_(why, "remaining length not exact") : MQTT_PARSE_OK;
	if (rc == MQTT_PARSE_OK)
		*out = d;
	return rc;
}

enum mqtt_parse mqtt_auth_parse(const uint8_t *body, size_t len, struct mqtt_reason_props *out,
				const char **why)
{
	struct wire_rd r;
	struct mqtt_reason_props d;
	enum mqtt_parse rc;

	memset(&d, 0, sizeof(d));
	wire_rd_init(&r, body, len);
	rc = reason_tail(&r, MQTT_AUTH, &d.reason, &d.props, why);
	if (rc == MQTT_PARSE_OK)
		*out = d;
	return rc;
}

size_t mqtt_disconnect_encode(uint8_t level, uint8_t reason, uint8_t *out, size_t cap)
{
	size_t body = level == MQTT_LEVEL_5 ? 1 : 0, size = mqtt_packet_size_(body);
	struct wire_wr w;

	if (!out || cap < size)
		return 0;
	wire_wr_init(&w, out, size);
	mqtt_wr_fixed_(&w, MQTT_DISCONNECT, 0, body);
	if (body)
		wire_wr_u8(&w, reason); /* property length omitted: 0 (§3.14.2.2.1) */
	return mqtt_wr_done_(&w, size);
}
