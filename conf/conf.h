/* conf.h - mqseal's configuration: libconfig file -> validated, frozen struct px_conf.
 * One key table (conf_table.c) gives every option's name, type, default, range and whether it is
 * required; conf/mqseal.conf.example documents each one. This module never logs and never exits:
 * problems come back as "FILE:LINE: option: problem" lines, all of them in one go. */
#ifndef PX_CONF_H
#define PX_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum conf_log_format { CONF_LOG_TEXT = 0, CONF_LOG_JSON = 1 };
enum conf_log_level { CONF_LOG_ERROR = 0, CONF_LOG_WARN, CONF_LOG_INFO, CONF_LOG_DEBUG };

struct conf_peer {
	char *id;         /* node id of the peer */
	char *public_key; /* "ed25519:<base64>" text form, syntax checked here, decoded by proxy/ */
	char **publish;   /* topic filters its messages may carry (R6); see has_publish */
	size_t npublish;
	unsigned line;    /* where it was defined, for later error messages */
	bool has_publish; /* false: no publish list, every sealed topic (npublish 0 then) */
};

/* One rule of topic_prefix_map (R24, PROTOCOL.md §5.4): a topic that this node's broker
 * connection shows starting with local is bound in the AAD as canonical + the rest. */
struct conf_prefix_map {
	char *local;     /* may be "" (every topic: a broker mount point) */
	char *canonical; /* may be "" */
	unsigned line;
};

struct conf_tls {
	bool enabled;
	char *ca_file;      /* NULL = system default store */
	char *ca_path;      /* NULL = none */
	char *cert_file;    /* client certificate, optional (with key_file) */
	char *key_file;
	bool verify_hostname;
	char *server_name;  /* name to verify and send as SNI; NULL = broker.host */
};

struct px_conf {
	char *path; /* the file this came from */

	char *node_id;       /* [A-Za-z0-9._-]{1,64} */
	char *identity_file; /* Ed25519 private key (PEM), mode 0600 */
	char *state_dir;     /* persisted epoch counters (PROTOCOL.md §8) */
	char *user;          /* drop root to this user after binding; NULL = stay */
	unsigned shutdown_grace_seconds;

	struct {
		char *host;
		uint16_t port;
		bool allow_remote;
		unsigned max_connections;
		unsigned connect_timeout_seconds;
		uint32_t max_packet_size;
	} listen;

	struct {
		char *host;
		uint16_t port;
		unsigned connect_timeout_seconds;
		struct conf_tls tls;
	} broker;

	struct {
		char *topic_prefix;
		unsigned interval_seconds;
		unsigned activation_seconds;
		unsigned grace_seconds;    /* offline grace, extends receive-key lifetime */
		unsigned max_skew_seconds;
		char *client_id;           /* NULL = "mqseal-" + node_id */
		char *username;
		char *password;            /* masked when printed */
		unsigned keepalive_seconds;
		unsigned revoke_seconds;   /* older keys of a peer that revoked (REVOKE) end this soon */
		bool presence;             /* will + retained presence on <prefix>/presence/<node_id> */
	} keyex;

	struct conf_peer *peers;
	size_t npeers;

	struct {
		char **plaintext; /* topic filters sent and delivered as plaintext */
		size_t nplaintext;
		char **deny;      /* topic filters refused outright */
		size_t ndeny;
	} topics;

	struct conf_prefix_map *topic_prefix_map; /* longest local prefix wins; none = topic as is */
	size_t ntopic_prefix_map;

	struct {
		unsigned padding;           /* inner plaintext padded to a multiple of this (1..256) */
		unsigned hold_seconds;
		unsigned retained_cache_kb; /* plaintext of own retained messages kept for re-sealing */
		unsigned held_max_kb;       /* incoming messages with unknown key ids, node-wide */
		unsigned held_max_messages;
	} seal;

	struct {
		bool enabled;
		char *host;
		uint16_t port;
		bool allow_remote;
		unsigned max_connections; /* HTTP connections served at once; more are refused */
		unsigned peer_series_max; /* per-peer metric series only up to this many peers */
	} metrics;

	struct {
		unsigned ready_when; /* CONF_READY_ALL, CONF_READY_ANY or a number of peers keyed */
	} readiness;

	struct {
		enum conf_log_level level;
		enum conf_log_format format;
	} log;
};

/* The problems found while loading, in file order (settings found nowhere in the file last). */
struct conf_errors {
	char **lines; /* "FILE:LINE: option: problem" (LINE omitted when unknown) */
	size_t count;
	char **warnings; /* accepted but questionable values, same form; never make the load fail */
	size_t nwarnings;
};

/* Loads, applies defaults and validates (per option and across options). errs must be empty
 * (zero-initialised or cleared). Returns 0 and sets *out (the caller's, freed with conf_free) when
 * there is no problem; otherwise returns the number of problems, fills errs->lines, and *out is
 * NULL. Warnings are filled in either case, so call conf_errors_clear after every load. If memory
 * runs out the return value is still nonzero, but errs may hold fewer lines than it counts.
 * check_files: also check that identity_file exists and is mode 0600 (or stricter) and, when TLS
 * is enabled, that the TLS files are readable. The file must be a single libconfig file: @include
 * is refused. */
size_t conf_load(const char *path, bool check_files, struct px_conf **out, struct conf_errors *errs);
void conf_free(struct px_conf *conf);             /* accepts NULL */
void conf_errors_clear(struct conf_errors *errs); /* frees lines and warnings; accepts an empty struct */

/* Prints the effective configuration in libconfig syntax, secrets masked, to a malloc'd string
 * (the caller frees it). NULL on allocation failure or when conf is NULL. */
char *conf_dump(const struct px_conf *conf);

/* readiness.ready_when: "all" and "any" are kept as these values, a number as itself. */
#define CONF_READY_ALL 0xFFFFFFFFu
#define CONF_READY_ANY 0xFFFFFFFEu
/* How many peers must be keyed for /readyz (the policy applied to conf->npeers). */
size_t conf_ready_need(const struct px_conf *conf);

/* Does topics.plaintext make every topic plaintext (a filter "#" or "+/#"), so that nothing is
 * sealed? Used by `mqseal check`'s warning and by /healthz. */
bool conf_all_plaintext(const struct px_conf *conf);

/* Is this a valid node id ([A-Za-z0-9._-]{1,64})? Also used for peer ids. */
bool conf_node_id_valid(const char *id);

/* The key table, read-only, for documentation and tests: the dotted name ("broker.tls.enabled")
 * and the one-line help of option number index, or NULL when index is past the last option. */
const char *conf_option_name(size_t index);
const char *conf_option_help(size_t index);

/* "Did you mean": the candidate nearest to word (one edit for names of up to 4 bytes, two for
 * longer ones, a swap of neighbours counting one), or NULL when none is that close. The pointer
 * is one of candidates. Used for unknown options, in the file and on the command line. */
const char *conf_nearest(const char *word, const char *const *candidates, size_t n);

#endif
