/* admin_http.c - what the admin endpoint answers: GET /metrics (Prometheus text exposition
 * format 0.0.4, or OpenMetrics 1.0 when Accept asks for it) and GET /healthz (HEAD too). Read-only, loopback by default; other paths get 404,
 * other methods 405. The connections that carry it are admin_conn.c's. */
#include "admin_http_internal.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "clock.h"
#include "keyex.h"
#include "listener.h"
#include "metrics_text.h"
#include "session.h"
#include "stats.h"
#include "conf.h"

static void metric(struct evbuffer *b, const char *name, const char *type, const char *help, uint64_t v)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type, name, v);
}

static void metric_head(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void metric_label(struct evbuffer *b, const char *name, const char *label, const char *value, uint64_t v)
{
	evbuffer_add_printf(b, "%s{%s=\"%s\"} %" PRIu64 "\n", name, label, value, v);
}

static void admin_traffic(struct evbuffer *b, const struct stats *st)
{
	/* Not "mqseal_device_connections": that gauge and the counter below were one family under
	 * OpenMetrics (docs/OPERATIONS.md §8, renamed metrics). */
	metric(b, "mqseal_device_connections_open", "gauge", "Device connections open now.", st->conn_current);
	metric(b, "mqseal_device_connections_total", "counter", "Device connections accepted.", st->conn_total);
	metric(b, "mqseal_device_connections_rejected_total", "counter",
	       "Device connections refused over listen.max_connections.", st->conn_rejected);
	metric_head(b, "mqseal_device_handshake_failures_total", "counter",
		    "Device connections to a TLS or WebSocket listener that failed before their session.");
	metric_label(b, "mqseal_device_handshake_failures_total", "transport", "tls", st->handshake_failed_tls);
	metric_label(b, "mqseal_device_handshake_failures_total", "transport", "websocket", st->handshake_failed_ws);
	metric(b, "mqseal_protocol_errors_total", "counter",
	       "Connections closed for a malformed or oversize packet or a timeout.", st->conn_protocol_errors);
	metric(b, "mqseal_upstream_failures_total", "counter", "Broker connections that could not be made.",
	       st->upstream_failures);
	metric(b, "mqseal_broker_malformed_total", "counter",
	       "Broker packets that were not valid MQTT (never relayed; the session was closed).",
	       st->broker_malformed);
	metric_head(b, "mqseal_bytes_total", "counter", "Bytes relayed, by direction.");
	metric_label(b, "mqseal_bytes_total", "direction", "from_device", st->bytes_from_device);
	metric_label(b, "mqseal_bytes_total", "direction", "to_broker", st->bytes_to_broker);
	metric_label(b, "mqseal_bytes_total", "direction", "from_broker", st->bytes_from_broker);
	metric_label(b, "mqseal_bytes_total", "direction", "to_device", st->bytes_to_device);
	metric_head(b, "mqseal_packets_total", "counter", "MQTT packets received, by direction.");
	metric_label(b, "mqseal_packets_total", "direction", "from_device", st->packets_from_device);
	metric_label(b, "mqseal_packets_total", "direction", "from_broker", st->packets_from_broker);
}

static void admin_sealing(struct evbuffer *b, const struct stats *st)
{
	int i;

	metric(b, "mqseal_sealed_total", "counter", "PUBLISH payloads sealed.", st->sealed);
	metric(b, "mqseal_opened_total", "counter", "Sealed payloads opened and delivered.", st->opened);
	metric_head(b, "mqseal_plaintext_total", "counter", "PUBLISH packets on plaintext topics, by direction.");
	metric_label(b, "mqseal_plaintext_total", "direction", "out", st->plaintext_out);
	metric_label(b, "mqseal_plaintext_total", "direction", "in", st->plaintext_in);
	metric(b, "mqseal_held_total", "counter", "Publishes held while no key was ready.", st->held);
	metric(b, "mqseal_held_incoming_total", "counter",
	       "Incoming sealed messages kept aside until their key was announced.", st->held_incoming);
	metric(b, "mqseal_refused_total", "counter", "Publishes refused (hold limits or size).", st->refused);
	metric(b, "mqseal_denied_total", "counter", "Packets refused by the topic deny policy.", st->denied);
	metric_head(b, "mqseal_dropped_total", "counter", "Incoming sealed messages not delivered, by reason.");
	for (i = 0; i < DROP__COUNT; i++)
		metric_label(b, "mqseal_dropped_total", "reason", stats_drop_name((enum stats_drop)i), st->dropped[i]);
}

static void admin_keyex(struct evbuffer *b, const struct px_ctx *ctx)
{
	const struct stats *st = ctx->stats;
	uint64_t since = st->last_rotation_wall_ms ? (clock_wall_ms() - st->last_rotation_wall_ms) / 1000 : 0;
	uint64_t last = st->last_rotation_wall_ms / 1000;
	int i;

	metric(b, "mqseal_peers_configured", "gauge", "Peers in the configuration.", ctx->conf->npeers);
	metric(b, "mqseal_peers_keyed", "gauge", "Peers whose current key this node holds.", st->peers_keyed);
	metric(b, "mqseal_epoch", "gauge", "This node's current sending epoch.", st->current_epoch);
	metric(b, "mqseal_last_rotation_timestamp_seconds", "gauge",
	       "Unix time the last epoch started (0 before the first).", last);
	metric(b, "mqseal_seconds_since_rotation", "gauge",
	       "Seconds since the last epoch started (deprecated: use mqseal_last_rotation_timestamp_seconds).",
	       since);
	metric(b, "mqseal_rotations_total", "counter", "Epochs started.", st->rotations);
	metric(b, "mqseal_activations_total", "counter", "Epochs activated for sending.", st->activations);
	metric(b, "mqseal_epochs_erased_total", "counter", "Keys erased (own and peers').", st->epochs_erased);
	metric(b, "mqseal_announcements_sent_total", "counter", "Key announcements published.",
	       st->announcements_sent);
	metric(b, "mqseal_announcements_accepted_total", "counter", "Peer announcements accepted.",
	       st->announcements_accepted);
	metric(b, "mqseal_acks_sent_total", "counter", "Key confirmations sent.", st->acks_sent);
	metric(b, "mqseal_acks_accepted_total", "counter", "Key confirmations accepted.", st->acks_accepted);
	metric_head(b, "mqseal_announcements_rejected_total", "counter",
		    "Announcements and confirmations rejected, by reason.");
	for (i = 0; i < REJECT__COUNT; i++)
		metric_label(b, "mqseal_announcements_rejected_total", "reason",
			     stats_reject_name((enum stats_reject)i), st->rejected[i]);
	if (ctx->conf->keyex.presence)
		metric(b, "mqseal_peers_present", "gauge", "Peers whose last presence message said online.",
		       st->peers_present);
	metric_head(b, "mqseal_presence_rejected_total", "counter", "Peers' presence messages rejected, by reason.");
	for (i = 0; i < REJECT__COUNT; i++)
		if (i != REJECT_EXPIRED && i != REJECT_BAD_WRAP)
			metric_label(b, "mqseal_presence_rejected_total", "reason",
				     stats_reject_name((enum stats_reject)i), st->presence_rejected[i]);
	metric(b, "mqseal_broker_connected", "gauge", "1 when the key-exchange connection is up.",
	       st->control_connected);
	metric(b, "mqseal_control_reconnects_total", "counter", "Key-exchange connection attempts after a loss.",
	       st->control_reconnects);
}


static void admin_endpoint(struct evbuffer *b, const struct admin_http *a)
{
	metric(b, "mqseal_metrics_connections", "gauge", "Connections to this endpoint open now.", a->nconns);
	metric(b, "mqseal_metrics_connections_rejected_total", "counter",
	       "Connections to this endpoint refused over metrics.max_connections.", a->rejected);
	metric(b, "mqseal_metrics_accept_errors_total", "counter",
	       "accept() failures on this endpoint (each pauses it 500 ms).", a->accept_errors);
}

/* One series per TLS listener: alert on it before the certificate expires (it follows reloads). */
static void admin_certs(struct evbuffer *b, const struct listener *l)
{
	struct listener_cert c;

	for (size_t i = 0; listener_cert_at(l, i, &c); i++) {
		if (i == 0)
			metric_head(b, "mqseal_tls_cert_expiry_seconds", "gauge",
				    "Unix time the TLS listener's certificate expires (notAfter).");
		metric_label(b, "mqseal_tls_cert_expiry_seconds", "listener", c.addr,
			     c.not_after > 0 ? (uint64_t)c.not_after : 0);
	}
}

static void admin_metrics_body(const struct admin_http *a, struct evbuffer *b)
{
	admin_traffic(b, a->ctx->stats);
	admin_certs(b, a->listener);
	admin_sealing(b, a->ctx->stats);
	admin_keyex(b, a->ctx);
	admin_endpoint(b, a);
	admin_peers_metrics_(a, b);
	metrics_build_info(b);
	metrics_process(b);
}

/* The /metrics body in the format the request asked for (0.0.4 text unless Accept lists
 * OpenMetrics); *ctype is its Content-Type. */
static struct evbuffer *admin_metrics(const struct admin_http *a, const struct admin_req *req, const char **ctype)
{
	struct evbuffer *text = evbuffer_new(), *om = NULL;

	*ctype = METRICS_CTYPE_TEXT;
	if (!text)
		return NULL;
	admin_metrics_body(a, text);
	if (!req->openmetrics)
		return text;
	om = evbuffer_new();
	if (om && metrics_to_openmetrics(text, om) != 0) {
		evbuffer_free(om);
		om = NULL;
	}
	evbuffer_free(text);
	*ctype = METRICS_CTYPE_OPENMETRICS;
	return om;
}

/* 200 {"status":"ok"} or 503 {"status":"unavailable","reason":...}; either with a "warning" when
 * the configuration seals nothing (the node works as configured, so the status stays). */
static int admin_healthz_body(struct admin_http *a, struct evbuffer *b)
{
	char reason[256] = "";
	int ok = a->ctx->keyex ? keyex_healthy(a->ctx->keyex, reason, sizeof(reason)) : 1;
	const char *warn = conf_all_plaintext(a->ctx->conf)
				   ? ",\"warning\":\"every topic is plaintext (topics.plaintext): nothing is sealed\""
				   : "";

	if (a->ctx->shutting_down) {
		ok = 0;
		snprintf(reason, sizeof(reason), "shutting down");
	}
	if (ok)
		evbuffer_add_printf(b, "{\"status\":\"ok\"%s}\n", warn);
	else
		evbuffer_add_printf(b, "{\"status\":\"unavailable\",\"reason\":\"%s\"%s}\n", reason, warn);
	return ok ? 200 : 503;
}

static const char *admin_reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	default:
		return "Internal Server Error";
	}
}

static int admin_head(struct evbuffer *out, int status, const char *ctype, size_t len)
{
	return evbuffer_add_printf(out,
				   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
				   "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
				   status, admin_reason(status), ctype, len,
				   status == 405 ? "Allow: GET, HEAD\r\n" : "") < 0
		       ? -1
		       : 0;
}

int admin_respond_status_(struct evbuffer *out, int status, const char *reason)
{
	(void)reason;
	return admin_head(out, status, "text/plain", 0);
}

int admin_respond_(struct admin_http *a, const struct admin_req *req, struct evbuffer *out)
{
	bool metrics = strcmp(req->path, "/metrics") == 0, health = strcmp(req->path, "/healthz") == 0;
	bool peers = admin_peers_path_(req->path); /* /peers, /livez, /readyz */
	const char *ctype = "application/json";
	struct evbuffer *b;
	int status, rc = -1;

	if (!metrics && !health && !peers)
		return admin_head(out, 404, "text/plain", 0);
	if (req->method == ADMIN_OTHER)
		return admin_head(out, 405, "text/plain", 0);
	status = 200;
	b = metrics ? admin_metrics(a, req, &ctype) : evbuffer_new();
	if (!b)
		return -1;
	if (peers)
		status = admin_peers_body_(a, req->path, b);
	else if (!metrics)
		status = admin_healthz_body(a, b);
	if (admin_head(out, status, ctype, evbuffer_get_length(b)) != 0)
		goto out;
	if (req->method == ADMIN_GET && evbuffer_add_buffer(out, b) != 0)
		goto out;
	rc = 0;
out:
	evbuffer_free(b);
	return rc;
}

struct admin_http *admin_http_new(struct px_ctx *ctx, char *err, size_t errlen)
{
	struct admin_http *a = calloc(1, sizeof(*a));

	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->ctx = ctx;
	if (admin_listen_(a, err, errlen) != 0) {
		admin_http_free(a);
		return NULL;
	}
	return a;
}

void admin_http_free(struct admin_http *a)
{
	if (!a)
		return;
	admin_listen_free_(a);
	free(a);
}

void admin_http_set_listener(struct admin_http *a, const struct listener *l)
{
	if (a)
		a->listener = l;
}
