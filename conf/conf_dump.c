/* conf_dump.c - the effective configuration (defaults included) as libconfig text that conf_load
 * accepts again, walked from the key table so that no option can be left out. Secrets print as
 * "********"; options without a value (no default, not set) print as a comment, since libconfig
 * has no null. Strings are escaped the way libconfig's scanner reads them back. */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_internal.h"

#define CONF_MASK "********"

struct conf_out {
	char *buf;
	size_t len, cap;
	bool failed;
};

static void conf_out_printf(struct conf_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void conf_out_printf(struct conf_out *o, const char *fmt, ...)
{
	size_t room = o->cap - o->len;
	va_list ap;
	int n;
	char *p;

	if (o->failed)
		return;
	va_start(ap, fmt);
	/* clang-analyzer 14 misreads x86-64's array-typed va_list after va_start. */
	n = vsnprintf(o->buf + o->len, room, fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
	va_end(ap);
	if (n < 0) {
		o->failed = true;
		return;
	}
	if ((size_t)n >= room) {
		size_t cap = (o->cap + (size_t)n) * 2;
		p = realloc(o->buf, cap);
		if (!p) {
			o->failed = true;
			return;
		}
		o->buf = p;
		o->cap = cap;
		va_start(ap, fmt);
		vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
	}
	o->len += (size_t)n;
}

static void conf_out_indent(struct conf_out *o, unsigned depth)
{
	while (depth--)
		conf_out_printf(o, "\t");
}

/* A string literal: libconfig reads \" \\ \n \r \t \f and \xNN inside quotes (scanner.l). */
static void conf_out_string(struct conf_out *o, const char *s)
{
	conf_out_printf(o, "\"");
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			conf_out_printf(o, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			conf_out_printf(o, "\\x%02x", c);
		else
			conf_out_printf(o, "%c", c);
	}
	conf_out_printf(o, "\"");
}

/* Number of dot-separated components of name that are groups ("broker.tls.x" -> 2). */
static unsigned conf_depth(const char *name)
{
	unsigned d = 0;

	for (; *name; name++)
		d += *name == '.';
	return d;
}

/* Length of the longest group path (ending at a '.') that a and b share. */
static size_t conf_common_groups(const char *a, const char *b)
{
	size_t i, last = 0;

	for (i = 0; a[i] && a[i] == b[i]; i++)
		if (a[i] == '.')
			last = i + 1;
	return last;
}

/* Closes the groups of prev that next is not in, and opens those of next that prev was not in. */
static void conf_out_groups(struct conf_out *o, const char *prev, const char *next)
{
	size_t common = conf_common_groups(prev, next), i, start;
	unsigned depth = conf_depth(prev), keep = 0;

	for (i = 0; i < common; i++)
		keep += prev[i] == '.';
	while (depth > keep) {
		conf_out_indent(o, --depth);
		conf_out_printf(o, "};\n");
	}
	for (start = common, i = common; next[i]; i++) {
		if (next[i] != '.')
			continue;
		conf_out_indent(o, depth++);
		conf_out_printf(o, "%.*s = {\n", (int)(i - start), next + start);
		start = i + 1;
	}
}

/* [ "a", "b" ] */
static void conf_out_strings(struct conf_out *o, const char *const *list, size_t n)
{
	size_t i;

	conf_out_printf(o, "[");
	for (i = 0; i < n; i++) {
		conf_out_printf(o, "%s", i ? ", " : " ");
		conf_out_string(o, list[i]);
	}
	conf_out_printf(o, " ]");
}

static void conf_out_list(struct conf_out *o, const struct px_conf *conf, const struct conf_key *k)
{
	const char *const *list =
		*(const char *const *const *)(const void *)((const unsigned char *)conf + k->off);
	size_t n;

	memcpy(&n, (const unsigned char *)conf + k->count_off, sizeof(n));
	conf_out_strings(o, list, n);
	conf_out_printf(o, ";\n");
}

/* The members of entry i of a list of groups, between "{ " and "; }". */
typedef void (*conf_out_entry)(struct conf_out *o, const struct px_conf *conf, size_t i);

static void conf_out_peer(struct conf_out *o, const struct px_conf *conf, size_t i)
{
	const struct conf_peer *p = &conf->peers[i];

	conf_out_printf(o, "id = ");
	conf_out_string(o, p->id);
	conf_out_printf(o, "; public_key = ");
	conf_out_string(o, p->public_key);
	if (p->has_publish) {
		conf_out_printf(o, "; publish = ");
		conf_out_strings(o, (const char *const *)p->publish, p->npublish);
	}
}

static void conf_out_prefix_rule(struct conf_out *o, const struct px_conf *conf, size_t i)
{
	conf_out_printf(o, "local = ");
	conf_out_string(o, conf->topic_prefix_map[i].local);
	conf_out_printf(o, "; canonical = ");
	conf_out_string(o, conf->topic_prefix_map[i].canonical);
}

static void conf_out_group(struct conf_out *o, const struct px_conf *conf, size_t i)
{
	const struct conf_group *g = &conf->groups[i];

	conf_out_printf(o, "name = ");
	conf_out_string(o, g->name);
	conf_out_printf(o, "; topics = ");
	conf_out_strings(o, (const char *const *)g->topics, g->ntopics);
	conf_out_printf(o, "; readers = ");
	conf_out_strings(o, (const char *const *)g->readers, g->nreaders);
	if (g->has_writers) {
		conf_out_printf(o, "; writers = ");
		conf_out_strings(o, (const char *const *)g->writers, g->nwriters);
	}
}

/* A listener as it would be written; tls and websocket only when set. */
static void conf_out_listener(struct conf_out *o, const struct px_conf *conf, size_t i)
{
	const struct conf_listener *l = &conf->listeners[i];

	conf_out_printf(o, "host = ");
	conf_out_string(o, l->host);
	conf_out_printf(o, "; port = %u; allow_plaintext_remote = %s", l->port,
			l->allow_plaintext_remote ? "true" : "false");
	if (l->cert_file) {
		conf_out_printf(o, "; tls = { cert_file = ");
		conf_out_string(o, l->cert_file);
		conf_out_printf(o, "; key_file = ");
		conf_out_string(o, l->key_file);
		if (l->client_ca_file) {
			conf_out_printf(o, "; client_ca_file = ");
			conf_out_string(o, l->client_ca_file);
		}
		conf_out_printf(o, "; }");
	}
	if (l->ws_path) {
		conf_out_printf(o, "; websocket = { path = ");
		conf_out_string(o, l->ws_path);
		conf_out_printf(o, "; }");
	}
}

/* A list of n groups, one per line, each written by entry. */
static void conf_out_group_list(struct conf_out *o, const struct px_conf *conf, size_t n, conf_out_entry entry,
				 unsigned depth)
{
	size_t i;

	conf_out_printf(o, "(");
	for (i = 0; i < n; i++) {
		conf_out_printf(o, "%s\n", i ? "," : "");
		conf_out_indent(o, depth + 1);
		conf_out_printf(o, "{ ");
		entry(o, conf, i);
		conf_out_printf(o, "; }");
	}
	if (n) {
		conf_out_printf(o, "\n");
		conf_out_indent(o, depth);
	} else {
		conf_out_printf(o, " ");
	}
	conf_out_printf(o, ");\n");
}

/* After peers_file: how many peers it gave, from which file (a comment: the dump stays loadable). */
static void conf_out_peers_file(struct conf_out *o, const struct px_conf *conf)
{
	conf_out_printf(o, "# %zu peer%s read from ", conf->npeers_file, conf->npeers_file == 1 ? "" : "s");
	conf_out_string(o, conf->peers_file_path);
	conf_out_printf(o, "\n");
}

/* readiness.ready_when as written: a word in quotes or a bare number. */
static void conf_out_ready(struct conf_out *o, unsigned v)
{
	if (v == CONF_READY_ALL || v == CONF_READY_ANY)
		conf_out_printf(o, "\"%s\";\n", v == CONF_READY_ALL ? "all" : "any");
	else
		conf_out_printf(o, "%u;\n", v);
}

/* One option as "leaf = value;" (or a comment when it has no value). */
static void conf_out_key(struct conf_out *o, const struct px_conf *conf, const struct conf_key *k)
{
	const char *leaf = strrchr(k->name, '.'), *s;
	unsigned depth = conf_depth(k->name);

	leaf = leaf ? leaf + 1 : k->name;
	conf_out_indent(o, depth);
	if (k->type == CONF_STRING && !conf_str_get_(conf, k)) {
		conf_out_printf(o, "# %s: not set\n", leaf);
		return;
	}
	conf_out_printf(o, "%s = ", leaf);
	switch (k->type) {
	case CONF_STRING:
		s = conf_str_get_(conf, k);
		conf_out_string(o, k->secret ? CONF_MASK : s);
		conf_out_printf(o, ";\n");
		break;
	case CONF_INT:
		conf_out_printf(o, "%llu;\n", conf_get_uint_(conf, k));
		break;
	case CONF_BOOL:
		conf_out_printf(o, "%s;\n", conf_get_uint_(conf, k) ? "true" : "false");
		break;
	case CONF_ENUM:
		conf_out_printf(o, "\"%s\";\n", k->names[conf_get_uint_(conf, k)]);
		break;
	case CONF_STRLIST:
		conf_out_list(o, conf, k);
		break;
	case CONF_PEERS: /* the list's own: the file's (the last npeers_file) stay in peers_file */
		conf_out_group_list(o, conf, conf->npeers - conf->npeers_file, conf_out_peer, depth);
		break;
	case CONF_READY:
		conf_out_ready(o, (unsigned)conf_get_uint_(conf, k));
		break;
	case CONF_PREFIX_MAP:
		conf_out_group_list(o, conf, conf->ntopic_prefix_map, conf_out_prefix_rule, depth);
		break;
	case CONF_GROUPS:
		conf_out_group_list(o, conf, conf->ngroups, conf_out_group, depth);
		break;
	case CONF_LISTENERS:
		conf_out_group_list(o, conf, conf->nlisteners, conf_out_listener, depth);
		break;
	}
}

char *conf_dump(const struct px_conf *conf)
{
	struct conf_out o = {.cap = 4096};
	const char *prev = "";
	size_t i;

	if (!conf)
		return NULL;
	o.buf = malloc(o.cap);
	if (!o.buf)
		return NULL;
	o.buf[0] = '\0';
	conf_out_printf(
		&o, "# mqseal effective configuration: every option, defaults included; secrets masked\n");
	for (i = 0; i < conf_nkeys_; i++) {
		conf_out_groups(&o, prev, conf_keys_[i].name);
		conf_out_key(&o, conf, &conf_keys_[i]);
		if (conf_keys_[i].off == offsetof(struct px_conf, peers_file) && conf->peers_file_path)
			conf_out_peers_file(&o, conf);
		prev = conf_keys_[i].name;
	}
	conf_out_groups(&o, prev, "");
	if (o.failed) {
		free(o.buf);
		return NULL;
	}
	return o.buf;
}
