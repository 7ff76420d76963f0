/* test_presence.c - the presence message (key-exchange protocol version 2, type 0x03): the golden
 * vectors of tests/vectors/golden.txt byte for byte (online and the will of node-a), a round trip
 * with a fresh key, the strict parser (every preamble field, state, ids, every truncation, one
 * byte more), every single-bit flip refused by parse or verify, the topic binding (another node's
 * topic, another prefix) and the wrong key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "presence.h"

#include "check.h"
#include "golden_vectors.h"

struct fixture {
	struct id_key *key_a;
	struct id_pub *pub_a, *pub_b;
	char id_a[80], topic[80];
	uint64_t session, issued_at;
	uint8_t online[PRES_MAX_LEN], will[PRES_MAX_LEN];
	size_t online_len, will_len;
};

static void load(struct fixture *f)
{
	uint8_t buf[64];

	golden_str("id_a", f->id_a, sizeof(f->id_a));
	golden_str("topic_presence", f->topic, sizeof(f->topic));
	CHECK_EQ(golden_hex("id_seed_a", buf, sizeof(buf)), ID_SEED_LEN);
	CHECK_EQ(id_key_from_seed(buf, &f->key_a), PX_OK);
	CHECK_EQ(golden_hex("id_pub_a", buf, sizeof(buf)), ID_PUB_LEN);
	CHECK_EQ(id_pub_new(buf, &f->pub_a), PX_OK);
	CHECK_EQ(golden_hex("id_pub_b", buf, sizeof(buf)), ID_PUB_LEN);
	CHECK_EQ(id_pub_new(buf, &f->pub_b), PX_OK);
	f->session = golden_u64("pres_session");
	f->issued_at = golden_u64("pres_issued_at");
	f->online_len = golden_hex("presence_online", f->online, sizeof(f->online));
	f->will_len = golden_hex("presence_will", f->will, sizeof(f->will));
}

static void unload(struct fixture *f)
{
	id_key_free(f->key_a);
	id_pub_free(f->pub_a);
	id_pub_free(f->pub_b);
}

/* crypto/ builds exactly the bytes golden.py computed from the spec, and reads them back. */
static void test_golden(struct fixture *f)
{
	struct pres_info on = {f->id_a, true, f->session, f->issued_at};
	struct pres_info off = {f->id_a, false, f->session, f->session};
	uint8_t out[PRES_MAX_LEN];
	struct pres_view v;
	size_t len = 0;

	CHECK_EQ(pres_build(f->key_a, f->topic, &on, out, &len), PX_OK);
	CHECK_EQ(len, f->online_len);
	CHECK_MEM(out, f->online, f->online_len);
	CHECK_EQ(pres_build(f->key_a, f->topic, &off, out, &len), PX_OK);
	CHECK_EQ(len, f->will_len);
	CHECK_MEM(out, f->will, f->will_len);

	CHECK_EQ(pres_parse(f->online, f->online_len, &v), PX_OK);
	CHECK(strcmp(v.sender_id, f->id_a) == 0);
	CHECK_EQ(v.state, PRES_STATE_ONLINE);
	CHECK_EQ(v.session, f->session);
	CHECK_EQ(v.issued_at_ms, f->issued_at);
	CHECK_EQ(v.suite, PRES_SUITE_1);
	CHECK_EQ(pres_verify(&v, f->pub_a, f->topic), PX_OK);
	CHECK_EQ(pres_parse(f->will, f->will_len, &v), PX_OK);
	CHECK_EQ(v.state, PRES_STATE_OFFLINE);
	CHECK_EQ(v.issued_at_ms, f->session);
	CHECK_EQ(pres_verify(&v, f->pub_a, f->topic), PX_OK);
}

/* A fresh key and the longest id: build, parse, verify; the sizes are the documented bounds. */
static void test_round_trip(void)
{
	char id[PRES_ID_MAX + 1], topic[128];
	struct pres_info info = {id, true, 5, 6};
	struct id_key *k = NULL;
	struct id_pub *pub = NULL;
	uint8_t out[PRES_MAX_LEN], raw[ID_PUB_LEN];
	struct pres_view v;
	size_t len = 0;

	memset(id, 'z', PRES_ID_MAX);
	id[PRES_ID_MAX] = '\0';
	snprintf(topic, sizeof(topic), "p/presence/%s", id);
	CHECK_EQ(id_key_generate(&k), PX_OK);
	CHECK_EQ(id_key_public(k, raw), PX_OK);
	CHECK_EQ(id_pub_new(raw, &pub), PX_OK);
	CHECK_EQ(pres_build(k, topic, &info, out, &len), PX_OK);
	CHECK_EQ(len, PRES_MAX_LEN);
	CHECK_EQ(pres_parse(out, len, &v), PX_OK);
	CHECK(strcmp(v.sender_id, id) == 0);
	CHECK_EQ(pres_verify(&v, pub, topic), PX_OK);

	info.sender_id = "x";
	CHECK_EQ(pres_build(k, "x", &info, out, &len), PX_OK); /* a topic of one level */
	CHECK_EQ(len, PRES_MIN_LEN);
	CHECK_EQ(pres_parse(out, len, &v), PX_OK);
	CHECK_EQ(pres_verify(&v, pub, "x"), PX_OK);
	id_key_free(k);
	id_pub_free(pub);
}

/* The builder refuses what no receiver would accept. */
static void test_build_refuses(struct fixture *f)
{
	struct pres_info info = {f->id_a, true, 1, 1};
	uint8_t out[PRES_MAX_LEN];
	size_t len = 7;

	CHECK_EQ(pres_build(f->key_a, "mqseal/presence/node-b", &info, out, &len), PX_ERR_INVAL);
	CHECK_EQ(len, 0);
	CHECK_EQ(pres_build(f->key_a, "mqseal/presence/node-a/", &info, out, &len), PX_ERR_INVAL);
	CHECK_EQ(pres_build(f->key_a, NULL, &info, out, &len), PX_ERR_INVAL);
	info.sender_id = "bad/id";
	CHECK_EQ(pres_build(f->key_a, "mqseal/presence/bad/id", &info, out, &len), PX_ERR_INVAL);
	info.sender_id = "";
	CHECK_EQ(pres_build(f->key_a, "mqseal/presence/", &info, out, &len), PX_ERR_INVAL);
	info.sender_id = NULL;
	CHECK_EQ(pres_build(f->key_a, "mqseal/presence/x", &info, out, &len), PX_ERR_INVAL);
	CHECK_EQ(pres_build(NULL, f->topic, NULL, out, &len), PX_ERR_INVAL);
}

static enum px_err parse_with(const struct fixture *f, size_t at, uint8_t value)
{
	uint8_t m[PRES_MAX_LEN];
	struct pres_view v;
	enum px_err rc;

	memcpy(m, f->online, f->online_len);
	m[at] = value;
	rc = pres_parse(m, f->online_len, &v);
	if (rc != PX_OK)
		CHECK(v.buf == NULL && v.sender_id[0] == '\0'); /* nothing half-filled is left */
	return rc;
}

/* Each preamble field, the state and the id, one at a time. */
static void test_strict_fields(struct fixture *f)
{
	CHECK_EQ(parse_with(f, 0, 'X'), PX_ERR_MALFORMED); /* magic */
	CHECK_EQ(parse_with(f, 3, 'l'), PX_ERR_MALFORMED);
	CHECK_EQ(parse_with(f, 4, 0x01), PX_ERR_VERSION); /* version 1 has no presence */
	CHECK_EQ(parse_with(f, 4, 0x03), PX_ERR_VERSION);
	CHECK_EQ(parse_with(f, 5, 0x01), PX_ERR_MALFORMED); /* an announcement's type */
	CHECK_EQ(parse_with(f, 5, 0x02), PX_ERR_MALFORMED);
	CHECK_EQ(parse_with(f, 5, 0x04), PX_ERR_MALFORMED);
	CHECK_EQ(parse_with(f, 6, 0x02), PX_ERR_VERSION); /* suite */
	CHECK_EQ(parse_with(f, 7, 0x01), PX_ERR_VERSION); /* flags: none defined */
	CHECK_EQ(parse_with(f, 7, 0x80), PX_ERR_VERSION);
	CHECK_EQ(parse_with(f, 8, 0), PX_ERR_MALFORMED);    /* id length 0 */
	CHECK_EQ(parse_with(f, 8, 7), PX_ERR_MALFORMED);    /* id length off by one */
	CHECK_EQ(parse_with(f, 8, 5), PX_ERR_MALFORMED);
	CHECK_EQ(parse_with(f, 8, 200), PX_ERR_MALFORMED);  /* longer than the message */
	CHECK_EQ(parse_with(f, 13, '/'), PX_ERR_MALFORMED); /* id charset: node-/ */
	CHECK_EQ(parse_with(f, 13, '+'), PX_ERR_MALFORMED);
	CHECK_EQ(parse_with(f, 13, 0), PX_ERR_MALFORMED);
	CHECK_EQ(parse_with(f, 15, 0x02), PX_ERR_MALFORMED); /* state */
	CHECK_EQ(parse_with(f, 15, 0xff), PX_ERR_MALFORMED);
	CHECK_EQ(parse_with(f, 15, 0x00), PX_OK); /* offline parses (and fails verify, below) */
}

/* Every shorter prefix and one byte more are refused; so is anything over the maximum. */
static void test_lengths(struct fixture *f)
{
	uint8_t big[PRES_MAX_LEN + 2];
	struct pres_view v;
	size_t n;

	for (n = 0; n < f->online_len; n++)
		CHECK(pres_parse(f->online, n, &v) != PX_OK);
	memset(big, 0, sizeof(big));
	memcpy(big, f->online, f->online_len);
	CHECK_EQ(pres_parse(big, f->online_len + 1, &v), PX_ERR_MALFORMED);
	CHECK_EQ(pres_parse(big, PRES_MAX_LEN + 1, &v), PX_ERR_TOO_LARGE);
	CHECK_EQ(pres_parse(big, PRES_MIN_LEN - 1, &v), PX_ERR_MALFORMED);
	CHECK_EQ(pres_parse(NULL, 10, &v), PX_ERR_INVAL);
}

/* No single-bit change of the message survives both the parse and the signature check. */
static void test_every_flip(struct fixture *f)
{
	uint8_t m[PRES_MAX_LEN];
	struct pres_view v;
	enum px_err rc;
	size_t i;
	unsigned bit;

	for (i = 0; i < f->online_len; i++) {
		for (bit = 0; bit < 8; bit++) {
			memcpy(m, f->online, f->online_len);
			m[i] ^= (uint8_t)(1u << bit);
			if (pres_parse(m, f->online_len, &v) != PX_OK)
				continue;
			rc = pres_verify(&v, f->pub_a, f->topic);
			/* a flip in the id names another node: wrong topic before any signature work */
			CHECK(rc == PX_ERR_AUTH || (rc == PX_ERR_TOPIC && i >= 9 && i < 15));
		}
	}
}

/* The signature binds the topic; the topic's last level must be the sender id. */
static void test_topic_and_key(struct fixture *f)
{
	struct pres_view v;

	CHECK_EQ(pres_parse(f->online, f->online_len, &v), PX_OK);
	CHECK(pres_topic_names_sender(&v, f->topic));
	CHECK(pres_topic_names_sender(&v, "node-a"));
	CHECK(!pres_topic_names_sender(&v, "mqseal/presence/node-b"));
	CHECK(!pres_topic_names_sender(&v, "mqseal/presence/node-a/x"));
	CHECK(!pres_topic_names_sender(&v, "mqseal/presence/node-"));
	CHECK_EQ(pres_verify(&v, f->pub_a, "mqseal/presence/node-b"), PX_ERR_TOPIC);
	CHECK_EQ(pres_verify(&v, f->pub_a, "other/presence/node-a"), PX_ERR_AUTH); /* another prefix */
	CHECK_EQ(pres_verify(&v, f->pub_a, "mqseal/kx/node-b/node-a"), PX_ERR_AUTH);
	CHECK_EQ(pres_verify(&v, f->pub_b, f->topic), PX_ERR_AUTH); /* someone else's key */
	CHECK_EQ(pres_verify(&v, f->pub_a, NULL), PX_ERR_INVAL);
	CHECK_EQ(pres_verify(NULL, f->pub_a, f->topic), PX_ERR_INVAL);
	CHECK_EQ(pres_verify(&v, NULL, f->topic), PX_ERR_INVAL);
}

/* The will and the online message differ only in state and issued_at: neither signature fits the
 * other's bytes (a will cannot be turned into an online message). */
static void test_state_bound(struct fixture *f)
{
	uint8_t m[PRES_MAX_LEN];
	struct pres_view v;

	memcpy(m, f->will, f->will_len);
	m[15] = PRES_STATE_ONLINE;
	CHECK_EQ(pres_parse(m, f->will_len, &v), PX_OK);
	CHECK_EQ(pres_verify(&v, f->pub_a, f->topic), PX_ERR_AUTH);
	memcpy(m, f->online, f->online_len - 64);
	memcpy(m + f->online_len - 64, f->will + f->will_len - 64, 64);
	CHECK_EQ(pres_parse(m, f->online_len, &v), PX_OK);
	CHECK_EQ(pres_verify(&v, f->pub_a, f->topic), PX_ERR_AUTH);
}

int main(int argc, char **argv)
{
	struct fixture f;

	if (argc < 2 || golden_load(argv[1]) <= 0) {
		fprintf(stderr, "usage: test_presence TESTS_DIR\n");
		return 2;
	}
	memset(&f, 0, sizeof(f));
	load(&f);
	test_golden(&f);
	test_round_trip();
	test_build_refuses(&f);
	test_strict_fields(&f);
	test_lengths(&f);
	test_every_flip(&f);
	test_topic_and_key(&f);
	test_state_bound(&f);
	unload(&f);
	CHECK_DONE();
}
