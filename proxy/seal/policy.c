/* policy.c - topic classification for sealing (PROTOCOL.md §11). The filter lists are short
 * (configured by hand), so a linear scan per PUBLISH is cheaper than any index. Read groups
 * (issue 17) can hold 64 x 64 filters, matched per sealed message on both sides: their filters
 * are indexed by first level (a binary search), and their readers and writers kept sorted. */
#include "policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt_topic.h"
#include "conf.h"

struct policy_filter {
	uint8_t *f;
	size_t len;
};

/* A rule of topic_prefix_map. */
struct policy_prefix {
	uint8_t *local, *canon;
	size_t llen, clen;
};

/* A filter of a read group; first = the length of its first level. */
struct policy_gfilter {
	uint8_t *f;
	size_t len, first;
	int group;
};

/* A read group: its name and its readers and writers, sorted (strcmp) without repeats. */
struct policy_group_ {
	char *name;
	char **readers, **writers;
	size_t nreaders, nwriters;
	bool has_writers;
};

struct policy {
	struct policy_filter *plain, *deny;
	size_t nplain, ndeny; /* deny includes "<prefix>/#" */
	struct policy_prefix *map;
	size_t nmap;
	struct policy_group_ *groups;
	size_t ngroups;
	struct policy_gfilter *lit; /* group filters whose first level is a literal, sorted by it */
	size_t nlit;
	struct policy_gfilter *wild; /* group filters whose first level is '+' or '#' */
	size_t nwild;
};

static int policy_copy_groups(struct policy *p, const struct conf_group *g, size_t n);
static void policy_free_groups(struct policy *p);

static int policy_copy(struct policy_filter **out, char *const *src, size_t n, const char *extra)
{
	size_t i, total = n + (extra ? 1 : 0);

	*out = calloc(total ? total : 1, sizeof(**out));
	if (!*out)
		return -1;
	for (i = 0; i < total; i++) {
		const char *s = i < n ? src[i] : extra;
		(*out)[i].len = strlen(s);
		(*out)[i].f = (uint8_t *)strdup(s);
		if (!(*out)[i].f)
			return -1;
	}
	return 0;
}

static void policy_free_list(struct policy_filter *l, size_t n)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < n; i++)
		free(l[i].f);
	free(l);
}

static int policy_copy_map(struct policy *p, const struct conf_prefix_map *m, size_t n)
{
	size_t i;

	p->map = calloc(n ? n : 1, sizeof(*p->map));
	if (!p->map)
		return -1;
	p->nmap = n;
	for (i = 0; i < n; i++) {
		p->map[i].llen = strlen(m[i].local);
		p->map[i].clen = strlen(m[i].canonical);
		p->map[i].local = (uint8_t *)strdup(m[i].local);
		p->map[i].canon = (uint8_t *)strdup(m[i].canonical);
		if (!p->map[i].local || !p->map[i].canon)
			return -1;
	}
	return 0;
}

struct policy *policy_new(const struct px_conf *conf)
{
	struct policy *p = calloc(1, sizeof(*p));
	char keyex[80];

	if (!p)
		return NULL;
	snprintf(keyex, sizeof(keyex), "%s/#", conf->keyex.topic_prefix); /* the prefix is <= 64 bytes */
	p->nplain = conf->topics.nplaintext;
	p->ndeny = conf->topics.ndeny + 1;
	if (policy_copy(&p->plain, conf->topics.plaintext, conf->topics.nplaintext, NULL) != 0 ||
	    policy_copy(&p->deny, conf->topics.deny, conf->topics.ndeny, keyex) != 0 ||
	    policy_copy_map(p, conf->topic_prefix_map, conf->ntopic_prefix_map) != 0 ||
	    policy_copy_groups(p, conf->groups, conf->ngroups) != 0) {
		policy_free(p);
		return NULL;
	}
	return p;
}

void policy_free(struct policy *p)
{
	size_t i;

	if (!p)
		return;
	policy_free_list(p->plain, p->nplain);
	policy_free_list(p->deny, p->ndeny);
	for (i = 0; p->map && i < p->nmap; i++) {
		free(p->map[i].local);
		free(p->map[i].canon);
	}
	free(p->map);
	policy_free_groups(p);
	free(p);
}

bool policy_has_prefix_map(const struct policy *p)
{
	return p && p->nmap > 0;
}

bool policy_aad_topic(const struct policy *p, const uint8_t *topic, size_t len, uint8_t *buf, size_t cap,
		      const uint8_t **out, size_t *out_len)
{
	const struct policy_prefix *best = NULL;
	size_t i;

	for (i = 0; p && i < p->nmap; i++) {
		const struct policy_prefix *r = &p->map[i];
		if (r->llen <= len && (!best || r->llen > best->llen) && memcmp(topic, r->local, r->llen) == 0)
			best = r;
	}
	if (!best) {
		*out = topic;
		*out_len = len;
		return true;
	}
	if (!buf || best->clen + (len - best->llen) > (cap < POLICY_TOPIC_MAX ? cap : POLICY_TOPIC_MAX))
		return false;
	memcpy(buf, best->canon, best->clen);
	memcpy(buf + best->clen, topic + best->llen, len - best->llen);
	*out = buf;
	*out_len = best->clen + (len - best->llen);
	return true;
}

static bool policy_any_match(const struct policy_filter *l, size_t n, const uint8_t *topic, size_t len)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (mqtt_topic_match(l[i].f, l[i].len, topic, len))
			return true;
	return false;
}

enum policy_class policy_topic(const struct policy *p, const uint8_t *topic, size_t len)
{
	if (policy_any_match(p->deny, p->ndeny, topic, len))
		return POLICY_DENIED;
	if (len > 0 && topic[0] == '$')
		return POLICY_PLAINTEXT;
	if (policy_any_match(p->plain, p->nplain, topic, len))
		return POLICY_PLAINTEXT;
	return POLICY_SEALED;
}

/* Length of the level starting at f[pos] (up to '/' or the end). */
static size_t policy_level_len(const uint8_t *f, size_t len, size_t pos)
{
	size_t end = pos;

	while (end < len && f[end] != '/')
		end++;
	return end - pos;
}

bool policy_filter_contains(const uint8_t *outer, size_t olen, const uint8_t *inner, size_t ilen)
{
	size_t o = 0, i = 0;

	/* Wildcards at the first level never match '$' topics (MQTT 5 §4.7.2). */
	if (ilen > 0 && inner[0] == '$' && olen > 0 && (outer[0] == '#' || outer[0] == '+'))
		return false;
	for (;;) {
		size_t ol = policy_level_len(outer, olen, o), il = policy_level_len(inner, ilen, i);
		bool o_end = o > olen, i_end = i > ilen;

		if (!o_end && ol == 1 && outer[o] == '#')
			return true;
		if (o_end || i_end)
			return o_end && i_end;
		if (il == 1 && inner[i] == '#')
			return false; /* inner goes deeper than a non-'#' outer level */
		/* '+' contains any single level (a literal or '+'); a literal only the same literal. */
		if (!(ol == 1 && outer[o] == '+') && (il != ol || memcmp(outer + o, inner + i, ol) != 0))
			return false;
		o += ol + 1;
		i += il + 1;
	}
}

bool policy_filter_denied(const struct policy *p, const uint8_t *filter, size_t len)
{
	const uint8_t *inner;
	size_t inner_len, k;

	if (mqtt_topic_share_split(filter, len, &inner, &inner_len)) {
		filter = inner;
		len = inner_len;
	}
	for (k = 0; k < p->ndeny; k++)
		if (policy_filter_contains(p->deny[k].f, p->deny[k].len, filter, len))
			return true;
	return false;
}

/* ---- read groups ---- */

static int policy_str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Copies n node ids into *out, sorted and without repeats (*count their number). */
static int policy_copy_ids(char ***out, size_t *count, char *const *ids, size_t n)
{
	size_t i, k = 0;

	*count = 0;
	*out = calloc(n ? n : 1, sizeof(**out));
	if (!*out)
		return -1;
	for (i = 0; i < n; i++) {
		(*out)[i] = strdup(ids[i]);
		if (!(*out)[i]) {
			*count = i;
			return -1;
		}
	}
	if (n > 1)
		qsort(*out, n, sizeof(**out), policy_str_cmp);
	for (i = 0; i < n; i++) {
		if (k > 0 && strcmp((*out)[k - 1], (*out)[i]) == 0)
			free((*out)[i]);
		else
			(*out)[k++] = (*out)[i];
	}
	*count = k;
	return 0;
}

/* Orders literal first levels: bytes, then length. */
static int policy_level_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int policy_gfilter_cmp(const void *a, const void *b)
{
	const struct policy_gfilter *x = a, *y = b;

	return policy_level_cmp(x->f, x->first, y->f, y->first);
}

/* Files filter f of group g under its first level (p->lit) or as wildcard-first (p->wild). */
static int policy_add_gfilter(struct policy *p, const char *f, int g)
{
	struct policy_gfilter *e;
	size_t len = strlen(f);

	e = (f[0] == '+' || f[0] == '#') ? &p->wild[p->nwild++] : &p->lit[p->nlit++];
	e->f = (uint8_t *)strdup(f);
	e->len = len;
	e->first = policy_level_len((const uint8_t *)f, len, 0);
	e->group = g;
	return e->f ? 0 : -1;
}

static int policy_copy_group(struct policy *p, const struct conf_group *c, int g)
{
	struct policy_group_ *d = &p->groups[g];
	size_t i;

	d->has_writers = c->has_writers;
	d->name = strdup(c->name);
	if (!d->name || policy_copy_ids(&d->readers, &d->nreaders, c->readers, c->nreaders) != 0 ||
	    policy_copy_ids(&d->writers, &d->nwriters, c->writers, c->has_writers ? c->nwriters : 0) != 0)
		return -1;
	for (i = 0; i < c->ntopics; i++)
		if (policy_add_gfilter(p, c->topics[i], g) != 0)
			return -1;
	return 0;
}

static int policy_copy_groups(struct policy *p, const struct conf_group *g, size_t n)
{
	size_t i, nf = 0;

	for (i = 0; i < n; i++)
		nf += g[i].ntopics;
	p->groups = calloc(n ? n : 1, sizeof(*p->groups));
	p->lit = calloc(nf ? nf : 1, sizeof(*p->lit));
	p->wild = calloc(nf ? nf : 1, sizeof(*p->wild));
	if (!p->groups || !p->lit || !p->wild)
		return -1;
	p->ngroups = n;
	for (i = 0; i < n; i++)
		if (policy_copy_group(p, &g[i], (int)i) != 0)
			return -1;
	if (p->nlit > 1)
		qsort(p->lit, p->nlit, sizeof(*p->lit), policy_gfilter_cmp);
	return 0;
}

static void policy_free_gfilters(struct policy_gfilter *l, size_t n)
{
	size_t i;

	for (i = 0; l && i < n; i++)
		free(l[i].f);
	free(l);
}

static void policy_free_groups(struct policy *p)
{
	size_t i, k;

	for (i = 0; p->groups && i < p->ngroups; i++) {
		struct policy_group_ *g = &p->groups[i];
		free(g->name);
		for (k = 0; g->readers && k < g->nreaders; k++)
			free(g->readers[k]);
		for (k = 0; g->writers && k < g->nwriters; k++)
			free(g->writers[k]);
		free(g->readers);
		free(g->writers);
	}
	free(p->groups);
	policy_free_gfilters(p->lit, p->nlit);
	policy_free_gfilters(p->wild, p->nwild);
}

size_t policy_group_count(const struct policy *p)
{
	return p ? p->ngroups : 0;
}

/* The configured group number group, or NULL (the default group, out of range). */
static const struct policy_group_ *policy_group_at(const struct policy *p, int group)
{
	return p && group >= 0 && (size_t)group < p->ngroups ? &p->groups[group] : NULL;
}

int policy_group(const struct policy *p, const uint8_t *topic, size_t len)
{
	size_t first, lo, hi, mid, i;

	if (!p || p->ngroups == 0 || len == 0 || topic[0] == '$')
		return POLICY_GROUP_DEFAULT;
	first = policy_level_len(topic, len, 0);
	lo = 0;
	hi = p->nlit;
	while (lo < hi) { /* the first filter whose first level is not below the topic's */
		mid = lo + (hi - lo) / 2;
		if (policy_level_cmp(p->lit[mid].f, p->lit[mid].first, topic, first) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (i = lo; i < p->nlit && policy_level_cmp(p->lit[i].f, p->lit[i].first, topic, first) == 0; i++)
		if (mqtt_topic_match(p->lit[i].f, p->lit[i].len, topic, len))
			return p->lit[i].group;
	for (i = 0; i < p->nwild; i++)
		if (mqtt_topic_match(p->wild[i].f, p->wild[i].len, topic, len))
			return p->wild[i].group;
	return POLICY_GROUP_DEFAULT;
}

const char *policy_group_name(const struct policy *p, int group)
{
	const struct policy_group_ *g = policy_group_at(p, group);

	if (group == POLICY_GROUP_DEFAULT)
		return "";
	return g ? g->name : NULL;
}

int policy_group_find(const struct policy *p, const uint8_t *name, size_t len)
{
	size_t i;

	if (len == 0)
		return POLICY_GROUP_DEFAULT;
	for (i = 0; p && i < p->ngroups; i++)
		if (strlen(p->groups[i].name) == len && memcmp(p->groups[i].name, name, len) == 0)
			return (int)i;
	return POLICY_GROUP_UNKNOWN;
}

const char *const *policy_group_readers(const struct policy *p, int group, size_t *n)
{
	const struct policy_group_ *g = policy_group_at(p, group);

	*n = g ? g->nreaders : 0;
	return g ? (const char *const *)g->readers : NULL;
}

const char *const *policy_group_writers(const struct policy *p, int group, size_t *n)
{
	const struct policy_group_ *g = policy_group_at(p, group);

	*n = g && g->has_writers ? g->nwriters : 0;
	return g && g->has_writers ? (const char *const *)g->writers : NULL;
}

bool policy_group_has_writers(const struct policy *p, int group)
{
	const struct policy_group_ *g = policy_group_at(p, group);

	return g && g->has_writers;
}

static bool policy_ids_have(char *const *ids, size_t n, const char *id)
{
	return n > 0 && bsearch(&id, ids, n, sizeof(*ids), policy_str_cmp) != NULL;
}

bool policy_group_is_reader(const struct policy *p, int group, const char *node_id)
{
	const struct policy_group_ *g = policy_group_at(p, group);

	if (group == POLICY_GROUP_DEFAULT)
		return true;
	return g && policy_ids_have(g->readers, g->nreaders, node_id);
}

bool policy_group_is_writer(const struct policy *p, int group, const char *node_id)
{
	const struct policy_group_ *g = policy_group_at(p, group);

	if (group == POLICY_GROUP_DEFAULT)
		return true;
	return g && (!g->has_writers || policy_ids_have(g->writers, g->nwriters, node_id));
}
