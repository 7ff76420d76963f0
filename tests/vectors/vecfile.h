/* vecfile.h - reader for the known-answer files in tests/vectors/ (header-only, for unit tests).
 *
 * Format (the NIST CAVP .rsp layout, minus the bracketed section headers):
 *   - a line starting with '#' is a comment; a blank line ends a record;
 *   - every other line is "Name = value": value is hex for byte strings, may be empty, and is
 *     otherwise a plain word or number (e.g. "Result = FAIL", "Iterations = 1000").
 * vec_each calls fn once per record, in file order, and returns the number of records, or -1 if
 * the file is missing or a line does not parse (reported with file:line) or fn returned nonzero. */
#ifndef PX_VECFILE_H
#define PX_VECFILE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VEC_MAX_FIELDS 16

struct vec_rec {
	const char *file;
	unsigned line; /* line of the record's first field */
	int n;
	char *name[VEC_MAX_FIELDS];
	char *value[VEC_MAX_FIELDS];
};

typedef int (*vec_fn)(const struct vec_rec *rec, void *arg);

static inline void vec_rec_clear(struct vec_rec *rec)
{
	int i;

	for (i = 0; i < rec->n; i++) {
		free(rec->name[i]);
		free(rec->value[i]);
	}
	rec->n = 0;
}

/* The value of field name, or NULL if the record has none. */
static inline const char *vec_get(const struct vec_rec *rec, const char *name)
{
	int i;

	for (i = 0; i < rec->n; i++)
		if (strcmp(rec->name[i], name) == 0)
			return rec->value[i];
	return NULL;
}

/* Decodes field name as hex into out; returns the byte count, or -1 (absent, odd, too long). */
static inline long vec_hex(const struct vec_rec *rec, const char *name, unsigned char *out, size_t cap)
{
	const char *v = vec_get(rec, name);
	size_t n, i;

	if (!v || (n = strlen(v)) % 2 || n / 2 > cap)
		return -1;
	for (i = 0; i < n / 2; i++) {
		char pair[3] = {v[2 * i], v[2 * i + 1], 0}, *end;
		out[i] = (unsigned char)strtoul(pair, &end, 16);
		if (*end)
			return -1;
	}
	return (long)(n / 2);
}

static inline char *vec_trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Adds "Name = value" to rec; returns 0, or -1 if the line does not parse. */
static inline int vec_add(struct vec_rec *rec, char *line)
{
	char *eq = strchr(line, '='), *name, *value;

	if (!eq || rec->n == VEC_MAX_FIELDS)
		return -1;
	*eq = '\0';
	name = vec_trim(line);
	value = vec_trim(eq + 1);
	if (!*name)
		return -1;
	rec->name[rec->n] = strdup(name);
	rec->value[rec->n] = strdup(value);
	rec->n++;
	return rec->name[rec->n - 1] && rec->value[rec->n - 1] ? 0 : -1;
}

static inline int vec_flush(struct vec_rec *rec, vec_fn fn, void *arg, long *count)
{
	int rc = 0;

	if (rec->n) {
		(*count)++;
		rc = fn(rec, arg);
		vec_rec_clear(rec);
	}
	return rc;
}

/* Runs fn over every record of dir/name. */
static inline long vec_each(const char *dir, const char *name, vec_fn fn, void *arg)
{
	struct vec_rec rec = {0};
	char path[4096], *line = NULL, *s;
	size_t cap = 0;
	unsigned lineno = 0;
	long count = 0;
	int bad = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/vectors/%s", dir, name);
	rec.file = name;
	f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "%s: cannot open\n", path);
		return -1;
	}
	while (!bad && getline(&line, &cap, f) >= 0) {
		lineno++;
		s = vec_trim(line);
		if (*s == '#')
			continue;
		if (!*s) {
			bad = vec_flush(&rec, fn, arg, &count);
			continue;
		}
		if (rec.n == 0)
			rec.line = lineno;
		if (vec_add(&rec, s) != 0) {
			fprintf(stderr, "%s:%u: not \"Name = value\"\n", path, lineno);
			bad = 1;
		}
	}
	if (!bad)
		bad = vec_flush(&rec, fn, arg, &count);
	vec_rec_clear(&rec);
	free(line);
	fclose(f);
	return bad ? -1 : count;
}

#endif
