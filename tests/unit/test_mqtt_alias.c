/* test_mqtt_alias.c - the Topic Alias table (proxy/mqtt/mqtt_alias.c, MQTT 5 §3.3.2.3.4): set and
 * resolve, unknown alias, alias above the maximum, replacement, lowering the maximum, and the
 * 1 MiB byte cap (which also shows the table is sparse: 65535 preallocated slots would not fit). */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "mqtt_alias.h"

static struct mqtt_buf B(const char *s) {
	struct mqtt_buf b = {(const uint8_t *)s, strlen(s)};

	return b;
}

static int
is(struct mqtt_buf b, const char *s)
{
	return b.len == strlen(s) && memcmp(b.p, s, b.len) == 0;
}

static void test_set_resolve(void)
{
	struct mqtt_alias *a = mqtt_alias_new(3);
	struct mqtt_buf out = {NULL, 0}, in = B("a/b");

	CHECK(a != NULL);
	if (!a)
		return;
	/* no alias: the topic as it is; an empty one is an error */
	CHECK_EQ(mqtt_alias_resolve(a, 0, in, &out, NULL), MQTT_PARSE_OK);
	CHECK(out.p == in.p && out.len == 3);
	CHECK_EQ(mqtt_alias_resolve(a, 0, B(""), &out, NULL), MQTT_PARSE_MALFORMED);
	/* unknown alias */
	CHECK_EQ(mqtt_alias_resolve(a, 1, B(""), &out, NULL), MQTT_PARSE_MALFORMED);
	/* set: the packet's topic comes back; resolve: the table's copy */
	CHECK_EQ(mqtt_alias_resolve(a, 1, in, &out, NULL), MQTT_PARSE_OK);
	CHECK(out.p == in.p);
	out = (struct mqtt_buf){NULL, 0};
	CHECK_EQ(mqtt_alias_resolve(a, 1, B(""), &out, NULL), MQTT_PARSE_OK);
	CHECK(is(out, "a/b") && out.p != in.p);
	CHECK_EQ(mqtt_alias_resolve(a, 3, B("c"), &out, NULL), MQTT_PARSE_OK);
	CHECK_EQ(mqtt_alias_resolve(a, 2, B(""), &out, NULL), MQTT_PARSE_MALFORMED);
	/* above the maximum, set or resolve */
	CHECK_EQ(mqtt_alias_resolve(a, 4, B("x"), &out, NULL), MQTT_PARSE_MALFORMED);
	CHECK_EQ(mqtt_alias_resolve(a, 4, B(""), &out, NULL), MQTT_PARSE_MALFORMED);
	CHECK_EQ(mqtt_alias_resolve(a, 65535, B("x"), &out, NULL), MQTT_PARSE_MALFORMED);
	/* replacement */
	CHECK_EQ(mqtt_alias_resolve(a, 1, B("c/d/e"), &out, NULL), MQTT_PARSE_OK);
	CHECK_EQ(mqtt_alias_resolve(a, 1, B(""), &out, NULL), MQTT_PARSE_OK);
	CHECK(is(out, "c/d/e"));
	CHECK_EQ(mqtt_alias_resolve(a, 1, B("c/d/e"), &out, NULL), MQTT_PARSE_OK); /* same again */
	CHECK_EQ(mqtt_alias_resolve(a, 1, B(""), &out, NULL), MQTT_PARSE_OK);
	CHECK(is(out, "c/d/e"));
	CHECK_EQ(mqtt_alias_resolve(a, 3, B(""), &out, NULL), MQTT_PARSE_OK);
	CHECK(is(out, "c"));
	mqtt_alias_free(a);
	mqtt_alias_free(NULL);
}

static void test_max(void)
{
	struct mqtt_alias *a = mqtt_alias_new(0), *b = mqtt_alias_new(65535);
	struct mqtt_buf out;
	unsigned i;

	CHECK(a && b);
	if (!a || !b)
		goto out;
	/* Topic Alias Maximum 0: no alias is allowed (§3.2.2.3.8) */
	CHECK_EQ(mqtt_alias_resolve(a, 1, B("x"), &out, NULL), MQTT_PARSE_MALFORMED);
	mqtt_alias_set_max(a, 10);
	for (i = 1; i <= 10; i++)
		CHECK_EQ(mqtt_alias_resolve(a, (uint16_t)i, B(i % 2 ? "odd" : "even"), &out, NULL), MQTT_PARSE_OK);
	/* lowering the maximum drops what is above it for good */
	mqtt_alias_set_max(a, 5);
	CHECK_EQ(mqtt_alias_resolve(a, 7, B(""), &out, NULL), MQTT_PARSE_MALFORMED);
	mqtt_alias_set_max(a, 10);
	CHECK_EQ(mqtt_alias_resolve(a, 7, B(""), &out, NULL), MQTT_PARSE_MALFORMED);
	for (i = 1; i <= 5; i++) {
		CHECK_EQ(mqtt_alias_resolve(a, (uint16_t)i, B(""), &out, NULL), MQTT_PARSE_OK);
		CHECK(is(out, i % 2 ? "odd" : "even"));
	}
	/* sparse aliases at both ends of the range */
	CHECK_EQ(mqtt_alias_resolve(b, 65535, B("last"), &out, NULL), MQTT_PARSE_OK);
	CHECK_EQ(mqtt_alias_resolve(b, 1, B("first"), &out, NULL), MQTT_PARSE_OK);
	CHECK_EQ(mqtt_alias_resolve(b, 32768, B("mid"), &out, NULL), MQTT_PARSE_OK);
	CHECK(mqtt_alias_resolve(b, 65535, B(""), &out, NULL) == MQTT_PARSE_OK && is(out, "last"));
	CHECK(mqtt_alias_resolve(b, 32768, B(""), &out, NULL) == MQTT_PARSE_OK && is(out, "mid"));
	CHECK_EQ(mqtt_alias_resolve(b, 32767, B(""), &out, NULL), MQTT_PARSE_MALFORMED);
out:
	mqtt_alias_free(a);
	mqtt_alias_free(b);
}

/* 1 MiB per table: 17 topics of 60000 bytes fit (1,020,000 bytes plus slots), the 18th does not. */
static void test_byte_cap(void)
{
	struct mqtt_alias *a = mqtt_alias_new(65535);
	char *big = malloc(60001);
	struct mqtt_buf out, t;
	unsigned i, ok = 0;

	CHECK(a && big);
	if (!a || !big)
		goto out;
	memset(big, 't', 60000);
	big[60000] = 0;
	t = (struct mqtt_buf){(const uint8_t *)big, 60000};
	for (i = 1; i <= 18; i++) {
		enum mqtt_parse rc = mqtt_alias_resolve(a, (uint16_t)(i * 1000), t, &out, NULL);

		if (rc == MQTT_PARSE_OK)
			ok++;
		CHECK_EQ(rc, i <= 17 ? MQTT_PARSE_OK : MQTT_PARSE_TOO_LARGE);
	}
	CHECK_EQ(ok, 17);
	CHECK_EQ(mqtt_alias_resolve(a, 18000, B(""), &out, NULL), MQTT_PARSE_MALFORMED); /* not recorded */
	CHECK(mqtt_alias_resolve(a, 17000, B(""), &out, NULL) == MQTT_PARSE_OK && out.len == 60000);
	/* growing an existing alias past the cap fails too, and leaves it as it was */
	CHECK_EQ(mqtt_alias_resolve(a, 1000, B("s"), &out, NULL), MQTT_PARSE_OK);
	CHECK_EQ(mqtt_alias_resolve(a, 18000, t, &out, NULL), MQTT_PARSE_OK); /* the freed room is reusable */
	CHECK_EQ(mqtt_alias_resolve(a, 1000, t, &out, NULL), MQTT_PARSE_TOO_LARGE);
	CHECK(mqtt_alias_resolve(a, 1000, B(""), &out, NULL) == MQTT_PARSE_OK && is(out, "s"));
out:
	free(big);
	mqtt_alias_free(a);
}

/* Many tiny topics: the slots count too, so the table stops before 65535 entries, and what was
 * recorded before the refusal still resolves. */
static void test_many_aliases(void)
{
	struct mqtt_alias *a = mqtt_alias_new(65535);
	struct mqtt_buf out;
	unsigned i, ok = 0;
	enum mqtt_parse rc = MQTT_PARSE_OK;

	CHECK(a != NULL);
	if (!a)
		return;
	for (i = 1; i <= 65535 && rc == MQTT_PARSE_OK; i++)
		if ((rc = mqtt_alias_resolve(a, (uint16_t)i, B("t"), &out, NULL)) == MQTT_PARSE_OK)
			ok++;
	CHECK_EQ(rc, MQTT_PARSE_TOO_LARGE);
	CHECK(ok > 20000 && ok < 65535);
	/* exactly: 16-byte slots, load factor 3/4: 32768 slots (512 KiB) hold 24576 entries, and the
	 * next doubling alone would be 1 MiB */
	if (sizeof(void *) == 8)
		CHECK_EQ(ok, 24576);
	CHECK(mqtt_alias_resolve(a, 1, B(""), &out, NULL) == MQTT_PARSE_OK && is(out, "t"));
	CHECK(mqtt_alias_resolve(a, (uint16_t)ok, B(""), &out, NULL) == MQTT_PARSE_OK && is(out, "t"));
	CHECK_EQ(mqtt_alias_resolve(a, (uint16_t)(ok + 1), B(""), &out, NULL), MQTT_PARSE_MALFORMED);
	mqtt_alias_free(a);
}

int main(void)
{
	test_set_resolve();
	test_max();
	test_byte_cap();
	test_many_aliases();
	CHECK_DONE();
}
