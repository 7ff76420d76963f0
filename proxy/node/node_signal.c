/* node_signal.c - signals of a running node: SIGTERM/SIGINT stop gracefully (stop accepting, let
 * each device's in-flight QoS 1/2 publishes be acknowledged for up to shutdown_grace_seconds,
 * then close), SIGHUP reloads peers (the list and peers_file), topic policy, log level and the
 * TLS certificates (listeners', broker.tls's: new connections get them) without touching
 * connections (a configuration that fails validation, peers_file included, is refused
 * and the old one stays; the outcome goes to the log, to <state_dir>/reload-result for `mqseal
 * reload`, and RELOADING=1/READY=1 to systemd). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <signal.h>

#include "clock.h"
#include "keyex.h"
#include "listener.h"
#include "log.h"
#include "node_internal.h"
#include "policy.h"
#include "reload.h"
#include "session.h"
#include "conf.h"
#include "upstream.h"
#include "admin_http.h"

static void node_shutdown_one(struct session *s, void *arg)
{
	(void)arg;
	session_shutdown(s);
}

static void node_close_one(struct session *s, void *arg)
{
	session_close(s, arg);
}

void node_on_shutdown_timer_(evutil_socket_t fd, short what, void *arg)
{
	struct node *n = arg;
	struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};

	(void)fd;
	(void)what;
	if (session_set_count(n->ctx.sessions) == 0) {
		event_base_loopexit(n->ctx.base, NULL);
		return;
	}
	if (n->shutdown_deadline && clock_mono_ms() >= n->shutdown_deadline) {
		log_warn("node", "shutdown_grace_seconds passed: closing %zu connection(s) with publishes in flight",
			 session_set_count(n->ctx.sessions));
		session_set_foreach(n->ctx.sessions, node_close_one, "shutdown grace passed");
		n->shutdown_deadline = 0; /* each close is bounded by its drain timer */
	}
	event_add(n->shutdown_timer, &tv);
}

static void node_stop(struct node *n, int sig)
{
	struct timeval now = {0, 0};

	if (n->ctx.shutting_down) {
		log_warn("node", "second signal: exiting now");
		event_base_loopexit(n->ctx.base, NULL);
		return;
	}
	log_info("node", "%s: stopping; %zu device connection(s) get up to %us to finish in-flight publishes",
		 sig == SIGTERM ? "SIGTERM" : "SIGINT", session_set_count(n->ctx.sessions),
		 n->conf->shutdown_grace_seconds);
	n->ctx.shutting_down = true;
	node_notify_stopping_(n);
	n->shutdown_deadline = clock_mono_ms() + (uint64_t)n->conf->shutdown_grace_seconds * 1000u;
	admin_http_set_listener(n->admin, NULL);
	listener_free(n->listener); /* new devices are refused at once, not left hanging */
	n->listener = NULL;
	session_set_foreach(n->ctx.sessions, node_shutdown_one, NULL);
	event_add(n->shutdown_timer, &now);
}

static bool node_str_differ(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/* The listening sockets and their TLS contexts are made at start only. */
static bool node_listeners_changed(const struct px_conf *a, const struct px_conf *b)
{
	if (a->nlisteners != b->nlisteners)
		return true;
	for (size_t i = 0; i < a->nlisteners; i++) {
		const struct conf_listener *x = &a->listeners[i], *y = &b->listeners[i];
		if (x->port != y->port || x->allow_plaintext_remote != y->allow_plaintext_remote ||
		    node_str_differ(x->host, y->host) || node_str_differ(x->cert_file, y->cert_file) ||
		    node_str_differ(x->key_file, y->key_file) || node_str_differ(x->client_ca_file, y->client_ca_file) ||
		    node_str_differ(x->ws_path, y->ws_path))
			return true;
	}
	return false;
}

/* What a reload cannot change (it needs a restart): say so, keep the running value. */
static int node_fixed_changed(const struct px_conf *a, const struct px_conf *b, char *what, size_t len)
{
#define FIXED_STR(f) \
	if ((a->f == NULL) != (b->f == NULL) || (a->f && strcmp(a->f, b->f) != 0)) \
		return snprintf(what, len, "%s", #f), 1
#define FIXED_NUM(f) \
	if (a->f != b->f) \
		return snprintf(what, len, "%s", #f), 1
	FIXED_STR(node_id);
	FIXED_STR(identity_file);
	FIXED_STR(state_dir);
	FIXED_STR(listen.host);
	FIXED_NUM(listen.port);
	FIXED_STR(broker.host);
	FIXED_NUM(broker.port);
	FIXED_NUM(broker.tls.enabled);
	FIXED_STR(keyex.topic_prefix);
	FIXED_NUM(keyex.interval_seconds);
	FIXED_NUM(seal.padding);
	FIXED_NUM(metrics.enabled);
	FIXED_NUM(metrics.port);
	if (node_listeners_changed(a, b))
		return snprintf(what, len, "listeners"), 1;
#undef FIXED_STR
#undef FIXED_NUM
	return 0;
}

/* Moves the reloadable parts of nc (peers, topic policy and prefix map, log settings) into cur, and cur's old
 * ones into nc (which the caller frees). Everything else keeps its running value. */
static void node_take_reloadable(struct px_conf *cur, struct px_conf *nc)
{
	struct px_conf old = *cur;

	cur->peers = nc->peers;
	cur->npeers = nc->npeers;
	cur->peers_file = nc->peers_file; /* where the peers' lines are, for messages */
	cur->peers_file_path = nc->peers_file_path;
	cur->npeers_file = nc->npeers_file;
	cur->topics.plaintext = nc->topics.plaintext;
	cur->topics.nplaintext = nc->topics.nplaintext;
	cur->topics.deny = nc->topics.deny;
	cur->topics.ndeny = nc->topics.ndeny;
	cur->topic_prefix_map = nc->topic_prefix_map;
	cur->ntopic_prefix_map = nc->ntopic_prefix_map;
	cur->log = nc->log;
	cur->groups = nc->groups; /* after keyex_reload, which compared them with the running ones */
	cur->ngroups = nc->ngroups;
	nc->groups = old.groups;
	nc->ngroups = old.ngroups;
	nc->topic_prefix_map = old.topic_prefix_map;
	nc->ntopic_prefix_map = old.ntopic_prefix_map;
	nc->peers = old.peers;
	nc->npeers = old.npeers;
	nc->peers_file = old.peers_file;
	nc->peers_file_path = old.peers_file_path;
	nc->npeers_file = old.npeers_file;
	nc->topics.plaintext = old.topics.plaintext;
	nc->topics.nplaintext = old.topics.nplaintext;
	nc->topics.deny = old.topics.deny;
	nc->topics.ndeny = old.topics.ndeny;
}

/* broker.tls: its files (the paths in force) read again into a new client context for the broker
 * connections made from now on; the open ones keep theirs (SSL_new counts the reference). On
 * failure the context in use stays, and err says why ("FILE: broker.tls.<option>: reason"). */
static int node_reload_broker_tls(struct node *n, char *err, size_t errlen)
{
	char why[200]; /* upstream_tls_new's message: the option and OpenSSL's reason, ~150 bytes */
	SSL_CTX *tls;

	if (!n->ctx.tls)
		return 0; /* no TLS to the broker at start: broker.tls.enabled takes a restart */
	tls = upstream_tls_new(&n->conf->broker.tls, why, sizeof(why));
	if (!tls) {
		snprintf(err, errlen, "%s: %s", n->conf->path, why);
		log_error("node", "broker.tls: certificates not reloaded: %s; new broker connections keep the "
			  "ones in use", err);
		return -1;
	}
	SSL_CTX_free(n->ctx.tls);
	n->ctx.tls = tls;
	log_info("node", "broker.tls: CA and client certificate files reloaded for new broker connections");
	return 0;
}

/* The certificates of the TLS listeners and of broker.tls, read again (same paths). 0, or -1 with
 * out saying what failed (each failure keeps its old context and is logged on its own). */
static int node_reload_certs(struct node *n, char *out, size_t len)
{
	char lerr[RELOAD_MESSAGE_MAX] = "", berr[RELOAD_MESSAGE_MAX] = "";
	size_t failed = listener_reload_tls(n->listener, lerr, sizeof(lerr));

	if (node_reload_broker_tls(n, berr, sizeof(berr)) != 0)
		failed++;
	if (failed == 0)
		return 0;
	snprintf(out, len, "%s (%zu certificate problem(s), see the log; what failed keeps the certificate in "
		 "use; peers, topics and log level were reloaded)", lerr[0] ? lerr : berr, failed);
	return -1;
}

/* Loads and applies the configuration again. 0 (out: what was reloaded), -1 (out: why it was
 * refused; the running configuration stays) or 1 (applied, but certificates were refused: out says
 * which; they stay as they were). */
static int node_reload_apply(struct node *n, char *out, size_t len)
{
	struct conf_errors errs = {0};
	struct px_conf *nc = NULL, *cur = n->conf;
	struct policy *np = NULL;
	char what[64], err[256];
	size_t i;

	if (conf_load(n->conf_path, true, &nc, &errs) != 0) {
		for (i = 0; i < errs.count; i++)
			log_error("node", "reload: %s", errs.lines[i]);
		snprintf(out, len, "%s is invalid", n->conf_path); /* its problems: the lines above */
		conf_errors_clear(&errs);
		return -1;
	}
	for (i = 0; i < errs.nwarnings; i++)
		log_warn("node", "reload: %s", errs.warnings[i]);
	conf_errors_clear(&errs);
	if (node_fixed_changed(cur, nc, what, sizeof(what)) && strcmp(what, "node_id") == 0) {
		snprintf(out, len, "node_id changed; restart to use another identity");
		conf_free(nc);
		return -1;
	}
	if (node_fixed_changed(cur, nc, what, sizeof(what)))
		log_warn("node", "SIGHUP: %s (and perhaps more) changed: it takes a restart; peers, topics and log "
			 "level are reloaded now", what);
	np = policy_new(nc);
	if (!np || keyex_reload(n->ctx.keyex, nc, err, sizeof(err)) != 0) {
		snprintf(out, len, "%s", np ? err : "out of memory");
		policy_free(np);
		conf_free(nc);
		return -1;
	}
	policy_free(n->ctx.policy);
	n->ctx.policy = np;
	node_take_reloadable(cur, nc);
	conf_free(nc); /* now holding the old peers and topics */
	node_apply_log_(cur, n->verbosity);
	if (node_reload_certs(n, out, len) != 0)
		return 1;
	snprintf(out, len, "reloaded %s (%zu peers, %zu of them from %s; %zu plaintext and %zu deny filters)",
		 n->conf_path, cur->npeers, cur->npeers_file, cur->peers_file_path ? cur->peers_file_path : "no peers_file",
		 cur->topics.nplaintext, cur->topics.ndeny);
	return 0;
}

/* SIGHUP: the service manager hears RELOADING=1 then READY=1, `mqseal reload` the outcome. */
static void node_reload(struct node *n)
{
	char msg[RELOAD_MESSAGE_MAX];
	int rc;

	node_notify_reloading_(n);
	rc = node_reload_apply(n, msg, sizeof(msg));
	n->reloads++;
	if (rc == 0)
		log_info("node", "SIGHUP: %s", msg);
	else if (rc > 0)
		log_error("node", "SIGHUP: reload refused in part: %s", msg);
	else
		log_error("node", "SIGHUP: reload refused: %s; the running configuration stays", msg);
	node_reload_result_(n, rc == 0 ? "ok" : "refused", msg);
	node_notify_reloaded_(n);
}

void node_on_signal_(evutil_socket_t sig, short what, void *arg)
{
	struct node *n = arg;

	(void)what;
	if (sig == SIGHUP)
		node_reload(n);
	else
		node_stop(n, (int)sig);
}
