/* admin_http_internal.h - shared by admin_http.c (what /metrics and /healthz say) and
 * admin_conn.c (the listener, the connection cap and the HTTP/1.1 connections that carry them).
 * evhttp is not used: libevent 2.1's evhttp has no connection limit and no hook at accept or
 * close, so it cannot be capped (docs/OPERATIONS.md §8, "connections"). */
#ifndef PX_ADMIN_HTTP_INTERNAL_H
#define PX_ADMIN_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/util.h>

#include "admin_http.h"
#include "log.h"

struct evbuffer;
struct evconnlistener;
struct event;
struct admin_conn;

/* A request line and its headers must fit in this (evhttp's limit here was the same 8 KiB); a
 * scrape's request is a few hundred bytes. */
#define ADMIN_REQ_MAX 8192
/* Longest path kept; anything longer is no path we serve (404). */
#define ADMIN_PATH_MAX 64
/* A connection lives at most this long, request and response included (a scrape takes
 * milliseconds; Prometheus' default scrape_timeout is 10 s): idle, slow-sending and
 * slow-reading clients all give their slot back. */
#define ADMIN_CONN_SECONDS 10
/* After accept() fails (no descriptors: EMFILE, ENFILE), stop accepting this long rather than
 * retry at once: a level-triggered listener would otherwise spin at 100 % CPU. */
#define ADMIN_PAUSE_MS 500

struct admin_http {
	struct px_ctx *ctx;
	const struct listener *listener; /* the TLS listeners' certificates; NULL: none (yet, or stopping) */
	struct evconnlistener *evl;
	struct event *resume;   /* re-enables evl after an accept failure */
	struct admin_conn *conns; /* open connections (freed with the endpoint) */
	unsigned nconns;
	uint64_t rejected;      /* refused at accept: metrics.max_connections reached */
	uint64_t accept_errors; /* accept() failures (each pauses the listener) */
	struct log_limit reject_limit;
	struct log_limit error_limit;
};

enum admin_method { ADMIN_GET, ADMIN_HEAD, ADMIN_OTHER };

/* Outcome of reading a request (sans-I/O, STYLE habit 1). */
enum admin_req_status {
	ADMIN_REQ_COMPLETE,  /* request line and headers complete; req filled */
	ADMIN_REQ_NEED_MORE, /* no end of headers yet */
	ADMIN_REQ_MALFORMED, /* not an HTTP/1.x request line (-> 400) */
	ADMIN_REQ_TOO_LARGE, /* ADMIN_REQ_MAX bytes and no end of headers (-> 431) */
};

struct admin_req {
	enum admin_method method;
	char path[ADMIN_PATH_MAX + 1]; /* the target up to '?', or "" when longer than ADMIN_PATH_MAX */
	bool openmetrics;              /* Accept lists application/openmetrics-text (metrics_text.h) */
};

/* Reads the request at the start of buf[0..len) (the first ADMIN_REQ_MAX bytes at most). */
enum admin_req_status admin_req_parse(const char *buf, size_t len, struct admin_req *req);

/* Appends the whole HTTP/1.1 response to req (status line, headers, body unless HEAD) to out.
 * Returns -1 when out of memory (the connection is closed then). */
int admin_respond_(struct admin_http *a, const struct admin_req *req, struct evbuffer *out);
/* The response for a request that could not be read (400, 431, 500): status line and headers. */
int admin_respond_status_(struct evbuffer *out, int status, const char *reason);

/* admin_peers.c: GET /peers, /livez, /readyz and the per-peer metric series. */
bool admin_peers_path_(const char *path);
/* The body of one of admin_peers_path_'s paths into b; returns the HTTP status. */
int admin_peers_body_(const struct admin_http *a, const char *path, struct evbuffer *b);
void admin_peers_metrics_(const struct admin_http *a, struct evbuffer *b);

/* Binds metrics.host:metrics.port and starts accepting (connections past metrics.max_connections
 * are refused at once). -1 with a message in err on failure. */
int admin_listen_(struct admin_http *a, char *err, size_t errlen);
/* Closes the listener and every open connection (at teardown); accepts a half-built a. */
void admin_listen_free_(struct admin_http *a);

#endif
