/* test_policy_groups.c - read groups in the topic policy (issue 17): the group of a topic (the
 * example fleet by hand; then 64 groups of 64 filters, literal- and wildcard-first, against a
 * plain scan of every filter), names and lookup by name, readers and writers (sorted, repeats
 * dropped, the default group and a group without writers open to every node); the Maximum Packet
 * Size overhead with writers (seal_overhead_max). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "conf.h"
#include "mqtt_topic.h"
#include "policy.h"
#include "seal.h"

#define T(s) (const uint8_t *)(s), strlen(s)

static struct policy *make(struct conf_group *g, size_t n)
{
	struct px_conf conf;

	memset(&conf, 0, sizeof(conf));
	conf.keyex.topic_prefix = "mqseal";
	conf.groups = g;
	conf.ngroups = n;
	return policy_new(&conf);
}

static void test_fleet(void)
{
	char *t0[] = {"sensors/#"}, *r0[] = {"backend"};
	char *t1[] = {"cmd/#", "config/+/set"}, *r1[] = {"actuator-2", "actuator-1", "actuator-2"};
	char *w1[] = {"backend"};
	char *t2[] = {"+/alarm/#", "/lead"}, *r2[] = {"backend", "sensor-1"};
	struct conf_group g[3] = {
		{.name = "telemetry", .topics = t0, .ntopics = 1, .readers = r0, .nreaders = 1},
		{.name = "commands", .topics = t1, .ntopics = 2, .readers = r1, .nreaders = 3, .writers = w1,
		 .nwriters = 1, .has_writers = true},
		{.name = "alarms", .topics = t2, .ntopics = 2, .readers = r2, .nreaders = 2},
	};
	struct policy *p = make(g, 3);
	const char *const *ids;
	size_t n;

	CHECK(p != NULL);
	if (!p)
		return;
	CHECK_EQ(policy_group_count(p), 3);
	CHECK_EQ(policy_group(p, T("sensors/s1/temp")), 0);
	CHECK_EQ(policy_group(p, T("sensors")), 0); /* '#' takes the parent level */
	CHECK_EQ(policy_group(p, T("sensors/")), 0);
	CHECK_EQ(policy_group(p, T("sensorsX/a")), POLICY_GROUP_DEFAULT);
	CHECK_EQ(policy_group(p, T("cmd/actuator-1/on")), 1);
	CHECK_EQ(policy_group(p, T("config/a1/set")), 1);
	CHECK_EQ(policy_group(p, T("config/a1/get")), POLICY_GROUP_DEFAULT);
	CHECK_EQ(policy_group(p, T("config/a1/set/x")), POLICY_GROUP_DEFAULT);
	CHECK_EQ(policy_group(p, T("hall/alarm")), 2); /* wildcard first */
	CHECK_EQ(policy_group(p, T("hall/alarm/fire")), 2);
	CHECK_EQ(policy_group(p, T("/alarm")), 2);
	CHECK_EQ(policy_group(p, T("/lead")), 2); /* an empty first level is a literal */
	CHECK_EQ(policy_group(p, T("$SYS/alarm")), POLICY_GROUP_DEFAULT); /* '$' topics: never */
	CHECK_EQ(policy_group(p, T("home/kitchen")), POLICY_GROUP_DEFAULT);
	CHECK_EQ(policy_group(p, T("c")), POLICY_GROUP_DEFAULT);
	CHECK_EQ(policy_group(p, T("cmd")), 1);
	/* names */
	CHECK(strcmp(policy_group_name(p, 0), "telemetry") == 0 && strcmp(policy_group_name(p, 2), "alarms") == 0);
	CHECK(strcmp(policy_group_name(p, POLICY_GROUP_DEFAULT), "") == 0);
	CHECK(policy_group_name(p, 3) == NULL && policy_group_name(p, POLICY_GROUP_UNKNOWN) == NULL);
	CHECK_EQ(policy_group_find(p, T("commands")), 1);
	CHECK_EQ(policy_group_find(p, (const uint8_t *)"", 0), POLICY_GROUP_DEFAULT);
	CHECK_EQ(policy_group_find(p, T("command")), POLICY_GROUP_UNKNOWN);
	CHECK_EQ(policy_group_find(p, T("commandsX")), POLICY_GROUP_UNKNOWN);
	/* readers: sorted, repeats dropped */
	ids = policy_group_readers(p, 1, &n);
	CHECK(n == 2 && ids && strcmp(ids[0], "actuator-1") == 0 && strcmp(ids[1], "actuator-2") == 0);
	CHECK(policy_group_is_reader(p, 1, "actuator-1") && policy_group_is_reader(p, 1, "actuator-2"));
	CHECK(!policy_group_is_reader(p, 1, "backend") && !policy_group_is_reader(p, 1, "actuator-3"));
	CHECK(policy_group_is_reader(p, 0, "backend") && !policy_group_is_reader(p, 0, "sensor-1"));
	CHECK(policy_group_is_reader(p, POLICY_GROUP_DEFAULT, "anyone"));
	CHECK(!policy_group_is_reader(p, 3, "backend") && !policy_group_is_reader(p, POLICY_GROUP_UNKNOWN, "backend"));
	CHECK(policy_group_readers(p, POLICY_GROUP_DEFAULT, &n) == NULL && n == 0);
	/* writers: absent = every node */
	CHECK(policy_group_has_writers(p, 1) && !policy_group_has_writers(p, 0));
	CHECK(!policy_group_has_writers(p, POLICY_GROUP_DEFAULT));
	CHECK(policy_group_is_writer(p, 1, "backend") && !policy_group_is_writer(p, 1, "actuator-1"));
	CHECK(!policy_group_is_writer(p, 1, "sensor-1"));
	CHECK(policy_group_is_writer(p, 0, "sensor-1") && policy_group_is_writer(p, 0, "whoever"));
	CHECK(policy_group_is_writer(p, POLICY_GROUP_DEFAULT, "whoever"));
	CHECK(!policy_group_is_writer(p, 7, "backend"));
	ids = policy_group_writers(p, 1, &n);
	CHECK(n == 1 && ids && strcmp(ids[0], "backend") == 0);
	CHECK(policy_group_writers(p, 0, &n) == NULL && n == 0);
	/* The topic classes are unchanged by groups. */
	CHECK_EQ(policy_topic(p, T("sensors/s1/temp")), POLICY_SEALED);
	policy_free(p);
}

static void test_no_groups(void)
{
	struct policy *p = make(NULL, 0);
	size_t n = 5;

	CHECK(p != NULL);
	if (!p)
		return;
	CHECK_EQ(policy_group_count(p), 0);
	CHECK_EQ(policy_group(p, T("sensors/s1")), POLICY_GROUP_DEFAULT);
	CHECK_EQ(policy_group(p, T("#")), POLICY_GROUP_DEFAULT);
	CHECK(policy_group_is_reader(p, POLICY_GROUP_DEFAULT, "x") && policy_group_is_writer(p, POLICY_GROUP_DEFAULT, "x"));
	CHECK(!policy_group_is_reader(p, 0, "x") && policy_group_readers(p, 0, &n) == NULL && n == 0);
	CHECK_EQ(policy_group_find(p, T("g")), POLICY_GROUP_UNKNOWN);
	policy_free(p);
}

/* PROTOCOL.md §5.7: the Maximum Packet Size overhead includes the 64-byte source signature (§5.8)
 * as soon as one group has writers, and only then. */
static void test_overhead_signed(void)
{
	char *t0[] = {"sensors/#"}, *r0[] = {"backend"}, *t1[] = {"cmd/#"}, *r1[] = {"actuator-1"};
	char *w1[] = {"backend"};
	struct conf_group g[2] = {
		{.name = "telemetry", .topics = t0, .ntopics = 1, .readers = r0, .nreaders = 1},
		{.name = "commands", .topics = t1, .ntopics = 1, .readers = r1, .nreaders = 1, .writers = w1,
		 .nwriters = 1, .has_writers = true},
	};
	struct policy *none = make(NULL, 0), *unsigned_only = make(g, 1), *with_writers = make(g, 2);

	CHECK(none && unsigned_only && with_writers);
	CHECK_EQ(seal_overhead_max(16, NULL), 66);
	CHECK_EQ(seal_overhead_max(SEAL_PADDING_ANY, NULL), 306);
	CHECK_EQ(seal_overhead_max(16, none), 66);
	CHECK_EQ(seal_overhead_max(16, unsigned_only), 66);
	CHECK_EQ(seal_overhead_max(16, with_writers), 130);
	CHECK_EQ(seal_overhead_max(SEAL_PADDING_ANY, with_writers), 370);
	policy_free(none);
	policy_free(unsigned_only);
	policy_free(with_writers);
}

/* 64 groups of 64 filters, disjoint by construction (a sample checked so): group i holds four
 * wildcard-first filters "+/w<i>x<j>" and literal-first ones "l<i%8>/h<n>/#" and "l<i%8>/p/<n>"
 * (n unique), eight groups sharing each first level; the group of many topics is compared with a
 * plain scan of every filter. */
#define NG 64
#define NF 64
static void test_many(void)
{
	static char names[NG][8], filters[NG][NF][24], *tops[NG][NF], *reader[] = {"r"};
	static struct conf_group g[NG];
	char topic[48];
	struct policy *p;
	size_t i, j, k, checked = 0, hits = 0;

	for (i = 0; i < NG; i++) {
		snprintf(names[i], sizeof(names[i]), "g%zu", i);
		for (j = 0; j < NF; j++) {
			if (j < 4)
				snprintf(filters[i][j], sizeof(filters[i][j]), "+/w%zux%zu", i, j);
			else if (j % 3 == 0)
				snprintf(filters[i][j], sizeof(filters[i][j]), "l%zu/h%zu/#", i % 8, i * NF + j);
			else
				snprintf(filters[i][j], sizeof(filters[i][j]), "l%zu/p/%zu", i % 8, i * NF + j);
			tops[i][j] = filters[i][j];
		}
		g[i] = (struct conf_group){.name = names[i], .topics = tops[i], .ntopics = NF, .readers = reader,
					   .nreaders = 1};
	}
	for (i = 0; i < NG * NF; i += 7) /* disjoint, as conf/ would insist (a sample) */
		for (j = i + 1; j < NG * NF; j += 5)
			if (i / NF != j / NF && conf_filters_intersect(filters[i / NF][i % NF], filters[j / NF][j % NF]))
				hits++;
	CHECK_EQ(hits, 0);
	p = make(g, NG);
	CHECK(p != NULL);
	if (!p)
		return;
	for (k = 0; k < 2000; k++) {
		int want = POLICY_GROUP_DEFAULT, got;
		size_t v = (k * 37) % (NG * NF);
		switch (k % 5) {
		case 0: snprintf(topic, sizeof(topic), "x/w%zux%zu", v / NF, v % 5); break;
		case 1: snprintf(topic, sizeof(topic), "l%zu/h%zu", k % 9, v); break;
		case 2: snprintf(topic, sizeof(topic), "l%zu/p/%zu", (v / NF) % 8, v); break;
		case 3: snprintf(topic, sizeof(topic), "l%zu/h%zu/a/b", (v / NF) % 8, v); break;
		default: snprintf(topic, sizeof(topic), "$x/w%zux1", v / NF); break;
		}
		for (i = 0; i < NG && want == POLICY_GROUP_DEFAULT; i++)
			for (j = 0; j < NF; j++)
				if (mqtt_topic_match(T(filters[i][j]), T(topic)))
					want = (int)i;
		got = policy_group(p, T(topic));
		if (got != want)
			fprintf(stderr, "policy_group(%s) = %d, scan %d\n", topic, got, want);
		CHECK_EQ(got, want);
		checked++;
		hits += want != POLICY_GROUP_DEFAULT;
	}
	CHECK(hits > checked / 3 && hits < checked); /* both outcomes were exercised */
	policy_free(p);
}

int main(void)
{
	test_fleet();
	test_no_groups();
	test_many();
	test_overhead_signed();
	CHECK_DONE();
}
