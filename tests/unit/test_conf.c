/* test_conf.c - conf_load option by option, driven by a table with one row per option of the key
 * table (and a check that no option lacks a row): a good value lands in the configuration (read
 * back through conf_dump), the range boundaries are accepted, and a value of the wrong type, one
 * below the minimum, one above the maximum, and one that breaks the option's text rule are each
 * rejected with exactly "FILE:LINE: option: problem". Also: unknown options at every depth, a
 * missing required option, several problems reported together in file order, syntax errors. */
#include "test_conf.h"

enum tc_kind { K_INT, K_STR, K_BOOL, K_ENUM, K_LIST, K_PEERS, K_MAP, K_READY };

struct tc_opt {
	const char *name;
	enum tc_kind kind;
	long long min, max;  /* K_INT: the value range; K_STR: the length; lists: the entry count */
	const char *good;    /* a value, not the default, that loads */
	const char *wrong;   /* a value of the wrong type */
	const char *bad;     /* a value breaking the option's text rule, or NULL */
	const char *bad_at;  /* the option that error names, when not name itself */
	const char *bad_msg; /* its problem */
	unsigned good_warnings;
	const char *extra[5]; /* name, value pairs that the good value needs, NULL-terminated */
};

#define KEY1	  "\"ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\""
#define KEY2	  "\"ed25519:PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=\""
#define KEY3	  "\"ed25519:tTldBe6AhGBLSCooya377KPVn5dHPuP+Q3htRVEP3HQ=\""
#define NODE_RULE "is not a valid node id (1 to 64 of A-Z a-z 0-9 . _ -)"
#define HOST_RULE "\"a b\" is not a host name or IP address"
#define UTF8_RULE                                                                                            \
	"\"a\\x01\" is not UTF-8 text without control characters (MQTT 5 \xc2\xa7"                           \
	"1.5.4)"
#define TLS_ON "broker.tls.enabled", "true"

/* The rules and ranges here are written from the specification, not read from the key table. */
static const struct tc_opt tc_opts[] = {
	{"node_id", K_STR, 1, 64, "\"other.node_1\"", "5", "\"a b\"", NULL, "\"a b\" " NODE_RULE},
	{"state_dir", K_STR, 1, 4095, "\"/srv/mqseal\"", "true"},
	{"identity_file", K_STR, 1, 4095, "\"/etc/mqseal/id.key\"", "[ \"x\" ]"},
	{"user", K_STR, 1, 32, "\"mqseal\"", "0", "\"-x\"", NULL,
	 "\"-x\" is not a valid user name (letters, digits, . _ -)"},
	{"shutdown_grace_seconds", K_INT, 0, 300, "60", "\"5\""},
	{"listen.host", K_STR, 1, 253, "\"127.0.0.2\"", "127", "\"a b\"", NULL, HOST_RULE,
	 .extra = {"listen.allow_remote", "true"}},
	{"listen.port", K_INT, 1, 65535, "2000", "1883.0"},
	{"listen.allow_remote", K_BOOL, 0, 0, "true", "1"},
	{"listen.max_connections", K_INT, 1, 1000000, "10", "\"10\""},
	{"listen.connect_timeout_seconds", K_INT, 1, 3600, "30", "1e1"},
	{"listen.max_packet_size", K_INT, 128, 268435460, "65536", "\"1M\""},
	{"broker.host", K_STR, 1, 253, "\"b2.example\"", "{ a = 1; }", "\"a b\"", NULL, HOST_RULE},
	{"broker.port", K_INT, 1, 65535, "1885", "false"},
	{"broker.connect_timeout_seconds", K_INT, 1, 3600, "20", "2.5"},
	{"broker.tls.enabled", K_BOOL, 0, 0, "true", "\"yes\""},
	{"broker.tls.ca_file", K_STR, 1, 4095, "\"/etc/ca.pem\"", "1", .extra = {TLS_ON}},
	{"broker.tls.ca_path", K_STR, 1, 4095, "\"/etc/ssl/certs\"", "1", .extra = {TLS_ON}},
	{"broker.tls.cert_file", K_STR, 1, 4095, "\"/c.pem\"", "1",
	 .extra = {TLS_ON, "broker.tls.key_file", "\"/k.pem\""}},
	{"broker.tls.key_file", K_STR, 1, 4095, "\"/k.pem\"", "1",
	 .extra = {TLS_ON, "broker.tls.cert_file", "\"/c.pem\""}},
	{"broker.tls.verify_hostname", K_BOOL, 0, 0, "false", "0"},
	{"broker.tls.server_name", K_STR, 1, 253, "\"broker.example\"", "1", "\"a b\"", NULL, HOST_RULE,
	 .extra = {TLS_ON}},
	{"keyex.topic_prefix", K_STR, 1, 64, "\"site/a\"", "1", "\"a/+\"", NULL,
	 "\"a/+\" is not a valid topic: '+' and '#' are wildcards, not allowed in a topic name (MQTT 5 "
	 "\xc2\xa7"
	 "4.7.1)"},
	{"keyex.interval_seconds", K_INT, 1, 86400, "7200", "\"1h\""},
	{"keyex.activation_seconds", K_INT, 0, 60, "30", "3.0"},
	{"keyex.grace_seconds", K_INT, 0, 604800, "3600", "true", .good_warnings = 1},
	{"keyex.max_skew_seconds", K_INT, 1, 3600, "120", "[ 1 ]"},
	{"keyex.client_id", K_STR, 1, 64, "\"kx-1\"", "1", "\"a\\x01\"", NULL, UTF8_RULE},
	{"keyex.username", K_STR, 1, 65535, "\"user\"", "1", "\"a\\x01\"", NULL, UTF8_RULE},
	{"keyex.password", K_STR, 0, 65535, "\"s3cret\"", "1", .extra = {"keyex.username", "\"u\""}},
	{"keyex.keepalive_seconds", K_INT, 5, 3600, "60", "\"60\""},
	{"keyex.revoke_seconds", K_INT, 1, 300, "30", "\"10\""},
	{"keyex.presence", K_BOOL, 0, 0, "false", "\"no\""},
	{"peers", K_PEERS, 0, 256, "( { id = \"p1\"; public_key = " KEY1 "; } )", "\"p1\"",
	 "( { id = \"p1\"; public_key = \"ed25519:AAAA\"; } )", "peers[0].public_key",
	 "\"ed25519:AAAA\" is not \"ed25519:\" followed by 44 base64 characters (a 32-byte key, canonical "
	 "padding)"},
	{"topics.plaintext", K_LIST, 0, 1024, "[ \"a/+/b\", \"c/#\" ]", "\"a/#\"", "[ \"ok\", \"a/#/b\" ]",
	 "topics.plaintext[1]",
	 "\"a/#/b\" is not a valid topic filter: '#' must be the whole last level (MQTT 5 \xc2\xa7"
	 "4.7.1.2)"},
	{"topics.deny", K_LIST, 0, 1024, "( \"x/+\" )", "{ }", "[ \"a+\" ]", "topics.deny[0]",
	 "\"a+\" is not a valid topic filter: '+' must be a whole level (MQTT 5 \xc2\xa7"
	 "4.7.1.3)"},
	{"topic_prefix_map", K_MAP, 0, 64, "( { local = \"\"; canonical = \"site1/\"; } )", "\"site1/\"",
	 "( { local = \"a/+/\"; canonical = \"b/\"; } )", "topic_prefix_map[0].local",
	 "\"a/+/\" is not a valid topic prefix: '+' and '#' are wildcards, not allowed in a topic name (MQTT 5 "
	 "\xc2\xa7"
	 "4.7.1)"},
	{"seal.padding", K_INT, 1, 256, "32", "16.0"},
	{"seal.hold_seconds", K_INT, 0, 3600, "10", "true"},
	{"seal.retained_cache_kb", K_INT, 0, 1048576, "1024", "\"1M\""},
	{"seal.held_max_kb", K_INT, 0, 1048576, "512", "\"4M\""},
	{"seal.held_max_messages", K_INT, 0, 1000000, "64", "1.5"},
	{"metrics.enabled", K_BOOL, 0, 0, "false", "\"false\""},
	{"metrics.host", K_STR, 1, 253, "\"::1\"", "1", "\"a b\"", NULL, HOST_RULE,
	 .extra = {"metrics.allow_remote", "true"}},
	{"metrics.port", K_INT, 1, 65535, "9999", "9883.5"},
	{"metrics.allow_remote", K_BOOL, 0, 0, "true", "\"true\""},
	{"metrics.max_connections", K_INT, 1, 4096, "8", "\"64\""},
	{"metrics.peer_series_max", K_INT, 0, 100000, "1000", "\"64\""},
	{"readiness.ready_when", K_READY, 0, 0, "\"any\"", "true", "\"some\"", NULL,
	 "\"some\" is not \"all\", \"any\" or a number of peers 0..65535"},
	{"log.level", K_ENUM, 0, 0, "\"debug\"", "3", "\"verbose\"", NULL,
	 "\"verbose\" is not one of error, warn, info, debug"},
	{"log.format", K_ENUM, 0, 0, "\"json\"", "1", "\"JSON\"", NULL, "\"JSON\" is not one of text, json"},
};

static const size_t tc_nopts = sizeof(tc_opts) / sizeof(tc_opts[0]);

static const char *tc_wrong_msg(enum tc_kind kind)
{
	switch (kind) {
	case K_INT:
		return "expected an integer";
	case K_BOOL:
		return "expected true or false";
	case K_LIST:
		return "expected a list of strings";
	case K_PEERS:
		return "expected a list of peer groups ( { ... }, ... )";
	case K_MAP:
		return "expected a list of groups ( { local = ...; canonical = ...; }, ... )";
	case K_READY:
		return "expected \"all\", \"any\" or a number of peers";
	default:
		return "expected a string";
	}
}

/* Loads the base configuration with name = value (plus the case's extras when with_extra) and
 * returns the line of name. The base sets what every case needs: node_id, and a broker and
 * listen address that differ whatever single option a case changes. */
static unsigned tc_load_case(struct tc_res *r, const struct tc_opt *o, const char *value, bool with_extra)
{
	struct tc_kv kv[TC_MAX_KV] = {{"node_id", "\"n1\"", 0},
				      {"broker.host", "\"broker.example\"", 0},
				      {"listen.port", "1884", 0}};
	size_t n = 3, i;
	unsigned line = 0;
	char *text;

	for (i = 0; with_extra && o->extra[i]; i += 2)
		tc_kv_set(kv, &n, o->extra[i], o->extra[i + 1]);
	tc_kv_set(kv, &n, o->name, value);
	text = tc_emit(kv, n);
	for (i = 0; i < n; i++)
		if (strcmp(kv[i].name, o->name) == 0)
			line = kv[i].line;
	tc_load(r, text, false);
	free(text);
	return line;
}

/* The configuration as conf_dump prints it, read back by libconfig: value of option name must
 * equal what the case file set (keyex.password prints masked). */
static void tc_check_dumped(const struct tc_res *r, const char *name, const char *value)
{
	config_t dumped, given;
	char *dump = conf_dump(r->conf), *text = NULL;
	size_t tn;

	CHECK(dump != NULL);
	if (!dump)
		return;
	tn = strlen("v = ;\n") + strlen(value) + 1;
	text = malloc(tn);
	snprintf(text, tn, "v = %s;\n", strcmp(name, "keyex.password") == 0 ? "\"********\"" : value);
	tc_parse(&dumped, dump);
	tc_parse(&given, text);
	if (!tc_same(config_lookup(&dumped, name), config_lookup(&given, "v"))) {
		CHECK(0);
		fprintf(stderr, "  %s = %s did not come back from conf_dump\n", name, value);
	}
	config_destroy(&dumped);
	config_destroy(&given);
	free(text);
	free(dump);
}

static void tc_good(const struct tc_opt *o, const char *value, unsigned warnings)
{
	struct tc_res r;

	tc_load_case(&r, o, value, true);
	tc_expect_ok(&r, o->name);
	if (r.conf)
		tc_check_dumped(&r, o->name, value);
	CHECK_EQ(r.errs.nwarnings, warnings);
	if (r.errs.nwarnings != warnings)
		tc_print(&r);
	tc_done(&r);
}

static void tc_bad(const struct tc_opt *o, const char *value, const char *at, const char *msg,
		   const char *what)
{
	struct tc_res r;
	unsigned line = tc_load_case(&r, o, value, false);

	tc_expect_one(&r, line, at ? at : o->name, msg, what);
	tc_done(&r);
}

/* A value text of n entries ("[ "a", "a", ... ]" or peers) or of n bytes ("aaa..."). */
static char *tc_big(enum tc_kind kind, long long n)
{
	struct tc_text t = {0};
	long long i;

	tc_cat(&t, kind == K_STR ? "\"" : kind == K_LIST ? "[" : "(");
	for (i = 0; i < n; i++) {
		if (kind == K_STR)
			tc_cat(&t, "a");
		else if (kind == K_LIST)
			tc_cat(&t, "%s\"t/%lld\"", i ? ", " : "", i);
		else if (kind == K_MAP)
			tc_cat(&t, "%s{ local = \"l%lld/\"; canonical = \"c/\"; }", i ? ", " : "", i);
		else
			tc_cat(&t, "%s{ id = \"p%lld\"; public_key = \"ed25519:%042lldA=\"; }", i ? ", " : "",
			       i, i);
	}
	tc_cat(&t, kind == K_STR ? "\"" : kind == K_LIST ? "]" : ")");
	return t.buf;
}

static void tc_ranges(const struct tc_opt *o)
{
	char v[64], msg[128], *big;

	if (o->kind == K_INT) {
		snprintf(v, sizeof(v), "%lld", o->min);
		/* The ends of these ranges are allowed but weaken protection: a warning. */
		tc_good(o, v, 0u + (strcmp(o->name, "keyex.interval_seconds") == 0) +
				      (strcmp(o->name, "seal.padding") == 0));
		snprintf(v, sizeof(v), "%lld", o->max);
		tc_good(o, v, 0u + (strcmp(o->name, "keyex.grace_seconds") == 0) +
				      (strcmp(o->name, "keyex.max_skew_seconds") == 0));
		snprintf(v, sizeof(v), "%lld", o->min - 1);
		snprintf(msg, sizeof(msg), "%lld is out of range %lld..%lld", o->min - 1, o->min, o->max);
		tc_bad(o, v, NULL, msg, "below min");
		snprintf(v, sizeof(v), "%lld", o->max + 1);
		snprintf(msg, sizeof(msg), "%lld is out of range %lld..%lld", o->max + 1, o->min, o->max);
		tc_bad(o, v, NULL, msg, "above max");
	} else if (o->kind == K_STR) {
		big = tc_big(K_STR, o->max);
		tc_good(o, big, 0);
		free(big);
		if (o->min > 0) {
			snprintf(msg, sizeof(msg), "\"\" is 0 bytes long, allowed %lld..%lld", o->min,
				 o->max);
			tc_bad(o, "\"\"", NULL, msg, "below min");
		}
		big = tc_big(K_STR, o->max + 1);
		snprintf(msg, sizeof(msg), "* is %lld bytes long, allowed %lld..%lld", o->max + 1, o->min,
			 o->max);
		tc_bad(o, big, NULL, msg, "above max");
		free(big);
	} else if (o->kind == K_LIST || o->kind == K_PEERS || o->kind == K_MAP) {
		big = tc_big(o->kind, o->max);
		tc_good(o, big, 0);
		free(big);
		big = tc_big(o->kind, o->max + 1);
		snprintf(msg, sizeof(msg), "%lld entries, at most %lld allowed", o->max + 1, o->max);
		tc_bad(o, big, NULL, msg, "above max");
		free(big);
	}
}

static void test_every_option(void)
{
	size_t i, k;

	/* Every option of the key table has a row here, and every row is an option. */
	for (k = 0; conf_option_name(k); k++) {
		for (i = 0; i < tc_nopts && strcmp(tc_opts[i].name, conf_option_name(k)) != 0; i++)
			;
		CHECK(i < tc_nopts);
		if (i == tc_nopts)
			fprintf(stderr, "  option %s has no test row\n", conf_option_name(k));
		CHECK(conf_option_help(k) != NULL && strlen(conf_option_help(k)) > 10);
	}
	CHECK_EQ(k, tc_nopts);
	for (i = 0; i < tc_nopts; i++) {
		const struct tc_opt *o = &tc_opts[i];
		tc_good(o, o->good, o->good_warnings);
		tc_bad(o, o->wrong, NULL, tc_wrong_msg(o->kind), "wrong type");
		if (o->bad)
			tc_bad(o, o->bad, o->bad_at, o->bad_msg, "text rule");
		tc_ranges(o);
	}
}

static void tc_expect_unknown_msg(const char *text, unsigned line, const char *option, const char *msg)
{
	struct tc_res r;

	tc_load(&r, text, false);
	tc_expect_one(&r, line, option, msg, option);
	tc_done(&r);
}

static void tc_expect_unknown(const char *text, unsigned line, const char *option)
{
	tc_expect_unknown_msg(text, line, option, "unknown option");
}

#define BASE "node_id = \"n1\";\nbroker = { host = \"b.example\"; };\n"

static void test_unknown(void)
{
	/* "did you mean": the nearest option or group within one edit (two for names over 4 bytes) */
	tc_expect_unknown_msg(BASE "nodeid = \"x\";\n", 3, "nodeid", "unknown option; did you mean node_id?");
	tc_expect_unknown_msg(BASE "listen = {\n  port = 2000;\n  prot = 1;\n};\n", 5, "listen.prot",
			      "unknown option; did you mean listen.port?");
	tc_expect_unknown_msg(BASE "lisen = { port = 2000; };\n", 3, "lisen", "unknown option; did you mean listen?");
	tc_expect_unknown_msg(BASE "keyex = { intervall_seconds = 60; };\n", 3, "keyex.intervall_seconds",
			      "unknown option; did you mean keyex.interval_seconds?");
	tc_expect_unknown_msg(BASE "peers = ( { id = \"p1\"; public_key = " KEY1 "; publsh = ( \"a\" ); } );\n", 3,
			      "peers[0].publsh", "unknown option; did you mean publish?");
	tc_expect_unknown(BASE "frobnicate = 1;\n", 3, "frobnicate"); /* nothing close: no guess */
	tc_expect_unknown("node_id = \"n1\";\nbroker = {\n host = \"b.example\";\n tls = { enabled = false;\n"
			  "  ca = \"x\"; };\n};\n",
			  5, "broker.tls.ca");
	tc_expect_unknown(BASE "peers = (\n { id = \"p1\"; public_key = " KEY1 ";\n   name = \"x\"; }\n);\n",
			  5, "peers[0].name");
	tc_expect_unknown(BASE "extra = { a = 1; };\n", 3, "extra");
	tc_expect_unknown(BASE "seal = { padding = 16; sub = { a = 1; }; };\n", 3, "seal.sub");
}

static void test_group_types(void)
{
	struct tc_res r;

	tc_load(&r, BASE "listen = 5;\n", false);
	tc_expect_one(&r, 3, "listen", "expected a group { ... }", "group as int");
	tc_done(&r);
	tc_load(&r, BASE "log = ( \"debug\" );\n", false);
	tc_expect_one(&r, 3, "log", "expected a group { ... }", "group as list");
	tc_done(&r);
	tc_load(&r, BASE "peers = ( 5 );\n", false);
	tc_expect_one(&r, 3, "peers[0]", "expected a group { id = \"...\"; public_key = \"...\"; }",
		      "peer as int");
	tc_done(&r);
	tc_load(&r, BASE "peers = ( { id = \"p1\"; } );\n", false);
	tc_expect_one(&r, 3, "peers[0].public_key", "required option is missing", "peer without key");
	tc_done(&r);
	tc_load(&r, BASE "topics = { plaintext = ( \"a\", 5 ); };\n", false);
	tc_expect_one(&r, 3, "topics.plaintext[1]", "expected a string", "list element");
	tc_done(&r);
	tc_load(&r, BASE "peers = [ ];\ntopics = { deny = ( ); };\n", false);
	tc_expect_ok(&r, "empty lists in both spellings");
	tc_done(&r);
}

/* A peer's publish list (R6): kept as given, absent vs empty told apart, each entry a topic
 * filter, and it survives conf_dump. */
static void test_peer_publish(void)
{
	struct tc_res r, back;
	char *dump;

	tc_load(&r,
		BASE "peers = (\n { id = \"p1\"; public_key = " KEY1 "; publish = [ \"sensors/p1/#\", \"status/+\" ]; },\n"
		     " { id = \"p2\"; public_key = " KEY2 "; publish = [ ]; },\n"
		     " { id = \"p3\"; public_key = " KEY3 "; }\n);\n",
		false);
	tc_expect_ok(&r, "publish lists");
	CHECK(r.conf && r.conf->npeers == 3);
	if (r.conf && r.conf->npeers == 3) {
		const struct conf_peer *p = r.conf->peers;
		CHECK(p[0].has_publish && p[0].npublish == 2);
		CHECK(p[0].npublish == 2 && strcmp(p[0].publish[0], "sensors/p1/#") == 0 &&
		      strcmp(p[0].publish[1], "status/+") == 0);
		CHECK(p[1].has_publish && p[1].npublish == 0);
		CHECK(!p[2].has_publish && p[2].npublish == 0 && !p[2].publish);
		dump = conf_dump(r.conf);
		CHECK(dump != NULL);
		if (dump) {
			tc_load(&back, dump, false);
			tc_expect_ok(&back, "dumped publish lists load again");
			CHECK(back.conf && back.conf->npeers == 3 && back.conf->peers[0].npublish == 2 &&
			      back.conf->peers[1].has_publish && back.conf->peers[1].npublish == 0 &&
			      !back.conf->peers[2].has_publish);
			if (back.conf && back.conf->npeers == 3 && back.conf->peers[0].npublish == 2)
				CHECK(strcmp(back.conf->peers[0].publish[1], "status/+") == 0);
			tc_done(&back);
			free(dump);
		}
	}
	tc_done(&r);
	tc_load(&r, BASE "peers = ( { id = \"p1\"; public_key = " KEY1 "; publish = [ \"ok/#\", \"a/#/b\" ]; } );\n",
		false);
	tc_expect_one(&r, 3, "peers[0].publish[1]",
		      "\"a/#/b\" is not a valid topic filter: '#' must be the whole last level (MQTT 5 §4.7.1.2)",
		      "bad filter in a publish list");
	tc_done(&r);
	tc_load(&r, BASE "peers = ( { id = \"p1\"; public_key = " KEY1 "; publish = \"ok/#\"; } );\n", false);
	tc_expect_one(&r, 3, "peers[0].publish", "expected a list of strings", "publish as a string");
	tc_done(&r);
	tc_load(&r, BASE "peers = ( { id = \"p1\"; public_key = " KEY1 "; publish = ( \"a\", 5 ); } );\n", false);
	tc_expect_one(&r, 3, "peers[0].publish[1]", "expected a string", "publish entry as an int");
	tc_done(&r);
}

/* topic_prefix_map (R24): rules kept in order, empty prefixes allowed, each rule's problems
 * named by member, and the map survives conf_dump. */
static void test_prefix_map(void)
{
	struct tc_res r, back;
	char *dump;

	tc_load(&r,
		BASE "topic_prefix_map = (\n { local = \"\"; canonical = \"site1/\"; },\n"
		     " { local = \"remote/x/\"; canonical = \"\"; }\n);\n",
		false);
	tc_expect_ok(&r, "prefix map");
	CHECK(r.conf && r.conf->ntopic_prefix_map == 2);
	if (r.conf && r.conf->ntopic_prefix_map == 2) {
		const struct conf_prefix_map *m = r.conf->topic_prefix_map;
		CHECK(strcmp(m[0].local, "") == 0 && strcmp(m[0].canonical, "site1/") == 0 && m[0].line == 4);
		CHECK(strcmp(m[1].local, "remote/x/") == 0 && strcmp(m[1].canonical, "") == 0 && m[1].line == 5);
		dump = conf_dump(r.conf);
		CHECK(dump != NULL);
		if (dump) {
			tc_load(&back, dump, false);
			tc_expect_ok(&back, "dumped prefix map loads again");
			CHECK(back.conf && back.conf->ntopic_prefix_map == 2);
			if (back.conf && back.conf->ntopic_prefix_map == 2)
				CHECK(strcmp(back.conf->topic_prefix_map[1].local, "remote/x/") == 0 &&
				      strcmp(back.conf->topic_prefix_map[0].canonical, "site1/") == 0);
			tc_done(&back);
			free(dump);
		}
	}
	tc_done(&r);
	tc_load(&r, BASE "topic_prefix_map = (\n { local = \"a/\"; canonical = \"b/\"; },\n"
			 " { local = \"a/\"; canonical = \"c/\"; }\n);\n", false);
	tc_expect_one(&r, 5, "topic_prefix_map[1].local", "duplicate local prefix \"a/\" (also at line 4)",
		      "duplicate local prefix");
	tc_done(&r);
	tc_load(&r, BASE "topic_prefix_map = ( { local = \"a/\"; canonical = \"a/\"; } );\n", false);
	tc_expect_one(&r, 3, "topic_prefix_map[0].canonical",
		      "\"a/\" is the same as local: the rule would change nothing", "rule without effect");
	tc_done(&r);
	tc_load(&r, BASE "topic_prefix_map = ( { local = \"a/\"; } );\n", false);
	tc_expect_one(&r, 3, "topic_prefix_map[0].canonical", "required option is missing", "no canonical");
	tc_done(&r);
	tc_load(&r, BASE "topic_prefix_map = ( { local = \"a/\"; canonical = \"$SYS/\"; } );\n", false);
	tc_expect_one(&r, 3, "topic_prefix_map[0].canonical",
		      "\"$SYS/\" is not a valid topic prefix: topics starting with '$' belong to the broker (MQTT 5 "
		      "\xc2\xa7"
		      "4.7.2)",
		      "$ prefix");
	tc_done(&r);
	tc_load(&r, BASE "topic_prefix_map = ( { local = \"a/\"; canonical = 5; } );\n", false);
	tc_expect_one(&r, 3, "topic_prefix_map[0].canonical", "expected a string", "canonical as an int");
	tc_done(&r);
	tc_load(&r, BASE "topic_prefix_map = ( { local = \"a/\"; canonical = \"b/\"; mount = \"x\"; } );\n", false);
	tc_expect_one(&r, 3, "topic_prefix_map[0].mount", "unknown option", "unknown member");
	tc_done(&r);
	tc_load(&r, BASE "topic_prefix_map = ( \"a/\" );\n", false);
	tc_expect_one(&r, 3, "topic_prefix_map[0]", "expected a group { local = \"...\"; canonical = \"...\"; }",
		      "rule as a string");
	tc_done(&r);
}

static void test_missing_required(void)
{
	struct tc_res r;

	tc_load(&r, "broker = { host = \"b.example\"; };\n", false);
	tc_expect_one(&r, 0, "node_id", "required option is missing", "missing node_id");
	tc_done(&r);
	tc_load(&r, "", false);
	CHECK(r.errs.count >= 1 &&
	      tc_line_is(r.errs.lines[0], r.path, 0, "node_id", "required option is missing"));
	tc_done(&r);
}

/* Problems found by different passes (per setting, cross-field, missing) come out in file order,
 * the ones about no line last. */
static void test_order(void)
{
	static const char *const want[][3] = {
		{"2", "peers[0].id", "\"n1\" is this node's own node_id"},
		{"3", "listen.port", "0 is out of range 1..65535"},
		{"3", "listen.host",
		 "\"10.1.1.1\" is not a loopback address; set listen.allow_remote = true to "
		 "accept connections from other hosts"},
		{"4", "keyex.password", "set without keyex.username"},
		{"5", "bogus", "unknown option"},
		{"6", "log.level", "expected a string"},
		{"0", "node_id", "required option is missing"},
	};
	struct tc_res r;
	size_t i, n = sizeof(want) / sizeof(want[0]);

	tc_load(&r,
		"broker = { host = \"b.example\"; };\npeers = ( { id = \"n1\"; public_key = " KEY1 "; } );\n"
		"listen = { port = 0; host = \"10.1.1.1\"; };\nkeyex = { password = \"x\"; };\nbogus = 1;\n"
		"log = { level = 1; };\nnode_id = \"n1\";\n",
		false);
	CHECK_EQ(r.errs.count, n - 1);
	for (i = 0; i + 1 < n && i < r.errs.count; i++)
		CHECK(tc_line_is(r.errs.lines[i], r.path, (unsigned)atoi(want[i][0]), want[i][1],
				 want[i][2]));
	tc_done(&r);
	tc_load(&r, "broker = { host = \"b.example\"; };\nlisten = { port = 0; };\nbogus = 1;\n", false);
	CHECK_EQ(r.errs.count, 3);
	if (r.errs.count == 3) {
		CHECK(tc_line_is(r.errs.lines[0], r.path, 2, "listen.port", "0 is out of range 1..65535"));
		CHECK(tc_line_is(r.errs.lines[1], r.path, 3, "bogus", "unknown option"));
		CHECK(tc_line_is(r.errs.lines[2], r.path, 0, want[n - 1][1], want[n - 1][2]));
	}
	tc_done(&r);
}

static void tc_expect_syntax(const char *text, size_t len, unsigned line, const char *msg)
{
	struct tc_res r;
	char prefix[300];
	const char *path = tc_path("syntax.conf");
	bool ok;

	tc_write_n(path, text, len);
	tc_load_file(&r, path, false);
	snprintf(prefix, sizeof(prefix), "%s:%u: syntax error: ", path, line);
	ok = r.errs.count == 1 && strncmp(r.errs.lines[0], prefix, strlen(prefix)) == 0 &&
	     (!msg || strcmp(r.errs.lines[0] + strlen(prefix), msg) == 0);
	CHECK(ok);
	if (!ok)
		fprintf(stderr, "  wanted %s%s\n", prefix, msg ? msg : "..."), tc_print(&r);
	tc_done(&r);
}

/* A text literal and its length (which counts embedded NUL bytes). */
#define SYN(text) text, sizeof(text) - 1

static void test_syntax(void)
{
	/* one error, and nothing about the rest of the file (bogus, the missing node_id) */
	/* libconfig's own words ("syntax error", "duplicate setting name") become what is wrong, near
	 * what: the cause found in the text, and the line */
	tc_expect_syntax(SYN("bogus = 1;\nlisten = {\n  port = 1\n"), 4,
			 "the file ends inside the '{' opened at line 2 (is a '}' missing?), at the end of the file");
	tc_expect_syntax(SYN("node_id = \"a\";\nnode_id = \"b\";\n"), 2,
			 "node_id is set twice (first at line 1), near 'node_id = \"b\";'");
	tc_expect_syntax(SYN("listen = { host = \"a\"; };\nbroker = {\n host = \"b\";\n port = 1;\n host = \"c\";\n};\n"), 5,
			 "broker.host is set twice (first at line 3), near 'host = \"c\";'");
	tc_expect_syntax(SYN("a = 1;\nb = [ 1, \"x\" ];\n"), 2,
			 "an array [ ... ] holds values of one type (a list ( ... ) may mix them), near 'b = [ 1, \"x\" ];'");
	tc_expect_syntax(SYN("node_id = \"a;\nstate_dir = \"/x\";\n"), 1,
			 "a string runs on past the end of this line (is a closing \" missing?), near 'node_id = \"a;'");
	tc_expect_syntax(SYN("peers = (\n { id = \"x\"; }\n { id = \"y\"; }\n);\n"), 3,
			 "a ',' is missing between two elements of the list opened at line 1, near '{ id = \"y\"; }'");
	tc_expect_syntax(SYN("listen = { port = 1 );\n"), 1,
			 "')' does not close the '{' opened at line 1, near 'listen = { port = 1 );'");
	tc_expect_syntax(SYN("a = 1;\n}\n"), 2, "'}' closes nothing that is open, near '}'");
	tc_expect_syntax(SYN("a = 1;\nb = = 2;\n"), 2,
			 "unexpected text (a setting is 'name = value;', a group '{ ... }'), near 'b = = 2;'");
	tc_expect_syntax(SYN("node_id = \"a\";\n\n@include \"/etc/passwd\"\n"), 3,
			 "@include is not supported: keep the configuration in one file");
	tc_expect_syntax(SYN("node_id = \"a\";\nlisten = { port = 99999999999999999999; };\n"), 2,
			 "integer 99999999999999999999 does not fit in 64 bits");
	tc_expect_syntax(SYN("node_id = \"a\";\nlisten = { port = 0x8000000000000000; };\n"), 2,
			 "integer 0x8000000000000000 does not fit in 64 bits");
	tc_expect_syntax(SYN("node_id = \"a\";\nlisten = { port = 9223372036854775808L; };\n"), 2,
			 "integer 9223372036854775808L does not fit in 64 bits");
	tc_expect_syntax(SYN("node_id = \"a\0b\";\n"), 1, "NUL byte in the file");
	tc_expect_syntax(SYN("node_id = \"a\\x00b\";\n"), 1, "\\x00 (a NUL byte) in a string");
}

static void test_files(void)
{
	struct tc_res r;
	char msg[300];

	tc_load_file(&r, "/nonexistent/mqseal.conf", false);
	CHECK(r.errs.count == 1 &&
	      strcmp(r.errs.lines[0], "/nonexistent/mqseal.conf: cannot open: No such file or directory") ==
		      0);
	tc_done(&r);
	tc_load_file(&r, tc_dir, false);
	snprintf(msg, sizeof(msg), "%s: cannot read: is a directory", tc_dir);
	CHECK(r.errs.count == 1 && strcmp(r.errs.lines[0], msg) == 0);
	tc_done(&r);
}

#define PEERS2                                                                                               \
	"peers = ( { id = \"p1\"; public_key = " KEY1 "; }, { id = \"p2\"; public_key = " KEY2 "; } );\n"

/* readiness.ready_when: a word or a number, bare or quoted; a number the peers cannot reach is
 * an error at its line; the dump writes it back as it reads. */
static void test_readiness(void)
{
	struct tc_res r;
	char *dump;

	tc_load(&r, BASE PEERS2, false);
	tc_expect_ok(&r, "ready_when default");
	CHECK(r.conf && r.conf->readiness.ready_when == CONF_READY_ALL && conf_ready_need(r.conf) == 2);
	tc_done(&r);
	tc_load(&r, BASE PEERS2 "readiness = { ready_when = \"any\"; };\n", false);
	CHECK(r.conf && conf_ready_need(r.conf) == 1);
	tc_done(&r);
	tc_load(&r, BASE "readiness = { ready_when = \"any\"; };\n", false);
	CHECK(r.conf && conf_ready_need(r.conf) == 0); /* no peers: nothing to wait for */
	tc_done(&r);
	tc_load(&r, BASE PEERS2 "readiness = {\n ready_when = \"2\";\n};\n", false);
	CHECK(r.conf && conf_ready_need(r.conf) == 2);
	dump = r.conf ? conf_dump(r.conf) : NULL;
	CHECK(dump && strstr(dump, "ready_when = 2;\n"));
	free(dump);
	tc_done(&r);
	tc_load(&r, BASE PEERS2 "readiness = {\n ready_when = 0;\n};\n", false);
	CHECK(r.conf && conf_ready_need(r.conf) == 0);
	tc_done(&r);
	tc_load(&r, BASE PEERS2 "readiness = {\n ready_when = 3;\n};\n", false);
	tc_expect_one(&r, 5, "readiness.ready_when", "3 peers keyed needed, but only 2 peers are configured",
		      "more than the peers");
	tc_done(&r);
	tc_load(&r, BASE "readiness = {\n ready_when = \"1\";\n};\n", false);
	tc_expect_one(&r, 4, "readiness.ready_when", "1 peers keyed needed, but only 0 peers are configured",
		      "no peers");
	tc_done(&r);
	tc_load(&r, BASE "readiness = {\n ready_when = -1;\n};\n", false);
	tc_expect_one(&r, 4, "readiness.ready_when", "-1 is out of range 0..65535", "negative");
	tc_done(&r);
	tc_load(&r, BASE "readiness = {\n ready_when = \"2 peers\";\n};\n", false);
	tc_expect_one(&r, 4, "readiness.ready_when", "\"2 peers\" is not \"all\", \"any\" or a number of peers 0..65535",
		      "number with words");
	tc_done(&r);
	tc_load(&r, BASE "readiness = {\n ready_when = \"ALL\";\n};\n", false);
	tc_expect_one(&r, 4, "readiness.ready_when", "\"ALL\" is not \"all\", \"any\" or a number of peers 0..65535",
		      "capitals");
	tc_done(&r);
	tc_load(&r, BASE "readiness = {\n ready_when = 1.0;\n};\n", false);
	tc_expect_one(&r, 4, "readiness.ready_when", "expected \"all\", \"any\" or a number of peers", "float");
	tc_done(&r);
}

int main(void)
{
	tc_setup();
	test_every_option();
	test_unknown();
	test_group_types();
	test_peer_publish();
	test_prefix_map();
	test_missing_required();
	test_order();
	test_syntax();
	test_files();
	test_readiness();
	tc_cleanup();
	CHECK_DONE();
}
