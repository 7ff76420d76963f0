/* upstream.c - a device session's own connection to the broker: plain TCP or TLS (OpenSSL
 * bufferevent) with certificate and host name verification, resolved without blocking (evdns). */
#include "upstream.h"

#include <stdio.h>
#include <string.h>

#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "clock.h"
#include "log.h"
#include "mqtt_reason.h"
#include "session_internal.h"
#include "stats.h"
#include "conf.h"

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
static SSL *upstream_ssl_new(struct session *s)
{
	const struct px_conf *conf = s->ctx->conf;
	const char *name = conf->broker.tls.server_name ? conf->broker.tls.server_name : conf->broker.host;
	SSL *ssl = SSL_new(s->ctx->tls);

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

int session_upstream_start_(struct session *s)
{
	const struct px_conf *conf = s->ctx->conf;
	const int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
	struct timeval tv = {.tv_sec = (time_t)conf->broker.connect_timeout_seconds};

	if (s->ctx->tls) {
		SSL *ssl = upstream_ssl_new(s);
		if (!ssl)
			return -1;
		/* On failure bufferevent_openssl_socket_new frees ssl itself. */
		s->up = bufferevent_openssl_socket_new(s->ctx->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, opts);
		if (s->up)
			bufferevent_openssl_set_allow_dirty_shutdown(s->up, 1);
	} else {
		s->up = bufferevent_socket_new(s->ctx->base, -1, opts);
	}
	if (!s->up)
		return -1;
	session_set_callbacks_(s, s->up);
	event_del(s->timer);
	event_add(s->timer, &tv);
	if (bufferevent_socket_connect_hostname(s->up, s->ctx->dns, AF_UNSPEC, conf->broker.host,
						conf->broker.port) != 0)
		return -1;
	return 0;
}

void upstream_on_connected_(struct session *s)
{
	if (s->state != SESSION_CONNECTING)
		return;
	session_set_nodelay_(bufferevent_getfd(s->up));
	event_del(s->timer);
	session_set_state_(s, SESSION_ESTABLISHED);
	session_up_connected_(s);
}

/* Why the connection failed, for the one log line. */
static void upstream_describe_failure(struct session *s, short what, char *out, size_t cap)
{
	int dns = s->up ? bufferevent_socket_get_dns_error(s->up) : 0;
	unsigned long ssl_err = s->up && s->ctx->tls ? bufferevent_get_openssl_error(s->up) : 0;
	char buf[256];

	if (what & BEV_EVENT_TIMEOUT) {
		snprintf(out, cap, "timed out after %us", s->ctx->conf->broker.connect_timeout_seconds);
	} else if (dns) {
		snprintf(out, cap, "cannot resolve %s: %s", s->ctx->conf->broker.host, evutil_gai_strerror(dns));
	} else if (ssl_err) {
		ERR_error_string_n(ssl_err, buf, sizeof(buf));
		snprintf(out, cap, "TLS: %s", buf);
	} else {
		snprintf(out, cap, "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
	}
}

void upstream_on_failed_(struct session *s, short what)
{
	static struct log_limit lim;
	unsigned suppressed = 0;
	char note[LOG_NOTE_MAX];
	char why[320];

	s->ctx->stats->upstream_failures++;
	upstream_describe_failure(s, what, why, sizeof(why));
	if (log_limit_allow(&lim, clock_mono_ms(), &suppressed))
		log_emit(LOG_WARN, "upstream", s->peer, s->client[0] ? s->client : NULL,
			 "broker %s:%u unreachable (%s); refusing the device%s", s->ctx->conf->broker.host,
			 s->ctx->conf->broker.port, why, log_suppressed_note(suppressed, note));
	session_refuse_connect_(s, MQTT_CONNACK_311_SERVER_UNAVAILABLE, MQTT_RC_SERVER_UNAVAILABLE,
				"broker unreachable");
}
