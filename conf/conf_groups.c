/* conf_groups.c - `groups`, the read groups of issue 17 (docs/OPERATIONS.md "Read groups"):
 *   groups = ( { name = "telemetry"; topics = [ "sensors/#" ]; readers = [ "backend" ]; },
 *              { name = "commands"; topics = [ "cmd/#" ]; readers = [ "actuator-1" ];
 *                writers = [ "backend" ]; } );
 * Each entry: name [A-Za-z0-9._-]{1,32}, unique; topics 1..64 topic filters (none starting with
 * '$': those topics are never sealed); readers 1..10,000 node ids; writers, when present, 1..10,000
 * node ids. Node ids are the fleet's, not only this node's peers. Read here, entry by entry, with
 * conf_value.c's list helpers; then the overlap rule (a topic belongs to one group at most: two
 * filters of different groups that can match a common topic are an error naming both, with the
 * line of each) and, once every option is read, the rule that no group topic is also plaintext
 * or denied. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_internal.h"

/* A group's name: it is on the wire (PROTOCOL.md, the key announcement's str8 group) and in
 * metrics labels, so short and plain. */
static const char *conf_rule_group_name(const char *v)
{
	size_t n = strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");

	if (v[n] != '\0' || n == 0 || n > CONF_GROUP_NAME_MAX)
		return "is not a valid group name (1 to 32 of A-Z a-z 0-9 . _ -)";
	return NULL;
}

/* A group's topic filter: a valid filter that can match a sealed topic ('$' topics never are). */
static const char *conf_rule_group_filter(const char *v)
{
	const char *why = conf_rule_filter_(v);

	if (why)
		return why;
	if (v[0] == '$')
		return "is a '$' topic filter: topics starting with '$' belong to the broker and are never "
		       "sealed (MQTT 5 \xc2\xa7"
		       "4.7.2)";
	return NULL;
}

static void conf_group_clear(struct conf_group *g)
{
	free(g->name);
	conf_free_strlist_(g->topics, g->ntopics);
	free(g->topic_lines);
	conf_free_strlist_(g->readers, g->nreaders);
	conf_free_strlist_(g->writers, g->nwriters);
	memset(g, 0, sizeof(*g));
}

void conf_free_groups_(struct conf_group *groups, size_t n)
{
	size_t i;

	for (i = 0; groups && i < n; i++)
		conf_group_clear(&groups[i]);
	free(groups);
}

/* A required (or, with !required, optional) list member of 1..max strings following rule;
 * false (reported) when it is missing, empty or has a bad entry. */
static bool conf_group_list(struct conf_load_ *ld, const config_setting_t *g, const config_setting_t *m,
			    const char *base, const char *leaf, long long max, conf_text_rule rule,
			    char ***out, size_t *count)
{
	char name[CONF_NAME_MAX];
	size_t before = ld->nerrors;

	conf_name_(name, "%s.%s", base, leaf);
	if (!m) {
		conf_report_(ld, g, name, false, "required option is missing");
		return false;
	}
	if (!conf_read_strlist_(ld, m, name, max, rule, out, count))
		return false;
	if (*count == 0) {
		conf_report_(ld, m, name, false, "empty: a group needs at least one %s",
			     strcmp(leaf, "topics") == 0 ? "topic filter" : "node id");
		return false;
	}
	return ld->nerrors == before;
}

/* The lines of the topic filters of m, the group's topics list, into g->topic_lines. */
static void conf_group_lines(struct conf_load_ *ld, const config_setting_t *m, struct conf_group *g)
{
	size_t i;

	g->topic_lines = calloc(g->ntopics, sizeof(*g->topic_lines));
	if (!g->topic_lines) {
		ld->oom = true;
		return;
	}
	for (i = 0; i < g->ntopics; i++)
		g->topic_lines[i] = (unsigned)config_setting_source_line(config_setting_get_elem(m, (unsigned)i));
}

/* The overlap rule: reports every filter of g (entry base, its topics list m) that can match a
 * topic that a filter of an earlier group can match. False when there was one. */
static bool conf_group_disjoint(struct conf_load_ *ld, const struct conf_group *groups, size_t count,
				const struct conf_group *g, const config_setting_t *m, const char *base)
{
	char name[CONF_NAME_MAX], q1[CONF_QUOTE_MAX], q2[CONF_QUOTE_MAX], q3[CONF_QUOTE_MAX],
		q4[CONF_QUOTE_MAX];
	size_t j, k, t;
	bool ok = true;

	for (t = 0; t < g->ntopics; t++) {
		for (j = 0; j < count; j++) {
			for (k = 0; k < groups[j].ntopics; k++) {
				if (!conf_filters_intersect(g->topics[t], groups[j].topics[k]))
					continue;
				conf_name_(name, "%s.topics[%zu]", base, t);
				conf_report_(ld, config_setting_get_elem(m, (unsigned)t), name, false,
					     "%s of group %s and %s of group %s (%s:%u) can match the same topic; "
					     "a topic may belong to one group only",
					     conf_quote_(g->topics[t], q1), conf_quote_(g->name, q2),
					     conf_quote_(groups[j].topics[k], q3), conf_quote_(groups[j].name, q4),
					     ld->path, groups[j].topic_lines[k]);
				ok = false;
			}
		}
	}
	return ok;
}

/* Is the name of g new? Reports a repeated one at its setting. */
static bool conf_group_name_new(struct conf_load_ *ld, const struct conf_group *groups, size_t count,
				const char *v, const config_setting_t *at, const char *base)
{
	char name[CONF_NAME_MAX], q[CONF_QUOTE_MAX];
	size_t j;

	for (j = 0; j < count; j++) {
		if (strcmp(groups[j].name, v) == 0) {
			conf_name_(name, "%s.name", base);
			conf_report_(ld, at, name, false, "duplicate group name %s (also at line %u)",
				     conf_quote_(v, q), groups[j].line);
			return false;
		}
	}
	return true;
}

/* Reads entry base of `groups` into groups[*count] when it is valid, new and disjoint from the
 * groups before it. */
static void conf_group_read(struct conf_load_ *ld, const config_setting_t *s, const char *base, void *array,
			    size_t *count)
{
	static const char *const names[] = {"name", "topics", "readers", "writers", NULL};
	const config_setting_t *m[4];
	struct conf_group *groups = array, *g = &groups[*count];
	const char *namev;
	bool ok = conf_group_scan_(ld, s, base, names, m);

	namev = conf_group_member_(ld, s, m[0], base, "name", conf_rule_group_name);
	ok &= namev != NULL;
	ok &= conf_group_list(ld, s, m[1], base, "topics", CONF_GROUP_TOPICS_MAX, conf_rule_group_filter,
			      &g->topics, &g->ntopics);
	ok &= conf_group_list(ld, s, m[2], base, "readers", CONF_GROUP_NODES_MAX, conf_rule_node_id_,
			      &g->readers, &g->nreaders);
	if (m[3]) {
		g->has_writers = true;
		ok &= conf_group_list(ld, s, m[3], base, "writers", CONF_GROUP_NODES_MAX, conf_rule_node_id_,
				      &g->writers, &g->nwriters);
	}
	if (namev && !conf_group_name_new(ld, groups, *count, namev, m[0], base))
		ok = false;
	if (ok) {
		g->line = (unsigned)config_setting_source_line(s);
		g->name = strdup(namev);
		ld->oom |= !g->name;
		conf_group_lines(ld, m[1], g);
	}
	if (!ok || !g->name || !g->topic_lines || !conf_group_disjoint(ld, groups, *count, g, m[1], base)) {
		conf_group_clear(g);
		return;
	}
	(*count)++;
}

void conf_apply_groups_(struct conf_load_ *ld, const struct conf_key *k, const config_setting_t *s,
			const char *name)
{
	void *groups = NULL;

	conf_read_groups_(ld, k, s, name, "expected a list of groups ( { name = ...; topics = ...; readers = ...; }, ... )",
			  "expected a group { name = \"...\"; topics = [ ... ]; readers = [ ... ]; }",
			  sizeof(struct conf_group), conf_group_read, &groups, &ld->conf->ngroups);
	ld->conf->groups = groups;
}

/* Reports each filter of the groups that can match a topic of list (topics.plaintext or
 * topics.deny, option): such a topic would never be sealed under its group's key. */
static void conf_groups_vs(struct conf_load_ *ld, char *const *list, size_t n, const char *option)
{
	const struct px_conf *c = ld->conf;
	const config_setting_t *gs = conf_origin_(ld, "groups"), *ls = conf_origin_(ld, option), *at;
	char name[CONF_NAME_MAX], q1[CONF_QUOTE_MAX], q2[CONF_QUOTE_MAX], q3[CONF_QUOTE_MAX];
	size_t i, t, k;

	for (i = 0; i < c->ngroups; i++) {
		for (t = 0; t < c->groups[i].ntopics; t++) {
			for (k = 0; k < n; k++) {
				if (!list[k] || !conf_filters_intersect(c->groups[i].topics[t], list[k]))
					continue;
				at = ls && config_setting_is_aggregate(ls) ? config_setting_get_elem(ls, (unsigned)k) : ls;
				conf_name_(name, "%s[%zu]", option, k);
				conf_report_(ld, at ? at : gs, name, false,
					     "%s can match topics of group %s (%s, %s:%u); a topic is sealed for a group, "
					     "plaintext or denied, never two of these",
					     conf_quote_(list[k], q1), conf_quote_(c->groups[i].name, q2),
					     conf_quote_(c->groups[i].topics[t], q3), ld->path,
					     c->groups[i].topic_lines[t]);
			}
		}
	}
}

void conf_check_groups_(struct conf_load_ *ld)
{
	const struct px_conf *c = ld->conf;

	if (c->ngroups == 0)
		return;
	if (!conf_bad_(ld, "topics.plaintext"))
		conf_groups_vs(ld, c->topics.plaintext, c->topics.nplaintext, "topics.plaintext");
	if (!conf_bad_(ld, "topics.deny"))
		conf_groups_vs(ld, c->topics.deny, c->topics.ndeny, "topics.deny");
}
