/* test_mqtt_frame.c - the fixed header parser and the Variable Byte Integer (proxy/mqtt/mqtt_frame.c):
 * varint edge values and malformed forms, every packet type and flag nibble at levels 3, 4 and 5,
 * per-type remaining lengths, split input, lying lengths and the size limit. */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "mqtt_codec.h"
#include "mqtt_frame.h"

#define BIG ((size_t)1 << 30)

/* ---- Variable Byte Integer (MQTT 5 §1.5.5 table 1-1 gives the boundary encodings) ---- */

struct varint_case {
	uint32_t value;
	uint8_t len;
	uint8_t bytes[4];
};

static const struct varint_case varint_cases[] = {
	{0, 1, {0x00}},
	{127, 1, {0x7F}},
	{128, 2, {0x80, 0x01}},
	{16383, 2, {0xFF, 0x7F}},
	{16384, 3, {0x80, 0x80, 0x01}},
	{2097151, 3, {0xFF, 0xFF, 0x7F}},
	{2097152, 4, {0x80, 0x80, 0x80, 0x01}},
	{268435455, 4, {0xFF, 0xFF, 0xFF, 0x7F}},
};

static void test_varint_roundtrip(void)
{
	size_t i, used;
	uint8_t buf[4];
	uint32_t v;

	for (i = 0; i < sizeof(varint_cases) / sizeof(varint_cases[0]); i++) {
		const struct varint_case *c = &varint_cases[i];

		CHECK_EQ(mqtt_varint_size(c->value), c->len);
		CHECK_EQ(mqtt_varint_encode(c->value, buf), c->len);
		CHECK_MEM(buf, c->bytes, c->len);
		v = 1;
		used = 0;
		CHECK_EQ(mqtt_varint_decode(c->bytes, c->len, &v, &used), MQTT_PARSE_OK);
		CHECK_EQ(v, c->value);
		CHECK_EQ(used, c->len);
		/* every proper prefix of a multi-byte form is incomplete, not wrong */
		CHECK(c->len == 1 ||
		      mqtt_varint_decode(c->bytes, c->len - 1u, &v, &used) == MQTT_PARSE_NEED_MORE);
	}
	CHECK_EQ(mqtt_varint_size(268435456u), 0);
	CHECK_EQ(mqtt_varint_encode(268435456u, buf), 0);
	CHECK_EQ(mqtt_varint_encode(UINT32_MAX, buf), 0);
}

static void test_varint_malformed(void)
{
	/* overlong: a trailing 0x00 after continuation bytes [MQTT-1.5.5-1] */
	static const uint8_t overlong[][4] = {
		{0x80, 0x00},		  /* 0 in 2 bytes */
		{0xFF, 0x00},		  /* 127 in 2 bytes */
		{0x80, 0x80, 0x00},	  /* 0 in 3 bytes */
		{0xFF, 0xFF, 0x00},	  /* 16383 in 3 bytes */
		{0x80, 0x80, 0x80, 0x00}, /* 0 in 4 bytes */
	};
	static const uint8_t overlong_len[] = {2, 2, 3, 3, 4};
	static const uint8_t five[] = {0xFF, 0xFF, 0xFF, 0xFF, 0x7F}; /* 5th byte */
	static const uint8_t four_cont[] = {0x80, 0x80, 0x80, 0x80};  /* 4th asks for a 5th */
	static const uint8_t trunc[] = {0x80, 0xFF, 0x80};
	uint32_t v;
	size_t used, i;

	for (i = 0; i < sizeof(overlong_len); i++)
		CHECK_EQ(mqtt_varint_decode(overlong[i], overlong_len[i], &v, &used), MQTT_PARSE_MALFORMED);
	CHECK_EQ(mqtt_varint_decode(five, sizeof(five), &v, &used), MQTT_PARSE_MALFORMED);
	CHECK_EQ(mqtt_varint_decode(four_cont, sizeof(four_cont), &v, &used), MQTT_PARSE_MALFORMED);
	CHECK_EQ(mqtt_varint_decode(trunc, 0, &v, &used), MQTT_PARSE_NEED_MORE);
	CHECK_EQ(mqtt_varint_decode(trunc, 1, &v, &used), MQTT_PARSE_NEED_MORE);
	CHECK_EQ(mqtt_varint_decode(trunc, 2, &v, &used), MQTT_PARSE_NEED_MORE);
	CHECK_EQ(mqtt_varint_decode(trunc, 3, &v, &used), MQTT_PARSE_NEED_MORE);
}

/* ---- one valid packet of every type ---- */

struct sample {
	uint8_t level;
	uint8_t len;
	uint8_t bytes[32];
};

static const struct sample samples[] = {
	/* CONNECT 3.1: 10 | rem 18 | 00 06 "MQIsdp" | level 3 | flags clean | keep alive 60 | id "dev1" */
	{3, 20, {0x10, 0x12, 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 0x02, 0, 60, 0, 4, 'd', 'e', 'v', '1'}},
	/* CONNECT 3.1.1: 10 | rem 16 | 00 04 "MQTT" | level 4 | flags clean | keep alive 60 | id "dev1" */
	{4, 18, {0x10, 0x10, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 4, 'd', 'e', 'v', '1'}},
	/* CONNECT 5: ... level 5 | flags | keep alive | props len 5: 0x11 session expiry 120 | id "dev1" */
	{5, 24, {0x10, 0x16, 0, 4, 'M', 'Q', 'T', 'T', 5,   0x02, 0,   60,
		 5,    0x11, 0, 0, 0,	120, 0,	  4,   'd', 'e',  'v', '1'}},
	{4, 4, {0x20, 0x02, 0x00, 0x00}},		     /* CONNACK: flags 0, code 0 */
	{5, 5, {0x20, 0x03, 0x00, 0x00, 0x00}},		     /* CONNACK 5: flags, reason, props len 0 */
	{4, 9, {0x30, 0x07, 0, 3, 'a', '/', 'b', 'h', 'i'}}, /* PUBLISH QoS 0 "a/b" "hi" */
	{4, 11, {0x32, 0x09, 0, 3, 'a', '/', 'b', 0, 1, 'h', 'i'}}, /* PUBLISH QoS 1, id 1 */
	/* PUBLISH 5 QoS 0: topic "a/b" | props len 2: 0x01 payload format 1 | "hi" */
	{5, 12, {0x30, 0x0A, 0, 3, 'a', '/', 'b', 2, 0x01, 1, 'h', 'i'}},
	/* PUBLISH 5 QoS 1: empty topic | id 5 | props len 3: 0x23 topic alias 1 | "hi" */
	{5, 12, {0x32, 0x0A, 0, 0, 0, 5, 3, 0x23, 0, 1, 'h', 'i'}},
	{4, 4, {0x40, 0x02, 0, 1}},	  /* PUBACK id 1 */
	{4, 4, {0x50, 0x02, 0, 1}},	  /* PUBREC id 1 */
	{4, 4, {0x62, 0x02, 0, 1}},	  /* PUBREL id 1 (flags 0010) */
	{4, 4, {0x70, 0x02, 0, 1}},	  /* PUBCOMP id 1 */
	{5, 4, {0x40, 0x02, 0, 5}},	  /* PUBACK 5, short form */
	{5, 5, {0x40, 0x03, 0, 5, 0x10}}, /* PUBACK 5: reason 0x10, no props length */
	/* PUBREC 5: id 5 | reason 0x80 | props len 4: 0x1F reason string "x" */
	{5, 10, {0x50, 0x08, 0, 5, 0x80, 4, 0x1F, 0, 1, 'x'}},
	{5, 4, {0x62, 0x02, 0, 5}},	  /* PUBREL 5 */
	{5, 5, {0x70, 0x03, 0, 5, 0x92}}, /* PUBCOMP 5: packet id not found */
	/* SUBSCRIBE: id 2 | "a/+" | options QoS 1 */
	{4, 10, {0x82, 0x08, 0, 2, 0, 3, 'a', '/', '+', 0x01}},
	/* SUBSCRIBE 5: id 7 | props len 2: 0x0B subscription id 5 | "a/#" | options 0x15 */
	{5, 13, {0x82, 0x0B, 0, 7, 2, 0x0B, 5, 0, 3, 'a', '/', '#', 0x15}},
	{4, 5, {0x90, 0x03, 0, 2, 0x01}},		     /* SUBACK: id 2, granted QoS 1 */
	{5, 6, {0x90, 0x04, 0, 7, 0, 0x01}},		     /* SUBACK 5: id 7, props len 0, QoS 1 */
	{4, 9, {0xA2, 0x07, 0, 3, 0, 3, 'a', '/', '+'}},     /* UNSUBSCRIBE id 3 "a/+" */
	{5, 10, {0xA2, 0x08, 0, 8, 0, 0, 3, 'a', '/', '#'}}, /* UNSUBSCRIBE 5: props len 0 */
	{4, 4, {0xB0, 0x02, 0, 3}},			     /* UNSUBACK id 3 */
	{5, 6, {0xB0, 0x04, 0, 8, 0, 0x00}},		     /* UNSUBACK 5: props len 0, success */
	{4, 2, {0xC0, 0x00}},				     /* PINGREQ */
	{4, 2, {0xD0, 0x00}},				     /* PINGRESP */
	{4, 2, {0xE0, 0x00}},				     /* DISCONNECT */
	{5, 2, {0xC0, 0x00}},				     /* PINGREQ */
	{5, 2, {0xD0, 0x00}},				     /* PINGRESP */
	{5, 2, {0xE0, 0x00}},				     /* DISCONNECT 5, all omitted */
	{5, 3, {0xE0, 0x01, 0x04}},			     /* DISCONNECT 5: with will message */
	{5, 2, {0xF0, 0x00}},				     /* AUTH, all omitted */
	/* AUTH: reason 0x18 continue | props len 7: 0x15 method "SCRM" */
	{5, 11, {0xF0, 0x09, 0x18, 7, 0x15, 0, 4, 'S', 'C', 'R', 'M'}},
};

#define NSAMPLES (sizeof(samples) / sizeof(samples[0]))

static void test_samples_parse(void)
{
	size_t i;
	struct mqtt_frame f;
	const char *why;

	for (i = 0; i < NSAMPLES; i++) {
		const struct sample *s = &samples[i];

		CHECK_EQ(mqtt_frame_parse(s->bytes, s->len, BIG, s->level, &f, &why), MQTT_PARSE_OK);
		CHECK_EQ(f.type, s->bytes[0] >> 4);
		CHECK_EQ(f.flags, s->bytes[0] & 0x0F);
		CHECK_EQ(f.hdr_len, 2);
		CHECK_EQ(f.remaining, s->bytes[1]);
		CHECK_EQ(f.total, s->len);
	}
}

/* A valid packet split at every byte: NEED_MORE until the header is there, then OK with a total
 * the caller compares with what it holds; complete exactly at the end. */
static void test_split(void)
{
	uint8_t pkt[3 + 2 + 1 + 299];
	struct mqtt_frame f;
	size_t k, i;

	pkt[0] = 0x30;		       /* PUBLISH, QoS 0 */
	pkt[1] = 0xAE, pkt[2] = 0x02;  /* remaining 302 = 0x2E + 2 * 128 */
	pkt[3] = 0x00, pkt[4] = 0x01;  /* topic length 1 */
	memset(pkt + 5, 't', 1 + 299); /* topic "t", payload 299 bytes */
	for (k = 0; k <= sizeof(pkt); k++) {
		enum mqtt_parse rc = mqtt_frame_parse(pkt, k, BIG, MQTT_LEVEL_311, &f, NULL);

		if (k < 3) {
			CHECK_EQ(rc, MQTT_PARSE_NEED_MORE);
			continue;
		}
		CHECK_EQ(rc, MQTT_PARSE_OK);
		CHECK_EQ(f.hdr_len, 3);
		CHECK_EQ(f.remaining, 302);
		CHECK_EQ(f.total, sizeof(pkt));
		CHECK_EQ(f.total <= k, k == sizeof(pkt)); /* the body is complete only at the end */
	}
	for (i = 0; i < NSAMPLES; i++) /* every sample: NEED_MORE for the empty and 1-byte prefix */
		for (k = 0; k < 2; k++)
			CHECK_EQ(mqtt_frame_parse(samples[i].bytes, k, BIG, samples[i].level, &f, NULL),
				 MQTT_PARSE_NEED_MORE);
}

/* Which flag nibbles each type accepts (MQTT 3.1.1 §2.2.2, MQTT 5 §2.1.3). */
static int flags_ok(uint8_t type, uint8_t flags, uint8_t level)
{
	if (type == MQTT_PUBLISH)
		return ((flags >> 1) & 3) != 3;
	if (type == MQTT_PUBREL || type == MQTT_SUBSCRIBE || type == MQTT_UNSUBSCRIBE)
		return flags == 2 || (level == 3 && flags == 0x0A);
	return flags == 0;
}

static void test_flag_nibbles(void)
{
	static const uint8_t levels[] = {3, 4, 5};
	struct mqtt_frame f;
	const char *why;
	size_t i, l;
	unsigned fl;

	for (l = 0; l < sizeof(levels); l++) {
		for (i = 0; i < NSAMPLES; i++) {
			const struct sample *s = &samples[i];
			uint8_t b[32], type = s->bytes[0] >> 4;

			if (s->level != (levels[l] == 5 ? 5 : 4))
				continue; /* level-4 samples serve levels 3 and 4 */
			memcpy(b, s->bytes, s->len);
			for (fl = 0; fl < 16; fl++) {
				b[0] = (uint8_t)((unsigned)type << 4 | fl);
				why = NULL;
				CHECK_EQ(mqtt_frame_parse(b, s->len, BIG, levels[l], &f, &why) ==
						 MQTT_PARSE_OK,
					 flags_ok(type, (uint8_t)fl, levels[l]));
				CHECK(flags_ok(type, (uint8_t)fl, levels[l]) || why != NULL);
			}
		}
	}
}

static void expect_bad(const uint8_t *b, size_t len, uint8_t level, const char *reason)
{
	struct mqtt_frame f;
	const char *why = NULL;

	CHECK_EQ(mqtt_frame_parse(b, len, BIG, level, &f, &why), MQTT_PARSE_MALFORMED);
	CHECK(why != NULL && strcmp(why, reason) == 0);
	if (why && strcmp(why, reason) != 0)
		fprintf(stderr, "  why: \"%s\", expected \"%s\"\n", why, reason);
}

static void test_type_and_length_rules(void)
{
	/* type and flags are judged from the first byte alone */
	expect_bad((const uint8_t[]){0x00}, 1, 4, "reserved packet type 0");
	expect_bad((const uint8_t[]){0x0F, 0x00}, 2, 5, "reserved packet type 0");
	expect_bad((const uint8_t[]){0xF0, 0x00}, 2, 4, "AUTH before MQTT 5");
	expect_bad((const uint8_t[]){0xF0, 0x00}, 2, 3, "AUTH before MQTT 5");
	expect_bad((const uint8_t[]){0x36}, 1, 4, "PUBLISH QoS 3");
	expect_bad((const uint8_t[]){0x80, 0x08}, 2, 4, "fixed header flags invalid"); /* SUBSCRIBE 0000 */
	/* remaining length: 4 continuation bits, and a longer form than needed */
	expect_bad((const uint8_t[]){0x30, 0xFF, 0xFF, 0xFF, 0xFF}, 5, 4, "remaining length over 4 bytes");
	expect_bad((const uint8_t[]){0x30, 0x80, 0x00}, 3, 4, "remaining length overlong");
	expect_bad((const uint8_t[]){0xC0, 0x80, 0x80, 0x00}, 4, 4, "remaining length overlong");
	/* exact lengths at 3.1/3.1.1: acks, CONNACK, UNSUBACK 2; DISCONNECT, PINGs 0 */
	expect_bad((const uint8_t[]){0x40, 0x03}, 2, 4, "remaining length not exact"); /* PUBACK 3 */
	expect_bad((const uint8_t[]){0x62, 0x01}, 2, 3, "remaining length not exact"); /* PUBREL 1 */
	expect_bad((const uint8_t[]){0x20, 0x03}, 2, 4, "remaining length not exact"); /* CONNACK 3 */
	expect_bad((const uint8_t[]){0xB0, 0x03}, 2, 4, "remaining length not exact"); /* UNSUBACK 3 */
	expect_bad((const uint8_t[]){0xE0, 0x01}, 2, 4, "remaining length not exact"); /* DISCONNECT 1 */
	expect_bad((const uint8_t[]){0xC0, 0x01}, 2, 5, "remaining length not exact"); /* PINGREQ 1 */
	expect_bad((const uint8_t[]){0xD0, 0x01}, 2, 0, "remaining length not exact"); /* PINGRESP 1 */
	/* minimums */
	expect_bad((const uint8_t[]){0x10, 0x0B}, 2, 0, "remaining length too short"); /* CONNECT 11 */
	expect_bad((const uint8_t[]){0x30, 0x02}, 2, 4, "remaining length too short"); /* PUBLISH 2 */
	expect_bad((const uint8_t[]){0x32, 0x04}, 2, 5, "remaining length too short"); /* QoS 1: 4 */
	expect_bad((const uint8_t[]){0x40, 0x01}, 2, 5, "remaining length too short"); /* PUBACK 1 */
	expect_bad((const uint8_t[]){0x82, 0x05}, 2, 4, "remaining length too short"); /* SUBSCRIBE 5 */
	expect_bad((const uint8_t[]){0x82, 0x06}, 2, 5, "remaining length too short"); /* SUBSCRIBE 6 */
	expect_bad((const uint8_t[]){0x90, 0x03}, 2, 5, "remaining length too short"); /* SUBACK 3 */
	expect_bad((const uint8_t[]){0xA2, 0x05}, 2, 5, "remaining length too short"); /* UNSUB 5 */
	expect_bad((const uint8_t[]){0xB0, 0x03}, 2, 5, "remaining length too short"); /* UNSUBACK 3 */
	expect_bad((const uint8_t[]){0x20, 0x01}, 2, 5, "remaining length too short"); /* CONNACK 1 */
}

static void expect_ok(const uint8_t *b, size_t len, uint8_t level)
{
	struct mqtt_frame f;

	CHECK_EQ(mqtt_frame_parse(b, len, BIG, level, &f, NULL), MQTT_PARSE_OK);
}

/* What MQTT 5 (or an unknown level) allows beyond 3.1.1. */
static void test_level_differences(void)
{
	expect_ok((const uint8_t[]){0xF0, 0x00}, 2, 0); /* AUTH before CONNECT told the level */
	expect_ok((const uint8_t[]){0x40, 0x03}, 2, 5); /* PUBACK with reason */
	expect_ok((const uint8_t[]){0x40, 0x03}, 2, 0); /* unknown level: only minimums */
	expect_ok((const uint8_t[]){0xE0, 0x01}, 2, 5); /* DISCONNECT with reason */
	expect_ok((const uint8_t[]){0x20, 0x02}, 2, 5); /* a 3.x broker's refusal */
	expect_ok((const uint8_t[]){0x20, 0x09}, 2, 5); /* CONNACK with properties */
	expect_ok((const uint8_t[]){0x82, 0x06}, 2, 4); /* SUBSCRIBE 6 is enough at 3.1.1 */
	expect_ok((const uint8_t[]){0x82, 0x06}, 2, 0);
	expect_ok((const uint8_t[]){0x6A, 0x02}, 2, 3); /* 3.1: PUBREL with DUP */
	expect_ok((const uint8_t[]){0x38, 0x03}, 2, 4); /* PUBLISH DUP at QoS 0 passes the frame */
}

/* TOO_LARGE is decided from the header alone; MALFORMED wins over TOO_LARGE. */
static void test_limit(void)
{
	static const uint8_t huge[] = {0x30, 0xFF, 0xFF, 0xFF, 0x7F}; /* PUBLISH, 268435455 */
	static const uint8_t hdr16k[] = {0x30, 0x80, 0x80, 0x01};     /* PUBLISH, 16384: total 16388 */
	struct mqtt_frame f;
	const char *why = NULL;

	CHECK_EQ(mqtt_frame_parse(huge, sizeof(huge), 1u << 20, 4, &f, &why), MQTT_PARSE_TOO_LARGE);
	CHECK(why && strcmp(why, "packet over limit") == 0);
	CHECK_EQ(mqtt_frame_parse(huge, sizeof(huge), BIG, 4, &f, NULL), MQTT_PARSE_OK);
	CHECK_EQ(f.total, 268435460u);
	CHECK_EQ(mqtt_frame_parse(hdr16k, sizeof(hdr16k), 16388, 4, &f, NULL), MQTT_PARSE_OK);
	CHECK_EQ(f.total, 16388);
	CHECK_EQ(mqtt_frame_parse(hdr16k, sizeof(hdr16k), 16387, 4, &f, NULL), MQTT_PARSE_TOO_LARGE);
	CHECK_EQ(mqtt_frame_parse(hdr16k, 3, 16, 4, &f, NULL), MQTT_PARSE_NEED_MORE); /* not yet known */
	CHECK_EQ(mqtt_frame_parse(samples[1].bytes, samples[1].len, 17, 4, &f, NULL), MQTT_PARSE_TOO_LARGE);
	CHECK_EQ(mqtt_frame_parse((const uint8_t[]){0x36, 0xFF}, 2, 1, 4, &f, NULL), MQTT_PARSE_MALFORMED);
}

/* Remaining lengths that lie: the frame takes them at their word, the packet parsers do not. */
static void test_lying_length(void)
{
	/* PUBACK id 1 followed by a stray 0x00: the frame ends after 4 bytes, the next one is bad */
	static const uint8_t extra[] = {0x40, 0x02, 0x00, 0x01, 0x00};
	/* CONNECT claiming 16 bytes but the client id field says 9 bytes where 4 follow */
	static const uint8_t shortid[] = {0x10, 0x10, 0,  4, 'M', 'Q', 'T', 'T', 4,
					  0x02, 0,    60, 0, 9,	  'd', 'e', 'v', '1'};
	/* SUBSCRIBE claiming 9 bytes: id 2, "a/+" QoS 1, then a lone byte of a next filter length */
	static const uint8_t subextra[] = {0x82, 0x09, 0, 2, 0, 3, 'a', '/', '+', 0x01, 0x00};
	struct mqtt_frame f;
	struct mqtt_connect c;
	struct mqtt_subscribe s;
	const char *why = NULL;

	CHECK_EQ(mqtt_frame_parse(extra, sizeof(extra), BIG, 4, &f, NULL), MQTT_PARSE_OK);
	CHECK_EQ(f.total, 4);
	CHECK_EQ(mqtt_frame_parse(extra + f.total, sizeof(extra) - f.total, BIG, 4, &f, NULL),
		 MQTT_PARSE_MALFORMED);
	/* a remaining length longer than what arrived: wait for it */
	CHECK_EQ(mqtt_frame_parse(shortid, 12, BIG, 0, &f, NULL), MQTT_PARSE_OK);
	CHECK(f.total > 12);
	CHECK_EQ(mqtt_frame_parse(shortid, sizeof(shortid), BIG, 0, &f, NULL), MQTT_PARSE_OK);
	CHECK_EQ(mqtt_connect_parse(shortid + f.hdr_len, f.remaining, &c, NULL, &why), MQTT_PARSE_MALFORMED);
	CHECK(why && strcmp(why, "CONNECT truncated") == 0);
	CHECK_EQ(mqtt_frame_parse(subextra, sizeof(subextra), BIG, 4, &f, NULL), MQTT_PARSE_OK);
	CHECK_EQ(mqtt_subscribe_parse(4, MQTT_SUBSCRIBE, subextra + 2, f.remaining, &s, &why),
		 MQTT_PARSE_MALFORMED);
	CHECK(why && strcmp(why, "topic filter truncated") == 0);
}

static void test_type_names(void)
{
	CHECK(strcmp(mqtt_type_name(MQTT_PUBLISH), "PUBLISH") == 0);
	CHECK(strcmp(mqtt_type_name(MQTT_AUTH), "AUTH") == 0);
	CHECK(strcmp(mqtt_type_name(MQTT_UNSUBACK), "UNSUBACK") == 0);
	CHECK(strcmp(mqtt_type_name(0), "?") == 0);
	CHECK(strcmp(mqtt_type_name(16), "?") == 0);
	CHECK(strcmp(mqtt_type_name(255), "?") == 0);
}

int main(void)
{
	test_varint_roundtrip();
	test_varint_malformed();
	test_samples_parse();
	test_split();
	test_flag_nibbles();
	test_type_and_length_rules();
	test_level_differences();
	test_limit();
	test_lying_length();
	test_type_names();
	CHECK_DONE();
}
