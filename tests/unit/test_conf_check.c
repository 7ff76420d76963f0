/* test_conf_check.c - what conf_load decides beyond single values: the defaults (read from the
 * struct, field by field) and the derived ones, every cross-field check, the warnings, the file
 * checks with real files (identity_file mode 0644 vs 0600, TLS files), integer literals that
 * libconfig 1.5 would silently wrap, and the text rules (node ids, topic filters, keys). */
#include <sys/stat.h>

#include "test_conf.h"

#define KEY1 "\"ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\""
#define KEY2 "\"ed25519:PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=\""
#define BASE "node_id = \"n1\";\nbroker = { host = \"b.example\"; };\n"

static void test_defaults(void)
{
	struct tc_res r;
	const struct px_conf *c;

	tc_load(&r, BASE, false);
	tc_expect_ok(&r, "defaults");
	CHECK_EQ(r.errs.nwarnings, 0);
	c = r.conf;
	if (!c) {
		tc_done(&r);
		return;
	}
	CHECK(strcmp(c->path, r.path) == 0);
	CHECK(strcmp(c->node_id, "n1") == 0);
	CHECK(strcmp(c->state_dir, "/var/lib/mqseal") == 0);
	CHECK(strcmp(c->identity_file, "/var/lib/mqseal/identity.key") == 0);
	CHECK(c->user == NULL);
	CHECK_EQ(c->shutdown_grace_seconds, 5);
	CHECK(strcmp(c->listen.host, "127.0.0.1") == 0);
	CHECK_EQ(c->listen.port, 1883);
	CHECK(!c->listen.allow_remote);
	CHECK_EQ(c->listen.max_connections, 1024);
	CHECK_EQ(c->listen.connect_timeout_seconds, 10);
	CHECK_EQ(c->listen.max_packet_size, 1048576);
	CHECK(strcmp(c->broker.host, "b.example") == 0);
	CHECK_EQ(c->broker.port, 1883);
	CHECK_EQ(c->broker.connect_timeout_seconds, 10);
	CHECK(!c->broker.tls.enabled);
	CHECK(!c->broker.tls.ca_file && !c->broker.tls.ca_path && !c->broker.tls.cert_file);
	CHECK(!c->broker.tls.key_file && !c->broker.tls.server_name);
	CHECK(c->broker.tls.verify_hostname);
	CHECK(strcmp(c->keyex.topic_prefix, "mqseal") == 0);
	CHECK_EQ(c->keyex.interval_seconds, 3600);
	CHECK_EQ(c->keyex.activation_seconds, 10);
	CHECK_EQ(c->keyex.grace_seconds, 0);
	CHECK_EQ(c->keyex.max_skew_seconds, 60);
	CHECK(!c->keyex.client_id && !c->keyex.username && !c->keyex.password);
	CHECK_EQ(c->keyex.keepalive_seconds, 30);
	CHECK_EQ(c->keyex.revoke_seconds, 10);
	CHECK(c->keyex.presence);
	CHECK(c->npeers == 0 && c->topics.nplaintext == 0 && c->topics.ndeny == 0);
	CHECK_EQ(c->seal.padding, 16);
	CHECK_EQ(c->seal.hold_seconds, 5);
	CHECK_EQ(c->seal.retained_cache_kb, 16384);
	CHECK_EQ(c->seal.held_max_kb, 4096);
	CHECK_EQ(c->seal.held_max_messages, 1024);
	CHECK(c->metrics.enabled);
	CHECK(strcmp(c->metrics.host, "127.0.0.1") == 0);
	CHECK_EQ(c->metrics.port, 9883);
	CHECK(!c->metrics.allow_remote);
	CHECK_EQ(c->metrics.max_connections, 64);
	CHECK(!conf_all_plaintext(c));
	CHECK_EQ(c->log.level, CONF_LOG_INFO);
	CHECK_EQ(c->log.format, CONF_LOG_TEXT);
	tc_done(&r);
}

static void test_derived_defaults(void)
{
	struct tc_res r;

	tc_load(&r, "node_id = \"n1\";\nbroker = { host = \"b.example\"; tls = { enabled = true; }; };\n",
		false);
	CHECK(r.conf && r.conf->broker.port == 8883);
	tc_done(&r);
	tc_load(&r,
		"node_id = \"n1\";\nbroker = { host = \"b.example\"; port = 1883; tls = { enabled = true; }; "
		"};\n",
		false);
	CHECK(r.conf && r.conf->broker.port == 1883);
	tc_done(&r);
	tc_load(&r, BASE "state_dir = \"/srv/mq/\";\n", false);
	CHECK(r.conf && strcmp(r.conf->identity_file, "/srv/mq/identity.key") == 0);
	tc_done(&r);
	tc_load(&r, BASE "state_dir = \"/srv/mq\";\nidentity_file = \"/k\";\n", false);
	CHECK(r.conf && strcmp(r.conf->identity_file, "/k") == 0);
	tc_done(&r);
}

static void tc_expect_text(const char *text, unsigned line, const char *option, const char *msg)
{
	struct tc_res r;

	tc_load(&r, text, false);
	if (option)
		tc_expect_one(&r, line, option, msg, option);
	else
		tc_expect_ok(&r, text);
	tc_done(&r);
}

#define SELF	 "is where mqseal itself listens (listen.host, listen.port)"
#define NOT_LOOP "is not a loopback address; set "

static void test_cross(void)
{
	/* node_id among the peers */
	tc_expect_text(BASE "peers = (\n{ id = \"p1\"; public_key = " KEY1
			    "; },\n{ id = \"n1\"; public_key = " KEY2 "; }\n);\n",
		       5, "peers[1].id", "\"n1\" is this node's own node_id");
	/* duplicate peer id and key */
	tc_expect_text(BASE "peers = (\n{ id = \"p1\"; public_key = " KEY1
			    "; },\n{ id = \"p1\"; public_key = " KEY2 "; }\n);\n",
		       5, "peers[1].id", "duplicate peer id \"p1\" (also at line 4)");
	tc_expect_text(BASE "peers = (\n{ id = \"p1\"; public_key = " KEY1
			    "; },\n{ id = \"p2\"; public_key = " KEY1 "; }\n);\n",
		       5, "peers[1].public_key", "same public key as peer \"p1\" (line 4)");
	/* listen and broker on the same address (broker.host has no default: it is required) */
	tc_expect_text("node_id = \"n1\";\n", 0, "broker.host", "required option is missing");
	tc_expect_text("node_id = \"n1\";\nlisten = { port = 2000; };\nbroker = {\n host = \"127.0.0.1\";\n"
		       " port = 2000; };\n",
		       5, "broker.port", "broker \"127.0.0.1\" port 2000 " SELF);
	tc_expect_text("node_id = \"n1\";\nlisten = { host = \"0.0.0.0\"; allow_remote = true; };\n"
		       "broker = { host = \"LOCALHOST\"; };\nmetrics = { host = \"localhost\"; };\n",
		       3, "broker.host", "broker \"LOCALHOST\" port 1883 " SELF);
	tc_expect_text("node_id = \"n1\";\nbroker = { host = \"0.0.0.0\"; };\n", 2, "broker.host",
		       "broker \"0.0.0.0\" port 1883 " SELF);
	tc_expect_text("node_id = \"n1\";\nlisten = { port = 2000; };\nbroker = { port = 2000; host = "
		       "\"10.0.0.1\"; };\n",
		       0, NULL, NULL);
	tc_expect_text("node_id = \"n1\";\nlisten = { host = \"::\"; allow_remote = true; };\n"
		       "broker = { host = \"b.example\"; };\n",
		       0, NULL, NULL);
	/* metrics and listen ports */
	tc_expect_text(BASE "listen = { port = 9000; };\nmetrics = {\n port = 9000; };\n", 5, "metrics.port",
		       "metrics port 9000 is also listen.port on the same host");
	tc_expect_text(BASE "metrics = { port = 1883;\n host = \"127.0.0.2\"; };\n", 0, NULL, NULL);
	tc_expect_text(BASE "metrics = { port = 1883; enabled = false; };\n", 0, NULL, NULL);
	/* non-loopback addresses need allow_remote */
	tc_expect_text(BASE "listen = { host = \"10.0.0.5\"; };\n", 3, "listen.host",
		       "\"10.0.0.5\" " NOT_LOOP
		       "listen.allow_remote = true to accept connections from other hosts");
	tc_expect_text(BASE "listen = { host = \"::\"; };\n", 3, "listen.host",
		       "\"::\" " NOT_LOOP
		       "listen.allow_remote = true to accept connections from other hosts");
	tc_expect_text(BASE "listen = { host = \"10.0.0.5\"; allow_remote = true; };\n", 0, NULL, NULL);
	tc_expect_text(BASE "listen = { host = \"127.9.8.7\"; };\n", 0, NULL, NULL);
	tc_expect_text(BASE "listen = { host = \"localhost\"; };\n", 0, NULL, NULL);
	tc_expect_text(BASE "listen = { host = \"::ffff:127.0.0.1\"; };\n", 0, NULL, NULL);
	tc_expect_text(BASE "listen = { host = \"0:0:0:0:0:0:0:1\"; };\n", 0, NULL, NULL);
	tc_expect_text(BASE "listen = { host = \"128.0.0.1\"; };\n", 3, "listen.host",
		       "*" NOT_LOOP "listen.allow_remote = true to accept connections from other hosts");
	tc_expect_text(BASE "metrics = {\n host = \"192.168.1.2\"; };\n", 4, "metrics.host",
		       "\"192.168.1.2\" " NOT_LOOP
		       "metrics.allow_remote = true to accept connections from other hosts");
	tc_expect_text(BASE "metrics = { host = \"192.168.1.2\"; allow_remote = true; };\n", 0, NULL, NULL);
	tc_expect_text(BASE "metrics = { host = \"192.168.1.2\"; enabled = false; };\n", 0, NULL, NULL);
	/* cert_file and key_file: both or neither; password needs username */
	tc_expect_text("node_id = \"n1\";\nbroker = { host = \"b.example\";\n tls = { enabled = true;\n"
		       "  cert_file = \"/c\"; }; };\n",
		       4, "broker.tls.cert_file", "set without broker.tls.key_file (set both or neither)");
	tc_expect_text("node_id = \"n1\";\nbroker = { host = \"b.example\";\n tls = { enabled = true;\n"
		       "  key_file = \"/k\"; }; };\n",
		       4, "broker.tls.key_file", "set without broker.tls.cert_file (set both or neither)");
	tc_expect_text(BASE "keyex = {\n password = \"x\"; };\n", 4, "keyex.password",
		       "set without keyex.username");
	tc_expect_text(BASE "keyex = { username = \"u\"; password = \"\"; };\n", 0, NULL, NULL);
}

/* A rejected value is not checked again across options: one problem, not two. */
static void test_no_cascade(void)
{
	tc_expect_text("node_id = \"n1\";\nlisten = { port = 2000; };\nbroker = { port = 2000.0;\n"
		       " host = \"127.0.0.1\"; };\n", 3, "broker.port", "expected an integer");
	tc_expect_text(BASE "listen = { host = 5; };\n", 3, "listen.host", "expected a string");
	tc_expect_text(BASE "keyex = { username = \"\"; password = \"x\"; };\n", 3, "keyex.username",
		       "\"\" is 0 bytes long, allowed 1..65535");
}

static void tc_expect_warnings(const char *text, const char *const *want, size_t n)
{
	struct tc_res r;
	size_t i;

	tc_load(&r, text, false);
	tc_expect_ok(&r, text);
	CHECK_EQ(r.errs.nwarnings, n);
	for (i = 0; i < n && i < r.errs.nwarnings; i++) {
		char line[512];
		snprintf(line, sizeof(line), "%s:%s", r.path, want[i]);
		CHECK(strcmp(r.errs.warnings[i], line) == 0);
		if (strcmp(r.errs.warnings[i], line) != 0)
			fprintf(stderr, "  wanted warning %s\n  got %s\n", line, r.errs.warnings[i]);
	}
	tc_done(&r);
}

static void test_warnings(void)
{
	static const char *const keyex[] = {
		"4: keyex.interval_seconds: 30 is below 60: for tests and demos only",
		"5: keyex.grace_seconds: 600 keeps retired receive keys that long: weakens forward secrecy",
	};
	static const char *const tls_off[] = {"4: broker.tls.ca_file: ignored: broker.tls.enabled is false"};
	static const char *const no_verify[] = {
		"5: broker.tls.verify_hostname: false: any certificate a trusted CA signed is accepted, "
		"whatever host "
		"it names",
	};

	tc_expect_warnings(BASE "keyex = {\n interval_seconds = 30;\n grace_seconds = 600; };\n", keyex, 2);
	tc_expect_warnings(BASE "keyex = { interval_seconds = 60; grace_seconds = 0; };\n", NULL, 0);
	tc_expect_warnings(
		"node_id = \"n1\";\nbroker = { host = \"b.example\";\n tls = {\n  ca_file = \"/ca\";\n"
		"  verify_hostname = true; }; };\n",
		tls_off, 1);
	tc_expect_warnings(
		"node_id = \"n1\";\nbroker = { host = \"b.example\";\n tls = {\n  enabled = true;\n"
		"  verify_hostname = false; }; };\n",
		no_verify, 1);
	tc_expect_warnings("node_id = \"n1\";\nbroker = { host = \"b.example\"; tls = { verify_hostname = "
			   "false; }; };\n",
			   NULL, 0);
}

/* Settings that take protection away (issue 13, item 9): a warning each, at the setting. */
static void test_weakening(void)
{
	static const char *const all[] = {
		"5: topics.plaintext: \"#\" makes every topic plaintext: nothing is sealed",
		"6: seal.padding: 8 is below 16: sealed sizes tell the broker the payload sizes",
		"7: keyex.max_skew_seconds: 301 is above 300: a replayed old key announcement is accepted that "
		"much longer",
	};
	static const char *const plus[] = {
		"5: topics.plaintext: \"+/#\" makes every topic plaintext: nothing is sealed",
	};
	struct tc_res r;

	tc_expect_warnings(BASE "topics = { plaintext = [\n \"a/#\",\n \"#\" ]; };\nseal = { padding = 8; };\n"
			   "keyex = { max_skew_seconds = 301; };\n",
			   all, 3);
	tc_expect_warnings(BASE "topics = {\n plaintext = [ \"a/#\",\n \"+/#\" ]; };\n", plus, 1);
	/* The limits themselves are fine, and so are filters that leave some topic sealed. */
	tc_expect_warnings(BASE "topics = { plaintext = [ \"+\", \"+/+/#\", \"+/+\", \"a/#\" ]; };\n"
			   "seal = { padding = 16; };\nkeyex = { max_skew_seconds = 300; };\n",
			   NULL, 0);
	tc_load(&r, BASE "topics = { plaintext = [ \"x\", \"#\" ]; };\n", false);
	CHECK(r.conf && conf_all_plaintext(r.conf));
	tc_done(&r);
	tc_load(&r, BASE "topics = { plaintext = [ \"x/#\" ]; };\nmetrics = { max_connections = 5; };\n", false);
	CHECK(r.conf && !conf_all_plaintext(r.conf) && r.conf->metrics.max_connections == 5);
	tc_done(&r);
	tc_expect_text(BASE "metrics = { max_connections = 0; };\n", 3, "metrics.max_connections",
		       "0 is out of range 1..4096");
	CHECK(!conf_all_plaintext(NULL));
}

/* A state_dir (or its state file) that group or others can write: a warning with check_files. */
static void test_state_dir_mode(void)
{
	const char *key = tc_path("identity3.key");
	char dir[128], state[160], text[512], msg[700];
	struct tc_res r;

	snprintf(dir, sizeof(dir), "%s/state.d", tc_dir);
	snprintf(state, sizeof(state), "%s/state", dir);
	tc_write(key, "k\n");
	CHECK(chmod(key, 0600) == 0);
	CHECK(mkdir(dir, 0700) == 0);
	snprintf(text, sizeof(text), BASE "identity_file = \"%s\";\nstate_dir = \"%s\";\n", key, dir);
	tc_load(&r, text, true);
	tc_expect_ok(&r, "state_dir 0700");
	CHECK_EQ(r.errs.nwarnings, 0);
	tc_done(&r);
	CHECK(chmod(dir, 0770) == 0);
	tc_load(&r, text, true);
	snprintf(msg, sizeof(msg), "%s:4: state_dir: %s is mode 0770: group or others can rewrite the state file; "
		 "run chmod 700 %s", r.path, dir, dir);
	CHECK(r.n == 0 && r.errs.nwarnings == 1 && strcmp(r.errs.warnings[0], msg) == 0);
	tc_done(&r);
	tc_load(&r, text, false); /* without check_files nothing is looked at */
	CHECK(r.n == 0 && r.errs.nwarnings == 0);
	tc_done(&r);
	CHECK(chmod(dir, 0700) == 0);
	tc_write(state, "mqseal-state 1\n");
	CHECK(chmod(state, 0666) == 0);
	tc_load(&r, text, true);
	snprintf(msg, sizeof(msg), "%s:4: state_dir: %s/state is mode 0666: group or others can rewrite it; "
		 "run chmod 600 %s/state", r.path, dir, dir);
	CHECK(r.n == 0 && r.errs.nwarnings == 1 && strcmp(r.errs.warnings[0], msg) == 0);
	tc_done(&r);
	CHECK(unlink(state) == 0 && rmdir(dir) == 0);
}

/* identity_file with check_files: a real file, mode 0644 then 0600 (and 0400, and missing). */
static void test_identity_mode(void)
{
	const char *key = tc_path("identity.key");
	char text[512], msg[600];
	struct tc_res r;

	tc_write(key, "not a real key: conf only looks at the mode\n");
	snprintf(text, sizeof(text), BASE "\nidentity_file = \"%s\";\n", key);
	CHECK(chmod(key, 0644) == 0);
	tc_load(&r, text, true);
	snprintf(msg, sizeof(msg), "%s is mode 0644; run chmod 600 %s", key, key);
	tc_expect_one(&r, 4, "identity_file", msg, "mode 0644");
	tc_done(&r);
	CHECK(chmod(key, 0640) == 0);
	tc_load(&r, text, true);
	snprintf(msg, sizeof(msg), "%s is mode 0640; run chmod 600 %s", key, key);
	tc_expect_one(&r, 4, "identity_file", msg, "mode 0640");
	tc_done(&r);
	CHECK(chmod(key, 0600) == 0);
	tc_load(&r, text, true);
	tc_expect_ok(&r, "mode 0600");
	tc_done(&r);
	CHECK(chmod(key, 0400) == 0);
	tc_load(&r, text, true);
	tc_expect_ok(&r, "mode 0400");
	tc_done(&r);
	tc_load(&r, text, false); /* without check_files the mode is not looked at */
	tc_expect_ok(&r, "no check_files");
	tc_done(&r);
	snprintf(text, sizeof(text), BASE "state_dir = \"%s/none\";\n", tc_dir);
	tc_load(&r, text, true);
	/* a missing identity: the command that creates it */
	snprintf(msg, sizeof(msg), "%s/none/identity.key: No such file or directory; create it with: mqseal keygen "
		 "%s/none/identity.key", tc_dir, tc_dir);
	tc_expect_one(&r, 0, "identity_file", msg, "missing, derived from state_dir");
	tc_done(&r);
	snprintf(text, sizeof(text), BASE "identity_file = \"%s\";\n", tc_dir);
	tc_load(&r, text, true);
	snprintf(msg, sizeof(msg), "%s is not a regular file", tc_dir);
	tc_expect_one(&r, 3, "identity_file", msg, "a directory");
	tc_done(&r);
}

static void test_tls_files(void)
{
	const char *key = tc_path("identity2.key"), *ca = tc_path("ca.pem"), *ck = tc_path("client.key");
	char text[1024], msg[600];
	struct tc_res r;

	tc_write(key, "k\n");
	tc_write(ca, "ca\n");
	tc_write(ck, "ck\n");
	CHECK(chmod(key, 0600) == 0 && chmod(ck, 0600) == 0 && chmod(ca, 0644) == 0);
	snprintf(text, sizeof(text),
		 "node_id = \"n1\";\nidentity_file = \"%s\";\nbroker = { host = \"b.example\";\n tls = { "
		 "enabled = "
		 "true;\n  ca_file = \"%s\";\n  ca_path = \"%s\";\n  cert_file = \"%s\";\n  key_file = "
		 "\"%s\"; }; };\n",
		 key, ca, tc_dir, ca, ck);
	tc_load(&r, text, true);
	tc_expect_ok(&r, "readable TLS files");
	CHECK_EQ(r.errs.nwarnings, 0);
	tc_done(&r);
	CHECK(chmod(ck, 0644) == 0);
	tc_load(&r, text, true);
	snprintf(msg, sizeof(msg), "%s:8: broker.tls.key_file: %s is mode 0644; run chmod 600 %s", r.path, ck,
		 ck);
	CHECK(r.n == 0 && r.errs.nwarnings == 1 && strcmp(r.errs.warnings[0], msg) == 0);
	tc_done(&r);
	snprintf(text, sizeof(text),
		 "node_id = \"n1\";\nidentity_file = \"%s\";\nbroker = { host = \"b.example\";\n tls = { "
		 "enabled = "
		 "true;\n  ca_file = \"%s/missing.pem\";\n  ca_path = \"%s\"; }; };\n",
		 key, tc_dir, ca);
	tc_load(&r, text, true);
	CHECK_EQ(r.errs.count, 2);
	snprintf(msg, sizeof(msg), "%s/missing.pem: No such file or directory", tc_dir);
	CHECK(r.errs.count == 2 && tc_line_is(r.errs.lines[0], r.path, 5, "broker.tls.ca_file", msg));
	snprintf(msg, sizeof(msg), "%s is not a directory", ca);
	CHECK(r.errs.count == 2 && tc_line_is(r.errs.lines[1], r.path, 6, "broker.tls.ca_path", msg));
	tc_done(&r);
	if (geteuid() != 0) { /* root reads anything: access() cannot fail then */
		CHECK(chmod(ca, 0) == 0);
		snprintf(text, sizeof(text),
			 "node_id = \"n1\";\nidentity_file = \"%s\";\nbroker = { host = \"b.example\";\n tls "
			 "= { "
			 "enabled = true; ca_file = \"%s\"; }; };\n",
			 key, ca);
		tc_load(&r, text, true);
		snprintf(msg, sizeof(msg), "%s: Permission denied", ca);
		tc_expect_one(&r, 4, "broker.tls.ca_file", msg, "unreadable CA file");
		tc_done(&r);
		CHECK(chmod(ca, 0644) == 0);
	}
}

/* libconfig 1.5 reads 4294967297 as 1 and 3000000000 as -1294967296; conf must see the values
 * that were written. Digits inside strings and comments are left alone. */
static void test_integer_literals(void)
{
	struct tc_res r;

	tc_expect_text(BASE "listen = { port = 4294967297; };\n", 3, "listen.port",
		       "4294967297 is out of range 1..65535");
	tc_expect_text(BASE "seal = { retained_cache_kb = 3000000000; };\n", 3, "seal.retained_cache_kb",
		       "3000000000 is out of range 0..1048576");
	tc_expect_text(BASE "seal = { retained_cache_kb = -3000000000; };\n", 3, "seal.retained_cache_kb",
		       "-3000000000 is out of range 0..1048576");
	tc_expect_text(BASE "listen = { port = 0x100000001; };\n", 3, "listen.port",
		       "4294967297 is out of range 1..65535");
	tc_expect_text(BASE "listen = { max_packet_size = 0xFFFFFFFF; };\n", 3, "listen.max_packet_size",
		       "4294967295 is out of range 128..268435460");
	tc_expect_text(BASE "listen = { port = 4294967297L; };\n", 3, "listen.port",
		       "4294967297 is out of range 1..65535");
	/* a literal libconfig ends before a name starts: "3000000000port" is two tokens */
	tc_expect_text(BASE "listen = { max_connections = 3000000000port = 2000; };\n", 3,
		       "listen.max_connections", "3000000000 is out of range 1..1000000");
	tc_load(&r,
		"node_id = \"3000000000\"; # 4294967297 in a comment\n/* 4294967297 */ broker = { host = "
		"\"b.example\"; };\nlisten = { port = 0x10; max_connections = 2000L; max_packet_size = "
		"00000000000000000000000000000300; };\n"
		"keyex = { username = \"@include 4294967297 \\\"5000000000\\\"\"; };\n",
		false);
	tc_expect_ok(&r, "literals in strings and comments");
	if (r.conf) {
		CHECK(strcmp(r.conf->node_id, "3000000000") == 0);
		CHECK_EQ(r.conf->listen.port, 16);
		CHECK_EQ(r.conf->listen.max_connections, 2000);
		CHECK_EQ(r.conf->listen.max_packet_size, 300);
		CHECK(strcmp(r.conf->keyex.username, "@include 4294967297 \"5000000000\"") == 0);
	}
	tc_done(&r);
}

static void test_node_id_valid(void)
{
	static const char ok64[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

	CHECK(conf_node_id_valid("a"));
	CHECK(conf_node_id_valid("Gw-1.site_B"));
	CHECK(conf_node_id_valid(ok64));
	CHECK(!conf_node_id_valid(""));
	CHECK(!conf_node_id_valid(NULL));
	CHECK(!conf_node_id_valid("a b"));
	CHECK(!conf_node_id_valid("a/b"));
	CHECK(!conf_node_id_valid("\xc3\xa9"));
	{
		char too_long[66];
		memcpy(too_long, ok64, 64);
		too_long[64] = 'a';
		too_long[65] = '\0';
		CHECK(!conf_node_id_valid(too_long));
	}
}

static void tc_filter(const char *filter, bool ok)
{
	char text[256];
	struct tc_res r;

	snprintf(text, sizeof(text), BASE "topics = { deny = [ \"%s\" ]; };\n", filter);
	tc_load(&r, text, false);
	CHECK_EQ(r.n, ok ? 0 : 1);
	if (r.n != (ok ? 0u : 1u))
		fprintf(stderr, "  filter %s\n", filter), tc_print(&r);
	tc_done(&r);
}

static void tc_prefix(const char *topic, bool ok)
{
	char text[256];
	struct tc_res r;

	snprintf(text, sizeof(text), BASE "keyex = { topic_prefix = \"%s\"; };\n", topic);
	tc_load(&r, text, false);
	CHECK_EQ(r.n, ok ? 0 : 1);
	if (r.n != (ok ? 0u : 1u))
		fprintf(stderr, "  topic %s\n", topic), tc_print(&r);
	tc_done(&r);
}

/* MQTT 5 §4.7.1 (filters), §4.7.2 ('$'), §1.5.4 (UTF-8). */
static void test_topic_rules(void)
{
	static const char *const good_filters[] = {
		"#",	"+",  "a/#",	"+/+",		 "a/+/b",	  "/a",
		"a//b", "a/", "$SYS/#", "caf\xc3\xa9/+", "sport/tennis/#"};
	static const char *const bad_filters[] = {
		"",   "a#",	 "a/#/b", "#/a",	  "a+",	      "+a/b",  "a/b+",
		"##", "a/\\x01", "\xc3",  "\xed\xa0\x80", "\xc0\xaf", "a\\x7f"};
	static const char *const good_topics[] = {"mqseal", "site/a", "a.b-c_d", "caf\xc3\xa9"};
	static const char *const bad_topics[] = {"", "$mqseal", "/a", "a/", "a//b", "a/+", "a/#", "a\\x01"};
	char long_topic[66];
	size_t i;

	for (i = 0; i < sizeof(good_filters) / sizeof(good_filters[0]); i++)
		tc_filter(good_filters[i], true);
	for (i = 0; i < sizeof(bad_filters) / sizeof(bad_filters[0]); i++)
		tc_filter(bad_filters[i], false);
	for (i = 0; i < sizeof(good_topics) / sizeof(good_topics[0]); i++)
		tc_prefix(good_topics[i], true);
	for (i = 0; i < sizeof(bad_topics) / sizeof(bad_topics[0]); i++)
		tc_prefix(bad_topics[i], false);
	memset(long_topic, 'a', 65);
	long_topic[64] = '\0';
	tc_prefix(long_topic, true);
	long_topic[64] = 'a';
	long_topic[65] = '\0';
	tc_prefix(long_topic, false);
}

static void tc_key(const char *key, bool ok)
{
	char text[256];
	struct tc_res r;

	snprintf(text, sizeof(text), BASE "peers = ( { id = \"p1\"; public_key = \"%s\"; } );\n", key);
	tc_load(&r, text, false);
	CHECK_EQ(r.n, ok ? 0 : 1);
	if (r.n != (ok ? 0u : 1u))
		fprintf(stderr, "  key %s\n", key), tc_print(&r);
	tc_done(&r);
}

static void test_public_keys(void)
{
	/* RFC 8032 §7.1 TEST 1 and TEST 2 public keys, base64 */
	tc_key("ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", true);
	tc_key("ed25519:PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=", true);
	tc_key("ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURp=", false); /* non-zero unused bits */
	tc_key("ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo", false);  /* no padding */
	tc_key("ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo==", false);
	tc_key("ED25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", false);
	tc_key("ed25519:11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=", false); /* base64url */
	tc_key("x25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", false);
	tc_key("", false);
}

int main(void)
{
	tc_setup();
	test_defaults();
	test_derived_defaults();
	test_cross();
	test_no_cascade();
	test_warnings();
	test_weakening();
	test_state_dir_mode();
	test_identity_mode();
	test_tls_files();
	test_integer_literals();
	test_node_id_valid();
	test_topic_rules();
	test_public_keys();
	tc_cleanup();
	CHECK_DONE();
}
