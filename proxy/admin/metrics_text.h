/* metrics_text.h - build and process metrics, and the OpenMetrics form of /metrics
 * (docs/OPERATIONS.md §8). Used by admin_http.c. */
#ifndef PX_METRICS_TEXT_H
#define PX_METRICS_TEXT_H

#include <stdbool.h>
#include <stddef.h>

struct evbuffer;

/* Content-Type of each exposition format. */
#define METRICS_CTYPE_TEXT "text/plain; version=0.0.4"
#define METRICS_CTYPE_OPENMETRICS "application/openmetrics-text; version=1.0.0; charset=utf-8"

/* Appends mqseal_build_info{version,openssl,libevent} 1 (0.0.4 text, with HELP and TYPE). */
void metrics_build_info(struct evbuffer *b);
/* Appends process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds,
 * process_max_fds and process_start_time_seconds; one that cannot be read is left out. */
void metrics_process(struct evbuffer *b);
/* Does the request head head[0..len) carry an Accept header that lists OpenMetrics? */
bool metrics_wants_openmetrics(const char *head, size_t len);
/* Appends the OpenMetrics 1.0 form of the 0.0.4 text in in (which it linearises) to out: counter
 * families lose "_total" in their HELP and TYPE lines, and "# EOF" ends it. -1 when out of memory. */
int metrics_to_openmetrics(struct evbuffer *in, struct evbuffer *out);

#endif
