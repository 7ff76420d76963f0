/* wire.h - one checked byte cursor for reading and writing wire fields: the MQTT codec
 * (proxy/mqtt/), the envelope (crypto/envelope.c) and the key-exchange messages (crypto/announce*.c,
 * crypto/presence.c) read and write their big-endian integers, MQTT Variable Byte Integers,
 * length-prefixed strings and byte runs through it (STYLE habit 2).
 *
 * Pure and header-only: no I/O, no allocation, no state beyond the cursor itself. Every function
 * is static inline, because the codec runs it once per field of every packet.
 *
 * The error is sticky. A read that would run past the end (or a write past the capacity) records
 * WIRE_SHORT, a malformed varint or an over-long length prefix records WIRE_INVALID, and from then
 * on every read returns 0 / NULL (even one of 0 bytes) and every write does nothing. A write that
 * does not fit writes none of its bytes (a str16 or a u64 is all or nothing). A caller reads (or
 * writes) a whole record and checks wire_rd_ok / wire_wr_ok once at the end; the values it read on
 * the way are zero, never bytes from outside the buffer. The first error is kept; pos stays where
 * it occurred.
 *
 * A failure closes the cursor by setting len (cap) to pos, so that each call costs one comparison
 * of n against what is left, and no separate test of the flag. */
#ifndef PX_WIRE_H
#define PX_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum wire_err {
	WIRE_OK = 0,
	WIRE_SHORT,   /* a read past the end of the input, or a write past the capacity */
	WIRE_INVALID, /* a malformed or over-long varint, or a string longer than its prefix allows */
};

/* The MQTT Variable Byte Integer (MQTT 5 §1.5.5): at most 4 bytes, at most 268,435,455. */
#define WIRE_VARINT_MAX_LEN 4
#define WIRE_VARINT_MAX	    268435455u

/* ---- read cursor ---- */

struct wire_rd {
	const uint8_t *p;
	size_t len;
	size_t pos;
	enum wire_err err;
};

/* A cursor over p[0..len). A NULL p is an empty input (len is then ignored). */
static inline void wire_rd_init(struct wire_rd *r, const uint8_t *p, size_t len)
{
	r->p = p ? p : (const uint8_t *)"";
	r->len = p ? len : 0;
	r->pos = 0;
	r->err = WIRE_OK;
}

static inline bool wire_rd_ok(const struct wire_rd *r)
{
	return r->err == WIRE_OK;
}

static inline enum wire_err wire_rd_err(const struct wire_rd *r)
{
	return r->err;
}

/* Bytes left to read; 0 once the cursor has failed. */
static inline size_t wire_rd_remaining(const struct wire_rd *r)
{
	return r->len - r->pos;
}

/* Records err (the first one is kept) and closes the cursor. Also for a caller's own checks of a
 * field's content (a charset, a range), so that they share the one final check. */
static inline void wire_rd_fail(struct wire_rd *r, enum wire_err err)
{
	if (r->err == WIRE_OK)
		r->err = err;
	r->len = r->pos;
}

/* n bytes as a view into the input; NULL if fewer than n are left. */
static inline const uint8_t *wire_rd_bytes(struct wire_rd *r, size_t n)
{
	const uint8_t *b;

	if (n > r->len - r->pos || r->err != WIRE_OK) {
		wire_rd_fail(r, WIRE_SHORT);
		return NULL;
	}
	b = r->p + r->pos;
	r->pos += n;
	return b;
}

/* Copies n bytes into dst; on failure dst is zeroed. */
static inline void wire_rd_copy(struct wire_rd *r, void *dst, size_t n)
{
	const uint8_t *b = wire_rd_bytes(r, n);

	if (b)
		memcpy(dst, b, n);
	else if (n)
		memset(dst, 0, n);
}

static inline void wire_rd_skip(struct wire_rd *r, size_t n)
{
	(void)wire_rd_bytes(r, n);
}

/* Everything that is left, as a view (*n bytes); the cursor is then at the end. */
static inline const uint8_t *wire_rd_rest(struct wire_rd *r, size_t *n)
{
	*n = wire_rd_remaining(r);
	return wire_rd_bytes(r, *n);
}

static inline uint8_t wire_rd_u8(struct wire_rd *r)
{
	const uint8_t *b = wire_rd_bytes(r, 1);

	return b ? b[0] : 0;
}

static inline uint16_t wire_rd_u16(struct wire_rd *r)
{
	const uint8_t *b = wire_rd_bytes(r, 2);

	return b ? (uint16_t)((unsigned)b[0] << 8 | b[1]) : 0;
}

static inline uint32_t wire_rd_u32(struct wire_rd *r)
{
	const uint8_t *b = wire_rd_bytes(r, 4);

	return b ? (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3] : 0;
}

static inline uint64_t wire_rd_u64(struct wire_rd *r)
{
	uint64_t hi = wire_rd_u32(r);
	uint32_t lo = wire_rd_u32(r);

	return wire_rd_ok(r) ? hi << 32 | lo : 0;
}

/* Decodes the MQTT Variable Byte Integer at b[0..avail) without a cursor (the frame parser's
 * streaming case): WIRE_OK with *v and *used (1..4), WIRE_SHORT if b ends inside it, WIRE_INVALID
 * if it is longer than needed [MQTT-1.5.5-1] or its 4th byte asks for a 5th. */
static inline enum wire_err wire_varint_decode(const uint8_t *b, size_t avail, uint32_t *v, size_t *used)
{
	uint32_t x = 0;
	size_t i;

	for (i = 0; i < WIRE_VARINT_MAX_LEN; i++) {
		if (i >= avail)
			return WIRE_SHORT;
		x |= (uint32_t)(b[i] & 0x7F) << (7 * i);
		if (b[i] & 0x80)
			continue;
		if (i > 0 && b[i] == 0)
			return WIRE_INVALID; /* a longer form of a smaller number */
		*v = x;
		*used = i + 1;
		return WIRE_OK;
	}
	return WIRE_INVALID;
}

/* An MQTT Variable Byte Integer at the cursor (wire_varint_decode's errors). */
static inline uint32_t wire_rd_varint(struct wire_rd *r)
{
	uint32_t v = 0;
	size_t used = 0;
	enum wire_err err = wire_varint_decode(r->p + r->pos, r->len - r->pos, &v, &used);

	if (err != WIRE_OK) {
		wire_rd_fail(r, err);
		return 0;
	}
	r->pos += used;
	return v;
}

/* A one-byte (str8) or two-byte (str16, MQTT's UTF-8 string and binary data) length and that many
 * bytes, as a view; *n is its length (0 on failure). The content is not checked here. */
static inline const uint8_t *wire_rd_str8(struct wire_rd *r, size_t *n)
{
	const uint8_t *b;

	*n = wire_rd_u8(r);
	b = wire_rd_bytes(r, *n);
	if (!b)
		*n = 0;
	return b;
}

static inline const uint8_t *wire_rd_str16(struct wire_rd *r, size_t *n)
{
	const uint8_t *b;

	*n = wire_rd_u16(r);
	b = wire_rd_bytes(r, *n);
	if (!b)
		*n = 0;
	return b;
}

/* ---- write cursor ---- */

struct wire_wr {
	uint8_t *p;
	size_t cap;
	size_t pos;
	enum wire_err err;
};

/* A cursor over p[0..cap). A NULL p has no room (every non-empty write fails); p then points at
 * the cursor itself, so that an empty write never does arithmetic on a NULL pointer. */
static inline void wire_wr_init(struct wire_wr *w, uint8_t *p, size_t cap)
{
	w->p = p ? p : (uint8_t *)w;
	w->cap = p ? cap : 0;
	w->pos = 0;
	w->err = WIRE_OK;
}

static inline bool wire_wr_ok(const struct wire_wr *w)
{
	return w->err == WIRE_OK;
}

static inline enum wire_err wire_wr_err(const struct wire_wr *w)
{
	return w->err;
}

/* Bytes written so far. */
static inline size_t wire_wr_len(const struct wire_wr *w)
{
	return w->pos;
}

/* Room left; 0 once the cursor has failed. */
static inline size_t wire_wr_remaining(const struct wire_wr *w)
{
	return w->cap - w->pos;
}

static inline void wire_wr_fail(struct wire_wr *w, enum wire_err err)
{
	if (w->err == WIRE_OK)
		w->err = err;
	w->cap = w->pos;
}

/* Reserves n bytes for the caller to fill (e.g. a ciphertext written in place); NULL if there is
 * no room. */
static inline uint8_t *wire_wr_reserve(struct wire_wr *w, size_t n)
{
	uint8_t *b;

	if (n > w->cap - w->pos || w->err != WIRE_OK) {
		wire_wr_fail(w, WIRE_SHORT);
		return NULL;
	}
	b = w->p + w->pos;
	w->pos += n;
	return b;
}

static inline void wire_wr_bytes(struct wire_wr *w, const void *src, size_t n)
{
	uint8_t *b = wire_wr_reserve(w, n);

	if (b && n)
		memcpy(b, src, n);
}

static inline void wire_wr_u8(struct wire_wr *w, uint8_t v)
{
	uint8_t *b = wire_wr_reserve(w, 1);

	if (b)
		b[0] = v;
}

static inline void wire_wr_u16(struct wire_wr *w, uint16_t v)
{
	uint8_t *b = wire_wr_reserve(w, 2);

	if (b) {
		b[0] = (uint8_t)(v >> 8);
		b[1] = (uint8_t)v;
	}
}

static inline void wire_wr_u32(struct wire_wr *w, uint32_t v)
{
	uint8_t *b = wire_wr_reserve(w, 4);

	if (b) {
		b[0] = (uint8_t)(v >> 24);
		b[1] = (uint8_t)(v >> 16);
		b[2] = (uint8_t)(v >> 8);
		b[3] = (uint8_t)v;
	}
}

static inline void wire_wr_u64(struct wire_wr *w, uint64_t v)
{
	if (wire_wr_remaining(w) < 8) {
		wire_wr_fail(w, WIRE_SHORT);
		return;
	}
	wire_wr_u32(w, (uint32_t)(v >> 32));
	wire_wr_u32(w, (uint32_t)v);
}

/* Bytes of the MQTT Variable Byte Integer for v: 1..4, 0 if v > WIRE_VARINT_MAX. */
static inline size_t wire_varint_size(uint32_t v)
{
	if (v < 128u)
		return 1;
	if (v < 16384u)
		return 2;
	if (v < 2097152u)
		return 3;
	return v <= WIRE_VARINT_MAX ? 4 : 0;
}

/* The shortest form of v; WIRE_INVALID if v > WIRE_VARINT_MAX. */
static inline void wire_wr_varint(struct wire_wr *w, uint32_t v)
{
	size_t n = wire_varint_size(v), i;
	uint8_t *b;

	if (n == 0) {
		wire_wr_fail(w, WIRE_INVALID);
		return;
	}
	if (!(b = wire_wr_reserve(w, n)))
		return;
	for (i = 0; i < n; i++, v >>= 7)
		b[i] = (uint8_t)((v & 0x7F) | (i + 1 < n ? 0x80 : 0));
}

/* str8 / str16: the length, then the bytes; WIRE_INVALID if n does not fit the prefix. */
static inline void wire_wr_str8(struct wire_wr *w, const void *src, size_t n)
{
	if (n > UINT8_MAX) {
		wire_wr_fail(w, WIRE_INVALID);
		return;
	}
	if (n + 1 > wire_wr_remaining(w)) {
		wire_wr_fail(w, WIRE_SHORT);
		return;
	}
	wire_wr_u8(w, (uint8_t)n);
	wire_wr_bytes(w, src, n);
}

static inline void wire_wr_str16(struct wire_wr *w, const void *src, size_t n)
{
	if (n > UINT16_MAX) {
		wire_wr_fail(w, WIRE_INVALID);
		return;
	}
	if (n + 2 > wire_wr_remaining(w)) {
		wire_wr_fail(w, WIRE_SHORT);
		return;
	}
	wire_wr_u16(w, (uint16_t)n);
	wire_wr_bytes(w, src, n);
}

#endif
