/* mqtt_codec_internal.h - what the px_mqtt sources share and nobody else sees: the checked reader
 * (every read checks pos + n <= len before touching a byte, STYLE habit 2), the writer used by the
 * encoders on buffers they sized themselves, and the few cross-file helpers (trailing '_'). */
#ifndef PX_MQTT_CODEC_INTERNAL_H
#define PX_MQTT_CODEC_INTERNAL_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mqtt_codec.h"

/* MQTT strings and binary data carry a two-byte length (MQTT 5 §1.5.4, §1.5.6). */
#define MQTT_STR_MAX 65535u

/* ---- reader ---- */
struct mqtt_rd {
	const uint8_t *p;
	size_t len;
	size_t pos;
};

static inline void mqtt_rd_init_(struct mqtt_rd *r, const uint8_t *p, size_t len)
{
	r->p = p;
	r->len = p ? len : 0;
	r->pos = 0;
}

static inline size_t mqtt_rd_left_(const struct mqtt_rd *r)
{
	return r->len - r->pos;
}

static inline bool mqtt_rd_u8_(struct mqtt_rd *r, uint8_t *v)
{
	if (mqtt_rd_left_(r) < 1)
		return false;
	*v = r->p[r->pos++];
	return true;
}

static inline bool mqtt_rd_u16_(struct mqtt_rd *r, uint16_t *v)
{
	if (mqtt_rd_left_(r) < 2)
		return false;
	*v = (uint16_t)((unsigned)r->p[r->pos] << 8 | r->p[r->pos + 1]);
	r->pos += 2;
	return true;
}

static inline bool mqtt_rd_u32_(struct mqtt_rd *r, uint32_t *v)
{
	const uint8_t *b;

	if (mqtt_rd_left_(r) < 4)
		return false;
	b = r->p + r->pos;
	*v = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
	r->pos += 4;
	return true;
}

/* n bytes as a view into the input. */
static inline bool mqtt_rd_bytes_(struct mqtt_rd *r, size_t n, struct mqtt_buf *out)
{
	if (mqtt_rd_left_(r) < n)
		return false;
	out->p = r->p + r->pos;
	out->len = n;
	r->pos += n;
	return true;
}

/* Two-byte length + bytes: UTF-8 string or binary data (the caller validates UTF-8). */
static inline bool mqtt_rd_bin_(struct mqtt_rd *r, struct mqtt_buf *out)
{
	uint16_t n;

	return mqtt_rd_u16_(r, &n) && mqtt_rd_bytes_(r, n, out);
}

static inline void mqtt_rd_rest_(struct mqtt_rd *r, struct mqtt_buf *out)
{
	out->p = r->p + r->pos;
	out->len = mqtt_rd_left_(r);
	r->pos = r->len;
}

/* ---- writer: bounds-checked all the same; encoders assert it never overflowed ---- */
struct mqtt_wr {
	uint8_t *p;
	size_t cap;
	size_t pos;
	bool overflow;
};

static inline void mqtt_wr_init_(struct mqtt_wr *w, uint8_t *p, size_t cap)
{
	w->p = p;
	w->cap = cap;
	w->pos = 0;
	w->overflow = false;
}

static inline void mqtt_wr_bytes_(struct mqtt_wr *w, const uint8_t *b, size_t n)
{
	if (w->overflow || w->cap - w->pos < n) {
		w->overflow = true;
		return;
	}
	if (n)
		memcpy(w->p + w->pos, b, n);
	w->pos += n;
}

static inline void mqtt_wr_u8_(struct mqtt_wr *w, uint8_t v)
{
	mqtt_wr_bytes_(w, &v, 1);
}

static inline void mqtt_wr_u16_(struct mqtt_wr *w, uint16_t v)
{
	uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};

	mqtt_wr_bytes_(w, b, 2);
}

/* Two-byte length + bytes; the caller checked len <= MQTT_STR_MAX when it sized the buffer. */
static inline void mqtt_wr_bin_(struct mqtt_wr *w, struct mqtt_buf b)
{
	assert(b.len <= MQTT_STR_MAX);
	mqtt_wr_u16_(w, (uint16_t)b.len);
	mqtt_wr_bytes_(w, b.p, b.len);
}

static inline void mqtt_wr_varint_(struct mqtt_wr *w, uint32_t v)
{
	uint8_t b[MQTT_VARINT_MAX];
	size_t n = mqtt_varint_encode(v, b);

	assert(n > 0);
	mqtt_wr_bytes_(w, b, n);
}

/* Ends an encoder: the buffer was sized by the matching _size function, so anything but an exact
 * fill is a bug in this codec. Returns the bytes written (0 if it somehow overflowed). */
static inline size_t mqtt_wr_done_(const struct mqtt_wr *w, size_t expected)
{
	assert(!w->overflow && w->pos == expected);
	return w->overflow || w->pos != expected ? 0 : w->pos;
}

/* Sets *why and returns MALFORMED: the one way parsers report a problem. */
static inline enum mqtt_parse mqtt_bad_(const char **why, const char *reason)
{
	if (why)
		*why = reason;
	return MQTT_PARSE_MALFORMED;
}

/* ---- cross-file helpers ---- */
/* mqtt_frame.c: size of a whole packet with this remaining length (0 if over MQTT_MAX_REMAINING),
 * and the fixed header writer. */
size_t mqtt_packet_size_(size_t remaining);
void mqtt_wr_fixed_(struct mqtt_wr *w, uint8_t type, uint8_t flags, size_t remaining);

/* mqtt_props.c: reads a length-prefixed property block and validates it for packet_type; the size
 * of a block of len bytes with its length prefix (0 if too large); writes one. */
enum mqtt_parse mqtt_rd_props_(struct mqtt_rd *r, uint8_t packet_type, struct mqtt_buf *props,
			       const char **why);
size_t mqtt_props_wire_size_(size_t len);
void mqtt_wr_props_(struct mqtt_wr *w, struct mqtt_buf props);

#endif
