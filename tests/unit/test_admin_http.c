/* test_admin_http.c - the admin endpoint's request reader (admin_req_parse, sans-I/O): request
 * lines field by field, the end of the head with CRLF and bare LF, what is refused at once
 * (not a request line) and what only when 8 KiB pass without an end (431); the OpenMetrics
 * rewrite of the /metrics text (metrics_to_openmetrics). */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "check.h"
#include "admin_http_internal.h"
#include "metrics_text.h"

static enum admin_req_status parse(const char *text, struct admin_req *req)
{
	memset(req, 0x5a, sizeof(*req));
	return admin_req_parse(text, strlen(text), req);
}

static void test_complete(void)
{
	struct admin_req r;

	CHECK_EQ(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r), ADMIN_REQ_COMPLETE);
	CHECK(r.method == ADMIN_GET && strcmp(r.path, "/metrics") == 0);
	CHECK_EQ(parse("HEAD /healthz?verbose=1 HTTP/1.0\n\n", &r), ADMIN_REQ_COMPLETE);
	CHECK(r.method == ADMIN_HEAD && strcmp(r.path, "/healthz") == 0);
	CHECK_EQ(parse("DELETE /metrics HTTP/1.1\r\n\r\n", &r), ADMIN_REQ_COMPLETE);
	CHECK(r.method == ADMIN_OTHER && strcmp(r.path, "/metrics") == 0);
	CHECK_EQ(parse("get /metrics HTTP/1.1\r\n\r\n", &r), ADMIN_REQ_COMPLETE); /* methods are case-sensitive */
	CHECK(r.method == ADMIN_OTHER);
	/* Accept decides the /metrics format (metrics_text.h): OpenMetrics only when listed. */
	CHECK_EQ(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r), ADMIN_REQ_COMPLETE);
	CHECK(!r.openmetrics);
	CHECK_EQ(parse("GET /metrics HTTP/1.1\r\naccept: text/plain;q=0.5,Application/OpenMetrics-Text;"
		       "version=1.0.0\r\n\r\n", &r),
		 ADMIN_REQ_COMPLETE);
	CHECK(r.openmetrics);
	CHECK_EQ(parse("GET /metrics HTTP/1.1\r\nX-Accept: application/openmetrics-text\r\n\r\n", &r),
		 ADMIN_REQ_COMPLETE);
	CHECK(!r.openmetrics);
	/* A path longer than ADMIN_PATH_MAX is no path we serve: "" (404). */
	{
		char text[256] = "GET /";
		memset(text + 5, 'a', 100);
		strcpy(text + 105, " HTTP/1.1\r\n\r\n");
		CHECK_EQ(parse(text, &r), ADMIN_REQ_COMPLETE);
		CHECK(r.path[0] == '\0');
	}
}

static void test_incomplete_and_refused(void)
{
	static const char *const malformed[] = {
		"GET /metrics\r\n\r\n",             /* HTTP/0.9 */
		"GET /metrics HTTP/2.0\r\n\r\n",    /* not 1.x */
		"GET  /metrics HTTP/1.1\r\n\r\n",   /* two spaces */
		"GET metrics HTTP/1.1\r\n\r\n",     /* not origin-form */
		"GET http://h/metrics HTTP/1.1\r\n\r\n",
		"GET /met\x01rics HTTP/1.1\r\n\r\n", /* control byte in the target */
		"GET /metrics HTTP/1.1 x\r\n\r\n",
		"\r\n\r\n",
		"G(T /metrics HTTP/1.1\r\n\r\n",    /* not a token */
	};
	struct admin_req r;
	char *big;
	size_t i;

	for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		CHECK_EQ(parse(malformed[i], &r), ADMIN_REQ_MALFORMED);
		if (parse(malformed[i], &r) != ADMIN_REQ_MALFORMED)
			fprintf(stderr, "  accepted case %zu\n", i);
	}
	/* A TLS ClientHello's first bytes: refused before any line end. */
	CHECK_EQ(admin_req_parse("\x16\x03\x01\x02\x00\x01", 6, &r), ADMIN_REQ_MALFORMED);
	CHECK_EQ(parse("", &r), ADMIN_REQ_NEED_MORE);
	CHECK_EQ(parse("GET /metr", &r), ADMIN_REQ_NEED_MORE);
	CHECK_EQ(parse("GET /metrics HTTP/1.1\r\n", &r), ADMIN_REQ_NEED_MORE);
	CHECK_EQ(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n\r", &r), ADMIN_REQ_NEED_MORE);
	/* 8 KiB of headers and no end: too large; the same within the limit: wait. */
	big = malloc(ADMIN_REQ_MAX + 64);
	if (!big)
		return;
	memcpy(big, "GET / HTTP/1.1\r\n", 16);
	memset(big + 16, 'x', ADMIN_REQ_MAX + 47 - 16);
	big[ADMIN_REQ_MAX + 47] = '\0';
	CHECK_EQ(admin_req_parse(big, ADMIN_REQ_MAX - 1, &r), ADMIN_REQ_NEED_MORE);
	CHECK_EQ(admin_req_parse(big, ADMIN_REQ_MAX, &r), ADMIN_REQ_TOO_LARGE);
	CHECK_EQ(admin_req_parse(big, ADMIN_REQ_MAX + 40, &r), ADMIN_REQ_TOO_LARGE);
	free(big);
}

/* Counter families lose "_total" in HELP and TYPE only (OpenMetrics §4.1); samples, gauges, and a
 * gauge whose name merely contains "_total" stay; "# EOF" ends the text. */
static void test_openmetrics(void)
{
	static const char in_text[] = "# HELP a_total A things.\n# TYPE a_total counter\na_total 3\n"
				      "# HELP b_total_open B.\n# TYPE b_total_open gauge\nb_total_open 1\n"
				      "# HELP c_total C.\n# TYPE c_total gauge\nc_total 2\n"
				      "# HELP d_total D.\n# TYPE d_total counter\nd_total{r=\"x\"} 4\n";
	static const char want[] = "# HELP a A things.\n# TYPE a counter\na_total 3\n"
				   "# HELP b_total_open B.\n# TYPE b_total_open gauge\nb_total_open 1\n"
				   "# HELP c_total C.\n# TYPE c_total gauge\nc_total 2\n"
				   "# HELP d D.\n# TYPE d counter\nd_total{r=\"x\"} 4\n# EOF\n";
	struct evbuffer *in = evbuffer_new(), *out = evbuffer_new();
	size_t n;

	CHECK(in && out);
	if (!in || !out)
		goto out;
	CHECK_EQ(evbuffer_add(in, in_text, sizeof(in_text) - 1), 0);
	CHECK_EQ(metrics_to_openmetrics(in, out), 0);
	n = evbuffer_get_length(out);
	CHECK(n == sizeof(want) - 1 && memcmp(evbuffer_pullup(out, -1), want, n) == 0);
out:
	if (in)
		evbuffer_free(in);
	if (out)
		evbuffer_free(out);
}

int main(void)
{
	test_openmetrics();
	test_complete();
	test_incomplete_and_refused();
	CHECK_DONE();
}
