/* fuzz_ws_frame.c - libFuzzer target for the sans-I/O WebSocket layer (proxy/relay/ws_frame.c).
 * The first input byte chooses a piece size; the rest is fed to ws_handshake_parse (every prefix
 * length, with a copy of exactly that many bytes) and then, as client frames, to ws_decode in
 * pieces of that size, as ws_filter.c feeds it. Invariants that would mean a bug abort: a
 * handshake verdict never changes once the head is complete; the decoder never consumes more than
 * it was given, never writes more than cap, never returns data without progress, and produces the
 * same payload bytes and the same final verdict whatever the piece size. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_handshake(const uint8_t *p, size_t n)
{
	char accept[WS_ACCEPT_LEN + 1];
	const char *why = NULL;
	unsigned status = 0;
	size_t used = 0, cut;
	enum ws_hs_result first = WS_HS_NEED_MORE, r;

	for (cut = 0; cut <= n && cut <= WS_HANDSHAKE_MAX + 1; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);
		if (!copy)
			return;
		memcpy(copy, p, cut);
		r = ws_handshake_parse(copy, cut, "/mqtt", &used, accept, &status, &why);
		free(copy);
		if (r == WS_HS_OK && (used > cut || strlen(accept) != WS_ACCEPT_LEN))
			abort();
		if (r == WS_HS_BAD && (!why || status < 400))
			abort();
		if (first != WS_HS_NEED_MORE && r != first)
			abort(); /* a verdict, once reached, stays */
		if (r != WS_HS_NEED_MORE)
			first = r;
	}
}

/* Decodes p[0..n) in pieces of step; returns the final event and fills out (payload bytes). */
static enum ws_event fz_decode(const uint8_t *p, size_t n, size_t step, uint8_t *out, size_t *nout)
{
	struct ws_decoder d = {.max_frame = 4096};
	size_t have = 0, off = 0, used, prod, room;
	enum ws_event ev = WS_EV_NONE;

	*nout = 0;
	while (off < n || have) {
		size_t add = n - off < step ? n - off : step;
		have += add;
		off += add;
		do {
			room = n - *nout; /* the payload never exceeds the input */
			ev = ws_decode(&d, p + off - have, have, &used, out + *nout, room < 37 ? room : 37, &prod);
			if (used > have || prod > 37 || prod > used || (ev == WS_EV_DATA && used == 0 && prod == 0 &&
									 have > 0 && !d.in_frame))
				abort();
			have -= used;
			*nout += prod;
			if (ev == WS_EV_ERROR || ev == WS_EV_CLOSE)
				return ev;
		} while (ev != WS_EV_NONE && have);
		if (add == 0)
			break;
	}
	return ev;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *a, *b;
	size_t na = 0, nb = 0, step;
	enum ws_event ea, eb;

	if (size < 1)
		return 0;
	step = (size_t)(data[0] % 16) + 1;
	fz_handshake(data + 1, size - 1);
	a = malloc(size);
	b = malloc(size);
	if (a && b) {
		ea = fz_decode(data + 1, size - 1, step, a, &na);
		eb = fz_decode(data + 1, size - 1, size, b, &nb);
		if ((ea == WS_EV_ERROR) != (eb == WS_EV_ERROR) || na != nb || memcmp(a, b, na) != 0)
			abort();
	}
	free(a);
	free(b);
	return 0;
}
