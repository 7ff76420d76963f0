/* cli_internal.h - shared by cli_status.c (the status and health commands) and cli_http.c (the
 * blocking HTTP/1.1 GET they send to a node's admin endpoint, and the reader for the flat JSON
 * that endpoint writes). Not for other modules. */
#ifndef PX_CLI_INTERNAL_H
#define PX_CLI_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* A node answers in milliseconds; a wedged one must not hang a HEALTHCHECK (Docker's default
 * timeout is 30 s, Kubernetes' probe default 1 s: the orchestrator's own timeout usually wins). */
#define CLI_HTTP_TIMEOUT_S 5
/* The largest answer read: /peers of 10,000 peers is about 3 MiB. */
#define CLI_HTTP_MAX ((size_t)16 * 1024 * 1024)

struct cli_target {
	char host[256];
	char port[8];
	char path[128];
};

/* "http://HOST[:PORT][/PATH]" (HOST may be [IPv6]); default port 80, default path def_path.
 * -1 with a message in err when it is not such a URL. */
int cli_url_parse(const char *url, const char *def_path, struct cli_target *t, char *err, size_t errlen);

/* GETs t; on success returns 0 with the HTTP status in *status and the body (NUL-terminated,
 * malloc'd: the caller frees it) in *body. -1 with a message in err when no answer came. */
int cli_http_get(const struct cli_target *t, int *status, char **body, char *err, size_t errlen);

/* A reader for the JSON the admin endpoint writes (objects, arrays, strings without escapes
 * beyond \" and \\, numbers, true/false/null). v points at a value; NULL means "absent". */
const char *cli_json_member(const char *obj, const char *key); /* obj at '{': the value of key */
const char *cli_json_elem(const char *arr, size_t i);	       /* arr at '[': element i */
void cli_json_text(const char *v, char *out, size_t len);      /* a scalar as text ("" if absent) */
uint64_t cli_json_u64(const char *v);			       /* a number (0 if absent) */
int cli_json_true(const char *v);			       /* 1 for true */

#endif
