/* conf_check.c - what no single option can say: missing required options, derived defaults
 * (identity_file from state_dir, broker.port 8883 with TLS), checks across options, warnings
 * about accepted but questionable values, and, with check_files, the files the configuration
 * names. Runs after the walk, while the libconfig tree (each setting's line) is still alive; a
 * problem is reported at the setting that is most likely wrong, or without a line when every
 * option involved has its default. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_internal.h"

/* MQTT 5 §4.2: port 8883 is registered with IANA for MQTT over TLS. */
#define CONF_MQTT_TLS_PORT 8883
/* Below this padding, sizes reveal short payloads byte for byte (one AES block; PROTOCOL.md §6). */
#define CONF_PADDING_WEAK 16
/* Above this clock skew, a replayed old announcement stays acceptable for longer than the five
 * minutes most time-bounded protocols allow (Kerberos' default clock skew). */
#define CONF_SKEW_WEAK 300

const config_setting_t *conf_origin_(const struct conf_load_ *ld, const char *name)
{
	size_t i;
	return conf_key_find_(name, &i) ? ld->origin[i] : NULL;
}

bool conf_bad_(const struct conf_load_ *ld, const char *name)
{
	size_t i;
	return conf_key_find_(name, &i) && ld->bad[i];
}

/* Was any of the options in list (NULL-terminated) rejected? A cross-check on a value the file
 * did not manage to set would only repeat that problem in other words. */
static bool conf_any_bad(const struct conf_load_ *ld, const char *const *list)
{
	size_t i;

	for (i = 0; list[i]; i++)
		if (conf_bad_(ld, list[i]))
			return true;
	return false;
}

/* The first of the options named in list (NULL-terminated) that the file sets, to report a
 * problem at; *name becomes that option, or list[0] when the file sets none of them. */
static const config_setting_t *conf_where(const struct conf_load_ *ld, const char *const *list,
					  const char **name)
{
	const config_setting_t *s;
	size_t i;

	for (i = 0; list[i]; i++) {
		s = conf_origin_(ld, list[i]);
		if (s) {
			*name = list[i];
			return s;
		}
	}
	*name = list[0];
	return NULL;
}

static void conf_check_required(struct conf_load_ *ld)
{
	size_t i;

	for (i = 0; i < conf_nkeys_; i++)
		if (conf_keys_[i].required && !ld->origin[i])
			conf_report_(ld, NULL, conf_keys_[i].name, false, "required option is missing");
}

static void conf_derive(struct conf_load_ *ld)
{
	struct px_conf *c = ld->conf;
	size_t n;

	if (!conf_origin_(ld, "identity_file") && c->state_dir && !c->identity_file) {
		n = strlen(c->state_dir);
		c->identity_file = malloc(n + sizeof("/identity.key"));
		if (!c->identity_file) {
			ld->oom = true;
			return;
		}
		sprintf(c->identity_file, "%s%sidentity.key", c->state_dir,
			c->state_dir[n - 1] == '/' ? "" : "/");
	}
	if (!conf_origin_(ld, "broker.port") && c->broker.tls.enabled)
		c->broker.port = CONF_MQTT_TLS_PORT;
}

/* Could two local listening addresses overlap? Equal names (DNS names are case insensitive,
 * RFC 4343), or either is the any-address, which covers every local address. */
static bool conf_same_bind(const char *a, const char *b)
{
	return strcasecmp(a, b) == 0 || conf_host_wildcard_(a) || conf_host_wildcard_(b);
}

/* Would connecting to broker reach our own listen address? Equal names; a listener on the
 * any-address also answers on loopback; connecting to the any-address reaches this host. */
static bool conf_reaches_self(const char *listen, const char *broker)
{
	bool lw = conf_host_wildcard_(listen), bw = conf_host_wildcard_(broker);

	return strcasecmp(listen, broker) == 0 || (lw && (bw || conf_host_loopback_(broker))) ||
	       (bw && conf_host_loopback_(listen));
}

static void conf_check_addresses(struct conf_load_ *ld)
{
	static const char *const broker[] = {"broker.port", "broker.host", "listen.port", "listen.host",
					     NULL};
	static const char *const metrics[] = {"metrics.port", "metrics.host", "listen.port", "listen.host",
					      NULL};
	const struct px_conf *c = ld->conf;
	const config_setting_t *at;
	const char *name;
	char q[CONF_QUOTE_MAX];

	if (!conf_any_bad(ld, broker) && c->broker.host && conf_reaches_self(c->listen.host, c->broker.host) &&
	    c->listen.port == c->broker.port) {
		at = conf_where(ld, broker, &name);
		conf_report_(ld, at, name, false,
			     "broker %s port %u is where mqseal itself listens (listen.host, listen.port)",
			     conf_quote_(c->broker.host, q), c->broker.port);
	}
	if (c->metrics.enabled && !conf_any_bad(ld, metrics) &&
	    conf_same_bind(c->metrics.host, c->listen.host) && c->metrics.port == c->listen.port) {
		at = conf_where(ld, metrics, &name);
		conf_report_(ld, at, name, false, "metrics port %u is also listen.port on the same host",
			     c->metrics.port);
	}
}

/* A non-loopback address must be asked for explicitly: devices speak plaintext MQTT to us. */
static void conf_check_remote(struct conf_load_ *ld, const char *host_opt, const char *host,
			      const char *allow_opt, bool allow)
{
	const char *const both[] = {host_opt, allow_opt, NULL};
	char q[CONF_QUOTE_MAX];

	if (!allow && !conf_any_bad(ld, both) && !conf_host_loopback_(host))
		conf_report_(
			ld, conf_origin_(ld, host_opt), host_opt, false,
			"%s is not a loopback address; set %s = true to accept connections from other hosts",
			conf_quote_(host, q), allow_opt);
}

/* Reports option (set in the file) when other is not set: "both or neither". */
static void conf_check_pair(struct conf_load_ *ld, const char *option, const char *value, const char *other,
			    const char *other_value, const char *rule)
{
	const char *const both[] = {option, other, NULL};

	if (value && !other_value && !conf_any_bad(ld, both))
		conf_report_(ld, conf_origin_(ld, option), option, false, "set without %s%s", other, rule);
}

/* A number of peers to be keyed that the peers list cannot reach would keep /readyz at 503. */
static void conf_check_ready(struct conf_load_ *ld)
{
	const struct px_conf *c = ld->conf;
	unsigned n = c->readiness.ready_when;

	if (n == CONF_READY_ALL || n == CONF_READY_ANY || n <= c->npeers || conf_bad_(ld, "peers") ||
	    conf_bad_(ld, "peers_file"))
		return;
	conf_report_(ld, conf_origin_(ld, "readiness.ready_when"), "readiness.ready_when", false,
		     "%u peers keyed needed, but only %zu peer%s configured", n, c->npeers,
		     c->npeers == 1 ? " is" : "s are");
}

size_t conf_ready_need(const struct px_conf *conf)
{
	unsigned n = conf->readiness.ready_when;

	if (n == CONF_READY_ALL)
		return conf->npeers;
	if (n == CONF_READY_ANY)
		return conf->npeers ? 1 : 0;
	return n;
}

static void conf_check_cross(struct conf_load_ *ld)
{
	const struct px_conf *c = ld->conf;
	const struct conf_tls *t = &c->broker.tls;
	const config_setting_t *list = conf_origin_(ld, "peers"), *id;
	char name[CONF_NAME_MAX], q[CONF_QUOTE_MAX];
	int i, n = list && config_setting_is_list(list) ? config_setting_length(list) : 0;

	for (i = 0; c->node_id && i < n; i++) {
		id = config_setting_get_member(config_setting_get_elem(list, (unsigned)i), "id");
		if (id && config_setting_type(id) == CONFIG_TYPE_STRING &&
		    strcmp(config_setting_get_string(id), c->node_id) == 0) {
			conf_name_(name, "peers[%d].id", i);
			conf_report_(ld, id, name, false, "%s is this node's own node_id",
				     conf_quote_(c->node_id, q));
		}
	}
	conf_check_addresses(ld);
	conf_check_listeners_(ld);
	conf_check_remote(ld, "listen.host", c->listen.host, "listen.allow_remote", c->listen.allow_remote);
	if (c->metrics.enabled)
		conf_check_remote(ld, "metrics.host", c->metrics.host, "metrics.allow_remote",
				  c->metrics.allow_remote);
	conf_check_pair(ld, "broker.tls.cert_file", t->cert_file, "broker.tls.key_file", t->key_file,
			" (set both or neither)");
	conf_check_pair(ld, "broker.tls.key_file", t->key_file, "broker.tls.cert_file", t->cert_file,
			" (set both or neither)");
	conf_check_pair(ld, "keyex.password", c->keyex.password, "keyex.username", c->keyex.username, "");
	conf_check_ready(ld);
}

/* Does filter match every topic that does not start with '$' (MQTT 5 §4.7.2)? "#" does, and
 * "+/#" too: '#' also matches the parent level (§4.7.1.2), so "+/#" matches "a". */
static bool conf_filter_all(const char *filter)
{
	return strcmp(filter, "#") == 0 || strcmp(filter, "+/#") == 0;
}

bool conf_all_plaintext(const struct px_conf *conf)
{
	size_t i;

	for (i = 0; conf && i < conf->topics.nplaintext; i++)
		if (conf_filter_all(conf->topics.plaintext[i]))
			return true;
	return false;
}

/* Settings that are valid but take protection away without saying so (issue 13, item 9). */
static void conf_check_weakening(struct conf_load_ *ld)
{
	const struct px_conf *c = ld->conf;
	const config_setting_t *list = conf_origin_(ld, "topics.plaintext"), *at;
	char q[CONF_QUOTE_MAX];
	size_t i;

	for (i = 0; !conf_bad_(ld, "topics.plaintext") && i < c->topics.nplaintext; i++) {
		if (!conf_filter_all(c->topics.plaintext[i]))
			continue;
		at = list && config_setting_is_array(list) ? config_setting_get_elem(list, (unsigned)i) : NULL;
		conf_report_(ld, at ? at : list, "topics.plaintext", true,
			     "%s makes every topic plaintext: nothing is sealed",
			     conf_quote_(c->topics.plaintext[i], q));
	}
	if (c->seal.padding < CONF_PADDING_WEAK)
		conf_report_(ld, conf_origin_(ld, "seal.padding"), "seal.padding", true,
			     "%u is below %d: sealed sizes tell the broker the payload sizes", c->seal.padding,
			     CONF_PADDING_WEAK);
	if (c->keyex.max_skew_seconds > CONF_SKEW_WEAK)
		conf_report_(ld, conf_origin_(ld, "keyex.max_skew_seconds"), "keyex.max_skew_seconds", true,
			     "%u is above %d: a replayed old key announcement is accepted that much longer",
			     c->keyex.max_skew_seconds, CONF_SKEW_WEAK);
}

static void conf_check_warnings(struct conf_load_ *ld)
{
	const struct px_conf *c = ld->conf;
	size_t i;

	conf_check_weakening(ld);

	if (c->keyex.interval_seconds < 60)
		conf_report_(ld, conf_origin_(ld, "keyex.interval_seconds"), "keyex.interval_seconds", true,
			     "%u is below 60: for tests and demos only", c->keyex.interval_seconds);
	if (c->keyex.grace_seconds > 0)
		conf_report_(ld, conf_origin_(ld, "keyex.grace_seconds"), "keyex.grace_seconds", true,
			     "%u keeps retired receive keys that long: weakens forward secrecy",
			     c->keyex.grace_seconds);
	if (c->broker.tls.enabled && !c->broker.tls.verify_hostname)
		conf_report_(
			ld, conf_origin_(ld, "broker.tls.verify_hostname"), "broker.tls.verify_hostname",
			true,
			"false: any certificate a trusted CA signed is accepted, whatever host it names");
	/* The TLS files and names are unused without TLS: setting one suggests enabled was forgotten. */
	for (i = 0; !c->broker.tls.enabled && i < conf_nkeys_; i++)
		if (ld->origin[i] && !ld->bad[i] && conf_keys_[i].type == CONF_STRING &&
		    strncmp(conf_keys_[i].name, "broker.tls.", 11) == 0)
			conf_report_(ld, ld->origin[i], conf_keys_[i].name, true,
				     "ignored: broker.tls.enabled is false");
}

/* A path as the operator would type it, in full (messages are sized to fit), quoted only when it
 * has bytes that need it. */
const char *conf_path_text_(const char *path, char buf[static CONF_QUOTE_MAX])
{
	const char *p;

	for (p = path; *p; p++)
		if (*p <= ' ' || *p == '"' || *p == '\\' || *p == 0x7f)
			return conf_quote_(path, buf);
	return path;
}

/* Stats the file an option names and reports when it is missing or of the wrong kind; returns
 * whether st is valid and of the wanted kind. */
static bool conf_check_stat(struct conf_load_ *ld, const char *option, const char *path, bool dir,
			    struct stat *st)
{
	char q[CONF_QUOTE_MAX];
	const char *p = conf_path_text_(path, q);

	if (stat(path, st) != 0) {
		int e = errno;

		if (e == ENOENT && strcmp(option, "identity_file") == 0) /* a new node: say how to make one */
			conf_report_(ld, conf_origin_(ld, option), option, false,
				     "%s: %s; create it with: mqseal keygen %s", p, strerror(e), p);
		else
			conf_report_(ld, conf_origin_(ld, option), option, false, "%s: %s", p, strerror(e));
		return false;
	}
	if (dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode)) {
		conf_report_(ld, conf_origin_(ld, option), option, false, "%s is not a %s", p,
			     dir ? "directory" : "regular file");
		return false;
	}
	return true;
}

/* The private key files must not be readable by group or others: an error for our identity, a
 * warning for the TLS client key (whose owner may share it on purpose). */
static void conf_check_private(struct conf_load_ *ld, const char *option, const char *path,
			       const struct stat *st, bool warning)
{
	char q[CONF_QUOTE_MAX];
	const char *p = conf_path_text_(path, q);

	if (st->st_mode & (S_IRWXG | S_IRWXO))
		conf_report_(ld, conf_origin_(ld, option), option, warning,
			     "%s is mode %04o; run chmod 600 %s", p, (unsigned)(st->st_mode & 07777), p);
}

static void conf_check_readable(struct conf_load_ *ld, const char *option, const char *path, bool dir)
{
	char q[CONF_QUOTE_MAX];
	struct stat st;

	if (!path || !conf_check_stat(ld, option, path, dir, &st))
		return;
	if (access(path, dir ? R_OK | X_OK : R_OK) != 0)
		conf_report_(ld, conf_origin_(ld, option), option, false, "%s: %s", conf_path_text_(path, q),
			     strerror(errno));
	else if (strcmp(option, "broker.tls.key_file") == 0)
		conf_check_private(ld, option, path, &st, true);
}

/* Others who can write the state directory (or its state file) can roll back the anti-replay
 * record it keeps (PROTOCOL.md §8): a warning, not an error, since a shared group may be
 * deliberate. A state_dir that does not exist yet is created by the node (mode 0700). */
static void conf_check_state_dir(struct conf_load_ *ld, const char *dir)
{
	char q[CONF_QUOTE_MAX], path[4096 + sizeof("/state")];
	const char *p = conf_path_text_(dir, q);
	struct stat st;

	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return;
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		conf_report_(ld, conf_origin_(ld, "state_dir"), "state_dir", true,
			     "%s is mode %04o: group or others can rewrite the state file; run chmod 700 %s", p,
			     (unsigned)(st.st_mode & 07777), p);
		return;
	}
	snprintf(path, sizeof(path), "%s/state", dir);
	if (stat(path, &st) == 0 && (st.st_mode & (S_IWGRP | S_IWOTH)))
		conf_report_(ld, conf_origin_(ld, "state_dir"), "state_dir", true,
			     "%s/state is mode %04o: group or others can rewrite it; run chmod 600 %s/state", p,
			     (unsigned)(st.st_mode & 07777), p);
}

static void conf_check_files(struct conf_load_ *ld)
{
	const struct px_conf *c = ld->conf;
	const struct conf_tls *t = &c->broker.tls;
	struct stat st;

	if (c->state_dir)
		conf_check_state_dir(ld, c->state_dir);
	if (c->identity_file && conf_check_stat(ld, "identity_file", c->identity_file, false, &st))
		conf_check_private(ld, "identity_file", c->identity_file, &st, false);
	conf_check_listener_files_(ld);
	if (!t->enabled)
		return;
	conf_check_readable(ld, "broker.tls.ca_file", t->ca_file, false);
	conf_check_readable(ld, "broker.tls.ca_path", t->ca_path, true);
	conf_check_readable(ld, "broker.tls.cert_file", t->cert_file, false);
	conf_check_readable(ld, "broker.tls.key_file", t->key_file, false);
}

void conf_check_(struct conf_load_ *ld, bool check_files)
{
	conf_check_required(ld);
	conf_derive(ld);
	conf_check_cross(ld);
	conf_check_groups_(ld);
	conf_check_warnings(ld);
	if (check_files)
		conf_check_files(ld);
}
