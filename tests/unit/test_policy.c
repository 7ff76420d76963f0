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

static uint8_t test_buf[POLICY_TOPIC_MAX + 16];

/* What policy_aad_topic gives for topic: the rewritten name, or "=" for topic itself (unchanged,
 * no copy), or NULL for a refusal. */
static void tp_expect(const struct policy *p, uint8_t *buf, const char *topic, const char *want)
{
	const uint8_t *out = NULL;
	size_t n = 0;
	bool ok = policy_aad_topic(p, T(topic), buf, buf ? sizeof(test_buf) : 0, &out, &n);

	if (!want) {
		CHECK(!ok);
		return;
	}
	CHECK(ok);
	if (!ok)
		return;
	if (strcmp(want, "=") == 0) {
		CHECK(out == (const uint8_t *)topic && n == strlen(topic));
		return;
	}
	CHECK(out == buf && n == strlen(want) && memcmp(out, want, n) == 0);
	if (!(n == strlen(want) && memcmp(out, want, n) == 0))
		fprintf(stderr, "  %s -> %.*s, wanted %s\n", topic, (int)n, (const char *)out, want);
}

/* topic_prefix_map (R24): longest local prefix wins, byte-wise; no match = the topic itself; an
 * empty local prefix maps everything; a result over 65535 bytes is refused. */
static void test_prefix_map(void)
{
	struct conf_prefix_map map[] = {
		{"", "site1/", 0}, {"remote/", "local/", 0}, {"remote/deep/", "", 0}, {"x", "y", 0},
	};
	struct px_conf conf;
	struct policy *p;
	uint8_t *buf = test_buf;
	static char longt[POLICY_TOPIC_MAX + 1];

	memset(&conf, 0, sizeof(conf));
	conf.keyex.topic_prefix = "mqseal";
	p = policy_new(&conf);
	CHECK(p && !policy_has_prefix_map(p));
	if (p)
		tp_expect(p, NULL, "a/b", "="); /* no map: no buffer needed */
	policy_free(p);

	conf.topic_prefix_map = map + 1;
	conf.ntopic_prefix_map = 3;
	p = policy_new(&conf);
	CHECK(p && policy_has_prefix_map(p));
	if (!p)
		return;
	tp_expect(p, buf, "remote/t/1", "local/t/1");
	tp_expect(p, buf, "remote/deep/t", "t");      /* the longer prefix wins */
	tp_expect(p, buf, "remote/", "local/");
	tp_expect(p, buf, "remote", "=");             /* shorter than the prefix */
	tp_expect(p, buf, "other/remote/t", "=");     /* a prefix, not a substring */
	tp_expect(p, buf, "xa/b", "ya/b");            /* byte-wise, not level-wise */
	tp_expect(p, buf, "Remote/t", "=");
	policy_free(p);

	conf.topic_prefix_map = map;
	conf.ntopic_prefix_map = 2;
	p = policy_new(&conf);
	CHECK(p != NULL);
	if (!p)
		return;
	tp_expect(p, buf, "a/b", "site1/a/b"); /* a mount point: every topic */
	tp_expect(p, buf, "remote/a", "local/a");
	memset(longt, 'a', POLICY_TOPIC_MAX - 6);
	longt[POLICY_TOPIC_MAX - 6] = '\0';
	{
		const uint8_t *out = NULL;
		size_t n = 0;
		CHECK(policy_aad_topic(p, T(longt), buf, sizeof(test_buf), &out, &n) && n == POLICY_TOPIC_MAX);
		CHECK(!policy_aad_topic(p, T("a/b"), buf, 8, &out, &n));  /* site1/a/b: 9 bytes > cap */
		CHECK(policy_aad_topic(p, T("a/"), buf, 8, &out, &n) && n == 8); /* exactly cap */
	}
	longt[POLICY_TOPIC_MAX - 6] = 'a';
	longt[POLICY_TOPIC_MAX - 5] = '\0';
	tp_expect(p, buf, longt, NULL); /* 65536 bytes once rewritten, though the buffer would hold it */
	policy_free(p);
}

int main(void)
{
	test_contains();
	test_classes();
	test_prefix_map();
	CHECK_DONE();
}
