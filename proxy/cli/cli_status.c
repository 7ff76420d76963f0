/* cli_status.c - `mqseal status -c FILE [--json]` and `mqseal health [-c FILE | URL]`: ask the
 * running node through its admin endpoint (found from the configuration: metrics.host and
 * metrics.port) for GET /peers or GET /readyz (docs/OPERATIONS.md §8). status prints a table
 * with the cause of every peer that is not keyed, or the node's JSON as it is for scripts. */
#include "cli_status.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_internal.h"
#include "node.h"
#include "conf.h"

/* The admin endpoint from the configuration; a wildcard address is asked on loopback. */
static int cli_target_from_conf(const char *path, const char *req_path, struct cli_target *t)
{
	struct conf_errors errs = {0};
	struct px_conf *conf = NULL;
	const char *host;
	size_t k;
	int rc = -1;

	if (conf_load(path, false, &conf, &errs) != 0) {
		for (k = 0; k < errs.count; k++)
			fprintf(stderr, "%s\n", errs.lines[k]);
		goto out;
	}
	if (!conf->metrics.enabled) {
		fprintf(stderr,
			"mqseal: %s: metrics.enabled is false: the node serves no admin endpoint to ask\n",
			path);
		goto out;
	}
	host = conf->metrics.host;
	if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)
		host = strcmp(host, "::") == 0 ? "::1" : "127.0.0.1";
	memset(t, 0, sizeof(*t));
	snprintf(t->host, sizeof(t->host), "%s", host);
	snprintf(t->port, sizeof(t->port), "%u", (unsigned)conf->metrics.port);
	snprintf(t->path, sizeof(t->path), "%s", req_path);
	rc = 0;
out:
	conf_free(conf);
	conf_errors_clear(&errs);
	return rc;
}

/* "12s ago", "3h04m ago", "never". */
static const char *cli_age(uint64_t now_ms, uint64_t at_ms, char *buf, size_t len)
{
	uint64_t s;

	if (!at_ms)
		return "never";
	s = now_ms > at_ms ? (now_ms - at_ms) / 1000 : 0;
	if (s < 3600)
		snprintf(buf, len, "%" PRIu64 "s ago", s);
	else
		snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m ago", s / 3600, s / 60 % 60);
	return buf;
}

/* The sum of a flat object of counters ({"replay":1,"auth":2}): the numbers after each ':'. */
static uint64_t cli_dropped_sum(const char *dropped)
{
	uint64_t sum = 0;
	const char *p;

	if (!dropped || *dropped != '{')
		return 0;
	for (p = dropped + 1; *p && *p != '}'; p++)
		if (*p == ':')
			sum += cli_json_u64(p + 1);
	return sum;
}

/* One sentence per reason a peer is not keyed: what to look at. */
static void cli_cause(const char *me, const char *key, const char *id, const char *why, const char *pe)
{
	char last[32];

	cli_json_text(cli_json_member(pe, "last_rejected"), last, sizeof(last));
	if (strcmp(why, "never_announced") == 0)
		printf("  %s: no announcement received: it is not running, not connected to the broker, "
		       "uses another keyex.topic_prefix, or does not list %s as a peer (a node announces "
		       "only to its peers);\n     it must list { id = \"%s\"; public_key = \"%s\"; }\n",
		       id, me, me, key);
	else if (strcmp(why, "no_entry") == 0)
		printf("  %s: announces without an entry for %s: %s does not list %s as a peer, or lists it "
		       "with another "
		       "key;\n     it must list { id = \"%s\"; public_key = \"%s\"; }\n",
		       id, me, id, me, me, key);
	else if (strcmp(why, "unknown_key") == 0)
		printf("  %s: its entry for %s wraps to an ephemeral key this node no longer holds (an old "
		       "announcement "
		       "of ours; it re-announces once it sees the new one)\n",
		       id, me);
	else if (strcmp(why, "bad_signature") == 0)
		printf("  %s: its announcements do not verify with the public_key configured for it here: "
		       "check its "
		       "peers entry (or someone else publishes on its topic)\n",
		       id);
	else if (strcmp(why, "clock_skew") == 0)
		printf("  %s: its announcements are dated in the future: check its clock (NTP) and "
		       "keyex.max_skew_seconds\n",
		       id);
	else if (strcmp(why, "stale") == 0 && strcmp(last, "stale") == 0 &&
		 cli_json_u64(cli_json_member(pe, "last_rejected_ms")) >=
			 cli_json_u64(cli_json_member(pe, "last_announcement_ms")))
		printf("  %s: its announcements are older than one already seen (replayed?) or expired on "
		       "arrival (its "
		       "clock is behind?)\n",
		       id);
	else if (strcmp(why, "stale") == 0)
		printf("  %s: its last announcement expired: the peer is down or cut off from the broker\n",
		       id);
	else if (strcmp(why, "keyed") != 0)
		printf("  %s: its last message was rejected (%s): see this node's log\n", id, why);
}

static void cli_peer_row(const char *pe, uint64_t now)
{
	char id[72], why[32], a1[32], a2[32];

	cli_json_text(cli_json_member(pe, "id"), id, sizeof(id));
	cli_json_text(cli_json_member(pe, "why"), why, sizeof(why));
	printf("%-16s %-5s %-15s %-12" PRIu64 " %-12" PRIu64 " %-13s %-13s %-8" PRIu64 " %" PRIu64 "\n", id,
	       cli_json_true(cli_json_member(pe, "keyed")) ? "yes" : "no", why,
	       cli_json_u64(cli_json_member(pe, "their_epoch_held")),
	       cli_json_u64(cli_json_member(pe, "our_epoch_held")),
	       cli_age(now, cli_json_u64(cli_json_member(pe, "last_announcement_ms")), a1, sizeof(a1)),
	       cli_age(now, cli_json_u64(cli_json_member(pe, "last_confirmation_ms")), a2, sizeof(a2)),
	       cli_json_u64(cli_json_member(pe, "opened")), cli_dropped_sum(cli_json_member(pe, "dropped")));
}

/* The table for people: the node, one row per peer, then the cause for each peer not keyed. */
static int cli_print_table(const char *body)
{
	const char *peers = cli_json_member(body, "peers"), *pe;
	char me[72], key[80], reason[256], id[72], why[32];
	uint64_t now = cli_json_u64(cli_json_member(body, "now_ms"));
	size_t i;

	if (!peers) {
		fprintf(stderr, "mqseal: the node's answer to /peers is not what this version reads\n");
		return NODE_EXIT_FAILURE;
	}
	cli_json_text(cli_json_member(body, "node_id"), me, sizeof(me));
	cli_json_text(cli_json_member(body, "public_key"), key, sizeof(key));
	cli_json_text(cli_json_member(body, "ready_reason"), reason, sizeof(reason));
	printf("node %s  %s\n  broker %s, epoch %" PRIu64 ", %" PRIu64 " of %" PRIu64
	       " peers keyed, %s%s%s\n\n",
	       me, key,
	       cli_json_true(cli_json_member(body, "broker_connected")) ? "connected" : "NOT connected",
	       cli_json_u64(cli_json_member(body, "epoch")),
	       cli_json_u64(cli_json_member(body, "peers_keyed")),
	       cli_json_u64(cli_json_member(body, "peers_configured")),
	       cli_json_true(cli_json_member(body, "ready")) ? "ready" : "NOT ready", reason[0] ? ": " : "",
	       reason);
	printf("%-16s %-5s %-15s %-12s %-12s %-13s %-13s %-8s %s\n", "PEER", "KEYED", "WHY", "THEIRS HELD",
	       "OURS HELD", "ANNOUNCED", "CONFIRMED", "OPENED", "DROPPED");
	for (i = 0; (pe = cli_json_elem(peers, i)) != NULL; i++)
		cli_peer_row(pe, now);
	for (i = 0; (pe = cli_json_elem(peers, i)) != NULL; i++) {
		cli_json_text(cli_json_member(pe, "id"), id, sizeof(id));
		cli_json_text(cli_json_member(pe, "why"), why, sizeof(why));
		cli_cause(me, key, id, why, pe);
	}
	return NODE_EXIT_OK;
}

/* GETs t; prints why when no answer came. */
static int cli_ask(const struct cli_target *t, int *status, char **body)
{
	char err[512];

	if (cli_http_get(t, status, body, err, sizeof(err)) != 0) {
		fprintf(stderr, "mqseal: %s\n", err);
		return -1;
	}
	return 0;
}

static const char cli_usage_text[] =
	"usage: mqseal status -c FILE [--json]   every peer's state, from the node running with FILE\n"
	"       mqseal health [-c FILE | URL]    exit 0 when that node's /readyz is 200 (default URL\n"
	"                                        http://127.0.0.1:9883/readyz)\n";

static int cli_status_usage(const char *msg)
{
	if (!msg) {
		fputs(cli_usage_text, stdout);
		return NODE_EXIT_OK;
	}
	fprintf(stderr, "mqseal: %s\n%s", msg, cli_usage_text);
	return NODE_EXIT_USAGE;
}

int cli_status_main(int argc, char **argv)
{
	static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
						 {"json", no_argument, NULL, 'j'},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	const char *config = NULL;
	struct cli_target t;
	char *body = NULL;
	int c, json = 0, status = 0, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:jh", longopts, NULL)) != -1) {
		if (c == 'c')
			config = optarg;
		else if (c == 'j')
			json = 1;
		else if (c == 'h')
			return cli_status_usage(NULL);
		else
			return cli_status_usage("status: unknown option");
	}
	if (!config || optind != argc)
		return cli_status_usage("status needs -c FILE (the running node's configuration)");
	if (cli_target_from_conf(config, "/peers", &t) != 0)
		return NODE_EXIT_USAGE;
	if (cli_ask(&t, &status, &body) != 0)
		return NODE_EXIT_FAILURE;
	if (status != 200) {
		fprintf(stderr, "mqseal: %s port %s answered %d to GET /peers (an older node?)\n", t.host,
			t.port, status);
		rc = NODE_EXIT_FAILURE;
	} else if (json) {
		fputs(body, stdout);
		rc = NODE_EXIT_OK;
	} else {
		rc = cli_print_table(body);
	}
	free(body);
	return rc;
}

int cli_health_main(int argc, char **argv)
{
	struct cli_target t;
	char err[512], *body = NULL;
	int status = 0, ok;

	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
		return cli_status_usage(NULL);
	if (argc == 3 && strcmp(argv[1], "-c") == 0) {
		if (cli_target_from_conf(argv[2], "/readyz", &t) != 0)
			return NODE_EXIT_USAGE;
	} else if (argc <= 2) {
		/* no argument: the default metrics.host and metrics.port */
		if (cli_url_parse(argc == 2 ? argv[1] : "http://127.0.0.1:9883/readyz", "/readyz", &t, err,
				  sizeof(err)) != 0)
			return cli_status_usage(err);
	} else {
		return cli_status_usage("health takes -c FILE or one URL");
	}
	if (cli_ask(&t, &status, &body) != 0)
		return NODE_EXIT_FAILURE;
	ok = status == 200;
	printf("%s %d %s", ok ? "ready:" : "not ready:", status, body);
	if (!*body || body[strlen(body) - 1] != '\n')
		printf("\n");
	free(body);
	return ok ? NODE_EXIT_OK : NODE_EXIT_FAILURE;
}
