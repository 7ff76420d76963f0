/* admin_peers.c - the admin endpoint's per-peer and orchestrator answers (docs/OPERATIONS.md §8):
 * GET /peers (every peer's state as JSON, what `mqseal status` shows), GET /livez (the process
 * and its event loop answer), GET /readyz (broker connected and readiness.ready_when met), and
 * the per-peer metric series, exported only while the peers are at most metrics.peer_series_max
 * (a hub with 10,000 spokes must not export 10,000 label sets per metric by default). */
#include "admin_http_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "clock.h"
#include "keyex.h"
#include "stats.h"
#include "conf.h"

bool admin_peers_path_(const char *path)
{
	return strcmp(path, "/peers") == 0 || strcmp(path, "/livez") == 0 || strcmp(path, "/readyz") == 0;
}

/* ---------------------------------------------------------------- /readyz, /livez */

/* 1 when ready; otherwise 0 with reason. Without a key exchange (relay tests) the node is ready. */
static int admin_ready(const struct admin_http *a, char *reason, size_t len)
{
	const struct px_ctx *ctx = a->ctx;

	if (ctx->shutting_down) {
		snprintf(reason, len, "shutting down");
		return 0;
	}
	return ctx->keyex ? keyex_ready(ctx->keyex, conf_ready_need(ctx->conf), reason, len) : 1;
}

static int admin_readyz(const struct admin_http *a, struct evbuffer *b)
{
	char reason[256] = "";
	int ok = admin_ready(a, reason, sizeof(reason));
	uint64_t keyed = a->ctx->stats->peers_keyed;
	size_t need = conf_ready_need(a->ctx->conf);

	if (ok)
		evbuffer_add_printf(b,
				    "{\"status\":\"ok\",\"peers_keyed\":%" PRIu64 ",\"peers_needed\":%zu}\n",
				    keyed, need);
	else
		evbuffer_add_printf(b, "{\"status\":\"unavailable\",\"reason\":\"%s\"}\n", reason);
	return ok ? 200 : 503;
}

/* Answering at all is the proof: this runs on the event loop that serves devices and keys. */
static int admin_livez(struct evbuffer *b)
{
	evbuffer_add_printf(b, "{\"status\":\"ok\"}\n");
	return 200;
}

/* ---------------------------------------------------------------- /peers */

static void admin_peer_dropped(struct evbuffer *b, const uint64_t *dropped)
{
	const char *sep = "";
	int i;

	evbuffer_add_printf(b, ",\"dropped\":{");
	for (i = 0; i < DROP__COUNT; i++) {
		if (!dropped[i])
			continue;
		evbuffer_add_printf(b, "%s\"%s\":%" PRIu64, sep, stats_drop_name((enum stats_drop)i),
				    dropped[i]);
		sep = ",";
	}
	evbuffer_add_printf(b, "}");
}

/* One peer as a JSON object. Ids are [A-Za-z0-9._-] (conf_node_id_valid), reasons static words:
 * nothing needs escaping. */
static void admin_peer_json(struct evbuffer *b, const struct keyex_peer_info *pi)
{
	evbuffer_add_printf(b,
			    "{\"id\":\"%s\",\"keyed\":%s,\"why\":\"%s\",\"their_epoch\":%" PRIu64
			    ",\"their_epoch_held\":%" PRIu64 ",\"our_epoch_held\":%" PRIu64
			    ",\"last_announcement_ms\":%" PRIu64 ",\"last_confirmation_ms\":%" PRIu64,
			    pi->id, pi->keyed ? "true" : "false", pi->why, pi->their_epoch,
			    pi->their_epoch_held, pi->our_epoch_held, pi->last_announcement_ms,
			    pi->last_confirmation_ms);
	if (pi->last_rejected)
		evbuffer_add_printf(b, ",\"last_rejected\":\"%s\",\"last_rejected_ms\":%" PRIu64,
				    pi->last_rejected, pi->last_rejected_ms);
	else
		evbuffer_add_printf(b, ",\"last_rejected\":null,\"last_rejected_ms\":0");
	evbuffer_add_printf(b, ",\"present\":%s,\"opened\":%" PRIu64,
			    pi->present < 0 ? "null" : (pi->present ? "true" : "false"), pi->opened);
	admin_peer_dropped(b, pi->dropped);
	evbuffer_add_printf(b, "}");
}

static int admin_peers(const struct admin_http *a, struct evbuffer *b)
{
	const struct px_ctx *ctx = a->ctx;
	struct keyex_peer_info pi;
	char reason[256] = "", key[160] = "";
	int ready = admin_ready(a, reason, sizeof(reason));
	size_t i, n = ctx->keyex ? keyex_peer_count(ctx->keyex) : 0;

	if (ctx->keyex)
		keyex_public_text(ctx->keyex, key, sizeof(key));
	evbuffer_add_printf(b,
			    "{\"node_id\":\"%s\",\"public_key\":\"%s\",\"now_ms\":%" PRIu64
			    ",\"broker_connected\":%s,\"epoch\":%" PRIu64 ",\"peers_configured\":%zu"
			    ",\"peers_keyed\":%" PRIu64 ",\"ready\":%s,\"ready_reason\":\"%s\",\"peers\":[",
			    ctx->conf->node_id, key, clock_wall_ms(),
			    ctx->stats->control_connected ? "true" : "false", ctx->stats->current_epoch, n,
			    ctx->stats->peers_keyed, ready ? "true" : "false", reason);
	for (i = 0; i < n; i++) {
		keyex_peer_info(ctx->keyex, i, &pi);
		if (i)
			evbuffer_add_printf(b, ",");
		admin_peer_json(b, &pi);
	}
	evbuffer_add_printf(b, "]}\n");
	return 200;
}

int admin_peers_body_(const struct admin_http *a, const char *path, struct evbuffer *b)
{
	if (strcmp(path, "/livez") == 0)
		return admin_livez(b);
	if (strcmp(path, "/readyz") == 0)
		return admin_readyz(a, b);
	return admin_peers(a, b);
}

/* ---------------------------------------------------------------- metrics */

/* The per-peer families, one value each per peer. */
enum admin_peer_value { PEER_KEYED, PEER_OPENED, PEER_DROPPED, PEER_LAST_ANNOUNCEMENT };

static uint64_t admin_peer_value(const struct keyex_peer_info *pi, enum admin_peer_value which)
{
	uint64_t sum = 0;
	int d;

	switch (which) {
	case PEER_KEYED:
		return pi->keyed;
	case PEER_OPENED:
		return pi->opened;
	case PEER_DROPPED:
		for (d = 0; d < DROP__COUNT; d++)
			sum += pi->dropped[d];
		return sum;
	case PEER_LAST_ANNOUNCEMENT:
		return pi->last_announcement_ms / 1000;
	}
	return 0;
}

static void admin_peer_family(struct evbuffer *b, const struct keyex *kx, const char *name, const char *type,
			      const char *help, enum admin_peer_value which)
{
	struct keyex_peer_info pi;
	size_t i;

	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	for (i = 0; i < keyex_peer_count(kx); i++) {
		keyex_peer_info(kx, i, &pi);
		evbuffer_add_printf(b, "%s{peer=\"%s\"} %" PRIu64 "\n", name, pi.id,
				    admin_peer_value(&pi, which));
	}
}

void admin_peers_metrics_(const struct admin_http *a, struct evbuffer *b)
{
	const struct px_ctx *ctx = a->ctx;
	const struct keyex *kx = ctx->keyex;

	evbuffer_add_printf(
		b,
		"# HELP mqseal_announcements_ignored_total Announcements not verified, by reason "
		"(not_a_peer: from a node that is not a configured peer; normal in a fleet that is not "
		"a full mesh).\n# TYPE mqseal_announcements_ignored_total counter\n"
		"mqseal_announcements_ignored_total{reason=\"not_a_peer\"} %" PRIu64 "\n",
		kx ? keyex_ignored_not_a_peer(kx) : 0);
	evbuffer_add_printf(b,
			    "# HELP mqseal_group_entries_ignored_total Key entries of a read group this node's "
			    "configuration does not let it read (the fleet's groups definitions differ).\n"
			    "# TYPE mqseal_group_entries_ignored_total counter\nmqseal_group_entries_ignored_total %" PRIu64
			    "\n",
			    kx ? keyex_group_entries_ignored(kx) : 0);
	evbuffer_add_printf(b,
			    "# HELP mqseal_peer_series_limit Per-peer series are exported only while the "
			    "peers are at most this many (metrics.peer_series_max).\n"
			    "# TYPE mqseal_peer_series_limit gauge\nmqseal_peer_series_limit %u\n",
			    ctx->conf->metrics.peer_series_max);
	if (!kx || keyex_peer_count(kx) == 0 || keyex_peer_count(kx) > ctx->conf->metrics.peer_series_max)
		return;
	admin_peer_family(b, kx, "mqseal_peer_keyed", "gauge",
			  "1 when this node holds the peer's current key.", PEER_KEYED);
	admin_peer_family(b, kx, "mqseal_peer_opened_total", "counter",
			  "Messages sealed by the peer opened for this node's devices.", PEER_OPENED);
	admin_peer_family(b, kx, "mqseal_peer_dropped_total", "counter",
			  "Messages sealed by the peer not delivered (drops that know their sender).",
			  PEER_DROPPED);
	admin_peer_family(b, kx, "mqseal_peer_last_announcement_timestamp_seconds", "gauge",
			  "When the peer's last announcement was accepted (Unix time; 0 = never).",
			  PEER_LAST_ANNOUNCEMENT);
}
