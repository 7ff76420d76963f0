/* test_conf_example.c - conf/mqseal.conf.example and conf_dump. The example loads without a
 * problem or a warning; its values are the defaults (except node_id and broker.host, which every
 * installation must set); every option of the key table appears in it (options without a default
 * are written "#name = value;": uncommented they count, and the file must still load); and
 * conf_dump output loads again, dumps identically, and holds every value the file set.
 * argv[1] is the tests/ source directory; the example is at argv[1]/../conf/. */
#include "test_conf.h"

#define KEY1 "\"ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\""
#define KEY2 "\"ed25519:PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=\""

/* Every option set to something other than its default; strings that need escaping. */
static const char tc_rich[] =
	"node_id = \"gw.1_a-b\";\n"
	"state_dir = \"/srv/my \\\"state\\\" \\\\ dir\";\n"
	"identity_file = \"/etc/mqseal/id\\tkey\";\n"
	"user = \"mq.seal\";\n"
	"shutdown_grace_seconds = 0;\n"
	"listen = { host = \"0.0.0.0\"; port = 1884; allow_remote = true; max_connections = 1000000;\n"
	"  connect_timeout_seconds = 3600; max_packet_size = 268435460; };\n"
	"broker = { host = \"broker.example\"; port = 8884; connect_timeout_seconds = 1;\n"
	"  tls = { enabled = true; ca_file = \"/ca.pem\"; ca_path = \"/etc/ssl/certs\"; cert_file = "
	"\"/c.pem\";\n"
	"    key_file = \"/k.pem\"; verify_hostname = true; server_name = \"mqtt.example\"; }; };\n"
	"keyex = { topic_prefix = \"site/\xc3\xa9\"; interval_seconds = 86400; activation_seconds = 60;\n"
	"  grace_seconds = 0; max_skew_seconds = 3600; client_id = \"caf\xc3\xa9-1\"; username = "
	"\"u\\\"ser\";\n"
	"  password = \"p\\\"w\\\\d\"; keepalive_seconds = 5; revoke_seconds = 300; presence = false; };\n"
	"peers = ( { id = \"p1\"; public_key = " KEY1 "; }, { id = \"p2\"; public_key = " KEY2 ";\n"
	"  publish = [ \"sensors/p2/#\", \"st\\\"at\" ]; } );\n"
	"topics = { plaintext = [ \"public/#\", \"a/+/b\" ]; deny = [ \"$SYS/#\" ]; };\n"
	"topic_prefix_map = ( { local = \"\"; canonical = \"site\\\"1/\"; }, { local = \"r/\"; canonical = \"\"; } );\n"
	"seal = { padding = 256; hold_seconds = 3600; retained_cache_kb = 0; held_max_kb = 0;\n"
	"  held_max_messages = 1000000; };\n"
	"metrics = { enabled = false; host = \"::1\"; port = 1; allow_remote = true; max_connections = 7;\n"
	"  peer_series_max = 0; };\n"
	"readiness = { ready_when = 2; };\n"
	"log = { level = \"error\"; format = \"json\"; };\n";

static char *tc_read(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
	    !(buf = calloc(1, (size_t)n + 1)) || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		perror(path);
		exit(1);
	}
	fclose(f);
	return buf;
}

/* Loads a file that must load, and returns its dump (the caller frees). */
static char *tc_dump_of(const char *path)
{
	struct tc_res r;
	char *dump = NULL;

	tc_load_file(&r, path, false);
	tc_expect_ok(&r, path);
	if (r.conf)
		dump = conf_dump(r.conf);
	CHECK(!r.conf || dump);
	tc_done(&r);
	return dump;
}

static void test_example_loads(const char *example)
{
	struct tc_res r;
	char *dump, *defaults;
	const char *path = tc_path("defaults.conf");

	tc_load_file(&r, example, false);
	tc_expect_ok(&r, "the example");
	CHECK_EQ(r.errs.nwarnings, 0);
	tc_done(&r);
	/* the example's values are the defaults */
	tc_write(path, "node_id = \"gw-kitchen-1\";\nbroker = { host = \"broker.example.net\"; };\n");
	dump = tc_dump_of(example);
	defaults = tc_dump_of(path);
	CHECK(dump && defaults && strcmp(dump, defaults) == 0);
	free(dump);
	free(defaults);
}

/* The text with every commented-out option ("#name", "#{" after optional blanks) uncommented. */
static char *tc_uncomment(const char *text, size_t *count)
{
	char *out = malloc(strlen(text) + 1), *o = out;
	const char *p = text, *q;
	bool line_start = true;

	if (!out)
		abort();
	*count = 0;
	for (; *p; p++) {
		if (line_start) {
			for (q = p; *q == ' ' || *q == '\t'; q++)
				;
			if (q[0] == '#' && ((q[1] >= 'a' && q[1] <= 'z') || q[1] == '{')) {
				while (p < q)
					*o++ = *p++;
				(*count)++;
				line_start = false;
				continue; /* drops the '#' */
			}
		}
		line_start = *p == '\n';
		*o++ = *p;
	}
	*o = '\0';
	return out;
}

static void test_example_covers_options(const char *example)
{
	char *text = tc_read(example), *unc;
	const char *path = tc_path("uncommented.conf");
	struct tc_res r;
	config_t cfg;
	size_t k, count;

	unc = tc_uncomment(text, &count);
	CHECK(count >= 10); /* user, the TLS files and names, client_id, username, password, peers */
	tc_write(path, unc);
	tc_load_file(&r, path, false);
	tc_expect_ok(&r, "the example, uncommented");
	CHECK(r.conf && r.conf->npeers == 2);
	tc_done(&r);
	tc_parse(&cfg, unc);
	for (k = 0; conf_option_name(k); k++) {
		if (!config_lookup(&cfg, conf_option_name(k))) {
			CHECK(0);
			fprintf(stderr, "  option %s is missing from the example\n", conf_option_name(k));
		}
	}
	config_destroy(&cfg);
	free(unc);
	free(text);
}

/* dump -> load -> dump is stable, and the dump holds every value the file set. */
static void test_dump_roundtrip(const char *example)
{
	const char *rich = tc_path("rich.conf"), *again = tc_path("again.conf");
	char *dump, *dump2, *ex, *ex2;
	config_t given, dumped;
	size_t k;

	tc_write(rich, tc_rich);
	dump = tc_dump_of(rich);
	if (!dump)
		return;
	CHECK(strstr(dump, "password = \"********\";") != NULL);
	CHECK(strstr(dump, "p\\\"w") == NULL);
	tc_write(again, dump);
	dump2 = tc_dump_of(again);
	CHECK(dump2 && strcmp(dump, dump2) == 0);
	tc_parse(&given, tc_rich);
	tc_parse(&dumped, dump);
	for (k = 0; conf_option_name(k); k++) {
		const char *name = conf_option_name(k);
		if (strcmp(name, "keyex.password") == 0)
			continue;
		if (!tc_same(config_lookup(&given, name), config_lookup(&dumped, name))) {
			CHECK(0);
			fprintf(stderr, "  %s differs in the dump\n", name);
		}
	}
	config_destroy(&given);
	config_destroy(&dumped);
	ex = tc_dump_of(example);
	tc_write(again, ex ? ex : "");
	ex2 = tc_dump_of(again);
	CHECK(ex && ex2 && strcmp(ex, ex2) == 0);
	free(ex);
	free(ex2);
	free(dump);
	free(dump2);
}

int main(int argc, char **argv)
{
	char example[4096];

	if (argc < 2) {
		fprintf(stderr, "usage: %s TESTS_SOURCE_DIR\n", argv[0]);
		return 2;
	}
	snprintf(example, sizeof(example), "%s/../conf/mqseal.conf.example", argv[1]);
	tc_setup();
	test_example_loads(example);
	test_example_covers_options(example);
	test_dump_roundtrip(example);
	tc_cleanup();
	CHECK_DONE();
}
