/* fuzz_admin_req.c - libFuzzer target for the admin endpoint's request reader (admin_req_parse,
 * proxy/admin/admin_conn.c): every prefix length of the input, so that the need-more path sees each
 * cut. Invariants that would mean a reader bug abort: a complete request has a NUL-terminated
 * path that is "" or starts with '/' and has no '?', and a known method; too large only at
 * ADMIN_REQ_MAX bytes; the verdict never depends on bytes past ADMIN_REQ_MAX. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin_http_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_check(const char *buf, size_t len)
{
	struct admin_req req, again;
	enum admin_req_status st = admin_req_parse(buf, len, &req);
	size_t n;

	if (st == ADMIN_REQ_TOO_LARGE && len < ADMIN_REQ_MAX)
		abort();
	if (st != ADMIN_REQ_COMPLETE)
		return;
	n = strnlen(req.path, sizeof(req.path));
	if (n == sizeof(req.path) || (n > 0 && req.path[0] != '/') || memchr(req.path, '?', n))
		abort();
	if (req.method != ADMIN_GET && req.method != ADMIN_HEAD && req.method != ADMIN_OTHER)
		abort();
	if (len > ADMIN_REQ_MAX && (admin_req_parse(buf, ADMIN_REQ_MAX, &again) != st ||
				    strcmp(again.path, req.path) != 0 || again.method != req.method))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes, so that ASan sees any read past the end. */
	char *buf = malloc(size ? size : 1);
	size_t cut;

	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);
	for (cut = 0; cut <= size && cut <= ADMIN_REQ_MAX + 1; cut++)
		fz_check(buf, cut);
	if (size > ADMIN_REQ_MAX + 1)
		fz_check(buf, size);
	free(buf);
	return 0;
}
