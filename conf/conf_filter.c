/* conf_filter.c - do two MQTT topic filters share a topic? The overlap rule of `groups` (a topic
 * belongs to one group at most) and the check of group topics against topics.plaintext and
 * topics.deny ask it at load time. conf/ may not use proxy/'s MQTT code (it links libconfig only),
 * so this is its own small pure walk over both filters, level by level (MQTT 5 §4.7):
 *   - '+' matches exactly one level, which may be empty ("a/+" matches "a/");
 *   - '#' matches any number of further levels, none included: "a/#" matches "a" (§4.7.1.2);
 *   - a filter whose first level is a wildcard matches no topic starting with '$' (§4.7.2);
 *   - a topic name has at least one byte (§4.7.3), so the only topic with a single empty level,
 *     "", is no topic: "+" and "/#" share nothing ("/#" matches "/" and deeper, "+" one level).
 * tests/unit/test_conf_filter.c checks it against brute force over every small filter. */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "conf.h"

/* A cursor over the levels of a filter. */
struct conf_levels {
	const char *next; /* start of the next level; NULL once the last level was taken */
};

/* Takes the next level (*lv, *len); false when the filter has no more levels. */
static bool conf_level_next(struct conf_levels *w, const char **lv, size_t *len)
{
	const char *slash;

	if (!w->next)
		return false;
	*lv = w->next;
	slash = strchr(*lv, '/');
	*len = slash ? (size_t)(slash - *lv) : strlen(*lv);
	w->next = slash ? slash + 1 : NULL;
	return true;
}

static bool conf_level_is(const char *lv, size_t len, char wildcard)
{
	return len == 1 && lv[0] == wildcard;
}

static bool conf_wildcard_first(const char *f)
{
	return f[0] == '+' || f[0] == '#'; /* valid filters: a wildcard is a whole level */
}

bool conf_filters_intersect(const char *a, const char *b)
{
	struct conf_levels wa = {a}, wb = {b};
	const char *la = NULL, *lb = NULL;
	size_t na = 0, nb = 0, depth;
	bool ha, hb, first_empty = false;

	/* A literal first level starting with '$' names only '$' topics, which no wildcard-first
	 * filter matches; against another literal the level comparison below decides. */
	if ((a[0] == '$' && conf_wildcard_first(b)) || (b[0] == '$' && conf_wildcard_first(a)))
		return false;
	for (depth = 0;; depth++) {
		ha = conf_level_next(&wa, &la, &na);
		hb = conf_level_next(&wb, &lb, &nb);
		if ((ha && conf_level_is(la, na, '#')) || (hb && conf_level_is(lb, nb, '#'))) {
			/* '#' takes whatever the other filter still has, or nothing (the parent level).
			 * Nothing at depth 1 leaves a one-level topic: no topic if that level is empty. */
			if (ha && hb)
				return true;
			return depth != 1 || !first_empty;
		}
		if (!ha || !hb)
			return !ha && !hb; /* one filter ends deeper than the other: no common topic */
		if (!conf_level_is(la, na, '+') && !conf_level_is(lb, nb, '+') &&
		    (na != nb || memcmp(la, lb, na) != 0))
			return false;
		if (depth == 0) /* a literal empty first level makes the topic's first level empty */
			first_empty = na == 0 || nb == 0;
	}
}
