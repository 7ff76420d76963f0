/* fuzz_envelope.c - libFuzzer target for the sealed payload (PROTOCOL.md §5, §6.1).
 * Each input is used twice, with a fresh key ring holding one receive key (the golden vector's,
 * tests/vectors/golden.txt, so the golden sealed payload of the seed corpus opens):
 *  1. as a received envelope: env_parse_header, then keyring_open without and with RETAIN as
 *     delivered (header checks, key lookup, replay pre-check, AEAD failure paths), and through a
 *     fresh receiver state (struct keyring_rx), where the verdict must be the same, a second copy
 *     a replay and a vouched redelivery (KR_OPEN_REPEAT) accepted;
 *  2. as an inner plaintext (§5.2), sealed with the AEAD directly and opened with keyring_open,
 *     so the inner-length and padding checks see arbitrary bytes behind a valid tag; the verdict
 *     is compared with an independent reading of §5.2 and any disagreement aborts;
 *  3. as a signed envelope (§5.8): env_source_verify under identity A's key (golden id_pub_a, so
 *     the golden signed payload of the seed corpus verifies) never accepts an unsigned or short
 *     one, and keyring_open_source (the writer rule) agrees with keyring_open_decide and the
 *     verification, and leaves the replay window untouched when it refuses;
 *  4. in pieces: keyring_open_parts of the envelope (1 and 2) cut into three pieces at points the
 *     input chooses gives keyring_open_decide's verdict, plaintext and seen state, and a refused
 *     open leaves the inner buffer all zero. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aead.h"
#include "announce.h"
#include "envelope.h"
#include "keyring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* golden.txt: sender_secret_a, id_a, epoch_a, topic_data */
static const uint8_t fz_secret[ANN_SECRET_LEN] = {
	0x5e, 0xc7, 0xe7, 0x5e, 0xc7, 0xe7, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
	0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19};
/* golden.txt: id_pub_a */
static const uint8_t fz_pub_a[ID_PUB_LEN] = {
	0x72, 0x42, 0xc9, 0xbe, 0x79, 0x05, 0xb3, 0xca, 0x8f, 0xf9, 0xf0, 0x94, 0xd6, 0x94, 0xc9, 0x55,
	0xe8, 0xc1, 0x22, 0x83, 0xb7, 0x2b, 0x78, 0xdf, 0xee, 0x91, 0x80, 0xfc, 0xd8, 0x1f, 0x1d, 0x90};
#define FZ_SENDER	 "node-a"
#define FZ_EPOCH	 1764085542u
#define FZ_TOPIC	 "home/kitchen/temp"
#define FZ_INNER_COUNTER 1000
#define FZ_INNER_MAX	 65536

static struct keyring *fz_ring(void)
{
	struct keyring_params p = {
		.self_id = "node-b", .interval_s = 3600, .padding = 16, .replay_bits = 8192, .max_keys = 4};
	struct keyring *kr = NULL;

	if (keyring_new(&p, &kr) != PX_OK)
		abort();
	if (keyring_recv_install(kr, FZ_SENDER, FZ_EPOCH, fz_secret, 3600, 0, 0) != PX_OK)
		abort();
	return kr;
}

static uint32_t fz_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* §5.2 read independently: 1 if inner[0..n) is well formed. */
static int fz_inner_ok(const uint8_t *in, size_t n)
{
	uint64_t props, payload, i;

	if (n < 8)
		return 0;
	props = fz_u32(in);
	if (4 + props + 4 > n)
		return 0;
	payload = fz_u32(in + 4 + props);
	if (8 + props + payload > n)
		return 0;
	for (i = 8 + props + payload; i < n; i++)
		if (in[i])
			return 0;
	return 1;
}

static void fz_as_envelope(struct keyring *kr, const uint8_t *data, size_t size, uint8_t *inner)
{
	struct keyring_rx *rx = NULL;
	struct env_header h;
	struct env_opened o;
	enum px_err rc;

	rc = env_parse_header(data, size, &h);
	if (rc == PX_OK && size < ENV_MIN_LEN)
		abort();
	rc = keyring_open(kr, NULL, 1, (const uint8_t *)FZ_TOPIC, strlen(FZ_TOPIC), data, size, false, 0,
			  inner, &o, NULL);
	if (rc == PX_OK && (o.payload < inner || o.payload + o.payload_len > inner + size - ENV_OVERHEAD))
		abort();
	(void)keyring_open(kr, NULL, 1, (const uint8_t *)FZ_TOPIC, strlen(FZ_TOPIC), data, size, true, 0,
			   inner, &o, NULL);
	/* The same through one receiver's state: what opened for the key's own state opens here once
	 * (a fresh state at the same floor), then is a replay unless vouched for as a redelivery. */
	if (keyring_rx_new(&rx) != PX_OK)
		abort();
	if (keyring_open(kr, rx, 1, (const uint8_t *)FZ_TOPIC, strlen(FZ_TOPIC), data, size, false, 0, inner,
			 &o, NULL) != rc)
		abort();
	if (rc == PX_OK && (keyring_open(kr, rx, 1, (const uint8_t *)FZ_TOPIC, strlen(FZ_TOPIC), data, size,
					 false, 0, inner, &o, NULL) != PX_ERR_REPLAY ||
			    keyring_open(kr, rx, 1, (const uint8_t *)FZ_TOPIC, strlen(FZ_TOPIC), data, size,
					 false, KR_OPEN_REPEAT, inner, &o, NULL) != PX_OK))
		abort();
	keyring_rx_free(rx);
}

/* keyring_open_parts of env (n bytes) cut at two points chosen from salt agrees with
 * keyring_open_decide (each through a fresh receiver state); inner and inner2 have n bytes. */
static void fz_parts_agree(struct keyring *kr, const uint8_t *env, size_t n, size_t salt, uint8_t *inner,
			   uint8_t *inner2)
{
	struct keyring_rx *rx1 = NULL, *rx2 = NULL;
	size_t a = salt % (n + 1), b = (salt / 7 + a) % (n + 1), i, m;
	struct aead_part parts[3];
	struct kr_opened k1, k2;
	enum px_err r1, r2;

	if (b < a) {
		i = a;
		a = b;
		b = i;
	}
	parts[0] = (struct aead_part){env, a};
	parts[1] = (struct aead_part){env + a, b - a};
	parts[2] = (struct aead_part){env + b, n - b};
	if (keyring_rx_new(&rx1) != PX_OK || keyring_rx_new(&rx2) != PX_OK)
		abort();
	memset(inner2, 0xa5, n);
	r1 = keyring_open_decide(kr, rx1, 1, (const uint8_t *)FZ_TOPIC, strlen(FZ_TOPIC), env, n, inner, &k1);
	r2 = keyring_open_parts(kr, rx2, 1, (const uint8_t *)FZ_TOPIC, strlen(FZ_TOPIC), parts, 3, inner2, &k2);
	if (r1 != r2)
		abort();
	/* the plaintext's room: the AEAD part less header and tag (a signed one ends 64 bytes early) */
	m = n >= ENV_MIN_LEN_SIGNED && (k2.h.flags & ENV_FLAG_SIGNED) ? n - ENV_SIG_LEN - ENV_OVERHEAD
	    : n >= ENV_MIN_LEN						 ? n - ENV_OVERHEAD
									 : 0;
	if (r1 == PX_OK && (k1.seen != k2.seen || k1.o.payload_len != k2.o.payload_len ||
			    k1.o.props_len != k2.o.props_len || memcmp(inner, inner2, m) != 0))
		abort();
	for (i = 0; r2 == PX_ERR_AUTH && i < m; i++) /* nothing of a forgery is left behind */
		if (inner2[i] != 0)
			abort();
	keyring_rx_free(rx1);
	keyring_rx_free(rx2);
}

/* Seals data as the inner plaintext of a well-formed envelope under the ring's key. */
static size_t fz_seal_inner(const uint8_t *data, size_t size, uint8_t *env)
{
	static const char label[] = "mqseal v1 data";
	static struct epoch_keys k;
	static struct aead_key *key; /* the sender's side: stateless between messages, made once */
	uint8_t tlen[2] = {0, (uint8_t)strlen(FZ_TOPIC)};
	struct aead_part aad[4], pt = {data, size};

	if (!key && (epoch_derive(fz_secret, FZ_SENDER, FZ_EPOCH, ANN_SUITE_1, &k) != PX_OK ||
		     aead_key_new(k.key, k.iv, &key) != PX_OK))
		abort();
	memset(env, 0, ENV_HDR_LEN);
	env[0] = ENV_VERSION;
	memcpy(env + 2, k.key_id, ENV_KEY_ID_LEN);
	env[16] = FZ_INNER_COUNTER >> 8;
	env[17] = FZ_INNER_COUNTER & 0xff;
	aad[0] = (struct aead_part){(const uint8_t *)label, strlen(label)};
	aad[1] = (struct aead_part){env, ENV_HDR_LEN};
	aad[2] = (struct aead_part){tlen, 2};
	aad[3] = (struct aead_part){(const uint8_t *)FZ_TOPIC, strlen(FZ_TOPIC)};
	if (aead_seal(key, FZ_INNER_COUNTER, aad, 4, &pt, 1, env + ENV_HDR_LEN, env + ENV_HDR_LEN + size) !=
	    PX_OK)
		abort();
	return size + ENV_OVERHEAD;
}

static void fz_as_inner(struct keyring *kr, const uint8_t *data, size_t size, uint8_t *env, uint8_t *inner)
{
	struct env_opened o;
	size_t n;
	enum px_err rc;

	if (size < ENV_INNER_FIXED || size > FZ_INNER_MAX)
		return;
	n = fz_seal_inner(data, size, env);
	rc = keyring_open(kr, NULL, 1, (const uint8_t *)FZ_TOPIC, strlen(FZ_TOPIC), env, n, false, 0, inner,
			  &o, NULL);
	if (rc != PX_OK && rc != PX_ERR_MALFORMED)
		abort();
	if ((rc == PX_OK) != fz_inner_ok(data, size))
		abort();
	if (rc == PX_OK &&
	    (memcmp(inner, data, size) != 0 || o.props != inner + 4 || o.payload != inner + 8 + o.props_len))
		abort();
	fz_parts_agree(kr, env, n, size * 31 + (size ? data[0] : 0), inner, env + n);
}

static const struct id_pub *fz_writer_pub(void *ctx, const char *sender)
{
	return strcmp(sender, FZ_SENDER) == 0 ? ctx : NULL;
}

/* keyring_open_source through a fresh receiver state; also reports whether the counter is still
 * new for that receiver afterwards. */
static enum px_err fz_open_source(struct keyring *kr, const struct kr_source *src, const uint8_t *data,
				  size_t size, uint8_t *inner, bool *still_new)
{
	struct keyring_rx *rx = NULL;
	struct kr_opened k;
	enum px_err rc;

	if (keyring_rx_new(&rx) != PX_OK)
		abort();
	rc = keyring_open_source(kr, rx, 1, (const uint8_t *)FZ_TOPIC, strlen(FZ_TOPIC), data, size, src, inner, &k);
	if (rc == PX_ERR_SOURCE && k.o.payload_len != 0)
		abort();
	*still_new = keyring_open_decide(kr, rx, 1, (const uint8_t *)FZ_TOPIC, strlen(FZ_TOPIC), data, size, inner,
					 &k) == PX_OK &&
		     k.seen == KR_SEEN_NEW;
	keyring_rx_free(rx);
	return rc;
}

static void fz_as_signed(struct keyring *kr, const uint8_t *data, size_t size, uint8_t *inner)
{
	static struct id_pub *pub;
	struct kr_source src;
	struct env_header h;
	enum px_err rv, rd, rs;
	bool fresh_d, fresh_s, hdr_ok = env_parse_header(data, size, &h) == PX_OK;

	if (!pub && id_pub_new(fz_pub_a, &pub) != PX_OK)
		abort();
	rv = env_source_verify(pub, (const uint8_t *)FZ_TOPIC, strlen(FZ_TOPIC), data, size);
	if (rv == PX_OK && (size < ENV_MIN_LEN_SIGNED || !(data[1] & ENV_FLAG_SIGNED)))
		abort();
	src = (struct kr_source){fz_writer_pub, pub};
	rd = fz_open_source(kr, NULL, data, size, inner, &fresh_d);
	rs = fz_open_source(kr, &src, data, size, inner, &fresh_s);
	/* Before the AEAD has passed (or its inner check), the writer rule changes nothing. */
	if (!hdr_ok || (rd != PX_OK && rd != PX_ERR_MALFORMED)) {
		if (rs != rd)
			abort();
	} else if (rs != (rv == PX_OK ? rd : PX_ERR_SOURCE)) {
		abort();
	}
	/* Refused as not proven: the window did not move (the counter is still new). */
	if (rs == PX_ERR_SOURCE && rd == PX_OK && !fresh_s)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct keyring *kr = fz_ring();
	uint8_t *env = malloc(2 * (size + ENV_OVERHEAD)), *inner = malloc(size + 1), *inner2 = malloc(size + 1);

	if (!env || !inner || !inner2)
		abort();
	fz_as_envelope(kr, data, size, inner);
	fz_parts_agree(kr, data, size, size * 13 + (size ? data[size - 1] : 0), inner, inner2);
	fz_as_inner(kr, data, size, env, inner);
	fz_as_signed(kr, data, size, inner);
	free(env);
	free(inner);
	free(inner2);
	keyring_free(kr);
	return 0;
}
