/* node.c - wiring of a running node: load and check the configuration, build the event loop,
 * the DNS resolver, the TLS context (replaced by each reload, node_signal.c), the listener; handle
 * signals; tear down in order. */
#include "node_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <mosquitto.h>

#include "admin_http.h"
#include "ctx.h"
#include "clock.h"
#include "devstate.h"
#include "keyex.h"
#include "listener.h"
#include "log.h"
#include "marks.h"
#include "policy.h"
#include "seal.h"
#include "session.h"
#include "stats.h"
#include "upstream.h"
#include "conf.h"


void node_print_conf_errors_(const struct conf_errors *errs)
{
	size_t i;

	char line[1024];

	for (i = 0; i < errs->count; i++)
		log_plain(LOG_ERROR, errs->lines[i]);
	for (i = 0; i < errs->nwarnings; i++) {
		snprintf(line, sizeof(line), "warning: %s", errs->warnings[i]);
		log_plain(LOG_WARN, line);
	}
}

void node_apply_log_(const struct px_conf *conf, int verbosity)
{
	int level = (int)conf->log.level + verbosity;

	if (level < LOG_ERROR)
		level = LOG_ERROR;
	if (level > LOG_DEBUG)
		level = LOG_DEBUG;
	log_set_level((enum log_level)level);
	log_set_json(conf->log.format == CONF_LOG_JSON);
}

/* Each device connection costs two descriptors (device + broker), each admin HTTP connection one;
 * keep some for the rest. */
static int node_check_fd_limit(const struct px_conf *conf)
{
	unsigned admin = conf->metrics.enabled ? conf->metrics.max_connections : 0;
	rlim_t need = (rlim_t)conf->listen.max_connections * 2 + admin + 64;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 0;
	if (rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_max >= need) {
		rl.rlim_cur = need;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			return 0;
	}
	log_error("node",
		  "listen.max_connections = %u and metrics.max_connections = %u need %llu file descriptors, "
		  "but the limit is %llu (hard %llu): raise it (ulimit -n, systemd LimitNOFILE=) or lower "
		  "listen.max_connections",
		  conf->listen.max_connections, admin, (unsigned long long)need, (unsigned long long)rl.rlim_cur,
		  (unsigned long long)rl.rlim_max);
	return -1;
}

static void node_keys_changed_one(struct session *s, void *arg)
{
	(void)arg;
	session_keys_changed(s);
}

/* keyex hook: a key was installed or activated; sessions retry what waits for one. */
static void node_on_keys_changed(void *arg)
{
	struct node *n = arg;

	session_set_foreach(n->ctx.sessions, node_keys_changed_one, NULL);
}

/* keyex hook: a new own epoch is active; re-seal the retained cache under it. */
static void node_on_activated(void *arg)
{
	struct node *n = arg;

	seal_retained_republish(n->ctx.seal);
}

/* The control connection is up again: it watches the retained cache's topics (§10.1). */
static void node_on_control_up(void *arg)
{
	struct node *n = arg;

	seal_retained_watch_all(n->ctx.seal);
}

static void node_on_watched(void *arg, const char *topic, const uint8_t *payload, size_t len)
{
	struct node *n = arg;

	seal_retained_watched(n->ctx.seal, topic, payload, len);
}

/* Writes the retained order marks if they changed (at most every NODE_MARKS_SAVE_MS, and at
 * exit): what a crash loses is the marks of the last seconds (PROTOCOL.md §10.4). */
#define NODE_MARKS_SAVE_MS 2000
static void node_save_marks(struct node *n, bool now)
{
	static struct log_limit lim;
	unsigned suppressed = 0;
	char note[LOG_NOTE_MAX];
	uint64_t t = clock_mono_ms();

	if (!n->marks_path || !marks_dirty(n->ctx.marks) || (!now && t - n->marks_saved < NODE_MARKS_SAVE_MS))
		return;
	n->marks_saved = t;
	if (marks_save(n->ctx.marks, n->marks_path) != 0 && log_limit_allow(&lim, t, &suppressed))
		log_warn("node", "cannot write %s: %s (retained order marks kept in memory)%s", n->marks_path,
			 strerror(errno), log_suppressed_note(suppressed, note));
}

/* Once a second: forget device state nobody can use any more; save the marks. */
static void node_on_housekeeping(evutil_socket_t fd, short what, void *arg)
{
	struct node *n = arg;

	(void)fd;
	(void)what;
	devstate_gc(n->ctx.devices, keyex_keyring(n->ctx.keyex), clock_mono_ms());
	node_save_marks(n, false);
	node_notify_status_(n);
}

/* The marks of the last run (state_dir exists once keyex_new has run). */
static int node_load_marks(struct node *n, char *err, size_t errlen)
{
	size_t len = strlen(n->conf->state_dir) + sizeof("/marks");

	n->marks_path = malloc(len);
	if (!n->marks_path) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	snprintf(n->marks_path, len, "%s/marks", n->conf->state_dir);
	if (marks_load(n->ctx.marks, n->marks_path) != 0) {
		snprintf(err, errlen, "state_dir %s: cannot read %s: %s", n->conf->state_dir, n->marks_path,
			 strerror(errno));
		return -1;
	}
	return 0;
}

static int node_setup_sealing(struct node *n, char *err, size_t errlen)
{
	struct timeval second = {.tv_sec = 1, .tv_usec = 0};
	const struct keyex_hooks hooks = {.keys_changed = node_on_keys_changed, .activated = node_on_activated,
					  .up = node_on_control_up, .watched = node_on_watched, .arg = n};

	n->ctx.policy = policy_new(n->conf);
	n->ctx.seal = seal_new(&n->ctx);
	n->ctx.devices = devstate_table_new();
	n->ctx.marks = marks_new();
	n->ctx.started_wall_ms = clock_wall_ms();
	n->housekeeping = event_new(n->ctx.base, -1, EV_PERSIST, node_on_housekeeping, n);
	if (!n->ctx.policy || !n->ctx.seal || !n->ctx.devices || !n->ctx.marks || !n->housekeeping) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	n->ctx.keyex = keyex_new(&n->ctx, &hooks, err, errlen);
	if (!n->ctx.keyex || node_load_marks(n, err, errlen) != 0)
		return -1;
	event_add(n->housekeeping, &second);
	return 0;
}

/* After binding: give up root for `user` (the listener and metrics sockets stay open). The state
 * directory is handed to that user, who must keep writing the epoch record there. */
static int node_drop_root(const struct px_conf *conf, char *err, size_t errlen)
{
	struct passwd *pw;

	if (!conf->user || geteuid() != 0)
		return 0;
	pw = getpwnam(conf->user);
	if (!pw) {
		snprintf(err, errlen, "user %s: no such user", conf->user);
		return -1;
	}
	if (chown(conf->state_dir, pw->pw_uid, pw->pw_gid) != 0) {
		snprintf(err, errlen, "user %s: cannot hand over %s", conf->user, conf->state_dir);
		return -1;
	}
	if (setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
		snprintf(err, errlen, "user %s: cannot switch to it", conf->user);
		return -1;
	}
	if (setuid(0) == 0) {
		snprintf(err, errlen, "user %s: root could be regained; refusing to run", conf->user);
		return -1;
	}
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	log_info("node", "running as user %s (uid %u)", conf->user, (unsigned)pw->pw_uid);
	return 0;
}

/* Packet-sized buffers (up to listen.max_packet_size) come and go with every large message; above
 * glibc's default mmap threshold each would be a fresh mapping, zeroed and faulted in page by page.
 * Keep them on the heap and keep the heap (mallopt(3)). */
static void node_tune_malloc(const struct px_conf *conf)
{
	size_t threshold = (size_t)conf->listen.max_packet_size * 2 + 65536;

	if (threshold > (size_t)32 * 1024 * 1024)
		threshold = (size_t)32 * 1024 * 1024; /* glibc's maximum on 64-bit */
	(void)mallopt(M_MMAP_THRESHOLD, (int)threshold);
	(void)mallopt(M_TRIM_THRESHOLD, (int)(threshold * 2));
}

static int node_setup(struct node *n, char *err, size_t errlen)
{
	node_tune_malloc(n->conf);
	n->ctx.base = event_base_new();
	if (!n->ctx.base) {
		snprintf(err, errlen, "cannot create the event loop");
		return -1;
	}
	n->ctx.dns = evdns_base_new(n->ctx.base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
						     EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	n->ctx.sessions = session_set_new();
	n->shutdown_timer = evtimer_new(n->ctx.base, node_on_shutdown_timer_, n);
	n->sig_term = evsignal_new(n->ctx.base, SIGTERM, node_on_signal_, n);
	n->sig_int = evsignal_new(n->ctx.base, SIGINT, node_on_signal_, n);
	n->sig_hup = evsignal_new(n->ctx.base, SIGHUP, node_on_signal_, n);
	if (!n->ctx.dns || !n->ctx.sessions || !n->shutdown_timer || !n->sig_term || !n->sig_int || !n->sig_hup) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	evsignal_add(n->sig_term, NULL);
	evsignal_add(n->sig_int, NULL);
	evsignal_add(n->sig_hup, NULL);
	if (n->conf->broker.tls.enabled) {
		n->ctx.tls = upstream_tls_new(&n->conf->broker.tls, err, errlen);
		if (!n->ctx.tls)
			return -1;
	}
	if (node_setup_sealing(n, err, errlen) != 0)
		return -1;
	/* Metrics first: once devices can connect, the node can be watched. */
	if (n->conf->metrics.enabled) {
		n->admin = admin_http_new(&n->ctx, err, errlen);
		if (!n->admin)
			return -1;
	}
	n->listener = listener_new(&n->ctx, err, errlen);
	if (!n->listener)
		return -1;
	admin_http_set_listener(n->admin, n->listener);
	if (node_drop_root(n->conf, err, errlen) != 0)
		return -1;
	return keyex_start(n->ctx.keyex);
}

static void node_teardown(struct node *n)
{
	node_notify_free_(n);
	admin_http_free(n->admin);
	listener_free(n->listener);
	session_set_free(n->ctx.sessions);
	devstate_table_free(n->ctx.devices);
	node_save_marks(n, true);
	marks_free(n->ctx.marks);
	free(n->marks_path);
	keyex_free(n->ctx.keyex);
	seal_free(n->ctx.seal);
	policy_free(n->ctx.policy);
	if (n->ctx.tls)
		SSL_CTX_free(n->ctx.tls);
	if (n->ctx.dns)
		evdns_base_free(n->ctx.dns, 0);
	if (n->sig_term)
		event_free(n->sig_term);
	if (n->sig_int)
		event_free(n->sig_int);
	if (n->sig_hup)
		event_free(n->sig_hup);
	if (n->shutdown_timer)
		event_free(n->shutdown_timer);
	if (n->housekeeping)
		event_free(n->housekeeping);
	if (n->ctx.base)
		event_base_free(n->ctx.base);
	conf_free(n->conf);
}

int node_main(const char *conf_path, int verbosity)
{
	struct conf_errors errs = {0};
	struct node n;
	char err[512];
	int rc = NODE_EXIT_FAILURE;

	memset(&n, 0, sizeof(n));
	log_detect_journal(); /* before the first line, configuration errors included */
	if (conf_load(conf_path, true, &n.conf, &errs) != 0) {
		node_print_conf_errors_(&errs);
		conf_errors_clear(&errs);
		return NODE_EXIT_USAGE;
	}
	node_apply_log_(n.conf, verbosity);
	/* Through the logger (its format, its escaping), like the warnings of a reload. */
	for (size_t i = 0; i < errs.nwarnings; i++)
		log_warn("node", "%s", errs.warnings[i]);
	conf_errors_clear(&errs);
	/* Memory holds keys: no core dumps, no ptrace by other users (prctl(2)). */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	signal(SIGPIPE, SIG_IGN);
	n.conf_path = conf_path;
	n.verbosity = verbosity;
	n.ctx.conf = n.conf;
	n.ctx.stats = &n.stats;
	mosquitto_lib_init();
	if (node_check_fd_limit(n.conf) != 0)
		goto out;
	if (node_setup(&n, err, sizeof(err)) != 0) {
		log_error("node", "%s", err);
		goto out;
	}
	log_info("node", "mqseal %s node %s listening on %s:%u, broker %s:%u%s", MQSEAL_VERSION, n.conf->node_id,
		 n.conf->listen.host, n.conf->listen.port, n.conf->broker.host, n.conf->broker.port,
		 n.conf->broker.tls.enabled ? " (TLS)" : "");
	if (node_notify_ready_(&n, err, sizeof(err)) != 0) {
		log_error("node", "%s", err);
		goto out;
	}
	if (event_base_dispatch(n.ctx.base) == 0)
		rc = NODE_EXIT_OK;
	log_info("node", "stopped");
out:
	node_teardown(&n);
	mosquitto_lib_cleanup();
	return rc;
}
