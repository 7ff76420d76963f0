/* test_ws_frame.c - the sans-I/O WebSocket layer (proxy/relay/ws_frame.c): the RFC 6455 §1.3
 * handshake example, refusals (not an upgrade, wrong path, no mqtt subprotocol, bad key, too
 * large), client frames masked as RFC 6455 §5.7's examples, fragmentation, control frames between
 * fragments, every split of a byte stream, oversize and non-minimal lengths, bad opcodes, and the
 * server frame headers. */
#include <stdlib.h>

#include "check.h"
#include "ws_frame.h"

#define REQ_HEAD                                                                                   \
	"GET /mqtt HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"                \
	"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"     \
	"Sec-WebSocket-Protocol: mqttv3.1, mqtt\r\nSec-WebSocket-Version: 13\r\n"

static enum ws_hs_result hs(const char *req, unsigned *status, const char **why, size_t *used,
			    char accept[static WS_ACCEPT_LEN + 1])
{
	return ws_handshake_parse((const uint8_t *)req, strlen(req), "/mqtt", used, accept, status, why);
}

static void test_handshake(void)
{
	char accept[WS_ACCEPT_LEN + 1], resp[WS_RESPONSE_MAX];
	const char *why = NULL;
	unsigned status = 0;
	size_t used = 0, i, n;
	const char *req = REQ_HEAD "\r\n\x82";

	/* RFC 6455 §1.3: this key gives s3pPLMBiTxaQ9kYGzzhZRbK+xOo= */
	CHECK(hs(req, &status, &why, &used, accept) == WS_HS_OK);
	CHECK(strcmp(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
	CHECK_EQ(used, strlen(req) - 1); /* the frame byte after the head is not the head's */
	n = ws_handshake_response(accept, resp, sizeof(resp));
	CHECK(n > 0 && strstr(resp, "HTTP/1.1 101 ") == resp);
	CHECK(strstr(resp, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") != NULL);
	CHECK(strstr(resp, "Sec-WebSocket-Protocol: mqtt\r\n") != NULL);
	CHECK(strcmp(resp + n - 4, "\r\n\r\n") == 0);
	/* every prefix of the head: need more, never a verdict */
	for (i = 0; i < strlen(REQ_HEAD) + 1; i++) {
		char *part = strndup(req, i);
		CHECK(hs(part, &status, &why, &used, accept) == WS_HS_NEED_MORE);
		free(part);
	}
	/* a query string is not part of the path */
	CHECK(hs("GET /mqtt?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\nConnection: upgrade\r\n"
		 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: mqtt\r\n"
		 "Sec-WebSocket-Version: 13\r\n\r\n",
		 &status, &why, &used, accept) == WS_HS_OK);
}

static void refused(const char *req, unsigned want_status, const char *want_why_part)
{
	char accept[WS_ACCEPT_LEN + 1], out[512];
	const char *why = NULL;
	unsigned status = 0;
	size_t used = 0;

	CHECK(hs(req, &status, &why, &used, accept) == WS_HS_BAD);
	CHECK_EQ(status, want_status);
	CHECK(why && strstr(why, want_why_part) != NULL);
	if (why && !strstr(why, want_why_part))
		fprintf(stderr, "  why: %s\n", why);
	CHECK(ws_handshake_refusal(status, why ? why : "", out, sizeof(out)) > 0);
}

static void test_refusals(void)
{
	char *big = malloc(WS_HANDSHAKE_MAX + 16);

	refused("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 404, "another path");
	refused("GET /mqtt HTTP/1.1\r\nHost: a\r\n\r\n", 400, "not a WebSocket upgrade");
	refused("POST /mqtt HTTP/1.1\r\nHost: a\r\n\r\n", 400, "not a GET");
	refused("GET /mqtt HTTP/1.0\r\nHost: a\r\n\r\n", 400, "HTTP/1.1");
	refused("GET /mqttx HTTP/1.1\r\n\r\n", 404, "another path");
	refused("GET /mqtt HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
		400, "subprotocol mqtt");
	refused("GET /mqtt HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: MQTT\r\n"
		"Sec-WebSocket-Version: 13\r\n\r\n",
		400, "subprotocol mqtt"); /* subprotocol names are case-sensitive (RFC 6455 §4.1) */
	refused("GET /mqtt HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		"Sec-WebSocket-Key: short==\r\nSec-WebSocket-Protocol: mqtt\r\nSec-WebSocket-Version: 13\r\n\r\n",
		400, "Sec-WebSocket-Key");
	refused("GET /mqtt HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: mqtt\r\n"
		"Sec-WebSocket-Version: 8\r\n\r\n",
		426, "version");
	refused("GET /mqtt HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: mqtt\r\n"
		"Sec-WebSocket-Version: 13\r\n\r\n",
		400, "Host");
	memset(big, 'a', WS_HANDSHAKE_MAX + 15);
	big[WS_HANDSHAKE_MAX + 15] = '\0';
	refused(big, 400, "larger than 8 KiB");
	free(big);
}

/* A masked client frame: header (with the given opcode byte and masking key) and masked payload. */
static size_t client_frame(uint8_t *out, uint8_t b0, const uint8_t *payload, size_t n, const uint8_t key[4])
{
	size_t h = 0, i;

	out[h++] = b0;
	if (n < 126) {
		out[h++] = (uint8_t)(0x80 | n);
	} else if (n <= 0xFFFF) {
		out[h++] = 0x80 | 126;
		out[h++] = (uint8_t)(n >> 8);
		out[h++] = (uint8_t)n;
	} else {
		out[h++] = 0x80 | 127;
		for (i = 0; i < 8; i++)
			out[h++] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
	}
	memcpy(out + h, key, 4);
	h += 4;
	for (i = 0; i < n; i++)
		out[h + i] = payload[i] ^ key[i & 3];
	return h + n;
}

/* Feeds in[0..n) in pieces of at most step bytes as a bufferevent would (unconsumed bytes stay
 * in front of the next piece); data goes to out, control events are counted. Returns the last
 * event (WS_EV_ERROR stops). */
struct fed {
	uint8_t data[70000];
	size_t ndata;
	unsigned pings, pongs, closes;
	uint16_t close_code;
};

static enum ws_event feed(struct ws_decoder *d, const uint8_t *in, size_t n, size_t step, size_t cap,
			  struct fed *f)
{
	size_t have = 0, off = 0, used, prod;
	enum ws_event ev = WS_EV_NONE;

	memset(f, 0, sizeof(*f));
	while (off < n || have) {
		size_t add = n - off - 0 < step ? n - off : step;
		have += add;
		off += add;
		do {
			size_t room = sizeof(f->data) - f->ndata;
			ev = ws_decode(d, in + off - have, have, &used, f->data + f->ndata, room < cap ? room : cap,
				       &prod);
			have -= used;
			f->ndata += prod;
			f->pings += ev == WS_EV_PING;
			f->pongs += ev == WS_EV_PONG;
			if (ev == WS_EV_CLOSE) {
				f->closes++;
				f->close_code = d->close_code;
			}
			if (ev == WS_EV_ERROR)
				return ev;
		} while (ev != WS_EV_NONE && have);
		if (add == 0 && ev == WS_EV_NONE)
			break; /* nothing more to add and nothing to do */
	}
	return ev;
}

static void test_frames_every_split(void)
{
	static const uint8_t k1[4] = {0x37, 0xfa, 0x21, 0x3d}, k2[4] = {1, 2, 3, 4};
	uint8_t stream[1024], mqtt[300], ping[3] = {'a', 'b', 'c'}, close_body[2] = {0x03, 0xe8};
	size_t n = 0, i, step, cap;
	struct fed f;

	for (i = 0; i < sizeof(mqtt); i++)
		mqtt[i] = (uint8_t)(i * 7);
	/* RFC 6455 §5.7: a masked "Hello" (here as a binary frame) */
	n += client_frame(stream + n, 0x82, (const uint8_t *)"Hello", 5, k1);
	CHECK(stream[0] == 0x82 && stream[1] == 0x85 && stream[6] == 0x7f && stream[7] == 0x9f);
	/* a 300-byte message in three fragments (16-bit length on the middle one), a ping between */
	n += client_frame(stream + n, 0x02, mqtt, 10, k2);
	n += client_frame(stream + n, 0x89, ping, 3, k1);
	n += client_frame(stream + n, 0x00, mqtt + 10, 200, k1);
	n += client_frame(stream + n, 0x80, mqtt + 210, 90, k2);
	n += client_frame(stream + n, 0x82, mqtt, 0, k2); /* an empty frame */
	n += client_frame(stream + n, 0x8A, NULL, 0, k2); /* an unsolicited pong */
	n += client_frame(stream + n, 0x88, close_body, 2, k1);
	for (step = 1; step <= n; step++) {
		for (cap = 1; cap <= 301; cap += 100) {
			struct ws_decoder d = {.max_frame = 1000};
			enum ws_event ev = feed(&d, stream, n, step, cap, &f);
			CHECK(ev != WS_EV_ERROR);
			CHECK_EQ(f.ndata, 5 + 300);
			CHECK(memcmp(f.data, "Hello", 5) == 0);
			CHECK_MEM(f.data + 5, mqtt, 300);
			CHECK(f.pings == 1 && f.pongs == 1 && f.closes == 1 && f.close_code == 1000);
		}
	}
	/* the ping's payload is handed over for the pong */
	{
		struct ws_decoder d = {.max_frame = 1000};
		size_t used, prod;
		uint8_t fr[16];
		size_t fl = client_frame(fr, 0x89, ping, 3, k2);
		CHECK(ws_decode(&d, fr, fl, &used, NULL, 0, &prod) == WS_EV_PING);
		CHECK(used == fl && d.ctl_len == 3 && memcmp(d.ctl, "abc", 3) == 0);
	}
}

static void expect_error(const uint8_t *in, size_t n, uint16_t code, const char *part)
{
	struct ws_decoder d = {.max_frame = 1000};
	struct fed f;

	CHECK(feed(&d, in, n, n, 4096, &f) == WS_EV_ERROR);
	CHECK_EQ(d.close_code, code);
	CHECK(d.why && strstr(d.why, part) != NULL);
	if (d.why && !strstr(d.why, part))
		fprintf(stderr, "  why: %s\n", d.why);
}

static void test_bad_frames(void)
{
	static const uint8_t key[4] = {9, 8, 7, 6};
	uint8_t fr[2048], body[1100] = {0};
	size_t n;

	n = client_frame(fr, 0x81, (const uint8_t *)"hi", 2, key);
	expect_error(fr, n, WS_CLOSE_UNSUPPORTED, "text frame");
	n = client_frame(fr, 0x83, body, 2, key);
	expect_error(fr, n, WS_CLOSE_PROTOCOL, "unknown data opcode");
	n = client_frame(fr, 0x8B, body, 2, key);
	expect_error(fr, n, WS_CLOSE_PROTOCOL, "unknown control opcode");
	n = client_frame(fr, 0xC2, body, 2, key); /* RSV1 */
	expect_error(fr, n, WS_CLOSE_PROTOCOL, "reserved bits");
	n = client_frame(fr, 0x82, body, 2, key);
	fr[1] &= 0x7F; /* unmasked */
	expect_error(fr, n - 4, WS_CLOSE_PROTOCOL, "unmasked");
	n = client_frame(fr, 0x80, body, 2, key);
	expect_error(fr, n, WS_CLOSE_PROTOCOL, "continuation without a message");
	n = client_frame(fr, 0x02, body, 2, key);
	n += client_frame(fr + n, 0x82, body, 2, key);
	expect_error(fr, n, WS_CLOSE_PROTOCOL, "new message inside");
	n = client_frame(fr, 0x09, body, 2, key); /* a fragmented ping */
	expect_error(fr, n, WS_CLOSE_PROTOCOL, "control frame");
	n = client_frame(fr, 0x89, body, 126, key); /* a ping over 125 bytes */
	expect_error(fr, n, WS_CLOSE_PROTOCOL, "control frame");
	(void)client_frame(fr, 0x82, body, 1001, key); /* over max_frame: refused at the header */
	expect_error(fr, 8, WS_CLOSE_TOO_BIG, "larger than");
	n = client_frame(fr, 0x88, body, 1, key);
	expect_error(fr, n, WS_CLOSE_PROTOCOL, "one-byte body");
	/* 16-bit length form for 5 bytes: not minimal */
	fr[0] = 0x82, fr[1] = 0x80 | 126, fr[2] = 0, fr[3] = 5;
	memcpy(fr + 4, key, 4);
	expect_error(fr, 8, WS_CLOSE_PROTOCOL, "non-minimal");
	/* 64-bit length with the top bit set */
	fr[0] = 0x82, fr[1] = 0x80 | 127;
	memset(fr + 2, 0xFF, 8);
	memcpy(fr + 10, key, 4);
	expect_error(fr, 14, WS_CLOSE_PROTOCOL, "invalid payload length");
}

static void test_server_headers(void)
{
	uint8_t h[10];

	CHECK_EQ(ws_frame_header(h, WS_OP_BINARY, 5), 2);
	CHECK(h[0] == 0x82 && h[1] == 5);
	CHECK_EQ(ws_frame_header(h, WS_OP_BINARY, 126), 4);
	CHECK(h[1] == 126 && h[2] == 0 && h[3] == 126);
	CHECK_EQ(ws_frame_header(h, WS_OP_BINARY, 65536), 10);
	CHECK(h[1] == 127 && h[7] == 1 && h[8] == 0 && h[9] == 0);
	CHECK_EQ(ws_frame_header(h, WS_OP_CLOSE, 2), 2);
	CHECK(h[0] == 0x88);
}

int main(void)
{
	test_handshake();
	test_refusals();
	test_frames_every_split();
	test_bad_frames();
	test_server_headers();
	CHECK_DONE();
}
