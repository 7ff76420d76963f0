/* conf_suggest.c - "did you mean": the known name nearest to an unknown one, for unknown options
 * in a configuration file and unknown command-line options. A typo is one or two edits (a letter
 * left out, doubled, swapped with its neighbour), so the distance is the optimal string alignment
 * distance (Levenshtein plus adjacent transposition) and only close names are offered. */
#include <stdio.h>
#include <string.h>

#include "conf_internal.h"

/* Names longer than this are nobody's typo of a known name (the longest option is 31 bytes). */
#define CONF_SUGGEST_MAX 64

/* Optimal string alignment distance between a and b (both at most CONF_SUGGEST_MAX bytes). */
static size_t conf_distance(const char *a, size_t la, const char *b, size_t lb)
{
	unsigned char d[CONF_SUGGEST_MAX + 1][CONF_SUGGEST_MAX + 1]; /* distances fit: at most 64 */
	size_t i, j;

	for (i = 0; i <= la; i++)
		d[i][0] = (unsigned char)i;
	for (j = 0; j <= lb; j++)
		d[0][j] = (unsigned char)j;
	for (i = 1; i <= la; i++) {
		for (j = 1; j <= lb; j++) {
			unsigned cost = a[i - 1] == b[j - 1] ? 0 : 1;
			unsigned best = d[i - 1][j - 1] + cost;

			if (d[i - 1][j] + 1u < best)
				best = d[i - 1][j] + 1u;
			if (d[i][j - 1] + 1u < best)
				best = d[i][j - 1] + 1u;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1u < best)
				best = d[i - 2][j - 2] + 1u;
			d[i][j] = (unsigned char)best;
		}
	}
	return d[la][lb];
}

/* How many edits still read as a typo of a name of len bytes: one for short names, two otherwise. */
static size_t conf_suggest_limit(size_t len)
{
	return len <= 4 ? 1 : 2;
}

/* Keeps cand (its first clen bytes) in *best when it is nearer to word than *best_d. */
static void conf_suggest_try(const char *word, size_t wlen, const char *cand, size_t clen, const char **best,
			     size_t *best_len, size_t *best_d)
{
	size_t dist;

	if (clen > CONF_SUGGEST_MAX)
		return;
	dist = conf_distance(word, wlen, cand, clen);
	if (dist > 0 && dist < *best_d && dist <= conf_suggest_limit(clen)) {
		*best = cand;
		*best_len = clen;
		*best_d = dist;
	}
}

const char *conf_nearest(const char *word, const char *const *candidates, size_t n)
{
	size_t wlen = strlen(word), best_len = 0, best_d = (size_t)-1, i;
	const char *best = NULL;

	if (wlen > CONF_SUGGEST_MAX)
		return NULL;
	for (i = 0; i < n; i++)
		if (candidates[i])
			conf_suggest_try(word, wlen, candidates[i], strlen(candidates[i]), &best, &best_len, &best_d);
	return best;
}

const char *conf_suggest_option_(const char *name, char buf[static CONF_NAME_MAX])
{
	size_t wlen = strlen(name), best_len = 0, best_d = (size_t)-1, i, k;
	const char *best = NULL, *opt;

	if (wlen > CONF_SUGGEST_MAX)
		return NULL;
	for (i = 0; (opt = conf_option_name(i)) != NULL; i++) {
		conf_suggest_try(name, wlen, opt, strlen(opt), &best, &best_len, &best_d);
		for (k = 0; opt[k]; k++) /* the groups it is in: "broker", "broker.tls" */
			if (opt[k] == '.')
				conf_suggest_try(name, wlen, opt, k, &best, &best_len, &best_d);
	}
	if (!best || best_len >= CONF_NAME_MAX)
		return NULL;
	memcpy(buf, best, best_len);
	buf[best_len] = '\0';
	return buf;
}
