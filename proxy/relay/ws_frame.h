/* ws_frame.h - sans-I/O WebSocket (RFC 6455) for MQTT over WebSocket on the device side: the
 * server's opening handshake (an HTTP/1.1 Upgrade request in, the 101 answer out) and a streaming
 * decoder of client frames (masked; binary data, continuation, ping, pong, close), plus the
 * headers of the server's frames (unmasked). Bytes come in as arguments, results go out as return
 * values: no socket, no libevent, no clock (STYLE habit 1). ws_filter.c puts it under libevent. */
#ifndef PX_WS_FRAME_H
#define PX_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The whole request head (request line and headers) must fit in this: a browser's is under 2 KiB
 * with cookies of another application on the same host; anything larger is refused (400). */
#define WS_HANDSHAKE_MAX 8192
/* Sec-WebSocket-Accept: base64 of a 20-byte SHA-1 (RFC 6455 §4.2.2), 28 characters. */
#define WS_ACCEPT_LEN 28
/* The 101 answer, with room to spare. */
#define WS_RESPONSE_MAX 256
/* A frame header: 2 bytes, up to 8 of extended length, 4 of masking key (RFC 6455 §5.2). */
#define WS_HEADER_MAX 14
/* Control frames carry at most 125 bytes (RFC 6455 §5.5). */
#define WS_CONTROL_MAX 125

/* Opcodes (RFC 6455 §5.2). */
enum ws_opcode {
	WS_OP_CONT = 0x0,
	WS_OP_TEXT = 0x1,
	WS_OP_BINARY = 0x2,
	WS_OP_CLOSE = 0x8,
	WS_OP_PING = 0x9,
	WS_OP_PONG = 0xA,
};

/* Close codes we send (RFC 6455 §7.4.1). */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_PROTOCOL 1002
#define WS_CLOSE_UNSUPPORTED 1003
#define WS_CLOSE_TOO_BIG 1009

enum ws_hs_result {
	WS_HS_NEED_MORE, /* the request head is not complete yet */
	WS_HS_OK,        /* a valid upgrade: answer with ws_handshake_response */
	WS_HS_BAD,       /* not a WebSocket upgrade we accept: *status (400, 404, 426) and *why */
};

/* Reads the request head at p[0..n). path: the configured request path. On WS_HS_OK, *used is the
 * length of the head (bytes after it are already frames) and accept holds the
 * Sec-WebSocket-Accept value (NUL-terminated). On WS_HS_BAD, *status is the HTTP status to
 * answer and *why a static phrase for the log. The subprotocol "mqtt" must be offered. */
enum ws_hs_result ws_handshake_parse(const uint8_t *p, size_t n, const char *path, size_t *used,
				     char accept[static WS_ACCEPT_LEN + 1], unsigned *status, const char **why);

/* The 101 answer into out (at least WS_RESPONSE_MAX bytes); returns its length. */
size_t ws_handshake_response(const char accept[static WS_ACCEPT_LEN + 1], char *out, size_t cap);
/* A short refusal ("HTTP/1.1 400 Bad Request", Connection: close, a one-line body) into out;
 * returns its length (0 when cap is too small). */
size_t ws_handshake_refusal(unsigned status, const char *why, char *out, size_t cap);

/* Sec-WebSocket-Accept for a key (RFC 6455 §4.2.2 item 5.4): base64(SHA-1(key + GUID)).
 * Returns 0, or -1 when the digest fails. */
int ws_accept_of(const char *key, size_t keylen, char out[static WS_ACCEPT_LEN + 1]);

/* Streaming decoder state of one connection's client-to-server frames. Zero it, then set
 * max_frame (largest data frame payload accepted). */
struct ws_decoder {
	uint64_t max_frame;       /* larger data frames: WS_EV_ERROR, close 1009 */
	uint64_t left;            /* payload bytes of the current data frame still to come */
	uint8_t mask[4];          /* its masking key */
	uint8_t mask_pos;         /* position in the key of the next payload byte */
	bool in_frame;            /* a data frame's header is read, its payload streams */
	bool in_message;          /* a fragmented binary message awaits continuation frames */
	uint8_t ctl_len;          /* WS_EV_PING/PONG/CLOSE: the control payload */
	uint8_t ctl[WS_CONTROL_MAX];
	uint16_t close_code;      /* WS_EV_CLOSE: the peer's code (0: none); WS_EV_ERROR: ours */
	const char *why;          /* WS_EV_ERROR: what was wrong */
};

enum ws_event {
	WS_EV_NONE,  /* nothing can be done with these bytes: more input needed (*used is 0) */
	WS_EV_DATA,  /* progress: *used bytes consumed, *produced payload bytes written to out */
	WS_EV_PING,  /* a ping, payload in d->ctl: answer with a pong of the same payload */
	WS_EV_PONG,  /* a pong: nothing to do */
	WS_EV_CLOSE, /* a close: answer with a close, then end the connection */
	WS_EV_ERROR, /* a protocol violation: send a close with d->close_code, end the connection */
};

/* Decodes from in[0..n): at most one frame header or one control frame per call, or a stretch of
 * a data frame's payload (unmasked into out, at most cap bytes). Call again while the result is
 * not WS_EV_NONE or WS_EV_ERROR, with the input advanced by *used. Any split of the input works:
 * a header or control frame that is not complete returns WS_EV_NONE without consuming. */
enum ws_event ws_decode(struct ws_decoder *d, const uint8_t *in, size_t n, size_t *used, uint8_t *out,
			size_t cap, size_t *produced);

/* The header of a server frame (FIN set, unmasked) with this opcode and payload length into
 * out; returns its length (2, 4 or 10). */
size_t ws_frame_header(uint8_t out[static 10], enum ws_opcode op, uint64_t len);

#endif
