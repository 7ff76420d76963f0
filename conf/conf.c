/* conf.c - conf_load: read the file, pre-scan it (conf_scan.c), let libconfig parse it, then walk
 * the parsed tree in file order against the key table: known options go to conf_value.c, known
 * groups are descended into, anything else is an unknown option. Cross-field checks follow
 * (conf_check.c) while the tree is alive; then strings have been copied out and it is destroyed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conf_internal.h"

/* A full configuration with 256 peers and every option documented is under 64 KiB; anything
 * above 1 MiB is not a configuration file, and is refused before it is read into memory. Larger
 * peer sets belong in peers_file, which has its own bound (CONF_PEERS_FILE_MAX, conf_peers.c). */
#define CONF_FILE_MAX ((size_t)1024 * 1024)

/* Reads the whole file into a NUL-terminated buffer. Returns 0, or -1 after reporting. */
static int conf_read_file(struct conf_load_ *ld, char **text, size_t *len)
{
	FILE *f = fopen(ld->path, "rb");
	struct stat st;
	size_t cap;
	int rc = -1;

	*text = NULL;
	if (!f) {
		conf_report_line_(ld, 0, "cannot open: %s", strerror(errno));
		return -1;
	}
	if (fstat(fileno(f), &st) != 0) {
		conf_report_line_(ld, 0, "cannot read: %s", strerror(errno));
		goto out;
	}
	if (S_ISDIR(st.st_mode) || (S_ISREG(st.st_mode) && st.st_size > (off_t)CONF_FILE_MAX)) {
		conf_report_line_(ld, 0, "cannot read: %s",
				  S_ISDIR(st.st_mode) ? "is a directory"
						      : "larger than 1 MiB, not a configuration");
		goto out;
	}
	/* A regular file is read at its size (plus one byte, to notice growth); a pipe up to the cap. */
	cap = S_ISREG(st.st_mode) ? (size_t)st.st_size : CONF_FILE_MAX;
	*text = malloc(cap + 2);
	if (!*text) {
		ld->oom = true;
		goto out;
	}
	*len = fread(*text, 1, cap + 1, f);
	if (ferror(f))
		conf_report_line_(ld, 0, "cannot read: %s", strerror(errno));
	else if (*len > cap)
		conf_report_line_(ld, 0, "cannot read: %s",
				  S_ISREG(st.st_mode) ? "the file grew while being read"
						      : "larger than 1 MiB");
	else
		rc = 0;
	(*text)[*len] = '\0';
out:
	fclose(f);
	return rc;
}

/* Pre-scans and parses the text. Returns 0, or -1 after reporting (one error: the rest of the
 * file cannot be trusted after a syntax error). */
static int conf_parse(struct conf_load_ *ld, config_t *cfg, const char *text, size_t len, char **scanned)
{
	char why[128];
	unsigned line = 0;
	int rc = conf_scan_(text, len, scanned, &line, why, sizeof(why));

	if (rc < 0) {
		ld->oom = true;
		return -1;
	}
	if (rc > 0) {
		conf_report_line_(ld, line, "syntax error: %s", why);
		return -1;
	}
	if (config_read_string(cfg, *scanned) != CONFIG_TRUE) {
		char what[256];

		line = (unsigned)config_error_line(cfg);
		conf_syntax_explain_(*scanned, &line, config_error_text(cfg), what, sizeof(what));
		conf_report_line_(ld, line, "%s", what);
		return -1;
	}
	return 0;
}

/* "unknown option", with the nearest known option or group when one is a likely typo. */
static void conf_report_unknown(struct conf_load_ *ld, const config_setting_t *s, const char *name)
{
	char near[CONF_NAME_MAX];

	if (conf_suggest_option_(name, near))
		conf_report_(ld, s, name, false, "unknown option; did you mean %s?", near);
	else
		conf_report_(ld, s, name, false, "unknown option");
}

/* Walks one group's settings in file order; prefix is the group's dotted name ("" for the root). */
static void conf_walk(struct conf_load_ *ld, const config_setting_t *group, const char *prefix)
{
	const config_setting_t *s;
	char name[CONF_NAME_MAX];
	unsigned i;
	size_t index;
	int n;

	for (i = 0; (s = config_setting_get_elem(group, i)) != NULL; i++) {
		n = snprintf(name, sizeof(name), "%s%s%s", prefix, *prefix ? "." : "",
			     config_setting_name(s));
		if (n < 0 || (size_t)n >= sizeof(name)) {
			/* longer than any option: unknown; conf_name_ marks the cut */
			conf_name_(name, "%s%s%s", prefix, *prefix ? "." : "", config_setting_name(s));
			conf_report_(ld, s, name, false, "unknown option");
		} else if (conf_key_find_(name, &index)) {
			conf_apply_(ld, index, s, name);
		} else if (!conf_group_known_(name)) {
			conf_report_unknown(ld, s, name);
		} else if (!config_setting_is_group(s)) {
			conf_report_(ld, s, name, false, "expected a group { ... }");
		} else {
			conf_walk(ld, s, name);
		}
	}
}

/* Erases and frees a copy of the file text: it may hold keyex.password. */
static void conf_free_text(char *text, size_t len)
{
	if (text) {
		explicit_bzero(text, len);
		free(text);
	}
}

size_t conf_load(const char *path, bool check_files, struct px_conf **out, struct conf_errors *errs)
{
	struct conf_load_ ld = {.path = path};
	char *text = NULL, *scanned = NULL;
	size_t len = 0, nerr;
	config_t cfg;

	*out = NULL;
	config_init(&cfg);
	ld.conf = calloc(1, sizeof(*ld.conf));
	ld.origin = calloc(conf_nkeys_, sizeof(const config_setting_t *)); /* one pointer per key */
	ld.bad = calloc(conf_nkeys_, sizeof(*ld.bad));
	if (!ld.conf || !ld.origin || !ld.bad || conf_defaults_(ld.conf) != 0 ||
	    !(ld.conf->path = strdup(path))) {
		ld.oom = true;
		goto out;
	}
	if (conf_read_file(&ld, &text, &len) != 0 || conf_parse(&ld, &cfg, text, len, &scanned) != 0)
		goto out;
	conf_number_settings_(&ld, config_root_setting(&cfg));
	conf_walk(&ld, config_root_setting(&cfg), "");
	conf_peers_file_read_(&ld);
	conf_peers_unique_(&ld);
	conf_check_(&ld, check_files);
out:
	nerr = conf_diag_finish_(&ld, errs);
	if (nerr == 0) {
		*out = ld.conf;
		ld.conf = NULL;
	}
	conf_free(ld.conf);
	free(ld.bad);
	free(ld.origin);
	free(ld.peer_at);
	config_destroy(&cfg);
	free(ld.order);
	conf_free_text(scanned, scanned ? strlen(scanned) : 0);
	conf_free_text(text, len);
	return nerr;
}
