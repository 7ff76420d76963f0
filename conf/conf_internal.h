/* conf_internal.h - what the files of conf/ share and nobody else may use: the key table's row
 * type, the load context that collects problems, and the text rules for option values.
 *   conf.c        load: read, pre-scan, parse, walk the tree against the key table
 *   conf_scan.c   pre-scan of the raw text (integer literals, @include, NUL bytes)
 *   conf_table.c  the key table, defaults, field access, conf_free
 *   conf_value.c  one setting -> one field, per option type (type, range, text checks)
 *   conf_text.c   text rules: node ids, MQTT topics and filters, keys, hosts, quoting
 *   conf_check.c  derived defaults, cross-field checks, warnings, file checks
 *   conf_peers.c  peers_file (one peer a line) and the duplicate check across all peers
 *   conf_diag.c   problem collection, file-order sorting, struct conf_errors
 *   conf_dump.c   the effective configuration as libconfig text */
#ifndef PX_CONF_INTERNAL_H
#define PX_CONF_INTERNAL_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>

#include "conf.h"

/* Longest dotted option name we ever build ("peers[255].public_key" and the like); a setting
 * whose full name does not fit is unknown anyway: the longest table name is far shorter. */
#define CONF_NAME_MAX 96

/* Quoted values in messages are cut to this many bytes (escapes included), so that one bad
 * 64 KiB string does not turn into a 256 KiB log line. */
#define CONF_QUOTE_MAX 80

enum conf_type {
	CONF_STRING,  /* char *; min..max is the length in bytes */
	CONF_INT,     /* unsigned field of any width; min..max is the value range */
	CONF_BOOL,    /* bool */
	CONF_ENUM,    /* enum stored as its index in names[]; the default is given by name */
	CONF_STRLIST, /* char ** + size_t count at count_off; min..max is the entry count */
	CONF_PEERS,   /* struct conf_peer * + npeers; min..max is the entry count */
	CONF_PREFIX_MAP, /* struct conf_prefix_map * + count; min..max is the entry count */
	CONF_READY,   /* unsigned: "all" (CONF_READY_ALL), "any" (CONF_READY_ANY) or a count min..max */
	CONF_GROUPS,  /* struct conf_group * + ngroups (read groups, conf_groups.c); min..max entries */
	CONF_LISTENERS, /* struct conf_listener * + nlisteners; min..max is the entry count */
};

/* Checks an option's text beyond its length. Returns NULL when it is fine, else a static phrase
 * that follows the quoted value in the message ("is not a valid node id (...)"). */
typedef const char *(*conf_text_rule)(const char *value);

/* One row of the key table: everything about one option. Rows give name and type by position,
 * the rest by designator (the small members sit together, so the row has no padding holes). */
struct conf_key {
	const char *name;	  /* dotted path, e.g. "broker.tls.enabled" */
	enum conf_type type;	  /* how the setting is read and the field written */
	bool required;		  /* missing = error */
	bool secret;		  /* masked by conf_dump, erased by conf_free */
	const char *sdef;	  /* default of a string or enum; NULL = unset (or derived) */
	long long idef;		  /* default of an int or bool */
	long long min, max;	  /* see enum conf_type */
	size_t off;		  /* the field in struct px_conf */
	size_t size;		  /* its size (ints, bools, enums; 0 for lists) */
	size_t count_off;	  /* lists: the size_t entry count */
	const char *const *names; /* enums: accepted names, NULL-terminated, index = value */
	conf_text_rule rule;	  /* strings and list entries: extra text rule, or NULL */
	const char *help;	  /* one line, for the example config and --help */
};

/* One collected problem or warning. */
struct conf_diag {
	char *text;	     /* the finished "FILE:LINE: option: problem" line */
	unsigned long order; /* position in the file of the setting it is about; ULONG_MAX = none */
	size_t seq;	     /* report order, to keep the sort stable */
	bool warning;
};

/* Everything one conf_load call works on. */
struct conf_load_ {
	const char *path;		 /* the file, as the caller named it */
	struct px_conf *conf;		 /* being filled; handed out only when no error */
	const config_setting_t **origin; /* per key: the setting it came from, NULL = default */
	bool *bad;			 /* per key: its setting was rejected (no cross-checks then) */
	size_t nerrors;			 /* errors reported so far */
	unsigned long *order;		 /* per setting in file order, its index; the hooks point here */
	struct conf_diag *diags;
	size_t ndiags, cap;
	bool oom; /* an allocation failed: the load fails even if no line says why */
	size_t nsettings;		  /* settings in the file: peers_file problems sort after them */
	const config_setting_t **peer_at; /* per entry of conf->peers from the list: its group */
};

/* A peer's publish list (R6) holds at most this many topic filters, like topics.plaintext. */
#define CONF_PEER_PUBLISH_MAX 1024

/* conf_table.c */
extern const struct conf_key conf_keys_[];
extern const size_t conf_nkeys_;
/* Frees n strings and the array (either may be NULL). */
void conf_free_strlist_(char **list, size_t n);
const struct conf_key *conf_key_find_(const char *name, size_t *index);
bool conf_group_known_(const char *prefix);
int conf_defaults_(struct px_conf *conf);
unsigned long long conf_get_uint_(const struct px_conf *conf, const struct conf_key *k);
void conf_set_uint_(struct px_conf *conf, const struct conf_key *k, unsigned long long v);
char **conf_str_field_(struct px_conf *conf, const struct conf_key *k);
const char *conf_str_get_(const struct px_conf *conf, const struct conf_key *k);

/* conf_value.c */
void conf_apply_(struct conf_load_ *ld, size_t index, const config_setting_t *s, const char *name);
const char *conf_string_of_(struct conf_load_ *ld, const config_setting_t *s, const char *name);
bool conf_rule_ok_(struct conf_load_ *ld, const config_setting_t *s, const char *name, const char *v,
		   conf_text_rule rule);
bool conf_group_scan_(struct conf_load_ *ld, const config_setting_t *g, const char *base,
		      const char *const *names, const config_setting_t **found);
/* Reads group g, entry base of a list, into array[*count] when it is valid and new. */
typedef void (*conf_group_reader)(struct conf_load_ *ld, const config_setting_t *g, const char *base,
				  void *array, size_t *count);
void conf_read_groups_(struct conf_load_ *ld, const struct conf_key *k, const config_setting_t *s,
		       const char *name, const char *list_msg, const char *group_msg, size_t elem,
		       conf_group_reader read, void **out, size_t *count);

/* conf_listen.c: the listeners list (read, checked across options, files, dumped, freed) */
void conf_apply_listeners_(struct conf_load_ *ld, const struct conf_key *k, const config_setting_t *s,
			   const char *name);
void conf_check_listeners_(struct conf_load_ *ld);
void conf_check_listener_files_(struct conf_load_ *ld);
void conf_free_listeners_(struct conf_listener *l, size_t n);

/* conf_value.c, for the lists of groups read elsewhere (conf_groups.c): see the static originals. */
/* Reads group g, entry base of a list, into array[*count] when it is valid and new. */
typedef conf_group_reader conf_group_reader_;
bool conf_read_strlist_(struct conf_load_ *ld, const config_setting_t *s, const char *name, long long max,
			conf_text_rule rule, char ***out, size_t *count);
const char *conf_group_member_(struct conf_load_ *ld, const config_setting_t *g, const config_setting_t *m,
			       const char *base, const char *leaf, conf_text_rule rule);

/* conf_groups.c: `groups` (read groups, issue 17) */
void conf_apply_groups_(struct conf_load_ *ld, const struct conf_key *k, const config_setting_t *s,
			const char *name);
void conf_check_groups_(struct conf_load_ *ld);
void conf_free_groups_(struct conf_group *groups, size_t n);

/* conf_check.c */
void conf_check_(struct conf_load_ *ld, bool check_files);
/* A path as typed, quoted only when it has bytes that need it (messages about files). */
const char *conf_path_text_(const char *path, char buf[static CONF_QUOTE_MAX]);
const config_setting_t *conf_origin_(const struct conf_load_ *ld, const char *name);
bool conf_bad_(const struct conf_load_ *ld, const char *name);

/* conf_diag.c */
void conf_report_(struct conf_load_ *ld, const config_setting_t *at, const char *option, bool warning,
		  const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void conf_report_line_(struct conf_load_ *ld, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A problem in another file (the peers file) at its line: "PATH:LINE: [OPTION: ]message". */
void conf_report_file_(struct conf_load_ *ld, const char *path, unsigned line, const char *option,
		       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void conf_number_settings_(struct conf_load_ *ld, config_setting_t *root);
const char *conf_name_(char buf[static CONF_NAME_MAX], const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
size_t conf_diag_finish_(struct conf_load_ *ld, struct conf_errors *errs);

/* conf_suggest.c: the option or group nearest to an unknown name, written into buf, or NULL. */
const char *conf_suggest_option_(const char *name, char buf[static CONF_NAME_MAX]);

/* conf_syntax.c: libconfig's parse error at line rewritten as "what is wrong, near what" from the
 * text itself (libconfig says only "syntax error"); writes into out and may move *line to where
 * the problem starts (an unterminated string or group). */
void conf_syntax_explain_(const char *text, unsigned *line, const char *libconfig_msg, char *out, size_t outlen);

/* conf_peers.c: reads peers_file (after the walk), then checks ids and keys are unique across
 * the list and the file (sorted, O(N log N)). */
void conf_peers_file_read_(struct conf_load_ *ld);
void conf_peers_unique_(struct conf_load_ *ld);

/* conf_scan.c */
int conf_scan_(const char *in, size_t len, char **out, unsigned *line, char *why, size_t whylen);

/* conf_text.c */
const char *conf_quote_(const char *s, char buf[static CONF_QUOTE_MAX]);
const char *conf_rule_node_id_(const char *v);
const char *conf_rule_topic_(const char *v);
const char *conf_rule_filter_(const char *v);
const char *conf_rule_utf8_(const char *v);
const char *conf_rule_host_(const char *v);
const char *conf_rule_user_(const char *v);
const char *conf_rule_public_key_(const char *v);
const char *conf_rule_prefix_(const char *v);
bool conf_host_loopback_(const char *host);
bool conf_host_wildcard_(const char *host);

#endif
