/* conf_listen.c - the listeners list: extra device listeners besides listen (plain TCP, TLS,
 * WebSocket, WebSocket over TLS). Each entry is a group read member by member, with FILE:LINE
 * problems under "listeners[i].member"; the checks across options (remote addresses, ports used
 * twice) and, for `mqseal check` and start, the certificate and key files follow.
 *   listeners = ( { host = "0.0.0.0"; port = 8883;
 *                   tls = { cert_file = "..."; key_file = "..."; client_ca_file = "..."; }; },
 *                 { host = "127.0.0.1"; port = 8080; websocket = { path = "/mqtt"; }; } ); */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_internal.h"

/* PATH_MAX on Linux, NUL included; RFC 1035 host names as in the key table. */
#define CONF_LISTEN_PATH_MAX 4095
#define CONF_LISTEN_HOST_MAX 253
/* A request line's target; browsers and mqtt.js send a short path ("/mqtt"). */
#define CONF_LISTEN_WS_PATH_MAX 255

/* websocket.path: an absolute path of visible ASCII (RFC 3986 path characters; no space, no
 * query is needed to reach an MQTT endpoint). */
static const char *conf_rule_ws_path(const char *v)
{
	const char *p;

	if (v[0] != '/')
		return "does not start with /";
	for (p = v; *p; p++)
		if (*p <= ' ' || *p > '~' || *p == '?' || *p == '#')
			return "has a space, a control byte, '?', '#' or a byte above 0x7E";
	return NULL;
}

/* An optional string member m (absent: NULL, nothing reported) of at most max bytes following
 * rule; *bad set when present but wrong. */
static const char *conf_listen_str(struct conf_load_ *ld, const config_setting_t *m, const char *base,
				   const char *leaf, size_t max, conf_text_rule rule, bool *bad)
{
	char name[CONF_NAME_MAX];
	const char *v;

	if (!m)
		return NULL;
	conf_name_(name, "%s.%s", base, leaf);
	v = conf_string_of_(ld, m, name);
	if (v && (strlen(v) == 0 || strlen(v) > max)) {
		conf_report_(ld, m, name, false, "is %zu bytes long, allowed 1..%zu", strlen(v), max);
		v = NULL;
	}
	if (v && !conf_rule_ok_(ld, m, name, v, rule))
		v = NULL;
	*bad |= !v;
	return v;
}

static char *conf_listen_dup(struct conf_load_ *ld, const char *v)
{
	char *c = v ? strdup(v) : NULL;

	ld->oom |= v && !c;
	return c;
}

/* tls = { cert_file; key_file; client_ca_file; } into l. */
static bool conf_listen_tls(struct conf_load_ *ld, const config_setting_t *g, const char *base,
			    struct conf_listener *l)
{
	static const char *const names[] = {"cert_file", "key_file", "client_ca_file", NULL};
	const config_setting_t *m[3];
	char tbase[CONF_NAME_MAX], name[CONF_NAME_MAX];
	bool bad = false;
	const char *cert, *key, *ca;

	conf_name_(tbase, "%s.tls", base);
	if (!config_setting_is_group(g)) {
		conf_report_(ld, g, tbase, false, "expected a group { cert_file = ...; key_file = ...; }");
		return false;
	}
	bad = !conf_group_scan_(ld, g, tbase, names, m);
	cert = conf_listen_str(ld, m[0], tbase, "cert_file", CONF_LISTEN_PATH_MAX, NULL, &bad);
	key = conf_listen_str(ld, m[1], tbase, "key_file", CONF_LISTEN_PATH_MAX, NULL, &bad);
	ca = conf_listen_str(ld, m[2], tbase, "client_ca_file", CONF_LISTEN_PATH_MAX, NULL, &bad);
	for (int i = 0; i < 2; i++) {
		if (!m[i]) {
			conf_name_(name, "%s.%s", tbase, names[i]);
			conf_report_(ld, g, name, false, "required option is missing (a TLS listener needs "
							 "its certificate and private key)");
			bad = true;
		}
	}
	if (bad)
		return false;
	l->cert_file = conf_listen_dup(ld, cert);
	l->key_file = conf_listen_dup(ld, key);
	l->client_ca_file = conf_listen_dup(ld, ca);
	return true;
}

/* websocket = { path = "/mqtt"; } into l. */
static bool conf_listen_ws(struct conf_load_ *ld, const config_setting_t *g, const char *base,
			   struct conf_listener *l)
{
	static const char *const names[] = {"path", NULL};
	const config_setting_t *m[1];
	char wbase[CONF_NAME_MAX];
	bool bad = false;
	const char *path;

	conf_name_(wbase, "%s.websocket", base);
	if (!config_setting_is_group(g)) {
		conf_report_(ld, g, wbase, false, "expected a group { path = \"/mqtt\"; }");
		return false;
	}
	bad = !conf_group_scan_(ld, g, wbase, names, m);
	path = conf_listen_str(ld, m[0], wbase, "path", CONF_LISTEN_WS_PATH_MAX, conf_rule_ws_path, &bad);
	if (bad)
		return false;
	l->ws_path = conf_listen_dup(ld, path ? path : "/mqtt");
	return true;
}

/* port: required, 1..65535. */
static bool conf_listen_port(struct conf_load_ *ld, const config_setting_t *g, const config_setting_t *m,
			     const char *base, struct conf_listener *l)
{
	char name[CONF_NAME_MAX];
	long long v;

	conf_name_(name, "%s.port", base);
	if (!m) {
		conf_report_(ld, g, name, false, "required option is missing");
		return false;
	}
	if (config_setting_type(m) != CONFIG_TYPE_INT && config_setting_type(m) != CONFIG_TYPE_INT64) {
		conf_report_(ld, m, name, false, "expected an integer");
		return false;
	}
	v = config_setting_get_int64(m);
	if (v < 1 || v > 65535) {
		conf_report_(ld, m, name, false, "%lld is out of range 1..65535", v);
		return false;
	}
	l->port = (uint16_t)v;
	return true;
}

static bool conf_listen_bool(struct conf_load_ *ld, const config_setting_t *m, const char *base,
			     const char *leaf, bool *out)
{
	char name[CONF_NAME_MAX];

	if (!m)
		return true;
	if (config_setting_type(m) != CONFIG_TYPE_BOOL) {
		conf_report_(ld, m, conf_name_(name, "%s.%s", base, leaf), false, "expected true or false");
		return false;
	}
	*out = config_setting_get_bool(m) != 0;
	return true;
}

/* Could a and b be the same listening socket (same port, overlapping addresses)? */
static bool conf_listen_overlap(const char *ha, unsigned pa, const char *hb, unsigned pb)
{
	return pa == pb && (strcasecmp(ha, hb) == 0 || conf_host_wildcard_(ha) || conf_host_wildcard_(hb));
}

/* A plaintext listener on an address other hosts reach must be asked for (issue 18). */
static void conf_listen_remote(struct conf_load_ *ld, const config_setting_t *at, const char *base,
			       const struct conf_listener *l)
{
	char name[CONF_NAME_MAX], q[CONF_QUOTE_MAX];

	if (l->cert_file || l->allow_plaintext_remote || conf_host_loopback_(l->host))
		return;
	conf_report_(ld, at, conf_name_(name, "%s.host", base), false,
		     "%s is not a loopback address and the listener has no tls: devices would speak "
		     "plaintext over the network; add tls = { ... } or set allow_plaintext_remote = true",
		     conf_quote_(l->host, q));
}

static void conf_listener_read(struct conf_load_ *ld, const config_setting_t *g, const char *base, void *array,
			       size_t *count)
{
	static const char *const names[] = {"host", "port", "allow_plaintext_remote", "tls", "websocket", NULL};
	const config_setting_t *m[5];
	struct conf_listener *ls = array, *l = &ls[*count];
	bool bad = !conf_group_scan_(ld, g, base, names, m);
	const char *host = conf_listen_str(ld, m[0], base, "host", CONF_LISTEN_HOST_MAX, conf_rule_host_, &bad);

	bad |= !conf_listen_port(ld, g, m[1], base, l);
	bad |= !conf_listen_bool(ld, m[2], base, "allow_plaintext_remote", &l->allow_plaintext_remote);
	bad |= m[3] && !conf_listen_tls(ld, m[3], base, l);
	bad |= m[4] && !conf_listen_ws(ld, m[4], base, l);
	l->host = conf_listen_dup(ld, host ? host : "127.0.0.1");
	l->line = config_setting_source_line(g);
	l->index = (unsigned)config_setting_index(g);
	if (!bad && l->host)
		conf_listen_remote(ld, m[0] ? m[0] : g, base, l);
	for (size_t j = 0; !bad && l->host && j < *count; j++) {
		if (conf_listen_overlap(ls[j].host, ls[j].port, l->host, l->port)) {
			char name[CONF_NAME_MAX];
			conf_report_(ld, m[1], conf_name_(name, "%s.port", base), false,
				     "port %u on this address is already listeners[%u] (line %u)", l->port,
				     ls[j].index, ls[j].line);
			bad = true;
		}
	}
	if (bad) {
		conf_free_listeners_(l, 1); /* frees the members; the array stays */
		memset(l, 0, sizeof(*l));
		return;
	}
	(*count)++;
}

void conf_apply_listeners_(struct conf_load_ *ld, const struct conf_key *k, const config_setting_t *s,
			   const char *name)
{
	void *list = NULL;

	conf_read_groups_(ld, k, s, name,
			  "expected a list of listener groups ( { host = ...; port = ...; }, ... )",
			  "expected a group { host = \"...\"; port = ...; tls = { ... }; websocket = { ... }; }",
			  sizeof(struct conf_listener), conf_listener_read, &list, &ld->conf->nlisteners);
	ld->conf->listeners = list;
}

/* Entry i's group in the file (NULL when the list was not read from it). */
static const config_setting_t *conf_listen_entry(const struct conf_load_ *ld, unsigned i)
{
	const config_setting_t *list = conf_origin_(ld, "listeners");

	return list ? config_setting_get_elem(list, i) : NULL;
}

/* A listener on the same port and address as listen or the metrics endpoint: bind would fail. */
void conf_check_listeners_(struct conf_load_ *ld)
{
	const struct px_conf *c = ld->conf;
	char name[CONF_NAME_MAX];
	const config_setting_t *g, *at;

	if (conf_bad_(ld, "listeners") || conf_bad_(ld, "listen.host") || conf_bad_(ld, "listen.port"))
		return;
	for (size_t i = 0; i < c->nlisteners; i++) {
		const struct conf_listener *l = &c->listeners[i];
		const char *what = NULL;

		if (conf_listen_overlap(l->host, l->port, c->listen.host, c->listen.port))
			what = "listen.port";
		else if (c->metrics.enabled && conf_listen_overlap(l->host, l->port, c->metrics.host, c->metrics.port))
			what = "metrics.port";
		if (!what)
			continue;
		g = conf_listen_entry(ld, l->index);
		at = g ? config_setting_get_member(g, "port") : NULL;
		conf_report_(ld, at ? at : g, conf_name_(name, "listeners[%u].port", l->index), false,
			     "port %u on this address is also %s", l->port, what);
	}
}

/* One file a TLS listener names: a readable regular file; a private key not readable by others
 * (a warning, as for broker.tls.key_file). */
static void conf_listen_file(struct conf_load_ *ld, const config_setting_t *tls, unsigned index,
			     const char *leaf, const char *path)
{
	const config_setting_t *at = tls ? config_setting_get_member(tls, leaf) : NULL;
	char name[CONF_NAME_MAX], q[CONF_QUOTE_MAX];
	const char *p;
	struct stat st;

	if (!path)
		return;
	p = conf_path_text_(path, q);
	conf_name_(name, "listeners[%u].tls.%s", index, leaf);
	if (stat(path, &st) != 0 || access(path, R_OK) != 0)
		conf_report_(ld, at, name, false, "%s: %s", p, strerror(errno));
	else if (!S_ISREG(st.st_mode))
		conf_report_(ld, at, name, false, "%s is not a regular file", p);
	else if (strcmp(leaf, "key_file") == 0 && (st.st_mode & (S_IRWXG | S_IRWXO)))
		conf_report_(ld, at, name, true, "%s is mode %04o; run chmod 600 %s", p,
			     (unsigned)(st.st_mode & 07777), p);
}

void conf_check_listener_files_(struct conf_load_ *ld)
{
	const struct px_conf *c = ld->conf;

	for (size_t i = 0; i < c->nlisteners; i++) {
		const struct conf_listener *l = &c->listeners[i];
		const config_setting_t *g = conf_listen_entry(ld, l->index);
		const config_setting_t *tls = g ? config_setting_get_member(g, "tls") : NULL;

		conf_listen_file(ld, tls, l->index, "cert_file", l->cert_file);
		conf_listen_file(ld, tls, l->index, "key_file", l->key_file);
		conf_listen_file(ld, tls, l->index, "client_ca_file", l->client_ca_file);
	}
}

void conf_free_listeners_(struct conf_listener *l, size_t n)
{
	for (size_t i = 0; l && i < n; i++) {
		free(l[i].host);
		free(l[i].cert_file);
		free(l[i].key_file);
		free(l[i].client_ca_file);
		free(l[i].ws_path);
	}
}
