/* test_policy.c - the topic policy (PROTOCOL.md §11): classes of topic names, denial of
 * subscription filters, and filter containment. */
#include <string.h>

#include "check.h"
#include "conf.h"
#include "policy.h"

#define T(s) (const uint8_t *)(s), strlen(s)

static void test_contains(void)
{
	static const struct {
		const char *outer, *inner;
		bool want;
	} cases[] = {
		{"a/#", "a/b", true},         {"a/#", "a/b/c", true},    {"a/#", "a/#", true},
		{"a/#", "a", true},           {"#", "a/+/c", true},      {"+/b", "x/b", true},
		{"+/b", "+/b", true},         {"a/+", "a/#", false},     {"a/b", "a/+", false},
		{"a", "a/b", false},          {"a/b", "a", false},       {"a/+/c", "a/x/c", true},
		{"a/+/c", "a/x/d", false},    {"#", "$SYS/x", false},    {"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},   {"a//b", "a//b", true},    {"a//b", "a/x/b", false},
		{"a/+", "a/", true},          {"a/b/#", "a/+/c", false},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool got = policy_filter_contains(T(cases[i].outer), T(cases[i].inner));
		if (got != cases[i].want)
			fprintf(stderr, "contains(%s, %s) = %d\n", cases[i].outer, cases[i].inner, got);
		CHECK(got == cases[i].want);
	}
}

static void test_classes(void)
{
	char *plain[] = {"public/#", "+/status"};
	char *deny[] = {"secret/blocked/#"};
	struct px_conf conf;
	struct policy *p;

	memset(&conf, 0, sizeof(conf));
	conf.keyex.topic_prefix = "mqseal";
	conf.topics.plaintext = plain;
	conf.topics.nplaintext = 2;
	conf.topics.deny = deny;
	conf.topics.ndeny = 1;
	p = policy_new(&conf);
	CHECK(p != NULL);
	if (!p)
		return;
	CHECK_EQ(policy_topic(p, T("home/kitchen/temp")), POLICY_SEALED); /* the default */
	CHECK_EQ(policy_topic(p, T("public/weather")), POLICY_PLAINTEXT);
	CHECK_EQ(policy_topic(p, T("dev1/status")), POLICY_PLAINTEXT);
	CHECK_EQ(policy_topic(p, T("dev1/status/x")), POLICY_SEALED);
	CHECK_EQ(policy_topic(p, T("$SYS/broker/uptime")), POLICY_PLAINTEXT);
	CHECK_EQ(policy_topic(p, T("secret/blocked/x")), POLICY_DENIED);
	CHECK_EQ(policy_topic(p, T("mqseal/keyex/a")), POLICY_DENIED);  /* key exchange: never devices' */
	CHECK_EQ(policy_topic(p, T("mqseal/ack/a/b")), POLICY_DENIED);
	/* Filters: refused only when every topic they match is denied. */
	CHECK(policy_filter_denied(p, T("mqseal/#")));
	CHECK(policy_filter_denied(p, T("mqseal/keyex/+")));
	CHECK(policy_filter_denied(p, T("secret/blocked/#")));
	CHECK(policy_filter_denied(p, T("$share/g/secret/blocked/x")));
	CHECK(!policy_filter_denied(p, T("#")));
	CHECK(!policy_filter_denied(p, T("secret/#")));
	CHECK(!policy_filter_denied(p, T("$share/g/home/#")));
	policy_free(p);
}

int main(void)
{
	test_contains();
	test_classes();
	CHECK_DONE();
}
