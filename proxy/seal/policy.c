/* policy.c - topic classification for sealing (PROTOCOL.md §11). The filter lists are short
 * (configured by hand), so a linear scan per PUBLISH is cheaper than any index. */
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

struct policy {
	struct policy_filter *plain, *deny;
	size_t nplain, ndeny; /* deny includes "<prefix>/#" */
	struct policy_prefix *map;
	size_t nmap;
};

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
	    policy_copy_map(p, conf->topic_prefix_map, conf->ntopic_prefix_map) != 0) {
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
