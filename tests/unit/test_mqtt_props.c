/* test_mqtt_props.c - MQTT 5 properties (proxy/mqtt/mqtt_props.c): one valid example of every identifier
 * of §2.2.2.2 checked against an independent table of the packets it may appear in, every
 * malformed form (unknown, truncated, not UTF-8, out of range, duplicate), iteration, filtering;
 * and the reason-code packets that live in the same file: PUBACK..PUBCOMP, CONNACK, DISCONNECT,
 * AUTH, parsed and encoded at levels 4 and 5. */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "mqtt_codec.h"

#define MAXP 40

struct prop_case {
	uint8_t id;
	uint32_t num;	/* expected numeric value */
	const char *a;	/* expected string/binary (NULL: none) */
	const char *in; /* packet types it may appear in ("W" = will properties), MQTT 5 table 2-4 */
	uint8_t len;
	uint8_t bytes[16];
};

/* One valid example per identifier, byte by byte: identifier, then the value. */
static const struct prop_case cases[] = {
	{0x01, 1, NULL, "3,W", 2, {0x01, 1}},			       /* Payload Format Indicator 1 */
	{0x02, 3600, NULL, "3,W", 5, {0x02, 0, 0, 0x0E, 0x10}},	       /* Message Expiry 3600 s */
	{0x03, 0, "text", "3,W", 7, {0x03, 0, 4, 't', 'e', 'x', 't'}}, /* Content Type */
	{0x08, 0, "r/x", "3,W", 6, {0x08, 0, 3, 'r', '/', 'x'}},       /* Response Topic */
	{0x09, 0, "\x01\x02", "3,W", 5, {0x09, 0, 2, 1, 2}},	       /* Correlation Data */
	{0x0B, 128, NULL, "3,8", 3, {0x0B, 0x80, 0x01}},	       /* Subscription Id (varint) */
	{0x11, 0xFFFFFFFF, NULL, "1,2,14", 5, {0x11, 0xFF, 0xFF, 0xFF, 0xFF}}, /* Session Expiry */
	{0x12, 0, "abc", "2", 6, {0x12, 0, 3, 'a', 'b', 'c'}},		       /* Assigned Client Id */
	{0x13, 30, NULL, "2", 3, {0x13, 0, 30}},			       /* Server Keep Alive */
	{0x15, 0, "SCRM", "1,2,15", 7, {0x15, 0, 4, 'S', 'C', 'R', 'M'}},      /* Authentication Method */
	{0x16, 0, "\xAA\xBB", "1,2,15", 5, {0x16, 0, 2, 0xAA, 0xBB}},	       /* Authentication Data */
	{0x17, 1, NULL, "1", 2, {0x17, 1}},				       /* Request Problem Info */
	{0x18, 60, NULL, "W", 5, {0x18, 0, 0, 0, 60}},			       /* Will Delay Interval */
	{0x19, 1, NULL, "1", 2, {0x19, 1}},				       /* Request Response Info */
	{0x1A, 0, "resp", "2", 7, {0x1A, 0, 4, 'r', 'e', 's', 'p'}},	       /* Response Information */
	{0x1C, 0, "srv", "2,14", 6, {0x1C, 0, 3, 's', 'r', 'v'}},	       /* Server Reference */
	{0x1F, 0, "ok", "2,4,5,6,7,9,11,14,15", 5, {0x1F, 0, 2, 'o', 'k'}},    /* Reason String */
	{0x21, 20, NULL, "1,2", 3, {0x21, 0, 20}},			       /* Receive Maximum */
	{0x22, 10, NULL, "1,2", 3, {0x22, 0, 10}},			       /* Topic Alias Maximum */
	{0x23, 1, NULL, "3", 3, {0x23, 0, 1}},				       /* Topic Alias */
	{0x24, 1, NULL, "2", 2, {0x24, 1}},				       /* Maximum QoS */
	{0x25, 0, NULL, "2", 2, {0x25, 0}},				       /* Retain Available */
	{0x26, 0, "k", "1,2,3,4,5,6,7,8,9,10,11,14,15,W", 7, {0x26, 0, 1, 'k', 0, 1, 'v'}}, /* User Property
											     */
	{0x27, 65536, NULL, "1,2", 5, {0x27, 0, 1, 0, 0}}, /* Maximum Packet Size */
	{0x28, 1, NULL, "2", 2, {0x28, 1}},		   /* Wildcard Sub Available */
	{0x29, 0, NULL, "2", 2, {0x29, 0}},		   /* Sub Id Available */
	{0x2A, 1, NULL, "2", 2, {0x2A, 1}},		   /* Shared Sub Available */
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* Parses the "in" list of a case: is packet type t (0 = will) listed? */
static int allowed_in(const char *in, unsigned t)
{
	char list[64], *tok, *save = NULL;

	snprintf(list, sizeof(list), "%s", in);
	for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		if ((tok[0] == 'W' ? 0u : (unsigned)strtoul(tok, NULL, 10)) == t)
			return 1;
	return 0;
}

static struct mqtt_buf buf_of(const uint8_t *p, size_t len)
{
	struct mqtt_buf b = {p, len};

	return b;
}

static void test_every_identifier(void)
{
	struct mqtt_prop p;
	struct mqtt_prop_iter it;
	size_t i;
	unsigned t;

	CHECK_EQ(NCASES, 27); /* every identifier of §2.2.2.2 */
	for (i = 0; i < NCASES; i++) {
		const struct prop_case *c = &cases[i];
		struct mqtt_buf b = buf_of(c->bytes, c->len);

		for (t = 0; t < 16; t++)
			CHECK_EQ(mqtt_props_validate(b, (uint8_t)t, NULL) == MQTT_PARSE_OK,
				 allowed_in(c->in, t));
		mqtt_prop_iter_init(&it, b);
		CHECK(mqtt_prop_next(&it, &p));
		CHECK_EQ(p.id, c->id);
		CHECK_EQ(p.num, c->num);
		CHECK(p.raw.p == c->bytes && p.raw.len == c->len);
		if (c->a) {
			CHECK_EQ(p.a.len, strlen(c->a));
			CHECK_MEM(p.a.p, c->a, p.a.len);
		}
		CHECK(!mqtt_prop_next(&it, &p));
	}
	/* the second string of a user property */
	mqtt_prop_iter_init(&it, buf_of(cases[22].bytes, cases[22].len));
	CHECK(mqtt_prop_next(&it, &p) && p.b.len == 1 && p.b.p[0] == 'v');
}

struct bad_case {
	uint8_t type; /* packet validated for */
	const char *why;
	uint8_t len;
	uint8_t bytes[12];
};

static const struct bad_case bad[] = {
	{3, "unknown property", 1, {0x00}},
	{3, "unknown property", 2, {0x04, 0}},
	{3, "unknown property", 2, {0x2B, 0}},
	{3, "unknown property", 2, {0x7F, 0}},
	{3, "unknown property", 3, {0x81, 0x00, 1}},	       /* identifier 1 as an overlong varint */
	{3, "property truncated", 1, {0x01}},		       /* byte */
	{3, "property truncated", 2, {0x23, 0}},	       /* two-byte integer */
	{3, "property truncated", 4, {0x02, 0, 0, 0}},	       /* four-byte integer */
	{3, "property truncated", 2, {0x0B, 0x80}},	       /* varint */
	{3, "property truncated", 2, {0x03, 0}},	       /* string length */
	{3, "property truncated", 4, {0x03, 0, 5, 'a'}},       /* string bytes */
	{3, "property truncated", 4, {0x09, 0, 2, 1}},	       /* binary */
	{3, "property truncated", 6, {0x26, 0, 1, 'k', 0, 2}}, /* pair value */
	{3, "property varint invalid", 3, {0x0B, 0x80, 0x00}}, /* overlong subscription id */
	{3, "property varint invalid", 5, {0x0B, 0xFF, 0xFF, 0xFF, 0xFF}},
	{3, "property not UTF-8", 5, {0x03, 0, 2, 0xC3, 0x28}},	      /* bad continuation */
	{3, "property not UTF-8", 4, {0x03, 0, 1, 0x00}},	      /* U+0000 */
	{3, "property not UTF-8", 6, {0x03, 0, 3, 0xED, 0xA0, 0x80}}, /* surrogate U+D800 */
	{3, "property not UTF-8", 5, {0x03, 0, 2, 0xC0, 0xAF}},	      /* overlong '/' */
	{3, "property not UTF-8", 7, {0x26, 0, 1, 0xFF, 0, 1, 'v'}},  /* user property name */
	{3, "property not UTF-8", 7, {0x26, 0, 1, 'k', 0, 1, 0x80}},  /* user property value */
	{3, "property value out of range", 2, {0x01, 2}},	      /* payload format 2 */
	{3, "property value out of range", 3, {0x23, 0, 0}},	      /* topic alias 0 */
	{2, "property value out of range", 2, {0x24, 2}},	      /* maximum QoS 2 */
	{2, "property value out of range", 3, {0x21, 0, 0}},	      /* receive maximum 0 */
	{1, "property value out of range", 3, {0x21, 0, 0}},
	{1, "property value out of range", 5, {0x27, 0, 0, 0, 0}}, /* max packet size 0 */
	{8, "property value out of range", 2, {0x0B, 0x00}},	   /* subscription id 0 */
	{1, "property value out of range", 2, {0x17, 2}},	   /* request problem info */
	{1, "property value out of range", 2, {0x19, 2}},	   /* request response info */
	{2, "property value out of range", 2, {0x25, 2}},	   /* retain available */
	{2, "property value out of range", 2, {0x28, 2}},
	{2, "property value out of range", 2, {0x29, 2}},
	{2, "property value out of range", 2, {0x2A, 2}},
	{0, "property value out of range", 2, {0x01, 0xFF}}, /* will payload format */
	{3, "duplicate property", 4, {0x01, 1, 0x01, 0}},
	{3, "duplicate property", 6, {0x23, 0, 1, 0x23, 0, 2}},
	{8, "duplicate property", 4, {0x0B, 1, 0x0B, 2}}, /* once in SUBSCRIBE */
	{1, "duplicate property", 10, {0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2}},
	{3, "response topic invalid", 6, {0x08, 0, 3, 'a', '/', '#'}},		 /* [MQTT-3.3.2-14] */
	{3, "response topic invalid", 3, {0x08, 0, 0}},				 /* empty */
	{3, "property not allowed in packet", 3, {0x13, 0, 1}},			 /* server keep alive */
	{2, "property not allowed in packet", 3, {0x23, 0, 1}},			 /* topic alias */
	{12, "property not allowed in packet", 7, {0x26, 0, 1, 'k', 0, 1, 'v'}}, /* PINGREQ */
};

static void test_malformed(void)
{
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = NULL;

		CHECK_EQ(mqtt_props_validate(buf_of(bad[i].bytes, bad[i].len), bad[i].type, &why),
			 MQTT_PARSE_MALFORMED);
		CHECK(why && strcmp(why, bad[i].why) == 0);
		if (why && strcmp(why, bad[i].why) != 0)
			fprintf(stderr, "  case %zu: \"%s\", expected \"%s\"\n", i, why, bad[i].why);
	}
}

/* Multiple instances where the spec allows them, and the empty block. */
static void test_multiple(void)
{
	static const uint8_t subids[] = {0x0B, 1, 0x0B, 0x80, 0x01}; /* PUBLISH: 2 sub ids */
	static const uint8_t users[] = {0x26, 0, 1, 'a', 0, 0, 0x26, 0, 1, 'a', 0, 0}; /* same pair twice */

	CHECK_EQ(mqtt_props_validate(buf_of(subids, sizeof(subids)), MQTT_PUBLISH, NULL), MQTT_PARSE_OK);
	CHECK_EQ(mqtt_props_validate(buf_of(users, sizeof(users)), MQTT_CONNECT, NULL), MQTT_PARSE_OK);
	CHECK_EQ(mqtt_props_validate(buf_of(NULL, 0), MQTT_PUBLISH, NULL), MQTT_PARSE_OK);
}

static bool keep_not_alias_or_expiry(uint8_t id, void *arg)
{
	(void)arg;
	return id != MQTT_PROP_TOPIC_ALIAS && id != MQTT_PROP_MESSAGE_EXPIRY;
}

static void test_iterate_find_filter(void)
{
	/* PUBLISH properties: payload format 1 | topic alias 7 | user "k"="v" | message expiry 60 */
	static const uint8_t block[] = {0x01, 1, 0x23, 0, 7, 0x26, 0, 1, 'k', 0, 1, 'v', 0x02, 0, 0, 0, 60};
	static const uint8_t kept[] = {0x01, 1, 0x26, 0, 1, 'k', 0, 1, 'v'};
	static const uint8_t ids[] = {0x01, 0x23, 0x26, 0x02};
	struct mqtt_buf b = buf_of(block, sizeof(block));
	struct mqtt_prop_iter it;
	struct mqtt_prop p;
	uint8_t out[32], u32[5];
	size_t n = 0;

	CHECK_EQ(mqtt_props_validate(b, MQTT_PUBLISH, NULL), MQTT_PARSE_OK);
	mqtt_prop_iter_init(&it, b);
	while (mqtt_prop_next(&it, &p)) {
		CHECK(n < sizeof(ids) && p.id == ids[n]);
		n++;
	}
	CHECK_EQ(n, 4);
	CHECK(mqtt_prop_find(b, MQTT_PROP_TOPIC_ALIAS, &p) && p.num == 7);
	CHECK(mqtt_prop_find(b, MQTT_PROP_MESSAGE_EXPIRY, &p) && p.num == 60 && p.raw.len == 5);
	CHECK(!mqtt_prop_find(b, MQTT_PROP_CONTENT_TYPE, &p));
	CHECK_EQ(mqtt_props_filter(b, keep_not_alias_or_expiry, NULL, NULL, 0), sizeof(kept));
	CHECK_EQ(mqtt_props_filter(b, keep_not_alias_or_expiry, NULL, out, sizeof(out)), sizeof(kept));
	CHECK_MEM(out, kept, sizeof(kept));
	CHECK_EQ(mqtt_props_filter(b, keep_not_alias_or_expiry, NULL, out, sizeof(kept) - 1), 0);
	/* a block nobody validated stops the iteration instead of misreading */
	mqtt_prop_iter_init(&it, buf_of(block, 4)); /* cuts the topic alias */
	CHECK(mqtt_prop_next(&it, &p) && p.id == 0x01);
	CHECK(!mqtt_prop_next(&it, &p));
	/* Message Expiry Interval 3600: 02 | 00 00 0E 10 */
	CHECK_EQ(mqtt_prop_write_u32(MQTT_PROP_MESSAGE_EXPIRY, 3600, u32), 5);
	CHECK_MEM(u32, cases[1].bytes, 5);
}

/* A Maximum Packet Size rewritten in place of the device's (or added), the rest kept in order. */
static void test_set_u32(void)
{
	/* CONNECT properties: session expiry 300 | maximum packet size 64 | user "k"="v" */
	static const uint8_t block[] = {0x11, 0, 0, 0x01, 0x2C, 0x27, 0, 0, 0, 64, 0x26, 0, 1, 'k', 0, 1, 'v'};
	static const uint8_t want[] = {0x11, 0, 0, 0x01, 0x2C, 0x26, 0, 1, 'k', 0, 1, 'v', 0x27, 0, 0, 0x01, 0x6A};
	static const uint8_t added[] = {0x27, 0x10, 0, 0, 4};
	uint8_t out[32];
	struct mqtt_prop p;

	CHECK_EQ(mqtt_props_set_u32(buf_of(block, sizeof(block)), 0x27, 362, NULL, 0), sizeof(want));
	CHECK_EQ(mqtt_props_set_u32(buf_of(block, sizeof(block)), 0x27, 362, out, sizeof(out)), sizeof(want));
	CHECK_MEM(out, want, sizeof(want));
	CHECK_EQ(mqtt_props_validate(buf_of(out, sizeof(want)), MQTT_CONNECT, NULL), MQTT_PARSE_OK);
	CHECK(mqtt_prop_find(buf_of(out, sizeof(want)), 0x27, &p) && p.num == 362);
	CHECK_EQ(mqtt_props_set_u32(buf_of(block, sizeof(block)), 0x27, 362, out, sizeof(want) - 1), 0);
	/* none before: appended; an empty block gives the one property */
	CHECK_EQ(mqtt_props_set_u32(buf_of(NULL, 0), 0x27, 0x10000004, out, sizeof(out)), 5);
	CHECK_MEM(out, added, 5);
}

/* Moved by the seal's overhead either way, never past 1..268,435,460 and never wrapping a u32. */
static void test_max_packet_add(void)
{
	CHECK_EQ(mqtt_max_packet_add(64, 298), 362);
	CHECK_EQ(mqtt_max_packet_add(200, -58), 142);
	CHECK_EQ(mqtt_max_packet_add(268435400, 298), 268435460);
	CHECK_EQ(mqtt_max_packet_add(UINT32_MAX, 298), 268435460); /* no wrap to 297 */
	CHECK_EQ(mqtt_max_packet_add(UINT32_MAX, -58), 268435460);
	CHECK_EQ(mqtt_max_packet_add(58, -58), 1);
	CHECK_EQ(mqtt_max_packet_add(1, -58), 1);
	CHECK_EQ(mqtt_max_packet_add(0, 0), 1);
	CHECK_EQ(mqtt_max_packet_add(UINT32_MAX, INT64_MIN), 1);
	CHECK_EQ(mqtt_max_packet_add(1, INT64_MAX), 268435460);
	CHECK_EQ(MQTT_PACKET_MAX, 268435460u);
}

/* ---- PUBACK, PUBREC, PUBREL, PUBCOMP (§3.4-3.7) ---- */

static void check_ack(uint8_t level, uint8_t type, const uint8_t *body, size_t len, enum mqtt_parse want,
		      const char *want_why)
{
	struct mqtt_ack a;
	const char *why = NULL;

	CHECK_EQ(mqtt_ack_parse(level, type, body, len, &a, &why), want);
	if (want_why)
		CHECK(why && strcmp(why, want_why) == 0);
}

static void test_ack_parse(void)
{
	static const uint8_t id1[] = {0, 1}, id0[] = {0, 0}, id1x[] = {0, 1, 0};
	static const uint8_t r10[] = {0, 5, 0x10};		      /* id 5, reason 0x10 */
	static const uint8_t rs[] = {0, 5, 0x80, 4, 0x1F, 0, 1, 'x'}; /* + reason string "x" */
	static const uint8_t trail[] = {0, 5, 0, 0, 0xFF};	      /* props len 0, 1 extra */
	static const uint8_t alias[] = {0, 5, 0, 3, 0x23, 0, 1};      /* topic alias: not here */
	static const uint8_t cut[] = {0, 5, 0, 5, 0x1F, 0, 1};	      /* props len 5, 3 there */
	static const uint8_t over[] = {0, 5, 0, 0x80, 0x00};	      /* props len overlong */
	struct mqtt_ack a;
	uint8_t t;

	for (t = MQTT_PUBACK; t <= MQTT_PUBCOMP; t++) {
		CHECK_EQ(mqtt_ack_parse(4, t, id1, 2, &a, NULL), MQTT_PARSE_OK);
		CHECK(a.packet_id == 1 && a.reason == 0 && a.props.len == 0);
		check_ack(4, t, id1x, 3, MQTT_PARSE_MALFORMED, "remaining length not exact");
		check_ack(5, t, id0, 2, MQTT_PARSE_MALFORMED, "packet id 0");
		check_ack(4, t, id1, 1, MQTT_PARSE_MALFORMED, "ack truncated");
		CHECK_EQ(mqtt_ack_parse(5, t, r10, sizeof(r10), &a, NULL), MQTT_PARSE_OK);
		CHECK(a.packet_id == 5 && a.reason == 0x10 && a.props.len == 0);
		CHECK_EQ(mqtt_ack_parse(5, t, rs, sizeof(rs), &a, NULL), MQTT_PARSE_OK);
		CHECK(a.reason == 0x80 && a.props.len == 4 && a.props.p == rs + 4);
		check_ack(5, t, trail, sizeof(trail), MQTT_PARSE_MALFORMED,
			  "trailing bytes after properties");
		check_ack(5, t, alias, sizeof(alias), MQTT_PARSE_MALFORMED, "property not allowed in packet");
		check_ack(5, t, cut, sizeof(cut), MQTT_PARSE_MALFORMED, "properties truncated");
		check_ack(5, t, over, sizeof(over), MQTT_PARSE_MALFORMED, "property length invalid");
	}
	check_ack(4, MQTT_SUBACK, id1, 2, MQTT_PARSE_MALFORMED, "not an ack type");
}

static void test_ack_encode(void)
{
	static const uint8_t rs_props[] = {0x1F, 0, 1, 'x'};
	static const uint8_t puback4[] = {0x40, 0x02, 0, 1};				/* PUBACK id 1 */
	static const uint8_t pubrel5[] = {0x62, 0x02, 0, 5};				/* PUBREL, shortest */
	static const uint8_t pubrec5[] = {0x50, 0x03, 0, 5, 0x10};			/* reason only */
	static const uint8_t pubcomp5[] = {0x70, 0x08, 0, 5, 0x92, 4, 0x1F, 0, 1, 'x'}; /* + props */
	struct mqtt_ack a = {1, 0x80, {rs_props, sizeof(rs_props)}}, back;
	uint8_t out[MQTT_ACK_MAX_SIMPLE + 8];

	/* level 4 writes the packet id only, whatever reason and properties say */
	CHECK_EQ(mqtt_ack_encode(4, MQTT_PUBACK, &a, out, sizeof(out)), 4);
	CHECK_MEM(out, puback4, 4);
	a = (struct mqtt_ack){5, 0, {NULL, 0}};
	CHECK_EQ(mqtt_ack_encode(5, MQTT_PUBREL, &a, out, MQTT_ACK_MAX_SIMPLE), 4);
	CHECK_MEM(out, pubrel5, 4);
	a.reason = 0x10;
	CHECK_EQ(mqtt_ack_encode(5, MQTT_PUBREC, &a, out, MQTT_ACK_MAX_SIMPLE), 5);
	CHECK_MEM(out, pubrec5, 5);
	a = (struct mqtt_ack){5, 0x92, {rs_props, sizeof(rs_props)}};
	CHECK_EQ(mqtt_ack_encode(5, MQTT_PUBCOMP, &a, out, sizeof(out)), sizeof(pubcomp5));
	CHECK_MEM(out, pubcomp5, sizeof(pubcomp5));
	CHECK_EQ(mqtt_ack_parse(5, MQTT_PUBCOMP, out + 2, sizeof(pubcomp5) - 2, &back, NULL), MQTT_PARSE_OK);
	CHECK(back.packet_id == 5 && back.reason == 0x92 && back.props.len == 4);
	CHECK_MEM(back.props.p, rs_props, 4);
	CHECK_EQ(mqtt_ack_encode(5, MQTT_PUBCOMP, &a, out, sizeof(pubcomp5) - 1), 0); /* cap */
	a.packet_id = 0;
	CHECK_EQ(mqtt_ack_encode(5, MQTT_PUBCOMP, &a, out, sizeof(out)), 0);
	a.packet_id = 1;
	CHECK_EQ(mqtt_ack_encode(5, MQTT_PUBLISH, &a, out, sizeof(out)), 0);
}

/* ---- CONNACK (§3.2) ---- */

static void test_connack(void)
{
	static const uint8_t sp[] = {0x01, 0x00}, resv[] = {0x02, 0x00}, v31[] = {0x02, 0x05};
	static const uint8_t p5[] = {0x00, 0x00, 3, 0x22, 0, 10}; /* topic alias maximum 10 */
	static const uint8_t refuse[] = {0x00, 0x01};		  /* a 3.x broker's answer */
	static const uint8_t trail[] = {0x00, 0x00, 0x00, 0xFF};
	static const uint8_t enc4[] = {0x20, 0x02, 0x01, 0x00};
	static const uint8_t enc5[] = {0x20, 0x06, 0x00, 0x87, 3, 0x22, 0, 10};
	struct mqtt_connack c;
	const char *why = NULL;
	uint8_t out[16];

	CHECK_EQ(mqtt_connack_parse(4, sp, 2, &c, NULL), MQTT_PARSE_OK);
	CHECK(c.session_present && c.reason == 0);
	CHECK_EQ(mqtt_connack_parse(4, resv, 2, &c, &why), MQTT_PARSE_MALFORMED);
	CHECK(why && strcmp(why, "CONNACK reserved flags set") == 0);
	CHECK_EQ(mqtt_connack_parse(3, v31, 2, &c, NULL), MQTT_PARSE_OK); /* 3.1: byte unused */
	CHECK(!c.session_present && c.reason == 5);
	CHECK_EQ(mqtt_connack_parse(5, p5, sizeof(p5), &c, NULL), MQTT_PARSE_OK);
	CHECK(!c.session_present && c.props.len == 3 && c.props.p == p5 + 3);
	CHECK_EQ(mqtt_connack_parse(5, refuse, 2, &c, NULL), MQTT_PARSE_OK);
	CHECK_EQ(mqtt_connack_parse(5, sp, 2, &c, NULL), MQTT_PARSE_MALFORMED); /* props missing */
	CHECK_EQ(mqtt_connack_parse(5, trail, sizeof(trail), &c, &why), MQTT_PARSE_MALFORMED);
	CHECK(why && strcmp(why, "trailing bytes in CONNACK") == 0);
	CHECK_EQ(mqtt_connack_parse(4, trail, 3, &c, NULL), MQTT_PARSE_MALFORMED);
	CHECK_EQ(mqtt_connack_parse(4, sp, 1, &c, NULL), MQTT_PARSE_MALFORMED);

	c = (struct mqtt_connack){true, 0, {NULL, 0}};
	CHECK_EQ(mqtt_connack_size(4, &c), 4);
	CHECK_EQ(mqtt_connack_encode(4, &c, out, sizeof(out)), 4);
	CHECK_MEM(out, enc4, 4);
	c = (struct mqtt_connack){false, 0x87, {p5 + 3, 3}};
	CHECK_EQ(mqtt_connack_size(5, &c), sizeof(enc5));
	CHECK_EQ(mqtt_connack_encode(5, &c, out, sizeof(out)), sizeof(enc5));
	CHECK_MEM(out, enc5, sizeof(enc5));
	CHECK_EQ(mqtt_connack_encode(5, &c, out, sizeof(enc5) - 1), 0);
}

/* ---- DISCONNECT (§3.14) and AUTH (§3.15) ---- */

static void test_disconnect_auth(void)
{
	static const uint8_t r04[] = {0x04};					 /* with will message */
	static const uint8_t se[] = {0x00, 5, 0x11, 0, 0, 0, 0};		 /* session expiry 0 */
	static const uint8_t alias[] = {0x00, 3, 0x23, 0, 1};			 /* not in DISCONNECT */
	static const uint8_t auth[] = {0x18, 7, 0x15, 0, 4, 'S', 'C', 'R', 'M'}; /* continue, method */
	static const uint8_t auth_bad[] = {0x18, 2, 0x01, 1};			 /* payload format */
	struct mqtt_reason_props d;
	const char *why = NULL;
	uint8_t out[8];

	CHECK_EQ(mqtt_disconnect_parse(4, NULL, 0, &d, NULL), MQTT_PARSE_OK);
	CHECK_EQ(mqtt_disconnect_parse(4, r04, 1, &d, &why), MQTT_PARSE_MALFORMED);
	CHECK(why && strcmp(why, "remaining length not exact") == 0);
	CHECK_EQ(mqtt_disconnect_parse(5, NULL, 0, &d, NULL), MQTT_PARSE_OK);
	CHECK(d.reason == 0 && d.props.len == 0);
	CHECK_EQ(mqtt_disconnect_parse(5, r04, 1, &d, NULL), MQTT_PARSE_OK);
	CHECK_EQ(d.reason, 0x04);
	CHECK_EQ(mqtt_disconnect_parse(5, se, sizeof(se), &d, NULL), MQTT_PARSE_OK);
	CHECK_EQ(d.props.len, 5);
	CHECK_EQ(mqtt_disconnect_parse(5, alias, sizeof(alias), &d, NULL), MQTT_PARSE_MALFORMED);
	CHECK_EQ(mqtt_auth_parse(NULL, 0, &d, NULL), MQTT_PARSE_OK);
	CHECK_EQ(mqtt_auth_parse(auth, sizeof(auth), &d, NULL), MQTT_PARSE_OK);
	CHECK(d.reason == 0x18 && d.props.len == 7);
	CHECK_EQ(mqtt_auth_parse(auth_bad, sizeof(auth_bad), &d, NULL), MQTT_PARSE_MALFORMED);

	CHECK_EQ(mqtt_disconnect_encode(4, 0x8E, out, sizeof(out)), 2);
	CHECK(out[0] == 0xE0 && out[1] == 0x00);
	CHECK_EQ(mqtt_disconnect_encode(5, 0x8E, out, sizeof(out)), 3);
	CHECK(out[0] == 0xE0 && out[1] == 0x01 && out[2] == 0x8E);
	CHECK_EQ(mqtt_disconnect_parse(5, out + 2, 1, &d, NULL), MQTT_PARSE_OK);
	CHECK_EQ(d.reason, 0x8E);
	CHECK_EQ(mqtt_disconnect_encode(5, 0x8E, out, 2), 0);
}

int main(void)
{
	test_every_identifier();
	test_malformed();
	test_multiple();
	test_iterate_find_filter();
	test_set_u32();
	test_max_packet_add();
	test_ack_parse();
	test_ack_encode();
	test_connack();
	test_disconnect_auth();
	CHECK_DONE();
}
