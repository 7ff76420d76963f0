/* mqtt_codec.c - checked parse and exact-size encode of the packets mqseal looks into or rewrites:
 * CONNECT (§3.1), PUBLISH (§3.3), SUBSCRIBE/UNSUBSCRIBE (§3.8, §3.10) and SUBACK/UNSUBACK (§3.9,
 * §3.11), for MQTT 3.1 (level 3), 3.1.1 (4) and 5.0 (5). Parsers return views into the body;
 * encoders size first, then fill an exactly-sized buffer (section numbers are MQTT 5's). */
#include "mqtt_codec.h"
#include "mqtt_codec_internal.h"
#include "mqtt_topic.h"
#include "mqtt_reason.h"

/* ---- CONNECT (§3.1) ---- */

/* §3.1.2.1-2 (3.1.1 §3.1.2.1-2, 3.1 §3.1): the name/level pairs this codec speaks. */
static bool connect_proto_known(struct mqtt_buf name, uint8_t level)
{
	if (level == MQTT_LEVEL_31)
		return name.len == 6 && memcmp(name.p, "MQIsdp", 6) == 0;
	if (level == MQTT_LEVEL_311 || level == MQTT_LEVEL_5)
		return name.len == 4 && memcmp(name.p, "MQTT", 4) == 0;
	return false;
}

/* §3.1.2.3-3.1.2.9 */
static const char *connect_check_flags(uint8_t level, uint8_t f)
{
	if (f & 0x01)
		return "CONNECT reserved flag set"; /* [MQTT-3.1.2-3] */
	if (MQTT_CONNECT_WILL_QOS(f) == 3)
		return "will QoS 3"; /* [MQTT-3.1.2-12] */
	if (!(f & MQTT_CONNECT_FLAG_WILL) && (f & (MQTT_CONNECT_FLAG_WILL_RETAIN | 0x18)))
		return "will flags without will"; /* [MQTT-3.1.2-11], [MQTT-3.1.2-13] */
	/* 3.1.1 [MQTT-3.1.2-22]; MQTT 5 allows a password alone (§3.1.2.9). */
	if (level != MQTT_LEVEL_5 && (f & MQTT_CONNECT_FLAG_PASSWORD) && !(f & MQTT_CONNECT_FLAG_USERNAME))
		return "password without username";
	return NULL;
}

static enum mqtt_parse connect_read_will(struct wire_rd *r, struct mqtt_connect *c, const char **why)
{
	enum mqtt_parse rc;

	if (c->level == MQTT_LEVEL_5 && (rc = mqtt_rd_props_(r, 0, &c->will_props, why)) != MQTT_PARSE_OK)
		return rc;
	c->will_topic = mqtt_rd_bin_(r);
	c->will_payload = mqtt_rd_bin_(r);
	if (!wire_rd_ok(r))
		return mqtt_bad_(why, "CONNECT truncated");
	if (!mqtt_topic_name_valid(c->will_topic.p, c->will_topic.len))
		return mqtt_bad_(why, "will topic invalid"); /* [MQTT-3.1.3-11], no wildcards */
	return MQTT_PARSE_OK;
}

/* §3.1.3: client id, will properties/topic/payload, user name, password, in that order. */
static enum mqtt_parse connect_read_payload(struct wire_rd *r, struct mqtt_connect *c, const char **why)
{
	enum mqtt_parse rc;

	c->client_id = mqtt_rd_bin_(r);
	if (!wire_rd_ok(r))
		return mqtt_bad_(why, "CONNECT truncated");
	if (!mqtt_utf8_valid(c->client_id.p, c->client_id.len))
		return mqtt_bad_(why, "client id not UTF-8");
	if ((c->flags & MQTT_CONNECT_FLAG_WILL) && (rc = connect_read_will(r, c, why)) != MQTT_PARSE_OK)
		return rc;
	if (c->flags & MQTT_CONNECT_FLAG_USERNAME) {
		c->username = mqtt_rd_bin_(r);
		if (!wire_rd_ok(r))
			return mqtt_bad_(why, "CONNECT truncated");
		if (!mqtt_utf8_valid(c->username.p, c->username.len))
			return mqtt_bad_(why, "username not UTF-8");
	}
	if (c->flags & MQTT_CONNECT_FLAG_PASSWORD)
		c->password = mqtt_rd_bin_(r);
	if (!wire_rd_ok(r))
		return mqtt_bad_(why, "CONNECT truncated");
	return wire_rd_remaining(r) ? mqtt_bad_(why, "trailing bytes in CONNECT") : MQTT_PARSE_OK;
}

enum mqtt_parse mqtt_connect_parse(const uint8_t *body, size_t len, struct mqtt_connect *out,
				   uint8_t *level_out, const char **why)
{
	struct wire_rd r;
	struct mqtt_connect c;
	struct mqtt_buf name;
	const char *err;
	enum mqtt_parse rc;

	memset(&c, 0, sizeof(c));
	wire_rd_init(&r, body, len);
	name = mqtt_rd_bin_(&r);
	c.level = wire_rd_u8(&r);
	if (!wire_rd_ok(&r))
		return mqtt_bad_(why, "CONNECT truncated");
	if (level_out)
		*level_out = c.level;
	if (!connect_proto_known(name, c.level))
		return mqtt_bad_(why, "unsupported protocol name or level");
	c.flags = wire_rd_u8(&r);
	c.keepalive = wire_rd_u16(&r);
	if (!wire_rd_ok(&r))
		return mqtt_bad_(why, "CONNECT truncated");
	if ((err = connect_check_flags(c.level, c.flags)))
		return mqtt_bad_(why, err);
	if (c.level == MQTT_LEVEL_5 &&
	    (rc = mqtt_rd_props_(&r, MQTT_CONNECT, &c.props, why)) != MQTT_PARSE_OK)
		return rc;
	if ((rc = connect_read_payload(&r, &c, why)) != MQTT_PARSE_OK)
		return rc;
	*out = c;
	return MQTT_PARSE_OK;
}

/* Adds a two-byte-length field to *n; false if the field cannot be encoded. */
static bool size_add_bin(size_t *n, struct mqtt_buf b)
{
	if (b.len > MQTT_STR_MAX)
		return false;
	*n += 2 + b.len;
	return true;
}

static bool size_add_props(size_t *n, uint8_t level, struct mqtt_buf props)
{
	size_t w;

	if (level != MQTT_LEVEL_5)
		return true;
	if (!(w = mqtt_props_wire_size_(props.len)))
		return false;
	*n += w;
	return true;
}

/* Remaining length of a CONNECT, 0 if it cannot be encoded validly. Each term is capped (65535 or
 * MQTT_MAX_REMAINING), so the sum cannot overflow a size_t. */
static size_t connect_body_size(const struct mqtt_connect *c)
{
	size_t n;
	bool ok;

	if (c->level != MQTT_LEVEL_31 && c->level != MQTT_LEVEL_311 && c->level != MQTT_LEVEL_5)
		return 0;
	if (connect_check_flags(c->level, c->flags))
		return 0;			     /* would not parse: do not write it */
	n = (c->level == MQTT_LEVEL_31 ? 8 : 6) + 4; /* name, level, flags, keep alive */
	ok = size_add_props(&n, c->level, c->props) && size_add_bin(&n, c->client_id);
	if (c->flags & MQTT_CONNECT_FLAG_WILL)
		ok = ok && size_add_props(&n, c->level, c->will_props) && size_add_bin(&n, c->will_topic) &&
		     size_add_bin(&n, c->will_payload);
	if (c->flags & MQTT_CONNECT_FLAG_USERNAME)
		ok = ok && size_add_bin(&n, c->username);
	if (c->flags & MQTT_CONNECT_FLAG_PASSWORD)
		ok = ok && size_add_bin(&n, c->password);
	return ok && n <= MQTT_MAX_REMAINING ? n : 0;
}

size_t mqtt_connect_size(const struct mqtt_connect *c)
{
	size_t body = connect_body_size(c);

	return body ? mqtt_packet_size_(body) : 0;
}

size_t mqtt_connect_encode(const struct mqtt_connect *c, uint8_t *out, size_t cap)
{
	static const uint8_t name31[] = "MQIsdp", name311[] = "MQTT";
	struct mqtt_buf name = {name311, 4};
	size_t body = connect_body_size(c), size = mqtt_connect_size(c);
	struct wire_wr w;

	if (size == 0 || !out || cap < size)
		return 0;
	if (c->level == MQTT_LEVEL_31)
		name = (struct mqtt_buf){name31, 6};
	wire_wr_init(&w, out, size);
	mqtt_wr_fixed_(&w, MQTT_CONNECT, 0, body);
	mqtt_wr_bin_(&w, name);
	wire_wr_u8(&w, c->level);
	wire_wr_u8(&w, c->flags);
	wire_wr_u16(&w, c->keepalive);
	if (c->level == MQTT_LEVEL_5)
		mqtt_wr_props_(&w, c->props);
	mqtt_wr_bin_(&w, c->client_id);
	if (c->flags & MQTT_CONNECT_FLAG_WILL) {
		if (c->level == MQTT_LEVEL_5)
			mqtt_wr_props_(&w, c->will_props);
		mqtt_wr_bin_(&w, c->will_topic);
		mqtt_wr_bin_(&w, c->will_payload);
	}
	if (c->flags & MQTT_CONNECT_FLAG_USERNAME)
		mqtt_wr_bin_(&w, c->username);
	if (c->flags & MQTT_CONNECT_FLAG_PASSWORD)
		mqtt_wr_bin_(&w, c->password);
	return mqtt_wr_done_(&w, size);
}

/* ---- PUBLISH (§3.3) ---- */

static enum mqtt_parse publish_check_topic(uint8_t level, const struct mqtt_publish *p, const char **why)
{
	struct mqtt_prop alias;

	/* Two reasons, told apart because brokers answer them differently (mqtt_reason_of): a name
	 * that is not UTF-8 is malformed (§1.5.4), one with a wildcard breaks a rule [MQTT-3.3.2-2]. */
	if (p->topic.len > 0 && !mqtt_utf8_valid(p->topic.p, p->topic.len))
		return mqtt_bad_(why, "topic not UTF-8");
	if (p->topic.len > 0)
		return mqtt_topic_name_valid(p->topic.p, p->topic.len) ? MQTT_PARSE_OK
								       : mqtt_bad_(why, "topic name invalid");
	if (level != MQTT_LEVEL_5)
		return mqtt_bad_(why, "empty topic"); /* [MQTT-4.7.3-1] */
	/* A zero-length topic stands for the one a Topic Alias was bound to (§3.3.2.3.4). */
	if (!mqtt_prop_find(p->props, MQTT_PROP_TOPIC_ALIAS, &alias))
		return mqtt_bad_(why, "empty topic without topic alias");
	return MQTT_PARSE_OK;
}

enum mqtt_parse mqtt_publish_parse(uint8_t level, uint8_t flags, const uint8_t *body, size_t len,
				   struct mqtt_publish *out, const char **why)
{
	struct wire_rd r;
	struct mqtt_publish p;
	enum mqtt_parse rc;

	memset(&p, 0, sizeof(p));
	p.qos = MQTT_PUBLISH_QOS(flags);
	if (p.qos == 3)
		return mqtt_bad_(why, "PUBLISH QoS 3"); /* [MQTT-3.3.1-4] */
	p.dup = flags & MQTT_PUBLISH_FLAG_DUP;
	p.retain = flags & MQTT_PUBLISH_FLAG_RETAIN;
	wire_rd_init(&r, body, len);
	p.topic = mqtt_rd_bin_(&r);
	if (p.qos > 0)
		p.packet_id = wire_rd_u16(&r);
	if (!wire_rd_ok(&r))
		return mqtt_bad_(why, "PUBLISH truncated");
	if (p.qos > 0 && p.packet_id == 0)
		return mqtt_bad_(why, "packet id 0"); /* [MQTT-2.2.1-3] */
	if (level == MQTT_LEVEL_5 && (rc = mqtt_rd_props_(&r, MQTT_PUBLISH, &p.props, why)) != MQTT_PARSE_OK)
		return rc;
	if ((rc = publish_check_topic(level, &p, why)) != MQTT_PARSE_OK)
		return rc;
	p.payload = mqtt_rd_rest_(&r);
	*out = p;
	return MQTT_PARSE_OK;
}

size_t mqtt_publish_head_len(uint8_t level, uint8_t flags, const uint8_t *body, size_t avail)
{
	size_t n = 2, i;
	uint32_t v = 0;

	if (avail < n)
		return n;
	n += (size_t)((unsigned)body[0] << 8 | body[1]) + (MQTT_PUBLISH_QOS(flags) ? 2 : 0);
	if (level != MQTT_LEVEL_5)
		return n;
	for (i = 0; i < 4; i++) { /* the property length: a varint of at most 4 bytes */
		if (avail < n + i + 1)
			return n + i + 1;
		v |= (uint32_t)(body[n + i] & 0x7f) << (7 * i);
		if (!(body[n + i] & 0x80))
			return n + i + 1 + v;
	}
	return n + 4; /* overlong: mqtt_publish_parse says so */
}

/* Variable header size (topic, packet id, properties), 0 if p cannot be encoded as a valid
 * PUBLISH. */
static size_t publish_head_size(uint8_t level, const struct mqtt_publish *p)
{
	size_t n = 0;

	if (p->qos > 2 || (p->qos > 0 && p->packet_id == 0) || (p->topic.len == 0 && level != MQTT_LEVEL_5))
		return 0;
	if (!size_add_bin(&n, p->topic) || !size_add_props(&n, level, p->props))
		return 0;
	return n + (p->qos > 0 ? 2 : 0);
}

size_t mqtt_publish_size(uint8_t level, const struct mqtt_publish *p, size_t payload_len)
{
	size_t head = publish_head_size(level, p);

	if (head == 0 || head > MQTT_MAX_REMAINING || payload_len > MQTT_MAX_REMAINING - head)
		return 0;
	return mqtt_packet_size_(head + payload_len);
}

size_t mqtt_publish_encode_head(uint8_t level, const struct mqtt_publish *p, size_t payload_len, uint8_t *out,
				size_t cap)
{
	size_t size = mqtt_publish_size(level, p, payload_len);
	uint8_t flags;
	struct wire_wr w;

	if (size == 0 || !out || cap < size - payload_len)
		return 0;
	flags = (uint8_t)(p->qos << 1 | (p->dup ? MQTT_PUBLISH_FLAG_DUP : 0) |
			  (p->retain ? MQTT_PUBLISH_FLAG_RETAIN : 0));
	wire_wr_init(&w, out, size - payload_len);
	mqtt_wr_fixed_(&w, MQTT_PUBLISH, flags, publish_head_size(level, p) + payload_len);
	mqtt_wr_bin_(&w, p->topic);
	if (p->qos > 0)
		wire_wr_u16(&w, p->packet_id);
	if (level == MQTT_LEVEL_5)
		mqtt_wr_props_(&w, p->props);
	return mqtt_wr_done_(&w, size - payload_len);
}

size_t mqtt_publish_encode(uint8_t level, const struct mqtt_publish *p, uint8_t *out, size_t cap)
{
	size_t size = mqtt_publish_size(level, p, p->payload.len), head;

	if (size == 0 || !out || cap < size)
		return 0;
	head = mqtt_publish_encode_head(level, p, p->payload.len, out, cap);
	if (head == 0)
		return 0;
	if (p->payload.len)
		memcpy(out + head, p->payload.p, p->payload.len);
	return head + p->payload.len;
}

/* ---- SUBSCRIBE / UNSUBSCRIBE (§3.8, §3.10) ---- */

static bool sub_type(uint8_t type)
{
	return type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE;
}

static bool sub_is_share_prefix(struct mqtt_buf f)
{
	return f.len >= 7 && memcmp(f.p, "$share/", 7) == 0;
}

/* The subscription options byte: 3.1.1 §3.8.3.1 has only the QoS bits [MQTT-3.8.3-4]; MQTT 5
 * §3.8.3.1 adds No Local, Retain As Published and Retain Handling (3 is a Protocol Error) and
 * keeps bits 6-7 reserved [MQTT-3.8.3-5]. */
static const char *sub_check_options(uint8_t level, uint8_t opt, struct mqtt_buf filter)
{
	if (level != MQTT_LEVEL_5)
		return (opt & 0xFC) || (opt & 0x03) == 3 ? "subscription options invalid" : NULL;
	if ((opt & 0xC0) || ((opt >> 4) & 0x03) == 3 || (opt & 0x03) == 3)
		return "subscription options invalid";
	if ((opt & 0x04) && sub_is_share_prefix(filter))
		return "no local on shared subscription"; /* [MQTT-3.8.3-4] */
	return NULL;
}

static const char *sub_read_entry(struct wire_rd *r, uint8_t level, uint8_t type, struct mqtt_buf *filter)
{
	const uint8_t *inner;
	size_t inner_len;
	uint8_t opt = 0;

	*filter = mqtt_rd_bin_(r);
	if (type == MQTT_SUBSCRIBE)
		opt = wire_rd_u8(r);
	if (!wire_rd_ok(r))
		return "topic filter truncated";
	if (!mqtt_topic_filter_valid(filter->p, filter->len))
		return "topic filter invalid"; /* §4.7.1, [MQTT-4.7.3-1] */
	/* MQTT 5 reserves "$share/" for a share name and a filter [MQTT-4.8.2-1], [MQTT-4.8.2-2]. */
	if (level == MQTT_LEVEL_5 && sub_is_share_prefix(*filter) &&
	    !mqtt_topic_share_split(filter->p, filter->len, &inner, &inner_len))
		return "shared subscription invalid";
	return type == MQTT_SUBSCRIBE ? sub_check_options(level, opt, *filter) : NULL;
}

enum mqtt_parse mqtt_subscribe_parse(uint8_t level, uint8_t type, const uint8_t *body, size_t len,
				     struct mqtt_subscribe *out, const char **why)
{
	struct wire_rd r;
	struct mqtt_subscribe s;
	struct mqtt_buf filter;
	const char *err;
	enum mqtt_parse rc;

	memset(&s, 0, sizeof(s));
	if (!sub_type(type))
		return mqtt_bad_(why, "not a subscribe type");
	wire_rd_init(&r, body, len);
	s.packet_id = wire_rd_u16(&r);
	if (!wire_rd_ok(&r))
		return mqtt_bad_(why, "packet id truncated");
	if (s.packet_id == 0)
		return mqtt_bad_(why, "packet id 0"); /* [MQTT-2.2.1-3] */
	if (level == MQTT_LEVEL_5 && (rc = mqtt_rd_props_(&r, type, &s.props, why)) != MQTT_PARSE_OK)
		return rc;
	s.entries.p = r.p + r.pos;
	s.entries.len = wire_rd_remaining(&r);
	for (; wire_rd_remaining(&r) > 0; s.count++)
		if ((err = sub_read_entry(&r, level, type, &filter)))
			return mqtt_bad_(why, err);
	if (s.count == 0)
		return mqtt_bad_(why, "no topic filters"); /* [MQTT-3.8.3-2], [MQTT-3.10.3-2] */
	*out = s;
	return MQTT_PARSE_OK;
}

bool mqtt_sub_next(const struct mqtt_subscribe *s, uint8_t type, size_t *pos, struct mqtt_buf *filter,
		   uint8_t *options)
{
	struct wire_rd r;
	struct mqtt_buf f;
	uint8_t opt = 0;

	if (*pos >= s->entries.len)
		return false;
	wire_rd_init(&r, s->entries.p, s->entries.len);
	wire_rd_skip(&r, *pos);
	f = mqtt_rd_bin_(&r);
	if (type == MQTT_SUBSCRIBE)
		opt = wire_rd_u8(&r);
	if (!wire_rd_ok(&r))
		return false;
	*filter = f;
	if (options)
		*options = opt;
	*pos = r.pos;
	return true;
}

/* Remaining length with only the kept entries, 0 if none is kept or the input is unusable. Every
 * entry comes from s->entries, so the sum stays below 2 + props + entries.len. */
static size_t sub_body_size_kept(uint8_t level, uint8_t type, const struct mqtt_subscribe *s,
				 const bool *keep)
{
	size_t n = 2, pos = 0, i, kept = 0;
	struct mqtt_buf f;

	if (!sub_type(type) || s->packet_id == 0 || !size_add_props(&n, level, s->props))
		return 0;
	for (i = 0; i < s->count && mqtt_sub_next(s, type, &pos, &f, NULL); i++) {
		if (keep[i]) {
			n += 2 + f.len + (type == MQTT_SUBSCRIBE ? 1 : 0);
			kept++;
		}
	}
	return kept > 0 && n <= MQTT_MAX_REMAINING ? n : 0;
}

size_t mqtt_subscribe_size_kept(uint8_t level, uint8_t type, const struct mqtt_subscribe *s, const bool *keep)
{
	size_t body = sub_body_size_kept(level, type, s, keep);

	return body ? mqtt_packet_size_(body) : 0;
}

size_t mqtt_subscribe_encode_kept(uint8_t level, uint8_t type, const struct mqtt_subscribe *s,
				  const bool *keep, uint8_t *out, size_t cap)
{
	size_t body = sub_body_size_kept(level, type, s, keep), size = body ? mqtt_packet_size_(body) : 0;
	size_t pos = 0, i;
	struct mqtt_buf f;
	uint8_t opt;
	struct wire_wr w;

	if (size == 0 || !out || cap < size)
		return 0;
	wire_wr_init(&w, out, size);
	mqtt_wr_fixed_(&w, type, 0x02, body);
	wire_wr_u16(&w, s->packet_id);
	if (level == MQTT_LEVEL_5)
		mqtt_wr_props_(&w, s->props);
	for (i = 0; i < s->count && mqtt_sub_next(s, type, &pos, &f, &opt); i++) {
		if (!keep[i])
			continue;
		mqtt_wr_bin_(&w, f);
		if (type == MQTT_SUBSCRIBE)
			wire_wr_u8(&w, opt);
	}
	return mqtt_wr_done_(&w, size);
}

/* ---- SUBACK / UNSUBACK (§3.9, §3.11) ---- */

/* 3.1.1 [MQTT-3.9.3-2]: return codes other than 0x00, 0x01, 0x02 and 0x80 are reserved. */
static bool suback_codes_valid(struct mqtt_buf codes)
{
	size_t i;

	for (i = 0; i < codes.len; i++)
		if (codes.p[i] > MQTT_RC_GRANTED_QOS2 && codes.p[i] != MQTT_SUBACK_311_FAILURE)
			return false;
	return true;
}

/* 3.1.1 UNSUBACK is the packet id alone (§3.11); every other form carries >= 1 code. */
static bool suback_has_codes(uint8_t level, uint8_t type)
{
	return type == MQTT_SUBACK || level == MQTT_LEVEL_5;
}

enum mqtt_parse mqtt_suback_parse(uint8_t level, uint8_t type, const uint8_t *body, size_t len,
				  struct mqtt_suback *out, const char **why)
{
	struct wire_rd r;
	struct mqtt_suback s;
	enum mqtt_parse rc;

	memset(&s, 0, sizeof(s));
	if (type != MQTT_SUBACK && type != MQTT_UNSUBACK)
		return mqtt_bad_(why, "not a suback type");
	wire_rd_init(&r, body, len);
	s.packet_id = wire_rd_u16(&r);
	if (!wire_rd_ok(&r))
		return mqtt_bad_(why, "packet id truncated");
	if (s.packet_id == 0)
		return mqtt_bad_(why, "packet id 0");
	if (level == MQTT_LEVEL_5 && (rc = mqtt_rd_props_(&r, type, &s.props, why)) != MQTT_PARSE_OK)
		return rc;
	s.codes = mqtt_rd_rest_(&r);
	if (!suback_has_codes(level, type) && s.codes.len > 0)
		return mqtt_bad_(why, "remaining length not exact");
	if (suback_has_codes(level, type) && s.codes.len == 0)
		return mqtt_bad_(why, "no reason codes"); /* one per filter (§3.9.3, §3.11.3) */
	if (type == MQTT_SUBACK && level != MQTT_LEVEL_5 && !suback_codes_valid(s.codes))
		return mqtt_bad_(why, "SUBACK return code invalid");
	*out = s;
	return MQTT_PARSE_OK;
}

static size_t suback_body_size(uint8_t level, uint8_t type, const struct mqtt_suback *s)
{
	size_t n = 2;

	if ((type != MQTT_SUBACK && type != MQTT_UNSUBACK) || s->packet_id == 0 ||
	    !size_add_props(&n, level, s->props))
		return 0;
	if (!suback_has_codes(level, type))
		return n;
	if (s->codes.len == 0 || s->codes.len > MQTT_MAX_REMAINING - n)
		return 0;
	return n + s->codes.len;
}

size_t mqtt_suback_size(uint8_t level, uint8_t type, const struct mqtt_suback *s)
{
	size_t body = suback_body_size(level, type, s);

	return body ? mqtt_packet_size_(body) : 0;
}

size_t mqtt_suback_encode(uint8_t level, uint8_t type, const struct mqtt_suback *s, uint8_t *out, size_t cap)
{
	size_t body = suback_body_size(level, type, s), size = mqtt_suback_size(level, type, s);
	struct wire_wr w;

	if (size == 0 || !out || cap < size)
		return 0;
	wire_wr_init(&w, out, size);
	mqtt_wr_fixed_(&w, type, 0, body);
	wire_wr_u16(&w, s->packet_id);
	if (level == MQTT_LEVEL_5)
		mqtt_wr_props_(&w, s->props);
	if (suback_has_codes(level, type))
		wire_wr_bytes(&w, s->codes.p, s->codes.len);
	return mqtt_wr_done_(&w, size);
}
