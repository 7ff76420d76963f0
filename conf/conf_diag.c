/* conf_diag.c - collects the problems and warnings of one load and hands them out in file order.
 * Problems are found in several passes (per setting, missing options, cross-field checks), so
 * each one carries the position of the setting it is about and they are sorted once at the end;
 * problems about no setting at all (a missing option, a default) come last. */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_internal.h"

static unsigned long conf_order_of(const config_setting_t *s)
{
	/* conf_number_settings_ pointed each setting's hook at 1 + its pre-order index; settings it did
	 * not number (none unless it ran out of memory) sort with the ones that have no position. */
	const unsigned long *order = s ? config_setting_get_hook(s) : NULL;
	return order ? *order : ULONG_MAX;
}

/* The walks below recurse as deep as the tree, which libconfig's parser stack bounds (bison's
 * YYMAXDEPTH, 10000 symbols). */
static size_t conf_count_settings(const config_setting_t *s)
{
	size_t count = 1;
	int i, n;

	if (!config_setting_is_aggregate(s))
		return count;
	n = config_setting_length(s);
	for (i = 0; i < n; i++)
		count += conf_count_settings(config_setting_get_elem(s, (unsigned)i));
	return count;
}

static void conf_number_walk(config_setting_t *s, unsigned long *order, size_t *next)
{
	int i, n;

	order[*next] = *next + 1;
	config_setting_set_hook(s, &order[*next]);
	++*next;
	if (!config_setting_is_aggregate(s))
		return;
	n = config_setting_length(s);
	for (i = 0; i < n; i++)
		conf_number_walk(config_setting_get_elem(s, (unsigned)i), order, next);
}

void conf_number_settings_(struct conf_load_ *ld, config_setting_t *root)
{
	/* A pre-order walk visits settings in the order they appear in the file. */
	size_t next = 0, n = conf_count_settings(root);

	ld->nsettings = n;
	ld->order = calloc(n, sizeof(*ld->order));
	if (!ld->order) {
		ld->oom = true;
		return;
	}
	conf_number_walk(root, ld->order, &next);
}

/* Builds an option's display name ("peers[3].id"); a name that does not fit (only a long unknown
 * one can) is cut and ends in "...". */
const char *conf_name_(char buf[static CONF_NAME_MAX], const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, CONF_NAME_MAX, fmt, ap);
	va_end(ap);
	if (n < 0)
		buf[0] = '\0';
	else if ((size_t)n >= CONF_NAME_MAX)
		memcpy(buf + CONF_NAME_MAX - 4, "...", 4);
	return buf;
}

static void conf_diag_add(struct conf_load_ *ld, char *text, unsigned long order, bool warning)
{
	struct conf_diag *d;

	if (!text) {
		ld->nerrors += !warning;
		ld->oom = true;
		return;
	}
	if (ld->ndiags == ld->cap) {
		size_t cap = ld->cap ? ld->cap * 2 : 16;
		d = realloc(ld->diags, cap * sizeof(*d));
		if (!d) {
			free(text);
			ld->nerrors += !warning;
			ld->oom = true;
			return;
		}
		ld->diags = d;
		ld->cap = cap;
	}
	ld->nerrors += !warning;
	d = &ld->diags[ld->ndiags];
	d->text = text;
	d->order = order;
	d->seq = ld->ndiags++;
	d->warning = warning;
}

/* "PATH[:LINE]: [OPTION: ]message" in a fresh allocation, or NULL. */
static char *conf_format(const char *path, unsigned line, const char *option, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));

static char *conf_format(const char *path, unsigned line, const char *option, const char *fmt, va_list ap)
{
	char head[CONF_NAME_MAX + 32], *text = NULL;
	va_list ap2;
	size_t plen;
	int hn, mn;

	const char *opt = option ? option : "", *sep = option ? ": " : "";

	if (line)
		hn = snprintf(head, sizeof(head), ":%u: %s%s", line, opt, sep);
	else
		hn = snprintf(head, sizeof(head), ": %s%s", opt, sep);
	va_copy(ap2, ap);
	mn = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (hn < 0 || (size_t)hn >= sizeof(head) || mn < 0)
		return NULL;
	plen = strlen(path);
	text = malloc(plen + (size_t)hn + (size_t)mn + 1);
	if (!text)
		return NULL;
	memcpy(text, path, plen);
	memcpy(text + plen, head, (size_t)hn);
	vsnprintf(text + plen + (size_t)hn, (size_t)mn + 1, fmt, ap);
	return text;
}

void conf_report_(struct conf_load_ *ld, const config_setting_t *at, const char *option, bool warning,
		  const char *fmt, ...)
{
	unsigned line = at ? config_setting_source_line(at) : 0;
	va_list ap;
	char *text;

	va_start(ap, fmt);
	text = conf_format(ld->path, line, option, fmt, ap);
	va_end(ap);
	conf_diag_add(ld, text, conf_order_of(at), warning);
}

void conf_report_line_(struct conf_load_ *ld, unsigned line, const char *fmt, ...)
{
	va_list ap;
	char *text;

	va_start(ap, fmt);
	text = conf_format(ld->path, line, NULL, fmt, ap);
	va_end(ap);
	conf_diag_add(ld, text, line, false);
}

void conf_report_file_(struct conf_load_ *ld, const char *path, unsigned line, const char *option,
		       const char *fmt, ...)
{
	va_list ap;
	char *text;

	va_start(ap, fmt);
	text = conf_format(path, line, option, fmt, ap);
	va_end(ap);
	/* after every setting of the configuration file, in the peers file's line order */
	conf_diag_add(ld, text, ld->nsettings + 1 + line, false);
}

static int conf_diag_cmp(const void *a, const void *b)
{
	const struct conf_diag *x = a, *y = b;

	if (x->order != y->order)
		return x->order < y->order ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Moves the texts of one kind (warnings or not) into a fresh array; returns how many, or
 * (size_t)-1 when the array cannot be allocated (the texts stay in ld then). */
static size_t conf_diag_take(struct conf_load_ *ld, bool warning, char ***out)
{
	size_t i, n = 0;

	for (i = 0; i < ld->ndiags; i++)
		n += ld->diags[i].warning == warning;
	*out = NULL;
	if (n == 0)
		return 0;
	*out = calloc(n, sizeof(**out));
	if (!*out)
		return (size_t)-1;
	n = 0;
	for (i = 0; i < ld->ndiags; i++) {
		if (ld->diags[i].warning == warning) {
			(*out)[n++] = ld->diags[i].text;
			ld->diags[i].text = NULL;
		}
	}
	return n;
}

size_t conf_diag_finish_(struct conf_load_ *ld, struct conf_errors *errs)
{
	size_t i, nerr, nwarn;

	if (ld->ndiags > 1)
		qsort(ld->diags, ld->ndiags, sizeof(*ld->diags), conf_diag_cmp);
	nerr = conf_diag_take(ld, false, &errs->lines);
	nwarn = conf_diag_take(ld, true, &errs->warnings);
	if (nerr == (size_t)-1 || nwarn == (size_t)-1)
		ld->oom = true;
	errs->count = nerr == (size_t)-1 ? 0 : nerr;
	errs->nwarnings = nwarn == (size_t)-1 ? 0 : nwarn;
	for (i = 0; i < ld->ndiags; i++)
		free(ld->diags[i].text);
	free(ld->diags);
	ld->diags = NULL;
	ld->ndiags = ld->cap = 0;
	return errs->count + (ld->oom ? 1 : 0);
}

static void conf_free_lines(char **lines, size_t n)
{
	size_t i;

	for (i = 0; lines && i < n; i++)
		free(lines[i]);
	free(lines);
}

void conf_errors_clear(struct conf_errors *errs)
{
	if (!errs)
		return;
	conf_free_lines(errs->lines, errs->count);
	conf_free_lines(errs->warnings, errs->nwarnings);
	memset(errs, 0, sizeof(*errs));
}
