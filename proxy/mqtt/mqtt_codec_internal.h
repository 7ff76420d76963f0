/* mqtt_codec_internal.h - what the px_mqtt sources share and nobody else sees: MQTT's views on top
 * of the checked wire cursor (wire/wire.h: every read checks pos + n <= len before touching a
 * byte, the error is sticky, STYLE habit 2), the end check of encoders that write into buffers
 * they sized themselves, and the few cross-file helpers (trailing '_'). */
#ifndef PX_MQTT_CODEC_INTERNAL_H
#define PX_MQTT_CODEC_INTERNAL_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mqtt_codec.h"
#include "wire.h"

/* MQTT strings and binary data carry a two-byte length (MQTT 5 §1.5.4, §1.5.6). */
#define MQTT_STR_MAX 65535u

/* ---- reading and writing: the wire cursor (wire/wire.h), plus MQTT's views ---- */

/* A two-byte length + bytes (UTF-8 string or binary data, §1.5.4, §1.5.6) as a view; the caller
 * validates UTF-8. An empty view when the cursor failed. */
static inline struct mqtt_buf mqtt_rd_bin_(struct wire_rd *r)
{
	struct mqtt_buf b;

	b.p = wire_rd_str16(r, &b.len);
	return b;
}

/* All that is left, as a view. */
static inline struct mqtt_buf mqtt_rd_rest_(struct wire_rd *r)
{
	struct mqtt_buf b;

	b.p = wire_rd_rest(r, &b.len);
	return b;
}

/* Two-byte length + bytes; the caller checked len <= MQTT_STR_MAX when it sized the buffer. */
static inline void mqtt_wr_bin_(struct wire_wr *w, struct mqtt_buf b)
{
	assert(b.len <= MQTT_STR_MAX);
	wire_wr_str16(w, b.p, b.len);
}

/* Ends an encoder: the buffer was sized by the matching _size function, so anything but an exact
 * fill is a bug in this codec. Returns the bytes written (0 if it somehow did not fit). */
static inline size_t mqtt_wr_done_(const struct wire_wr *w, size_t expected)
{
	assert(wire_wr_ok(w) && wire_wr_len(w) == expected);
	return !wire_wr_ok(w) || wire_wr_len(w) != expected ? 0 : wire_wr_len(w);
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
void mqtt_wr_fixed_(struct wire_wr *w, uint8_t type, uint8_t flags, size_t remaining);

/* mqtt_props.c: reads a length-prefixed property block and validates it for packet_type; the size
 * of a block of len bytes with its length prefix (0 if too large); writes one. */
enum mqtt_parse mqtt_rd_props_(struct wire_rd *r, uint8_t packet_type, struct mqtt_buf *props,
			       const char **why);
size_t mqtt_props_wire_size_(size_t len);
void mqtt_wr_props_(struct wire_wr *w, struct mqtt_buf props);

#endif
