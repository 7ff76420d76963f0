/* listener_hs.c - a connection accepted on a TLS or WebSocket listener, before it has a session:
 *   TLS:        the first byte is peeked (a device that does not start a TLS handshake gets one
 *               clear log line naming what it sent), then the OpenSSL server handshake (a
 *               failure is logged with OpenSSL's reason: no client certificate, unknown CA, ...)
 *   WebSocket:  the HTTP/1.1 Upgrade request (ws_frame.c); anything else is answered with 400
 *               (or 404 for another path) and logged; on success 101, and the WebSocket filter
 *               (ws_filter.c) goes on top of the connection.
 * Then the device side goes to session_new_dev. Every phase is bounded by one timer,
 * listen.connect_timeout_seconds; handshakes count against listen.max_connections. */
#include "listener_internal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "clock.h"
#include "conf.h"
#include "session.h"
#include "stats.h"
#include "ws_filter.h"
#include "ws_frame.h"

struct listener_hs {
	struct listener_hs *prev, *next;
	struct listener_sock *ls;
	struct event *timer;     /* the handshake's deadline */
	struct event *sniff;     /* TLS: waits for the first byte (no bufferevent yet) */
	struct bufferevent *bev; /* the connection: socket, or OpenSSL once TLS starts */
	evutil_socket_t fd;      /* until bev owns it */
	bool refusing;           /* an HTTP refusal is queued: freed once it is written */
	bool tls_done;           /* the TLS handshake completed (a later close is not its failure) */
	struct sockaddr_storage sa;
	char peer[64];
};

static struct log_limit listener_hs_limit;

/* One warning per failed handshake, rate-limited across all of them. */
static void listener_hs_warn(const struct listener_hs *h, const char *what)
{
	unsigned suppressed = 0;
	char note[LOG_NOTE_MAX];

	if (log_limit_allow(&listener_hs_limit, clock_mono_ms(), &suppressed))
		log_emit(LOG_WARN, "listener", h->peer, NULL, "%s: %s%s", h->ls->name, what,
			 log_suppressed_note(suppressed, note));
}

static void listener_hs_free(struct listener_hs *h, bool keep_bev)
{
	struct listener *l = h->ls->owner;

	if (h->prev)
		h->prev->next = h->next;
	else
		l->hs = h->next;
	if (h->next)
		h->next->prev = h->prev;
	l->nhs--;
	if (!keep_bev && !l->ctx->shutting_down) { /* no session: counted where it stopped */
		if (h->ls->tls && !h->tls_done)
			l->ctx->stats->handshake_failed_tls++;
		else
			l->ctx->stats->handshake_failed_ws++;
	}
	if (h->timer)
		event_free(h->timer);
	if (h->sniff)
		event_free(h->sniff);
	if (h->bev && !keep_bev)
		bufferevent_free(h->bev);
	else if (!h->bev && h->fd >= 0)
		evutil_closesocket(h->fd);
	free(h);
}

void listener_hs_free_all_(struct listener *l)
{
	while (l->hs)
		listener_hs_free(l->hs, false);
}

/* The handshake is done: the device side goes to a session (which owns it from now on). */
static void listener_hs_done(struct listener_hs *h, struct bufferevent *dev)
{
	struct px_ctx *ctx = h->ls->owner->ctx;
	struct sockaddr_storage sa = h->sa;

	(void)bufferevent_set_timeouts(h->bev, NULL, NULL);
	if (dev == h->bev) /* a WebSocket filter has taken the connection's callbacks already */
		bufferevent_setcb(h->bev, NULL, NULL, NULL, NULL);
	listener_hs_free(h, true);
	session_new_dev(ctx, dev, (const struct sockaddr *)&sa);
}

/* What a first byte says a client speaks, for a listener that expected something else. */
static const char *listener_hs_kind(uint8_t b)
{
	if (b == 0x16)
		return "a TLS ClientHello";
	if (b == 0x10)
		return "a plain MQTT CONNECT";
	if (b >= 'A' && b <= 'Z')
		return "what looks like a plain HTTP request";
	return "bytes that are not a TLS handshake";
}

static void listener_hs_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct listener_hs *h = arg;

	(void)fd;
	(void)what;
	log_emit(LOG_DEBUG, "listener", h->peer, NULL, "%s: handshake not done within listen.connect_timeout_seconds",
		 h->ls->name);
	listener_hs_free(h, false);
}

/* ---------------------------------------------------------------- WebSocket upgrade */

static void listener_hs_on_written(struct bufferevent *bev, void *arg)
{
	struct listener_hs *h = arg;

	/* a socket bufferevent also calls this once writing is enabled on an empty queue */
	if (h->refusing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		listener_hs_free(h, false);
}

static void listener_hs_refuse(struct listener_hs *h, unsigned status, const char *why)
{
	char out[512], line[200];
	size_t n = ws_handshake_refusal(status, why, out, sizeof(out));

	snprintf(line, sizeof(line), "refused a WebSocket upgrade with HTTP %u: %s", status, why);
	listener_hs_warn(h, line);
	if (n == 0 || evbuffer_add(bufferevent_get_output(h->bev), out, n) != 0) {
		listener_hs_free(h, false);
		return;
	}
	h->refusing = true;
	bufferevent_disable(h->bev, EV_READ);
	bufferevent_setwatermark(h->bev, EV_WRITE, 0, 0);
	bufferevent_enable(h->bev, EV_WRITE);
}

/* A 101 answer queued: the WebSocket filter on top, and the session. */
static void listener_hs_upgrade(struct listener_hs *h, const char accept[static WS_ACCEPT_LEN + 1], size_t used)
{
	char out[WS_RESPONSE_MAX];
	size_t n = ws_handshake_response(accept, out, sizeof(out));
	uint64_t max = (uint64_t)h->ls->owner->ctx->conf->listen.max_packet_size;
	struct bufferevent *ws;

	(void)evbuffer_drain(bufferevent_get_input(h->bev), used);
	/* Under the filter, unread frames are bounded as a plain device's unread input is: about one
	 * maximal packet (the filter does not stop the connection from reading on its own). */
	bufferevent_setwatermark(h->bev, EV_READ, 0, (size_t)max + WS_HEADER_MAX);
	if (n == 0 || evbuffer_add(bufferevent_get_output(h->bev), out, n) != 0 ||
	    !(ws = ws_filter_new(h->bev, max, h->peer))) {
		log_emit(LOG_ERROR, "listener", h->peer, NULL, "out of memory upgrading a WebSocket connection");
		listener_hs_free(h, false);
		return;
	}
	listener_hs_done(h, ws);
}

static void listener_hs_on_http(struct bufferevent *bev, void *arg)
{
	struct listener_hs *h = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n = evbuffer_get_length(in), used = 0;
	char accept[WS_ACCEPT_LEN + 1], line[160];
	const uint8_t *p = evbuffer_pullup(in, -1);
	const char *why = NULL;
	unsigned status = 0;

	if (h->refusing || !p || n == 0)
		return;
	if (!h->ls->tls && (p[0] == 0x16 || p[0] == 0x10)) {
		snprintf(line, sizeof(line), "a client that does not speak WebSocket connected (it sent %s; %s)",
			 listener_hs_kind(p[0]),
			 p[0] == 0x16 ? "this listener has no tls: use ws://, or add tls" : "use ws:// or a plain listener");
		listener_hs_warn(h, line);
		listener_hs_free(h, false);
		return;
	}
	switch (ws_handshake_parse(p, n, h->ls->ws_path, &used, accept, &status, &why)) {
	case WS_HS_NEED_MORE:
		return;
	case WS_HS_BAD:
		listener_hs_refuse(h, status, why);
		return;
	case WS_HS_OK:
		listener_hs_upgrade(h, accept, used);
		return;
	}
}

static void listener_hs_on_event(struct bufferevent *bev, short what, void *arg);

static void listener_hs_http_begin(struct listener_hs *h)
{
	bufferevent_setcb(h->bev, listener_hs_on_http, listener_hs_on_written, listener_hs_on_event, h);
	bufferevent_setwatermark(h->bev, EV_READ, 0, WS_HANDSHAKE_MAX);
	bufferevent_enable(h->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_input(h->bev)) != 0)
		bufferevent_trigger(h->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS);
}

/* ---------------------------------------------------------------- TLS */

/* OpenSSL's reason for a failed handshake, with a hint for the usual causes. */
static void listener_hs_tls_failed(struct listener_hs *h)
{
	char reason[160] = "connection closed during the handshake", line[300];
	unsigned long e = bufferevent_get_openssl_error(h->bev);
	int r;
	const char *hint = "";

	if (e) {
		ERR_error_string_n(e, reason, sizeof(reason));
		r = ERR_GET_REASON(e);
		if (r == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
			hint = " (this listener requires a client certificate: tls.client_ca_file)";
		else if (r == SSL_R_CERTIFICATE_VERIFY_FAILED)
			hint = " (the device's certificate is not signed by tls.client_ca_file)";
		else if (r == SSL_R_UNSUPPORTED_PROTOCOL || r == SSL_R_WRONG_VERSION_NUMBER)
			hint = " (TLS 1.2 or newer is required)";
		else if (r == SSL_R_TLSV1_ALERT_UNKNOWN_CA || r == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE)
			hint = " (the device does not trust this listener's certificate)";
	}
	while (bufferevent_get_openssl_error(h->bev))
		;
	snprintf(line, sizeof(line), "TLS handshake failed: %s%s", reason, hint);
	listener_hs_warn(h, line);
}

static void listener_hs_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct listener_hs *h = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) { /* the TLS handshake is done */
		h->tls_done = true;
		if (h->ls->ws_path)
			listener_hs_http_begin(h);
		else
			listener_hs_done(h, h->bev);
		return;
	}
	if (h->ls->tls && !h->tls_done)
		listener_hs_tls_failed(h);
	listener_hs_free(h, false);
}

static void listener_hs_tls_begin(struct listener_hs *h)
{
	struct event_base *base = h->ls->owner->ctx->base;
	SSL *ssl = SSL_new(h->ls->tls);

	h->bev = ssl ? bufferevent_openssl_socket_new(base, h->fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
						      BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS)
		     : NULL;
	if (!h->bev) {
		SSL_free(ssl);
		log_emit(LOG_ERROR, "listener", h->peer, NULL, "out of memory starting TLS");
		listener_hs_free(h, false);
		return;
	}
	bufferevent_setcb(h->bev, NULL, NULL, listener_hs_on_event, h);
	bufferevent_enable(h->bev, EV_READ | EV_WRITE);
}

/* The first byte of a connection to a TLS listener: a ClientHello starts with 0x16 (a handshake
 * record, RFC 8446 §5.1); anything else is logged as what it looks like, and closed. */
static void listener_hs_on_sniff(evutil_socket_t fd, short what, void *arg)
{
	struct listener_hs *h = arg;
	char line[200];
	uint8_t b = 0;
	ssize_t n;

	(void)what;
	n = recv(fd, &b, 1, MSG_PEEK);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return; /* persistent event: waits on */
	if (n <= 0) {
		listener_hs_free(h, false);
		return;
	}
	event_free(h->sniff);
	h->sniff = NULL;
	if (b == 0x16) {
		listener_hs_tls_begin(h);
		return;
	}
	snprintf(line, sizeof(line), "a client that does not speak TLS connected (it sent %s; connect with TLS, "
				     "e.g. mqtts:// or wss://, or to a plain listener)",
		 listener_hs_kind(b));
	listener_hs_warn(h, line);
	listener_hs_free(h, false);
}

static void listener_hs_peer(struct listener_hs *h, const struct sockaddr *sa)
{
	char host[48] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		evutil_inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(h->peer, sizeof(h->peer), "%s:%u", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		evutil_inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(h->peer, sizeof(h->peer), "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		snprintf(h->peer, sizeof(h->peer), "unix");
	}
}

/* Links h in and starts the first phase (sniff for TLS, the HTTP request for plain WebSocket). */
static int listener_hs_begin(struct listener_hs *h, struct event_base *base, unsigned timeout)
{
	struct listener *l = h->ls->owner;
	struct timeval tv = {.tv_sec = (time_t)timeout, .tv_usec = 0};

	h->next = l->hs;
	if (l->hs)
		l->hs->prev = h;
	l->hs = h;
	l->nhs++;
	h->timer = evtimer_new(base, listener_hs_on_timer, h);
	if (!h->timer || event_add(h->timer, &tv) != 0)
		return -1;
	if (h->ls->tls) {
		h->sniff = event_new(base, h->fd, EV_READ | EV_PERSIST, listener_hs_on_sniff, h);
		return h->sniff && event_add(h->sniff, NULL) == 0 ? 0 : -1;
	}
	h->bev = bufferevent_socket_new(base, h->fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!h->bev)
		return -1;
	listener_hs_http_begin(h);
	return 0;
}

void listener_hs_start_(struct listener_sock *ls, evutil_socket_t fd, const struct sockaddr *sa, int salen)
{
	struct px_ctx *ctx = ls->owner->ctx;
	struct listener_hs *h = calloc(1, sizeof(*h));

	if (!h || salen < 0 || (size_t)salen > sizeof(h->sa)) {
		free(h);
		evutil_closesocket(fd);
		log_error("listener", "out of memory accepting a device connection");
		return;
	}
	h->ls = ls;
	h->fd = fd;
	memcpy(&h->sa, sa, (size_t)salen);
	listener_hs_peer(h, sa);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
	if (listener_hs_begin(h, ctx->base, ctx->conf->listen.connect_timeout_seconds) != 0) {
		log_error("listener", "out of memory accepting a device connection");
		listener_hs_free(h, false);
	}
}
