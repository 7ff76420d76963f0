/* ws_frame.c - sans-I/O WebSocket server side (RFC 6455) for MQTT over WebSocket: the opening
 * handshake (§4.2) and the client frames (§5), see ws_frame.h. MQTT 5 §6.0: MQTT packets travel
 * in binary data frames, the subprotocol is "mqtt", and a text frame closes the connection. */
#include "ws_frame.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

/* RFC 6455 §1.3: the GUID appended to the client's key. */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* The header fields of a request head that matter to the upgrade. */
struct ws_req {
	const char *key;
	size_t keylen;
	bool upgrade, connection, version13, mqtt, host;
};

int ws_accept_of(const char *key, size_t keylen, char out[static WS_ACCEPT_LEN + 1])
{
	unsigned char in[64], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (keylen > sizeof(in) - (sizeof(ws_guid) - 1))
		return -1;
	memcpy(in, key, keylen);
	memcpy(in + keylen, ws_guid, sizeof(ws_guid) - 1);
	if (EVP_Digest(in, keylen + sizeof(ws_guid) - 1, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
		return -1;
	/* 20 bytes -> 28 base64 characters and a NUL */
	return EVP_EncodeBlock((unsigned char *)out, md, 20) == WS_ACCEPT_LEN ? 0 : -1;
}

static bool ws_is_space(char c)
{
	return c == ' ' || c == '\t';
}

/* Does the comma-separated list v[0..n) hold token (RFC 9110 §5.6.1)? */
static bool ws_has_token(const char *v, size_t n, const char *token, bool nocase)
{
	size_t i = 0, start, end, tl = strlen(token);

	while (i < n) {
		while (i < n && (ws_is_space(v[i]) || v[i] == ','))
			i++;
		start = i;
		while (i < n && v[i] != ',')
			i++;
		end = i;
		while (end > start && ws_is_space(v[end - 1]))
			end--;
		if (end - start == tl &&
		    (nocase ? strncasecmp(v + start, token, tl) == 0 : strncmp(v + start, token, tl) == 0))
			return true;
	}
	return false;
}

/* A Sec-WebSocket-Key is base64 of 16 bytes: 22 characters and "==" (RFC 6455 §4.1 item 7). */
static bool ws_key_ok(const char *k, size_t n)
{
	size_t i;

	if (n != 24 || k[22] != '=' || k[23] != '=')
		return false;
	for (i = 0; i < 22; i++)
		if (!((k[i] >= 'A' && k[i] <= 'Z') || (k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') ||
		      k[i] == '+' || k[i] == '/'))
			return false;
	return true;
}

/* One header line name: value (without its CRLF) into r. */
static void ws_header(struct ws_req *r, const char *line, size_t n)
{
	const char *colon = memchr(line, ':', n), *v;
	size_t nl, vl;

	if (!colon)
		return;
	nl = (size_t)(colon - line);
	v = colon + 1;
	vl = n - nl - 1;
	while (vl && ws_is_space(*v))
		v++, vl--;
	while (vl && ws_is_space(v[vl - 1]))
		vl--;
#define WS_NAME(s) (nl == sizeof(s) - 1 && strncasecmp(line, s, nl) == 0)
	if (WS_NAME("Upgrade"))
		r->upgrade = ws_has_token(v, vl, "websocket", true);
	else if (WS_NAME("Connection"))
		r->connection = ws_has_token(v, vl, "upgrade", true);
	else if (WS_NAME("Sec-WebSocket-Version"))
		r->version13 = vl == 2 && memcmp(v, "13", 2) == 0;
	else if (WS_NAME("Sec-WebSocket-Key"))
		r->key = v, r->keylen = vl;
	else if (WS_NAME("Sec-WebSocket-Protocol"))
		r->mqtt |= ws_has_token(v, vl, "mqtt", false);
	else if (WS_NAME("Host"))
		r->host = true;
#undef WS_NAME
}

/* The request line "GET <target> HTTP/1.1": does target (up to a '?') equal path? *status and
 * *why set when the line is not a GET of HTTP/1.1 or the path differs. */
static bool ws_request_line(const char *p, size_t n, const char *path, unsigned *status, const char **why)
{
	const char *sp, *target;
	size_t tl, pl = strlen(path);

	if (n < 4 || memcmp(p, "GET ", 4) != 0) {
		*status = 400, *why = "not a WebSocket upgrade (not a GET request)";
		return false;
	}
	target = p + 4;
	sp = memchr(target, ' ', n - 4);
	if (!sp || (size_t)(p + n - sp) != sizeof(" HTTP/1.1") - 1 || memcmp(sp, " HTTP/1.1", 9) != 0) {
		*status = 400, *why = "not a WebSocket upgrade (not HTTP/1.1)";
		return false;
	}
	tl = (size_t)(sp - target);
	if (!(tl == pl || (tl > pl && target[pl] == '?')) || memcmp(target, path, pl) != 0) {
		*status = 404, *why = "request for another path than the listener's websocket.path";
		return false;
	}
	return true;
}

/* After the head is read: is it an upgrade we accept? */
static enum ws_hs_result ws_verdict(const struct ws_req *r, unsigned *status, const char **why)
{
	*status = 400;
	if (!r->upgrade || !r->connection)
		*why = "not a WebSocket upgrade (no Upgrade: websocket and Connection: Upgrade)";
	else if (!r->version13)
		*status = 426, *why = "WebSocket version other than 13";
	else if (!r->key || !ws_key_ok(r->key, r->keylen))
		*why = "missing or malformed Sec-WebSocket-Key";
	else if (!r->host)
		*why = "no Host header";
	else if (!r->mqtt)
		*why = "subprotocol mqtt not offered (Sec-WebSocket-Protocol)";
	else
		return WS_HS_OK;
	return WS_HS_BAD;
}

enum ws_hs_result ws_handshake_parse(const uint8_t *p, size_t n, const char *path, size_t *used,
				     char accept[static WS_ACCEPT_LEN + 1], unsigned *status, const char **why)
{
	const char *s = (const char *)p, *end = NULL, *line, *eol;
	struct ws_req r = {0};
	size_t i, lim = n < WS_HANDSHAKE_MAX ? n : WS_HANDSHAKE_MAX;

	for (i = 3; i < lim && !end; i++)
		if (s[i - 3] == '\r' && s[i - 2] == '\n' && s[i - 1] == '\r' && s[i] == '\n')
			end = s + i + 1;
	if (!end) {
		if (n < WS_HANDSHAKE_MAX)
			return WS_HS_NEED_MORE;
		*status = 400, *why = "request head larger than 8 KiB";
		return WS_HS_BAD;
	}
	eol = memchr(s, '\r', (size_t)(end - s));
	if (!ws_request_line(s, (size_t)(eol - s), path, status, why))
		return WS_HS_BAD;
	for (line = eol + 2; line < end - 2; line = eol + 2) {
		eol = memchr(line, '\r', (size_t)(end - line));
		ws_header(&r, line, (size_t)(eol - line));
	}
	if (ws_verdict(&r, status, why) != WS_HS_OK || !r.key) /* ws_verdict checked the key */
		return WS_HS_BAD;
	if (ws_accept_of(r.key, r.keylen, accept) != 0) {
		*status = 500, *why = "SHA-1 failed";
		return WS_HS_BAD;
	}
	*used = (size_t)(end - s);
	return WS_HS_OK;
}

size_t ws_handshake_response(const char accept[static WS_ACCEPT_LEN + 1], char *out, size_t cap)
{
	int n = snprintf(out, cap,
			 "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
			 "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
			 accept);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

size_t ws_handshake_refusal(unsigned status, const char *why, char *out, size_t cap)
{
	const char *text = status == 404 ? "Not Found" : status == 426 ? "Upgrade Required"
					 : status == 500 ? "Internal Server Error" : "Bad Request";
	int n = snprintf(out, cap,
			 "HTTP/1.1 %u %s\r\nContent-Type: text/plain\r\nConnection: close\r\n%s"
			 "Content-Length: %zu\r\n\r\n%s\n",
			 status, text, status == 426 ? "Sec-WebSocket-Version: 13\r\n" : "", strlen(why) + 1, why);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

size_t ws_frame_header(uint8_t out[static 10], enum ws_opcode op, uint64_t len)
{
	int i;

	out[0] = (uint8_t)(0x80 | op);
	if (len < 126) {
		out[1] = (uint8_t)len;
		return 2;
	}
	if (len <= 0xFFFF) {
		out[1] = 126;
		out[2] = (uint8_t)(len >> 8);
		out[3] = (uint8_t)len;
		return 4;
	}
	out[1] = 127;
	for (i = 0; i < 8; i++)
		out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
	return 10;
}

static enum ws_event ws_fail(struct ws_decoder *d, uint16_t code, const char *why)
{
	d->close_code = code;
	d->why = why;
	return WS_EV_ERROR;
}

/* Checks a header's first byte pair (RFC 6455 §5.2, §5.4, §5.5; MQTT 5 §6.0). */
static enum ws_event ws_check_header(struct ws_decoder *d, uint8_t b0, uint64_t len)
{
	uint8_t op = b0 & 0x0F;
	bool fin = (b0 & 0x80) != 0;

	if (b0 & 0x70)
		return ws_fail(d, WS_CLOSE_PROTOCOL, "reserved bits set (no extension was negotiated)");
	if (op >= WS_OP_CLOSE) {
		if (op > WS_OP_PONG)
			return ws_fail(d, WS_CLOSE_PROTOCOL, "unknown control opcode");
		if (!fin || len > WS_CONTROL_MAX)
			return ws_fail(d, WS_CLOSE_PROTOCOL, "fragmented or oversized control frame");
		return WS_EV_NONE;
	}
	if (op == WS_OP_TEXT)
		return ws_fail(d, WS_CLOSE_UNSUPPORTED, "text frame (MQTT travels in binary frames)");
	if (op != WS_OP_BINARY && op != WS_OP_CONT)
		return ws_fail(d, WS_CLOSE_PROTOCOL, "unknown data opcode");
	if ((op == WS_OP_CONT) != d->in_message)
		return ws_fail(d, WS_CLOSE_PROTOCOL,
			       op == WS_OP_CONT ? "continuation without a message" : "new message inside a fragmented one");
	if (len > d->max_frame)
		return ws_fail(d, WS_CLOSE_TOO_BIG, "frame larger than listen.max_packet_size");
	d->in_message = !fin;
	return WS_EV_NONE;
}

/* Payload length and header size, or WS_EV_NONE with *hlen 0 when the header is incomplete. */
static enum ws_event ws_header_len(struct ws_decoder *d, const uint8_t *in, size_t n, size_t *hlen,
				   uint64_t *len)
{
	uint8_t l7 = in[1] & 0x7F;
	size_t ext = l7 == 126 ? 2 : l7 == 127 ? 8 : 0, i;

	*hlen = 0;
	if (n < 2 + ext + 4)
		return WS_EV_NONE;
	*len = l7;
	if (ext) {
		*len = 0;
		for (i = 0; i < ext; i++)
			*len = (*len << 8) | in[2 + i];
		/* §5.2: the most significant bit must be 0, and the minimal length form be used */
		if ((ext == 8 && (*len >> 63)) || (ext == 2 && *len < 126) || (ext == 8 && *len <= 0xFFFF))
			return ws_fail(d, WS_CLOSE_PROTOCOL, "non-minimal or invalid payload length");
	}
	*hlen = 2 + ext + 4;
	return WS_EV_NONE;
}

static void ws_unmask(struct ws_decoder *d, const uint8_t *in, uint8_t *out, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		out[i] = in[i] ^ d->mask[d->mask_pos];
		d->mask_pos = (uint8_t)((d->mask_pos + 1) & 3);
	}
}

/* A complete control frame at in (header hlen, payload len): unmasked into d->ctl. */
static enum ws_event ws_control(struct ws_decoder *d, const uint8_t *in, size_t hlen, size_t len)
{
	uint8_t op = in[0] & 0x0F;

	memcpy(d->mask, in + hlen - 4, 4);
	d->mask_pos = 0;
	ws_unmask(d, in + hlen, d->ctl, len);
	d->ctl_len = (uint8_t)len;
	if (op == WS_OP_PING)
		return WS_EV_PING;
	if (op == WS_OP_PONG)
		return WS_EV_PONG;
	if (len == 1)
		return ws_fail(d, WS_CLOSE_PROTOCOL, "close frame with a one-byte body");
	d->close_code = len >= 2 ? (uint16_t)((unsigned)d->ctl[0] << 8 | d->ctl[1]) : (uint16_t)0;
	return WS_EV_CLOSE;
}

enum ws_event ws_decode(struct ws_decoder *d, const uint8_t *in, size_t n, size_t *used, uint8_t *out,
			size_t cap, size_t *produced)
{
	size_t hlen = 0, k;
	uint64_t len = 0;

	*used = *produced = 0;
	if (d->in_frame) {
		k = n < cap ? n : cap;
		if (k > d->left)
			k = (size_t)d->left;
		if (k == 0 && d->left != 0)
			return WS_EV_NONE;
		ws_unmask(d, in, out, k);
		d->left -= k;
		d->in_frame = d->left != 0;
		*used = *produced = k;
		return WS_EV_DATA;
	}
	if (n < 2)
		return WS_EV_NONE;
	if (!(in[1] & 0x80)) /* known from the second byte: an unmasked frame's header is shorter */
		return ws_fail(d, WS_CLOSE_PROTOCOL, "unmasked client frame");
	if (ws_header_len(d, in, n, &hlen, &len) == WS_EV_ERROR)
		return WS_EV_ERROR;
	if (hlen == 0)
		return WS_EV_NONE; /* nothing decided before the header is whole: any split works */
	/* a data header is consumed at once; a control frame's check changes no state */
	if (ws_check_header(d, in[0], len) == WS_EV_ERROR)
		return WS_EV_ERROR;
	if ((in[0] & 0x0F) >= WS_OP_CLOSE) {
		if (n < hlen + len)
			return WS_EV_NONE;
		*used = hlen + (size_t)len;
		return ws_control(d, in, hlen, (size_t)len);
	}
	memcpy(d->mask, in + hlen - 4, 4);
	d->mask_pos = 0;
	d->left = len;
	d->in_frame = len != 0;
	*used = hlen;
	return WS_EV_DATA;
}
