/* conf_scan.c - a pre-pass over the raw configuration text, before libconfig parses it.
 *
 * Integer literals. libconfig 1.5 (Debian 12) converts a decimal literal with atoi() and a hex one
 * with strtoul() into an int, so "port = 4294967297;" silently reads as 1 and 3000000000 as
 * -1294967296; and an "L" literal that overflows is clamped by atoll(). libconfig 1.6 and later
 * read a literal beyond int as a 64-bit integer and reject one beyond 64 bits. This pass gives
 * every version that meaning: it appends "L" to each integer literal that does not fit in an int
 * (so libconfig reads it as 64 bits) and rejects the file, like a syntax error, when a literal
 * does not fit in 64 bits. The range checks of conf_value.c then see the value that was written.
 *
 * It also refuses "@include" (the only use of '@' outside strings and comments): a configuration
 * is one file, which keeps "FILE:LINE" exact and keeps libconfig from opening other files, and
 * NUL bytes, which would silently end the text for libconfig.
 *
 * To touch only real literals it tokenizes like libconfig's scanner.l: strings ("..." with
 * backslash escapes, newlines allowed), comments (#, // to end of line; slash-star to star-slash),
 * names ([A-Za-z*][-A-Za-z0-9_*]*) and numbers by longest match, as flex does. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_internal.h"

struct conf_scanner {
	const char *in;
	size_t len, pos;
	char *out;
	size_t olen, ocap;
	unsigned line;
};

static int conf_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int conf_is_hex(char c)
{
	return conf_is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int conf_is_name_start(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '*';
}

static int conf_is_name_char(char c)
{
	return conf_is_name_start(c) || conf_is_digit(c) || c == '-' || c == '_';
}

static size_t conf_digits(const char *p, size_t n)
{
	size_t i = 0;
	while (i < n && conf_is_digit(p[i]))
		i++;
	return i;
}

/* Length of libconfig's {float} at p, 0 if none:
 * ([-+]?[0-9]*\.[0-9]*([eE][-+]?[0-9]+)?) | ([-+]?[0-9]+(\.[0-9]*)?[eE][-+]?[0-9]+) */
static size_t conf_match_float(const char *p, size_t n)
{
	size_t i = 0, d, e;
	int dot = 0;

	if (i < n && (p[i] == '-' || p[i] == '+'))
		i++;
	d = conf_digits(p + i, n - i);
	i += d;
	if (i < n && p[i] == '.') {
		dot = 1;
		i++;
		i += conf_digits(p + i, n - i);
	}
	if (!dot && d == 0)
		return 0;
	e = i;
	if (e < n && (p[e] == 'e' || p[e] == 'E')) {
		e++;
		if (e < n && (p[e] == '-' || p[e] == '+'))
			e++;
		if (conf_digits(p + e, n - e) > 0)
			return e + conf_digits(p + e, n - e);
	}
	return dot ? i : 0;
}

/* Length of an integer literal at p ({integer}, {integer64}, {hex}, {hex64}), 0 if none; *hex and
 * *suffix say which kind, *digits_at and *ndigits where its digits are. */
static size_t conf_match_int(const char *p, size_t n, int *hex, int *suffix, size_t *digits_at,
			     size_t *ndigits)
{
	size_t i = 0, d;

	*hex = n >= 3 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && conf_is_hex(p[2]);
	if (*hex) {
		i = 2;
		while (i < n && conf_is_hex(p[i]))
			i++;
	} else {
		if (i < n && (p[i] == '-' || p[i] == '+'))
			i++;
		d = conf_digits(p + i, n - i);
		if (d == 0)
			return 0;
		i += d;
	}
	*digits_at = *hex ? 2 : (p[0] == '-' || p[0] == '+');
	*ndigits = i - *digits_at;
	*suffix = 0;
	if (i < n && p[i] == 'L') {
		*suffix = 1;
		i += (i + 1 < n && p[i + 1] == 'L') ? 2 : 1;
	}
	return i;
}

static int conf_put(struct conf_scanner *sc, const char *p, size_t n)
{
	if (n > sc->ocap - sc->olen)
		return -1; /* cannot happen: see conf_scan_ */
	memcpy(sc->out + sc->olen, p, n);
	sc->olen += n;
	return 0;
}

/* An integer literal of n bytes at the current position, its digits at p + at (nd of them):
 * copy it, with "L" appended when it does not fit in an int. Returns 0, -1, or 1 when it does not
 * fit in 64 bits (why is set). */
static int conf_scan_int(struct conf_scanner *sc, size_t n, int hex, int suffix, size_t at, size_t nd,
			 char *why, size_t whylen)
{
	const char *p = sc->in + sc->pos, *d = p + at;
	char num[24]; /* sign + at most 19 decimal or 16 hex significant digits + NUL */
	long long v = 0;
	unsigned long long u = 0;
	size_t k = 0;

	while (nd > 1 && *d == '0') {
		d++;
		nd--;
	}
	if (!hex && (p[0] == '-' || p[0] == '+'))
		num[k++] = p[0];
	if (nd <= (hex ? 16u : 19u)) {
		memcpy(num + k, d, nd);
		num[k + nd] = '\0';
		errno = 0;
		if (hex)
			u = strtoull(num, NULL, 16);
		else
			v = strtoll(num, NULL, 10);
	}
	if (nd > (hex ? 16u : 19u) || errno == ERANGE || u > (unsigned long long)LLONG_MAX) {
		snprintf(why, whylen, "integer %.*s%s does not fit in 64 bits", (int)(n > 40 ? 40 : n), p,
			 n > 40 ? "..." : "");
		return 1;
	}
	if (conf_put(sc, p, n) != 0)
		return -1;
	if (!suffix && (hex ? u > (unsigned long long)INT_MAX : (v > INT_MAX || v < INT_MIN)))
		return conf_put(sc, "L", 1);
	return 0;
}

/* A number or something that starts like one: longest match between float and integer. */
static int conf_scan_number(struct conf_scanner *sc, char *why, size_t whylen)
{
	const char *p = sc->in + sc->pos;
	size_t n = sc->len - sc->pos, fl, il, at, nd;
	int hex, suffix, rc;

	fl = conf_match_float(p, n);
	il = conf_match_int(p, n, &hex, &suffix, &at, &nd);
	if (il > fl) {
		rc = conf_scan_int(sc, il, hex, suffix, at, nd, why, whylen);
		sc->pos += il;
		return rc;
	}
	if (fl == 0)
		fl = 1; /* a lone sign or the like: libconfig calls it garbage */
	rc = conf_put(sc, p, fl);
	sc->pos += fl;
	return rc;
}

/* Copies from the current position up to (not including) the first byte of stop, or to the end;
 * counts lines on the way. Returns the copy's length. */
static size_t conf_copy_until(struct conf_scanner *sc, const char *stop)
{
	const char *p = sc->in + sc->pos;
	size_t n = sc->len - sc->pos, i = 0;
	size_t sl = strlen(stop);

	while (i < n && !(n - i >= sl && memcmp(p + i, stop, sl) == 0)) {
		if (p[i] == '\n')
			sc->line++;
		i++;
	}
	(void)conf_put(sc, p, i);
	sc->pos += i;
	return i;
}

/* A string, from its opening quote through its closing one. Inside, a backslash escapes one
 * following quote or backslash; any other byte after it is read normally (scanner.l). The escape
 * \x00 is refused: libconfig would end the string there without a word. Returns 0 or 1. */
static int conf_scan_string(struct conf_scanner *sc, char *why, size_t whylen)
{
	const char *p = sc->in;
	size_t i = sc->pos + 1;

	while (i < sc->len && p[i] != '"') {
		if (p[i] == '\\' && sc->len - i >= 4 && (p[i + 1] == 'x' || p[i + 1] == 'X') &&
		    p[i + 2] == '0' && p[i + 3] == '0') {
			snprintf(why, whylen, "\\x00 (a NUL byte) in a string");
			return 1;
		}
		if (p[i] == '\\' && i + 1 < sc->len && (p[i + 1] == '"' || p[i + 1] == '\\'))
			i++;
		else if (p[i] == '\n')
			sc->line++;
		i++;
	}
	if (i < sc->len)
		i++;
	(void)conf_put(sc, p + sc->pos, i - sc->pos);
	sc->pos = i;
	return 0;
}

static void conf_scan_name(struct conf_scanner *sc)
{
	size_t i = sc->pos + 1;

	while (i < sc->len && conf_is_name_char(sc->in[i]))
		i++;
	(void)conf_put(sc, sc->in + sc->pos, i - sc->pos);
	sc->pos = i;
}

/* One token or skipped region at the current position. Returns 0, 1 = reject (why set), -1. */
static int conf_scan_step(struct conf_scanner *sc, char *why, size_t whylen)
{
	const char *p = sc->in + sc->pos;
	size_t n = sc->len - sc->pos;

	if (p[0] == '#' || (n >= 2 && p[0] == '/' && p[1] == '/')) {
		conf_copy_until(sc, "\n");
	} else if (n >= 2 && p[0] == '/' && p[1] == '*') {
		conf_copy_until(sc, "*/");
		(void)conf_put(sc, sc->in + sc->pos, sc->len - sc->pos >= 2 ? 2 : 0);
		sc->pos += sc->len - sc->pos >= 2 ? 2 : 0;
	} else if (p[0] == '"') {
		return conf_scan_string(sc, why, whylen);
	} else if (p[0] == '@') {
		snprintf(why, whylen, "@include is not supported: keep the configuration in one file");
		return 1;
	} else if (conf_is_name_start(p[0])) {
		conf_scan_name(sc);
	} else if (conf_is_digit(p[0]) || p[0] == '-' || p[0] == '+' || p[0] == '.') {
		return conf_scan_number(sc, why, whylen);
	} else {
		if (p[0] == '\n')
			sc->line++;
		sc->pos++;
		return conf_put(sc, p, 1);
	}
	return 0;
}

int conf_scan_(const char *in, size_t len, char **out, unsigned *line, char *why, size_t whylen)
{
	struct conf_scanner sc = {.in = in, .len = len, .line = 1};
	const char *nul = memchr(in, '\0', len), *p;
	int rc = 0;

	*out = NULL;
	if (nul) {
		for (p = in; p < nul; p++)
			sc.line += *p == '\n';
		*line = sc.line;
		snprintf(why, whylen, "NUL byte in the file");
		return 1;
	}

	/* Each "L" we add follows a literal of at least 10 bytes (2147483648, 0x80000000), so the
	 * output grows by at most a tenth. */
	sc.ocap = len + len / 10 + 1;
	sc.out = malloc(sc.ocap + 1);
	if (!sc.out)
		return -1;
	while (rc == 0 && sc.pos < sc.len)
		rc = conf_scan_step(&sc, why, whylen);
	*line = sc.line;
	if (rc != 0) {
		free(sc.out);
		return rc;
	}
	sc.out[sc.olen] = '\0';
	*out = sc.out;
	return 0;
}
