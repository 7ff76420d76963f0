/* conf_peers.c - peers_file: more peers, one a line, in a file that a script can generate and a
 * person can diff (like ssh's authorized_keys):
 *     # comment (a line whose first non-blank character is '#'), blank lines ignored
 *     <id> <public_key> [option=value ...]
 * Fields are separated by spaces or tabs; a CR before the newline is ignored. The only option is
 * publish=FILTER,FILTER,... (a peer's publish list, as `publish = [ ... ]` in the peers list;
 * `publish=` alone is an empty list: the peer may publish nothing). A filter therefore cannot hold
 * a space, a tab or a comma: such a peer goes in the peers list of the configuration file.
 * A relative path is relative to the configuration file's directory. Problems are reported as
 * "PEERS_FILE:LINE: [what: ]problem" and sort after those of the configuration file.
 * Then conf_peers_unique_ checks every peer (list and file) for a repeated id or key: one sort by
 * id and one by key, O(N log N) for CONF_PEERS_MAX peers, instead of comparing every pair. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_internal.h"

/* A line holds an id, a key and a few options; more fields than this are a wrong file. */
#define CONF_PEERS_FIELDS 16
/* A file with this many bad lines is the wrong file (or binary): the rest is not reported. */
#define CONF_PEERS_ERRORS_MAX 100

static const char *const conf_peer_options[] = {"publish"};
#define CONF_PEER_NOPTIONS (sizeof(conf_peer_options) / sizeof(conf_peer_options[0]))

const char *conf_peer_file(const struct px_conf *conf, const struct conf_peer *p)
{
	return p->in_file && conf->peers_file_path ? conf->peers_file_path : conf->path;
}

/* file as the path to open: itself when absolute or when the configuration file has no
 * directory part, else that directory + file. NULL when memory runs out. */
static char *conf_peers_resolve(const char *conf_path, const char *file)
{
	const char *slash = strrchr(conf_path, '/');
	size_t dn, fn = strlen(file);
	char *out;

	if (file[0] == '/' || !slash)
		return strdup(file);
	dn = (size_t)(slash - conf_path) + 1;
	out = malloc(dn + fn + 1);
	if (!out)
		return NULL;
	memcpy(out, conf_path, dn);
	memcpy(out + dn, file, fn + 1);
	return out;
}

/* Reads the peers file into a NUL-terminated buffer. It must be a regular file (opened without
 * blocking, so a FIFO cannot hang a load) of at most CONF_PEERS_FILE_MAX bytes, which is checked
 * before reading; it is read at its size plus one byte, to notice growth. Returns 0, or -1 after
 * reporting at the peers_file setting. */
static int conf_peers_read(struct conf_load_ *ld, const char *path, char **text, size_t *len)
{
	const config_setting_t *at = conf_origin_(ld, "peers_file");
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC), rc = -1;
	struct stat st;
	ssize_t n = 0;

	*text = NULL;
	if (fd < 0 || fstat(fd, &st) != 0) {
		conf_report_(ld, at, "peers_file", false, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		conf_report_(ld, at, "peers_file", false, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size > (off_t)CONF_PEERS_FILE_MAX) {
		conf_report_(ld, at, "peers_file", false, "%s: larger than %zu MiB (at most %d peers)", path,
			     CONF_PEERS_FILE_MAX >> 20, CONF_PEERS_MAX);
		goto out;
	}
	*text = malloc((size_t)st.st_size + 2);
	if (!*text) {
		ld->oom = true;
		goto out;
	}
	*len = 0;
	while (*len <= (size_t)st.st_size &&
	       (n = read(fd, *text + *len, (size_t)st.st_size + 1 - *len)) > 0)
		*len += (size_t)n;
	(*text)[*len] = '\0';
	if (n < 0)
		conf_report_(ld, at, "peers_file", false, "%s: %s", path, strerror(errno));
	else if (*len > (size_t)st.st_size)
		conf_report_(ld, at, "peers_file", false, "%s: the file grew while being read", path);
	else
		rc = 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

/* Splits s at spaces, tabs and CRs into at most max fields (NUL-terminating them in place);
 * returns the count, or max + 1 when there are more. */
static size_t conf_peers_split(char *s, char **field, size_t max)
{
	size_t n = 0;

	for (;;) {
		s += strspn(s, " \t\r");
		if (!*s)
			return n;
		if (n == max)
			return max + 1;
		field[n++] = s;
		s += strcspn(s, " \t\r");
		if (*s)
			*s++ = '\0';
	}
}

/* publish=a,b,c into p (empty value: an empty list). false after reporting. */
static bool conf_peers_publish(struct conf_load_ *ld, const char *path, unsigned line, struct conf_peer *p,
			       char *value)
{
	char q[CONF_QUOTE_MAX], *s, *comma;
	const char *why;
	size_t n = *value ? 1 : 0;

	for (s = value; (s = strchr(s, ',')) != NULL; s++)
		n++;
	if (n > CONF_PEER_PUBLISH_MAX) {
		conf_report_file_(ld, path, line, "publish", "%zu filters, at most %d allowed", n,
				  CONF_PEER_PUBLISH_MAX);
		return false;
	}
	p->has_publish = true;
	p->publish = calloc(n ? n : 1, sizeof(*p->publish));
	if (!p->publish) {
		ld->oom = true;
		return false;
	}
	for (s = value; p->npublish < n; s = comma + 1) {
		comma = strchr(s, ',');
		if (comma)
			*comma = '\0';
		why = conf_rule_filter_(s);
		if (why) {
			conf_report_file_(ld, path, line, "publish", "%s %s", conf_quote_(s, q), why);
			return false;
		}
		p->publish[p->npublish] = strdup(s);
		if (!p->publish[p->npublish++]) {
			ld->oom = true;
			return false;
		}
		if (!comma)
			break;
	}
	return true;
}

/* One option=value field. false after reporting. */
static bool conf_peers_option(struct conf_load_ *ld, const char *path, unsigned line, struct conf_peer *p,
			      char *field)
{
	char q[CONF_QUOTE_MAX], *eq = strchr(field, '=');
	const char *near;

	if (eq)
		*eq = '\0';
	if (strcmp(field, "publish") != 0) {
		near = conf_nearest(field, conf_peer_options, CONF_PEER_NOPTIONS);
		conf_report_file_(ld, path, line, NULL, "unknown option %s%s%s%s", conf_quote_(field, q),
				  near ? "; did you mean " : "", near ? near : "", near ? "?" : "");
		return false;
	}
	if (!eq) {
		conf_report_file_(ld, path, line, "publish", "expected publish=FILTER,FILTER,...");
		return false;
	}
	if (p->has_publish) {
		conf_report_file_(ld, path, line, "publish", "given twice on this line");
		return false;
	}
	return conf_peers_publish(ld, path, line, p, eq + 1);
}

/* One line that is not blank or a comment into p (zeroed by the caller). false after reporting
 * (p may hold a partial publish list then: the caller frees it). */
static bool conf_peers_line(struct conf_load_ *ld, const char *path, unsigned line, struct conf_peer *p,
			    char *s)
{
	char *field[CONF_PEERS_FIELDS], q[CONF_QUOTE_MAX];
	size_t n = conf_peers_split(s, field, CONF_PEERS_FIELDS), i;
	const char *why;
	bool ok = true;

	if (n < 2 || n > CONF_PEERS_FIELDS) {
		conf_report_file_(ld, path, line, NULL,
				  "%s (a line is: <id> <public_key> [option=value ...])",
				  n < 2 ? "no public key" : "too many fields");
		return false;
	}
	if ((why = conf_rule_node_id_(field[0])) != NULL) {
		conf_report_file_(ld, path, line, "id", "%s %s", conf_quote_(field[0], q), why);
		ok = false;
	} else if (ld->conf->node_id && strcmp(field[0], ld->conf->node_id) == 0) {
		conf_report_file_(ld, path, line, "id", "%s is this node's own node_id",
				  conf_quote_(field[0], q));
		ok = false;
	}
	if ((why = conf_rule_public_key_(field[1])) != NULL) {
		conf_report_file_(ld, path, line, "public_key", "%s %s", conf_quote_(field[1], q), why);
		ok = false;
	}
	for (i = 2; i < n; i++)
		ok &= conf_peers_option(ld, path, line, p, field[i]);
	if (!ok)
		return false;
	p->id = strdup(field[0]);
	p->public_key = strdup(field[1]);
	p->line = line;
	p->in_file = true;
	ld->oom |= !p->id || !p->public_key;
	return p->id && p->public_key;
}

/* Room for one more peer in conf->peers (*cap entries allocated); false after reporting. */
static bool conf_peers_room(struct conf_load_ *ld, const char *path, unsigned line, size_t *cap)
{
	struct px_conf *c = ld->conf;
	struct conf_peer *grown;
	size_t want;

	if (c->npeers == CONF_PEERS_MAX) {
		conf_report_file_(ld, path, line, NULL,
				  "more than %d peers (the peers list and this file together)",
				  CONF_PEERS_MAX);
		return false;
	}
	if (c->npeers < *cap)
		return true;
	want = *cap < 32 ? 64 : *cap * 2;
	if (want > CONF_PEERS_MAX)
		want = CONF_PEERS_MAX;
	grown = realloc(c->peers, want * sizeof(*grown));
	if (!grown) {
		ld->oom = true;
		return false;
	}
	memset(grown + *cap, 0, (want - *cap) * sizeof(*grown));
	c->peers = grown;
	*cap = want;
	return true;
}

/* Every line of text (len bytes, NUL-terminated) into conf->peers after the list's peers. */
static void conf_peers_parse(struct conf_load_ *ld, const char *path, char *text, size_t len)
{
	struct px_conf *c = ld->conf;
	char *s = text, *end = text + len, *nl;
	size_t cap = c->npeers, errors = ld->nerrors;
	unsigned line;
	struct conf_peer *p;

	for (line = 1; s < end; line++, s = nl + 1) {
		nl = memchr(s, '\n', (size_t)(end - s));
		if (!nl)
			nl = end;
		if (memchr(s, '\0', (size_t)(nl - s))) {
			conf_report_file_(ld, path, line, NULL, "NUL byte: not a text file");
			return;
		}
		*nl = '\0';
		s += strspn(s, " \t\r");
		if (*s == '\0' || *s == '#')
			continue;
		if (ld->nerrors - errors >= CONF_PEERS_ERRORS_MAX) {
			conf_report_file_(ld, path, line, NULL, "%d problems: the rest is not checked",
					  CONF_PEERS_ERRORS_MAX);
			return;
		}
		if (!conf_peers_room(ld, path, line, &cap))
			return;
		p = &c->peers[c->npeers];
		if (conf_peers_line(ld, path, line, p, s)) {
			c->npeers++;
			c->npeers_file++;
			continue;
		}
		free(p->id);
		free(p->public_key);
		conf_free_strlist_(p->publish, p->npublish);
		memset(p, 0, sizeof(*p));
	}
}

/* The array grew by doubling: give back what the last doubling left unused (up to half of it). */
static void conf_peers_shrink(struct px_conf *c)
{
	struct conf_peer *fit;

	if (c->npeers_file == 0)
		return;
	fit = realloc(c->peers, c->npeers * sizeof(*fit));
	if (fit)
		c->peers = fit;
}

void conf_peers_file_read_(struct conf_load_ *ld)
{
	struct px_conf *c = ld->conf;
	char *text = NULL;
	size_t len = 0;

	if (!c->peers_file)
		return;
	c->peers_file_path = conf_peers_resolve(ld->path, c->peers_file);
	if (!c->peers_file_path) {
		ld->oom = true;
		return;
	}
	if (conf_peers_read(ld, c->peers_file_path, &text, &len) == 0)
		conf_peers_parse(ld, c->peers_file_path, text, len);
	free(text);
	conf_peers_shrink(c);
}

/* A peer's id or key with its index, for sorting. */
struct conf_peer_ref {
	const char *s;
	size_t i;
};

static int conf_peer_ref_cmp(const void *a, const void *b)
{
	const struct conf_peer_ref *x = a, *y = b;
	int d = strcmp(x->s, y->s);

	if (d)
		return d;
	return x->i < y->i ? -1 : x->i > y->i;
}

#define CONF_PEERS_DUP_ID  "peer %s is listed twice (first at %s:%u)"
#define CONF_PEERS_DUP_KEY "same public key as peer %s (first at %s:%u)"

/* Reports peer i as repeating peer first (which comes earlier: the list, then the file's lines). */
static void conf_peers_dup(struct conf_load_ *ld, size_t i, size_t first, bool key)
{
	const struct px_conf *c = ld->conf;
	const struct conf_peer *p = &c->peers[i], *f = &c->peers[first];
	const char *what = key ? "public_key" : "id";
	const config_setting_t *g = !p->in_file && ld->peer_at ? ld->peer_at[i] : NULL;
	char name[CONF_NAME_MAX], q[CONF_QUOTE_MAX];

	conf_quote_(key ? f->id : p->id, q);
	if (p->in_file) {
		conf_report_file_(ld, c->peers_file_path, p->line, what,
				  key ? CONF_PEERS_DUP_KEY : CONF_PEERS_DUP_ID, q, conf_peer_file(c, f),
				  f->line);
		return;
	}
	conf_name_(name, "peers[%d].%s", g ? config_setting_index(g) : 0, what);
	conf_report_(ld, g ? config_setting_get_member(g, what) : NULL, name, false,
		     key ? CONF_PEERS_DUP_KEY : CONF_PEERS_DUP_ID, q, conf_peer_file(c, f), f->line);
}

/* Sorts refs by text and reports each entry equal to the one before it. */
static void conf_peers_dups_of(struct conf_load_ *ld, struct conf_peer_ref *refs, size_t n, bool key)
{
	size_t i, first = 0;

	qsort(refs, n, sizeof(*refs), conf_peer_ref_cmp);
	for (i = 1; i < n; i++) {
		if (strcmp(refs[i].s, refs[first].s) != 0)
			first = i;
		else
			conf_peers_dup(ld, refs[i].i, refs[first].i, key);
	}
}

void conf_peers_unique_(struct conf_load_ *ld)
{
	const struct px_conf *c = ld->conf;
	struct conf_peer_ref *refs;
	size_t i;

	if (c->npeers < 2)
		return;
	refs = calloc(c->npeers, sizeof(*refs));
	if (!refs) {
		ld->oom = true;
		return;
	}
	for (i = 0; i < c->npeers; i++)
		refs[i] = (struct conf_peer_ref){c->peers[i].id, i};
	conf_peers_dups_of(ld, refs, c->npeers, false);
	for (i = 0; i < c->npeers; i++)
		refs[i] = (struct conf_peer_ref){c->peers[i].public_key, i};
	conf_peers_dups_of(ld, refs, c->npeers, true);
	free(refs);
}
