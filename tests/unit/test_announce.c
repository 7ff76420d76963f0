/* test_announce.c - key announcements (PROTOCOL.md §7) and confirmations (§8): the golden vectors
 * of §12 byte for byte, the strict parser (every flip, every truncation, unknown version, type,
 * suite and flags, too many entries, bad ids), signatures (wrong key, wrong topic), unwrapping
 * with the wrong key, and a round trip between two nodes A and B through their key rings. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "announce_internal.h"
#include "keyring.h"

#include "check.h"
#include "golden_vectors.h"

struct node {
	char id[80];
	struct id_key *idk;
	struct id_pub *pub;
	struct kex_key *eph;
	uint8_t eph_pub[KEX_PUB_LEN];
};

struct world {
	struct node a, b, c;
	char topic_ann[80], topic_ann_c[80], topic_ack[80];
	uint8_t secret[ANN_SECRET_LEN];
	uint8_t ann[4096], ann_c[4096], ack[512];
	size_t ann_len, ann_c_len, ack_len;
};

static void load_node(struct node *n, const char *letter, int with_id)
{
	char name[32];
	uint8_t buf[64], pub[ID_PUB_LEN];

	snprintf(name, sizeof(name), "id_%s", letter);
	golden_str(name, n->id, sizeof(n->id));
	snprintf(name, sizeof(name), "eph_priv_%s", letter);
	CHECK_EQ(golden_hex(name, buf, sizeof(buf)), KEX_PRIV_LEN);
	CHECK_EQ(kex_key_from_private(buf, &n->eph), PX_OK);
	CHECK_EQ(kex_key_public(n->eph, n->eph_pub), PX_OK);
	snprintf(name, sizeof(name), "eph_pub_%s", letter);
	golden_hex(name, buf, sizeof(buf));
	CHECK_MEM(n->eph_pub, buf, KEX_PUB_LEN);
	if (!with_id)
		return;
	snprintf(name, sizeof(name), "id_seed_%s", letter);
	CHECK_EQ(golden_hex(name, buf, sizeof(buf)), ID_SEED_LEN);
	CHECK_EQ(id_key_from_seed(buf, &n->idk), PX_OK);
	CHECK_EQ(id_key_public(n->idk, pub), PX_OK);
	snprintf(name, sizeof(name), "id_pub_%s", letter);
	golden_hex(name, buf, sizeof(buf));
	CHECK_MEM(pub, buf, ID_PUB_LEN);
	CHECK_EQ(id_pub_new(pub, &n->pub), PX_OK);
}

static void free_node(struct node *n)
{
	id_key_free(n->idk);
	id_pub_free(n->pub);
	kex_key_free(n->eph);
}

static void load_world(struct world *w)
{
	load_node(&w->a, "a", 1);
	load_node(&w->b, "b", 1);
	load_node(&w->c, "c", 0);
	golden_str("topic_ann", w->topic_ann, sizeof(w->topic_ann));
	golden_str("topic_ann_c", w->topic_ann_c, sizeof(w->topic_ann_c));
	golden_str("topic_ack", w->topic_ack, sizeof(w->topic_ack));
	golden_hex("sender_secret_a", w->secret, sizeof(w->secret));
	w->ann_len = golden_hex("announce", w->ann, sizeof(w->ann));
	w->ann_c_len = golden_hex("announce_c", w->ann_c, sizeof(w->ann_c));
	w->ack_len = golden_hex("ack", w->ack, sizeof(w->ack));
}

/* A's announcement of epoch_a to B (r[0]); golden_params_c: the one to C (r[1], REVOKE). */
static void golden_params(struct world *w, struct ann_recipient r[2], struct ann_params *p)
{
	memset(r, 0, 2 * sizeof(*r));
	r[0].id = w->b.id;
	memcpy(r[0].eph_pub, w->b.eph_pub, KEX_PUB_LEN);
	r[0].acked_epoch = golden_u64("acked_epoch_b");
	r[0].counter_floor = golden_u64("counter_floor_b");
	r[1].id = w->c.id;
	memcpy(r[1].eph_pub, w->c.eph_pub, KEX_PUB_LEN);
	r[1].acked_epoch = golden_u64("acked_epoch_c");
	r[1].counter_floor = golden_u64("counter_floor_c");
	memset(p, 0, sizeof(*p));
	p->sender_id = w->a.id;
	p->epoch = golden_u64("epoch_a");
	p->rev = (uint32_t)golden_u64("rev_a");
	p->issued_at_ms = golden_u64("issued_at_a");
	p->interval_s = (uint32_t)golden_u64("interval_a");
	p->eph = w->a.eph;
	p->secret = w->secret;
	p->recipients = r;
	p->nrecipients = 1;
}

static void golden_params_c(struct world *w, struct ann_recipient r[2], struct ann_params *p)
{
	golden_params(w, r, p);
	p->recipients = &r[1];
	p->rev = (uint32_t)golden_u64("rev_ac");
	p->flags = (uint8_t)golden_u64("flags_ac");
}

static void test_golden_wrap_keys(struct world *w)
{
	uint8_t k[AEAD_KEY_LEN], want[64];

	golden_hex("wrap_key_ab", want, sizeof(want));
	CHECK_EQ(ann_wrap_key_(w->a.eph, w->b.eph_pub, w->a.id, w->b.id, w->a.eph_pub, w->b.eph_pub, k),
		 PX_OK);
	CHECK_MEM(k, want, AEAD_KEY_LEN);
	/* the recipient's side computes the same key */
	CHECK_EQ(ann_wrap_key_(w->b.eph, w->a.eph_pub, w->a.id, w->b.id, w->a.eph_pub, w->b.eph_pub, k),
		 PX_OK);
	CHECK_MEM(k, want, AEAD_KEY_LEN);
	golden_hex("wrap_key_ac", want, sizeof(want));
	CHECK_EQ(ann_wrap_key_(w->c.eph, w->a.eph_pub, w->a.id, w->c.id, w->a.eph_pub, w->c.eph_pub, k),
		 PX_OK);
	CHECK_MEM(k, want, AEAD_KEY_LEN);
	/* the other direction is a different key */
	CHECK_EQ(ann_wrap_key_(w->b.eph, w->a.eph_pub, w->b.id, w->a.id, w->b.eph_pub, w->a.eph_pub, k),
		 PX_OK);
	golden_hex("wrap_key_ab", want, sizeof(want));
	CHECK(memcmp(k, want, AEAD_KEY_LEN) != 0);
}

static void test_golden_announce(struct world *w)
{
	struct ann_recipient r[2];
	struct ann_params p;
	struct ann_view v;
	struct ann_entry e;
	uint8_t *out = NULL, secret[ANN_SECRET_LEN], want[64];
	size_t len = 0;

	golden_params(w, r, &p);
	CHECK_EQ(ann_build(w->a.idk, w->topic_ann, &p, &out, &len), PX_OK);
	CHECK_EQ(len, w->ann_len);
	if (out && len == w->ann_len)
		CHECK_MEM(out, w->ann, len);
	free(out);
	out = NULL;
	/* §7.2 sizes: 67 + len(sender_id) of header, 98 + len(recipient_id) + len(group) for the entry
	 * (the default group: an empty str8), 64 of signature */
	CHECK_EQ(w->ann_len, 67 + strlen(w->a.id) + 98 + strlen(w->b.id) + 64);

	CHECK_EQ(ann_parse(w->ann, w->ann_len, &v), PX_OK);
	CHECK(strcmp(v.sender_id, w->a.id) == 0);
	CHECK_EQ(v.suite, ANN_SUITE_1);
	CHECK_EQ(v.flags, 0);
	CHECK_EQ(v.epoch, p.epoch);
	CHECK_EQ(v.rev, p.rev);
	CHECK_EQ(v.issued_at_ms, p.issued_at_ms);
	CHECK_EQ(v.interval_s, p.interval_s);
	CHECK_MEM(v.eph_pub, w->a.eph_pub, KEX_PUB_LEN);
	CHECK_EQ(v.nentries, 1);
	ann_entry_at(&v, 0, &e);
	CHECK(strcmp(e.recipient_id, w->b.id) == 0);
	CHECK(strcmp(e.group, "") == 0);
	CHECK_EQ(e.index, 0);
	CHECK_MEM(e.recipient_eph, w->b.eph_pub, KEX_PUB_LEN);
	CHECK_EQ(e.acked_epoch, r[0].acked_epoch);
	CHECK_EQ(e.counter_floor, r[0].counter_floor);
	golden_hex("wrapped_ab", want, sizeof(want));
	CHECK_MEM(e.wrapped, want, ANN_WRAPPED_LEN);
	CHECK_EQ(ann_verify(&v, w->a.pub, w->topic_ann), PX_OK);
	CHECK_EQ(ann_verify(&v, w->a.pub, w->topic_ann_c), PX_ERR_AUTH); /* not re-routable */
	CHECK(ann_find_entry(&v, w->b.id, &e));
	CHECK_EQ(ann_unwrap(&v, &e, w->b.id, w->b.eph, secret), PX_OK);
	CHECK_MEM(secret, w->secret, ANN_SECRET_LEN);
	/* B's entry does not open with C's key, nor under the wrong id */
	CHECK_EQ(ann_unwrap(&v, &e, w->b.id, w->c.eph, secret), PX_ERR_AUTH);
	CHECK_EQ(ann_unwrap(&v, &e, w->c.id, w->b.eph, secret), PX_ERR_AUTH);
	CHECK(!ann_find_entry(&v, w->c.id, &e));

	/* the one to C: REVOKE, rev 0 of its own (rev counts per recipient) */
	golden_params_c(w, r, &p);
	CHECK_EQ(ann_build(w->a.idk, w->topic_ann_c, &p, &out, &len), PX_OK);
	CHECK_EQ(len, w->ann_c_len);
	if (out && len == w->ann_c_len)
		CHECK_MEM(out, w->ann_c, len);
	free(out);
	CHECK_EQ(ann_parse(w->ann_c, w->ann_c_len, &v), PX_OK);
	CHECK_EQ(v.flags, ANN_FLAG_REVOKE);
	CHECK_EQ(v.rev, 0);
	CHECK(ann_find_entry(&v, w->c.id, &e));
	CHECK_EQ(e.acked_epoch, 0);
	CHECK_EQ(e.counter_floor, r[1].counter_floor);
	golden_hex("wrapped_ac", want, sizeof(want));
	CHECK_MEM(e.wrapped, want, ANN_WRAPPED_LEN);
	CHECK_EQ(ann_verify(&v, w->a.pub, w->topic_ann_c), PX_OK);
	CHECK_EQ(ann_unwrap(&v, &e, w->c.id, w->c.eph, secret), PX_OK);
	CHECK_MEM(secret, w->secret, ANN_SECRET_LEN);
}

/* §4.2 with a group: "" is the default group's ctx_epoch; a named group's keys are the golden
 * ones and differ from the same secret's default-group keys; invalid names are refused. */
static void test_golden_group_keys(void)
{
	uint8_t secret[ANN_SECRET_LEN], want[32];
	struct epoch_keys k, d;
	char id[16], group[ANN_GROUP_MAX + 2];
	uint64_t epoch = golden_u64("epoch_a");

	golden_str("id_a", id, sizeof(id));
	golden_str("group_g", group, sizeof(group));
	golden_hex("sender_secret_g", secret, sizeof(secret));
	CHECK_EQ(epoch_derive_group(secret, id, epoch, ANN_SUITE_1, group, &k), PX_OK);
	golden_hex("data_key_g", want, sizeof(want));
	CHECK_MEM(k.key, want, sizeof(k.key));
	golden_hex("data_iv_g", want, sizeof(want));
	CHECK_MEM(k.iv, want, sizeof(k.iv));
	golden_hex("key_id_g", want, sizeof(want));
	CHECK_MEM(k.key_id, want, sizeof(k.key_id));
	CHECK_EQ(epoch_derive(secret, id, epoch, ANN_SUITE_1, &d), PX_OK);
	CHECK(memcmp(d.key, k.key, sizeof(k.key)) != 0);
	CHECK(memcmp(d.key_id, k.key_id, sizeof(k.key_id)) != 0);
	CHECK_EQ(epoch_derive_group(secret, id, epoch, ANN_SUITE_1, "", &k), PX_OK);
	CHECK_MEM(k.key, d.key, sizeof(k.key));
	CHECK_MEM(k.key_id, d.key_id, sizeof(k.key_id));
	CHECK_EQ(epoch_derive_group(secret, id, epoch, ANN_SUITE_1, "a b", &k), PX_ERR_INVAL);
	memset(group, 'g', ANN_GROUP_MAX + 1);
	group[ANN_GROUP_MAX + 1] = '\0';
	CHECK_EQ(epoch_derive_group(secret, id, epoch, ANN_SUITE_1, group, &k), PX_ERR_INVAL);
	group[ANN_GROUP_MAX] = '\0'; /* exactly 32: fine */
	CHECK_EQ(epoch_derive_group(secret, id, epoch, ANN_SUITE_1, group, &k), PX_OK);
}

/* §7.2 with a named group: A's message to B with the default entry and one for group_g, golden
 * bytes; entry 1 carries the group, its own index (nonce u32(1) || u64(rev)) and the group's
 * secret; the wrap is bound to its index and to its group (AAD), so neither can be changed. */
static void test_golden_group_announce(struct world *w)
{
	uint8_t want[4096], secret_g[ANN_SECRET_LEN], secret[ANN_SECRET_LEN], *out = NULL;
	struct ann_recipient r[2];
	struct ann_params p;
	struct ann_view v;
	struct ann_entry e;
	char group[ANN_GROUP_MAX + 1];
	size_t want_len, len = 0;

	golden_str("group_g", group, sizeof(group));
	golden_hex("sender_secret_g", secret_g, sizeof(secret_g));
	want_len = golden_hex("announce_g", want, sizeof(want));
	golden_params(w, r, &p);
	r[1] = r[0];
	r[1].group = group;
	r[1].secret = secret_g;
	p.nrecipients = 2;
	CHECK_EQ(ann_build(w->a.idk, w->topic_ann, &p, &out, &len), PX_OK);
	CHECK_EQ(len, want_len);
	if (out && len == want_len)
		CHECK_MEM(out, want, len);
	free(out);
	CHECK_EQ(want_len, 67 + strlen(w->a.id) + 2 * (98 + strlen(w->b.id)) + strlen(group) + 64);
	CHECK_EQ(ann_parse(want, want_len, &v), PX_OK);
	CHECK_EQ(ann_verify(&v, w->a.pub, w->topic_ann), PX_OK);
	CHECK_EQ(v.nentries, 2);
	ann_entry_at(&v, 1, &e);
	CHECK(strcmp(e.recipient_id, w->b.id) == 0);
	CHECK(strcmp(e.group, group) == 0);
	CHECK_EQ(e.index, 1);
	golden_hex("wrapped_abg", want, sizeof(want)); /* want is free again: reused */
	CHECK_MEM(e.wrapped, want, ANN_WRAPPED_LEN);
	CHECK_EQ(ann_unwrap(&v, &e, w->b.id, w->b.eph, secret), PX_OK);
	CHECK_MEM(secret, secret_g, ANN_SECRET_LEN);
	e.index = 0; /* another nonce */
	CHECK_EQ(ann_unwrap(&v, &e, w->b.id, w->b.eph, secret), PX_ERR_AUTH);
	e.index = 1;
	e.group[0] = 'C'; /* another group in the AAD */
	CHECK_EQ(ann_unwrap(&v, &e, w->b.id, w->b.eph, secret), PX_ERR_AUTH);
	e.group[0] = '\0'; /* the default group's AAD */
	CHECK_EQ(ann_unwrap(&v, &e, w->b.id, w->b.eph, secret), PX_ERR_AUTH);
	/* the first entry is the default group's, with the default secret */
	CHECK(ann_find_entry(&v, w->b.id, &e));
	CHECK(strcmp(e.group, "") == 0);
	CHECK_EQ(ann_unwrap(&v, &e, w->b.id, w->b.eph, secret), PX_OK);
	CHECK_MEM(secret, w->secret, ANN_SECRET_LEN);
}

/* Groups on the wire: each at most once per message (build and parse), 0..32 bytes of the id
 * charset. The parse checks run before the signature (§7.3 step 3). */
static void test_group_limits(struct world *w)
{
	struct ann_recipient r[2];
	struct ann_params p;
	struct ann_view v;
	uint8_t *out = NULL;
	size_t len = 0, at;
	char longg[ANN_GROUP_MAX + 2];

	golden_params(w, r, &p);
	r[1] = r[0];
	p.nrecipients = 2;
	CHECK_EQ(ann_build(w->a.idk, w->topic_ann, &p, &out, &len), PX_ERR_INVAL); /* default twice */
	r[0].group = "aa";
	r[1].group = "aa";
	CHECK_EQ(ann_build(w->a.idk, w->topic_ann, &p, &out, &len), PX_ERR_INVAL);
	r[1].group = "a b";
	CHECK_EQ(ann_build(w->a.idk, w->topic_ann, &p, &out, &len), PX_ERR_INVAL);
	memset(longg, 'g', sizeof(longg) - 1);
	longg[sizeof(longg) - 1] = '\0'; /* 33 bytes */
	r[1].group = longg;
	CHECK_EQ(ann_build(w->a.idk, w->topic_ann, &p, &out, &len), PX_ERR_INVAL);
	r[1].group = "bb";
	CHECK_EQ(ann_build(w->a.idk, w->topic_ann, &p, &out, &len), PX_OK);
	CHECK_EQ(ann_parse(out, len, &v), PX_OK);
	/* entry 2's group "bb" -> "aa": a group twice is malformed */
	at = len - 64 - ANN_WRAPPED_LEN - 16 - KEX_PUB_LEN - 2;
	CHECK(out[at] == 'b' && out[at + 1] == 'b');
	out[at] = out[at + 1] = 'a';
	CHECK_EQ(ann_parse(out, len, &v), PX_ERR_MALFORMED);
	out[at] = ' '; /* a bad character */
	CHECK_EQ(ann_parse(out, len, &v), PX_ERR_MALFORMED);
	out[at] = out[at + 1] = 'b';
	out[at - 1] = 33; /* a length over 32 */
	CHECK_EQ(ann_parse(out, len, &v), PX_ERR_MALFORMED);
	free(out);
}

static void test_golden_ack(struct world *w)
{
	uint8_t *out = NULL;
	size_t len = 0;
	struct ack_view v;

	CHECK_EQ(ack_build(w->b.idk, w->topic_ack, w->b.id, w->a.id, golden_u64("epoch_a"),
			   golden_u64("issued_at_ack"), &out, &len),
		 PX_OK);
	CHECK_EQ(len, w->ack_len);
	if (out && len == w->ack_len)
		CHECK_MEM(out, w->ack, len);
	free(out);
	CHECK_EQ(ack_parse(w->ack, w->ack_len, &v), PX_OK);
	CHECK(strcmp(v.sender_id, w->b.id) == 0);
	CHECK(strcmp(v.recipient_id, w->a.id) == 0);
	CHECK_EQ(v.acked_epoch, golden_u64("epoch_a"));
	CHECK_EQ(v.issued_at_ms, golden_u64("issued_at_ack"));
	CHECK_EQ(ack_verify(&v, w->b.pub, w->topic_ack), PX_OK);
	CHECK_EQ(ack_verify(&v, w->a.pub, w->topic_ack), PX_ERR_AUTH);
	CHECK_EQ(ack_verify(&v, w->b.pub, "mqseal/ack/node-a/node-c"), PX_ERR_AUTH);
}

/* Parse, then verify with A's key on A's topic: PX_OK only if both pass. */
static enum px_err parse_verify(struct world *w, const uint8_t *buf, size_t len)
{
	struct ann_view v;
	enum px_err rc = ann_parse(buf, len, &v);

	if (rc != PX_OK)
		return rc;
	for (size_t i = 0; i < v.nentries; i++) {
		struct ann_entry e;
		ann_entry_at(&v, i, &e);
		CHECK(e.wrapped != NULL);
	}
	return ann_verify(&v, w->a.pub, w->topic_ann);
}

static void test_announce_tamper(struct world *w)
{
	uint8_t buf[4096];
	struct ann_view v;
	size_t i, n;
	unsigned b;
	int passed = 0;

	CHECK_EQ(parse_verify(w, w->ann, w->ann_len), PX_OK);
	for (i = 0; i < w->ann_len; i++)
		for (b = 0; b < 8; b++) {
			memcpy(buf, w->ann, w->ann_len);
			buf[i] ^= (uint8_t)(1u << b);
			passed += parse_verify(w, buf, w->ann_len) == PX_OK;
		}
	CHECK_EQ(passed, 0);
	for (n = 0; n < w->ann_len; n++)
		CHECK(parse_verify(w, w->ann, n) != PX_OK);
	memcpy(buf, w->ann, w->ann_len);
	buf[w->ann_len] = 0;
	CHECK_EQ(ann_parse(buf, w->ann_len + 1, &v), PX_ERR_MALFORMED);
	/* signature by an untrusted key, and on another topic */
	CHECK_EQ(ann_parse(w->ann, w->ann_len, &v), PX_OK);
	CHECK_EQ(ann_verify(&v, w->b.pub, w->topic_ann), PX_ERR_AUTH);
	CHECK_EQ(ann_verify(&v, w->a.pub, "mqseal/kx/node-c/node-a"), PX_ERR_AUTH);
	CHECK_EQ(ann_verify(&v, w->a.pub, "mqseal/kx/node-b/node-a/"), PX_ERR_AUTH);
	CHECK_EQ(ann_verify(&v, w->a.pub, ""), PX_ERR_AUTH);
}

/* The preamble and header fields one at a time: each gives its own error. */
static void test_announce_fields(struct world *w)
{
	uint8_t buf[4096];
	struct ann_view v;
	size_t idlen = strlen(w->a.id), nof = 8 + 1 + idlen + 56; /* offset of u16 n */

	memcpy(buf, w->ann, w->ann_len);
	buf[4] = 1; /* version 1: the protocol before per-recipient messages */
	CHECK_EQ(ann_parse(buf, w->ann_len, &v), PX_ERR_VERSION);
	buf[4] = 3;
	CHECK_EQ(ann_parse(buf, w->ann_len, &v), PX_ERR_VERSION);
	memcpy(buf, w->ann, w->ann_len);
	buf[5] = ANN_TYPE_ACK; /* type */
	CHECK_EQ(ann_parse(buf, w->ann_len, &v), PX_ERR_MALFORMED);
	memcpy(buf, w->ann, w->ann_len);
	buf[6] = 2; /* suite */
	CHECK_EQ(ann_parse(buf, w->ann_len, &v), PX_ERR_VERSION);
	memcpy(buf, w->ann, w->ann_len);
	buf[7] = 0x80; /* a reserved flag */
	CHECK_EQ(ann_parse(buf, w->ann_len, &v), PX_ERR_VERSION);
	buf[7] = 0x02;
	CHECK_EQ(ann_parse(buf, w->ann_len, &v), PX_ERR_VERSION);
	buf[7] = ANN_FLAG_REVOKE; /* known: parses (and the signature then fails) */
	CHECK_EQ(ann_parse(buf, w->ann_len, &v), PX_OK);
	CHECK_EQ(ann_verify(&v, w->a.pub, w->topic_ann), PX_ERR_AUTH);
	memcpy(buf, w->ann, w->ann_len);
	buf[0] = 'm'; /* magic */
	CHECK_EQ(ann_parse(buf, w->ann_len, &v), PX_ERR_MALFORMED);
	/* ids: a bad character in the sender's and in a recipient's id, and an empty id */
	memcpy(buf, w->ann, w->ann_len);
	buf[9] = '/';
	CHECK_EQ(ann_parse(buf, w->ann_len, &v), PX_ERR_MALFORMED);
	memcpy(buf, w->ann, w->ann_len);
	buf[nof + 3] = ' ';
	CHECK_EQ(ann_parse(buf, w->ann_len, &v), PX_ERR_MALFORMED);
	memcpy(buf, w->ann, w->ann_len);
	buf[8] = 0;
	CHECK_EQ(ann_parse(buf, w->ann_len, &v), PX_ERR_MALFORMED);
	/* entry count: one less, one more than present (too short), and more than 65 (§7.2) */
	memcpy(buf, w->ann, w->ann_len);
	CHECK_EQ(buf[nof], 0);
	CHECK_EQ(buf[nof + 1], 1);
	buf[nof + 1] = 0;
	CHECK_EQ(ann_parse(buf, w->ann_len, &v), PX_ERR_MALFORMED);
	buf[nof + 1] = 2;
	CHECK_EQ(ann_parse(buf, w->ann_len, &v), PX_ERR_MALFORMED);
	buf[nof + 1] = ANN_MAX_ENTRIES;
	CHECK_EQ(ann_parse(buf, w->ann_len, &v), PX_ERR_MALFORMED);
	buf[nof + 1] = ANN_MAX_ENTRIES + 1;
	CHECK_EQ(ann_parse(buf, w->ann_len, &v), PX_ERR_TOO_LARGE);
	buf[nof] = 1;
	buf[nof + 1] = 1; /* 257 */
	CHECK_EQ(ann_parse(buf, w->ann_len, &v), PX_ERR_TOO_LARGE);
	/* sizes */
	CHECK_EQ(ann_parse(buf, ANN_MAX_LEN + 1, &v), PX_ERR_TOO_LARGE);
	CHECK_EQ(ann_peek(w->ann, w->ann_len, &v), PX_OK);
	CHECK_EQ(v.epoch, golden_u64("epoch_a"));
	CHECK_EQ(v.nentries, 1);
}

static void test_ack_tamper(struct world *w)
{
	uint8_t buf[512];
	struct ack_view v;
	size_t i, n;
	unsigned b;
	int passed = 0;

	for (i = 0; i < w->ack_len; i++)
		for (b = 0; b < 8; b++) {
			memcpy(buf, w->ack, w->ack_len);
			buf[i] ^= (uint8_t)(1u << b);
			if (ack_parse(buf, w->ack_len, &v) == PX_OK &&
			    ack_verify(&v, w->b.pub, w->topic_ack) == PX_OK)
				passed++;
		}
	CHECK_EQ(passed, 0);
	for (n = 0; n < w->ack_len; n++)
		CHECK(ack_parse(w->ack, n, &v) != PX_OK);
	CHECK_EQ(ack_parse(w->ann, w->ann_len, &v), PX_ERR_MALFORMED);
	memcpy(buf, w->ack, w->ack_len);
	buf[4] = 9;
	CHECK_EQ(ack_parse(buf, w->ack_len, &v), PX_ERR_VERSION);
	{
		struct ann_view av;
		CHECK_EQ(ann_parse(w->ack, w->ack_len, &av), PX_ERR_MALFORMED);
	}
}

static void test_build_limits(struct world *w)
{
	static struct ann_recipient many[ANN_MAX_ENTRIES + 1];
	static char ids[ANN_MAX_ENTRIES + 1][8], groups[ANN_MAX_ENTRIES + 1][8];
	struct ann_recipient r[2];
	struct ann_params p;
	struct ann_view v;
	uint8_t *out = NULL;
	size_t len = 0, i;
	char longid[ANN_ID_MAX + 2];

	golden_params(w, r, &p);
	for (i = 0; i <= ANN_MAX_ENTRIES; i++) {
		snprintf(ids[i], sizeof(ids[i]), "n%zu", i);
		many[i].id = ids[i];
		snprintf(groups[i], sizeof(groups[i]), "g%zu", i);
		many[i].group = i ? groups[i] : NULL; /* each group once: the default, then 64 named */
		memcpy(many[i].eph_pub, w->b.eph_pub, KEX_PUB_LEN);
	}
	p.recipients = many;
	p.nrecipients = ANN_MAX_ENTRIES + 1;
	CHECK(ann_build(w->a.idk, w->topic_ann, &p, &out, &len) != PX_OK);
	CHECK(out == NULL);
	p.nrecipients = ANN_MAX_ENTRIES;
	CHECK_EQ(ann_build(w->a.idk, w->topic_ann, &p, &out, &len), PX_OK);
	CHECK_EQ(ann_parse(out, len, &v), PX_OK);
	CHECK_EQ(v.nentries, ANN_MAX_ENTRIES);
	CHECK_EQ(ann_verify(&v, w->a.pub, w->topic_ann), PX_OK);
	free(out);
	out = NULL;
	/* ids: too long, empty, bad character */
	memset(longid, 'x', ANN_ID_MAX + 1);
	longid[ANN_ID_MAX + 1] = '\0';
	golden_params(w, r, &p);
	r[0].id = longid;
	CHECK_EQ(ann_build(w->a.idk, w->topic_ann, &p, &out, &len), PX_ERR_INVAL);
	longid[ANN_ID_MAX] = '\0'; /* exactly 64: fine */
	CHECK_EQ(ann_build(w->a.idk, w->topic_ann, &p, &out, &len), PX_OK);
	CHECK_EQ(ann_parse(out, len, &v), PX_OK);
	free(out);
	out = NULL;
	r[0].id = "";
	CHECK_EQ(ann_build(w->a.idk, w->topic_ann, &p, &out, &len), PX_ERR_INVAL);
	r[0].id = "a b";
	CHECK_EQ(ann_build(w->a.idk, w->topic_ann, &p, &out, &len), PX_ERR_INVAL);
	/* a small-order recipient key (all zero) makes the build fail (R8) */
	golden_params(w, r, &p);
	memset(r[0].eph_pub, 0, KEX_PUB_LEN);
	CHECK_EQ(ann_build(w->a.idk, w->topic_ann, &p, &out, &len), PX_ERR_WEAK_KEY);
	CHECK(out == NULL);
	/* no entries at all */
	golden_params(w, r, &p);
	p.nrecipients = 0;
	CHECK_EQ(ann_build(w->a.idk, w->topic_ann, &p, &out, &len), PX_OK);
	CHECK_EQ(len, 67 + strlen(w->a.id) + 64);
	CHECK_EQ(ann_parse(out, len, &v), PX_OK);
	CHECK_EQ(ann_verify(&v, w->a.pub, w->topic_ann), PX_OK);
	free(out);
}

static struct keyring *node_keyring(const char *id)
{
	struct keyring_params kp = {
		.self_id = id, .interval_s = 3600, .padding = 16, .replay_bits = 8192, .max_keys = 16};
	struct keyring *kr = NULL;

	CHECK_EQ(keyring_new(&kp, &kr), PX_OK);
	return kr;
}

/* A builds with an entry for B; B parses, verifies, unwraps, derives, installs with the entry's
 * counter floor; B opens what A seals from the floor on (not what A sealed before), and A's own
 * ring opens it too. */
static void test_round_trip(void)
{
	struct keyring *ka = node_keyring("node-a"), *kb = node_keyring("node-b");
	struct id_key *ida = NULL;
	struct id_pub *puba = NULL;
	uint8_t pub[ID_PUB_LEN], secret[ANN_SECRET_LEN], *ann = NULL, env[256], early[256], inner[256];
	struct ann_recipient r = {.id = "node-b"};
	struct ann_params p = {.sender_id = "node-a", .epoch = 1000, .interval_s = 3600};
	struct ann_view v;
	struct ann_entry e;
	struct env_opened o;
	const struct kex_key *beph;
	const char *sender = NULL;
	size_t len = 0, elen;

	CHECK_EQ(id_key_generate(&ida), PX_OK);
	CHECK_EQ(id_key_public(ida, pub), PX_OK);
	CHECK_EQ(id_pub_new(pub, &puba), PX_OK);
	CHECK_EQ(keyring_epoch_create(ka, 1000, 0), PX_OK);
	CHECK_EQ(keyring_epoch_activate(ka, 0), PX_OK);
	CHECK_EQ(keyring_epoch_create(kb, 2000, 0), PX_OK);
	CHECK_EQ(kex_key_public(keyring_newest_eph(kb), r.eph_pub), PX_OK);
	p.eph = keyring_newest_eph(ka);
	p.secret = keyring_newest_secret(ka);
	/* A sealed one message before B's epoch began: the floor for B is A's counter after it */
	elen = keyring_sealed_size(ka, 0, 5);
	CHECK_EQ(keyring_seal(ka, 5, 0, 0, (const uint8_t *)"x/y", 3, NULL, 0, (const uint8_t *)"early", 5,
			      early, elen),
		 PX_OK);
	r.counter_floor = keyring_newest_next_counter(ka);
	CHECK_EQ(r.counter_floor, 1);
	p.recipients = &r;
	p.nrecipients = 1;
	CHECK_EQ(ann_build(ida, "mqseal/kx/node-b/node-a", &p, &ann, &len), PX_OK);

	CHECK_EQ(ann_parse(ann, len, &v), PX_OK);
	CHECK_EQ(ann_verify(&v, puba, "mqseal/kx/node-b/node-a"), PX_OK);
	CHECK(ann_find_entry(&v, "node-b", &e));
	beph = keyring_eph_for(kb, e.recipient_eph);
	CHECK(beph != NULL);
	CHECK_EQ(ann_unwrap(&v, &e, "node-b", beph, secret), PX_OK);
	CHECK_EQ(e.counter_floor, 1);
	CHECK_EQ(keyring_recv_install(kb, v.sender_id, v.epoch, secret, v.interval_s, e.counter_floor, 5),
		 PX_OK);
	CHECK_EQ(
		keyring_open(kb, NULL, 10, (const uint8_t *)"x/y", 3, early, elen, false, 0, inner, &o, NULL),
		PX_ERR_REPLAY);

	CHECK_EQ(keyring_seal(ka, 10, 0, 0, (const uint8_t *)"x/y", 3, NULL, 0, (const uint8_t *)"hello", 5, env,
			      elen),
		 PX_OK);
	CHECK_EQ(keyring_open(kb, NULL, 10, (const uint8_t *)"x/y", 3, env, elen, false, 0, inner, &o,
			      &sender),
		 PX_OK);
	CHECK(sender && strcmp(sender, "node-a") == 0);
	CHECK(o.payload_len == 5 && memcmp(o.payload, "hello", 5) == 0);
	CHECK_EQ(keyring_open(ka, NULL, 10, (const uint8_t *)"x/y", 3, env, elen, false, 0, inner, &o,
			      &sender),
		 PX_OK);
	CHECK(sender && strcmp(sender, "node-a") == 0);
	CHECK_EQ(keyring_open(kb, NULL, 10, (const uint8_t *)"x/y", 3, env, elen, false, 0, inner, &o, NULL),
		 PX_ERR_REPLAY);
	/* a re-routed message fails, and the failure does not consume its counter */
	CHECK_EQ(keyring_seal(ka, 10, 0, 0, (const uint8_t *)"x/y", 3, NULL, 0, (const uint8_t *)"again", 5, env,
			      elen),
		 PX_OK);
	CHECK_EQ(keyring_open(kb, NULL, 10, (const uint8_t *)"x/z", 3, env, elen, false, 0, inner, &o, NULL),
		 PX_ERR_AUTH);
	CHECK_EQ(keyring_open(kb, NULL, 10, (const uint8_t *)"x/y", 3, env, elen, false, 0, inner, &o, NULL),
		 PX_OK);

	free(ann);
	id_pub_free(puba);
	id_key_free(ida);
	keyring_free(ka);
	keyring_free(kb);
}

int main(int argc, char **argv)
{
	struct world *w = calloc(1, sizeof(*w));

	if (argc < 2 || !w || golden_load(argv[1]) <= 0)
		return 2;
	load_world(w);
	test_golden_wrap_keys(w);
	test_golden_announce(w);
	test_golden_group_keys();
	test_golden_group_announce(w);
	test_group_limits(w);
	test_golden_ack(w);
	test_announce_tamper(w);
	test_announce_fields(w);
	test_ack_tamper(w);
	test_build_limits(w);
	test_round_trip();
	free_node(&w->a);
	free_node(&w->b);
	free_node(&w->c);
	free(w);
	CHECK_DONE();
}
