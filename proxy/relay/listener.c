/* listener.c - the device listening sockets: listen, and each entry of listeners (plain TCP,
 * TLS, WebSocket, WebSocket over TLS); the server TLS contexts, built at start and again on each
 * reload (a renewed certificate without a restart; a broken one keeps the old context); and
 * listen.max_connections, counted over sessions and handshakes under way together: connections
 * past the limit are closed at once and counted. A plain connection becomes a session at once
 * (session_new, direct writes allowed); a TLS or WebSocket one goes through its handshake first
 * (listener_hs.c). */
#include "listener_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "clock.h"
#include "conf.h"
#include "session.h"
#include "stats.h"

/* After accept() fails for lack of descriptors, pause accepting this long (no busy loop). */
#define LISTENER_PAUSE_MS 500

static void listener_on_accept(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
			       int salen, void *arg)
{
	struct listener_sock *ls = arg;
	struct listener *l = ls->owner;
	struct px_ctx *ctx = l->ctx;
	unsigned suppressed = 0;
	char note[LOG_NOTE_MAX];

	(void)evl;
	if (ctx->shutting_down) {
		evutil_closesocket(fd);
		return;
	}
	if (session_set_count(ctx->sessions) + l->nhs >= ctx->conf->listen.max_connections) {
		ctx->stats->conn_rejected++;
		evutil_closesocket(fd);
		if (log_limit_allow(&l->reject_limit, clock_mono_ms(), &suppressed))
			log_warn("listener", "refused a device connection on %s: listen.max_connections = %u reached%s",
				 ls->name, ctx->conf->listen.max_connections, log_suppressed_note(suppressed, note));
		return;
	}
	if (ls->tls || ls->ws_path)
		listener_hs_start_(ls, fd, sa, salen);
	else
		session_new(ctx, fd, sa, salen);
}

static void listener_on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct listener *l = arg;

	(void)fd;
	(void)what;
	if (l->ctx->shutting_down)
		return;
	for (size_t i = 0; i < l->nsocks; i++)
		evconnlistener_enable(l->socks[i].evl);
}

static void listener_on_error(struct evconnlistener *evl, void *arg)
{
	static struct log_limit lim;
	struct listener_sock *ls = arg;
	int err = EVUTIL_SOCKET_ERROR();
	struct timeval tv = {.tv_sec = 0, .tv_usec = (suseconds_t)LISTENER_PAUSE_MS * 1000};
	unsigned suppressed = 0;
	char note[LOG_NOTE_MAX];

	if (log_limit_allow(&lim, clock_mono_ms(), &suppressed))
		log_error("listener", "accept failed on %s: %s; pausing %d ms%s", ls->name,
			  evutil_socket_error_to_string(err), LISTENER_PAUSE_MS, log_suppressed_note(suppressed, note));
	evconnlistener_disable(evl);
	event_add(ls->owner->resume, &tv);
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

/* The OpenSSL error queue's first reason into err after "FILE:LINE: listeners[i].tls.<what>: ". */
static void listener_tls_error(const struct px_conf *conf, const struct conf_listener *l, const char *what,
			       const char *path, char *err, size_t errlen)
{
	char reason[160] = "unknown OpenSSL error";
	unsigned long e = ERR_peek_error();

	if (e)
		ERR_error_string_n(e, reason, sizeof(reason));
	ERR_clear_error();
	snprintf(err, errlen, "%s:%u: listeners[%u].tls.%s: %s: %s", conf->path, l->line, l->index, what, path,
		 reason);
}

/* client_ca_file: the CAs that verify device certificates, and the names sent in the
 * CertificateRequest; a device without a certificate fails the handshake. */
static int listener_tls_client_ca(SSL_CTX *tls, const struct px_conf *conf, const struct conf_listener *l,
				  char *err, size_t errlen)
{
	STACK_OF(X509_NAME) *names;

	if (SSL_CTX_load_verify_locations(tls, l->client_ca_file, NULL) != 1 ||
	    !(names = SSL_load_client_CA_file(l->client_ca_file))) {
		listener_tls_error(conf, l, "client_ca_file", l->client_ca_file, err, errlen);
		return -1;
	}
	SSL_CTX_set_client_CA_list(tls, names);
	SSL_CTX_set_verify(tls, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return 0;
}

SSL_CTX *listener_tls_new(const struct px_conf *conf, const struct conf_listener *l, char *err, size_t errlen)
{
	static const unsigned char sid_ctx[] = "mqseal-device";
	SSL_CTX *tls = SSL_CTX_new(TLS_server_method());

	if (!tls) {
		snprintf(err, errlen, "%s:%u: listeners[%u].tls: cannot create a TLS context", conf->path, l->line,
			 l->index);
		return NULL;
	}
	/* TLS 1.2+ only; buffers released while a connection is idle (memory per idle device);
	 * sessions resumed only within this listener's verification settings. */
	if (SSL_CTX_set_min_proto_version(tls, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_set_session_id_context(tls, sid_ctx, sizeof(sid_ctx) - 1) != 1) {
		listener_tls_error(conf, l, "cert_file", l->cert_file, err, errlen);
		goto fail;
	}
	SSL_CTX_set_mode(tls, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_options(tls, SSL_OP_NO_RENEGOTIATION);
	if (SSL_CTX_use_certificate_chain_file(tls, l->cert_file) != 1) {
		listener_tls_error(conf, l, "cert_file", l->cert_file, err, errlen);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(tls, l->key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(tls) != 1) {
		listener_tls_error(conf, l, "key_file", l->key_file, err, errlen);
		goto fail;
	}
	if (l->client_ca_file && listener_tls_client_ca(tls, conf, l, err, errlen) != 0)
		goto fail;
	return tls;
fail:
	SSL_CTX_free(tls);
	return NULL;
}

/* The certificate in force in tls: its subject (RFC 2253) and notAfter (Unix time); "?" and 0
 * for what cannot be read. */
static void listener_cert_describe(SSL_CTX *tls, char *subject, size_t len, int64_t *not_after)
{
	X509 *x = SSL_CTX_get0_certificate(tls);
	BIO *bio = BIO_new(BIO_s_mem());
	ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
	int days = 0, secs = 0, n;

	snprintf(subject, len, "?");
	*not_after = 0;
	if (x && bio && X509_NAME_print_ex(bio, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0 &&
	    (n = BIO_read(bio, subject, (int)len - 1)) > 0)
		subject[n] = '\0';
	if (x && epoch && ASN1_TIME_diff(&days, &secs, epoch, X509_get0_notAfter(x)) == 1)
		*not_after = (int64_t)days * 86400 + secs;
	ASN1_TIME_free(epoch);
	BIO_free(bio);
}

/* Puts tls in force on ls for the connections accepted from now on and logs its certificate
 * (what: "loaded" at start, "reloaded" by SIGHUP). The old context is released: the connections
 * and handshakes made with it hold their own references (SSL_new counts), so they keep it. */
static void listener_tls_install(struct listener_sock *ls, SSL_CTX *tls, const char *what)
{
	char subject[256], expires[32];
	time_t t;
	struct tm tm;

	if (ls->tls)
		SSL_CTX_free(ls->tls);
	ls->tls = tls;
	listener_cert_describe(tls, subject, sizeof(subject), &ls->not_after);
	t = (time_t)ls->not_after;
	if (!gmtime_r(&t, &tm) || strftime(expires, sizeof(expires), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(expires, sizeof(expires), "?");
	log_info("listener", "listener %s: certificate %s (subject %s, expires %s)", ls->addr, what, subject,
		 expires);
}

size_t listener_reload_tls(struct listener *l, char *err, size_t errlen)
{
	char why[512];
	size_t failed = 0;

	for (size_t i = 0; l && i < l->nsocks; i++) {
		struct listener_sock *ls = &l->socks[i];
		SSL_CTX *tls;

		if (!ls->tls || !ls->conf)
			continue;
		tls = listener_tls_new(l->ctx->conf, ls->conf, why, sizeof(why));
		if (!tls) {
			log_error("listener", "listener %s: certificate not reloaded: %s; it keeps the one in use",
				  ls->addr, why);
			if (failed++ == 0)
				snprintf(err, errlen, "%s", why);
			continue;
		}
		listener_tls_install(ls, tls, "reloaded");
	}
	return failed;
}

bool listener_cert_at(const struct listener *l, size_t i, struct listener_cert *out)
{
	size_t seen = 0;

	for (size_t k = 0; l && k < l->nsocks; k++) {
		if (!l->socks[k].tls)
			continue;
		if (seen++ == i) {
			out->addr = l->socks[k].addr;
			out->not_after = l->socks[k].not_after;
			return true;
		}
	}
	return false;
}

/* Binds one socket: listen (l == NULL) or a listeners entry. */
static int listener_bind(struct listener *owner, struct listener_sock *ls, const struct conf_listener *l,
			 char *err, size_t errlen)
{
	const unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
	const struct px_conf *conf = owner->ctx->conf;
	const char *host = l ? l->host : conf->listen.host;
	unsigned port = l ? l->port : conf->listen.port;
	struct evutil_addrinfo *ai = NULL;
	char what[32];
	int rc = -1;

	ls->owner = owner;
	ls->conf = l;
	snprintf(ls->addr, sizeof(ls->addr), "%s%s%s:%u", strchr(host, ':') ? "[" : "", host,
		 strchr(host, ':') ? "]" : "", port);
	snprintf(what, sizeof(what), l ? "listeners[%u].host" : "listen.host", l ? l->index : 0);
	if (l)
		snprintf(ls->name, sizeof(ls->name), "listeners[%u] %s:%u%s", l->index, host, port,
			 l->cert_file && l->ws_path ? " (WebSocket over TLS)"
			 : l->cert_file		    ? " (TLS)"
			 : l->ws_path		    ? " (WebSocket)"
						    : "");
	else
		snprintf(ls->name, sizeof(ls->name), "listen %s:%u", host, port);
	if (l && l->cert_file) {
		SSL_CTX *tls = listener_tls_new(conf, l, err, errlen);

		if (!tls)
			return -1;
		listener_tls_install(ls, tls, "loaded");
	}
	ls->ws_path = l ? l->ws_path : NULL;
	if (listener_resolve(what, host, port, &ai, err, errlen) != 0)
		return -1;
	ls->evl = evconnlistener_new_bind(owner->ctx->base, listener_on_accept, ls, flags, 511, ai->ai_addr,
					  (int)ai->ai_addrlen);
	if (!ls->evl)
		snprintf(err, errlen, "cannot listen on %s:%u: %s", host, port,
			 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	else
		evconnlistener_set_error_cb(ls->evl, listener_on_error), rc = 0;
	evutil_freeaddrinfo(ai);
	return rc;
}

struct listener *listener_new(struct px_ctx *ctx, char *err, size_t errlen)
{
	size_t n = 1 + ctx->conf->nlisteners;
	struct listener *l = calloc(1, sizeof(*l) + n * sizeof(struct listener_sock));

	if (!l) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	l->ctx = ctx;
	l->resume = evtimer_new(ctx->base, listener_on_resume, l);
	if (!l->resume) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (l->nsocks = 0; l->nsocks < n; l->nsocks++) {
		const struct conf_listener *cl = l->nsocks ? &ctx->conf->listeners[l->nsocks - 1] : NULL;
		if (listener_bind(l, &l->socks[l->nsocks], cl, err, errlen) != 0) {
			l->nsocks++; /* freed with the rest */
			goto fail;
		}
	}
	return l;
fail:
	listener_free(l);
	return NULL;
}

void listener_stop(struct listener *l)
{
	for (size_t i = 0; l && i < l->nsocks; i++)
		if (l->socks[i].evl)
			evconnlistener_disable(l->socks[i].evl);
}

void listener_free(struct listener *l)
{
	if (!l)
		return;
	listener_hs_free_all_(l);
	for (size_t i = 0; i < l->nsocks; i++) {
		if (l->socks[i].evl)
			evconnlistener_free(l->socks[i].evl);
		if (l->socks[i].tls)
			SSL_CTX_free(l->socks[i].tls);
	}
	if (l->resume)
		event_free(l->resume);
	free(l);
}
