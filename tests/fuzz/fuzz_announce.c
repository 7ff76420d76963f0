/* fuzz_announce.c - libFuzzer target for key announcements (PROTOCOL.md §7) and confirmations
 * (§8). Each input goes through ann_peek, ann_parse, ann_entry_at over every entry,
 * ann_find_entry and ann_verify with the golden vector's key and topic (tests/vectors/golden.txt),
 * and, if it verifies, ann_unwrap of the entry for node-b; then through ack_parse and ack_verify.
 * Invariants that would mean a parser bug abort. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "announce.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* golden.txt: id_pub_a, id_pub_b, eph_priv_b, topic_ann, topic_ack */
static const uint8_t fz_pub_a[ID_PUB_LEN] = {0x72, 0x42, 0xc9, 0xbe, 0x79, 0x05, 0xb3, 0xca, 0x8f, 0xf9, 0xf0,
					     0x94, 0xd6, 0x94, 0xc9, 0x55, 0xe8, 0xc1, 0x22, 0x83, 0xb7, 0x2b,
					     0x78, 0xdf, 0xee, 0x91, 0x80, 0xfc, 0xd8, 0x1f, 0x1d, 0x90};
static const uint8_t fz_pub_b[ID_PUB_LEN] = {0x19, 0x8c, 0x55, 0xc5, 0xc9, 0x71, 0x1f, 0x1a, 0x53, 0x82, 0xbf,
					     0x6e, 0x84, 0xcd, 0x17, 0xaa, 0xcf, 0x1b, 0x79, 0x28, 0x43, 0x4f,
					     0x77, 0x33, 0x52, 0x81, 0xe3, 0xab, 0xb3, 0x13, 0xd1, 0xca};
static const uint8_t fz_eph_b[KEX_PRIV_LEN] = {
	0xc8, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd,
	0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0xcd, 0x4d};
#define FZ_TOPIC_ANN "mqseal/kx/node-b/node-a"
#define FZ_TOPIC_ACK "mqseal/ack/node-a/node-b"

struct fz_keys {
	struct id_pub *a, *b;
	struct kex_key *eph_b;
	uint8_t eph_b_pub[KEX_PUB_LEN];
};

/* Public keys and B's ephemeral key are read-only: made once for the whole run. */
static const struct fz_keys *fz_keys(void)
{
	static struct fz_keys k;
	static int ready;

	if (!ready) {
		if (id_pub_new(fz_pub_a, &k.a) != PX_OK || id_pub_new(fz_pub_b, &k.b) != PX_OK ||
		    kex_key_from_private(fz_eph_b, &k.eph_b) != PX_OK ||
		    kex_key_public(k.eph_b, k.eph_b_pub) != PX_OK)
			abort();
		ready = 1;
	}
	return &k;
}

static void fz_entries(const struct ann_view *v)
{
	struct ann_entry e;
	size_t i;

	for (i = 0; i < v->nentries; i++) {
		ann_entry_at(v, i, &e);
		/* ann_parse accepted every entry: each must read, inside the buffer. */
		if (!e.wrapped || e.wrapped < v->buf || e.wrapped + ANN_WRAPPED_LEN > v->buf + v->len - 64 ||
		    strlen(e.recipient_id) == 0)
			abort();
	}
}

static void fz_announce(const uint8_t *data, size_t size)
{
	const struct fz_keys *k = fz_keys();
	uint8_t secret[ANN_SECRET_LEN];
	struct ann_view v, peek;
	struct ann_entry e;
	enum px_err rc;

	rc = ann_peek(data, size, &peek);
	if (ann_parse(data, size, &v) != PX_OK)
		return;
	if (rc != PX_OK || peek.epoch != v.epoch || peek.nentries != v.nentries)
		abort();
	fz_entries(&v);
	if (ann_verify(&v, k->a, FZ_TOPIC_ANN) != PX_OK)
		return;
	/* Only a genuine announcement of A gets here; its entry for B's key (if any) must open. */
	if (ann_find_entry(&v, "node-b", &e) && memcmp(e.recipient_eph, k->eph_b_pub, KEX_PUB_LEN) == 0 &&
	    ann_unwrap(&v, &e, "node-b", k->eph_b, secret) != PX_OK)
		abort();
}

static void fz_ack(const uint8_t *data, size_t size)
{
	struct ack_view a;

	if (ack_parse(data, size, &a) != PX_OK)
		return;
	if (a.len != size || strlen(a.sender_id) == 0 || strlen(a.recipient_id) == 0)
		abort();
	(void)ack_verify(&a, fz_keys()->b, FZ_TOPIC_ACK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_announce(data, size);
	fz_ack(data, size);
	return 0;
}
