/* kx_core_life.c - the sans-I/O core's life cycle and queries: creation from the configuration and
 * the state text, reload (R15: removed peers' keys erased, a new epoch at once), events in,
 * release, and what the data path, the admin endpoint and the simulation ask. */
#include "kx_core_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "hash.h"
#include "mqtt_topic.h"
#include "policy.h"
#include "replay.h"
#include "stats.h"

static char *kx_join(const char *a, const char *b, const char *c)
{
	size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
	char *s = malloc(n);

	if (s)
		snprintf(s, n, "%s%s%s", a, b, c);
	return s;
}

static void kx_peer_clear(struct kx_peer *p)
{
	id_pub_free(p->pub);
	kx_peer_drop_deferred_(p);
	memset(p, 0, sizeof(*p));
}

/* The configured peers as a fresh array; state of peers that stay (same id, same key) moves over
 * from kx's current ones (looked up by id in kx's index; moved entries are cleared, and src[i]
 * remembers where peer i came from, SIZE_MAX if new). kx is NULL at creation. */
static int kx_build_one(const struct kx_core *kx, const struct px_conf *conf, size_t i, struct kx_peer *p,
			size_t *src, char *err, size_t errlen)
{
	const struct conf_peer *cp = &conf->peers[i];
	struct kx_peer *o = kx ? kx_peer_(kx, cp->id, strlen(cp->id)) : NULL;
	uint8_t raw[ID_PUB_LEN];

	*src = SIZE_MAX;
	if (id_pub_decode(cp->public_key, raw) != PX_OK) {
		snprintf(err, errlen, "%s:%u: peers.public_key of %s is not a valid Ed25519 key", conf->path, cp->line,
			 cp->id);
		return -1;
	}
	if (o && o->pub && memcmp(id_pub_raw(o->pub), raw, ID_PUB_LEN) == 0) {
		*src = (size_t)(o - kx->peers);
		*p = *o;
		memset(o, 0, sizeof(*o));
		p->conf = cp;
		return 0;
	}
	p->conf = cp;
	p->added = true;
	snprintf(p->id, sizeof(p->id), "%s", cp->id);
	p->tokens = p->ack_tokens = KX_BUCKET_BURST;
	if (id_pub_new(raw, &p->pub) != PX_OK) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static struct kx_peer *kx_build_peers(const struct kx_core *kx, const struct px_conf *conf, char *err, size_t errlen)
{
	struct kx_peer *peers = calloc(conf->npeers ? conf->npeers : 1, sizeof(*peers));
	size_t *src = calloc(conf->npeers ? conf->npeers : 1, sizeof(*src));
	size_t i = 0, j;

	if (!peers || !src) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < conf->npeers; i++)
		if (kx_build_one(kx, conf, i, &peers[i], &src[i], err, errlen) != 0)
			goto fail;
	free(src);
	return peers;
fail:
	/* Give moved state back to where it came from, so a refused reload changes nothing. */
	for (j = 0; peers && src && j < i; j++) {
		if (src[j] != SIZE_MAX) {
			kx->peers[src[j]] = peers[j];
			memset(&peers[j], 0, sizeof(peers[j]));
		}
		kx_peer_clear(&peers[j]);
	}
	if (peers && src && i < conf->npeers)
		kx_peer_clear(&peers[i]);
	free(src);
	free(peers);
	return NULL;
}

/* Does any peer of conf have a publish list? */
static bool kx_conf_restricted(const struct px_conf *conf)
{
	size_t i;

	for (i = 0; i < conf->npeers; i++)
		if (conf->peers[i].has_publish)
			return true;
	return false;
}

/* The peers by id (kx_peer_): open addressing, linear probing, at most half full. */
static int kx_index_build(struct kx_core *kx)
{
	size_t cap = 8, i, h;
	uint32_t *index;

	while (cap < 2 * kx->npeers)
		cap *= 2;
	index = calloc(cap, sizeof(*index));
	if (!index)
		return -1;
	for (i = 0; i < kx->npeers; i++) {
		const char *id = kx->peers[i].id;
		for (h = px_fnv1a((const uint8_t *)id, strlen(id)) & (cap - 1); index[h]; h = (h + 1) & (cap - 1))
			;
		index[h] = (uint32_t)(i + 1);
	}
	free(kx->index);
	kx->index = index;
	kx->index_cap = cap;
	return 0;
}

struct kx_peer *kx_peer_(const struct kx_core *kx, const char *id, size_t len)
{
	size_t h, n;

	if (!kx->index)
		return NULL;
	h = px_fnv1a((const uint8_t *)id, len) & (kx->index_cap - 1);
	for (n = 0; n < kx->index_cap && kx->index[h]; n++, h = (h + 1) & (kx->index_cap - 1)) {
		struct kx_peer *p = &kx->peers[kx->index[h] - 1];
		if (strlen(p->id) == len && memcmp(p->id, id, len) == 0)
			return p;
	}
	return NULL;
}

static int kx_load_peers(struct kx_core *kx, char *err, size_t errlen)
{
	size_t i;

	kx->peers = kx_build_peers(NULL, kx->conf, err, errlen);
	kx->npeers = kx->peers ? kx->conf->npeers : 0;
	kx->restricted = kx_conf_restricted(kx->conf);
	for (i = 0; i < kx->npeers; i++)
		kx->peers[i].added = false; /* on_up subscribes to every peer */
	if (kx->peers && kx_index_build(kx) != 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return kx->peers ? 0 : -1;
}

int kx_topic_(const struct kx_core *kx, char out[static KX_TOPIC_MAX], const char *kind, const char *a,
	      const char *b)
{
	int n = snprintf(out, KX_TOPIC_MAX, "%s/%s/%s/%s", kx->conf->keyex.topic_prefix, kind, a, b);

	return n > 0 && n < KX_TOPIC_MAX ? 0 : -1;
}

int kx_peer_filters_(struct kx_core *kx, struct kx_batch *b, const struct kx_peer *p)
{
	char topic[KX_TOPIC_MAX];

	if (kx_topic_(kx, topic, "kx", kx->conf->node_id, p->id) != 0)
		return -1;
	if (kx_batch_add_(kx, b, topic) != 0)
		return -1;
	if (!kx_pres_on_(kx))
		return 0;
	if (kx_pres_topic(kx->conf->keyex.topic_prefix, p->id, topic, sizeof(topic)) == 0)
		return -1;
	return kx_batch_add_(kx, b, topic);
}

int kx_subscribe_peers_(struct kx_core *kx, bool only_added)
{
	struct kx_batch b = {.type = KX_ACT_SUBSCRIBE};
	size_t i;

	for (i = 0; i < kx->npeers; i++) {
		if (only_added && !kx->peers[i].added)
			continue;
		kx->peers[i].added = false;
		if (kx_peer_filters_(kx, &b, &kx->peers[i]) != 0)
			b.rc = -1;
	}
	return kx_batch_flush_(kx, &b);
}

const char *kx_signed_topic_(const struct kx_core *kx, const char *topic, char buf[static KX_SIGNED_TOPIC_MAX])
{
	const uint8_t *out;
	size_t n;

	if (!policy_aad_topic(kx->env.policy, (const uint8_t *)topic, strlen(topic), (uint8_t *)buf,
			      KX_SIGNED_TOPIC_MAX - 1, &out, &n)) {
		log_error("keyex", "topic_prefix_map makes %s longer than %d bytes", topic, KX_SIGNED_TOPIC_MAX - 1);
		return NULL;
	}
	if (out != (const uint8_t *)buf)
		return topic;
	buf[n] = '\0';
	return buf;
}

bool kx_core_may_publish(const struct kx_core *kx, const char *sender, const uint8_t *topic, size_t len)
{
	const struct conf_peer *c = NULL;
	size_t i;

	if (!kx->restricted || (sender && strcmp(sender, kx->conf->node_id) == 0))
		return true; /* no publish lists at all, or a device of this very node */
	if (sender) {
		const struct kx_peer *p = kx_peer_(kx, sender, strlen(sender));
		c = p ? p->conf : NULL;
	}
	if (!c)
		return false;
	if (!c->has_publish)
		return true;
	for (i = 0; i < c->npublish; i++)
		if (mqtt_topic_match((const uint8_t *)c->publish[i], strlen(c->publish[i]), topic, len))
			return true;
	return false;
}

const struct id_pub *kx_core_peer_pub(const struct kx_core *kx, const char *sender)
{
	const struct kx_peer *p = sender ? kx_peer_(kx, sender, strlen(sender)) : NULL;

	return p ? p->pub : NULL;
}

static int kx_make_topics(struct kx_core *kx)
{
	const struct px_conf *conf = kx->conf;
	char prefix[96];

	kx->prefix_len = strlen(conf->keyex.topic_prefix);
	snprintf(prefix, sizeof(prefix), "%s/ack/", conf->keyex.topic_prefix);
	kx->topic_ack_sub = kx_join(prefix, conf->node_id, "/+");
	return kx->topic_ack_sub ? 0 : -1;
}

/* The receive table: KR_RECV_PER_PEER keys a peer and our own, for twice the configured peers
 * (at least 256: peers may be added by reload), within 65,536 keys; as many again per group
 * configured at start (§11.1: keys per (peer, group)), within the key ring's bound. Groups
 * added by a reload fit in what is left (a restart sizes the table for them). */
static size_t kx_keyring_size(size_t npeers, size_t ngroups)
{
	size_t room = npeers * 2 < 256 ? 256 : npeers * 2, n = (room + 1) * (KR_RECV_PER_PEER + 1);

	n = n > KX_KEYRING_MAX ? KX_KEYRING_MAX : n;
	n *= 1 + ngroups; /* <= 65,536 * 65 */
	return n > KR_MAX_KEYS ? KR_MAX_KEYS : n;
}

static int kx_make_keyring(struct kx_core *kx)
{
	const struct px_conf *conf = kx->conf;
	struct keyring_params kp = {
		.self_id = conf->node_id,
		.interval_s = conf->keyex.interval_seconds,
		.grace_s = conf->keyex.grace_seconds,
		.padding = conf->seal.padding,
		.replay_bits = REPLAY_BITS_DEFAULT,
		.max_keys = kx_keyring_size(conf->npeers, conf->ngroups),
	};

	return keyring_new(&kp, &kx->kr) == PX_OK ? 0 : -1;
}


struct kx_core *kx_core_new(const struct kx_env *env, const char *state_text, const struct kx_now *now,
			    char *err, size_t errlen)
{
	struct kx_core *kx = calloc(1, sizeof(*kx));

	snprintf(err, errlen, "out of memory");
	if (!kx)
		return NULL;
	kx->env = *env;
	kx->conf = env->conf;
	kx->stats = env->stats;
	kx->now = *now;
	kx->last_tick_mono = now->mono_ms;
	if (kx_load_peers(kx, err, errlen) != 0)
		goto fail;
	snprintf(err, errlen, "out of memory");
	if (kx_make_topics(kx) != 0 || kx_make_keyring(kx) != 0)
		goto fail;
	kx_state_load_(kx, state_text);
	if (kx_push_persist_(kx) != 0)
		goto fail;
	return kx;
fail:
	kx_core_free(kx);
	return NULL;
}

/* A removed peer: no longer subscribed to, and our retained message to it cleared (an empty
 * retained publish), so that nothing more is delivered to or kept for it. */
static void kx_forget_peer(struct kx_core *kx, struct kx_batch *b, const struct kx_peer *p)
{
	char topic[KX_TOPIC_MAX];
	char **nf;

	if (!kx->up) { /* cleared at the next connection (a fresh session has no subscriptions) */
		nf = realloc(kx->forget, (kx->nforget + 1) * sizeof(*nf));
		if (nf) {
			kx->forget = nf;
			nf[kx->nforget] = strdup(p->id);
			kx->nforget += nf[kx->nforget] != NULL;
		}
		return;
	}
	if (kx_peer_filters_(kx, b, p) != 0)
		b->rc = -1;
	if (kx_topic_(kx, topic, "kx", p->id, kx->conf->node_id) == 0)
		(void)kx_push_publish_(kx, topic, NULL, 0, true, KX_TAG_NONE, NULL);
}

void kx_forget_pending_(struct kx_core *kx)
{
	char topic[KX_TOPIC_MAX];
	size_t i;

	for (i = 0; i < kx->nforget; i++) {
		if (!kx_peer_(kx, kx->forget[i], strlen(kx->forget[i])) &&
		    kx_topic_(kx, topic, "kx", kx->forget[i], kx->conf->node_id) == 0)
			(void)kx_push_publish_(kx, topic, NULL, 0, true, KX_TAG_NONE, NULL);
		free(kx->forget[i]);
	}
	free(kx->forget);
	kx->forget = NULL;
	kx->nforget = 0;
}

/* Erases what a reload removed; returns how many peers went. */
static size_t kx_drop_removed(struct kx_core *kx, struct kx_peer *old, size_t nold)
{
	struct kx_batch b = {.type = KX_ACT_UNSUBSCRIBE};
	size_t i, removed = 0;

	for (i = 0; i < nold; i++) {
		if (!old[i].pub)
			continue; /* moved into the new array */
		keyring_remove_peer(kx->kr, old[i].id);
		log_info("keyex", "peer %s removed by reload: its keys are erased", old[i].id);
		kx_forget_peer(kx, &b, &old[i]);
		kx_peer_clear(&old[i]);
		removed++;
	}
	if (kx_batch_flush_(kx, &b) != 0)
		log_error("keyex", "cannot unsubscribe from the removed peers' topics");
	return removed;
}

/* Added peers: subscribed to (the broker hands their retained messages), and told our
 * ephemeral key at once. */
static void kx_greet_added(struct kx_core *kx)
{
	size_t i;

	if (!kx->up)
		return; /* the next connection subscribes to and announces to every peer */
	uint64_t epoch = 0;

	(void)keyring_newest(kx->kr, &epoch);
	kx_sample_(kx);
	for (i = 0; i < kx->npeers; i++) {
		struct kx_peer *p = &kx->peers[i];
		if (p->added && !(p->out_sent && p->out_epoch == epoch))
			kx_announce_peer_(kx, p, true);
	}
	if (kx_subscribe_peers_(kx, true) != 0)
		log_error("keyex", "cannot subscribe to the added peers' topics");
}

int kx_core_reload(struct kx_core *kx, const struct kx_now *now, const struct px_conf *nc, char *err,
		   size_t errlen)
{
	struct kx_peer *old = kx->peers, *peers;
	size_t nold = kx->npeers, removed;
	enum kx_groups_change change;

	kx->now = *now;
	peers = kx_build_peers(kx, nc, err, errlen);
	if (!peers)
		return -1;
	removed = kx_drop_removed(kx, old, nold);
	free(old);
	kx->peers = peers;
	kx->npeers = nc->npeers;
	kx->restricted = kx_conf_restricted(nc);
	if (kx_index_build(kx) != 0)
		log_error("keyex", "out of memory: peers cannot be looked up");
	kx_count_unconfirmed_(kx);
	(void)kx_push_persist_(kx);
	change = kx_groups_reload_(kx, nc);
	if (change == KX_GROUPS_REVOKE)
		log_info("keyex", "a reader was removed from a group we seal for: new epoch (revoke)");
	/* R15, §11.1: what is sent from now on must be unreadable to the removed peers and readers */
	if (removed || change == KX_GROUPS_REVOKE) {
		kx->rotate_at_mono = 0;
		kx->revoking = true;
		/* Nothing more under a key they hold, not even until the new epoch is confirmed: device
		 * publishes wait for it (§9.3), and it is active as soon as it is announced. */
		keyring_epoch_retire(kx->kr);
		/* A pending epoch was wrapped for the removed peers too: never activate it (by its
		 * deadline, or by the confirmations of the others), whether or not we can announce. */
		keyring_epoch_drop_pending(kx->kr);
		kx->activate_at_mono = 0;
		kx_keys_changed_(kx);
	}
	/* With groups changed, the new epoch waits for the next tick, when the running configuration
	 * holds nc's groups (the caller installs them after this returns); meanwhile nothing seals
	 * under a revoked key (retired above) */
	if (change != KX_GROUPS_SAME)
		kx->rotate_at_mono = 0;
	else if (kx->up && removed)
		kx_rotate_(kx, "peer removed"); /* announces to every peer, the added ones too */
	kx_greet_added(kx);
	kx_check_activation_(kx);
	return 0;
}

void kx_core_free(struct kx_core *kx)
{
	size_t i;

	if (!kx)
		return;
	keyring_free(kx->kr);
	free(kx->ghist);
	for (i = 0; kx->peers && i < kx->npeers; i++)
		kx_peer_clear(&kx->peers[i]);
	free(kx->peers);
	free(kx->index);
	free(kx->topic_ack_sub);
	for (i = 0; i < kx->nforget; i++)
		free(kx->forget[i]);
	free(kx->forget);
	kx_queue_free_(kx);
	free(kx);
}

int kx_core_handle(struct kx_core *kx, const struct kx_now *now, const struct kx_event *ev)
{
	kx->now = *now;
	switch (ev->type) {
	case KX_EV_UP:
		kx_on_up_(kx);
		return 0;
	case KX_EV_DOWN:
		kx_on_down_(kx);
		return 0;
	case KX_EV_MESSAGE:
		if (!ev->topic || (!ev->payload && ev->len))
			return -1;
		kx_on_message_(kx, ev->topic, ev->payload, ev->len, ev->retained);
		return 0;
	case KX_EV_SEALED:
		kx_on_sealed_(kx);
		return 0;
	case KX_EV_STOP:
		kx_pres_say_(kx, false);
		return 0;
	case KX_EV_CONNECTING:
		kx_pres_connecting_(kx);
		return 0;
	}
	return -1;
}

void kx_core_set_policy(struct kx_core *kx, const struct policy *policy)
{
	kx->env.policy = policy;
}

struct keyring *kx_core_keyring(struct kx_core *kx)
{
	return kx->kr;
}

bool kx_core_is_up(const struct kx_core *kx)
{
	return kx->up;
}

bool kx_core_can_seal(const struct kx_core *kx, const struct kx_now *now)
{
	return (kx->ready || kx->npeers == 0) && keyring_can_seal(kx->kr, now->mono_ms) == PX_OK;
}
