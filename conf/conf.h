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
	bool in_file;     /* line is in peers_file, not in the configuration file (conf_peer_file) */
};
/* Memory of a peer in struct px_conf: sizeof(struct conf_peer) (40 bytes on LP64) plus its id and
 * key strings (up to 65 + 53 bytes, glibc rounds each to a 32- or 64-byte chunk), plus 8 bytes and
 * a string per publish filter: measured 137 bytes for a peer without a publish list, 168 on
 * average for 10,000 peers of which half have one filter (docs/OPERATIONS.md, section 5.1). */

/* Peers in the list and the peers file together; each is a key agreement per rotation. */
#define CONF_PEERS_MAX 10000
/* The peers file is read whole: 10,000 lines of up to 400 bytes (id, key and a publish list) fit. */
#define CONF_PEERS_FILE_MAX ((size_t)4 * 1024 * 1024)

/* One rule of topic_prefix_map (R24, PROTOCOL.md §5.4): a topic that this node's broker
 * connection shows starting with local is bound in the AAD as canonical + the rest. */
struct conf_prefix_map {
	char *local;     /* may be "" (every topic: a broker mount point) */
	char *canonical; /* may be "" */
	unsigned line;
};

/* One read group (issue 17, docs/OPERATIONS.md "Read groups"): the topics it covers, the node ids
 * that may read them and, when has_writers, the only node ids that may write them (with proof).
 * Filters of two different groups never match a common topic (checked at load). */
struct conf_group {
	char *name;       /* [A-Za-z0-9._-]{1,32}, unique */
	char **topics;    /* topic filters, >= 1 */
	unsigned *topic_lines; /* line of each filter in the file */
	size_t ntopics;
	char **readers;   /* node ids, >= 1; need not be this node's peers */
	size_t nreaders;
	char **writers;   /* node ids, >= 1 when has_writers (nwriters 0 otherwise) */
	size_t nwriters;
	unsigned line;    /* where the group was defined */
	bool has_writers; /* false: every trusted node may write the group */
};
/* Limits of `groups` (documented in docs/OPERATIONS.md). */
#define CONF_GROUPS_MAX 64
#define CONF_GROUP_TOPICS_MAX 64
#define CONF_GROUP_NODES_MAX 10000
#define CONF_GROUP_NAME_MAX 32

struct conf_tls {
	bool enabled;
	char *ca_file;      /* NULL = system default store */
	char *ca_path;      /* NULL = none */
	char *cert_file;    /* client certificate, optional (with key_file) */
	char *key_file;
	bool verify_hostname;
	char *server_name;  /* name to verify and send as SNI; NULL = broker.host */
};

/* One extra device listener (listeners = ( { ... }, ... )): plain TCP, TLS, WebSocket, or
 * WebSocket over TLS (tls and websocket both set). Read by proxy/relay/listener.c. */
struct conf_listener {
	char *host;           /* default "127.0.0.1" */
	char *cert_file;      /* tls.cert_file (PEM chain); NULL = no TLS */
	char *key_file;       /* tls.key_file (PEM) */
	char *client_ca_file; /* tls.client_ca_file; set = client certificates required and verified */
	char *ws_path;        /* websocket.path; NULL = not WebSocket */
	unsigned line;        /* where the entry was defined */
	unsigned index;       /* its position in the list, for messages (listeners[index]) */
	uint16_t port;
	bool allow_plaintext_remote; /* a non-loopback host without TLS, asked for explicitly */
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

	struct conf_listener *listeners; /* extra device listeners, besides listen (conf_listen.c) */
	size_t nlisteners;

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

	struct conf_peer *peers; /* the peers list in order, then the peers file's lines in order */
	size_t npeers;
	char *peers_file;      /* as configured (NULL = none) */
	char *peers_file_path; /* the file read: relative to the configuration file's directory */
	size_t npeers_file;    /* the last npeers_file of peers came from it */

	struct {
		char **plaintext; /* topic filters sent and delivered as plaintext */
		size_t nplaintext;
		char **deny;      /* topic filters refused outright */
		size_t ndeny;
	} topics;

	struct conf_prefix_map *topic_prefix_map; /* longest local prefix wins; none = topic as is */
	size_t ntopic_prefix_map;

	struct conf_group *groups; /* read groups; none = every topic in the default group */
	size_t ngroups;

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

/* The file a peer was defined in (its line is p->line there): conf->path or conf->peers_file_path. */
const char *conf_peer_file(const struct px_conf *conf, const struct conf_peer *p);
/* Could some topic name match both topic filters a and b (MQTT 5 §4.7: '+' one level, '#' the
 * rest including the parent level, wildcards first never match '$' topics, the empty topic is
 * no topic)? Both must be valid filters. The overlap rule of `groups` uses it. */
bool conf_filters_intersect(const char *a, const char *b);

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
