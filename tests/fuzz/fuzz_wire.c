/* fuzz_wire.c - libFuzzer target for the checked byte cursor (wire/wire.h). The input is a script:
 * byte 0 is the number of operations n, bytes 1..n pick them (u8, u16, u32, u64, varint, str8,
 * str16, bytes, skip, rest), byte n+1 the capacity of a write cursor, and the rest is the data the
 * read cursor runs over (copied to a buffer of exactly its size, so ASan sees any read past it).
 * Each operation is checked against a plain reference model of where the read must end; every value
 * read is written again into the write cursor, so when neither cursor failed the bytes written are
 * the bytes consumed (varints are accepted only in their shortest form). Invariants that would mean a cursor
 * bug abort: a read that succeeds where the model says it cannot or the reverse, a value that differs from
 * the bytes, a failed cursor that returns anything, pos past len, a write past the capacity. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_OPS 10

/* Big-endian value of n bytes at b (the reference). */
static uint64_t fz_be(const uint8_t *b, size_t n)
{
	uint64_t v = 0;
	size_t i;

	for (i = 0; i < n; i++)
		v = v << 8 | b[i];
	return v;
}

/* Runs one read operation on r and writes what it got into w; the model says where it must end
 * (fixed-size fields and length prefixes only; varints are checked by value below). */
static void fz_op(uint8_t op, uint8_t arg, struct wire_rd *r, struct wire_wr *w)
{
	static const size_t width[] = {1, 2, 4, 8};
	size_t start = r->pos, left = wire_rd_remaining(r), n = 0;
	bool was_ok = wire_rd_ok(r);
	const uint8_t *p;
	uint64_t v;

	switch (op % FZ_OPS) {
	case 0:
	case 1:
	case 2:
	case 3: {
		size_t k = width[op % FZ_OPS];

		v = k == 1   ? wire_rd_u8(r)
		    : k == 2 ? wire_rd_u16(r)
		    : k == 4 ? wire_rd_u32(r)
			     : wire_rd_u64(r);
		if (wire_rd_ok(r) != (was_ok && k <= left))
			abort();
		if (wire_rd_ok(r) && (r->pos != start + k || v != fz_be(r->p + start, k)))
			abort();
		if (!wire_rd_ok(r) && v != 0)
			abort();
		if (k == 1)
			wire_wr_u8(w, (uint8_t)v);
		else if (k == 2)
			wire_wr_u16(w, (uint16_t)v);
		else if (k == 4)
			wire_wr_u32(w, (uint32_t)v);
		else
			wire_wr_u64(w, v);
		return;
	}
	case 4:
		v = wire_rd_varint(r);
		if (wire_rd_ok(r) && (r->pos - start < 1 || r->pos - start > 4 || v > WIRE_VARINT_MAX ||
				      wire_varint_size((uint32_t)v) != r->pos - start))
			abort(); /* accepted only in its shortest form */
		if (!wire_rd_ok(r) && v != 0)
			abort();
		wire_wr_varint(w, (uint32_t)v);
		return;
	case 5:
	case 6:
		p = op % FZ_OPS == 5 ? wire_rd_str8(r, &n) : wire_rd_str16(r, &n);
		if (!wire_rd_ok(r) && (p || n))
			abort();
		if (p && (r->pos != start + (op % FZ_OPS == 5 ? 1 : 2) + n || p != r->p + r->pos - n))
			abort();
		if (op % FZ_OPS == 5)
			wire_wr_str8(w, p, n);
		else
			wire_wr_str16(w, p, n);
		return;
	case 7:
	case 8:
		if (op % FZ_OPS == 7) {
			p = wire_rd_bytes(r, arg);
		} else {
			wire_rd_skip(r, arg);
			p = wire_rd_ok(r) ? r->p + start : NULL;
		}
		if ((p != NULL) != (was_ok && arg <= left) || (p && r->pos != start + arg))
			abort();
		wire_wr_bytes(w, p, p ? arg : 0);
		return;
	default:
		p = wire_rd_rest(r, &n);
		if ((p != NULL) != was_ok || (p && (n != left || wire_rd_remaining(r) != 0)))
			abort();
		wire_wr_bytes(w, p, p ? n : 0);
		return;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *in, out[256 + 8];
	size_t nops, i, len;
	struct wire_rd r;
	struct wire_wr w;

	if (size < 2 || (nops = data[0]) + 2 > size)
		return 0;
	len = size - nops - 2;
	in = malloc(len ? len : 1);
	if (!in)
		return 0;
	memcpy(in, data + nops + 2, len);
	memset(out, 0xa5, sizeof(out));
	wire_rd_init(&r, in, len);
	wire_wr_init(&w, out, data[nops + 1]);
	for (i = 0; i < nops; i++) {
		fz_op(data[1 + i], data[1 + (i + 1) % nops], &r, &w);
		if (r.pos > r.len || r.len > len || wire_wr_len(&w) > data[nops + 1])
			abort();
	}
	/* Round trip: what was read, written again, is the input it came from. */
	if (wire_rd_ok(&r) && wire_wr_ok(&w) && (wire_wr_len(&w) != r.pos || memcmp(out, in, r.pos) != 0))
		abort();
	/* Sticky: a failed cursor gives nothing, not even 0 bytes. */
	if (!wire_rd_ok(&r) && (wire_rd_bytes(&r, 0) || wire_rd_u8(&r) || wire_rd_remaining(&r)))
		abort();
	for (i = data[nops + 1]; i < sizeof(out); i++)
		if (out[i] != 0xa5)
			abort(); /* written past the capacity */
	free(in);
	return 0;
}
