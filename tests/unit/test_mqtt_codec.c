/* test_mqtt_codec.c - CONNECT, PUBLISH, SUBSCRIBE/UNSUBSCRIBE and SUBACK/UNSUBACK
 * (proxy/mqtt/mqtt_codec.c) at levels 3, 4 and 5: parse, byte-identical re-encode, re-encode with new
 * payloads and properties (exact sizes as the remaining length grows), the malformed forms, and
 * the _kept re-encoding of subscriptions. Also the reason-code table and the mapping from codec
 * errors to DISCONNECT reasons (proxy/mqtt/mqtt_reason.c), and the full check of every packet type a
 * server sends (proxy/mqtt/mqtt_check.c). */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "mqtt_alias.h"
#include "mqtt_codec.h"
#include "mqtt_reason.h"

#define BIG ((size_t)1 << 30)

struct pkt {
	const uint8_t *p;
	size_t len;
};

#define PKT(a) ((struct pkt){a, sizeof(a)})

static int buf_eq(struct mqtt_buf b, const char *s)
{
	return b.len == strlen(s) && (b.len == 0 || memcmp(b.p, s, b.len) == 0);
}

/* Frames a whole packet and returns its body through *body. */
static int frame_of(struct pkt k, uint8_t level, struct mqtt_frame *f)
{
	return mqtt_frame_parse(k.p, k.len, BIG, level, f, NULL) == MQTT_PARSE_OK && f->total == k.len;
}

/* ---- CONNECT (§3.1) ---- */

/* 3.1, everything: flags user|pass|will retain|will QoS 1|will|clean = 0xEE */
static const uint8_t connect3_full[] = {
	0x10, 0x21,				     /* CONNECT, remaining 33 */
	0,    6,    'M', 'Q', 'I', 's', 'd', 'p', 3, /* protocol name, level 3 */
	0xEE, 0,    30,				     /* flags, keep alive 30 */
	0,    3,    'c', '3', '1',		     /* client id "c31" */
	0,    3,    'w', '/', 't',		     /* will topic "w/t" */
	0,    2,    'b', 'y',			     /* will payload "by" */
	0,    1,    'u',			     /* user name "u" */
	0,    2,    'p', 'w',			     /* password "pw" */
};
/* 3.1, nothing optional */
static const uint8_t connect3_min[] = {
	0x10, 0x12, 0,	6, 'M', 'Q', 'I', 's', 'd', 'p', 3, /* remaining 18, "MQIsdp" 3 */
	0x02, 0,    60, 0, 4,	'd', 'e', 'v', '1',	    /* clean, 60 s, "dev1" */
};
static const uint8_t connect4_min[] = {
	0x10, 0x10, 0,	4, 'M', 'Q', 'T', 'T', 4,   /* remaining 16, "MQTT" 4 */
	0x02, 0,    60, 0, 4,	'd', 'e', 'v', '1', /* clean, 60 s, "dev1" */
};
/* 3.1.1 with a will: flags will QoS 2 | will | clean = 0x16 */
static const uint8_t connect4_will[] = {
	0x10, 0x15, 0,	 4,   'M', 'Q', 'T', 'T', 4, /* remaining 21 */
	0x16, 0,    60,	 0,   2,   'c', '4',	     /* flags, 60 s, "c4" */
	0,    3,    'w', '/', '4',		     /* will topic "w/4" */
	0,    0,				     /* empty will payload */
};
/* 3.1.1 with user name and password: flags 0xC2, empty client id */
static const uint8_t connect4_user[] = {
	0x10, 0x17, 0,	 4,   'M', 'Q', 'T', 'T', 4, /* remaining 23 */
	0xC2, 0,    0,	 0,   0,		     /* flags, keep alive 0, client id "" */
	0,    4,    'u', 's', 'e', 'r',		     /* user name */
	0,    3,    1,	 2,   3,		     /* password (binary) */
};
static const uint8_t connect5_min[] = {
	0x10, 0x0E, 0,	 4, 'M', 'Q', 'T', 'T', 5, /* remaining 14, "MQTT" 5 */
	0x02, 0,    60,	 0,			   /* clean, 60 s, property length 0 */
	0,    1,    'x',			   /* client id "x" */
};
/* MQTT 5, everything: flags 0xEE */
static const uint8_t connect5_full[] = {
	0x10, 0x30, 0,	 4,   'M', 'Q', 'T',  'T', 5,  /* remaining 48 */
	0xEE, 0,    60,				       /* flags, keep alive */
	8,    0x11, 0,	 0,   0,   60,	0x21, 0,   10, /* props: session expiry 60, receive max 10 */
	0,    2,    'c', '5',			       /* client id "c5" */
	7,    0x18, 0,	 0,   0,   5,	0x01, 1,       /* will props: will delay 5, payload format 1 */
	0,    3,    'w', '/', '5',		       /* will topic */
	0,    3,    'b', 'y', 'e',		       /* will payload */
	0,    1,    'u', 0,   2,   'p', 'w',	       /* user name, password */
};
/* MQTT 5 allows a password without a user name (§3.1.2.9): flags 0x42 */
static const uint8_t connect5_pass[] = {
	0x10, 0x12, 0,	 4, 'M', 'Q', 'T', 'T', 5, 0x42, 0, 60, 0, /* remaining 18, no props */
	0,    1,    'x', 0, 2,	 'p', 'w',			   /* client id, password */
};

static void check_connect_roundtrip(struct pkt k, uint8_t level, struct mqtt_connect *c)
{
	struct mqtt_frame f;
	uint8_t lv = 0, out[128];

	CHECK(frame_of(k, MQTT_LEVEL_UNKNOWN, &f));
	CHECK_EQ(mqtt_connect_parse(k.p + f.hdr_len, f.remaining, c, &lv, NULL), MQTT_PARSE_OK);
	CHECK_EQ(lv, level);
	CHECK_EQ(c->level, level);
	CHECK_EQ(mqtt_connect_size(c), k.len);
	CHECK_EQ(mqtt_connect_encode(c, out, sizeof(out)), k.len);
	CHECK_MEM(out, k.p, k.len);
	CHECK_EQ(mqtt_connect_encode(c, out, k.len - 1), 0);
}

static void test_connect_parse(void)
{
	struct mqtt_connect c;

	check_connect_roundtrip(PKT(connect3_full), 3, &c);
	CHECK(c.flags == 0xEE && c.keepalive == 30 && buf_eq(c.client_id, "c31"));
	CHECK(buf_eq(c.will_topic, "w/t") && buf_eq(c.will_payload, "by"));
	CHECK(buf_eq(c.username, "u") && buf_eq(c.password, "pw") && c.props.len == 0);
	check_connect_roundtrip(PKT(connect3_min), 3, &c);
	CHECK(buf_eq(c.client_id, "dev1") && c.will_topic.len == 0 && c.username.len == 0);
	check_connect_roundtrip(PKT(connect4_min), 4, &c);
	CHECK(c.flags == 0x02 && c.keepalive == 60);
	check_connect_roundtrip(PKT(connect4_will), 4, &c);
	CHECK(MQTT_CONNECT_WILL_QOS(c.flags) == 2 && buf_eq(c.will_topic, "w/4") && c.will_payload.len == 0);
	check_connect_roundtrip(PKT(connect4_user), 4, &c);
	CHECK(c.client_id.len == 0 && buf_eq(c.username, "user") && buf_eq(c.password, "\x01\x02\x03"));
	check_connect_roundtrip(PKT(connect5_min), 5, &c);
	CHECK(c.props.len == 0 && buf_eq(c.client_id, "x"));
	check_connect_roundtrip(PKT(connect5_full), 5, &c);
	CHECK(c.props.len == 8 && c.props.p == connect5_full + 13);
	CHECK(c.will_props.len == 7 && c.will_props.p == connect5_full + 26);
	CHECK(buf_eq(c.will_topic, "w/5") && buf_eq(c.will_payload, "bye") && buf_eq(c.password, "pw"));
	check_connect_roundtrip(PKT(connect5_pass), 5, &c);
	CHECK(c.username.len == 0 && buf_eq(c.password, "pw"));
}

/* The sealing code replaces the will payload and properties: sizes follow, the result parses. */
static void check_connect_new_will(struct pkt k, uint8_t level)
{
	static const uint8_t will_props[] = {0x02, 0, 0, 0x0E, 0x10}; /* message expiry 3600 */
	uint8_t payload[200], out[512];
	struct mqtt_connect c, back;
	struct mqtt_frame f;
	size_t rem, size;

	memset(payload, 'Z', sizeof(payload));
	CHECK(frame_of(k, 0, &f));
	CHECK_EQ(mqtt_connect_parse(k.p + f.hdr_len, f.remaining, &c, NULL, NULL), MQTT_PARSE_OK);
	rem = f.remaining - c.will_payload.len + sizeof(payload);
	if (level == 5)
		rem = rem - c.will_props.len + sizeof(will_props);
	c.will_payload = (struct mqtt_buf){payload, sizeof(payload)};
	if (level == 5)
		c.will_props = (struct mqtt_buf){will_props, sizeof(will_props)};
	size = mqtt_connect_size(&c);
	CHECK_EQ(size, 1 + 2 + rem); /* remaining now > 127: a 2-byte varint */
	CHECK_EQ(mqtt_connect_encode(&c, out, sizeof(out)), size);
	CHECK_EQ(mqtt_frame_parse(out, size, BIG, 0, &f, NULL), MQTT_PARSE_OK);
	CHECK(f.hdr_len == 3 && f.remaining == rem && f.total == size);
	CHECK_EQ(mqtt_connect_parse(out + 3, rem, &back, NULL, NULL), MQTT_PARSE_OK);
	CHECK(back.will_payload.len == sizeof(payload) && back.will_payload.p[199] == 'Z');
	CHECK(level != 5 || (back.will_props.len == 5 && memcmp(back.will_props.p, will_props, 5) == 0));
	CHECK(back.flags == c.flags && back.username.len == c.username.len);
}

static void test_connect_new_will(void)
{
	check_connect_new_will(PKT(connect3_full), 3);
	check_connect_new_will(PKT(connect4_will), 4);
	check_connect_new_will(PKT(connect5_full), 5);
}

/* Patches one byte of a valid CONNECT body and expects MALFORMED with why. */
static void connect_bad(const uint8_t *pkt, size_t len, size_t at, uint8_t v, const char *want,
			uint8_t want_level)
{
	uint8_t b[64], lv = 0xFF;
	struct mqtt_connect c;
	const char *why = NULL;

	memcpy(b, pkt, len);
	b[at] = v;
	CHECK_EQ(mqtt_connect_parse(b + 2, len - 2, &c, &lv, &why), MQTT_PARSE_MALFORMED);
	CHECK(why && strcmp(why, want) == 0);
	if (why && strcmp(why, want) != 0)
		fprintf(stderr, "  why \"%s\", expected \"%s\"\n", why, want);
	CHECK_EQ(lv, want_level);
}

static void test_connect_malformed(void)
{
	const uint8_t *m4 = connect4_min, *f5 = connect5_full, *f3 = connect3_full;
	size_t n4 = sizeof(connect4_min), n5 = sizeof(connect5_full), n3 = sizeof(connect3_full), k;
	struct mqtt_connect c;

	/* name/level pairs: level_out still tells the caller which CONNACK to send */
	connect_bad(m4, n4, 8, 3, "unsupported protocol name or level", 3);   /* "MQTT" 3 */
	connect_bad(m4, n4, 8, 6, "unsupported protocol name or level", 6);   /* "MQTT" 6 */
	connect_bad(m4, n4, 7, 'X', "unsupported protocol name or level", 4); /* "MQTX" 4 */
	connect_bad(f3, n3, 10, 4, "unsupported protocol name or level", 4);  /* "MQIsdp" 4 */
	connect_bad(m4, n4, 9, 0x03, "CONNECT reserved flag set", 4);
	connect_bad(m4, n4, 9, 0x1E, "will QoS 3", 4);
	connect_bad(m4, n4, 9, 0x22, "will flags without will", 4); /* will retain */
	connect_bad(m4, n4, 9, 0x0A, "will flags without will", 4); /* will QoS 1 */
	connect_bad(m4, n4, 9, 0x42, "password without username", 4);
	connect_bad(f3, n3, 11, 0x6E, "password without username", 3);
	connect_bad(m4, n4, 14, 0xFF, "client id not UTF-8", 4);
	connect_bad(m4, n4, 14, 0x00, "client id not UTF-8", 4); /* U+0000 */
	connect_bad(f3, n3, 21, '#', "will topic invalid", 3);
	connect_bad(f3, n3, 30, 0xC0, "username not UTF-8", 3);
	connect_bad(f5, n5, 13, 0x23, "property not allowed in packet", 5); /* topic alias in CONNECT */
	connect_bad(f5, n5, 26, 0x11, "property not allowed in packet", 5); /* session expiry in will */
	connect_bad(f5, n5, 12, 0x80, "properties truncated", 5);	    /* length 0x80 0x11 */
	connect_bad(f5, n5, 23, 0xFF, "client id not UTF-8", 5);
	/* every proper prefix of a valid body is MALFORMED, never OK */
	for (k = 0; k + 2 < n5; k++)
		CHECK_EQ(mqtt_connect_parse(f5 + 2, k, &c, NULL, NULL), MQTT_PARSE_MALFORMED);
	for (k = 0; k + 2 < n3; k++)
		CHECK_EQ(mqtt_connect_parse(f3 + 2, k, &c, NULL, NULL), MQTT_PARSE_MALFORMED);
	/* one byte too many */
	{
		uint8_t b[sizeof(connect4_min) + 1];
		const char *why = NULL;

		memcpy(b, m4, n4);
		b[n4] = 0;
		CHECK_EQ(mqtt_connect_parse(b + 2, n4 - 1, &c, NULL, &why), MQTT_PARSE_MALFORMED);
		CHECK(why && strcmp(why, "trailing bytes in CONNECT") == 0);
	}
	c = (struct mqtt_connect){.level = 6};
	CHECK_EQ(mqtt_connect_size(&c), 0);
	c = (struct mqtt_connect){.level = 4, .flags = 0x40}; /* password without user name */
	CHECK_EQ(mqtt_connect_size(&c), 0);
	c.level = 5;
	CHECK_EQ(mqtt_connect_size(&c), 17); /* fine at 5: 2 + 15 */
	c.flags = 0x03;
	CHECK_EQ(mqtt_connect_size(&c), 0);
}

/* ---- PUBLISH (§3.3) ---- */

static const uint8_t pub4_q0[] = {0x30, 0x07, 0, 3, 'a', '/', 'b', 'h', 'i'};	    /* "a/b" "hi" */
static const uint8_t pub4_q1[] = {0x32, 0x09, 0, 3, 'a', '/', 'b', 0, 1, 'h', 'i'}; /* id 1 */
static const uint8_t pub4_q2[] = {0x3D, 0x09, 0, 3, 'a', '/', 'b', 0, 2, 'h', 'i'}; /* DUP QoS 2 RETAIN */
static const uint8_t pub5_q0[] = {0x30, 0x0A, 0, 3, 'a', '/', 'b', 2, 0x01, 1, 'h', 'i'}; /* format 1 */
/* QoS 1, empty topic, id 5, props: topic alias 1 */
static const uint8_t pub5_q1[] = {0x32, 0x0A, 0, 0, 0, 5, 3, 0x23, 0, 1, 'h', 'i'};
/* QoS 2 RETAIN, "a/b", id 6, props (10): topic alias 2, user property "k"="v" */
static const uint8_t pub5_q2[] = {0x35, 0x14, 0,    3, 'a', '/', 'b', 0, 6,   10,  0x23,
				  0,	2,    0x26, 0, 1,   'k', 0,   1, 'v', 'h', 'i'};

struct pub_case {
	struct pkt k;
	uint8_t level, qos;
	uint16_t id;
	const char *topic;
	size_t props_len;
};

static void check_publish_payload(uint8_t level, const struct mqtt_publish *p, size_t head, size_t n)
{
	uint8_t *payload = malloc(n + 1), *a = NULL, *b = NULL;
	size_t rem = head + n, hdr = rem < 128 ? 2 : rem < 16384 ? 3 : rem < 2097152 ? 4 : 5, size;
	struct mqtt_publish q = *p, back;
	struct mqtt_frame f;

	CHECK(payload != NULL);
	if (!payload)
		return;
	memset(payload, 0xA5, n);
	q.payload = (struct mqtt_buf){payload, n};
	size = mqtt_publish_size(level, &q, n);
	CHECK_EQ(size, hdr + rem);
	a = malloc(size);
	b = malloc(size);
	if (a && b) {
		CHECK_EQ(mqtt_publish_encode(level, &q, a, size), size);
		CHECK_EQ(mqtt_publish_encode(level, &q, a, size - 1), 0);
		/* encode_head + payload is the same packet, byte for byte */
		CHECK_EQ(mqtt_publish_encode_head(level, &q, n, b, size - n), size - n);
		memcpy(b + size - n, payload, n);
		CHECK_MEM(a, b, size);
		CHECK_EQ(mqtt_frame_parse(a, size, BIG, level, &f, NULL), MQTT_PARSE_OK);
		CHECK(f.hdr_len == hdr && f.remaining == rem && f.total == size);
		CHECK_EQ(mqtt_publish_parse(level, f.flags, a + hdr, rem, &back, NULL), MQTT_PARSE_OK);
		CHECK(back.qos == p->qos && back.dup == p->dup && back.retain == p->retain);
		CHECK(back.packet_id == p->packet_id && back.topic.len == p->topic.len);
		CHECK(back.props.len == p->props.len && back.payload.len == n);
		CHECK(n == 0 || (back.payload.p[0] == 0xA5 && back.payload.p[n - 1] == 0xA5));
	}
	free(a);
	free(b);
	free(payload);
}

/* mqtt_publish_head_len: from any prefix it asks for more or gives the variable header's length
 * (the body less the 2-byte payload "hi"), and parsing just that many bytes gives the same header
 * with an empty payload. */
static void check_publish_head(const struct pub_case *pc, const struct mqtt_frame *f, const struct mqtt_publish *full)
{
	const uint8_t *body = pc->k.p + 2;
	size_t want = f->remaining - 2, avail, got;
	struct mqtt_publish p;

	for (avail = 0; avail <= f->remaining; avail++) {
		got = mqtt_publish_head_len(pc->level, f->flags, body, avail);
		CHECK(got > avail ? got <= want : got == want);
	}
	CHECK_EQ(mqtt_publish_parse(pc->level, f->flags, body, want, &p, NULL), MQTT_PARSE_OK);
	CHECK(buf_eq(p.topic, pc->topic) && p.packet_id == full->packet_id && p.props.len == full->props.len);
	CHECK_EQ(p.payload.len, 0);
}

static void check_publish(const struct pub_case *pc)
{
	static const size_t sizes[] = {0, 1, 127, 128, 16383, 16384, 2u << 20};
	struct mqtt_publish p;
	struct mqtt_frame f;
	uint8_t out[64];
	size_t i;

	CHECK(frame_of(pc->k, pc->level, &f));
	CHECK_EQ(mqtt_publish_parse(pc->level, f.flags, pc->k.p + 2, f.remaining, &p, NULL), MQTT_PARSE_OK);
	CHECK(p.qos == pc->qos && p.packet_id == pc->id && buf_eq(p.topic, pc->topic));
	CHECK(p.props.len == pc->props_len && buf_eq(p.payload, "hi"));
	CHECK_EQ(p.dup, (f.flags & 8) != 0);
	CHECK_EQ(p.retain, (f.flags & 1) != 0);
	CHECK_EQ(mqtt_publish_size(pc->level, &p, p.payload.len), pc->k.len);
	CHECK_EQ(mqtt_publish_encode(pc->level, &p, out, sizeof(out)), pc->k.len);
	CHECK_MEM(out, pc->k.p, pc->k.len);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		check_publish_payload(pc->level, &p, f.remaining - 2, sizes[i]);
	check_publish_head(pc, &f, &p);
}

static void test_publish(void)
{
	const struct pub_case cases[] = {
		{PKT(pub4_q0), 4, 0, 0, "a/b", 0}, {PKT(pub4_q1), 4, 1, 1, "a/b", 0},
		{PKT(pub4_q2), 4, 2, 2, "a/b", 0}, {PKT(pub5_q0), 5, 0, 0, "a/b", 2},
		{PKT(pub5_q1), 5, 1, 5, "", 3},	   {PKT(pub5_q2), 5, 2, 6, "a/b", 10},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_publish(&cases[i]);
}

/* The sealing code swaps properties: message expiry and content type instead of the originals. */
static void test_publish_new_props(void)
{
	uint8_t props[5 + 5] = {0}, out[64];
	struct mqtt_publish p, back;
	struct mqtt_frame f;
	size_t size;

	CHECK_EQ(mqtt_publish_parse(5, 0x05, pub5_q2 + 2, sizeof(pub5_q2) - 2, &p, NULL), MQTT_PARSE_OK);
	mqtt_prop_write_u32(MQTT_PROP_MESSAGE_EXPIRY, 600, props);
	memcpy(props + 5, (const uint8_t[]){0x03, 0, 2, 'c', 't'}, 5); /* content type "ct" */
	p.props = (struct mqtt_buf){props, sizeof(props)};
	size = mqtt_publish_size(5, &p, p.payload.len);
	CHECK_EQ(size, sizeof(pub5_q2)); /* 10 bytes of properties for 10 */
	CHECK_EQ(mqtt_publish_encode(5, &p, out, sizeof(out)), size);
	CHECK_EQ(mqtt_frame_parse(out, size, BIG, 5, &f, NULL), MQTT_PARSE_OK);
	CHECK_EQ(mqtt_publish_parse(5, f.flags, out + 2, f.remaining, &back, NULL), MQTT_PARSE_OK);
	CHECK(back.props.len == 10 && memcmp(back.props.p, props, 10) == 0 && buf_eq(back.payload, "hi"));
	p.props = (struct mqtt_buf){NULL, 0}; /* no properties: one byte of length left */
	CHECK_EQ(mqtt_publish_size(5, &p, 2), sizeof(pub5_q2) - 10);
	CHECK_EQ(mqtt_publish_size(4, &p, 2), sizeof(pub5_q2) - 11); /* level 4: no length either */
}

static void publish_bad(uint8_t level, uint8_t flags, const uint8_t *body, size_t len, const char *want)
{
	struct mqtt_publish p;
	const char *why = NULL;

	CHECK_EQ(mqtt_publish_parse(level, flags, body, len, &p, &why), MQTT_PARSE_MALFORMED);
	CHECK(why && strcmp(why, want) == 0);
	if (why && strcmp(why, want) != 0)
		fprintf(stderr, "  why \"%s\", expected \"%s\"\n", why, want);
}

static void test_publish_malformed(void)
{
	static const uint8_t empty[] = {0, 0, 'h', 'i'};     /* empty topic, QoS 0 */
	static const uint8_t empty5[] = {0, 0, 0, 'h', 'i'}; /* + props len 0 */
	static const uint8_t plus[] = {0, 3, 'a', '/', '+'}; /* wildcard */
	static const uint8_t hash[] = {0, 1, '#'};
	static const uint8_t badutf[] = {0, 2, 0xE2, 0x82};		   /* cut 3-byte sequence */
	static const uint8_t id0[] = {0, 1, 't', 0, 0};			   /* QoS 1, packet id 0 */
	static const uint8_t cut[] = {0, 9, 't'};			   /* topic length 9 */
	static const uint8_t noid[] = {0, 1, 't', 0};			   /* QoS 1, half an id */
	static const uint8_t session[] = {0, 1, 't', 5, 0x11, 0, 0, 0, 1}; /* session expiry */
	static const uint8_t overlong[] = {0, 1, 't', 0x80, 0x00};	   /* props length 0 in 2 */
	struct mqtt_publish p = {.qos = 3, .topic = {(const uint8_t *)"t", 1}};
	uint8_t out[32];

	publish_bad(4, 0x06, pub4_q0 + 2, 7, "PUBLISH QoS 3");
	publish_bad(4, 0x00, empty, sizeof(empty), "empty topic");
	publish_bad(5, 0x00, empty5, sizeof(empty5), "empty topic without topic alias");
	publish_bad(4, 0x00, plus, sizeof(plus), "topic name invalid");
	publish_bad(5, 0x00, hash, sizeof(hash), "property length truncated");
	publish_bad(4, 0x00, hash, sizeof(hash), "topic name invalid");
	publish_bad(4, 0x00, badutf, sizeof(badutf), "topic not UTF-8");
	publish_bad(4, 0x02, id0, sizeof(id0), "packet id 0");
	publish_bad(4, 0x00, cut, sizeof(cut), "PUBLISH truncated");
	publish_bad(4, 0x04, noid, sizeof(noid), "PUBLISH truncated");
	publish_bad(5, 0x00, session, sizeof(session), "property not allowed in packet");
	publish_bad(5, 0x00, overlong, sizeof(overlong), "property length invalid");
	/* encoders refuse what would not parse */
	CHECK_EQ(mqtt_publish_size(4, &p, 0), 0); /* QoS 3 */
	p.qos = 1;
	CHECK_EQ(mqtt_publish_encode(4, &p, out, sizeof(out)), 0); /* QoS 1, packet id 0 */
	p.packet_id = 9;
	CHECK_EQ(mqtt_publish_encode(4, &p, out, sizeof(out)), 7);
	CHECK_EQ(mqtt_publish_size(4, &p, MQTT_MAX_REMAINING - 5), MQTT_MAX_REMAINING + 5);
	CHECK_EQ(mqtt_publish_size(4, &p, MQTT_MAX_REMAINING - 4), 0); /* over the limit */
	CHECK_EQ(mqtt_publish_encode_head(4, &p, 100, out, 6), 0);     /* head needs 7 */
	p.topic.len = 0;
	CHECK_EQ(mqtt_publish_size(4, &p, 0), 0); /* empty topic at 4 */
	CHECK_EQ(mqtt_publish_size(5, &p, 0), 7); /* fine at 5 */
}

/* ---- SUBSCRIBE / UNSUBSCRIBE (§3.8, §3.10) ---- */

static const uint8_t sub4[] = {
	0x82, 0x15, 0,	 10,				  /* SUBSCRIBE, remaining 21, id 10 */
	0,    3,    'a', '/',  '+', 0x01,		  /* "a/+" QoS 1 */
	0,    1,    '#', 0x00,				  /* "#" QoS 0 */
	0,    6,    '$', 'S',  'Y', 'S',  '/', '#', 0x02, /* "$SYS/#" QoS 2 */
};
static const uint8_t sub4_kept[] = {
	/* entries 0 and 2 of sub4 */
	0x82, 0x11, 0, 10, 0, 3, 'a', '/', '+', 0x01, 0, 6, '$', 'S', 'Y', 'S', '/', '#', 0x02,
};
static const uint8_t sub5[] = {
	0x82, 0x1C, 0,	 11,   2,   0x0B, 7, /* remaining 28, id 11, props: sub id 7 */
	0,    3,    'a', '/',  '+', 0x01,    /* QoS 1 */
	0,    10,   '$', 's',  'h', 'a',  'r', 'e', '/', 'g', '/', 'x', 0x21, /* retain handling 2, QoS 1 */
	0,    1,    '#', 0x2E,						      /* RH 2, RAP, no local, QoS 2 */
};
static const uint8_t sub5_kept[] = {
	/* entry 1 of sub5 */
	0x82, 0x12, 0, 11, 2, 0x0B, 7, 0, 10, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 'x', 0x21,
};
static const uint8_t unsub4[] = {0xA2, 0x0A, 0, 12, 0, 3, 'a', '/', '+', 0, 1, '#'}; /* id 12 */
static const uint8_t unsub5[] = {
	0xA2, 0x14, 0,	 13,  0, /* id 13, props length 0 */
	0,    3,    'a', '/', '+', 0, 10, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', '/', 'x',
};

static void check_sub(struct pkt k, uint8_t level, uint8_t type, size_t count, const char *first,
		      const uint8_t *opts)
{
	struct mqtt_subscribe s;
	struct mqtt_frame f;
	struct mqtt_buf filter;
	bool keep[4] = {true, true, true, true}, none[4] = {false};
	uint8_t opt, out[64];
	size_t pos = 0, n = 0;

	CHECK(frame_of(k, level, &f));
	CHECK_EQ(mqtt_subscribe_parse(level, type, k.p + 2, f.remaining, &s, NULL), MQTT_PARSE_OK);
	CHECK_EQ(s.count, count);
	while (mqtt_sub_next(&s, type, &pos, &filter, &opt)) {
		CHECK(n > 0 || buf_eq(filter, first));
		CHECK_EQ(opt, type == MQTT_SUBSCRIBE ? opts[n] : 0);
		n++;
	}
	CHECK_EQ(n, count);
	CHECK_EQ(mqtt_subscribe_size_kept(level, type, &s, keep), k.len);
	CHECK_EQ(mqtt_subscribe_encode_kept(level, type, &s, keep, out, sizeof(out)), k.len);
	CHECK_MEM(out, k.p, k.len);
	CHECK_EQ(mqtt_subscribe_size_kept(level, type, &s, none), 0); /* at least one must stay */
	CHECK_EQ(mqtt_subscribe_encode_kept(level, type, &s, none, out, sizeof(out)), 0);
}

static void check_kept(struct pkt k, uint8_t level, const bool *keep, struct pkt want)
{
	struct mqtt_subscribe s;
	uint8_t out[64];

	CHECK_EQ(mqtt_subscribe_parse(level, MQTT_SUBSCRIBE, k.p + 2, k.len - 2, &s, NULL), MQTT_PARSE_OK);
	CHECK_EQ(mqtt_subscribe_size_kept(level, MQTT_SUBSCRIBE, &s, keep), want.len);
	CHECK_EQ(mqtt_subscribe_encode_kept(level, MQTT_SUBSCRIBE, &s, keep, out, sizeof(out)), want.len);
	CHECK_MEM(out, want.p, want.len);
	CHECK_EQ(mqtt_subscribe_encode_kept(level, MQTT_SUBSCRIBE, &s, keep, out, want.len - 1), 0);
}

static void test_subscribe(void)
{
	static const uint8_t o4[] = {0x01, 0x00, 0x02}, o5[] = {0x01, 0x21, 0x2E};
	static const bool k4[] = {true, false, true}, k5[] = {false, true, false};
	struct mqtt_subscribe s;
	struct mqtt_frame f;

	check_sub(PKT(sub4), 4, MQTT_SUBSCRIBE, 3, "a/+", o4);
	check_sub(PKT(sub4), 3, MQTT_SUBSCRIBE, 3, "a/+", o4);
	check_sub(PKT(sub5), 5, MQTT_SUBSCRIBE, 3, "a/+", o5);
	check_sub(PKT(unsub4), 4, MQTT_UNSUBSCRIBE, 2, "a/+", NULL);
	check_sub(PKT(unsub5), 5, MQTT_UNSUBSCRIBE, 2, "a/+", NULL);
	check_kept(PKT(sub4), 4, k4, PKT(sub4_kept));
	check_kept(PKT(sub5), 5, k5, PKT(sub5_kept));
	CHECK(frame_of(PKT(sub5), 5, &f));
	CHECK_EQ(mqtt_subscribe_parse(5, MQTT_SUBSCRIBE, sub5 + 2, f.remaining, &s, NULL), MQTT_PARSE_OK);
	CHECK(s.packet_id == 11 && s.props.len == 2 && s.props.p == sub5 + 5);
}

static void sub_bad(uint8_t level, uint8_t type, const uint8_t *body, size_t len, const char *want)
{
	struct mqtt_subscribe s;
	const char *why = NULL;

	CHECK_EQ(mqtt_subscribe_parse(level, type, body, len, &s, &why), MQTT_PARSE_MALFORMED);
	CHECK(why && strcmp(why, want) == 0);
	if (why && strcmp(why, want) != 0)
		fprintf(stderr, "  why \"%s\", expected \"%s\"\n", why, want);
}

static void test_subscribe_malformed(void)
{
	static const uint8_t none4[] = {0, 10};	   /* id only */
	static const uint8_t none5[] = {0, 10, 0}; /* id, props len 0 */
	static const uint8_t id0[] = {0, 0, 0, 1, 'a', 0};
	static const uint8_t bad_opt4[] = {0, 1, 0, 1, 'a', 0x04}; /* reserved bit 2 */
	static const uint8_t qos3[] = {0, 1, 0, 1, 'a', 0x03};
	static const uint8_t resv5[] = {0, 1, 0, 0, 1, 'a', 0x40}; /* bit 6 */
	static const uint8_t rh3[] = {0, 1, 0, 0, 1, 'a', 0x30};   /* retain handling 3 */
	static const uint8_t qos3_5[] = {0, 1, 0, 0, 1, 'a', 0x03};
	static const uint8_t nl_share[] = {0,	1,   0,	  0,   10,  '$', 's', 'h',
					   'a', 'r', 'e', '/', 'g', '/', 'x', 0x04};
	static const uint8_t bad_filter[] = {0, 1, 0, 3, 'a', 'b', '#', 0x00}; /* '#' inside a level */
	static const uint8_t empty_filter[] = {0, 1, 0, 0, 0x00};
	static const uint8_t share_nogrp[] = {0, 1, 0, 0, 9, '$', 's', 'h', 'a', 'r', 'e', '/', '/', 'x', 0};
	static const uint8_t share_noflt[] = {0, 1, 0, 0, 8, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', 0};
	static const uint8_t no_opt[] = {0, 1, 0, 1, 'a'};			    /* options byte missing */
	static const uint8_t sub_id2[] = {0, 1, 4, 0x0B, 1, 0x0B, 2, 0, 1, 'a', 0}; /* sub id twice */
	struct mqtt_subscribe s;

	sub_bad(4, MQTT_SUBSCRIBE, none4, sizeof(none4), "no topic filters");
	sub_bad(5, MQTT_UNSUBSCRIBE, none5, sizeof(none5), "no topic filters");
	sub_bad(4, MQTT_UNSUBSCRIBE, id0, 5, "packet id 0");
	sub_bad(4, MQTT_SUBSCRIBE, id0, 1, "packet id truncated");
	sub_bad(4, MQTT_SUBSCRIBE, bad_opt4, sizeof(bad_opt4), "subscription options invalid");
	sub_bad(3, MQTT_SUBSCRIBE, qos3, sizeof(qos3), "subscription options invalid");
	sub_bad(5, MQTT_SUBSCRIBE, resv5, sizeof(resv5), "subscription options invalid");
	sub_bad(5, MQTT_SUBSCRIBE, rh3, sizeof(rh3), "subscription options invalid");
	sub_bad(5, MQTT_SUBSCRIBE, qos3_5, sizeof(qos3_5), "subscription options invalid");
	sub_bad(5, MQTT_SUBSCRIBE, nl_share, sizeof(nl_share), "no local on shared subscription");
	sub_bad(4, MQTT_SUBSCRIBE, bad_filter, sizeof(bad_filter), "topic filter invalid");
	sub_bad(4, MQTT_SUBSCRIBE, empty_filter, sizeof(empty_filter), "topic filter invalid");
	sub_bad(5, MQTT_SUBSCRIBE, share_nogrp, sizeof(share_nogrp), "shared subscription invalid");
	sub_bad(5, MQTT_UNSUBSCRIBE, share_noflt, sizeof(share_noflt) - 1, "shared subscription invalid");
	sub_bad(4, MQTT_SUBSCRIBE, no_opt, sizeof(no_opt), "topic filter truncated");
	sub_bad(5, MQTT_SUBSCRIBE, sub_id2, sizeof(sub_id2), "duplicate property");
	sub_bad(4, MQTT_PUBLISH, none4, sizeof(none4), "not a subscribe type");
	/* before MQTT 5 "$share/g" is an ordinary filter, and no local is just a reserved bit */
	CHECK_EQ(
		mqtt_subscribe_parse(4, MQTT_SUBSCRIBE,
				     (const uint8_t[]){0, 1, 0, 8, '$', 's', 'h', 'a', 'r', 'e', '/', 'g', 0},
				     13, &s, NULL),
		MQTT_PARSE_OK);
}

/* ---- SUBACK / UNSUBACK (§3.9, §3.11) ---- */

static void check_suback(uint8_t level, uint8_t type, const struct mqtt_suback *in, struct pkt want)
{
	struct mqtt_suback back;
	uint8_t out[32];

	CHECK_EQ(mqtt_suback_size(level, type, in), want.len);
	CHECK_EQ(mqtt_suback_encode(level, type, in, out, sizeof(out)), want.len);
	CHECK_MEM(out, want.p, want.len);
	CHECK_EQ(mqtt_suback_encode(level, type, in, out, want.len - 1), 0);
	CHECK_EQ(mqtt_suback_parse(level, type, out + 2, want.len - 2, &back, NULL), MQTT_PARSE_OK);
	CHECK(back.packet_id == in->packet_id && back.props.len == in->props.len);
	CHECK(back.codes.len == (type == MQTT_UNSUBACK && level != 5 ? 0 : in->codes.len));
}

static void test_suback(void)
{
	static const uint8_t codes4[] = {0x01, 0x80, 0x02}, codes5[] = {0x00, 0x87}, rs[] = {0x1F, 0, 1, 'x'};
	static const uint8_t suback4[] = {0x90, 0x05, 0, 10, 0x01, 0x80, 0x02}; /* id 10, 3 codes */
	static const uint8_t suback5[] = {0x90, 0x09, 0, 11, 4, 0x1F, 0, 1, 'x', 0x00, 0x87};
	static const uint8_t unsuback4[] = {0xB0, 0x02, 0, 12};		       /* id only */
	static const uint8_t unsuback5[] = {0xB0, 0x05, 0, 13, 0, 0x00, 0x87}; /* props len 0 */
	struct mqtt_suback s = {10, {NULL, 0}, {codes4, 3}}, out;
	const char *why = NULL;

	check_suback(4, MQTT_SUBACK, &s, PKT(suback4));
	check_suback(3, MQTT_SUBACK, &s, PKT(suback4));
	check_suback(4, MQTT_UNSUBACK, &(struct mqtt_suback){12, {NULL, 0}, {codes4, 3}}, PKT(unsuback4));
	s = (struct mqtt_suback){11, {rs, sizeof(rs)}, {codes5, 2}};
	check_suback(5, MQTT_SUBACK, &s, PKT(suback5));
	check_suback(5, MQTT_UNSUBACK, &(struct mqtt_suback){13, {NULL, 0}, {codes5, 2}}, PKT(unsuback5));
	/* malformed */
	CHECK_EQ(mqtt_suback_parse(4, MQTT_SUBACK, (const uint8_t[]){0, 1, 0x03}, 3, &out, &why),
		 MQTT_PARSE_MALFORMED);
	CHECK(why && strcmp(why, "SUBACK return code invalid") == 0);
	CHECK_EQ(mqtt_suback_parse(5, MQTT_SUBACK, (const uint8_t[]){0, 1, 0, 0x97}, 4, &out, NULL),
		 MQTT_PARSE_OK); /* quota exceeded exists at 5 */
	CHECK_EQ(mqtt_suback_parse(4, MQTT_SUBACK, suback4 + 2, 2, &out, &why), MQTT_PARSE_MALFORMED);
	CHECK(why && strcmp(why, "no reason codes") == 0);
	CHECK_EQ(mqtt_suback_parse(5, MQTT_UNSUBACK, unsuback5 + 2, 3, &out, NULL), MQTT_PARSE_MALFORMED);
	CHECK_EQ(mqtt_suback_parse(4, MQTT_UNSUBACK, (const uint8_t[]){0, 1, 0}, 3, &out, &why),
		 MQTT_PARSE_MALFORMED);
	CHECK(why && strcmp(why, "remaining length not exact") == 0);
	CHECK_EQ(mqtt_suback_parse(4, MQTT_SUBACK, (const uint8_t[]){0, 0, 0}, 3, &out, NULL),
		 MQTT_PARSE_MALFORMED); /* packet id 0 */
	CHECK_EQ(mqtt_suback_parse(5, MQTT_SUBACK, (const uint8_t[]){0, 1, 3, 0x23, 0, 1, 0}, 7, &out, NULL),
		 MQTT_PARSE_MALFORMED); /* topic alias in SUBACK */
	CHECK_EQ(mqtt_suback_parse(4, MQTT_PUBACK, suback4 + 2, 3, &out, NULL), MQTT_PARSE_MALFORMED);
	s.codes.len = 0;
	CHECK_EQ(mqtt_suback_size(5, MQTT_SUBACK, &s), 0);
}

/* ---- reason codes (mqtt_reason.c) ---- */

/* The DISCONNECT reason for the failure of parsing a whole packet k (frame, then PUBLISH or
 * SUBSCRIBE body) at level 5, with a frame limit of max bytes. */
static uint8_t reason_for(struct pkt k, size_t max)
{
	struct mqtt_frame f;
	struct mqtt_publish p;
	struct mqtt_subscribe s;
	const char *why = NULL;
	enum mqtt_parse rc = mqtt_frame_parse(k.p, k.len, max, 5, &f, &why);

	if (rc == MQTT_PARSE_OK && f.type == MQTT_PUBLISH)
		rc = mqtt_publish_parse(5, f.flags, k.p + f.hdr_len, f.remaining, &p, &why);
	else if (rc == MQTT_PARSE_OK && f.type == MQTT_SUBSCRIBE)
		rc = mqtt_subscribe_parse(5, MQTT_SUBSCRIBE, k.p + f.hdr_len, f.remaining, &s, &why);
	CHECK(rc == MQTT_PARSE_MALFORMED || rc == MQTT_PARSE_TOO_LARGE);
	return mqtt_reason_of(rc, why);
}

/* What mosquitto 2.0 answers an MQTT 5 client with (tests/integration/test_mqtt5_errors.py asks it). */
static void test_reason_of(void)
{
	static const uint8_t alias0[] = {0x30, 8, 0, 1, 't', 3, 0x23, 0, 0, 'x'};      /* Topic Alias 0 */
	static const uint8_t badprop[] = {0x30, 7, 0, 1, 't', 2, 0x7F, 0, 'x'};	      /* property 0x7F */
	static const uint8_t dupprop[] = {0x30, 9, 0, 1, 't', 4, 1, 0, 1, 0, 'x'};      /* format twice */
	static const uint8_t wild[] = {0x30, 5, 0, 1, '#', 0, 'x'};		      /* wildcard topic */
	static const uint8_t badutf[] = {0x30, 6, 0, 2, 't', 0xFF, 0, 'x'};	      /* topic not UTF-8 */
	static const uint8_t pid0[] = {0x32, 7, 0, 1, 't', 0, 0, 0, 'x'};	      /* QoS 1, id 0 */
	static const uint8_t noalias[] = {0x30, 4, 0, 0, 0, 'x'};		      /* empty topic */
	static const uint8_t qos3[] = {0x36, 7, 0, 1, 't', 0, 1, 0, 'x'};	      /* QoS 3 */
	static const uint8_t type0[] = {0x00, 0};				      /* reserved type */
	static const uint8_t varint5[] = {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};	      /* 5-byte length */
	static const uint8_t pubrel0[] = {0x60, 2, 0, 1};			      /* PUBREL flags 0 */
	static const uint8_t big[] = {0x30, 0x7F};				      /* 127 > 100 */
	static const uint8_t badfilter[] = {0x82, 9, 0, 1, 0, 0, 3, 'a', '#', 'b', 0}; /* "a#b" */
	static const uint8_t badopts[] = {0x82, 8, 0, 1, 0, 0, 1, 'a', 0xC0};	      /* reserved bits */
	struct mqtt_alias *a = mqtt_alias_new(10);
	struct mqtt_buf topic, t = {(const uint8_t *)"t", 1}, none = {NULL, 0};
	const char *why = NULL;

	CHECK_EQ(reason_for(PKT(alias0), BIG), MQTT_RC_MALFORMED_PACKET);
	CHECK_EQ(reason_for(PKT(badprop), BIG), MQTT_RC_MALFORMED_PACKET);
	CHECK_EQ(reason_for(PKT(dupprop), BIG), MQTT_RC_NONE);
	CHECK_EQ(reason_for(PKT(wild), BIG), MQTT_RC_PROTOCOL_ERROR);
	CHECK_EQ(reason_for(PKT(badutf), BIG), MQTT_RC_MALFORMED_PACKET);
	CHECK_EQ(reason_for(PKT(pid0), BIG), MQTT_RC_PROTOCOL_ERROR);
	CHECK_EQ(reason_for(PKT(noalias), BIG), MQTT_RC_PROTOCOL_ERROR);
	CHECK_EQ(reason_for(PKT(qos3), BIG), MQTT_RC_MALFORMED_PACKET);
	CHECK_EQ(reason_for(PKT(type0), BIG), MQTT_RC_PROTOCOL_ERROR);
	CHECK_EQ(reason_for(PKT(varint5), BIG), MQTT_RC_NONE);
	CHECK_EQ(reason_for(PKT(pubrel0), BIG), MQTT_RC_NONE);
	CHECK_EQ(reason_for(PKT(big), 100), MQTT_RC_PACKET_TOO_LARGE);
	CHECK_EQ(reason_for(PKT(badfilter), BIG), MQTT_RC_MALFORMED_PACKET);
	CHECK_EQ(reason_for(PKT(badopts), BIG), MQTT_RC_MALFORMED_PACKET);
	/* the Topic Alias table's failures */
	CHECK(a != NULL);
	if (a) {
		CHECK_EQ(mqtt_alias_resolve(a, 11, t, &topic, &why), MQTT_PARSE_MALFORMED);
		CHECK_EQ(mqtt_reason_of(MQTT_PARSE_MALFORMED, why), MQTT_RC_TOPIC_ALIAS_INVALID);
		CHECK_EQ(mqtt_alias_resolve(a, 3, none, &topic, &why), MQTT_PARSE_MALFORMED);
		CHECK_EQ(mqtt_reason_of(MQTT_PARSE_MALFORMED, why), MQTT_RC_PROTOCOL_ERROR);
		CHECK_EQ(mqtt_alias_resolve(a, 0, none, &topic, &why), MQTT_PARSE_MALFORMED);
		CHECK_EQ(mqtt_reason_of(MQTT_PARSE_MALFORMED, why), MQTT_RC_PROTOCOL_ERROR);
		CHECK_EQ(mqtt_alias_resolve(a, 3, t, &topic, &why), MQTT_PARSE_OK);
		CHECK_EQ(mqtt_alias_resolve(a, 3, none, &topic, &why), MQTT_PARSE_OK);
		CHECK(buf_eq(topic, "t"));
	}
	mqtt_alias_free(a);
	/* mqseal's own reasons are not the codec's: no DISCONNECT; an unnamed TOO_LARGE is 0x95 */
	CHECK_EQ(mqtt_reason_of(MQTT_PARSE_MALFORMED, "out of memory"), MQTT_RC_NONE);
	CHECK_EQ(mqtt_reason_of(MQTT_PARSE_MALFORMED, NULL), MQTT_RC_NONE);
	CHECK_EQ(mqtt_reason_of(MQTT_PARSE_TOO_LARGE, NULL), MQTT_RC_PACKET_TOO_LARGE);
	CHECK_EQ(mqtt_reason_of(MQTT_PARSE_OK, "unknown property"), MQTT_RC_NONE);
}

static void test_reason_valid(void)
{
	CHECK(mqtt_reason_valid(MQTT_SUBACK, MQTT_RC_GRANTED_QOS2));
	CHECK(mqtt_reason_valid(MQTT_SUBACK, MQTT_RC_WILDCARD_SUBS_NOT_SUPPORTED));
	CHECK(!mqtt_reason_valid(MQTT_SUBACK, 0x03));
	CHECK(!mqtt_reason_valid(MQTT_SUBACK, MQTT_RC_NO_SUBSCRIPTION_EXISTED));
	CHECK(mqtt_reason_valid(MQTT_UNSUBACK, MQTT_RC_NO_SUBSCRIPTION_EXISTED));
	CHECK(mqtt_reason_valid(MQTT_PUBACK, MQTT_RC_NO_MATCHING_SUBSCRIBERS));
	CHECK(!mqtt_reason_valid(MQTT_PUBACK, MQTT_RC_PACKET_ID_NOT_FOUND));
	CHECK(mqtt_reason_valid(MQTT_PUBCOMP, MQTT_RC_PACKET_ID_NOT_FOUND));
	CHECK(mqtt_reason_valid(MQTT_DISCONNECT, MQTT_RC_SERVER_SHUTTING_DOWN));
	CHECK(!mqtt_reason_valid(MQTT_DISCONNECT, MQTT_RC_DISCONNECT_WITH_WILL)); /* client only */
	CHECK(mqtt_reason_valid(MQTT_AUTH, MQTT_RC_CONTINUE_AUTHENTICATION));
	CHECK(!mqtt_reason_valid(MQTT_AUTH, MQTT_RC_UNSPECIFIED_ERROR));
	CHECK(mqtt_reason_valid(MQTT_CONNACK, MQTT_RC_SERVER_UNAVAILABLE));
	CHECK(!mqtt_reason_valid(MQTT_CONNACK, MQTT_RC_GRANTED_QOS1));
	CHECK(!mqtt_reason_valid(MQTT_PUBLISH, 0));
	CHECK(!mqtt_reason_valid(99, 0));
}

/* ---- server packets (mqtt_check.c) ---- */

/* mqtt_server_packet_check of a whole packet at level; *why on failure. */
static enum mqtt_parse server_check(uint8_t level, struct pkt k, const char **why)
{
	struct mqtt_frame f;

	*why = NULL;
	if (mqtt_frame_parse(k.p, k.len, BIG, level, &f, why) != MQTT_PARSE_OK || f.total != k.len)
		return MQTT_PARSE_NEED_MORE; /* not a frame: a broken test vector */
	return mqtt_server_packet_check(level, &f, k.p + f.hdr_len, why);
}

#define SERVER_OK(level, a) CHECK_EQ(server_check(level, PKT(a), &why), MQTT_PARSE_OK)
#define SERVER_BAD(level, a, want)                                                     \
	do {                                                                           \
		CHECK_EQ(server_check(level, PKT(a), &why), MQTT_PARSE_MALFORMED);     \
		CHECK(why && strcmp(why, want) == 0);                                  \
	} while (0)

static void test_server_packets_ok(void)
{
	static const uint8_t connack5[] = {0x20, 6, 0, 0, 3, 0x22, 0, 10};	   /* alias max 10 */
	static const uint8_t connack5_old[] = {0x20, 2, 0, 1};		   /* 3.x refusing 5 */
	static const uint8_t connack4[] = {0x20, 2, 1, 5};			   /* not authorized */
	static const uint8_t publish5[] = {0x30, 5, 0, 1, 't', 0, 'x'};
	static const uint8_t puback5[] = {0x40, 3, 0, 7, 0x10};		   /* no subscribers */
	static const uint8_t pubrec5[] = {0x50, 8, 0, 7, 0x80, 4, 0x1F, 0, 1, 'e'};
	static const uint8_t pubrel5[] = {0x62, 3, 0, 7, 0x92};
	static const uint8_t pubcomp4[] = {0x70, 2, 0, 7};
	static const uint8_t suback5[] = {0x90, 5, 0, 1, 0, 0x02, 0x87};
	static const uint8_t unsuback5[] = {0xB0, 4, 0, 1, 0, 0x11};
	static const uint8_t unsuback4[] = {0xB0, 2, 0, 1};
	static const uint8_t pingresp[] = {0xD0, 0};
	static const uint8_t disconnect5[] = {0xE0, 1, 0x8B};		   /* shutting down */
	static const uint8_t disconnect5_0[] = {0xE0, 0};
	static const uint8_t disconnect4[] = {0xE0, 0};
	static const uint8_t auth5[] = {0xF0, 6, 0x18, 4, 0x15, 0, 1, 'm'};
	const char *why;

	SERVER_OK(5, connack5);
	SERVER_OK(5, connack5_old);
	SERVER_OK(4, connack4);
	SERVER_OK(5, publish5);
	SERVER_OK(5, puback5);
	SERVER_OK(5, pubrec5);
	SERVER_OK(5, pubrel5);
	SERVER_OK(4, pubcomp4);
	SERVER_OK(5, suback5);
	SERVER_OK(5, unsuback5);
	SERVER_OK(4, unsuback4);
	SERVER_OK(5, pingresp);
	SERVER_OK(4, pingresp);
	SERVER_OK(5, disconnect5);
	SERVER_OK(5, disconnect5_0);
	SERVER_OK(4, disconnect4);
	SERVER_OK(5, auth5);
}

static void test_server_packets_bad(void)
{
	static const uint8_t suback_prop[] = {0x90, 6, 0, 1, 2, 0x7F, 0, 0};	   /* property 0x7F */
	static const uint8_t suback_rc[] = {0x90, 4, 0, 1, 0, 0x05};		   /* no such code */
	static const uint8_t suback_alias[] = {0x90, 7, 0, 1, 3, 0x23, 0, 1, 0}; /* not in SUBACK */
	static const uint8_t suback4[] = {0x90, 3, 0, 1, 0x03};
	static const uint8_t unsuback_rc[] = {0xB0, 4, 0, 1, 0, 0x02};
	static const uint8_t puback_utf[] = {0x40, 8, 0, 7, 0, 4, 0x1F, 0, 1, 0xFF}; /* reason string */
	static const uint8_t puback_rc[] = {0x40, 3, 0, 7, 0x92};
	static const uint8_t puback_id0[] = {0x40, 2, 0, 0};
	static const uint8_t pubrel_rc[] = {0x62, 3, 0, 7, 0x10};
	static const uint8_t connack_rc[] = {0x20, 3, 0, 0x04, 0};
	static const uint8_t connack4_rc[] = {0x20, 2, 0, 6};
	static const uint8_t connack_dup[] = {0x20, 7, 0, 0, 4, 0x24, 0, 0x24, 1}; /* Maximum QoS twice */
	static const uint8_t publish_wild[] = {0x30, 5, 0, 1, '#', 0, 'x'};
	static const uint8_t disconnect_rc[] = {0xE0, 1, 0x04};		   /* client-only reason */
	static const uint8_t disconnect_trail[] = {0xE0, 3, 0x80, 0, 0};
	static const uint8_t auth_rc[] = {0xF0, 2, 0x80, 0};
	static const uint8_t subscribe[] = {0x82, 7, 0, 1, 0, 0, 1, 'a', 0};
	const char *why;

	SERVER_BAD(5, suback_prop, "unknown property");
	SERVER_BAD(5, suback_rc, "reason code not allowed in packet");
	SERVER_BAD(5, suback_alias, "property not allowed in packet");
	SERVER_BAD(4, suback4, "SUBACK return code invalid");
	SERVER_BAD(5, unsuback_rc, "reason code not allowed in packet");
	SERVER_BAD(5, puback_utf, "property not UTF-8");
	SERVER_BAD(5, puback_rc, "reason code not allowed in packet");
	SERVER_BAD(4, puback_id0, "packet id 0");
	SERVER_BAD(5, pubrel_rc, "reason code not allowed in packet");
	SERVER_BAD(5, connack_rc, "reason code not allowed in packet");
	SERVER_BAD(4, connack4_rc, "CONNACK return code invalid");
	SERVER_BAD(5, connack_dup, "duplicate property");
	SERVER_BAD(5, publish_wild, "topic name invalid");
	SERVER_BAD(5, disconnect_rc, "reason code not allowed in packet");
	SERVER_BAD(5, disconnect_trail, "trailing bytes after properties");
	SERVER_BAD(5, auth_rc, "reason code not allowed in packet");
	SERVER_BAD(5, subscribe, "client-to-server packet");
	/* AUTH at level 4 never frames; the check refuses it on its own too */
	{
		struct mqtt_frame f = {.type = MQTT_AUTH, .hdr_len = 2, .remaining = 0, .total = 2};
		CHECK_EQ(mqtt_server_packet_check(4, &f, (const uint8_t *)"", &why), MQTT_PARSE_MALFORMED);
		f.type = MQTT_PINGRESP;
		f.remaining = 1;
		CHECK_EQ(mqtt_server_packet_check(5, &f, (const uint8_t *)"x", &why), MQTT_PARSE_MALFORMED);
	}
}

int main(void)
{
	test_connect_parse();
	test_connect_new_will();
	test_connect_malformed();
	test_publish();
	test_publish_new_props();
	test_publish_malformed();
	test_subscribe();
	test_subscribe_malformed();
	test_suback();
	test_reason_of();
	test_reason_valid();
	test_server_packets_ok();
	test_server_packets_bad();
	CHECK_DONE();
}
