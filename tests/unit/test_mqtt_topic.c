/* test_mqtt_topic.c - UTF-8 validity, topic names and filters, matching (with the '$' rule),
 * shared subscriptions and filter overlap (proxy/mqtt/mqtt_topic.c). The match table follows the
 * examples of MQTT 5 §4.7.1-4.7.2; overlap is also cross-checked against matching over a
 * complete set of small topics. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mqtt_codec.h"
#include "mqtt_topic.h"

#define S(s) (const uint8_t *)(s), strlen(s)

static void test_utf8(void)
{
	static const char *const good[] = {
		"",
		"a",
		"\xC3\xA9" /* U+00E9 */,
		"\xE2\x82\xAC" /* U+20AC */,
		"\xF0\x9D\x84\x9E" /* U+1D11E */,
		"\xF4\x8F\xBF\xBF" /* U+10FFFF */,
		"\xEF\xBF\xBF" /* U+FFFF: "SHOULD NOT", allowed */,
		"\x01\x7F" /* control characters: allowed */,
		"\xED\x9F\xBF" /* U+D7FF */,
	};
	static const char *const bad[] = {
		"\xC3",
		"\xC3\x28",
		"\xC0\x80" /* overlong U+0000 */,
		"\xC1\xBF" /* overlong */,
		"\xE0\x80\x80",
		"\xE0\x9F\xBF" /* overlong */,
		"\xED\xA0\x80" /* U+D800 */,
		"\xED\xBF\xBF" /* U+DFFF */,
		"\xF4\x90\x80\x80" /* U+110000 */,
		"\xF0\x80\x80\x80",
		"\xF8\x88\x80\x80\x80",
		"\x80",
		"\xFF",
		"\xE2\x82",
		"a\xE2\x82",
		"\xE2\x28\xAC",
	};
	static const uint8_t nul[] = {'a', 0, 'b'}; /* U+0000 [MQTT-1.5.4-2] */
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK(mqtt_utf8_valid(S(good[i])));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(!mqtt_utf8_valid(S(bad[i])));
		if (mqtt_utf8_valid(S(bad[i])))
			fprintf(stderr, "  accepted bad[%zu]\n", i);
	}
	CHECK(!mqtt_utf8_valid(nul, sizeof(nul)));
	/* the eight-bytes-at-once path: a NUL, a bad byte or a good sequence at every position */
	for (size_t len = 1; len <= 40; len++) {
		uint8_t buf[40];
		for (size_t at = 0; at < len; at++) {
			memset(buf, 'a', len);
			buf[at] = 0;
			CHECK(!mqtt_utf8_valid(buf, len));
			buf[at] = 0xFF;
			CHECK(!mqtt_utf8_valid(buf, len));
			buf[at] = 0x7F;
			CHECK(mqtt_utf8_valid(buf, len));
			if (at + 1 < len) {
				buf[at] = 0xC3; /* U+00E9 */
				buf[at + 1] = 0xA9;
				CHECK(mqtt_utf8_valid(buf, len));
				buf[at + 1] = 'a'; /* a lead byte without its continuation */
				CHECK(!mqtt_utf8_valid(buf, len));
			}
		}
	}
}

static void test_names_filters(void)
{
	static const char *const names[] = {"a", "/", "a//b", "$SYS/x", " ", "sport/tennis/player1", "a/"};
	static const char *const bad_names[] = {"", "a/+", "#", "a+b", "x#", "\xC3"};
	static const char *const filters[] = {"#",	"+",  "a/#", "+/+", "/+",	 "a/+/b",
					      "$SYS/#", "//", "a/b", "+/#", "$share/g/a"};
	static const char *const bad_filters[] = {"",	  "a#",	  "a/#/b", "#/a", "a+",
						  "+a/b", "a/b+", "##",	   "++",  "\xFF/#"};
	uint8_t *big = malloc(65536);
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		CHECK(mqtt_topic_name_valid(S(names[i])) && mqtt_topic_filter_valid(S(names[i])));
	for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
		CHECK(!mqtt_topic_name_valid(S(bad_names[i])));
	for (i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
		CHECK(mqtt_topic_filter_valid(S(filters[i])));
	for (i = 0; i < sizeof(bad_filters) / sizeof(bad_filters[0]); i++) {
		CHECK(!mqtt_topic_filter_valid(S(bad_filters[i])));
		CHECK(!mqtt_topic_name_valid(S(bad_filters[i])));
	}
	CHECK(big != NULL);
	if (!big)
		return;
	memset(big, 'x', 65536);
	CHECK(mqtt_topic_name_valid(big, 65535)); /* the longest UTF-8 string (§1.5.4) */
	CHECK(!mqtt_topic_name_valid(big, 65536));
	CHECK(!mqtt_topic_filter_valid(big, 65536));
	free(big);
}

struct match_case {
	const char *filter, *topic;
	bool match;
};

static const struct match_case matches[] = {
	{"sport/tennis/player1/#", "sport/tennis/player1", true}, /* §4.7.1.2 */
	{"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
	{"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
	{"sport/#", "sport", true},
	{"#", "sport/tennis", true},
	{"#", "/", true},
	{"sport/tennis/+", "sport/tennis/player1", true}, /* §4.7.1.3 */
	{"sport/tennis/+", "sport/tennis/player1/ranking", false},
	{"sport/+", "sport", false},
	{"sport/+", "sport/", true},
	{"+/+", "/finance", true},
	{"/+", "/finance", true},
	{"+", "/finance", false},
	{"+", "finance", true},
	{"#", "$SYS/monitor/Clients", false}, /* §4.7.2 */
	{"+/monitor/Clients", "$SYS/monitor/Clients", false},
	{"$SYS/#", "$SYS/monitor/Clients", true},
	{"$SYS/monitor/+", "$SYS/monitor/Clients", true},
	{"$a/+", "$a/b", true}, /* a literal "$" level matches itself */
	{"+/+", "x/$a", true},	/* only the first level counts for the '$' rule */
	{"a//b", "a//b", true},
	{"a/+/b", "a//b", true},
	{"a/b", "a/b/", false},
	{"a/b/", "a/b/", true},
	{"a/b/#", "a/b/", true},
	{"ACCOUNTS", "Accounts", false}, /* case-sensitive (§4.7.3) */
	{"a/b", "a/b", true},
	{"a/b", "a", false},
	{"a", "a/b", false},
	{"$share/g/a", "a", false}, /* a share filter is literal here */
	{"a/#", "a/+", false},	    /* topic not valid */
	{"a/#/b", "a/x/b", false},  /* filter not valid */
};

static void test_match(void)
{
	size_t i;

	for (i = 0; i < sizeof(matches) / sizeof(matches[0]); i++) {
		const struct match_case *m = &matches[i];

		CHECK_EQ(mqtt_topic_match(S(m->filter), S(m->topic)), m->match);
		if (mqtt_topic_match(S(m->filter), S(m->topic)) != m->match)
			fprintf(stderr, "  \"%s\" vs \"%s\"\n", m->filter, m->topic);
	}
}

static void test_share(void)
{
	static const char *const not_shares[] = {"$share//a",  "$share/g",   "$share/g/",
						 "$share/+/a", "$share/#/a", "$sharex/g/a",
						 "a/b",	       "$SHARE/g/a", "$share"};
	const uint8_t *inner = NULL;
	size_t len = 0, i;

	CHECK(mqtt_topic_share_split(S("$share/g/a/b"), &inner, &len));
	CHECK(len == 3 && memcmp(inner, "a/b", 3) == 0);
	CHECK(mqtt_topic_share_split(S("$share/group1/#"), &inner, &len));
	CHECK(len == 1 && inner[0] == '#');
	CHECK(mqtt_topic_share_split(S("$share/g//"), &inner, &len) && len == 1);
	for (i = 0; i < sizeof(not_shares) / sizeof(not_shares[0]); i++)
		CHECK(!mqtt_topic_share_split(S(not_shares[i]), &inner, &len));
}

struct overlap_case {
	const char *a, *b;
	bool overlap;
};

static const struct overlap_case overlaps[] = {
	{"a/+", "+/b", true},	 {"a/b", "a/c", false},	   {"a/#", "a", true},	       {"a/#", "b/#", false},
	{"#", "$SYS/#", false},	 {"+/x", "$SYS/x", false}, {"$SYS/#", "$SYS/+", true}, {"#", "+", true},
	{"a/+/c", "a/b", false}, {"a/+", "a/b/c", false},  {"a/+/#", "a/b", true},     {"a/b/#", "a", false},
	{"+/+", "/", true},	 {"#", "#", true},	   {"a/b", "a/b", true},       {"a/b", "", false},
	{"+/b", "$x/b", false},	 {"a/+/+", "a/#", true},   {"+", "/#", false},	       {"/", "/#", true},
	{"+/+", "/#", true},
};

/* Every topic of up to 4 levels over {a, b, c, $S, ""}: enough witnesses for the filters below. */
static const char *const lv[] = {"a", "b", "c", "$S", ""};

static bool witness_exists(const char *fa, const char *fb)
{
	char t[64];
	unsigned depth, n, k, idx, total;

	for (depth = 1; depth <= 4; depth++) {
		for (total = 1, k = 0; k < depth; k++)
			total *= 5;
		for (n = 0; n < total; n++) {
			t[0] = 0;
			for (idx = n, k = 0; k < depth; k++, idx /= 5) {
				if (k)
					strcat(t, "/");
				strcat(t, lv[idx % 5]);
			}
			if (mqtt_topic_match(S(fa), S(t)) && mqtt_topic_match(S(fb), S(t)))
				return true;
		}
	}
	return false;
}

static void test_overlap(void)
{
	static const char *const fs[] = {"#",	 "+",	 "a",	"a/#",	 "a/+",	  "+/b", "+/+",
					 "$S/#", "$S/+", "+/#", "a/b",	 "a/+/b", "/",	 "/#",
					 "+/",	 "a//b", "$S",	"b/+/#", "a/b/c"};
	size_t i, j;

	for (i = 0; i < sizeof(overlaps) / sizeof(overlaps[0]); i++) {
		const struct overlap_case *o = &overlaps[i];

		CHECK_EQ(mqtt_topic_filters_overlap(S(o->a), S(o->b)), o->overlap);
		CHECK_EQ(mqtt_topic_filters_overlap(S(o->b), S(o->a)), o->overlap);
	}
	for (i = 0; i < sizeof(fs) / sizeof(fs[0]); i++) {
		for (j = 0; j < sizeof(fs) / sizeof(fs[0]); j++) {
			bool want = witness_exists(fs[i], fs[j]);

			CHECK_EQ(mqtt_topic_filters_overlap(S(fs[i]), S(fs[j])), want);
			if (mqtt_topic_filters_overlap(S(fs[i]), S(fs[j])) != want)
				fprintf(stderr, "  overlap \"%s\" \"%s\"\n", fs[i], fs[j]);
		}
	}
}

int main(void)
{
	test_utf8();
	test_names_filters();
	test_match();
	test_share();
	test_overlap();
	CHECK_DONE();
}
