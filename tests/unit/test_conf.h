/* test_conf.h - helpers shared by the test_conf*.c tests: a private temporary directory, config
 * text written to files in it (built from dotted name = value pairs, so a test knows the line of
 * each setting), loading with the problems kept for checking, and reading values back with
 * libconfig itself (conf_dump output, example file) to compare settings exactly. */
#ifndef TEST_CONF_H
#define TEST_CONF_H

#include <libconfig.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "conf.h"

#define TC_MAX_FILES 64
#define TC_MAX_KV    12

static char tc_dir[64];
static char tc_files[TC_MAX_FILES][128];
static size_t tc_nfiles;

static inline void tc_setup(void)
{
	snprintf(tc_dir, sizeof(tc_dir), "/tmp/test_conf.XXXXXX");
	if (!mkdtemp(tc_dir)) {
		perror("mkdtemp");
		exit(1);
	}
}

static inline void tc_cleanup(void)
{
	size_t i;

	for (i = 0; i < tc_nfiles; i++)
		unlink(tc_files[i]);
	rmdir(tc_dir);
}

/* The path of file name in the private directory, remembered for tc_cleanup. */
static inline const char *tc_path(const char *name)
{
	size_t i;

	for (i = 0; i < tc_nfiles; i++)
		if (strcmp(strrchr(tc_files[i], '/') + 1, name) == 0)
			return tc_files[i];
	if (tc_nfiles == TC_MAX_FILES)
		abort();
	snprintf(tc_files[tc_nfiles], sizeof(tc_files[0]), "%s/%s", tc_dir, name);
	return tc_files[tc_nfiles++];
}

static inline void tc_write_n(const char *path, const char *text, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(text, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
}

static inline void tc_write(const char *path, const char *text)
{
	tc_write_n(path, text, strlen(text));
}

/* One load: its result and problems. */
struct tc_res {
	const char *path;
	size_t n;
	struct px_conf *conf;
	struct conf_errors errs;
};

static inline void tc_print(const struct tc_res *r)
{
	size_t i;

	for (i = 0; i < r->errs.count; i++)
		fprintf(stderr, "    error: %s\n", r->errs.lines[i]);
	for (i = 0; i < r->errs.nwarnings; i++)
		fprintf(stderr, "    warning: %s\n", r->errs.warnings[i]);
}

static inline void tc_load_file(struct tc_res *r, const char *path, bool check_files)
{
	memset(r, 0, sizeof(*r));
	r->path = path;
	r->n = conf_load(path, check_files, &r->conf, &r->errs);
	CHECK((r->n == 0) == (r->conf != NULL));
	CHECK_EQ(r->n, r->errs.count);
}

static inline void tc_load(struct tc_res *r, const char *text, bool check_files)
{
	const char *path = tc_path("case.conf");

	tc_write(path, text);
	tc_load_file(r, path, check_files);
}

static inline void tc_done(struct tc_res *r)
{
	conf_free(r->conf);
	conf_errors_clear(&r->errs);
	memset(r, 0, sizeof(*r));
}

/* Does line equal "PATH[:LINE]: option: msg"? A msg starting with '*' only has to end the line. */
static inline bool tc_line_is(const char *got, const char *path, unsigned line, const char *option,
			      const char *msg)
{
	char prefix[512];
	size_t pn, gn = strlen(got), mn;

	if (line)
		snprintf(prefix, sizeof(prefix), "%s:%u: %s: ", path, line, option);
	else
		snprintf(prefix, sizeof(prefix), "%s: %s: ", path, option);
	pn = strlen(prefix);
	if (strncmp(got, prefix, pn) != 0)
		return false;
	if (msg[0] != '*')
		return strcmp(got + pn, msg) == 0;
	mn = strlen(msg + 1);
	return gn - pn >= mn && strcmp(got + gn - mn, msg + 1) == 0;
}

/* Checks that the load failed with exactly this one problem. */
static inline void tc_expect_one(const struct tc_res *r, unsigned line, const char *option, const char *msg,
				 const char *what)
{
	bool ok = r->errs.count == 1 && tc_line_is(r->errs.lines[0], r->path, line, option, msg);

	CHECK(ok);
	if (!ok)
		fprintf(stderr, "  %s: wanted %s:%u: %s: %s\n", what, r->path, line, option, msg),
			tc_print(r);
}

static inline void tc_expect_ok(const struct tc_res *r, const char *what)
{
	CHECK_EQ(r->n, 0);
	if (r->n)
		fprintf(stderr, "  %s: unexpected problems\n", what), tc_print(r);
}

/* A configuration built from dotted name = value pairs: sorted by name, groups opened and closed
 * around them, one setting per line; line 1 is a comment. Each pair's line is filled in. */
struct tc_kv {
	const char *name, *value;
	unsigned line;
};

struct tc_text {
	char *buf;
	size_t len, cap;
};

static inline void tc_cat(struct tc_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline void tc_cat(struct tc_text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (t->len + (size_t)n + 1 > t->cap) {
		t->cap = (t->len + (size_t)n + 1) * 2;
		t->buf = realloc(t->buf, t->cap);
		if (!t->buf)
			abort();
	}
	va_start(ap, fmt);
	vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

static inline int tc_kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct tc_kv *)a)->name, ((const struct tc_kv *)b)->name);
}

/* Sets name = value in kv (replacing an earlier value of name). */
static inline void tc_kv_set(struct tc_kv *kv, size_t *n, const char *name, const char *value)
{
	size_t i;

	for (i = 0; i < *n; i++) {
		if (strcmp(kv[i].name, name) == 0) {
			kv[i].value = value;
			return;
		}
	}
	if (*n == TC_MAX_KV)
		abort();
	kv[(*n)++] = (struct tc_kv){name, value, 0};
}

/* Number of groups in name ("broker.tls.x" -> 2), and of groups a and b share. */
static inline unsigned tc_groups(const char *a, const char *b)
{
	unsigned d = 0;
	size_t i;

	for (i = 0; a[i] && (!b || a[i] == b[i]); i++)
		d += a[i] == '.';
	return d;
}

/* Returns the malloc'd text; caller frees. */
static inline char *tc_emit(struct tc_kv *kv, size_t n)
{
	struct tc_text t = {0};
	const char *prev = "", *p, *leaf;
	unsigned line = 2, depth = 0, keep, i;
	size_t k;

	qsort(kv, n, sizeof(*kv), tc_kv_cmp);
	tc_cat(&t, "# written by test_conf\n");
	for (k = 0; k <= n; k++) {
		const char *name = k < n ? kv[k].name : "";
		keep = tc_groups(prev, name);
		for (; depth > keep; depth--, line++)
			tc_cat(&t, "%*s};\n", (int)(depth - 1) * 2, "");
		/* open the groups of name beyond the shared ones */
		for (p = name, i = 0; (leaf = strchr(p, '.')) != NULL; p = leaf + 1, i++) {
			if (i < keep)
				continue;
			tc_cat(&t, "%*s%.*s = {\n", (int)depth * 2, "", (int)(leaf - p), p);
			depth++, line++;
		}
		if (k < n) {
			kv[k].line = line++;
			tc_cat(&t, "%*s%s = %s;\n", (int)depth * 2, "", p, kv[k].value);
		}
		prev = name;
	}
	return t.buf;
}

/* Parses text with libconfig (it must parse); the caller destroys cfg. */
static inline void tc_parse(config_t *cfg, const char *text)
{
	config_init(cfg);
	if (config_read_string(cfg, text) != CONFIG_TRUE) {
		fprintf(stderr, "libconfig cannot read the text: line %d: %s\n", config_error_line(cfg),
			config_error_text(cfg));
		CHECK(0);
	}
}

/* The kind of a setting, with the spellings conf treats alike merged: ints of either width, and
 * lists written as ( ) or [ ]. */
static inline int tc_kind_of(const config_setting_t *s)
{
	int t = config_setting_type(s);

	if (t == CONFIG_TYPE_INT64)
		return CONFIG_TYPE_INT;
	return t == CONFIG_TYPE_ARRAY ? CONFIG_TYPE_LIST : t;
}

/* Do two libconfig settings hold the same value? */
static inline bool tc_same(const config_setting_t *a, const config_setting_t *b)
{
	int ta, tb, i, n;

	if (!a || !b)
		return false;
	ta = tc_kind_of(a);
	tb = tc_kind_of(b);
	if (ta != tb)
		return false;
	switch (ta) {
	case CONFIG_TYPE_INT:
		return config_setting_get_int64(a) == config_setting_get_int64(b);
	case CONFIG_TYPE_BOOL:
		return config_setting_get_bool(a) == config_setting_get_bool(b);
	case CONFIG_TYPE_STRING:
		return strcmp(config_setting_get_string(a), config_setting_get_string(b)) == 0;
	case CONFIG_TYPE_GROUP:
	case CONFIG_TYPE_LIST:
		n = config_setting_length(a);
		if (n != config_setting_length(b))
			return false;
		for (i = 0; i < n; i++) {
			const config_setting_t *ea = config_setting_get_elem(a, (unsigned)i);
			const config_setting_t *eb =
				ta == CONFIG_TYPE_GROUP
					? config_setting_get_member(b, config_setting_name(ea))
					: config_setting_get_elem(b, (unsigned)i);
			if (!tc_same(ea, eb))
				return false;
		}
		return true;
	default:
		return false;
	}
}

#endif
