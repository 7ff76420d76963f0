/* admin_http.c - GET /metrics (Prometheus text exposition format 0.0.4) and GET /healthz (HEAD
 * too). Read-only, loopback by default; other paths get 404, other methods 501 (evhttp). */
#include "admin_http.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "clock.h"
#include "keyex.h"
#include "session.h"
#include "stats.h"
#include "../conf/conf.h"

struct admin_http {
	struct px_ctx *ctx;
	struct evhttp *http;
};

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
	metric(b, "mqseal_device_connections", "gauge", "Device connections open now.", st->conn_current);
	metric(b, "mqseal_device_connections_total", "counter", "Device connections accepted.", st->conn_total);
	metric(b, "mqseal_device_connections_rejected_total", "counter",
	       "Device connections refused over listen.max_connections.", st->conn_rejected);
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
	int i;

	metric(b, "mqseal_peers_configured", "gauge", "Peers in the configuration.", ctx->conf->npeers);
	metric(b, "mqseal_peers_keyed", "gauge", "Peers whose current key this node holds.", st->peers_keyed);
	metric(b, "mqseal_epoch", "gauge", "This node's current sending epoch.", st->current_epoch);
	metric(b, "mqseal_seconds_since_rotation", "gauge", "Seconds since the last epoch started.", since);
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
	metric(b, "mqseal_broker_connected", "gauge", "1 when the key-exchange connection is up.",
	       st->control_connected);
	metric(b, "mqseal_control_reconnects_total", "counter", "Key-exchange connection attempts after a loss.",
	       st->control_reconnects);
}

static void admin_on_metrics(struct evhttp_request *req, void *arg)
{
	struct admin_http *a = arg;
	struct evbuffer *b = evbuffer_new();

	if (!b) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET && evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
		evbuffer_free(b);
		evhttp_send_error(req, 405, NULL);
		return;
	}
	admin_traffic(b, a->ctx->stats);
	admin_sealing(b, a->ctx->stats);
	admin_keyex(b, a->ctx);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain; version=0.0.4");
	evhttp_send_reply(req, 200, "OK", b);
	evbuffer_free(b);
}

static void admin_on_healthz(struct evhttp_request *req, void *arg)
{
	struct admin_http *a = arg;
	struct evbuffer *b = evbuffer_new();
	char reason[256] = "";
	int ok;

	if (!b) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	ok = a->ctx->keyex ? keyex_healthy(a->ctx->keyex, reason, sizeof(reason)) : 1;
	if (a->ctx->shutting_down) {
		ok = 0;
		snprintf(reason, sizeof(reason), "shutting down");
	}
	if (ok)
		evbuffer_add_printf(b, "{\"status\":\"ok\"}\n");
	else
		evbuffer_add_printf(b, "{\"status\":\"unavailable\",\"reason\":\"%s\"}\n", reason);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	evhttp_send_reply(req, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", b);
	evbuffer_free(b);
}

static void admin_on_other(struct evhttp_request *req, void *arg)
{
	(void)arg;
	evhttp_send_error(req, 404, NULL);
}

struct admin_http *admin_http_new(struct px_ctx *ctx, char *err, size_t errlen)
{
	const struct px_conf *conf = ctx->conf;
	struct admin_http *a = calloc(1, sizeof(*a));

	if (!a || !(a->http = evhttp_new(ctx->base))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	a->ctx = ctx;
	evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_max_headers_size(a->http, 8192);
	evhttp_set_max_body_size(a->http, 0);
	evhttp_set_timeout(a->http, 10);
	if (evhttp_set_cb(a->http, "/metrics", admin_on_metrics, a) != 0 ||
	    evhttp_set_cb(a->http, "/healthz", admin_on_healthz, a) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	evhttp_set_gencb(a->http, admin_on_other, a);
	if (!evhttp_bind_socket_with_handle(a->http, conf->metrics.host, conf->metrics.port)) {
		snprintf(err, errlen, "metrics: cannot listen on %s:%u", conf->metrics.host, conf->metrics.port);
		goto fail;
	}
	return a;
fail:
	admin_http_free(a);
	return NULL;
}

void admin_http_free(struct admin_http *a)
{
	if (!a)
		return;
	if (a->http)
		evhttp_free(a->http);
	free(a);
}
