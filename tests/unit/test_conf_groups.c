/* test_conf_groups.c - `groups` (issue 17): the example fleet's definition loads into struct
 * conf_group as written (lines included) and survives conf_dump; every member is validated with
 * exactly "FILE:LINE: option: problem"; the limits (64 groups, 64 filters, 10,000 readers and
 * writers) hold at their ends; the overlap rule names both groups and both lines; group topics
 * that are also plaintext or denied are refused. */
#include "test_conf.h"

#define BASE "node_id = \"n1\";\nbroker = { host = \"b.example\"; };\n"
/* The fleet of docs/OPERATIONS.md: 1 backend, 2 actuators, 2 sensors. */
#define FLEET                                                                                  \
	"groups = (\n"                                                                         \
	"  { name = \"telemetry\"; topics = [ \"sensors/#\" ]; readers = [ \"backend\" ]; },\n" \
	"  { name = \"commands\";\n"                                                           \
	"    topics = [ \"cmd/#\", \"config/+/set\" ];\n"                                      \
	"    readers = [ \"actuator-1\", \"actuator-2\" ];\n"                                  \
	"    writers = [ \"backend\" ]; }\n"                                                   \
	");\n"

static bool same_list(char *const *got, size_t n, const char *const *want)
{
	size_t i;

	for (i = 0; i < n && want[i]; i++)
		if (!got[i] || strcmp(got[i], want[i]) != 0)
			return false;
	return i == n && !want[i];
}

static void check_fleet(const struct px_conf *c)
{
	static const char *const t0[] = {"sensors/#", NULL}, *const r0[] = {"backend", NULL};
	static const char *const t1[] = {"cmd/#", "config/+/set", NULL};
	static const char *const r1[] = {"actuator-1", "actuator-2", NULL}, *const w1[] = {"backend", NULL};
	const struct conf_group *g = c->groups;

	CHECK_EQ(c->ngroups, 2);
	if (c->ngroups != 2)
		return;
	CHECK(strcmp(g[0].name, "telemetry") == 0 && same_list(g[0].topics, g[0].ntopics, t0));
	CHECK(same_list(g[0].readers, g[0].nreaders, r0) && !g[0].has_writers && g[0].nwriters == 0);
	CHECK(strcmp(g[1].name, "commands") == 0 && same_list(g[1].topics, g[1].ntopics, t1));
	CHECK(same_list(g[1].readers, g[1].nreaders, r1));
	CHECK(g[1].has_writers && same_list(g[1].writers, g[1].nwriters, w1));
}

static void test_fleet(void)
{
	struct tc_res r, back;
	char *dump;

	tc_load(&r, BASE FLEET, false);
	tc_expect_ok(&r, "the example fleet");
	CHECK_EQ(r.errs.nwarnings, 0);
	if (!r.conf)
		return;
	check_fleet(r.conf);
	if (r.conf->ngroups == 2) {
		CHECK_EQ(r.conf->groups[0].line, 4);
		CHECK_EQ(r.conf->groups[0].topic_lines[0], 4);
		CHECK_EQ(r.conf->groups[1].line, 5);
		CHECK(r.conf->groups[1].topic_lines[0] == 6 && r.conf->groups[1].topic_lines[1] == 6);
	}
	dump = conf_dump(r.conf);
	CHECK(dump && strstr(dump, "writers = [ \"backend\" ]"));
	if (dump) {
		tc_load(&back, dump, false);
		tc_expect_ok(&back, "dumped groups load again");
		if (back.conf)
			check_fleet(back.conf);
		tc_done(&back);
		free(dump);
	}
	tc_done(&r);
	/* No groups: every topic in the default group, as before issue 17. */
	tc_load(&r, BASE, false);
	tc_expect_ok(&r, "no groups");
	CHECK(r.conf && r.conf->ngroups == 0 && r.conf->groups == NULL);
	tc_done(&r);
	tc_load(&r, BASE "groups = ( );\n", false);
	tc_expect_ok(&r, "an empty groups list");
	CHECK(r.conf && r.conf->ngroups == 0);
	tc_done(&r);
}

/* Loads BASE + text and expects exactly one problem at line, option: msg. */
static void expect_one(const char *text, unsigned line, const char *option, const char *msg)
{
	struct tc_res r;
	struct tc_text t = {0};

	tc_cat(&t, "%s%s", BASE, text);
	tc_load(&r, t.buf, false);
	tc_expect_one(&r, line, option, msg, text);
	tc_done(&r);
	free(t.buf);
}

#define G(members) "groups = ( { " members " } );\n"
#define OK_TR	   "topics = [ \"a/#\" ]; readers = [ \"r1\" ];"

static void test_members(void)
{
	expect_one("groups = 5;\n", 3, "groups",
		   "expected a list of groups ( { name = ...; topics = ...; readers = ...; }, ... )");
	expect_one("groups = ( \"g\" );\n", 3, "groups[0]",
		   "expected a group { name = \"...\"; topics = [ ... ]; readers = [ ... ]; }");
	expect_one(G(OK_TR), 3, "groups[0].name", "required option is missing");
	expect_one(G("name = \"g\"; readers = [ \"r1\" ];"), 3, "groups[0].topics", "required option is missing");
	expect_one(G("name = \"g\"; topics = [ \"a\" ];"), 3, "groups[0].readers", "required option is missing");
	expect_one(G("name = \"a b\"; " OK_TR), 3, "groups[0].name",
		   "\"a b\" is not a valid group name (1 to 32 of A-Z a-z 0-9 . _ -)");
	expect_one(G("name = \"\"; " OK_TR), 3, "groups[0].name",
		   "\"\" is not a valid group name (1 to 32 of A-Z a-z 0-9 . _ -)");
	expect_one(G("name = \"abcdefghijklmnopqrstuvwxyz0123456\"; " OK_TR), 3, "groups[0].name",
		   "* is not a valid group name (1 to 32 of A-Z a-z 0-9 . _ -)");
	expect_one(G("name = 5; " OK_TR), 3, "groups[0].name", "expected a string");
	expect_one(G("name = \"g\"; topics = [ ]; readers = [ \"r1\" ];"), 3, "groups[0].topics",
		   "empty: a group needs at least one topic filter");
	expect_one(G("name = \"g\"; topics = [ \"a\" ]; readers = [ ];"), 3, "groups[0].readers",
		   "empty: a group needs at least one node id");
	expect_one(G("name = \"g\"; " OK_TR " writers = [ ];"), 3, "groups[0].writers",
		   "empty: a group needs at least one node id");
	expect_one(G("name = \"g\"; topics = \"a/#\"; readers = [ \"r1\" ];"), 3, "groups[0].topics",
		   "expected a list of strings");
	expect_one(G("name = \"g\"; topics = [ \"a/#/b\" ]; readers = [ \"r1\" ];"), 3, "groups[0].topics[0]",
		   "\"a/#/b\" is not a valid topic filter: '#' must be the whole last level (MQTT 5 \xc2\xa7"
		   "4.7.1.2)");
	expect_one(G("name = \"g\"; topics = [ \"$SYS/#\" ]; readers = [ \"r1\" ];"), 3, "groups[0].topics[0]",
		   "\"$SYS/#\" is a '$' topic filter: topics starting with '$' belong to the broker and are "
		   "never sealed (MQTT 5 \xc2\xa7"
		   "4.7.2)");
	expect_one(G("name = \"g\"; topics = [ \"a\" ]; readers = [ \"r 1\" ];"), 3, "groups[0].readers[0]",
		   "\"r 1\" is not a valid node id (1 to 64 of A-Z a-z 0-9 . _ -)");
	expect_one(G("name = \"g\"; " OK_TR " writers = [ \"ok\", \"w/1\" ];"), 3, "groups[0].writers[1]",
		   "\"w/1\" is not a valid node id (1 to 64 of A-Z a-z 0-9 . _ -)");
	expect_one(G("name = \"g\"; " OK_TR " reader = [ \"x\" ];"), 3, "groups[0].reader",
		   "unknown option; did you mean readers?");
	expect_one("groups = (\n { name = \"g\"; " OK_TR " },\n { name = \"g\"; topics = [ \"b\" ]; "
		   "readers = [ \"r1\" ]; }\n);\n",
		   5, "groups[1].name", "duplicate group name \"g\" (also at line 4)");
}

/* A value of n entries: groups = ( n groups ), or one group with n topics / readers / writers. */
static char *big(const char *what, long long n)
{
	struct tc_text t = {0};
	long long i;

	tc_cat(&t, BASE "groups = (");
	if (strcmp(what, "groups") == 0) {
		for (i = 0; i < n; i++)
			tc_cat(&t, "%s{ name = \"g%lld\"; topics = [ \"t%lld/#\" ]; readers = [ \"r\" ]; }", i ? ", " : "",
			       i, i);
		tc_cat(&t, ");\n");
		return t.buf;
	}
	tc_cat(&t, "{ name = \"g\"; %s = [", what);
	for (i = 0; i < n; i++)
		tc_cat(&t, strcmp(what, "topics") == 0 ? "%s\"t/%lld\"" : "%s\"node-%lld\"", i ? ", " : "", i);
	tc_cat(&t, " ]; %s%s }\n);\n", strcmp(what, "topics") == 0 ? "" : "topics = [ \"t\" ]; ",
	       strcmp(what, "readers") == 0 ? "" : "readers = [ \"r\" ];");
	return t.buf;
}

static void test_limits(void)
{
	static const struct {
		const char *what, *option;
		long long max;
	} cases[] = {
		{"groups", "groups", CONF_GROUPS_MAX},
		{"topics", "groups[0].topics", CONF_GROUP_TOPICS_MAX},
		{"readers", "groups[0].readers", CONF_GROUP_NODES_MAX},
		{"writers", "groups[0].writers", CONF_GROUP_NODES_MAX},
	};
	struct tc_res r;
	char msg[96], *text;
	size_t i;

	CHECK(CONF_GROUPS_MAX == 64 && CONF_GROUP_TOPICS_MAX == 64 && CONF_GROUP_NODES_MAX == 10000);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		text = big(cases[i].what, cases[i].max);
		tc_load(&r, text, false);
		tc_expect_ok(&r, cases[i].what);
		tc_done(&r);
		free(text);
		text = big(cases[i].what, cases[i].max + 1);
		tc_load(&r, text, false);
		snprintf(msg, sizeof(msg), "%lld entries, at most %lld allowed", cases[i].max + 1, cases[i].max);
		tc_expect_one(&r, 3, cases[i].option, msg, cases[i].what);
		tc_done(&r);
		free(text);
	}
	/* The writers case really is one group with writers (not a topics list of readers). */
	text = big("writers", 2);
	tc_load(&r, text, false);
	CHECK(r.conf && r.conf->ngroups == 1 && r.conf->groups[0].nwriters == 2 && r.conf->groups[0].nreaders == 1);
	tc_done(&r);
	free(text);
}

/* Two groups a (line 4) and b (line 5) with these filters; the problem at line 5 when want. */
static void overlap(const char *fa, const char *fb, bool want)
{
	struct tc_res r;
	struct tc_text t = {0};
	char msg[256];

	tc_cat(&t, BASE "groups = (\n { name = \"a\"; topics = [ \"x/y\", \"%s\" ]; readers = [ \"r\" ]; },\n"
			" { name = \"b\"; readers = [ \"r\" ];\n   topics = [ \"%s\" ]; }\n);\n", fa, fb);
	tc_load(&r, t.buf, false);
	if (!want) {
		tc_expect_ok(&r, t.buf);
	} else {
		snprintf(msg, sizeof(msg),
			 "\"%s\" of group \"b\" and \"%s\" of group \"a\" (%s:4) can match the same topic; a topic "
			 "may belong to one group only",
			 fb, fa, r.path);
		tc_expect_one(&r, 6, "groups[1].topics[0]", msg, t.buf);
	}
	tc_done(&r);
	free(t.buf);
}

static void test_overlap(void)
{
	overlap("sensors/#", "cmd/#", false);
	overlap("sensors/#", "sensors/#", true); /* identical */
	overlap("a/#", "a", true);               /* '#' takes the parent level */
	overlap("a/+", "a", false);
	overlap("a/+", "a/b/c", false);
	overlap("+/b", "a/+", true);
	overlap("#", "q", true);
	overlap("+", "/#", false); /* "" is no topic */
	overlap("a//b", "a/+/b", true);
	overlap("sensors/+/temp", "sensors/s1/#", true);
	/* Within one group filters may overlap: they name the same group. */
	expect_one(G("name = \"g\"; topics = [ \"a/#\", \"a/b\", \"a/#\" ]; readers = [ \"r\" ]; bad = 1;"), 3,
		   "groups[0].bad", "unknown option");
	{
		struct tc_res r;
		tc_load(&r, BASE G("name = \"g\"; topics = [ \"a/#\", \"a/b\", \"a/#\" ]; readers = [ \"r\" ];"), false);
		tc_expect_ok(&r, "overlap inside one group");
		tc_done(&r);
	}
	/* Three groups: each overlapping pair reported once, at the later one. */
	{
		struct tc_res r;
		tc_load(&r, BASE "groups = (\n { name = \"a\"; topics = [ \"t/#\" ]; readers = [ \"r\" ]; },\n"
				 " { name = \"b\"; topics = [ \"t/1\" ]; readers = [ \"r\" ]; },\n"
				 " { name = \"c\"; topics = [ \"u\", \"+/1\" ]; readers = [ \"r\" ]; }\n);\n",
			false);
		CHECK_EQ(r.errs.count, 2);
		if (r.errs.count == 2) {
			CHECK(strstr(r.errs.lines[0], ":5: groups[1].topics[0]: \"t/1\" of group \"b\" and \"t/#\" of group \"a\""));
			CHECK(strstr(r.errs.lines[1], ":6: groups[2].topics[1]: \"+/1\" of group \"c\" and \"t/#\" of group \"a\""));
		}
		if (r.errs.count != 2)
			tc_print(&r);
		tc_done(&r);
	}
}

static void test_plaintext_deny(void)
{
	struct tc_res r;
	char msg[256];

	tc_load(&r, BASE FLEET "topics = {\n plaintext = [ \"public/#\", \"sensors/+/status\" ];\n deny = [ \"cmd/x/#\" ];\n};\n",
		false);
	CHECK_EQ(r.errs.count, 2);
	if (r.errs.count == 2) {
		snprintf(msg, sizeof(msg),
			 "\"sensors/+/status\" can match topics of group \"telemetry\" (\"sensors/#\", %s:4); a topic "
			 "is sealed for a group, plaintext or denied, never two of these",
			 r.path);
		CHECK(tc_line_is(r.errs.lines[0], r.path, 11, "topics.plaintext[1]", msg));
		snprintf(msg, sizeof(msg),
			 "\"cmd/x/#\" can match topics of group \"commands\" (\"cmd/#\", %s:6); a topic is sealed "
			 "for a group, plaintext or denied, never two of these",
			 r.path);
		CHECK(tc_line_is(r.errs.lines[1], r.path, 12, "topics.deny[0]", msg));
	}
	if (check_failures)
		tc_print(&r);
	tc_done(&r);
	/* Before the groups in the file, and not touching them: fine. */
	tc_load(&r, BASE "topics = { plaintext = [ \"public/#\", \"$SYS/#\" ]; deny = [ \"sensorsX/#\" ]; };\n" FLEET,
		false);
	tc_expect_ok(&r, "plaintext and deny apart from the groups");
	tc_done(&r);
}

int main(void)
{
	tc_setup();
	test_fleet();
	test_members();
	test_limits();
	test_overlap();
	test_plaintext_deny();
	tc_cleanup();
	CHECK_DONE();
}
