/* upstream.c - struct upstream: one attempt to connect to the broker for a device session, plain
 * TCP or TLS (OpenSSL bufferevent) with certificate and host name verification, resolved without
 * blocking (evdns), bounded by its own timer; and the shared TLS client context (upstream.h). */
#include "upstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "conf.h"
#include "ctx.h"

struct upstream {
	struct px_ctx *ctx;
	struct bufferevent *bev;            /* the connection being made; NULL once handed over */
	struct event *timer;                /* broker.connect_timeout_seconds, resolution included */
	const struct upstream_owner *owner;
	void *arg;
};

static void upstream_ssl_error(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256] = "";

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	snprintf(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
	ERR_clear_error();
}

SSL_CTX *upstream_tls_new(const struct conf_tls *tls, char *err, size_t errlen)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx) {
		upstream_ssl_error(err, errlen, "SSL_CTX_new");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
		upstream_ssl_error(err, errlen, "TLS minimum version");
		goto fail;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (tls->ca_file || tls->ca_path) {
		if (SSL_CTX_load_verify_locations(ctx, tls->ca_file, tls->ca_path) != 1) {
			upstream_ssl_error(err, errlen, "broker.tls.ca_file/ca_path");
			goto fail;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		upstream_ssl_error(err, errlen, "system CA store");
		goto fail;
	}
	if (tls->cert_file) {
		if (SSL_CTX_use_certificate_chain_file(ctx, tls->cert_file) != 1 ||
		    SSL_CTX_use_PrivateKey_file(ctx, tls->key_file, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(ctx) != 1) {
			upstream_ssl_error(err, errlen, "broker.tls.cert_file/key_file");
			goto fail;
		}
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* A TLS object for one connection: SNI and, unless disabled, host name verification. */
static SSL *upstream_ssl_new(const struct upstream *u)
{
	const struct px_conf *conf = u->ctx->conf;
	const char *name = conf->broker.tls.server_name ? conf->broker.tls.server_name : conf->broker.host;
	SSL *ssl = SSL_new(u->ctx->tls);

	if (!ssl)
		return NULL;
	if (SSL_set_tlsext_host_name(ssl, name) != 1)
		goto fail;
	if (conf->broker.tls.verify_hostname) {
		SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if (SSL_set1_host(ssl, name) != 1)
			goto fail;
	}
	return ssl;
fail:
	SSL_free(ssl);
	return NULL;
}

/* The bufferevent of the attempt, not connected yet: TLS when the node has a broker TLS context. */
static struct bufferevent *upstream_bev_new(const struct upstream *u)
{
	const int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
	struct bufferevent *bev;
	SSL *ssl;

	if (!u->ctx->tls)
		return bufferevent_socket_new(u->ctx->base, -1, opts);
	ssl = upstream_ssl_new(u);
	if (!ssl)
		return NULL;
	/* On failure bufferevent_openssl_socket_new frees ssl itself. */
	bev = bufferevent_openssl_socket_new(u->ctx->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, opts);
	if (bev)
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

/* Why the connection failed, for the one log line. */
static void upstream_describe_failure(const struct upstream *u, short what, char *out, size_t cap)
{
	const struct px_conf *conf = u->ctx->conf;
	int dns = u->bev ? bufferevent_socket_get_dns_error(u->bev) : 0;
	unsigned long ssl_err = u->bev && u->ctx->tls ? bufferevent_get_openssl_error(u->bev) : 0;
	char buf[256];

	if (what & BEV_EVENT_TIMEOUT) {
		snprintf(out, cap, "timed out after %us", conf->broker.connect_timeout_seconds);
	} else if (dns) {
		snprintf(out, cap, "cannot resolve %s: %s", conf->broker.host, evutil_gai_strerror(dns));
	} else if (ssl_err) {
		ERR_error_string_n(ssl_err, buf, sizeof(buf));
		snprintf(out, cap, "TLS: %s", buf);
	} else {
		snprintf(out, cap, "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	}
}

/* The attempt failed (what: the bufferevent's event, or BEV_EVENT_TIMEOUT from our timer). The
 * owner's call is the last use of u: it may free it. */
static void upstream_fail(struct upstream *u, short what)
{
	char why[320];

	upstream_describe_failure(u, what, why, sizeof(why));
	event_del(u->timer);
	u->owner->failed(u->arg, why);
}

static void upstream_on_event(struct bufferevent *bev, short what, void *arg)
{
	struct upstream *u = arg;

	if (!(what & BEV_EVENT_CONNECTED)) {
		upstream_fail(u, what);
		return;
	}
	event_del(u->timer);
	u->bev = NULL; /* the owner's now */
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	u->owner->connected(u->arg, bev, u->ctx->tls == NULL);
}

static void upstream_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	upstream_fail(arg, BEV_EVENT_TIMEOUT);
}

struct upstream *upstream_open(struct px_ctx *ctx, const struct upstream_owner *owner, void *arg, char *why,
			       size_t cap)
{
	const struct px_conf *conf = ctx->conf;
	struct timeval tv = {.tv_sec = (time_t)conf->broker.connect_timeout_seconds, .tv_usec = 0};
	struct upstream *u = calloc(1, sizeof(*u));

	if (!u) {
		snprintf(why, cap, "out of memory");
		return NULL;
	}
	*u = (struct upstream){.ctx = ctx, .owner = owner, .arg = arg};
	u->timer = evtimer_new(ctx->base, upstream_on_timeout, u);
	u->bev = upstream_bev_new(u);
	if (!u->timer || !u->bev)
		goto fail;
	/* Until the connection is up the events are ours, and nothing is read or written: the
	 * owner's callbacks then see its first write (libevent writes the queued output in the
	 * same callback that completes a plain connect, before a deferred event callback runs). */
	bufferevent_setcb(u->bev, NULL, NULL, upstream_on_event, u);
	if (bufferevent_disable(u->bev, EV_READ | EV_WRITE) != 0 || event_add(u->timer, &tv) != 0 ||
	    bufferevent_socket_connect_hostname(u->bev, ctx->dns, AF_UNSPEC, conf->broker.host, conf->broker.port) != 0)
		goto fail;
	return u;
fail:
	upstream_describe_failure(u, 0, why, cap);
	upstream_free(u);
	return NULL;
}

struct bufferevent *upstream_bev(const struct upstream *u)
{
	return u->bev;
}

void upstream_free(struct upstream *u)
{
	if (!u)
		return;
	if (u->bev)
		bufferevent_free(u->bev);
	if (u->timer)
		event_free(u->timer);
	free(u);
}
