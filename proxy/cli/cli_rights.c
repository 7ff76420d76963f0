/* cli_rights.c - the read and write rights that `groups` gives (issue 17), as `mqseal check`
 * prints them after the effective configuration: one table per group (its topics, readers and
 * writers, and the default group of every other sealed topic), then one line per node (this node,
 * each peer, and every other node id the groups name) with the groups it may read and write. The
 * lines are libconfig comments, so check's standard output still loads as a configuration. The
 * answers come from the topic policy itself (policy_group_is_reader/_is_writer), the code that the
 * key exchange asks. */
#include "cli_rights.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "policy.h"

#define RIGHTS_DEFAULT "(default)"

/* Widths of the group table's first columns. */
struct rights_cols {
	int name, topics, readers;
};

/* Writes list (n strings) separated by ", " to f, or none when n is 0. */
static void rights_list(FILE *f, char *const *list, size_t n, const char *none)
{
	size_t i;

	if (n == 0)
		fputs(none, f);
	for (i = 0; i < n; i++)
		fprintf(f, "%s%s", i ? ", " : "", list[i]);
}

/* The printed width of a list as rights_list writes it. */
static int rights_list_width(char *const *list, size_t n, const char *none)
{
	size_t i, w = n ? 0 : strlen(none);

	for (i = 0; i < n; i++)
		w += strlen(list[i]) + (i ? 2 : 0);
	return w > 200 ? 200 : (int)w; /* long lists just push their line out */
}

static void rights_pad(FILE *f, int used, int width)
{
	fprintf(f, "%*s", width - used + 2, "");
}

static void rights_groups(FILE *f, const struct px_conf *c)
{
	struct rights_cols w = {(int)strlen(RIGHTS_DEFAULT), (int)strlen("every other sealed topic"),
				(int)strlen("every peer")};
	size_t i;
	int n;

	for (i = 0; i < c->ngroups; i++) {
		const struct conf_group *g = &c->groups[i];
		n = (int)strlen(g->name);
		w.name = n > w.name ? n : w.name;
		n = rights_list_width(g->topics, g->ntopics, "");
		w.topics = n > w.topics ? n : w.topics;
		n = rights_list_width(g->readers, g->nreaders, "");
		w.readers = n > w.readers ? n : w.readers;
	}
	fprintf(f, "# group%*s  topics%*s  readers%*s  writers\n", w.name - 5, "", w.topics - 6, "", w.readers - 7, "");
	for (i = 0; i < c->ngroups; i++) {
		const struct conf_group *g = &c->groups[i];
		fprintf(f, "# %s", g->name);
		rights_pad(f, (int)strlen(g->name), w.name);
		rights_list(f, g->topics, g->ntopics, "");
		rights_pad(f, rights_list_width(g->topics, g->ntopics, ""), w.topics);
		rights_list(f, g->readers, g->nreaders, "");
		rights_pad(f, rights_list_width(g->readers, g->nreaders, ""), w.readers);
		rights_list(f, g->writers, g->nwriters, "any node");
		fputs("\n", f);
	}
	fprintf(f, "# %-*s  %-*s  %-*s  any node\n", w.name, RIGHTS_DEFAULT, w.topics,
		c->ngroups ? "every other sealed topic" : "every sealed topic", w.readers, "every peer");
}

/* The groups node may read (writing false) or write, in configuration order, then the default
 * group when default_too. */
static void rights_of(FILE *f, const struct policy *p, const char *node, bool writing, bool default_too)
{
	size_t i, n = policy_group_count(p), shown = 0;

	for (i = 0; i < n; i++) {
		bool ok = writing ? policy_group_is_writer(p, (int)i, node) : policy_group_is_reader(p, (int)i, node);
		if (ok)
			fprintf(f, "%s%s", shown++ ? ", " : "", policy_group_name(p, (int)i));
	}
	if (default_too)
		fprintf(f, "%s%s", shown++ ? ", " : "", RIGHTS_DEFAULT);
	if (!shown)
		fputs("nothing", f);
}

static void rights_node(FILE *f, const struct policy *p, const char *node, const char *role, int width,
			bool default_too)
{
	fprintf(f, "# %-*s  %-10s  read: ", width, node, role);
	rights_of(f, p, node, false, default_too);
	fputs("; write: ", f);
	rights_of(f, p, node, true, default_too);
	fputs("\n", f);
}

static int rights_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Is id this node or a peer? */
static bool rights_known(const struct px_conf *c, const char *id)
{
	size_t i;

	if (strcmp(id, c->node_id) == 0)
		return true;
	for (i = 0; i < c->npeers; i++)
		if (strcmp(c->peers[i].id, id) == 0)
			return true;
	return false;
}

/* Every node id the groups name, sorted without repeats, into *out (the strings are c's); the
 * caller frees the array. -1 when memory runs out. */
static int rights_named(const struct px_conf *c, const char ***out, size_t *n)
{
	size_t i, k, total = 0, m = 0;
	const char **all;

	for (i = 0; i < c->ngroups; i++)
		total += c->groups[i].nreaders + c->groups[i].nwriters;
	all = calloc(total ? total : 1, sizeof(*all));
	if (!all)
		return -1;
	for (i = 0; i < c->ngroups; i++) {
		for (k = 0; k < c->groups[i].nreaders; k++)
			all[m++] = c->groups[i].readers[k];
		for (k = 0; k < c->groups[i].nwriters; k++)
			all[m++] = c->groups[i].writers[k];
	}
	if (m > 1)
		qsort(all, m, sizeof(*all), rights_cmp);
	for (i = 0, k = 0; i < m; i++)
		if (!rights_known(c, all[i]) && (k == 0 || strcmp(all[k - 1], all[i]) != 0))
			all[k++] = all[i];
	*out = all;
	*n = k;
	return 0;
}

static void rights_nodes(FILE *f, const struct px_conf *c, const struct policy *p, const char **others,
			 size_t nothers)
{
	int width = (int)strlen("node"), n;
	size_t i;

	n = (int)strlen(c->node_id);
	width = n > width ? n : width;
	for (i = 0; i < c->npeers; i++) {
		n = (int)strlen(c->peers[i].id);
		width = n > width ? n : width;
	}
	for (i = 0; i < nothers; i++) {
		n = (int)strlen(others[i]);
		width = n > width ? n : width;
	}
	fprintf(f, "# %-*s  %-10s  rights\n", width, "node", "role");
	rights_node(f, p, c->node_id, "this node", width, true);
	for (i = 0; i < c->npeers; i++)
		rights_node(f, p, c->peers[i].id, "peer", width, true);
	for (i = 0; i < nothers; i++)
		rights_node(f, p, others[i], "not a peer", width, false);
}

int cli_rights_print(FILE *f, const struct px_conf *conf)
{
	struct policy *p = policy_new(conf);
	const char **others = NULL;
	size_t nothers = 0;
	int rc = -1;

	if (!p || rights_named(conf, &others, &nothers) != 0)
		goto out;
	fputs("\n# Read groups: who may read and write which sealed topics (docs/OPERATIONS.md, Read "
	      "groups).\n# A node always opens what it sealed itself; \"any node\" means every node that "
	      "trusts the sender.\n",
	      f);
	rights_groups(f, conf);
	fputs("#\n", f);
	rights_nodes(f, conf, p, others, nothers);
	rc = 0;
out:
	free(others);
	policy_free(p);
	return rc;
}
