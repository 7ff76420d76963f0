/* kx_core_pres.c - presence in the sans-I/O core (issue 15 item 5; the tracker is kx_presence.c):
 * this node's will before each CONNECT, "online" once up, "offline" on a clean stop, and the
 * repair of its own retained copy; the peers' presence messages (cheap checks, the
 * announcements' verification buckets, signature, ordering); a peer that went away is not waited
 * for at activation, one that came back gets our announcement at once. */
#include "kx_core_internal.h"

#include <inttypes.h>
#include <string.h>

#include "conf.h"
#include "stats.h"

#define KX_PRES_REPAIR_MS 2000 /* own retained copy re-published at most this often */

bool kx_pres_on_(const struct kx_core *kx)
{
	return kx->conf->keyex.presence;
}

/* The presence topic of id as published, and as signed (topic_prefix_map) into sbuf. */
static const char *kx_pres_topics(const struct kx_core *kx, const char *id, char topic[static KX_TOPIC_MAX],
				  char sbuf[static KX_SIGNED_TOPIC_MAX])
{
	if (kx_pres_topic(kx->conf->keyex.topic_prefix, id, topic, KX_TOPIC_MAX) == 0)
		return NULL;
	return kx_signed_topic_(kx, topic, sbuf);
}

/* A control connection is about to be opened: a session for it, and its will. */
void kx_pres_connecting_(struct kx_core *kx)
{
	char topic[KX_TOPIC_MAX], sbuf[KX_SIGNED_TOPIC_MAX];
	const char *signed_topic;
	uint8_t msg[PRES_MAX_LEN];
	size_t len = 0;
	struct kx_qaction *q;

	if (!kx_pres_on_(kx))
		return;
	(void)kx_pres_self_connect(&kx->pres_self, kx->now.wall_ms);
	signed_topic = kx_pres_topics(kx, kx->conf->node_id, topic, sbuf);
	if (!signed_topic ||
	    kx_pres_build_will(&kx->pres_self, kx->env.id, signed_topic, kx->conf->node_id, msg, &len) != PX_OK) {
		log_error("keyex", "cannot build the presence will");
		return;
	}
	if (kx_push_publish_(kx, topic, msg, len, true, KX_TAG_NONE, NULL) != 0)
		return;
	q = &kx->q[kx->qn - 1]; /* the same bytes, as the will instead of a publish */
	q->a.type = KX_ACT_SET_WILL;
}

/* presence(online) once up (CONNACK), or presence(offline) before a clean DISCONNECT. */
void kx_pres_say_(struct kx_core *kx, bool online)
{
	char topic[KX_TOPIC_MAX], sbuf[KX_SIGNED_TOPIC_MAX];
	const char *signed_topic;
	uint8_t msg[PRES_MAX_LEN];
	size_t len = 0;
	enum px_err rc = PX_ERR_INVAL;

	if (!kx_pres_on_(kx) || !kx->up || !kx->pres_self.session)
		return;
	signed_topic = kx_pres_topics(kx, kx->conf->node_id, topic, sbuf);
	if (signed_topic && online)
		rc = kx_pres_build_online(&kx->pres_self, kx->env.id, signed_topic, kx->conf->node_id,
					  kx->now.wall_ms, msg, &len);
	else if (signed_topic)
		rc = kx_pres_build_offline(&kx->pres_self, kx->env.id, signed_topic, kx->conf->node_id,
					   kx->now.wall_ms, msg, &len);
	if (rc != PX_OK) {
		log_error("keyex", "cannot build the presence message: %s", px_strerror(rc));
		return;
	}
	(void)kx_push_publish_(kx, topic, msg, len, true, KX_TAG_NONE, NULL);
}

/* Our own retained presence says something else than this connection's "online": say it again. */
static void kx_pres_own(struct kx_core *kx, const uint8_t *buf, size_t len)
{
	struct pres_view m;

	if (!kx->up || pres_parse(buf, len, &m) != PX_OK || !kx_pres_self_needs_repair(&kx->pres_self, &m))
		return;
	if (kx->pres_repair_mono && kx->now.mono_ms - kx->pres_repair_mono < KX_PRES_REPAIR_MS)
		return;
	kx->pres_repair_mono = kx->now.mono_ms;
	log_info("keyex", "the retained presence of this node says otherwise: online again");
	kx_pres_say_(kx, true);
}

static void kx_pres_reject(struct kx_core *kx, struct kx_peer *p, int reason, const char *why)
{
	kx->stats->presence_rejected[reason]++;
	log_emitf(LOG_DEBUG, "keyex", &(struct log_fields){.peer_id = p->id}, "presence of %s rejected: %s", p->id,
		  why);
}

/* p went away: activation no longer waits for it. */
static void kx_pres_went_away(struct kx_core *kx, struct kx_peer *p)
{
	log_emitf(LOG_INFO, "keyex", &(struct log_fields){.peer_id = p->id}, "peer %s away", p->id);
	if (p->must_confirm) {
		p->must_confirm = false;
		kx_count_unconfirmed_(kx);
		kx_check_activation_(kx);
	}
}

static void kx_pres_changed(struct kx_core *kx, struct kx_peer *p, enum kx_pres_change change)
{
	if (change == KX_PRES_WENT_AWAY) {
		kx_pres_went_away(kx, p);
	} else if (change == KX_PRES_CAME_BACK) {
		log_emitf(LOG_INFO, "keyex", &(struct log_fields){.peer_id = p->id}, "peer %s back", p->id);
		kx_sample_(kx);
		kx_announce_peer_(kx, p, true); /* keyed as soon as its announcement and ours cross */
	}
}

/* A message on <prefix>/presence/<id>: ours (repair) or a peer's. */
void kx_on_presence_(struct kx_core *kx, const char *topic, const char *id, const uint8_t *buf, size_t len)
{
	uint64_t skew = (uint64_t)kx->conf->keyex.max_skew_seconds * 1000u;
	struct kx_peer *p = kx_peer_(kx, id, strlen(id));
	char sbuf[KX_SIGNED_TOPIC_MAX];
	const char *signed_topic;
	enum kx_pres_change change = KX_PRES_NO_CHANGE;
	enum kx_pres_verdict v;
	struct pres_view m;
	enum px_err rc;

	if (!kx_pres_on_(kx) || len == 0)
		return;
	if (strcmp(id, kx->conf->node_id) == 0) {
		kx_pres_own(kx, buf, len);
		return;
	}
	if (!p)
		return; /* not subscribed to: a subscription of an earlier configuration */
	rc = pres_parse(buf, len, &m);
	if (rc != PX_OK) {
		kx_pres_reject(kx, p, rc == PX_ERR_VERSION ? REJECT_VERSION : REJECT_MALFORMED, px_strerror(rc));
		return;
	}
	v = kx_pres_check(&p->pres, &m, kx->now.wall_ms, skew);
	if (v == KX_PRES_DUPLICATE)
		return;
	if (v != KX_PRES_ACCEPTED) {
		kx_pres_reject(kx, p, v == KX_PRES_STALE ? REJECT_STALE : REJECT_CLOCK_SKEW, kx_pres_verdict_name(v));
		return;
	}
	if (!kx_bucket_take_ann_(kx, p)) {
		kx_pres_reject(kx, p, REJECT_RATE_LIMITED, "rate limited");
		return;
	}
	signed_topic = kx_signed_topic_(kx, topic, sbuf);
	if (!signed_topic || pres_verify(&m, p->pub, signed_topic) != PX_OK) {
		kx_pres_reject(kx, p, REJECT_BAD_SIGNATURE, "bad signature");
		return;
	}
	if (kx_pres_accept(&p->pres, &m, kx->now.wall_ms, skew, &change) == KX_PRES_ACCEPTED)
		kx_pres_changed(kx, p, change);
}

size_t kx_core_peers_present(const struct kx_core *kx)
{
	size_t i, n = 0;

	for (i = 0; i < kx->npeers; i++)
		n += kx_pres_state(&kx->peers[i].pres) == KX_PRES_ONLINE;
	return n;
}
