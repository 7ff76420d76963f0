/* admin_conn.c - the admin endpoint's listener and connections: a small HTTP/1.1 server for GET
 * and HEAD (RFC 9110 §9.3.1-2, RFC 9112), one request per connection ("Connection: close").
 * Bounded three ways, so that the endpoint can never take the descriptors the devices need:
 * at most metrics.max_connections at once (more are answered 503 and closed at accept), each
 * for at most ADMIN_CONN_SECONDS, and an accept() failure pauses the listener instead of
 * retrying in a busy loop. */
#include "admin_http_internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "clock.h"
#include "listener.h"
#include "metrics_text.h"
#include "conf.h"

struct admin_conn {
	struct admin_http *a;
	struct bufferevent *bev;
	struct event *deadline;
	struct admin_conn *prev, *next;
	bool answered;    /* the response is queued; what comes in now is discarded */
	bool peer_closed; /* EOF from the client after its request */
};

/* ---------------------------------------------------------------- request (sans-I/O) */

/* RFC 9110 §5.6.2 token characters. */
static bool admin_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* End of the header section: the first empty line (CRLF CRLF, or bare LF as RFC 9112 §2.2 lets
 * a recipient accept). Returns the offset after it, or 0 when there is none yet. */
static size_t admin_head_end(const char *buf, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i++) {
		if (buf[i] != '\n')
			continue;
		if (buf[i + 1] == '\n')
			return i + 2;
		if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* request-line = method SP request-target SP HTTP-version (RFC 9112 §3), origin-form only. */
static enum admin_req_status admin_req_line(const char *p, size_t n, struct admin_req *req)
{
	size_t m = 0, t, tlen, plen;

	if (n > 0 && p[n - 1] == '\r')
		n--;
	while (m < n && admin_tchar(p[m]))
		m++;
	if (m == 0 || m >= n || p[m] != ' ')
		return ADMIN_REQ_MALFORMED;
	t = m + 1;
	for (tlen = 0; t + tlen < n && p[t + tlen] != ' '; tlen++)
		if ((unsigned char)p[t + tlen] <= ' ' || p[t + tlen] == 0x7f)
			return ADMIN_REQ_MALFORMED;
	if (tlen == 0 || p[t] != '/' || t + tlen + 9 != n ||
	    (memcmp(p + t + tlen, " HTTP/1.1", 9) != 0 && memcmp(p + t + tlen, " HTTP/1.0", 9) != 0))
		return ADMIN_REQ_MALFORMED;
	req->method = (m == 3 && memcmp(p, "GET", 3) == 0)    ? ADMIN_GET
		      : (m == 4 && memcmp(p, "HEAD", 4) == 0) ? ADMIN_HEAD
							      : ADMIN_OTHER;
	for (plen = 0; plen < tlen && p[t + plen] != '?'; plen++)
		;
	req->path[0] = '\0';
	if (plen <= ADMIN_PATH_MAX) {
		memcpy(req->path, p + t, plen);
		req->path[plen] = '\0';
	}
	return ADMIN_REQ_COMPLETE;
}

enum admin_req_status admin_req_parse(const char *buf, size_t len, struct admin_req *req)
{
	const char *eol;
	size_t end;

	if (len > ADMIN_REQ_MAX)
		len = ADMIN_REQ_MAX;
	if (len > 0 && !admin_tchar(buf[0])) /* no method: TLS, a stray protocol; refuse at once */
		return ADMIN_REQ_MALFORMED;
	end = admin_head_end(buf, len);
	if (end == 0) {
		eol = memchr(buf, '\n', len);
		/* A line that cannot be a request line is refused without waiting for the rest. */
		if (eol && admin_req_line(buf, (size_t)(eol - buf), req) == ADMIN_REQ_MALFORMED)
			return ADMIN_REQ_MALFORMED;
		return len >= ADMIN_REQ_MAX ? ADMIN_REQ_TOO_LARGE : ADMIN_REQ_NEED_MORE;
	}
	eol = memchr(buf, '\n', end);
	req->openmetrics = metrics_wants_openmetrics(buf, end);
	return admin_req_line(buf, (size_t)(eol - buf), req);
}

/* ---------------------------------------------------------------- connections */

/* Frees c's timer, bufferevent (closing the socket) and c itself; the list is the caller's. */
static void admin_conn_release(struct admin_conn *c)
{
	if (c->deadline)
		event_free(c->deadline);
	if (c->bev)
		bufferevent_free(c->bev);
	free(c);
}

static void admin_conn_free(struct admin_conn *c)
{
	struct admin_http *a = c->a;

	if (c->prev)
		c->prev->next = c->next;
	else
		a->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	a->nconns--;
	admin_conn_release(c);
}

/* The response is out: half-close, and read (discarding) until the client closes too, so that
 * closing with unread input does not reset the connection under a response not yet read. */
static void admin_conn_on_write(struct bufferevent *bev, void *arg)
{
	struct admin_conn *c = arg;

	if (!c->answered || evbuffer_get_length(bufferevent_get_output(bev)) > 0)
		return;
	if (c->peer_closed) {
		admin_conn_free(c);
		return;
	}
	(void)shutdown(bufferevent_getfd(bev), SHUT_WR);
}

static void admin_conn_answer(struct admin_conn *c, enum admin_req_status st, const struct admin_req *req)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	int rc;

	c->answered = true;
	if (st == ADMIN_REQ_COMPLETE)
		rc = admin_respond_(c->a, req, out);
	else if (st == ADMIN_REQ_TOO_LARGE)
		rc = admin_respond_status_(out, 431, "Request Header Fields Too Large");
	else
		rc = admin_respond_status_(out, 400, "Bad Request");
	if (rc != 0)
		(void)admin_respond_status_(out, 500, "Internal Server Error");
}

static void admin_conn_on_read(struct bufferevent *bev, void *arg)
{
	struct admin_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = evbuffer_get_length(in);
	enum admin_req_status st;
	struct admin_req req;
	const char *p;

	if (c->answered) {
		(void)evbuffer_drain(in, len);
		return;
	}
	if (len > ADMIN_REQ_MAX)
		len = ADMIN_REQ_MAX;
	p = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
	if (!p) {
		admin_conn_free(c);
		return;
	}
	st = admin_req_parse(p, len, &req);
	if (st == ADMIN_REQ_NEED_MORE)
		return;
	(void)evbuffer_drain(in, evbuffer_get_length(in));
	admin_conn_answer(c, st, &req);
}

static void admin_conn_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct admin_conn *c = arg;

	/* EOF after the request, with the response still queued: let it go out first. */
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && c->answered &&
	    evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
		c->peer_closed = true;
		return;
	}
	admin_conn_free(c);
}

static void admin_conn_on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	admin_conn_free(arg);
}

static void admin_conn_new(struct admin_http *a, evutil_socket_t fd)
{
	const struct timeval life = {.tv_sec = ADMIN_CONN_SECONDS, .tv_usec = 0};
	struct admin_conn *c = calloc(1, sizeof(*c));

	if (!c) {
		evutil_closesocket(fd);
		return;
	}
	c->a = a;
	c->next = a->conns;
	if (a->conns)
		a->conns->prev = c;
	a->conns = c;
	a->nconns++;
	c->bev = bufferevent_socket_new(a->ctx->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!c->bev)
		evutil_closesocket(fd);
	c->deadline = evtimer_new(a->ctx->base, admin_conn_on_deadline, c);
	if (!c->bev || !c->deadline || evtimer_add(c->deadline, &life) != 0) {
		admin_conn_free(c);
		return;
	}
	/* Reading stops at ADMIN_REQ_MAX buffered bytes, which admin_req_parse then refuses. */
	bufferevent_setwatermark(c->bev, EV_READ, 0, ADMIN_REQ_MAX);
	bufferevent_setcb(c->bev, admin_conn_on_read, admin_conn_on_write, admin_conn_on_event, c);
	if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0)
		admin_conn_free(c);
}

/* ---------------------------------------------------------------- listener */

/* Past the cap: a best-effort 503 (the socket is fresh, its send buffer empty) and close. */
static void admin_refuse(struct admin_http *a, evutil_socket_t fd)
{
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
				   "Connection: close\r\n\r\n";
	unsigned suppressed = 0;
	char note[LOG_NOTE_MAX];

	a->rejected++;
	(void)send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	evutil_closesocket(fd);
	if (log_limit_allow(&a->reject_limit, clock_mono_ms(), &suppressed))
		log_warn("metrics", "refused a connection: metrics.max_connections = %u reached%s",
			 a->ctx->conf->metrics.max_connections, log_suppressed_note(suppressed, note));
}

static void admin_on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa, int salen,
			    void *arg)
{
	struct admin_http *a = arg;

	(void)evl;
	(void)sa;
	(void)salen;
	if (a->nconns >= a->ctx->conf->metrics.max_connections)
		admin_refuse(a, fd);
	else
		admin_conn_new(a, fd);
}

static void admin_on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct admin_http *a = arg;

	(void)fd;
	(void)what;
	(void)evconnlistener_enable(a->evl);
}

static void admin_on_accept_error(struct evconnlistener *evl, void *arg)
{
	struct admin_http *a = arg;
	int err = EVUTIL_SOCKET_ERROR();
	const struct timeval tv = {.tv_sec = 0, .tv_usec = (suseconds_t)ADMIN_PAUSE_MS * 1000};
	unsigned suppressed = 0;
	char note[LOG_NOTE_MAX];

	a->accept_errors++;
	(void)evconnlistener_disable(evl);
	(void)evtimer_add(a->resume, &tv);
	if (log_limit_allow(&a->error_limit, clock_mono_ms(), &suppressed))
		log_error("metrics", "accept failed: %s; pausing the endpoint %d ms%s",
			  evutil_socket_error_to_string(err), ADMIN_PAUSE_MS, log_suppressed_note(suppressed, note));
}

static struct evconnlistener *admin_bind(struct admin_http *a, char *err, size_t errlen)
{
	const unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
	const struct px_conf *conf = a->ctx->conf;
	struct evutil_addrinfo *ai = NULL;
	struct evconnlistener *evl;

	if (listener_resolve("metrics.host", conf->metrics.host, conf->metrics.port, &ai, err, errlen) != 0)
		return NULL;
	evl = evconnlistener_new_bind(a->ctx->base, admin_on_accept, a, flags, 128, ai->ai_addr,
				      (int)ai->ai_addrlen);
	if (!evl)
		snprintf(err, errlen, "metrics: cannot listen on %s:%u: %s", conf->metrics.host,
			 conf->metrics.port, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	evutil_freeaddrinfo(ai);
	return evl;
}

int admin_listen_(struct admin_http *a, char *err, size_t errlen)
{
	a->resume = evtimer_new(a->ctx->base, admin_on_resume, a);
	if (!a->resume) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	a->evl = admin_bind(a, err, errlen);
	if (!a->evl)
		return -1;
	evconnlistener_set_error_cb(a->evl, admin_on_accept_error);
	return 0;
}

void admin_listen_free_(struct admin_http *a)
{
	struct admin_conn *c, *next;

	if (a->evl)
		evconnlistener_free(a->evl);
	a->evl = NULL;
	for (c = a->conns; c; c = next) {
		next = c->next;
		admin_conn_release(c);
	}
	a->conns = NULL;
	a->nconns = 0;
	if (a->resume)
		event_free(a->resume);
	a->resume = NULL;
}
