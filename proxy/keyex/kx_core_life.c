/* kx_core_life.c - the sans-I/O core's life cycle and queries: creation from the configuration and
 * the state text, reload (R15: removed peers' keys erased, a new epoch at once), events in,
 * release, and what the data path, the admin endpoint and the simulation ask. */
#include "kx_core_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
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
 * from old (whose moved entries are cleared). */
static struct kx_peer *kx_build_peers(const struct px_conf *conf, struct kx_peer *old, size_t nold, char *err,
					 size_t errlen)
{
	struct kx_peer *peers = calloc(conf->npeers ? conf->npeers : 1, sizeof(*peers));
	uint8_t raw[ID_PUB_LEN];
	size_t i, j;

	for (i = 0; peers && i < conf->npeers; i++) {
		struct kx_peer *p = &peers[i];
		if (id_pub_decode(conf->peers[i].public_key, raw) != PX_OK) {
			snprintf(err, errlen, "%s:%u: peers.public_key of %s is not a valid Ed25519 key", conf->path,
				 conf->peers[i].line, conf->peers[i].id);
			goto fail;
		}
		for (j = 0; j < nold; j++)
			if (old[j].pub && strcmp(old[j].id, conf->peers[i].id) == 0 &&
			    memcmp(id_pub_raw(old[j].pub), raw, ID_PUB_LEN) == 0)
				break;
		if (j < nold) {
			*p = old[j];
			memset(&old[j], 0, sizeof(old[j]));
			p->conf = &conf->peers[i];
			continue;
		}
		p->conf = &conf->peers[i];
		snprintf(p->id, sizeof(p->id), "%s", conf->peers[i].id);
		p->tokens = p->ack_tokens = KX_BUCKET_BURST;
		if (id_pub_new(raw, &p->pub) != PX_OK) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
	}
	if (!peers)
		snprintf(err, errlen, "out of memory");
	return peers;
fail:
	/* Give moved state back to old (matched by id), so a refused reload changes nothing. */
	for (j = 0; j < i; j++) {
		size_t k;
		for (k = 0; k < nold && peers[j].pub; k++) {
			if (!old[k].pub && !old[k].id[0]) {
				old[k] = peers[j];
				memset(&peers[j], 0, sizeof(peers[j]));
			}
		}
		kx_peer_clear(&peers[j]);
	}
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

static int kx_load_peers(struct kx_core *kx, char *err, size_t errlen)
{
	kx->peers = kx_build_peers(kx->conf, NULL, 0, err, errlen);
	kx->npeers = kx->peers ? kx->conf->npeers : 0;
	kx->restricted = kx_conf_restricted(kx->conf);
	return kx->peers ? 0 : -1;
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
	for (i = 0; sender && i < kx->npeers && !c; i++)
		if (strcmp(kx->peers[i].id, sender) == 0)
			c = kx->peers[i].conf;
	if (!c)
		return false;
	if (!c->has_publish)
		return true;
	for (i = 0; i < c->npublish; i++)
		if (mqtt_topic_match((const uint8_t *)c->publish[i], strlen(c->publish[i]), topic, len))
			return true;
	return false;
}

static int kx_make_topics(struct kx_core *kx)
{
	const struct px_conf *conf = kx->conf;
	char prefix[96];

	snprintf(prefix, sizeof(prefix), "%s/keyex/", conf->keyex.topic_prefix);
	kx->prefix_len = strlen(conf->keyex.topic_prefix);
	kx->topic_self = kx_join(prefix, conf->node_id, "");
	kx->topic_keyex_sub = kx_join(prefix, "+", "");
	snprintf(prefix, sizeof(prefix), "%s/ack/", conf->keyex.topic_prefix);
	kx->topic_ack_sub = kx_join(prefix, conf->node_id, "/+");
	return kx->topic_self && kx->topic_keyex_sub && kx->topic_ack_sub ? 0 : -1;
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
		.max_keys = (size_t)(ANN_MAX_ENTRIES + 1) * (KR_RECV_PER_PEER + 1), /* peers may be added by reload */
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

/* Erases what a reload removed; returns how many peers went. */
static size_t kx_drop_removed(struct kx_core *kx, struct kx_peer *old, size_t nold)
{
	size_t i, removed = 0;

	for (i = 0; i < nold; i++) {
		if (!old[i].pub)
			continue; /* moved into the new array */
		keyring_remove_peer(kx->kr, old[i].id);
		log_info("keyex", "peer %s removed by reload: its keys are erased", old[i].id);
		kx_peer_clear(&old[i]);
		removed++;
	}
	return removed;
}

int kx_core_reload(struct kx_core *kx, const struct kx_now *now, const struct px_conf *nc, char *err,
		   size_t errlen)
{
	struct kx_peer *old = kx->peers, *peers;
	size_t nold = kx->npeers, removed;

	kx->now = *now;
	peers = kx_build_peers(nc, old, nold, err, errlen);
	if (!peers)
		return -1;
	removed = kx_drop_removed(kx, old, nold);
	free(old);
	kx->peers = peers;
	kx->npeers = nc->npeers;
	kx->restricted = kx_conf_restricted(nc);
	(void)kx_push_persist_(kx);
	if (removed) { /* R15: what is sent from now on must be unreadable to the removed peers */
		kx->rotate_at_mono = 0;
		kx->revoking = true;
		/* Nothing more under a key they hold, not even until the new epoch is confirmed: device
		 * publishes wait for it (§9.3), and it is active as soon as it is announced. */
		keyring_epoch_retire(kx->kr);
		kx_keys_changed_(kx);
	}
	if (kx->up) {
		/* Subscribing again replays the retained announcements, those of added peers too. */
		const char *sub = kx->topic_keyex_sub;
		(void)kx_push_filters_(kx, KX_ACT_SUBSCRIBE, &sub, 1);
		if (removed)
			kx_rotate_(kx, "peer removed");
	}
	return 0;
}

void kx_core_free(struct kx_core *kx)
{
	size_t i;

	if (!kx)
		return;
	keyring_free(kx->kr);
	for (i = 0; kx->peers && i < kx->npeers; i++)
		kx_peer_clear(&kx->peers[i]);
	free(kx->peers);
	free(kx->topic_self);
	free(kx->topic_keyex_sub);
	free(kx->topic_ack_sub);
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
		return 0; /* presence (issue 15 item 5): the offline message goes here */
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
