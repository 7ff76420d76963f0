/* test_conf_filter.c - conf_filters_intersect, the test behind the overlap rule of `groups`:
 * a table of named cases (+, #, empty levels, '$' topics, identical filters, a/# vs a, ...), then
 * an exhaustive comparison with brute force: every valid filter of up to 3 levels over the level
 * alphabet { "", a, b, $x, +, # } against every other, the answer checked against the set of
 * topics of up to 3 levels over { "", a, b, $x, c } that a separate, naive matcher says each
 * filter matches (3 levels suffice: a common topic can always be cut to the deeper filter's
 * depth, and "c" stands for any level neither filter names). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "conf.h"

static void test_cases(void)
{
	static const struct {
		const char *a, *b;
		bool want;
	} cases[] = {
		{"a", "a", true},               /* identical */
		{"sensors/#", "sensors/#", true},
		{"a", "b", false},
		{"a/#", "a", true},             /* '#' includes the parent level */
		{"a/#", "a/b/c", true},
		{"a/#", "b/#", false},
		{"a/+", "a", false},            /* '+' is exactly one level */
		{"a/+", "a/", true},            /* ... which may be empty */
		{"a/+", "a/b/c", false},
		{"+/b", "a/+", true},           /* a/b */
		{"+/b", "a/c", false},
		{"+", "/", false},              /* "/" has two levels */
		{"+/+", "/", true},
		{"+", "/#", false},             /* "/#" matches "/" and deeper; the parent "" is no topic */
		{"+/#", "/#", true},            /* "/" */
		{"a", "/#", false},
		{"/", "/#", true},
		{"#", "a", true},
		{"#", "#", true},
		{"#", "/", true},
		{"#", "$SYS/x", false},         /* wildcards first never match '$' topics */
		{"+/x", "$SYS/x", false},
		{"+/#", "$SYS/#", false},
		{"$SYS/#", "$SYS/x", true},
		{"$SYS/+", "$SYS/#", true},
		{"$SYS/#", "$sys/#", false},
		{"a/$x", "a/+", true},          /* '$' deeper than the first level is an ordinary byte */
		{"#", "a/$x", true},
		{"a//b", "a/+/b", true},        /* empty levels are levels */
		{"a//b", "a/b", false},
		{"a/b/#", "a/+/c", true},
		{"a/b/#", "a/c/+", false},
		{"sensors/#", "cmd/#", false},  /* the example fleet */
		{"sensors/+/temp", "sensors/s1/#", true},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool ab = conf_filters_intersect(cases[i].a, cases[i].b);
		bool ba = conf_filters_intersect(cases[i].b, cases[i].a);
		if (ab != cases[i].want || ba != cases[i].want)
			fprintf(stderr, "intersect(%s, %s) = %d / %d, want %d\n", cases[i].a, cases[i].b, ab, ba,
				cases[i].want);
		CHECK(ab == cases[i].want && ba == cases[i].want);
	}
}

/* ---- brute force ---- */

#define NLEVELS 3
static const char *const filter_levels[] = {"", "a", "b", "$x", "+", "#"};
static const char *const topic_levels[] = {"", "a", "b", "$x", "c"};
#define NFL (sizeof(filter_levels) / sizeof(filter_levels[0]))
#define NTL (sizeof(topic_levels) / sizeof(topic_levels[0]))
#define MAXF 185 /* 5 + 30 + 150: "" is no filter, "#" only as the last level */
#define MAXT 154 /* 4 + 25 + 125: "" is no topic */
#define WORDS ((MAXT + 63) / 64)

static char filters[MAXF][16], topics[MAXT][16];
static size_t nfilters, ntopics;

/* Writes the string of levels digits[0..n) (indexes into names) joined with '/'. */
static void join(char out[16], const char *const *names, const size_t *digits, size_t n)
{
	size_t i;

	out[0] = '\0';
	for (i = 0; i < n; i++) {
		if (i)
			strcat(out, "/");
		strcat(out, names[digits[i]]);
	}
}

static void enumerate(void)
{
	size_t n, k, digits[NLEVELS], total, c;

	for (n = 1; n <= NLEVELS; n++) {
		for (total = 1, k = 0; k < n; k++)
			total *= NFL;
		for (c = 0; c < total; c++) {
			size_t v = c, ok = 1;
			for (k = 0; k < n; k++, v /= NFL) {
				digits[k] = v % NFL;
				if (digits[k] == 5 && k + 1 < n) /* '#' only as the last level */
					ok = 0;
			}
			if (ok && !(n == 1 && digits[0] == 0)) /* "" is no filter */
				join(filters[nfilters++], filter_levels, digits, n);
		}
		for (total = 1, k = 0; k < n; k++)
			total *= NTL;
		for (c = 0; c < total; c++) {
			size_t v = c;
			for (k = 0; k < n; k++, v /= NTL)
				digits[k] = v % NTL;
			if (!(n == 1 && digits[0] == 0)) /* "" is no topic */
				join(topics[ntopics++], topic_levels, digits, n);
		}
	}
}

/* The naive matcher: recursion over both strings, one level at a time. */
static bool match_rest(const char *f, const char *t)
{
	const char *fs = strchr(f, '/'), *ts = strchr(t, '/');
	size_t fl = fs ? (size_t)(fs - f) : strlen(f), tl = ts ? (size_t)(ts - t) : strlen(t);

	if (strcmp(f, "#") == 0)
		return true;
	if (!(fl == 1 && f[0] == '+') && (fl != tl || strncmp(f, t, fl) != 0))
		return false;
	if (!fs && !ts)
		return true;
	if (fs && !ts)
		return strcmp(fs + 1, "#") == 0; /* "a/#" matches "a" */
	if (!fs)
		return false;
	return match_rest(fs + 1, ts + 1);
}

static bool match(const char *f, const char *t)
{
	if (t[0] == '$' && (f[0] == '+' || f[0] == '#'))
		return false;
	return match_rest(f, t);
}

static void test_exhaustive(void)
{
	static uint64_t sets[MAXF][WORDS];
	size_t i, j, w, mismatches = 0;

	enumerate();
	CHECK(nfilters == 185 && nfilters <= MAXF && ntopics == 154 && ntopics <= MAXT);
	for (i = 0; i < nfilters; i++)
		for (j = 0; j < ntopics; j++)
			if (match(filters[i], topics[j]))
				sets[i][j / 64] |= (uint64_t)1 << (j % 64);
	/* The matcher itself, on a few hand-checked answers. */
	CHECK(match("a/#", "a") && !match("#", "$x") && match("$x/#", "$x"));
	CHECK(match("+/+", "/") && !match("+", "/") && match("a/+", "a/") && !match("a/+", "a"));
	for (i = 0; i < nfilters; i++) {
		for (j = 0; j < nfilters; j++) {
			bool want = false, got = conf_filters_intersect(filters[i], filters[j]);
			for (w = 0; w < WORDS; w++)
				want |= (sets[i][w] & sets[j][w]) != 0;
			if (got != want && mismatches++ < 20)
				fprintf(stderr, "intersect(\"%s\", \"%s\") = %d, brute force %d\n", filters[i],
					filters[j], got, want);
		}
	}
	CHECK_EQ(mismatches, 0);
	fprintf(stderr, "exhaustive: %zu filters x %zu filters over %zu topics\n", nfilters, nfilters, ntopics);
}

int main(void)
{
	test_cases();
	test_exhaustive();
	CHECK_DONE();
}
