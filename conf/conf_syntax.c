/* conf_syntax.c - libconfig's parse errors rewritten as "what is wrong, near what". libconfig
 * (bison) says "syntax error" for every grammar error and "duplicate setting name" without the
 * name, at the line where it gave up. This file re-reads the text up to that line with the
 * tokenizer rules of libconfig's scanner.l (strings with escapes and newlines, #, // and
 * slash-star comments, names [A-Za-z*][-A-Za-z0-9_*]*), keeps the open groups, lists and arrays
 * and the settings seen, and names the likely cause: a string left open, a bracket not closed or
 * closed by the wrong kind, a missing separator, a setting given twice (with its first line). */
#include <stdio.h>
#include <string.h>

#include "conf_internal.h"

/* Deeper nesting than this is no configuration of ours (the deepest is broker.tls, 2 levels, or
 * peers[i].publish, 3); past it the brackets are still counted but not named. */
#define CONF_SYN_DEPTH 16
/* Longest excerpt quoted after "near". */
#define CONF_SYN_NEAR 48

struct conf_syn_open {
	char bracket;     /* '{', '(' or '[' */
	unsigned line;    /* where it was opened */
	unsigned elems;   /* list/array: commas seen (the index of the current element) */
	char name[CONF_NAME_MAX]; /* dotted path of what it opened ("broker", "peers[1]") */
};

struct conf_syn {
	const char *p, *end;
	unsigned line, stop;           /* current line; stop after this line */
	struct conf_syn_open open[CONF_SYN_DEPTH];
	unsigned depth;
	unsigned string_line;          /* a string opened on one line and closed on a later one */
	char prev;                     /* last token: a bracket, ',', '=', ';', or 'v' for a value/name */
	unsigned comma_line;           /* two list elements without a ',' between them */
	unsigned comma_list_line;      /* ...in the list opened on this line */
	char bad_close;                /* a closing bracket that matched nothing or the wrong kind */
	unsigned bad_open_line;        /* ...and the line of the bracket it met (0: none) */
	char bad_open;                 /* ...and that bracket */
	char last_name[CONF_NAME_MAX]; /* dotted path of the last setting name seen */
	const char *dup_name;          /* duplicate search: the path wanted */
	unsigned dup_first;            /* ...and the first line it was seen on */
	char dup_found[CONF_NAME_MAX]; /* the path of the setting on the stop line */
};

static int conf_syn_name_start(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '*';
}

static int conf_syn_name_char(char c)
{
	return conf_syn_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/* The dotted path of the innermost open group or list element. */
static const char *conf_syn_prefix(const struct conf_syn *s)
{
	return s->depth > 0 && s->depth <= CONF_SYN_DEPTH ? s->open[s->depth - 1].name : "";
}

/* A name followed by '=' or ':' is a setting: remember its path (and look for duplicates). */
static void conf_syn_setting(struct conf_syn *s, const char *name, size_t n)
{
	const char *prefix = conf_syn_prefix(s);

	conf_name_(s->last_name, "%s%s%.*s", prefix, *prefix ? "." : "", (int)n, name);
	if (s->line == s->stop)
		memcpy(s->dup_found, s->last_name, sizeof(s->dup_found));
	else if (s->dup_name && !s->dup_first && strcmp(s->dup_name, s->last_name) == 0)
		s->dup_first = s->line;
}

/* A new value or element starts: in a list or array, right after another element, a ',' is
 * missing. */
static void conf_syn_element(struct conf_syn *s)
{
	const struct conf_syn_open *top;

	if (s->depth == 0 || s->depth > CONF_SYN_DEPTH || s->comma_line)
		return;
	top = &s->open[s->depth - 1];
	if (top->bracket != '{' && (s->prev == 'v' || s->prev == '}' || s->prev == ')' || s->prev == ']')) {
		s->comma_line = s->line;
		s->comma_list_line = top->line;
	}
}

static void conf_syn_open_bracket(struct conf_syn *s, char c)
{
	struct conf_syn_open *o;
	const char *prefix = conf_syn_prefix(s);

	if (s->depth++ >= CONF_SYN_DEPTH)
		return;
	o = &s->open[s->depth - 1];
	o->bracket = c;
	o->line = s->line;
	o->elems = 0;
	if (s->depth >= 2 && s->open[s->depth - 2].bracket != '{') /* an element of a list */
		conf_name_(o->name, "%s[%u]", prefix, s->open[s->depth - 2].elems);
	else
		memcpy(o->name, s->last_name, sizeof(o->name));
}

static void conf_syn_close_bracket(struct conf_syn *s, char c)
{
	char want = '[';

	if (c == '}')
		want = '{';
	else if (c == ')')
		want = '(';

	if (s->depth == 0) {
		if (!s->bad_close)
			s->bad_close = c;
		return;
	}
	if (s->depth <= CONF_SYN_DEPTH && s->open[s->depth - 1].bracket != want && !s->bad_close) {
		s->bad_close = c;
		s->bad_open_line = s->open[s->depth - 1].line;
		s->bad_open = s->open[s->depth - 1].bracket;
	}
	s->depth--;
}

/* Skips a string ("..." with backslash escapes); notes one that runs over a line end. */
static void conf_syn_string(struct conf_syn *s)
{
	unsigned start = s->line;

	for (s->p++; s->p < s->end && *s->p != '"'; s->p++) {
		if (*s->p == '\\' && s->p + 1 < s->end)
			s->p++;
		if (*s->p == '\n')
			s->line++;
	}
	if (s->line != start && !s->string_line)
		s->string_line = start;
	if (s->p < s->end)
		s->p++;
}

/* Skips a comment at s->p if there is one; returns whether it did. */
static int conf_syn_comment(struct conf_syn *s)
{
	if (*s->p == '#' || (*s->p == '/' && s->p + 1 < s->end && s->p[1] == '/')) {
		while (s->p < s->end && *s->p != '\n')
			s->p++;
		return 1;
	}
	if (*s->p == '/' && s->p + 1 < s->end && s->p[1] == '*') {
		for (s->p += 2; s->p < s->end && !(*s->p == '*' && s->p + 1 < s->end && s->p[1] == '/'); s->p++)
			if (*s->p == '\n')
				s->line++;
		s->p = s->p < s->end ? s->p + 2 : s->end;
		return 1;
	}
	return 0;
}

static void conf_syn_name(struct conf_syn *s)
{
	const char *name = s->p, *q;

	while (s->p < s->end && conf_syn_name_char(*s->p))
		s->p++;
	for (q = s->p; q < s->end && (*q == ' ' || *q == '\t' || *q == '\r'); q++)
		;
	if (q < s->end && (*q == '=' || *q == ':'))
		conf_syn_setting(s, name, (size_t)(s->p - name));
}

/* Reads the text up to the end of line s->stop. */
static void conf_syn_run(struct conf_syn *s)
{
	while (s->p < s->end && s->line <= s->stop) {
		char c = *s->p;

		if (conf_syn_comment(s))
			continue;
		if (c == '"' || conf_syn_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.') {
			conf_syn_element(s);
			if (c == '"')
				conf_syn_string(s);
			else if (conf_syn_name_start(c))
				conf_syn_name(s);
			else /* a number: digits, '.', sign, exponent, hex digits, 'L' */
				while (s->p < s->end && (conf_syn_name_char(*s->p) || *s->p == '.' || *s->p == '+'))
					s->p++;
			s->prev = 'v';
			continue;
		}
		if (c == '\n')
			s->line++;
		else if (c == '{' || c == '(' || c == '[') {
			conf_syn_element(s);
			conf_syn_open_bracket(s, c);
		}
		else if (c == '}' || c == ')' || c == ']')
			conf_syn_close_bracket(s, c);
		else if (c == ',' && s->depth > 0 && s->depth <= CONF_SYN_DEPTH)
			s->open[s->depth - 1].elems++;
		if (c != ' ' && c != '\t' && c != '\r' && c != '\n')
			s->prev = c;
		s->p++;
	}
}

/* "near 'text of line'" (trimmed, shortened), or "at the end of the file". */
static void conf_syn_near(const char *text, unsigned line, char *out, size_t outlen)
{
	const char *p = text, *e;
	unsigned l = 1;
	size_t n;

	while (*p && l < line)
		if (*p++ == '\n')
			l++;
	while (*p == ' ' || *p == '\t')
		p++;
	for (e = p; *e && *e != '\n' && *e != '\r'; e++)
		;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	n = (size_t)(e - p);
	if (n == 0) {
		snprintf(out, outlen, "at the end of the file");
		return;
	}
	snprintf(out, outlen, "near '%.*s%s'", (int)(n > CONF_SYN_NEAR ? CONF_SYN_NEAR : n), p,
		 n > CONF_SYN_NEAR ? "..." : "");
}

static unsigned conf_syn_last_line(const char *text)
{
	unsigned line = 1, last = 1;
	const char *p;

	for (p = text; *p; p++) {
		if (*p == '\n')
			line++;
		else if (*p != ' ' && *p != '\t' && *p != '\r')
			last = line;
	}
	return last;
}

static void conf_syn_what(const struct conf_syn *s, const char *text, unsigned *line, char *out, size_t len)
{
	const struct conf_syn_open *top = s->depth > 0 && s->depth <= CONF_SYN_DEPTH ? &s->open[s->depth - 1] : NULL;

	if (s->string_line) {
		*line = s->string_line;
		snprintf(out, len, "a string runs on past the end of this line (is a closing \" missing?)");
	} else if (s->comma_line) {
		*line = s->comma_line;
		snprintf(out, len, "a ',' is missing between two elements of the list opened at line %u",
			 s->comma_list_line);
	} else if (s->bad_close && s->bad_open_line) {
		snprintf(out, len, "'%c' does not close the '%c' opened at line %u", s->bad_close, s->bad_open,
			 s->bad_open_line);
	} else if (s->bad_close) {
		snprintf(out, len, "'%c' closes nothing that is open", s->bad_close);
	} else if (*line > conf_syn_last_line(text) && top) {
		snprintf(out, len, "the file ends inside the '%c' opened at line %u (is a '%c' missing?)", top->bracket,
			 top->line, top->bracket == '{' ? '}' : top->bracket == '(' ? ')' : ']');
	} else if (top && top->bracket != '{') {
		snprintf(out, len, "unexpected text in the %s opened at line %u (elements are separated by ',')",
			 top->bracket == '(' ? "list" : "array", top->line);
	} else {
		snprintf(out, len, "unexpected text (a setting is 'name = value;', a group '{ ... }')");
	}
}

/* "NAME is set twice (first at line N)": the setting on line and its first occurrence. */
static void conf_syn_duplicate(const char *text, unsigned line, char *what, size_t len)
{
	struct conf_syn s = {.p = text, .end = text + strlen(text), .line = 1, .stop = line};
	char found[CONF_NAME_MAX];

	conf_syn_run(&s);
	if (!s.dup_found[0]) {
		snprintf(what, len, "a setting is given twice in the same group");
		return;
	}
	memcpy(found, s.dup_found, sizeof(found));
	s = (struct conf_syn){.p = text, .end = text + strlen(text), .line = 1, .stop = line, .dup_name = found};
	conf_syn_run(&s);
	if (s.dup_first)
		snprintf(what, len, "%s is set twice (first at line %u)", found, s.dup_first);
	else
		snprintf(what, len, "%s is set twice", found);
}

void conf_syntax_explain_(const char *text, unsigned *line, const char *libconfig_msg, char *out, size_t outlen)
{
	struct conf_syn s = {.p = text, .end = text + strlen(text), .line = 1, .stop = *line};
	const char *msg = libconfig_msg ? libconfig_msg : "syntax error";
	char what[192], near[CONF_SYN_NEAR + 16];

	if (strcmp(msg, "duplicate setting name") == 0) {
		conf_syn_duplicate(text, *line, what, sizeof(what));
	} else if (strcmp(msg, "mismatched element type in array") == 0) {
		snprintf(what, sizeof(what), "an array [ ... ] holds values of one type (a list ( ... ) may mix them)");
	} else if (strcmp(msg, "syntax error") == 0) {
		conf_syn_run(&s);
		conf_syn_what(&s, text, line, what, sizeof(what));
	} else {
		snprintf(what, sizeof(what), "%s", msg);
	}
	conf_syn_near(text, *line, near, sizeof(near));
	snprintf(out, outlen, "syntax error: %s, %s", what, near);
}
