/* conf_value.c - one libconfig setting -> one field of struct px_conf, by the option's type:
 * type check, range or length check, text rule, then the copy out of libconfig (which owns its
 * strings and frees them in config_destroy). Every problem is reported at the setting (its line)
 * under the option's dotted name. libconfig's conversions (config_setting_get_int on a float, and
 * so on) are never used: a float or a string where an integer belongs is a type error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_internal.h"

static void conf_apply_int(struct conf_load_ *ld, const struct conf_key *k, const config_setting_t *s,
			   const char *name)
{
	long long v;

	if (config_setting_type(s) != CONFIG_TYPE_INT && config_setting_type(s) != CONFIG_TYPE_INT64) {
		conf_report_(ld, s, name, false, "expected an integer");
		return;
	}
	v = config_setting_get_int64(s);
	if (v < k->min || v > k->max) {
		conf_report_(ld, s, name, false, "%lld is out of range %lld..%lld", v, k->min, k->max);
		return;
	}
	conf_set_uint_(ld->conf, k, (unsigned long long)v);
}

static void conf_apply_bool(struct conf_load_ *ld, const struct conf_key *k, const config_setting_t *s,
			    const char *name)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		conf_report_(ld, s, name, false, "expected true or false");
		return;
	}
	conf_set_uint_(ld->conf, k, config_setting_get_bool(s) ? 1 : 0);
}

/* The setting's string, or NULL after reporting that it is not one. */
const char *conf_string_of_(struct conf_load_ *ld, const config_setting_t *s, const char *name)
{
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		conf_report_(ld, s, name, false, "expected a string");
		return NULL;
	}
	return config_setting_get_string(s);
}

/* Applies a text rule; reports and returns false when the text breaks it. */
bool conf_rule_ok_(struct conf_load_ *ld, const config_setting_t *s, const char *name, const char *v,
			 conf_text_rule rule)
{
	char q[CONF_QUOTE_MAX];
	const char *why = rule ? rule(v) : NULL;

	if (why)
		conf_report_(ld, s, name, false, "%s %s", conf_quote_(v, q), why);
	return !why;
}

static void conf_apply_string(struct conf_load_ *ld, const struct conf_key *k, const config_setting_t *s,
			      const char *name)
{
	char q[CONF_QUOTE_MAX], **field, *copy;
	const char *v = conf_string_of_(ld, s, name);
	size_t n;

	if (!v)
		return;
	n = strlen(v);
	if ((long long)n < k->min || (long long)n > k->max) {
		conf_report_(ld, s, name, false, "%s is %zu bytes long, allowed %lld..%lld",
			     conf_quote_(v, q), n, k->min, k->max);
		return;
	}
	if (!conf_rule_ok_(ld, s, name, v, k->rule))
		return;
	copy = strdup(v);
	if (!copy) {
		ld->oom = true;
		return;
	}
	field = conf_str_field_(ld->conf, k);
	free(*field);
	*field = copy;
}

static void conf_apply_enum(struct conf_load_ *ld, const struct conf_key *k, const config_setting_t *s,
			    const char *name)
{
	char q[CONF_QUOTE_MAX], list[128] = "";
	const char *v = conf_string_of_(ld, s, name);
	size_t i;

	if (!v)
		return;
	for (i = 0; k->names[i]; i++) {
		if (strcmp(k->names[i], v) == 0) {
			conf_set_uint_(ld->conf, k, i);
			return;
		}
	}
	for (i = 0; k->names[i]; i++) {
		strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
		strncat(list, k->names[i], sizeof(list) - strlen(list) - 1);
	}
	conf_report_(ld, s, name, false, "%s is not one of %s", conf_quote_(v, q), list);
}

/* Reports and returns false when a list has more than max entries; checked before anything is
 * allocated for them. */
static bool conf_count_ok(struct conf_load_ *ld, long long max, const config_setting_t *s, const char *name)
{
	int n = config_setting_length(s);

	if (n > max)
		conf_report_(ld, s, name, false, "%d entries, at most %lld allowed", n, max);
	return n <= max;
}

/* A list of at most max strings, each following rule, into a fresh array (*out, *count); false
 * (reported) when it is not one. A bad entry is left NULL: the load fails, so nobody reads it. */
static bool conf_read_strlist(struct conf_load_ *ld, const config_setting_t *s, const char *name, long long max,
			      conf_text_rule rule, char ***out, size_t *count)
{
	char ename[CONF_NAME_MAX], **list;
	unsigned i, n;

	if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
		conf_report_(ld, s, name, false, "expected a list of strings");
		return false;
	}
	if (!conf_count_ok(ld, max, s, name))
		return false;
	n = (unsigned)config_setting_length(s);
	list = calloc(n ? n : 1, sizeof(*list));
	if (!list) {
		ld->oom = true;
		return false;
	}
	for (i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, i);
		const char *v;
		conf_name_(ename, "%s[%u]", name, i);
		v = conf_string_of_(ld, e, ename);
		if (!v || !conf_rule_ok_(ld, e, ename, v, rule))
			continue;
		list[i] = strdup(v);
		ld->oom |= !list[i];
	}
	*out = list;
	*count = n;
	return true;
}

static void conf_apply_strlist(struct conf_load_ *ld, const struct conf_key *k, const config_setting_t *s,
			       const char *name)
{
	char **list = NULL;
	size_t n = 0;

	if (!conf_read_strlist(ld, s, name, k->max, k->rule, &list, &n))
		return;
	memcpy((unsigned char *)ld->conf + k->off, &list, sizeof(list));
	memcpy((unsigned char *)ld->conf + k->count_off, &n, sizeof(n));
}

/* One member of a group in a list (a peer, a prefix rule): present, a string, following rule. */
static const char *conf_group_member(struct conf_load_ *ld, const config_setting_t *g,
				    const config_setting_t *m, const char *base, const char *leaf,
				    conf_text_rule rule)
{
	char name[CONF_NAME_MAX];
	const char *v;

	conf_name_(name, "%s.%s", base, leaf);
	if (!m) {
		conf_report_(ld, g, name, false, "required option is missing");
		return NULL;
	}
	v = conf_string_of_(ld, m, name);
	return v && conf_rule_ok_(ld, m, name, v, rule) ? v : NULL;
}

/* Finds the members of group g (entry base of a list) named in names (NULL-terminated) and puts
 * each in found[] at the index of its name (NULL when absent); reports every other member as
 * unknown and returns false then. */
bool conf_group_scan_(struct conf_load_ *ld, const config_setting_t *g, const char *base,
			    const char *const *names, const config_setting_t **found)
{
	char mname[CONF_NAME_MAX];
	const config_setting_t *m;
	const char *near;
	unsigned j, k;
	bool ok = true;

	for (k = 0; names[k]; k++)
		found[k] = NULL;
	for (j = 0; (m = config_setting_get_elem(g, j)) != NULL; j++) {
		for (k = 0; names[k] && strcmp(config_setting_name(m), names[k]) != 0; k++)
			;
		if (names[k]) {
			found[k] = m;
			continue;
		}
		conf_name_(mname, "%s.%s", base, config_setting_name(m));
		near = conf_nearest(config_setting_name(m), names, k);
		if (near)
			conf_report_(ld, m, mname, false, "unknown option; did you mean %s?", near);
		else
			conf_report_(ld, m, mname, false, "unknown option");
		ok = false;
	}
	return ok;
}

/* Reads entry base of the peers list into peers[*count] when it is valid and new. */
static void conf_peer_read(struct conf_load_ *ld, const config_setting_t *g, const char *base, void *array,
			   size_t *count)
{
	static const char *const names[] = {"id", "public_key", "publish", NULL};
	const config_setting_t *m[3];
	struct conf_peer *peers = array, *p = &peers[*count];
	char mname[CONF_NAME_MAX];
	const char *idv, *keyv;
	bool ok = conf_group_scan_(ld, g, base, names, m);

	idv = conf_group_member(ld, g, m[0], base, "id", conf_rule_node_id_);
	keyv = conf_group_member(ld, g, m[1], base, "public_key", conf_rule_public_key_);
	if (m[2]) {
		conf_name_(mname, "%s.publish", base);
		if (!conf_read_strlist(ld, m[2], mname, CONF_PEER_PUBLISH_MAX, conf_rule_filter_, &p->publish,
				       &p->npublish))
			ok = false;
		p->has_publish = true;
	}
	/* repeated ids and keys: conf_peers_unique_, once the peers file is read too */
	if (!ok || !idv || !keyv) {
		conf_free_strlist_(p->publish, p->npublish);
		memset(p, 0, sizeof(*p));
		return;
	}
	p->id = strdup(idv);
	p->public_key = strdup(keyv);
	p->line = config_setting_source_line(g);
	if (ld->peer_at)
		ld->peer_at[*count] = g;
	(*count)++;
	ld->oom |= !p->id || !p->public_key;
}

/* Reads rule base of topic_prefix_map into m[*count] when it is valid and its local prefix new. */
static void conf_prefix_read(struct conf_load_ *ld, const config_setting_t *g, const char *base, void *array,
			     size_t *count)
{
	static const char *const names[] = {"local", "canonical", NULL};
	const config_setting_t *f[2];
	struct conf_prefix_map *m = array;
	char mname[CONF_NAME_MAX], q[CONF_QUOTE_MAX];
	const char *lv, *cv;
	bool ok = conf_group_scan_(ld, g, base, names, f);
	size_t j;

	lv = conf_group_member(ld, g, f[0], base, "local", conf_rule_prefix_);
	cv = conf_group_member(ld, g, f[1], base, "canonical", conf_rule_prefix_);
	if (!ok || !lv || !cv)
		return;
	if (strcmp(lv, cv) == 0) {
		conf_name_(mname, "%s.canonical", base);
		conf_report_(ld, f[1], mname, false, "%s is the same as local: the rule would change nothing",
			     conf_quote_(cv, q));
		return;
	}
	for (j = 0; j < *count; j++) {
		if (strcmp(m[j].local, lv) == 0) {
			conf_name_(mname, "%s.local", base);
			conf_report_(ld, f[0], mname, false, "duplicate local prefix %s (also at line %u)",
				     conf_quote_(lv, q), m[j].line);
			return;
		}
	}
	m[*count].local = strdup(lv);
	m[*count].canonical = strdup(cv);
	m[*count].line = config_setting_source_line(g);
	ld->oom |= !m[*count].local || !m[*count].canonical;
	(*count)++;
}

/* A list of at most k->max groups (list_msg when s is not a list, group_msg for an entry that is
 * not a group), each read by read into a fresh array of elem-byte entries; the valid ones land
 * in *out and *count. */
void conf_read_groups_(struct conf_load_ *ld, const struct conf_key *k, const config_setting_t *s,
			     const char *name, const char *list_msg, const char *group_msg, size_t elem,
			     conf_group_reader read, void **out, size_t *count)
{
	char base[CONF_NAME_MAX];
	void *array;
	unsigned i, n;

	*count = 0;
	/* libconfig writes an empty list as either ( ) or [ ]; a list of groups only as ( ). */
	if (!config_setting_is_list(s) && !(config_setting_is_array(s) && config_setting_length(s) == 0)) {
		conf_report_(ld, s, name, false, "%s", list_msg);
		return;
	}
	if (!conf_count_ok(ld, k->max, s, name))
		return;
	n = (unsigned)config_setting_length(s);
	array = calloc(n ? n : 1, elem);
	if (!array) {
		ld->oom = true;
		return;
	}
	for (i = 0; i < n; i++) {
		const config_setting_t *g = config_setting_get_elem(s, i);
		conf_name_(base, "%s[%u]", name, i);
		if (config_setting_is_group(g))
			read(ld, g, base, array, count);
		else
			conf_report_(ld, g, base, false, "%s", group_msg);
	}
	*out = array;
}

static void conf_apply_peers(struct conf_load_ *ld, const struct conf_key *k, const config_setting_t *s,
			     const char *name)
{
	void *peers = NULL;
	int n = config_setting_is_list(s) ? config_setting_length(s) : 0;

	if (n > 0 && n <= k->max) { /* where each peer is, for conf_peers_unique_'s messages */
		ld->peer_at = calloc((size_t)n, sizeof(const config_setting_t *)); /* one pointer per entry */
		ld->oom |= !ld->peer_at;
	}
	conf_read_groups_(ld, k, s, name, "expected a list of peer groups ( { ... }, ... )",
			 "expected a group { id = \"...\"; public_key = \"...\"; }", sizeof(struct conf_peer),
			 conf_peer_read, &peers, &ld->conf->npeers);
	ld->conf->peers = peers;
}

static void conf_apply_prefix_map(struct conf_load_ *ld, const struct conf_key *k, const config_setting_t *s,
				  const char *name)
{
	void *map = NULL;

	conf_read_groups_(ld, k, s, name, "expected a list of groups ( { local = ...; canonical = ...; }, ... )",
			 "expected a group { local = \"...\"; canonical = \"...\"; }", sizeof(struct conf_prefix_map),
			 conf_prefix_read, &map, &ld->conf->ntopic_prefix_map);
	ld->conf->topic_prefix_map = map;
}

/* "all", "any" or a number of peers, bare (2) or quoted ("2"), for readiness.ready_when. */
static void conf_apply_ready(struct conf_load_ *ld, const struct conf_key *k, const config_setting_t *s,
			    const char *name)
{
	char q[CONF_QUOTE_MAX], *end = NULL;
	const char *v;
	long long n;

	if (config_setting_type(s) == CONFIG_TYPE_INT || config_setting_type(s) == CONFIG_TYPE_INT64) {
		n = config_setting_get_int64(s);
	} else if (config_setting_type(s) == CONFIG_TYPE_STRING) {
		v = config_setting_get_string(s);
		if (strcmp(v, "all") == 0 || strcmp(v, "any") == 0) {
			conf_set_uint_(ld->conf, k, strcmp(v, "all") == 0 ? CONF_READY_ALL : CONF_READY_ANY);
			return;
		}
		n = v[0] >= '0' && v[0] <= '9' ? strtoll(v, &end, 10) : -1;
		if (!end || *end || n < 0 || n > k->max) {
			conf_report_(ld, s, name, false, "%s is not \"all\", \"any\" or a number of peers 0..%lld",
				     conf_quote_(v, q), k->max);
			return;
		}
	} else {
		conf_report_(ld, s, name, false, "expected \"all\", \"any\" or a number of peers");
		return;
	}
	if (n < k->min || n > k->max) {
		conf_report_(ld, s, name, false, "%lld is out of range %lld..%lld", n, k->min, k->max);
		return;
	}
	conf_set_uint_(ld->conf, k, (unsigned long long)n);
}

void conf_apply_(struct conf_load_ *ld, size_t index, const config_setting_t *s, const char *name)
{
	const struct conf_key *k = &conf_keys_[index];
	size_t before = ld->nerrors;

	ld->origin[index] = s;
	switch (k->type) {
	case CONF_STRING:
		conf_apply_string(ld, k, s, name);
		break;
	case CONF_INT:
		conf_apply_int(ld, k, s, name);
		break;
	case CONF_BOOL:
		conf_apply_bool(ld, k, s, name);
		break;
	case CONF_ENUM:
		conf_apply_enum(ld, k, s, name);
		break;
	case CONF_STRLIST:
		conf_apply_strlist(ld, k, s, name);
		break;
	case CONF_PEERS:
		conf_apply_peers(ld, k, s, name);
		break;
	case CONF_PREFIX_MAP:
		conf_apply_prefix_map(ld, k, s, name);
		break;
	case CONF_READY:
		conf_apply_ready(ld, k, s, name);
		break;
	case CONF_GROUPS:
		conf_apply_groups_(ld, k, s, name);
		break;
	case CONF_LISTENERS:
		conf_apply_listeners_(ld, k, s, name);
		break;
	}
	ld->bad[index] = ld->nerrors != before;
}

/* For conf_groups.c (the `groups` list reads its entries with the same helpers as peers). */
bool conf_read_strlist_(struct conf_load_ *ld, const config_setting_t *s, const char *name, long long max,
			conf_text_rule rule, char ***out, size_t *count)
{
	return conf_read_strlist(ld, s, name, max, rule, out, count);
}

const char *conf_group_member_(struct conf_load_ *ld, const config_setting_t *g, const config_setting_t *m,
			       const char *base, const char *leaf, conf_text_rule rule)
{
	return conf_group_member(ld, g, m, base, leaf, rule);
}
