/* keyring_recv.c - the receive keys of the key ring (PROTOCOL.md §6, §9.6): a hash table keyed
 * by the 8-byte key id (and an index by peer, keyring_peers.c), installing keys from sender
 * secrets (at most three per peer and group), erasing them, and opening sealed payloads in the order of §6.1 with the replay state (window, counter
 * floor, retained exception of §6.2-6.3) of the key itself or of one receiver (keyring_rx.c). */
#include "keyring_internal.h"

#include <string.h>

#include <openssl/crypto.h>

/* Key ids are HKDF outputs of secrets from this node or authenticated peers, so their bits are
 * uniform and only trusted keys enter the table: the first 8 bytes index it directly. */
size_t kr_key_home_(const uint8_t key_id[static ENV_KEY_ID_LEN], size_t cap)
{
	uint64_t h = 0;
	size_t i;

	for (i = 0; i < ENV_KEY_ID_LEN; i++)
		h = h << 8 | key_id[i];
	return (size_t)h & (cap - 1);
}

static size_t kr_home(const struct keyring *kr, const uint8_t key_id[static ENV_KEY_ID_LEN])
{
	return kr_key_home_(key_id, kr->cap);
}

enum px_err kr_table_init_(struct keyring *kr)
{
	size_t cap = 8;

	/* At most half full, so probe sequences stay short. */
	while (cap < 2 * kr->max_keys)
		cap *= 2;
	kr->slots = OPENSSL_zalloc(cap * sizeof(struct kr_recv *)); /* an array of pointers */
	if (!kr->slots)
		return PX_ERR_NOMEM;
	kr->cap = cap;
	return kr_peers_init_(kr);
}

static void kr_recv_free(struct kr_recv *r)
{
	if (!r)
		return;
	aead_key_free(r->aead);
	kr_state_free_(&r->own);
	OPENSSL_clear_free(r, sizeof(*r));
}

void kr_table_free_(struct keyring *kr)
{
	size_t i;

	kr_peers_free_(kr);
	if (!kr->slots)
		return;
	for (i = 0; i < kr->cap; i++)
		kr_recv_free(kr->slots[i]);
	OPENSSL_clear_free(kr->slots, kr->cap * sizeof(struct kr_recv *));
	kr->slots = NULL;
	kr->nrecv = 0;
}

static size_t kr_find_slot(const struct keyring *kr, const uint8_t key_id[static ENV_KEY_ID_LEN])
{
	size_t i = kr_home(kr, key_id);

	while (kr->slots[i]) {
		if (memcmp(kr->slots[i]->key_id, key_id, ENV_KEY_ID_LEN) == 0)
			return i;
		i = (i + 1) & (kr->cap - 1);
	}
	return SIZE_MAX;
}

struct kr_recv *kr_lookup_(const struct keyring *kr, const uint8_t key_id[static ENV_KEY_ID_LEN])
{
	size_t i = kr_find_slot(kr, key_id);

	return i == SIZE_MAX ? NULL : kr->slots[i];
}

/* Removes slot i and erases its key; later members of the probe run move back so no lookup
 * stops early at the hole (backward-shift deletion, no tombstones). */
static void kr_slot_delete(struct keyring *kr, size_t i)
{
	size_t mask = kr->cap - 1, j = i, home;

	memcpy(kr->erased[kr->erased_next], kr->slots[i]->key_id, ENV_KEY_ID_LEN);
	kr->erased_next = (kr->erased_next + 1) % KR_ERASED_IDS;
	if (kr->nerased < KR_ERASED_IDS)
		kr->nerased++;
	kr_peer_unlink_(kr, kr->slots[i]);
	kr_recv_free(kr->slots[i]);
	kr->slots[i] = NULL;
	kr->nrecv--;
	for (;;) {
		j = (j + 1) & mask;
		if (!kr->slots[j])
			return;
		home = kr_home(kr, kr->slots[j]->key_id);
		/* Stays if its home lies cyclically in (i, j]. */
		if ((i < j) ? (home > i && home <= j) : (home > i || home <= j))
			continue;
		kr->slots[i] = kr->slots[j];
		kr->slots[j] = NULL;
		i = j;
	}
}

static void kr_insert(struct keyring *kr, struct kr_recv *r)
{
	size_t i = kr_home(kr, r->key_id);

	while (kr->slots[i])
		i = (i + 1) & (kr->cap - 1);
	kr->slots[i] = r;
	kr->nrecv++;
}

/* Erases key r (in the table). */
static void kr_recv_delete(struct keyring *kr, const struct kr_recv *r)
{
	kr_slot_delete(kr, kr_find_slot(kr, r->key_id));
}

/* The key of (peer, epoch, group) (group "" the default), or NULL. Per-peer questions walk the
 * peer's own keys (keyring_peers.c), not the table. */
static struct kr_recv *kr_find_peer_epoch(const struct keyring *kr, const char *peer_id, uint64_t epoch,
					  const char *group)
{
	struct kr_recv *r;

	for (r = kr_peer_keys_(kr, peer_id); r; r = r->peer_next)
		if (r->epoch == epoch && strcmp(r->group, group) == 0)
			return r;
	return NULL;
}

/* Number of keys of (peer_id, group) and its oldest (NULL if none). */
static size_t kr_peer_keys(const struct keyring *kr, const char *peer_id, const char *group,
			   struct kr_recv **oldest)
{
	struct kr_recv *r;
	size_t n = 0;

	*oldest = NULL;
	for (r = kr_peer_keys_(kr, peer_id); r; r = r->peer_next) {
		if (strcmp(r->group, group) != 0)
			continue;
		if (!*oldest || r->epoch < (*oldest)->epoch)
			*oldest = r;
		n++;
	}
	return n;
}

static enum px_err kr_recv_new(const struct keyring *kr, const char *peer_id, uint64_t epoch, const char *group,
			       const struct epoch_keys *k, uint64_t floor, uint64_t expires_ms,
			       struct kr_recv **out)
{
	struct kr_recv *r;
	enum px_err rc;

	r = OPENSSL_zalloc(sizeof(*r));
	if (!r)
		return PX_ERR_NOMEM;
	memcpy(r->key_id, k->key_id, ENV_KEY_ID_LEN);
	memcpy(r->peer_id, peer_id, strlen(peer_id));
	memcpy(r->group, group, strlen(group)); /* checked by the caller: at most ANN_GROUP_MAX */
	r->epoch = epoch;
	r->expires_ms = expires_ms;
	r->floor = floor;
	rc = aead_key_new(k->key, k->iv, &r->aead);
	if (rc == PX_OK)
		rc = kr_state_init_(&r->own, kr->replay_bits, floor);
	if (rc != PX_OK) {
		kr_recv_free(r);
		return rc;
	}
	*out = r;
	return PX_OK;
}

enum px_err kr_recv_install_keys_(struct keyring *kr, const char *peer_id, uint64_t epoch, const char *group,
				  const struct epoch_keys *k, uint32_t interval_s, uint64_t floor,
				  uint64_t now_ms)
{
	struct kr_recv *r = NULL, *oldest;
	size_t n, glen;
	uint64_t life;
	enum px_err rc;

	if (!kr || !k || ann_id_len_(peer_id) == 0 || interval_s == 0 || !ann_group_len_(group, &glen))
		return PX_ERR_INVAL;
	group = group ? group : "";
	if (kr_find_peer_epoch(kr, peer_id, epoch, group))
		return PX_ERR_EXISTS;
	/* §7.3 step 8: a key id that collides with another (peer, epoch, group) is refused. */
	if (kr_lookup_(kr, k->key_id))
		return PX_ERR_INVAL;
	/* Previous, current and next per (peer, group): each group rotates with the peer's epochs. */
	n = kr_peer_keys(kr, peer_id, group, &oldest);
	if (n >= KR_RECV_PER_PEER && oldest->epoch > epoch)
		return PX_ERR_STALE;
	if (n < KR_RECV_PER_PEER)
		oldest = NULL;
	if (kr->nrecv - (size_t)(oldest != NULL) >= kr->max_keys)
		return PX_ERR_LIMIT;
	/* §9.6: 1.5 * the sender's interval + grace after installation. */
	life = kr_lifetime_ms_(interval_s) + (uint64_t)kr->grace_s * KR_MS_PER_S;
	rc = kr_recv_new(kr, peer_id, epoch, group, k, floor,
			 now_ms > UINT64_MAX - life ? UINT64_MAX : now_ms + life, &r);
	if (rc == PX_OK)
		rc = kr_peer_link_(kr, r); /* before the oldest goes, so the peer's entry stays */
	if (rc != PX_OK) {
		kr_recv_free(r);
		return rc;
	}
	/* A fourth key of the peer erases its oldest: previous, current and next are kept. */
	if (oldest)
		kr_recv_delete(kr, oldest);
	r->serial = kr->next_serial++;
	kr_insert(kr, r);
	return PX_OK;
}

enum px_err keyring_recv_install(struct keyring *kr, const char *peer_id, uint64_t epoch,
				 const uint8_t secret[static ANN_SECRET_LEN], uint32_t interval_s,
				 uint64_t floor, uint64_t now_ms)
{
	return keyring_recv_install_group(kr, peer_id, epoch, NULL, secret, interval_s, floor, now_ms);
}

enum px_err keyring_recv_install_group(struct keyring *kr, const char *peer_id, uint64_t epoch, const char *group,
				       const uint8_t secret[static ANN_SECRET_LEN], uint32_t interval_s,
				       uint64_t floor, uint64_t now_ms)
{
	struct epoch_keys k;
	enum px_err rc;

	if (!kr || !secret || ann_id_len_(peer_id) == 0)
		return PX_ERR_INVAL;
	/* §4.2: the group's name is in the derivation, so the key is bound to it. */
	rc = epoch_derive_group(secret, peer_id, epoch, ANN_SUITE_1, group, &k);
	if (rc == PX_OK)
		rc = kr_recv_install_keys_(kr, peer_id, epoch, group, &k, interval_s, floor, now_ms);
	OPENSSL_cleanse(&k, sizeof(k));
	return rc;
}

void kr_recv_remove_epoch_(struct keyring *kr, const char *peer_id, uint64_t epoch)
{
	struct kr_recv *r, *next;

	for (r = kr_peer_keys_(kr, peer_id); r; r = next) {
		next = r->peer_next; /* r may go; the others stay where they are in the list */
		if (r->epoch == epoch)
			kr_recv_delete(kr, r);
	}
}

bool keyring_recv_has_group(const struct keyring *kr, const char *peer_id, uint64_t epoch, const char *group)
{
	size_t glen;

	return kr && peer_id && ann_group_len_(group, &glen) &&
	       kr_find_peer_epoch(kr, peer_id, epoch, group ? group : "") != NULL;
}

const char *keyring_key_group(const struct keyring *kr, const uint8_t key_id[static ENV_KEY_ID_LEN])
{
	const struct kr_recv *r = kr && key_id ? kr_lookup_(kr, key_id) : NULL;

	return r ? r->group : NULL;
}

bool keyring_recv_newest(const struct keyring *kr, const char *peer_id, uint64_t *epoch)
{
	const struct kr_recv *r;
	bool any = false;

	if (!kr || !peer_id)
		return false;
	for (r = kr_peer_keys_(kr, peer_id); r; r = r->peer_next) {
		if (r->group[0] != '\0' || (any && r->epoch <= *epoch))
			continue;
		any = true;
		*epoch = r->epoch;
	}
	return any;
}

bool keyring_recv_has(const struct keyring *kr, const char *peer_id, uint64_t epoch)
{
	return kr && peer_id && kr_find_peer_epoch(kr, peer_id, epoch, "") != NULL;
}

void keyring_remove_peer(struct keyring *kr, const char *peer_id)
{
	struct kr_recv *r, *next;

	if (!kr || !peer_id)
		return;
	for (r = kr_peer_keys_(kr, peer_id); r; r = next) {
		next = r->peer_next;
		kr_recv_delete(kr, r);
	}
}

size_t keyring_recv_shorten(struct keyring *kr, const char *peer_id, uint64_t below_epoch, uint64_t until_ms)
{
	struct kr_recv *r;
	size_t n = 0;

	if (!kr || !peer_id)
		return 0;
	for (r = kr_peer_keys_(kr, peer_id); r; r = r->peer_next) {
		if (r->epoch >= below_epoch || r->expires_ms <= until_ms)
			continue;
		r->expires_ms = until_ms;
		n++;
	}
	return n;
}

void kr_recv_expire_(struct keyring *kr, uint64_t now_ms)
{
	size_t i = 0;

	while (i < kr->cap) {
		if (kr->slots[i] && now_ms >= kr->slots[i]->expires_ms)
			kr_slot_delete(kr, i);
		else
			i++;
	}
}

uint64_t kr_recv_next_expiry_(const struct keyring *kr)
{
	uint64_t t = UINT64_MAX;
	size_t i;

	for (i = 0; i < kr->cap; i++)
		if (kr->slots[i] && kr->slots[i]->expires_ms < t)
			t = kr->slots[i]->expires_ms;
	return t;
}

/* ---- opening (§6.1) ---- */

static enum px_err kr_topic_digest(struct keyring *kr, const uint8_t *topic, size_t len,
				   uint8_t digest[static KR_DIGEST_LEN])
{
	unsigned int n = 0;

	if (EVP_DigestInit_ex2(kr->mdctx, kr->sha256, NULL) != 1 ||
	    EVP_DigestUpdate(kr->mdctx, topic, len) != 1 || EVP_DigestFinal_ex(kr->mdctx, digest, &n) != 1 ||
	    n != KR_DIGEST_LEN)
		return PX_ERR_CRYPTO;
	return PX_OK;
}

/* Step 4: lifetime and hard limit, which no exception passes. */
static enum px_err kr_key_usable(const struct kr_recv *r, const struct env_header *h, uint64_t now_ms)
{
	if (now_ms >= r->expires_ms)
		return PX_ERR_EXPIRED;
	if (h->counter >= KR_HARD_MESSAGES)
		return PX_ERR_LIMIT;
	return PX_OK;
}

/* The key for header h, usable now, and its replay state: the key's own, or that of (rx, key),
 * which may not exist yet (*st NULL: it is created only once a message authenticated). */
static enum px_err kr_open_lookup(struct keyring *kr, const struct keyring_rx *rx, const struct env_header *h,
				  uint64_t now_ms, struct kr_recv **r, struct kr_state **st)
{
	enum px_err rc;

	*r = kr_lookup_(kr, h->key_id);
	if (!*r)
		return PX_ERR_UNKNOWN_KEY;
	rc = kr_key_usable(*r, h, now_ms);
	if (rc != PX_OK)
		return rc;
	*st = rx ? kr_rx_find_(rx, *r) : &(*r)->own;
	return PX_OK;
}

/* Step 7 for an authenticated message (open_rc PX_OK or PX_ERR_MALFORMED): the receiver's state
 * is created now if it did not exist, then the counter recorded. */
static enum px_err kr_open_record(struct keyring *kr, struct keyring_rx *rx, const struct kr_recv *r,
				  struct kr_state *st, const struct env_header *h, bool retained, bool repeat,
				  const uint8_t digest[static KR_DIGEST_LEN], enum px_err open_rc)
{
	enum px_err rc = PX_OK;

	if (!st)
		rc = kr_rx_state_(kr, rx, r, &st);
	if (rc == PX_OK)
		rc = kr_state_accept_(st, h->counter, retained, repeat, (h->flags & ENV_FLAG_RETAIN) != 0,
				      digest, open_rc);
	return rc;
}

enum px_err keyring_open(struct keyring *kr, struct keyring_rx *rx, uint64_t now_ms, const uint8_t *topic,
			 size_t topic_len, const uint8_t *env, size_t len, bool retain_delivered,
			 unsigned flags, uint8_t *inner, struct env_opened *out, const char **sender)
{
	uint8_t digest[KR_DIGEST_LEN] = {0};
	bool intent, retained, repeat = (flags & KR_OPEN_REPEAT) != 0;
	struct env_header h;
	struct kr_recv *r;
	struct kr_state *st;
	enum px_err rc, rc2;

	if (!kr || !inner || !out || (!topic && topic_len) || (flags & ~(unsigned)KR_OPEN_REPEAT) != 0)
		return PX_ERR_INVAL;
	rc = env_parse_header(env, len, &h);
	if (rc == PX_OK)
		rc = kr_open_lookup(kr, rx, &h, now_ms, &r, &st);
	if (rc != PX_OK)
		return rc;
	intent = (h.flags & ENV_FLAG_RETAIN) != 0;
	if (intent && (rc = kr_topic_digest(kr, topic, topic_len, digest)) != PX_OK)
		return rc;
	rc = kr_state_check_(st, r->floor, h.counter, retain_delivered && intent, repeat, digest, &retained);
	if (rc != PX_OK)
		return rc;
	rc = env_open(r->aead, &h, topic, topic_len, env, len, inner, out);
	if (rc == PX_ERR_AUTH)
		kr->auth_failures++;
	if (rc != PX_OK && rc != PX_ERR_MALFORMED)
		return rc;
	/* Step 7: only an authenticated counter enters the window. */
	rc2 = kr_open_record(kr, rx, r, st, &h, retained, repeat, digest, rc);
	if (rc2 != PX_OK) {
		OPENSSL_cleanse(inner, env_aead_len(env, len) - ENV_OVERHEAD);
		memset(out, 0, sizeof(*out));
		rc = rc2;
	}
	if (rc == PX_OK && sender)
		*sender = r->peer_id;
	return rc;
}

/* The replay pre-check for keyring_open_decide: what st (NULL: not created yet) says of counter. */
static enum kr_seen kr_seen_of(const struct kr_state *st, uint64_t floor, uint64_t counter)
{
	if (counter < (st ? st->floor : floor))
		return KR_SEEN_FLOOR;
	if (st && replay_check(st->window, counter) != PX_OK)
		return KR_SEEN_WINDOW;
	return KR_SEEN_NEW;
}

/* The source rule of PROTOCOL.md §5.8 for an envelope authenticated under r: the key's sender
 * must be a writer (src->writer_pub gives its pinned identity key) and its signature must verify.
 * PX_OK when there is no rule (src NULL). */
static enum px_err kr_source_check(const struct kr_source *src, const struct kr_recv *r, const uint8_t *topic,
				   size_t topic_len, const uint8_t *env, size_t len)
{
	const struct id_pub *pub;
	enum px_err rc;

	if (!src)
		return PX_OK;
	pub = src->writer_pub(src->ctx, r->peer_id);
	if (!pub)
		return PX_ERR_SOURCE;
	rc = env_source_verify(pub, topic, topic_len, env, len);
	return rc == PX_ERR_AUTH || rc == PX_ERR_MALFORMED ? PX_ERR_SOURCE : rc;
}

/* The envelope header in env[0..nenv) (len bytes in all) into h: env_parse_header of its first
 * ENV_HDR_LEN bytes, copied out (the checks of the length are of len). */
static enum px_err kr_parse_header_parts(const struct aead_part *env, size_t nenv, size_t len, struct env_header *h)
{
	uint8_t head[ENV_HDR_LEN];
	size_t i, got = 0, k;

	for (i = 0; i < nenv && got < ENV_HDR_LEN; i++) {
		k = env[i].len < ENV_HDR_LEN - got ? env[i].len : ENV_HDR_LEN - got;
		if (k)
			memcpy(head + got, env[i].data, k);
		got += k;
	}
	if (got < ENV_HDR_LEN)
		return PX_ERR_MALFORMED;
	return env_parse_header(head, len, h);
}

/* Step 7 after the AEAD and the source rule (rc2: the rule's verdict): an authenticated new
 * counter enters the window (a malformed inner one too: it was sealed by a key holder, and must
 * not be tried again). */
static enum px_err kr_open_accept(struct keyring *kr, struct keyring_rx *rx, const struct kr_recv *r,
				  struct kr_state *st, const struct kr_opened *out, enum px_err rc2)
{
	if (rc2 == PX_OK && out->seen == KR_SEEN_NEW) {
		rc2 = st ? PX_OK : kr_rx_state_(kr, rx, r, &st);
		if (rc2 == PX_OK && replay_accept(st->window, out->h.counter) != PX_OK)
			rc2 = PX_ERR_REPLAY; /* the pre-check said new: cannot happen */
	}
	return rc2;
}

/* keyring_open_source over pieces; whole: the same envelope in one piece (NULL without src). */
static enum px_err kr_open_core(struct keyring *kr, struct keyring_rx *rx, uint64_t now_ms, const uint8_t *topic,
				size_t topic_len, const struct aead_part *env, size_t nenv, size_t len,
				const uint8_t *whole, const struct kr_source *src, uint8_t *inner, struct kr_opened *out)
{
	struct kr_recv *r;
	struct kr_state *st;
	enum px_err rc, rc2;

	memset(out, 0, sizeof(*out));
	rc = kr_parse_header_parts(env, nenv, len, &out->h);
	if (rc == PX_OK)
		rc = kr_open_lookup(kr, rx, &out->h, now_ms, &r, &st);
	if (rc != PX_OK)
		return rc;
	out->seen = kr_seen_of(st, r->floor, out->h.counter);
	rc = env_open_parts(r->aead, &out->h, topic, topic_len, env, nenv, inner, &out->o);
	if (rc == PX_ERR_AUTH)
		kr->auth_failures++;
	if (rc != PX_OK && rc != PX_ERR_MALFORMED)
		return rc;
	/* Only a key holder gets this far, so only it can make this node verify a signature; and a
	 * message not proven leaves the window alone, so a reader cannot use up a writer's counters. */
	rc2 = kr_open_accept(kr, rx, r, st, out, kr_source_check(src, r, topic, topic_len, whole, len));
	if (rc2 != PX_OK) {
		OPENSSL_cleanse(inner, ((out->h.flags & ENV_FLAG_SIGNED) ? len - ENV_SIG_LEN : len) - ENV_OVERHEAD);
		memset(&out->o, 0, sizeof(out->o));
		rc = rc2;
	}
	if (rc == PX_OK || rc == PX_ERR_SOURCE) {
		out->sender = r->peer_id;
		out->epoch = r->epoch;
		out->group = r->group;
	}
	return rc;
}

enum px_err keyring_open_decide(struct keyring *kr, struct keyring_rx *rx, uint64_t now_ms, const uint8_t *topic,
				size_t topic_len, const uint8_t *env, size_t len, uint8_t *inner,
				struct kr_opened *out)
{
	return keyring_open_source(kr, rx, now_ms, topic, topic_len, env, len, NULL, inner, out);
}

enum px_err keyring_open_source(struct keyring *kr, struct keyring_rx *rx, uint64_t now_ms, const uint8_t *topic,
				size_t topic_len, const uint8_t *env, size_t len, const struct kr_source *src,
				uint8_t *inner, struct kr_opened *out)
{
	struct aead_part whole = {env, len};

	if (!kr || !rx || !env || !inner || !out || (!topic && topic_len) || (src && !src->writer_pub))
		return PX_ERR_INVAL;
	return kr_open_core(kr, rx, now_ms, topic, topic_len, &whole, 1, len, env, src, inner, out);
}

enum px_err keyring_open_parts(struct keyring *kr, struct keyring_rx *rx, uint64_t now_ms, const uint8_t *topic,
			       size_t topic_len, const struct aead_part *env, size_t nenv, uint8_t *inner,
			       struct kr_opened *out)
{
	size_t i, len = 0;

	if (!kr || !rx || !env || !inner || !out || (!topic && topic_len) || nenv > ENV_PARTS_MAX)
		return PX_ERR_INVAL;
	for (i = 0; i < nenv; i++) {
		if ((!env[i].data && env[i].len) || env[i].len > SIZE_MAX - len)
			return PX_ERR_INVAL;
		len += env[i].len;
	}
	return kr_open_core(kr, rx, now_ms, topic, topic_len, env, nenv, len, NULL, NULL, inner, out);
}

bool keyring_recv_erased(const struct keyring *kr, const uint8_t key_id[static ENV_KEY_ID_LEN])
{
	unsigned i;

	for (i = 0; kr && i < kr->nerased; i++)
		if (memcmp(kr->erased[i], key_id, ENV_KEY_ID_LEN) == 0)
			return true;
	return false;
}
