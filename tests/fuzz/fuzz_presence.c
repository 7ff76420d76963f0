/* fuzz_presence.c - libFuzzer target for the presence message (key-exchange protocol version 2,
 * type 0x03, crypto/presence.h). Each input goes through pres_parse, pres_topic_names_sender and
 * pres_verify with node-a's golden key and presence topic (tests/vectors/golden.txt: id_pub_a,
 * topic_presence), and under another node's topic. Invariants that would mean a parser bug abort:
 * an accepted message is exactly as long as its id says, its state is 0 or 1, its id is valid, and
 * the other topic never verifies. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "presence.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* golden.txt: id_pub_a */
static const uint8_t fz_pub_a[ID_PUB_LEN] = {0x72, 0x42, 0xc9, 0xbe, 0x79, 0x05, 0xb3, 0xca, 0x8f, 0xf9, 0xf0,
					     0x94, 0xd6, 0x94, 0xc9, 0x55, 0xe8, 0xc1, 0x22, 0x83, 0xb7, 0x2b,
					     0x78, 0xdf, 0xee, 0x91, 0x80, 0xfc, 0xd8, 0x1f, 0x1d, 0x90};
#define FZ_TOPIC       "mqseal/presence/node-a"
#define FZ_TOPIC_OTHER "mqseal/presence/node-b"

/* The public key is read-only: made once for the whole run. */
static const struct id_pub *fz_pub(void)
{
	static struct id_pub *pub;

	if (!pub && id_pub_new(fz_pub_a, &pub) != PX_OK)
		abort();
	return pub;
}

static void fz_check_view(const struct pres_view *v, const uint8_t *data, size_t size)
{
	size_t k = strlen(v->sender_id);

	if (v->buf != data || v->len != size || k < 1 || k > PRES_ID_MAX || size != PRES_FIXED_LEN + k ||
	    (v->state != PRES_STATE_ONLINE && v->state != PRES_STATE_OFFLINE) || v->suite != PRES_SUITE_1)
		abort();
	if (strcspn(v->sender_id, "/+#") != k)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pres_view v;
	enum px_err rc;

	if (pres_parse(data, size, &v) != PX_OK) {
		if (v.buf != NULL)
			abort(); /* a refused message leaves no view behind */
		return 0;
	}
	fz_check_view(&v, data, size);
	rc = pres_verify(&v, fz_pub(), FZ_TOPIC);
	if (rc == PX_OK && !pres_topic_names_sender(&v, FZ_TOPIC))
		abort();
	if (rc != PX_OK && rc != PX_ERR_AUTH && rc != PX_ERR_TOPIC)
		abort();
	/* A message of node-a verifies under node-a's topic only. */
	if (pres_verify(&v, fz_pub(), FZ_TOPIC_OTHER) == PX_OK)
		abort();
	return 0;
}
