/* test_wire.c - the checked byte cursor (wire/wire.h): each field kind round trip, big-endian
 * order, the MQTT varint's boundary values and malformed forms, the sticky error, and a composite
 * record (every field kind) read from each of its truncations and written into each too-small
 * buffer: the error is WIRE_SHORT, every later read is 0 and no byte outside the buffer is touched. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "wire.h"

static void test_be_order(void)
{
	static const uint8_t in[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
				     0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f};
	uint8_t out[sizeof(in)];
	struct wire_rd r;
	struct wire_wr w;

	wire_rd_init(&r, in, sizeof(in));
	CHECK_EQ(wire_rd_u8(&r), 0x01);
	CHECK_EQ(wire_rd_u16(&r), 0x0203);
	CHECK_EQ(wire_rd_u32(&r), 0x04050607);
	CHECK(wire_rd_u64(&r) == 0x08090a0b0c0d0e0fULL);
	CHECK(wire_rd_ok(&r));
	CHECK_EQ(wire_rd_remaining(&r), 0);

	wire_wr_init(&w, out, sizeof(out));
	wire_wr_u8(&w, 0x01);
	wire_wr_u16(&w, 0x0203);
	wire_wr_u32(&w, 0x04050607);
	wire_wr_u64(&w, 0x08090a0b0c0d0e0fULL);
	CHECK(wire_wr_ok(&w));
	CHECK_EQ(wire_wr_len(&w), sizeof(in));
	CHECK_MEM(out, in, sizeof(in));
}

struct varint_case {
	uint32_t value;
	size_t len;
	uint8_t bytes[4];
};

/* MQTT 5 §1.5.5, table 1-1. */
static const struct varint_case varints[] = {
	{0, 1, {0x00}},
	{127, 1, {0x7F}},
	{128, 2, {0x80, 0x01}},
	{16383, 2, {0xFF, 0x7F}},
	{16384, 3, {0x80, 0x80, 0x01}},
	{2097151, 3, {0xFF, 0xFF, 0x7F}},
	{2097152, 4, {0x80, 0x80, 0x80, 0x01}},
	{268435455, 4, {0xFF, 0xFF, 0xFF, 0x7F}},
};

static void test_varint(void)
{
	size_t i, cut;
	uint8_t buf[4];
	struct wire_rd r;
	struct wire_wr w;

	for (i = 0; i < sizeof(varints) / sizeof(varints[0]); i++) {
		const struct varint_case *c = &varints[i];

		CHECK_EQ(wire_varint_size(c->value), c->len);
		wire_wr_init(&w, buf, sizeof(buf));
		wire_wr_varint(&w, c->value);
		CHECK(wire_wr_ok(&w));
		CHECK_EQ(wire_wr_len(&w), c->len);
		CHECK_MEM(buf, c->bytes, c->len);
		wire_rd_init(&r, c->bytes, c->len);
		CHECK_EQ(wire_rd_varint(&r), c->value);
		CHECK(wire_rd_ok(&r));
		/* Every cut inside the varint is short, not invalid. */
		for (cut = 0; cut < c->len; cut++) {
			wire_rd_init(&r, c->bytes, cut);
			CHECK_EQ(wire_rd_varint(&r), 0);
			CHECK_EQ(wire_rd_err(&r), WIRE_SHORT);
		}
	}
	/* Too large to encode, overlong forms, and a 4th byte asking for a 5th. */
	wire_wr_init(&w, buf, sizeof(buf));
	wire_wr_varint(&w, WIRE_VARINT_MAX + 1);
	CHECK_EQ(wire_wr_err(&w), WIRE_INVALID);
	CHECK_EQ(wire_wr_len(&w), 0);
	CHECK_EQ(wire_varint_size(WIRE_VARINT_MAX + 1), 0);
	{
		static const uint8_t overlong[] = {0x80, 0x00}, overlong4[] = {0xFF, 0x80, 0x80, 0x00},
				     five[] = {0xFF, 0xFF, 0xFF, 0xFF, 0x01};

		wire_rd_init(&r, overlong, sizeof(overlong));
		CHECK_EQ(wire_rd_varint(&r), 0);
		CHECK_EQ(wire_rd_err(&r), WIRE_INVALID);
		wire_rd_init(&r, overlong4, sizeof(overlong4));
		CHECK_EQ(wire_rd_varint(&r), 0);
		CHECK_EQ(wire_rd_err(&r), WIRE_INVALID);
		wire_rd_init(&r, five, sizeof(five));
		CHECK_EQ(wire_rd_varint(&r), 0);
		CHECK_EQ(wire_rd_err(&r), WIRE_INVALID);
		CHECK_EQ(wire_rd_u8(&r), 0); /* sticky: the 5th byte is not read */
	}
}

/* The composite record: one of each field kind. */
#define REC_LEN (1 + 2 + 4 + 8 + 2 + (1 + 3) + (2 + 5) + 6 + 2)

static const uint8_t rec_key[6] = {0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};

static void rec_write(struct wire_wr *w)
{
	wire_wr_u8(w, 0x7e);
	wire_wr_u16(w, 0xbeef);
	wire_wr_u32(w, 0xdeadbeefu);
	wire_wr_u64(w, 0x0123456789abcdefULL);
	wire_wr_varint(w, 300);
	wire_wr_str8(w, "abc", 3);
	wire_wr_str16(w, "hello", 5);
	wire_wr_bytes(w, rec_key, sizeof(rec_key));
	wire_wr_u16(w, 0x0102);
}

struct rec {
	uint8_t a;
	uint16_t b;
	uint32_t c;
	uint64_t d;
	uint32_t v;
	const uint8_t *s8, *s16;
	size_t s8_len, s16_len;
	uint8_t key[6];
	uint16_t tail;
};

/* Reads the record; returns the cursor position after each field in at[] (10 entries). */
static void rec_read(struct wire_rd *r, struct rec *o, size_t at[static 10])
{
	size_t i = 0;

	at[i++] = r->pos;
	o->a = wire_rd_u8(r);
	at[i++] = r->pos;
	o->b = wire_rd_u16(r);
	at[i++] = r->pos;
	o->c = wire_rd_u32(r);
	at[i++] = r->pos;
	o->d = wire_rd_u64(r);
	at[i++] = r->pos;
	o->v = wire_rd_varint(r);
	at[i++] = r->pos;
	o->s8 = wire_rd_str8(r, &o->s8_len);
	at[i++] = r->pos;
	o->s16 = wire_rd_str16(r, &o->s16_len);
	at[i++] = r->pos;
	wire_rd_copy(r, o->key, sizeof(o->key));
	at[i++] = r->pos;
	o->tail = wire_rd_u16(r);
	at[i] = r->pos;
}

/* After a failure everything read is zero: count the non-zero fields from field k on. */
static int rec_nonzero_from(const struct rec *o, size_t k)
{
	static const uint8_t zero[6];
	int n = 0;

	n += k <= 0 && o->a;
	n += k <= 1 && o->b;
	n += k <= 2 && o->c;
	n += k <= 3 && o->d;
	n += k <= 4 && o->v;
	n += k <= 5 && (o->s8 || o->s8_len);
	n += k <= 6 && (o->s16 || o->s16_len);
	n += k <= 7 && memcmp(o->key, zero, sizeof(zero)) != 0;
	n += k <= 8 && o->tail;
	return n;
}

static void test_record_roundtrip(void)
{
	uint8_t buf[REC_LEN];
	struct wire_wr w;
	struct wire_rd r;
	struct rec o;
	size_t at[10];

	wire_wr_init(&w, buf, sizeof(buf));
	rec_write(&w);
	CHECK(wire_wr_ok(&w));
	CHECK_EQ(wire_wr_len(&w), REC_LEN);
	CHECK_EQ(wire_wr_remaining(&w), 0);
	wire_rd_init(&r, buf, sizeof(buf));
	rec_read(&r, &o, at);
	CHECK(wire_rd_ok(&r));
	CHECK_EQ(wire_rd_remaining(&r), 0);
	CHECK_EQ(o.a, 0x7e);
	CHECK_EQ(o.b, 0xbeef);
	CHECK_EQ(o.c, 0xdeadbeefu);
	CHECK(o.d == 0x0123456789abcdefULL);
	CHECK_EQ(o.v, 300);
	CHECK(o.s8_len == 3 && o.s8 && memcmp(o.s8, "abc", 3) == 0);
	CHECK(o.s16_len == 5 && o.s16 && memcmp(o.s16, "hello", 5) == 0);
	CHECK_MEM(o.key, rec_key, sizeof(rec_key));
	CHECK_EQ(o.tail, 0x0102);
	CHECK_EQ(at[9], REC_LEN);
}

/* Every truncation of the record: the field that crosses the cut and every later one read as
 * zero, the error is WIRE_SHORT, pos never passes the cut, and the fields before the cut are
 * intact. The input is copied to a buffer of exactly cut bytes, so ASan sees
 * any read past it. */
static void test_record_every_truncation(void)
{
	uint8_t full[REC_LEN];
	struct wire_wr w;
	struct wire_rd r;
	struct rec o, good;
	size_t at[10], good_at[10], cut, k;

	wire_wr_init(&w, full, sizeof(full));
	rec_write(&w);
	wire_rd_init(&r, full, sizeof(full));
	rec_read(&r, &good, good_at);
	for (cut = 0; cut < REC_LEN; cut++) {
		uint8_t *in = malloc(cut ? cut : 1);

		if (!in) {
			CHECK(in != NULL);
			return;
		}
		memcpy(in, full, cut);
		wire_rd_init(&r, in, cut);
		memset(&o, 0x5a, sizeof(o));
		rec_read(&r, &o, at);
		CHECK_EQ(wire_rd_err(&r), WIRE_SHORT);
		CHECK(!wire_rd_ok(&r));
		CHECK_EQ(wire_rd_remaining(&r), 0);
		CHECK(r.pos <= cut);
		/* k: the first field that does not fit before the cut. */
		for (k = 0; k < 9 && good_at[k + 1] <= cut; k++)
			;
		CHECK(k < 9);
		CHECK_EQ(rec_nonzero_from(&o, k), 0);
		if (k > 0)
			CHECK(o.a == good.a);
		if (k > 4)
			CHECK(o.v == good.v && o.d == good.d);
		/* Later calls fail too, even a read of nothing. */
		CHECK(wire_rd_bytes(&r, 0) == NULL);
		CHECK_EQ(wire_rd_u8(&r), 0);
		free(in);
	}
}

/* Every capacity short of the record: WIRE_SHORT, at most cap bytes written, nothing past it
 * (a canary after the buffer), and what was written is a prefix of the full record. */
static void test_record_every_capacity(void)
{
	uint8_t full[REC_LEN], buf[REC_LEN + 8];
	struct wire_wr w;
	size_t cap, i;

	wire_wr_init(&w, full, sizeof(full));
	rec_write(&w);
	for (cap = 0; cap < REC_LEN; cap++) {
		memset(buf, 0xa5, sizeof(buf));
		wire_wr_init(&w, buf, cap);
		rec_write(&w);
		CHECK_EQ(wire_wr_err(&w), WIRE_SHORT);
		CHECK(wire_wr_len(&w) <= cap);
		CHECK_EQ(wire_wr_remaining(&w), 0);
		CHECK_MEM(buf, full, wire_wr_len(&w));
		for (i = wire_wr_len(&w); i < sizeof(buf); i++)
			if (buf[i] != 0xa5)
				break;
		CHECK_EQ(i, sizeof(buf));
		/* Sticky: a write that would fit the room a smaller field left does nothing. */
		wire_wr_bytes(&w, "", 0);
		CHECK(wire_wr_reserve(&w, 0) == NULL);
	}
}

static void test_lengths_and_misc(void)
{
	static uint8_t big[70000], src[65536];
	uint8_t buf[16];
	const uint8_t *p;
	size_t n;
	struct wire_wr w;
	struct wire_rd r;

	/* A string longer than its prefix allows is invalid, and nothing is written. */
	wire_wr_init(&w, big, sizeof(big));
	wire_wr_str8(&w, src, 256);
	CHECK_EQ(wire_wr_err(&w), WIRE_INVALID);
	CHECK_EQ(wire_wr_len(&w), 0);
	wire_wr_init(&w, big, sizeof(big));
	wire_wr_str16(&w, src, 65536);
	CHECK_EQ(wire_wr_err(&w), WIRE_INVALID);
	wire_wr_init(&w, big, sizeof(big));
	wire_wr_str16(&w, src, 65535);
	CHECK(wire_wr_ok(&w));
	CHECK_EQ(wire_wr_len(&w), 65537);
	/* A u64 that does not fit writes none of its bytes. */
	memset(buf, 0, sizeof(buf));
	wire_wr_init(&w, buf, 7);
	wire_wr_u64(&w, UINT64_MAX);
	CHECK_EQ(wire_wr_err(&w), WIRE_SHORT);
	CHECK_EQ(buf[0], 0);
	/* NULL input is empty; NULL output has no room. */
	wire_rd_init(&r, NULL, 99);
	CHECK_EQ(wire_rd_remaining(&r), 0);
	p = wire_rd_rest(&r, &n);
	CHECK(p != NULL && n == 0 && wire_rd_ok(&r));
	CHECK_EQ(wire_rd_u8(&r), 0);
	CHECK_EQ(wire_rd_err(&r), WIRE_SHORT);
	wire_wr_init(&w, NULL, 99);
	wire_wr_bytes(&w, NULL, 0);
	CHECK(wire_wr_ok(&w));
	wire_wr_u8(&w, 1);
	CHECK_EQ(wire_wr_err(&w), WIRE_SHORT);
	/* skip, rest, and a caller's own failure keeps the first error. */
	wire_rd_init(&r, (const uint8_t *)"abcdef", 6);
	wire_rd_skip(&r, 2);
	p = wire_rd_rest(&r, &n);
	CHECK(n == 4 && p && memcmp(p, "cdef", 4) == 0);
	wire_rd_fail(&r, WIRE_INVALID);
	wire_rd_fail(&r, WIRE_SHORT);
	CHECK_EQ(wire_rd_err(&r), WIRE_INVALID);
	/* A str whose length runs past the end is short, and *n is 0. */
	{
		static const uint8_t short_str[] = {0x05, 'a', 'b'};

		wire_rd_init(&r, short_str, sizeof(short_str));
	}
	p = wire_rd_str8(&r, &n);
	CHECK(p == NULL && n == 0 && wire_rd_err(&r) == WIRE_SHORT);
	CHECK_EQ(r.pos, 1);
}

int main(void)
{
	test_be_order();
	test_varint();
	test_record_roundtrip();
	test_record_every_truncation();
	test_record_every_capacity();
	test_lengths_and_misc();
	CHECK_DONE();
}
