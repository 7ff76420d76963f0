/* fuzz_mqtt_codec.c - libFuzzer target for the MQTT codec (proxy/mqtt_*.c). Input: byte 0 picks
 * the level (0 unknown, then learnt from a CONNECT as the session does; 1..3 = MQTT 3.1, 3.1.1,
 * 5), byte 1 the packet size limit (16 << n bytes), the rest is a stream of packets. Every frame
 * goes to its packet parser; whatever parses is re-encoded, and the result must be the same bytes
 * (CONNECT, PUBLISH, SUBSCRIBE, SUBACK) or parse back to the same packet (acks, CONNACK); any
 * mismatch abort()s. PUBLISH is also re-encoded with a different payload and checked again. Every
 * frame also goes through the check of packets from a server (mqtt_check.c), and the reason its
 * failure maps to (mqtt_reason.c) must be none or a code a server may send in a DISCONNECT. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt_alias.h"
#include "mqtt_codec.h"
#include "mqtt_frame.h"
#include "mqtt_reason.h"
#include "mqtt_topic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(c)                                                                                       \
	do {                                                                                                 \
		if (!(c))                                                                                    \
			abort();                                                                             \
	} while (0)

static int same(struct mqtt_buf a, struct mqtt_buf b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* malloc that never returns NULL (n may be 0). */
static uint8_t *fuzz_alloc(size_t n)
{
	uint8_t *p = malloc(n ? n : 1);

	FUZZ_ASSERT(p != NULL);
	return p;
}

static bool keep_odd(uint8_t id, void *arg)
{
	(void)arg;
	return id & 1;
}

static void fuzz_props(struct mqtt_buf props, uint8_t type)
{
	struct mqtt_prop_iter it;
	struct mqtt_prop p;
	size_t total = 0, need;
	uint8_t *out;

	FUZZ_ASSERT(mqtt_props_validate(props, type, NULL) == MQTT_PARSE_OK);
	mqtt_prop_iter_init(&it, props);
	while (mqtt_prop_next(&it, &p))
		total += p.raw.len;
	FUZZ_ASSERT(total == props.len);
	need = mqtt_props_filter(props, keep_odd, NULL, NULL, 0);
	out = fuzz_alloc(need);
	FUZZ_ASSERT(mqtt_props_filter(props, keep_odd, NULL, out, need) == need);
	FUZZ_ASSERT(mqtt_props_validate((struct mqtt_buf){out, need}, type, NULL) == MQTT_PARSE_OK);
	free(out);
}

static void fuzz_connect(const uint8_t *pkt, const struct mqtt_frame *f, uint8_t *level)
{
	struct mqtt_connect c, back;
	uint8_t lv = 0, *out;
	size_t size;

	if (mqtt_connect_parse(pkt + f->hdr_len, f->remaining, &c, &lv, NULL) != MQTT_PARSE_OK)
		return;
	FUZZ_ASSERT(lv == c.level);
	*level = c.level; /* what the session learns from CONNECT */
	fuzz_props(c.props, MQTT_CONNECT);
	fuzz_props(c.will_props, 0);
	size = mqtt_connect_size(&c);
	FUZZ_ASSERT(size == f->total);
	out = fuzz_alloc(size);
	FUZZ_ASSERT(mqtt_connect_encode(&c, out, size) == size && memcmp(out, pkt, size) == 0);
	FUZZ_ASSERT(mqtt_connect_parse(out + f->hdr_len, f->remaining, &back, NULL, NULL) == MQTT_PARSE_OK);
	FUZZ_ASSERT(back.level == c.level && back.flags == c.flags && back.keepalive == c.keepalive);
	FUZZ_ASSERT(same(back.props, c.props) && same(back.client_id, c.client_id));
	FUZZ_ASSERT(same(back.will_props, c.will_props) && same(back.will_topic, c.will_topic));
	FUZZ_ASSERT(same(back.will_payload, c.will_payload) && same(back.username, c.username));
	FUZZ_ASSERT(same(back.password, c.password));
	free(out);
}

/* Re-encodes p with a payload that puts the remaining length at or next to a varint boundary
 * (127/128, 16383/16384: the fixed header changes size there) and parses it back. */
static void fuzz_publish_resize(uint8_t level, const struct mqtt_publish *p, uint8_t pick)
{
	static const size_t targets[] = {127, 128, 16383, 16384};
	struct mqtt_publish q = *p, back;
	struct mqtt_frame f;
	size_t head = 2 + p->topic.len + (p->qos ? 2 : 0), rem = targets[pick % 4], n, size;
	uint8_t *payload, *out;

	if (level == MQTT_LEVEL_5) /* property length varint + properties */
		head += mqtt_varint_size((uint32_t)p->props.len) + p->props.len;
	if (head > rem)
		return;
	n = rem - head;
	payload = fuzz_alloc(n);
	memset(payload, pick, n);
	q.payload = (struct mqtt_buf){payload, n};
	size = mqtt_publish_size(level, &q, n);
	FUZZ_ASSERT(size == 1 + (rem < 128 ? 1u : rem < 16384 ? 2u : 3u) + rem);
	out = fuzz_alloc(size);
	FUZZ_ASSERT(mqtt_publish_encode(level, &q, out, size) == size);
	FUZZ_ASSERT(mqtt_frame_parse(out, size, size, level, &f, NULL) == MQTT_PARSE_OK && f.total == size);
	FUZZ_ASSERT(mqtt_publish_parse(level, f.flags, out + f.hdr_len, f.remaining, &back, NULL) ==
		    MQTT_PARSE_OK);
	FUZZ_ASSERT(same(back.topic, p->topic) && same(back.props, p->props) &&
		    same(back.payload, q.payload));
	FUZZ_ASSERT(back.qos == p->qos && back.packet_id == p->packet_id);
	free(out);
	free(payload);
}

/* Invariants that tie the topic functions to a topic that parsed. */
static void fuzz_topic(struct mqtt_buf t)
{
	static const uint8_t hash[] = "#", plus_hash[] = "+/#";

	if (t.len == 0)
		return;
	FUZZ_ASSERT(mqtt_topic_name_valid(t.p, t.len) && mqtt_topic_filter_valid(t.p, t.len));
	FUZZ_ASSERT(mqtt_topic_match(t.p, t.len, t.p, t.len));
	FUZZ_ASSERT(mqtt_topic_match(hash, 1, t.p, t.len) == (t.p[0] != '$'));
	FUZZ_ASSERT(mqtt_topic_filters_overlap(plus_hash, 3, t.p, t.len) == (t.p[0] != '$'));
}

static void fuzz_publish(const uint8_t *pkt, const struct mqtt_frame *f, uint8_t level,
			 struct mqtt_alias *aliases)
{
	struct mqtt_publish p, back;
	struct mqtt_prop alias;
	struct mqtt_buf topic;
	uint8_t *out, *two;
	size_t size, head;

	if (mqtt_publish_parse(level, f->flags, pkt + f->hdr_len, f->remaining, &p, NULL) != MQTT_PARSE_OK)
		return;
	size = mqtt_publish_size(level, &p, p.payload.len);
	FUZZ_ASSERT(size == f->total);
	out = fuzz_alloc(size);
	two = fuzz_alloc(size);
	FUZZ_ASSERT(mqtt_publish_encode(level, &p, out, size) == size && memcmp(out, pkt, size) == 0);
	head = mqtt_publish_encode_head(level, &p, p.payload.len, two, size);
	FUZZ_ASSERT(head == size - p.payload.len);
	if (p.payload.len)
		memcpy(two + head, p.payload.p, p.payload.len);
	FUZZ_ASSERT(memcmp(out, two, size) == 0);
	FUZZ_ASSERT(mqtt_publish_parse(level, f->flags, out + f->hdr_len, f->remaining, &back, NULL) ==
		    MQTT_PARSE_OK);
	FUZZ_ASSERT(same(back.topic, p.topic) && same(back.props, p.props) && same(back.payload, p.payload));
	FUZZ_ASSERT(back.qos == p.qos && back.dup == p.dup && back.retain == p.retain);
	FUZZ_ASSERT(back.packet_id == p.packet_id);
	fuzz_publish_resize(level, &p, pkt[size - 1]);
	fuzz_topic(p.topic);
	fuzz_props(p.props, MQTT_PUBLISH);
	if (level == MQTT_LEVEL_5 && mqtt_prop_find(p.props, MQTT_PROP_TOPIC_ALIAS, &alias) &&
	    mqtt_alias_resolve(aliases, (uint16_t)alias.num, p.topic, &topic, NULL) == MQTT_PARSE_OK)
		FUZZ_ASSERT(topic.len > 0 && (p.topic.len == 0 || same(topic, p.topic)));
	free(two);
	free(out);
}

static void fuzz_ack(const uint8_t *pkt, const struct mqtt_frame *f, uint8_t level)
{
	struct mqtt_ack a, back;
	uint8_t *out;
	size_t n, cap = f->total + 8;

	if (mqtt_ack_parse(level, f->type, pkt + f->hdr_len, f->remaining, &a, NULL) != MQTT_PARSE_OK)
		return;
	fuzz_props(a.props, f->type);
	out = fuzz_alloc(cap);
	n = mqtt_ack_encode(level, f->type, &a, out, cap);
	FUZZ_ASSERT(n >= 4 && n <= f->total); /* the shortest form, never longer */
	FUZZ_ASSERT(mqtt_ack_parse(level, f->type, out + 2, n - 2, &back, NULL) == MQTT_PARSE_OK);
	FUZZ_ASSERT(back.packet_id == a.packet_id && back.reason == a.reason && same(back.props, a.props));
	free(out);
}

static void fuzz_connack(const uint8_t *pkt, const struct mqtt_frame *f, uint8_t level)
{
	struct mqtt_connack c, back;
	struct mqtt_frame g;
	uint8_t *out;
	size_t size;

	if (mqtt_connack_parse(level, pkt + f->hdr_len, f->remaining, &c, NULL) != MQTT_PARSE_OK)
		return;
	fuzz_props(c.props, MQTT_CONNACK);
	size = mqtt_connack_size(level, &c);
	out = fuzz_alloc(size);
	FUZZ_ASSERT(size > 0 && mqtt_connack_encode(level, &c, out, size) == size);
	FUZZ_ASSERT(mqtt_frame_parse(out, size, size, level, &g, NULL) == MQTT_PARSE_OK && g.total == size);
	FUZZ_ASSERT(mqtt_connack_parse(level, out + g.hdr_len, g.remaining, &back, NULL) == MQTT_PARSE_OK);
	FUZZ_ASSERT(back.session_present == c.session_present && back.reason == c.reason);
	FUZZ_ASSERT(same(back.props, c.props));
	free(out);
}

/* Keeps every entry (byte-identical), then every other one (parses back with that many). */
static void fuzz_subscribe(const uint8_t *pkt, const struct mqtt_frame *f, uint8_t level)
{
	struct mqtt_subscribe s, back;
	struct mqtt_frame g;
	struct mqtt_buf filter;
	const uint8_t *inner;
	size_t pos = 0, n = 0, size, inner_len;
	bool *keep;
	uint8_t *out;

	if (mqtt_subscribe_parse(level, f->type, pkt + f->hdr_len, f->remaining, &s, NULL) != MQTT_PARSE_OK)
		return;
	fuzz_props(s.props, f->type);
	while (mqtt_sub_next(&s, f->type, &pos, &filter, NULL)) {
		FUZZ_ASSERT(mqtt_topic_filter_valid(filter.p, filter.len));
		FUZZ_ASSERT(mqtt_topic_filters_overlap(filter.p, filter.len, filter.p, filter.len));
		if (mqtt_topic_share_split(filter.p, filter.len, &inner, &inner_len))
			FUZZ_ASSERT(inner_len > 0 && inner + inner_len == filter.p + filter.len);
		n++;
	}
	FUZZ_ASSERT(n == s.count && pos == s.entries.len);
	keep = calloc(n, sizeof(*keep));
	FUZZ_ASSERT(keep != NULL);
	memset(keep, 1, n * sizeof(*keep));
	size = mqtt_subscribe_size_kept(level, f->type, &s, keep);
	out = fuzz_alloc(f->total);
	FUZZ_ASSERT(size == f->total &&
		    mqtt_subscribe_encode_kept(level, f->type, &s, keep, out, size) == size);
	/* the same bytes, except the DUP bit MQTT 3.1 allowed on a resent (UN)SUBSCRIBE */
	FUZZ_ASSERT(out[0] == (pkt[0] & ~0x08) && memcmp(out + 1, pkt + 1, size - 1) == 0);
	for (pos = 0; pos < n; pos++)
		keep[pos] = pos % 2 == 0;
	size = mqtt_subscribe_size_kept(level, f->type, &s, keep);
	FUZZ_ASSERT(size > 0 && mqtt_subscribe_encode_kept(level, f->type, &s, keep, out, size) == size);
	FUZZ_ASSERT(mqtt_frame_parse(out, size, size, level, &g, NULL) == MQTT_PARSE_OK && g.total == size);
	FUZZ_ASSERT(mqtt_subscribe_parse(level, f->type, out + g.hdr_len, g.remaining, &back, NULL) ==
		    MQTT_PARSE_OK);
	FUZZ_ASSERT(back.count == (n + 1) / 2 && back.packet_id == s.packet_id && same(back.props, s.props));
	free(out);
	free(keep);
}

static void fuzz_suback(const uint8_t *pkt, const struct mqtt_frame *f, uint8_t level)
{
	struct mqtt_suback s;
	uint8_t *out;
	size_t size;

	if (mqtt_suback_parse(level, f->type, pkt + f->hdr_len, f->remaining, &s, NULL) != MQTT_PARSE_OK)
		return;
	size = mqtt_suback_size(level, f->type, &s);
	FUZZ_ASSERT(size == f->total);
	out = fuzz_alloc(size);
	FUZZ_ASSERT(mqtt_suback_encode(level, f->type, &s, out, size) == size && memcmp(out, pkt, size) == 0);
	free(out);
}

static void fuzz_reason(const uint8_t *pkt, const struct mqtt_frame *f, uint8_t level)
{
	struct mqtt_reason_props d;
	enum mqtt_parse rc;

	if (f->type == MQTT_AUTH)
		rc = mqtt_auth_parse(pkt + f->hdr_len, f->remaining, &d, NULL);
	else
		rc = mqtt_disconnect_parse(level, pkt + f->hdr_len, f->remaining, &d, NULL);
	if (rc == MQTT_PARSE_OK)
		fuzz_props(d.props, f->type);
}

static void fuzz_server_check(const uint8_t *pkt, const struct mqtt_frame *f, uint8_t level)
{
	const char *why = NULL;
	enum mqtt_parse rc = mqtt_server_packet_check(level, f, pkt + f->hdr_len, &why);
	uint8_t reason = mqtt_reason_of(rc, why);

	FUZZ_ASSERT(rc == MQTT_PARSE_OK || rc == MQTT_PARSE_MALFORMED);
	FUZZ_ASSERT((rc == MQTT_PARSE_OK) == (why == NULL));
	if (rc == MQTT_PARSE_OK)
		FUZZ_ASSERT(reason == MQTT_RC_NONE);
	else
		FUZZ_ASSERT(reason == MQTT_RC_NONE || mqtt_reason_valid(MQTT_DISCONNECT, reason));
}

static void fuzz_packet(const uint8_t *pkt, const struct mqtt_frame *f, uint8_t *level,
			struct mqtt_alias *aliases)
{
	switch (f->type) {
	case MQTT_CONNECT:
		fuzz_connect(pkt, f, level);
		break;
	case MQTT_CONNACK:
		fuzz_connack(pkt, f, *level);
		break;
	case MQTT_PUBLISH:
		fuzz_publish(pkt, f, *level, aliases);
		break;
	case MQTT_PUBACK:
	case MQTT_PUBREC:
	case MQTT_PUBREL:
	case MQTT_PUBCOMP:
		fuzz_ack(pkt, f, *level);
		break;
	case MQTT_SUBSCRIBE:
	case MQTT_UNSUBSCRIBE:
		fuzz_subscribe(pkt, f, *level);
		break;
	case MQTT_SUBACK:
	case MQTT_UNSUBACK:
		fuzz_suback(pkt, f, *level);
		break;
	case MQTT_DISCONNECT:
	case MQTT_AUTH:
		fuzz_reason(pkt, f, *level);
		break;
	default: /* PINGREQ, PINGRESP: the frame is all there is */
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t levels[4] = {MQTT_LEVEL_UNKNOWN, MQTT_LEVEL_31, MQTT_LEVEL_311, MQTT_LEVEL_5};
	struct mqtt_alias *aliases;
	struct mqtt_frame f;
	const char *why;
	uint8_t level;
	size_t max_packet, k;
	enum mqtt_parse rc;

	if (size < 2)
		return 0;
	level = levels[data[0] % 4];
	max_packet = (size_t)16 << (data[1] % 21);
	aliases = mqtt_alias_new(data[1]);
	FUZZ_ASSERT(aliases != NULL);
	for (data += 2, size -= 2; size > 0; data += f.total, size -= f.total) {
		why = NULL;
		rc = mqtt_frame_parse(data, size, max_packet, level, &f, &why);
		FUZZ_ASSERT((rc == MQTT_PARSE_MALFORMED || rc == MQTT_PARSE_TOO_LARGE) == (why != NULL));
		if (rc != MQTT_PARSE_OK)
			break;
		FUZZ_ASSERT(f.hdr_len >= 2 && f.hdr_len <= MQTT_FIXED_HDR_MAX && f.total <= max_packet);
		for (k = 0; k < f.hdr_len; k++) /* every proper prefix of a good header waits */
			FUZZ_ASSERT(mqtt_frame_parse(data, k, max_packet, level, &f, NULL) ==
				    MQTT_PARSE_NEED_MORE);
		FUZZ_ASSERT(mqtt_frame_parse(data, size, max_packet, level, &f, NULL) == MQTT_PARSE_OK);
		if (f.total > size)
			break; /* the body has not arrived */
		fuzz_server_check(data, &f, level);
		fuzz_packet(data, &f, &level, aliases);
	}
	mqtt_alias_free(aliases);
	return 0;
}
