/* conf_table.c - the key table: every option's name, type, default, range, field and help, in
 * the order the example config and conf_dump present them (each group's rows contiguous). All
 * the rest is driven by it: defaults, type and range checks, unknown keys, freeing, the dump,
 * and the test that the example config documents every option. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf_internal.h"

/* The field of a row and its size; a list's array and its size_t entry count (no size: a list
 * field is a pointer, read and freed by its type, never by width). */
#define F(field)   .off = offsetof(struct px_conf, field), .size = sizeof(((struct px_conf *)0)->field)
#define LIST(f, n) .off = offsetof(struct px_conf, f), .count_off = offsetof(struct px_conf, n)

/* PATH_MAX on Linux is 4096 bytes including the NUL. */
#define PATH_LEN .min = 1, .max = 4095
/* RFC 1035 §2.3.4: a name is at most 255 octets on the wire, 253 characters as text; IPv6
 * literals (at most 45 characters plus a zone) fit too. */
#define HOST_LEN  .min = 1, .max = 253, .rule = conf_rule_host_
#define PORT(def) .idef = def, .min = 1, .max = 65535
/* Topic filter lists are matched against every PUBLISH; a thousand filters is already far more
 * than a device's topic tree needs. */
#define FILTERS .min = 0, .max = 1024, .rule = conf_rule_filter_

/* Index = enum value (conf.h: enum conf_log_level, enum conf_log_format). */
static const char *const conf_level_names[] = {"error", "warn", "info", "debug", NULL};
static const char *const conf_format_names[] = {"text", "json", NULL};

const struct conf_key conf_keys_[] = {
	{"node_id", CONF_STRING, .required = true, .min = 1, .max = 64, F(node_id),
	 .rule = conf_rule_node_id_,
	 .help = "this sidecar's name, as its peers know it; [A-Za-z0-9._-], 1 to 64 characters"},
	{"state_dir", CONF_STRING, .sdef = "/var/lib/mqseal", PATH_LEN, F(state_dir),
	 .help = "directory for persisted state (epoch counters)"},
	{"identity_file", CONF_STRING, PATH_LEN, F(identity_file),
	 .help = "Ed25519 private key (PEM), mode 0600; default <state_dir>/identity.key"},
	{"user", CONF_STRING, .min = 1, .max = 32, F(user), .rule = conf_rule_user_,
	 .help = "drop root to this user after binding; unset = keep the starting user"},
	{"shutdown_grace_seconds", CONF_INT, .idef = 5, .min = 0, .max = 300, F(shutdown_grace_seconds),
	 .help = "on SIGTERM, let sessions drain this long before closing them"},

	{"listen.host", CONF_STRING, .sdef = "127.0.0.1", HOST_LEN, F(listen.host),
	 .help = "address the devices connect to"},
	{"listen.port", CONF_INT, PORT(1883), F(listen.port), .help = "port the devices connect to"},
	{"listen.allow_remote", CONF_BOOL, .idef = 0, F(listen.allow_remote),
	 .help = "must be true when listen.host is not a loopback address"},
	{"listen.max_connections", CONF_INT, .idef = 1024, .min = 1, .max = 1000000,
	 F(listen.max_connections), .help = "device connections served at once; more are refused"},
	{"listen.connect_timeout_seconds", CONF_INT, .idef = 10, .min = 1, .max = 3600,
	 F(listen.connect_timeout_seconds), .help = "a device must send CONNECT within this time"},
	/* MQTT 5 §2.2.3: remaining length at most 268435455, plus at most 5 fixed-header bytes;
	 * 128 bytes is the least that holds a CONNECT with a client id, user name and password. */
	{"listen.max_packet_size", CONF_INT, .idef = 1048576, .min = 128, .max = 268435460,
	 F(listen.max_packet_size), .help = "largest MQTT packet accepted from a device, in bytes"},

	{"broker.host", CONF_STRING, .required = true, HOST_LEN, F(broker.host),
	 .help = "the real MQTT broker (required: there is no sensible default)"},
	{"broker.port", CONF_INT, PORT(1883), F(broker.port),
	 .help = "the broker's port; default 1883, or 8883 when broker.tls.enabled"},
	{"broker.connect_timeout_seconds", CONF_INT, .idef = 10, .min = 1, .max = 3600,
	 F(broker.connect_timeout_seconds), .help = "give up a broker connection attempt after this time"},
	{"broker.tls.enabled", CONF_BOOL, .idef = 0, F(broker.tls.enabled),
	 .help = "connect to the broker over TLS"},
	{"broker.tls.ca_file", CONF_STRING, PATH_LEN, F(broker.tls.ca_file),
	 .help = "CA certificates (PEM) to verify the broker; unset = the system store"},
	{"broker.tls.ca_path", CONF_STRING, PATH_LEN, F(broker.tls.ca_path),
	 .help = "directory of hashed CA certificates (c_rehash)"},
	{"broker.tls.cert_file", CONF_STRING, PATH_LEN, F(broker.tls.cert_file),
	 .help = "client certificate (PEM); set together with key_file"},
	{"broker.tls.key_file", CONF_STRING, PATH_LEN, F(broker.tls.key_file),
	 .help = "client private key (PEM); set together with cert_file"},
	{"broker.tls.verify_hostname", CONF_BOOL, .idef = 1, F(broker.tls.verify_hostname),
	 .help = "check that the broker's certificate names the broker"},
	{"broker.tls.server_name", CONF_STRING, HOST_LEN, F(broker.tls.server_name),
	 .help = "name to send (SNI) and verify; unset = broker.host"},

	{"keyex.topic_prefix", CONF_STRING, .sdef = "mqseal", .min = 1, .max = 64, F(keyex.topic_prefix),
	 .rule = conf_rule_topic_, .help = "topic subtree for key announcements"},
	{"keyex.interval_seconds", CONF_INT, .idef = 3600, .min = 1, .max = 86400, F(keyex.interval_seconds),
	 .help = "new sending key this often; below 60 for tests and demos only"},
	{"keyex.activation_seconds", CONF_INT, .idef = 10, .min = 0, .max = 60, F(keyex.activation_seconds),
	 .help = "announce a new key this long before sealing with it"},
	{"keyex.grace_seconds", CONF_INT, .idef = 0, .min = 0, .max = 604800, F(keyex.grace_seconds),
	 .help = "keep old receive keys this long for offline peers; above 0 weakens forward secrecy"},
	{"keyex.max_skew_seconds", CONF_INT, .idef = 60, .min = 1, .max = 3600, F(keyex.max_skew_seconds),
	 .help = "largest clock difference accepted in an announcement"},
	{"keyex.client_id", CONF_STRING, .min = 1, .max = 64, F(keyex.client_id), .rule = conf_rule_utf8_,
	 .help = "MQTT client id of the key-exchange connection; unset = mqseal-<node_id>"},
	/* MQTT 5 §3.1.3.5 and §3.1.3.6: user name and password are at most 65535 bytes. */
	{"keyex.username", CONF_STRING, .min = 1, .max = 65535, F(keyex.username), .rule = conf_rule_utf8_,
	 .help = "broker user name of the key-exchange connection"},
	{"keyex.password", CONF_STRING, .min = 0, .max = 65535, F(keyex.password), .secret = true,
	 .help = "its password; needs keyex.username"},
	{"keyex.revoke_seconds", CONF_INT, .idef = 10, .min = 1, .max = 300, F(keyex.revoke_seconds),
	 .help = "after a peer's REVOKE announcement (it removed a node), its older keys open messages this much longer"},
	{"keyex.keepalive_seconds", CONF_INT, .idef = 30, .min = 5, .max = 3600, F(keyex.keepalive_seconds),
	 .help = "MQTT keepalive of the key-exchange connection"},
	{"keyex.presence", CONF_BOOL, .idef = 1, F(keyex.presence),
	 .help = "MQTT will and signed presence: peers learn within 1.5 x keepalive that this node went away"},

	/* 256 peers: each costs a key agreement per rotation; larger meshes need a different design. */
	{"peers", CONF_PEERS, .min = 0, .max = 256, LIST(peers, npeers),
	 .help = "the other sidecars: ( { id = \"...\"; public_key = \"ed25519:...\"; publish = [ ... ]; }, ... )"},

	{"topics.plaintext", CONF_STRLIST, FILTERS, LIST(topics.plaintext, topics.nplaintext),
	 .help = "topic filters relayed as plaintext, unsealed"},
	{"topics.deny", CONF_STRLIST, FILTERS, LIST(topics.deny, topics.ndeny),
	 .help = "topic filters refused outright"},

	/* R24: a rule per mount point or bridge prefix; 64 is far more than a deployment has. */
	{"topic_prefix_map", CONF_PREFIX_MAP, .min = 0, .max = 64, LIST(topic_prefix_map, ntopic_prefix_map),
	 .help = "topic prefixes the broker rewrites: ( { local = \"\"; canonical = \"site1/\"; }, ... )"},

	{"seal.padding", CONF_INT, .idef = 16, .min = 1, .max = 256, F(seal.padding),
	 .help = "pad sealed payloads to a multiple of this many bytes"},
	{"seal.hold_seconds", CONF_INT, .idef = 5, .min = 0, .max = 3600, F(seal.hold_seconds),
	 .help = "how long a device's publish waits for a key before it is refused"},
	{"seal.retained_cache_kb", CONF_INT, .idef = 16384, .min = 0, .max = 1048576,
	 F(seal.retained_cache_kb),
	 .help = "memory for re-sealing own retained messages after a key change, in KiB"},
	/* PROTOCOL.md §6.1 step 3: the broker fans one burst out to every subscribed device, so the
	 * per-device limits (128 messages, 1 MiB) multiply by the number of devices; these bound the
	 * sum. 1 GiB and a million are far above any use; 0 holds nothing (drops at once). */
	{"seal.held_max_kb", CONF_INT, .idef = 4096, .min = 0, .max = 1048576, F(seal.held_max_kb),
	 .help = "memory for incoming messages held while their key is unknown, all devices together, in KiB"},
	{"seal.held_max_messages", CONF_INT, .idef = 1024, .min = 0, .max = 1000000, F(seal.held_max_messages),
	 .help = "incoming messages held while their key is unknown, all devices together"},

	{"metrics.enabled", CONF_BOOL, .idef = 1, F(metrics.enabled),
	 .help = "serve /health and /metrics over HTTP"},
	{"metrics.host", CONF_STRING, .sdef = "127.0.0.1", HOST_LEN, F(metrics.host),
	 .help = "address of the HTTP endpoint"},
	{"metrics.port", CONF_INT, PORT(9883), F(metrics.port), .help = "port of the HTTP endpoint"},
	{"metrics.allow_remote", CONF_BOOL, .idef = 0, F(metrics.allow_remote),
	 .help = "must be true when metrics.host is not a loopback address"},
	/* Each costs a descriptor for at most 10 s; a few scrapers need a handful. */
	{"metrics.max_connections", CONF_INT, .idef = 64, .min = 1, .max = 4096, F(metrics.max_connections),
	 .help = "HTTP connections served at once; more are refused (503)"},
	/* Prometheus' own advice: keep label sets per metric in the hundreds at most; a hub with
	 * 10,000 spokes must not export 10,000 of them by default. */
	{"metrics.peer_series_max", CONF_INT, .idef = 64, .min = 0, .max = 100000, F(metrics.peer_series_max),
	 .help = "per-peer series (mqseal_peer_*) only while peers are at most this many; 0 = never"},

	/* 65535 is far above the peers list's own maximum: the cross-check against it says more. */
	{"readiness.ready_when", CONF_READY, .idef = CONF_READY_ALL, .min = 0, .max = 65535,
	 F(readiness.ready_when),
	 .help = "/readyz is 200 once the broker is connected and \"all\", \"any\" or this many peers are keyed"},

	{"log.level", CONF_ENUM, .sdef = "info", F(log.level), .names = conf_level_names,
	 .help = "error, warn, info or debug"},
	{"log.format", CONF_ENUM, .sdef = "text", F(log.format), .names = conf_format_names,
	 .help = "text (one line per event) or json (one object per line)"},
};

const size_t conf_nkeys_ = sizeof(conf_keys_) / sizeof(conf_keys_[0]);

const struct conf_key *conf_key_find_(const char *name, size_t *index)
{
	size_t i;

	for (i = 0; i < conf_nkeys_; i++) {
		if (strcmp(conf_keys_[i].name, name) == 0) {
			if (index)
				*index = i;
			return &conf_keys_[i];
		}
	}
	return NULL;
}

/* Is prefix a group of the table, i.e. does some option's name start with prefix + "."? */
bool conf_group_known_(const char *prefix)
{
	size_t i, n = strlen(prefix);

	for (i = 0; i < conf_nkeys_; i++)
		if (strncmp(conf_keys_[i].name, prefix, n) == 0 && conf_keys_[i].name[n] == '.')
			return true;
	return false;
}

const char *conf_option_name(size_t index)
{
	return index < conf_nkeys_ ? conf_keys_[index].name : NULL;
}

const char *conf_option_help(size_t index)
{
	return index < conf_nkeys_ ? conf_keys_[index].help : NULL;
}

unsigned long long conf_get_uint_(const struct px_conf *conf, const struct conf_key *k)
{
	const unsigned char *p = (const unsigned char *)conf + k->off;
	uint8_t v8;
	uint16_t v16;
	uint32_t v32;
	uint64_t v64;

	switch (k->size) {
	case 1:
		memcpy(&v8, p, 1);
		return v8;
	case 2:
		memcpy(&v16, p, 2);
		return v16;
	case 4:
		memcpy(&v32, p, 4);
		return v32;
	default:
		memcpy(&v64, p, 8);
		return v64;
	}
}

/* Callers pass values inside the row's range, which fits the field (the table is checked
 * against the field sizes by test_conf). */
void conf_set_uint_(struct px_conf *conf, const struct conf_key *k, unsigned long long v)
{
	unsigned char *p = (unsigned char *)conf + k->off;
	uint8_t v8 = (uint8_t)v;
	uint16_t v16 = (uint16_t)v;
	uint32_t v32 = (uint32_t)v;
	uint64_t v64 = v;

	switch (k->size) {
	case 1:
		memcpy(p, &v8, 1);
		break;
	case 2:
		memcpy(p, &v16, 2);
		break;
	case 4:
		memcpy(p, &v32, 4);
		break;
	default:
		memcpy(p, &v64, 8);
		break;
	}
}

char **conf_str_field_(struct px_conf *conf, const struct conf_key *k)
{
	return (char **)(void *)((unsigned char *)conf + k->off);
}

const char *conf_str_get_(const struct px_conf *conf, const struct conf_key *k)
{
	const char *const *p = (const char *const *)(const void *)((const unsigned char *)conf + k->off);
	return *p;
}

static size_t conf_enum_index(const struct conf_key *k, const char *name)
{
	size_t i;

	for (i = 0; k->names[i]; i++)
		if (strcmp(k->names[i], name) == 0)
			return i;
	return 0;
}

/* Fills every field from the table's defaults; -1 when memory runs out (conf_free cleans up). */
int conf_defaults_(struct px_conf *conf)
{
	const struct conf_key *k;
	size_t i;

	for (i = 0; i < conf_nkeys_; i++) {
		k = &conf_keys_[i];
		if (k->type == CONF_INT || k->type == CONF_BOOL || k->type == CONF_READY)
			conf_set_uint_(conf, k, (unsigned long long)k->idef);
		else if (k->type == CONF_ENUM)
			conf_set_uint_(conf, k, conf_enum_index(k, k->sdef));
		else if (k->type == CONF_STRING && k->sdef && !(*conf_str_field_(conf, k) = strdup(k->sdef)))
			return -1;
	}
	return 0;
}

void conf_free_strlist_(char **list, size_t n)
{
	size_t i;

	for (i = 0; list && i < n; i++)
		free(list[i]);
	free(list);
}

static void conf_free_peers(struct conf_peer *peers, size_t n)
{
	size_t i;

	for (i = 0; peers && i < n; i++) {
		free(peers[i].id);
		free(peers[i].public_key);
		conf_free_strlist_(peers[i].publish, peers[i].npublish);
	}
	free(peers);
}

static void conf_free_prefix_map(struct conf_prefix_map *m, size_t n)
{
	size_t i;

	for (i = 0; m && i < n; i++) {
		free(m[i].local);
		free(m[i].canonical);
	}
	free(m);
}

/* Strings and string lists are found through the table; the peers and the prefix map have fields
 * of their own types (one row each), so they are freed by name, once, after the walk. */
void conf_free(struct px_conf *conf)
{
	const struct conf_key *k;
	char **s;
	size_t i, n;

	if (!conf)
		return;
	for (i = 0; i < conf_nkeys_; i++) {
		k = &conf_keys_[i];
		if (k->type == CONF_STRING) {
			s = conf_str_field_(conf, k);
			if (k->secret && *s)
				explicit_bzero(*s, strlen(*s));
			free(*s);
		} else if (k->type == CONF_STRLIST) {
			memcpy(&n, (unsigned char *)conf + k->count_off, sizeof(n));
			conf_free_strlist_(*(char ***)(void *)((unsigned char *)conf + k->off), n);
		}
	}
	conf_free_peers(conf->peers, conf->npeers);
	conf_free_prefix_map(conf->topic_prefix_map, conf->ntopic_prefix_map);
	free(conf->path);
	free(conf);
}
