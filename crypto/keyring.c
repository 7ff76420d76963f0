/* keyring.c - the key ring of one node, own side (PROTOCOL.md §9): creating, activating and
 * retiring its sending epochs, the usage limits of §9.4, sealing, and the erasure schedule of §9.6
 * driven by the caller's clock. Receive keys (the table, installing, opening) are keyring_recv.c.
 * Every secret-bearing struct comes from OPENSSL_zalloc and leaves through OPENSSL_clear_free. */
#include "keyring_internal.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define KR_INTERVAL_MAX 86400 /* §14: the rotation interval is at most one day */

uint64_t kr_lifetime_ms_(uint32_t interval_s)
{
	/* 1.5 * T (§9.4, §9.6); T <= 2^32 s, so this cannot overflow. */
	return (uint64_t)interval_s * KR_MS_PER_S * 3 / 2;
}

static uint64_t kr_add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static bool kr_params_ok(const struct keyring_params *p)
{
	unsigned b = p->replay_bits;

	/* replay.h: a power of two from 128 to 65536 bits. */
	if (b < 128 || b > 65536 || (b & (b - 1)) != 0)
		return false;
	return p->interval_s >= 1 && p->interval_s <= KR_INTERVAL_MAX && p->padding >= 1 &&
	       p->padding <= ENV_PAD_MAX && p->max_keys >= 1 && p->max_keys <= KR_MAX_KEYS;
}

enum px_err keyring_new(const struct keyring_params *p, struct keyring **out)
{
	struct keyring *kr = NULL;
	size_t idlen;
	enum px_err rc = PX_ERR_INVAL;

	if (!out)
		return PX_ERR_INVAL;
	*out = NULL;
	if (!p || (idlen = ann_id_len_(p->self_id)) == 0 || !kr_params_ok(p))
		return PX_ERR_INVAL;
	kr = OPENSSL_zalloc(sizeof(*kr));
	if (!kr)
		return PX_ERR_NOMEM;
	memcpy(kr->self_id, p->self_id, idlen);
	kr->interval_s = p->interval_s;
	kr->grace_s = p->grace_s;
	kr->padding = p->padding;
	kr->replay_bits = p->replay_bits;
	kr->max_keys = p->max_keys;
	rc = PX_ERR_CRYPTO;
	kr->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	kr->mdctx = EVP_MD_CTX_new();
	if (!kr->sha256 || !kr->mdctx)
		goto out;
	rc = kr_table_init_(kr);
	if (rc != PX_OK)
		goto out;
	*out = kr;
	kr = NULL;
out:
	keyring_free(kr);
	return rc;
}

/* Frees s and the group keys chained after it. */
static void kr_send_free(struct kr_send *s)
{
	struct kr_send *next;

	for (; s; s = next) {
		next = s->next;
		aead_key_free(s->aead);
		OPENSSL_clear_free(s, sizeof(*s));
	}
}

/* Erases the sending key and the sender secret, keeping the epoch's number and usage. */
static void kr_send_retire(struct kr_send *s)
{
	if (!s)
		return;
	aead_key_free(s->aead);
	s->aead = NULL;
	OPENSSL_cleanse(s->secret, sizeof(s->secret));
}

/* The same for every group key of the epoch that s heads. */
static void kr_send_retire_all(struct kr_send *s)
{
	for (; s; s = s->next)
		kr_send_retire(s);
}

/* The key of group (NULL or "": the default, the head) in the epoch that s heads, or NULL. */
static struct kr_send *kr_send_group(struct kr_send *s, const char *group)
{
	const char *g = group ? group : "";

	for (; s; s = s->next)
		if (strcmp(s->group, g) == 0)
			return s;
	return NULL;
}

static void kr_eph_clear(struct kr_eph *e)
{
	kex_key_free(e->key);
	memset(e, 0, sizeof(*e));
}

void keyring_free(struct keyring *kr)
{
	if (!kr)
		return;
	kr_send_free(kr->pending);
	kr_send_free(kr->active);
	kr_eph_clear(&kr->eph[0]);
	kr_eph_clear(&kr->eph[1]);
	kr_table_free_(kr);
	EVP_MD_CTX_free(kr->mdctx);
	EVP_MD_free(kr->sha256);
	OPENSSL_clear_free(kr, sizeof(*kr));
}

/* The sending half of a new epoch's key of group ("" the default) from its secret: derived keys
 * (§4.2, bound to the group), cipher context, key id. */
static enum px_err kr_send_new(const struct keyring *kr, uint64_t epoch, uint64_t now_ms, const char *group,
			       const uint8_t secret[static ANN_SECRET_LEN], struct epoch_keys *k,
			       struct kr_send **out)
{
	struct kr_send *s;
	size_t glen;
	enum px_err rc;

	if (!group || !ann_group_len_(group, &glen))
		return PX_ERR_INVAL;
	s = OPENSSL_zalloc(sizeof(*s));
	if (!s)
		return PX_ERR_NOMEM;
	memcpy(s->secret, secret, ANN_SECRET_LEN);
	memcpy(s->group, group, glen);
	s->epoch = epoch;
	s->created_ms = now_ms;
	rc = epoch_derive_group(s->secret, kr->self_id, epoch, ANN_SUITE_1, group, k);
	if (rc == PX_OK)
		rc = aead_key_new(k->key, k->iv, &s->aead);
	if (rc != PX_OK) {
		kr_send_free(s);
		return rc;
	}
	memcpy(s->key_id, k->key_id, ENV_KEY_ID_LEN);
	*out = s;
	return PX_OK;
}

/* A pending epoch that is replaced before activation was never used to seal: all of it goes,
 * its ephemeral key and its receive key of self included. */
static void kr_drop_pending(struct keyring *kr)
{
	if (!kr->pending)
		return;
	kr_recv_remove_epoch_(kr, kr->self_id, kr->pending->epoch);
	kr_send_free(kr->pending);
	kr->pending = NULL;
	kr_eph_clear(&kr->eph[0]);
}

/* §9.6: the previous ephemeral key is kept for 1.5 T after its successor was created (peers may
 * still wrap to it); the one before it is erased now. */
static void kr_eph_push(struct keyring *kr, struct kex_key *eph, const uint8_t pub[static KEX_PUB_LEN],
			uint64_t now_ms)
{
	if (kr->eph[0].key) {
		kr_eph_clear(&kr->eph[1]);
		kr->eph[1] = kr->eph[0];
		kr->eph[1].expires_ms = kr_add_sat(now_ms, kr_lifetime_ms_(kr->interval_s));
	}
	kr->eph[0].key = eph;
	memcpy(kr->eph[0].pub, pub, KEX_PUB_LEN);
	kr->eph[0].expires_ms = UINT64_MAX;
}

enum px_err keyring_epoch_create_fixed(struct keyring *kr, uint64_t epoch, uint64_t now_ms,
				       struct kex_key *eph, const uint8_t secret[static ANN_SECRET_LEN])
{
	struct kr_send *s = NULL;
	struct epoch_keys k;
	uint8_t pub[KEX_PUB_LEN];
	enum px_err rc = PX_ERR_INVAL;

	memset(&k, 0, sizeof(k));
	if (!kr || !eph || !secret || (kr->any_epoch && epoch <= kr->last_epoch))
		goto out;
	rc = kex_key_public(eph, pub);
	if (rc == PX_OK)
		rc = kr_send_new(kr, epoch, now_ms, "", secret, &k, &s);
	if (rc != PX_OK)
		goto out;
	kr_drop_pending(kr);
	/* Own keys open own messages (§6): this node's devices subscribe to what they publish. */
	rc = kr_recv_install_keys_(kr, kr->self_id, epoch, "", &k, kr->interval_s, 0, now_ms);
	if (rc != PX_OK)
		goto out;
	kr_eph_push(kr, eph, pub, now_ms);
	eph = NULL;
	kr->pending = s;
	s = NULL;
	kr->last_epoch = epoch;
	kr->any_epoch = true;
out:
	OPENSSL_cleanse(&k, sizeof(k));
	kr_send_free(s);
	kex_key_free(eph);
	return rc;
}

enum px_err keyring_epoch_create(struct keyring *kr, uint64_t epoch, uint64_t now_ms)
{
	uint8_t secret[ANN_SECRET_LEN];
	struct kex_key *eph = NULL;
	enum px_err rc;

	if (!kr)
		return PX_ERR_INVAL;
	rc = kex_key_generate(&eph);
	if (rc != PX_OK)
		return rc;
	/* §3: the sender secret is 32 bytes from the private DRBG, fresh per epoch (R11). */
	if (RAND_priv_bytes(secret, sizeof(secret)) != 1) {
		kex_key_free(eph);
		return PX_ERR_CRYPTO;
	}
	rc = keyring_epoch_create_fixed(kr, epoch, now_ms, eph, secret);
	OPENSSL_cleanse(secret, sizeof(secret));
	return rc;
}

enum px_err keyring_epoch_add_group_fixed(struct keyring *kr, const char *group,
					  const uint8_t secret[static ANN_SECRET_LEN])
{
	struct kr_send *s = NULL, *tail;
	struct epoch_keys k;
	size_t glen;
	enum px_err rc;

	if (!kr || !kr->pending || !secret || !ann_group_len_(group, &glen) || glen == 0)
		return PX_ERR_INVAL;
	if (kr_send_group(kr->pending, group))
		return PX_ERR_EXISTS;
	memset(&k, 0, sizeof(k));
	rc = kr_send_new(kr, kr->pending->epoch, kr->pending->created_ms, group, secret, &k, &s);
	/* Own keys of every group open own messages, reader or not (§11.1). */
	if (rc == PX_OK)
		rc = kr_recv_install_keys_(kr, kr->self_id, s->epoch, group, &k, kr->interval_s, 0,
					   s->created_ms);
	OPENSSL_cleanse(&k, sizeof(k));
	if (rc != PX_OK) {
		kr_send_free(s);
		return rc;
	}
	for (tail = kr->pending; tail->next; tail = tail->next)
		;
	tail->next = s;
	return PX_OK;
}

enum px_err keyring_epoch_add_group(struct keyring *kr, const char *group)
{
	uint8_t secret[ANN_SECRET_LEN];
	enum px_err rc;

	/* §4.2: each group's secret is drawn independently from the private DRBG. */
	if (RAND_priv_bytes(secret, sizeof(secret)) != 1)
		return PX_ERR_CRYPTO;
	rc = keyring_epoch_add_group_fixed(kr, group, secret);
	OPENSSL_cleanse(secret, sizeof(secret));
	return rc;
}

enum px_err keyring_epoch_activate(struct keyring *kr, uint64_t now_ms)
{
	(void)now_ms;
	if (!kr || !kr->pending)
		return PX_ERR_INVAL;
	/* §9.2, §9.6: the old sending key, IV and secret go now; its receive key of self stays
	 * for its lifetime so late deliveries of own messages still open. */
	kr_send_free(kr->active);
	kr->active = kr->pending;
	kr->pending = NULL;
	return PX_OK;
}

void keyring_epoch_retire(struct keyring *kr)
{
	if (kr)
		kr_send_retire_all(kr->active);
}

void keyring_epoch_drop_pending(struct keyring *kr)
{
	if (kr)
		kr_drop_pending(kr);
}

bool keyring_active(const struct keyring *kr, uint64_t *epoch)
{
	if (!kr || !kr->active)
		return false;
	if (epoch)
		*epoch = kr->active->epoch;
	return true;
}

bool keyring_pending(const struct keyring *kr, uint64_t *epoch)
{
	if (!kr || !kr->pending)
		return false;
	if (epoch)
		*epoch = kr->pending->epoch;
	return true;
}

static const struct kr_send *kr_newest(const struct keyring *kr)
{
	if (!kr)
		return NULL;
	return kr->pending ? kr->pending : kr->active;
}

bool keyring_newest(const struct keyring *kr, uint64_t *epoch)
{
	const struct kr_send *s = kr_newest(kr);

	if (!s)
		return false;
	if (epoch)
		*epoch = s->epoch;
	return true;
}

const struct kex_key *keyring_newest_eph(const struct keyring *kr)
{
	return kr ? kr->eph[0].key : NULL;
}

const uint8_t *keyring_newest_secret(const struct keyring *kr)
{
	return keyring_newest_group_secret(kr, NULL);
}

uint64_t keyring_newest_next_counter(const struct keyring *kr)
{
	return keyring_newest_group_next_counter(kr, NULL);
}

const uint8_t *keyring_newest_group_secret(const struct keyring *kr, const char *group)
{
	const struct kr_send *s = kr_send_group((struct kr_send *)kr_newest(kr), group);

	return s && s->aead ? s->secret : NULL;
}

uint64_t keyring_newest_group_next_counter(const struct keyring *kr, const char *group)
{
	const struct kr_send *s = kr_send_group((struct kr_send *)kr_newest(kr), group);

	return s ? s->counter : 0;
}

const char *keyring_newest_group_at(const struct keyring *kr, size_t i)
{
	const struct kr_send *s = kr_newest(kr);

	for (s = s ? s->next : NULL; s && i > 0; i--)
		s = s->next;
	return s ? s->group : NULL;
}

const struct kex_key *keyring_eph_for(const struct keyring *kr, const uint8_t pub[static KEX_PUB_LEN])
{
	size_t i;

	if (!kr || !pub)
		return NULL;
	for (i = 0; i < 2; i++)
		if (kr->eph[i].key && memcmp(kr->eph[i].pub, pub, KEX_PUB_LEN) == 0)
			return kr->eph[i].key;
	return NULL;
}

enum px_err keyring_limit_hard(uint64_t messages, uint64_t blocks, uint64_t age_ms, uint32_t interval_s)
{
	if (messages >= KR_HARD_MESSAGES || blocks >= KR_HARD_BLOCKS)
		return PX_ERR_LIMIT;
	if (age_ms >= kr_lifetime_ms_(interval_s))
		return PX_ERR_EXPIRED;
	return PX_OK;
}

bool keyring_limit_soft(uint64_t messages, uint64_t blocks)
{
	return messages >= KR_SOFT_MESSAGES || blocks >= KR_SOFT_BLOCKS;
}

enum px_err keyring_can_seal(const struct keyring *kr, uint64_t now_ms)
{
	return keyring_can_seal_group(kr, NULL, now_ms);
}

enum px_err keyring_can_seal_group(const struct keyring *kr, const char *group, uint64_t now_ms)
{
	const struct kr_send *s;
	uint64_t age;
	enum px_err rc;

	if (!kr)
		return PX_ERR_UNKNOWN_KEY;
	s = kr_send_group(kr->active, group);
	if (!s)
		return PX_ERR_UNKNOWN_KEY;
	age = now_ms > s->created_ms ? now_ms - s->created_ms : 0;
	rc = keyring_limit_hard(s->counter, s->blocks, age, kr->interval_s);
	if (rc == PX_OK && !s->aead)
		rc = PX_ERR_LIMIT; /* retired by the caller */
	return rc;
}

bool keyring_wants_rotation(const struct keyring *kr)
{
	const struct kr_send *s;

	/* The epoch rotates as a whole when any of its group keys reaches a soft limit. */
	for (s = kr ? kr->active : NULL; s; s = s->next)
		if (keyring_limit_soft(s->counter, s->blocks))
			return true;
	return false;
}

size_t keyring_sealed_size(const struct keyring *kr, size_t props_len, size_t payload_len)
{
	return kr ? env_sealed_size(props_len, payload_len, kr->padding) : 0;
}

enum px_err keyring_seal(struct keyring *kr, uint64_t now_ms, uint64_t sealed_at, uint8_t flags, const uint8_t *topic,
			 size_t topic_len, const uint8_t *props, size_t props_len, const uint8_t *payload,
			 size_t payload_len, uint8_t *out, size_t out_len)
{
	return keyring_seal_group(kr, NULL, now_ms, sealed_at, flags, topic, topic_len, props, props_len, payload,
				  payload_len, out, out_len);
}

enum px_err keyring_seal_group(struct keyring *kr, const char *group, uint64_t now_ms, uint64_t sealed_at,
			       uint8_t flags, const uint8_t *topic, size_t topic_len, const uint8_t *props,
			       size_t props_len, const uint8_t *payload, size_t payload_len, uint8_t *out,
			       size_t out_len)
{
	struct aead_part part = {payload, payload_len};

	if (!payload && payload_len)
		return PX_ERR_INVAL;
	return keyring_seal_group_parts(kr, group, now_ms, sealed_at, flags, topic, topic_len, props, props_len,
					&part, 1, out, out_len);
}

enum px_err keyring_seal_parts(struct keyring *kr, uint64_t now_ms, uint64_t sealed_at, uint8_t flags,
			       const uint8_t *topic, size_t topic_len, const uint8_t *props, size_t props_len,
			       const struct aead_part *payload, size_t npayload, uint8_t *out, size_t out_len)
{
	return keyring_seal_group_parts(kr, NULL, now_ms, sealed_at, flags, topic, topic_len, props, props_len,
					payload, npayload, out, out_len);
}

enum px_err keyring_seal_group_parts(struct keyring *kr, const char *group, uint64_t now_ms, uint64_t sealed_at,
				     uint8_t flags, const uint8_t *topic, size_t topic_len, const uint8_t *props,
				     size_t props_len, const struct aead_part *payload, size_t npayload, uint8_t *out,
				     size_t out_len)
{
	struct env_header hdr;
	struct kr_send *s;
	uint64_t blocks;
	size_t payload_len = 0, i;
	enum px_err rc;

	if (!kr || !out || !payload || npayload > ENV_PARTS_MAX || (flags & ~ENV_FLAG_KNOWN) != 0)
		return PX_ERR_INVAL;
	for (i = 0; i < npayload; i++) {
		if (payload[i].len > SIZE_MAX - payload_len)
			return PX_ERR_INVAL;
		payload_len += payload[i].len;
	}
	rc = keyring_can_seal_group(kr, group, now_ms);
	if (rc != PX_OK)
		return rc;
	if (out_len == 0 || out_len != keyring_sealed_size(kr, props_len, payload_len))
		return PX_ERR_INVAL;
	s = kr_send_group(kr->active, group); /* found by keyring_can_seal_group */
	blocks = env_blocks(topic_len, out_len);
	if (blocks > KR_HARD_BLOCKS - s->blocks)
		return PX_ERR_LIMIT;
	hdr.flags = flags;
	memcpy(hdr.key_id, s->key_id, ENV_KEY_ID_LEN);
	hdr.counter = s->counter;
	hdr.sealed_at = sealed_at;
	rc = env_seal_parts(s->aead, &hdr, topic, topic_len, props, props_len, payload, npayload, kr->padding,
			    out, out_len);
	/* The counter moves whatever happened: a nonce that reached the cipher is never reused. */
	s->counter++;
	s->blocks += blocks;
	/* §9.6: at a hard limit the key is erased at once, not at the next refusal. */
	if (s->counter >= KR_HARD_MESSAGES || s->blocks >= KR_HARD_BLOCKS)
		kr_send_retire(s);
	return rc;
}

void keyring_expire(struct keyring *kr, uint64_t now_ms)
{
	if (!kr)
		return;
	kr_recv_expire_(kr, now_ms);
	if (kr->eph[1].key && now_ms >= kr->eph[1].expires_ms)
		kr_eph_clear(&kr->eph[1]);
	/* §9.4: never used past 1.5 T; with no successor activated the key is erased then. */
	if (kr->active && now_ms >= kr_add_sat(kr->active->created_ms, kr_lifetime_ms_(kr->interval_s)))
		kr_send_retire_all(kr->active); /* the group keys were created with it */
}

/* Does the epoch that s heads still hold a sending key of some group? */
static bool kr_send_live(const struct kr_send *s)
{
	for (; s; s = s->next)
		if (s->aead)
			return true;
	return false;
}

uint64_t keyring_next_expiry(const struct keyring *kr)
{
	uint64_t t;

	if (!kr)
		return UINT64_MAX;
	t = kr_recv_next_expiry_(kr);
	if (kr->eph[1].key && kr->eph[1].expires_ms < t)
		t = kr->eph[1].expires_ms;
	if (kr_send_live(kr->active)) {
		uint64_t end = kr_add_sat(kr->active->created_ms, kr_lifetime_ms_(kr->interval_s));
		if (end < t)
			t = end;
	}
	return t;
}

void keyring_get_stats(const struct keyring *kr, struct keyring_stats *out)
{
	if (!out)
		return;
	memset(out, 0, sizeof(*out));
	if (!kr)
		return;
	out->recv_keys = kr->nrecv;
	out->active_epoch = kr->active ? kr->active->epoch : 0;
	out->active_messages = kr->active ? kr->active->counter : 0;
	out->auth_failures = kr->auth_failures;
}

void keyring_set_usage_(struct keyring *kr, uint64_t counter, uint64_t blocks)
{
	if (kr && kr->active) {
		kr->active->counter = counter;
		kr->active->blocks = blocks;
	}
}
