/* listener.c - accepts device connections and enforces listen.max_connections: one session per
 * accepted connection; connections past the limit are closed at once and counted. */
#include "listener.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "clock.h"
#include "log.h"
#include "session.h"
#include "stats.h"
#include "conf.h"

/* After accept() fails for lack of descriptors, pause accepting this long (no busy loop). */
#define LISTENER_PAUSE_MS 500

struct listener {
	struct px_ctx *ctx;
	struct evconnlistener *evl;
	struct event *resume;
	struct log_limit reject_limit;
};

static void listener_on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
			       int salen, void *arg)
{
	struct listener *l = arg;
	struct px_ctx *ctx = l->ctx;
	unsigned suppressed = 0;
	char note[LOG_NOTE_MAX];

	(void)evl;
	if (ctx->shutting_down) {
		evutil_closesocket(fd);
		return;
	}
	if (session_set_count(ctx->sessions) >= ctx->conf->listen.max_connections) {
		ctx->stats->conn_rejected++;
		evutil_closesocket(fd);
		if (log_limit_allow(&l->reject_limit, clock_mono_ms(), &suppressed))
			log_warn("listener", "refused a device connection: listen.max_connections = %u reached%s",
				 ctx->conf->listen.max_connections,
				 log_suppressed_note(suppressed, note));
		return;
	}
	session_new(ctx, fd, sa, salen);
}

static void listener_on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	(void)fd;
	(void)what;
	if (!l->ctx->shutting_down)
		evconnlistener_enable(l->evl);
}

static void listener_on_error(struct evconnlistener *evl, void *arg)
{
	static struct log_limit lim;
	struct listener *l = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = {.tv_sec = 0, .tv_usec = (suseconds_t)LISTENER_PAUSE_MS * 1000};
	unsigned suppressed = 0;
	char note[LOG_NOTE_MAX];

	if (log_limit_allow(&lim, clock_mono_ms(), &suppressed))
		log_error("listener", "accept failed: %s; pausing %d ms%s", evutil_socket_error_to_string(err),
			  LISTENER_PAUSE_MS, log_suppressed_note(suppressed, note));
	evconnlistener_disable(evl);
	event_add(l->resume, &tv);
}

int listener_resolve(const char *what, const char *host, unsigned port, struct evutil_addrinfo **out,
		     char *err, size_t errlen)
{
	struct evutil_addrinfo hints;
	char service[8];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_ADDRCONFIG;
	snprintf(service, sizeof(service), "%u", port);
	rc = evutil_getaddrinfo(host, service, &hints, out);
	if (rc != 0) {
		snprintf(err, errlen, "%s %s: %s", what, host, evutil_gai_strerror(rc));
		return -1;
	}
	return 0;
}

struct listener *listener_new(struct px_ctx *ctx, char *err, size_t errlen)
{
	const unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
	struct evutil_addrinfo *ai = NULL;
	struct listener *l = calloc(1, sizeof(*l));

	if (!l) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	l->ctx = ctx;
	if (listener_resolve("listen.host", ctx->conf->listen.host, ctx->conf->listen.port, &ai, err, errlen) != 0)
		goto fail;
	l->evl = evconnlistener_new_bind(ctx->base, listener_on_accept, l, flags, 511, ai->ai_addr,
					 (int)ai->ai_addrlen);
	if (!l->evl) {
		snprintf(err, errlen, "cannot listen on %s:%u: %s", ctx->conf->listen.host, ctx->conf->listen.port,
			 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		goto fail;
	}
	l->resume = evtimer_new(ctx->base, listener_on_resume, l);
	if (!l->resume) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	evconnlistener_set_error_cb(l->evl, listener_on_error);
	evutil_freeaddrinfo(ai);
	return l;
fail:
	if (ai)
		evutil_freeaddrinfo(ai);
	listener_free(l);
	return NULL;
}

void listener_stop(struct listener *l)
{
	if (l && l->evl)
		evconnlistener_disable(l->evl);
}

void listener_free(struct listener *l)
{
	if (!l)
		return;
	if (l->evl)
		evconnlistener_free(l->evl);
	if (l->resume)
		event_free(l->resume);
	free(l);
}
