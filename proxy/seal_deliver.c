/* seal_deliver.c - opening an incoming sealed PUBLISH for one device and the delivery rule of
 * PROTOCOL.md §6.2 and §6.3: a message reaches a device at most once (per client id, across
 * reconnects, clean sessions and takeovers), never if it was sealed well before the subscription
 * that covers its topic, except the copies overlapping subscriptions ask for, the broker's
 * redelivery of what the device did not acknowledge, and the newest retained value of a topic
 * (node-wide marks: never an older one). The key ring opens and keeps the windows; this file
 * decides. */
#include "seal_internal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "clock.h"
#include "devstate.h"
#include "envelope.h"
#include "keyex.h"
#include "keyring.h"
#include "marks.h"
#include "../conf/conf.h"

/* What the rule says of one opened message. */
enum seal_verdict {
	SV_DELIVER,
	SV_SUPPRESS, /* a re-publication the device has already: acknowledged, not delivered (§10.1) */
	SV_DROP,     /* *reason set */
};

/* One opened message and what the rule needs to know about it. */
struct seal_msg {
	const struct mqtt_publish *p;
	struct kr_opened k;
	struct mark mark;
	uint8_t digest[MARKS_DIGEST_LEN]; /* of the AAD topic, when intent */
	bool intent;   /* authenticated retain_intent */
	bool retained; /* RETAIN=1 as delivered with retain_intent: a retained value (§6.3) */
	bool repeat;   /* the broker's redelivery of what the device did not acknowledge */
};

static enum stats_drop seal_map_open_error(enum px_err rc)
{
	switch (rc) {
	case PX_ERR_EXPIRED:
		return DROP_STALE_KEY;
	case PX_ERR_LIMIT:
		return DROP_LIMIT;
	case PX_ERR_REPLAY:
		return DROP_REPLAY;
	case PX_ERR_AUTH:
		return DROP_AUTH;
	default:
		return DROP_MALFORMED;
	}
}

/* The protected properties must be a valid PUBLISH property block of the protected set only. */
static bool seal_inner_props_ok(struct mqtt_buf props)
{
	return props.len == 0 || (mqtt_props_validate(props, MQTT_PUBLISH, NULL) == MQTT_PARSE_OK &&
				  mqtt_props_filter(props, seal_prop_inner_, NULL, NULL, 0) == props.len);
}

static int seal_scratch(struct seal *s, size_t need)
{
	uint8_t *n;

	if (need <= s->scratch_cap)
		return 0;
	n = realloc(s->scratch, need);
	if (!n)
		return -1;
	s->scratch = n;
	s->scratch_cap = need;
	return 0;
}

/* Device-bound properties: the broker's outer ones, then the protected ones. */
static enum seal_rc seal_open_write(struct seal *s, uint8_t level, const struct mqtt_publish *p,
				    struct mqtt_buf topic, const struct env_opened *o, struct evbuffer *out)
{
	struct mqtt_buf props = {NULL, 0};
	uint8_t *buf = NULL;
	enum seal_rc rc;
	size_t olen;

	if (level == MQTT_LEVEL_5 && (p->props.len || o->props_len)) {
		olen = mqtt_props_filter(p->props, seal_prop_outer_, NULL, NULL, 0);
		buf = malloc(olen + o->props_len + 1);
		if (!buf)
			return SEAL_ERROR;
		mqtt_props_filter(p->props, seal_prop_outer_, NULL, buf, olen);
		if (o->props_len)
			memcpy(buf + olen, o->props, o->props_len);
		props.p = buf;
		props.len = olen + o->props_len;
	}
	rc = seal_write_plain_(level, p, topic, props, o->payload, o->payload_len, out);
	if (rc == SEAL_OK)
		s->ctx->stats->opened++;
	free(buf);
	return rc;
}

/* The first MARKS_DIGEST_LEN bytes of SHA-256 of the AAD topic (also the devstate digest). */
static int seal_digest(struct seal *s, const struct mqtt_buf *aad, uint8_t out[static MARKS_DIGEST_LEN])
{
	uint8_t full[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!s->sha256 && !(s->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL))) /* fetched once (R46) */
		return -1;
	if (EVP_Digest(aad->p, aad->len, full, &n, s->sha256, NULL) != 1 || n < MARKS_DIGEST_LEN)
		return -1;
	memcpy(out, full, MARKS_DIGEST_LEN);
	return 0;
}

/* A retained value (§6.3): never older than the topic's mark; a value this device may have had
 * already (seen by its window, or below the key's floor after it got one on this topic) only as
 * a copy of the same round or once per new subscription; a re-publication likewise. */
static enum seal_verdict seal_rule_retained(struct seal *s, struct devstate *dev, struct seal_msg *m,
					    const struct devstate_match *sub, enum stats_drop *reason)
{
	enum marks_order ord = marks_compare(s->ctx->marks, m->digest, &m->mark);
	bool had;

	if (ord == MARKS_OLDER) {
		*reason = DROP_ROLLBACK;
		return SV_DROP;
	}
	if (m->k.seen == KR_SEEN_NEW && !(m->k.h.flags & ENV_FLAG_REPUBLISH))
		return SV_DELIVER;
	if (devstate_copy_take(dev, m->k.h.key_id, m->k.h.counter, sub->count))
		return SV_DELIVER;
	/* A repeat, or a re-publication of a value it may hold: a new subscription allows one. */
	if (devstate_credit_take(dev, m->digest, sub->gen))
		return SV_DELIVER;
	had = devstate_credit_had(dev, m->digest);
	if (m->k.h.flags & ENV_FLAG_REPUBLISH)
		return had ? SV_SUPPRESS : SV_DELIVER;
	if (m->k.seen == KR_SEEN_FLOOR && !had)
		return SV_DELIVER; /* sealed before this node held the key; never delivered here */
	*reason = DROP_REPLAY;
	return SV_DROP;
}

/* A live message: once per device (copies and redeliveries aside), and not sealed before the
 * subscription that covers it (the tolerance is keyex.max_skew_seconds) nor before this node
 * started (what a node had delivered before it restarted is not known any more). */
static enum seal_verdict seal_rule_live(struct seal *s, struct devstate *dev, const struct seal_msg *m,
					const struct devstate_match *sub, enum stats_drop *reason)
{
	uint64_t tol = (uint64_t)s->ctx->conf->keyex.max_skew_seconds * 1000u;
	uint64_t at = m->k.h.sealed_at;

	*reason = DROP_REPLAY;
	if (m->k.seen == KR_SEEN_FLOOR)
		return SV_DROP;
	if (m->k.seen == KR_SEEN_WINDOW)
		return m->repeat || devstate_copy_take(dev, m->k.h.key_id, m->k.h.counter, sub->count) ? SV_DELIVER
													: SV_DROP;
	if (!(m->k.h.flags & ENV_FLAG_WILL) && (at + tol < sub->start_ms || at < s->ctx->started_wall_ms)) {
		*reason = DROP_BEFORE_SUB;
		return SV_DROP;
	}
	if ((m->k.h.flags & ENV_FLAG_REPUBLISH) && !m->p->retain)
		return SV_SUPPRESS;
	return SV_DELIVER;
}

/* What a delivery leaves behind: the copy round, the topic's mark, the device's retained note. */
static void seal_delivered(struct seal *s, struct devstate *dev, const struct seal_msg *m)
{
	devstate_copy_first(dev, m->k.h.key_id, m->k.h.counter);
	if (!m->intent)
		return;
	(void)marks_record(s->ctx->marks, m->digest, &m->mark);
	devstate_credit_note(dev, m->digest);
}

static enum seal_verdict seal_rule(struct seal *s, struct devstate *dev, struct seal_msg *m,
				   struct mqtt_buf topic, enum stats_drop *reason)
{
	struct devstate_match sub;
	enum seal_verdict v;

	devstate_match(dev, topic.p, topic.len, &sub);
	v = m->retained ? seal_rule_retained(s, dev, m, &sub, reason) : seal_rule_live(s, dev, m, &sub, reason);
	if (v == SV_SUPPRESS && m->intent)
		(void)marks_record(s->ctx->marks, m->digest, &m->mark); /* the broker holds it now */
	return v;
}

/* Opens p for dev; *m filled on SEAL_OK. */
static enum seal_rc seal_open_dev(struct seal *s, struct devstate *dev, const struct mqtt_publish *p,
				  const struct mqtt_buf *aad, struct seal_msg *m, enum stats_drop *reason)
{
	struct keyring *kr = keyex_keyring(s->ctx->keyex);
	enum px_err rc;

	rc = keyring_open_decide(kr, devstate_rx(dev), clock_mono_ms(), aad->p, aad->len, p->payload.p,
				 p->payload.len, s->scratch, &m->k);
	if (rc == PX_ERR_UNKNOWN_KEY && !keyring_recv_erased(kr, m->k.h.key_id))
		return SEAL_UNKNOWN_KEY;
	if (rc == PX_ERR_UNKNOWN_KEY)
		rc = PX_ERR_EXPIRED; /* a key erased lately: stale at once, nothing to wait for */
	if (rc != PX_OK) {
		*reason = seal_map_open_error(rc);
		return SEAL_DROP;
	}
	m->p = p;
	m->intent = (m->k.h.flags & ENV_FLAG_RETAIN) != 0;
	m->retained = m->intent && p->retain;
	m->repeat = p->qos > 0 && devstate_pending_match(dev, p->packet_id, m->k.h.key_id, m->k.h.counter);
	m->mark = (struct mark){.sealed_at = m->k.h.sealed_at, .epoch = m->k.epoch, .counter = m->k.h.counter};
	memcpy(m->mark.key_id, m->k.h.key_id, ENV_KEY_ID_LEN);
	if (m->intent && seal_digest(s, aad, m->digest) != 0)
		return SEAL_ERROR;
	return SEAL_OK;
}

/* Header checks that need no key (§6.1 steps 1-2). */
static bool seal_precheck(const struct mqtt_publish *p, enum stats_drop *reason)
{
	struct env_header h;

	if (p->payload.len == 0) {
		*reason = DROP_EMPTY;
		return false;
	}
	if (p->payload.len < ENV_MIN_LEN || p->payload.p[0] != ENV_VERSION) {
		*reason = DROP_PLAINTEXT;
		return false;
	}
	if (env_parse_header(p->payload.p, p->payload.len, &h) != PX_OK) {
		*reason = DROP_MALFORMED;
		return false;
	}
	return true;
}

enum seal_rc seal_open(struct seal *s, struct devstate *dev, uint8_t level, const struct mqtt_publish *p,
		       struct mqtt_buf topic, struct evbuffer *out, enum stats_drop *reason)
{
	struct seal_msg m;
	struct mqtt_buf aad;
	enum seal_rc res;

	if (!dev)
		return SEAL_ERROR; /* every session has a device state (session_attach_devstate) */
	if (!seal_precheck(p, reason))
		return SEAL_DROP;
	if (seal_scratch(s, p->payload.len) != 0)
		return SEAL_ERROR;
	res = seal_aad_topic_(s, topic.p, topic.len, &aad);
	if (res != SEAL_OK) { /* a name too long once rewritten cannot be the one it was sealed under */
		*reason = DROP_AUTH;
		return res == SEAL_TOO_LARGE ? SEAL_DROP : res;
	}
	memset(&m, 0, sizeof(m));
	res = seal_open_dev(s, dev, p, &aad, &m, reason);
	if (res != SEAL_OK)
		return res;
	if (!keyex_may_publish(s->ctx->keyex, m.k.sender, topic.p, topic.len)) {
		*reason = DROP_UNAUTHORIZED;
		return SEAL_DROP;
	}
	switch (seal_rule(s, dev, &m, topic, reason)) {
	case SV_DROP:
		return SEAL_DROP;
	case SV_SUPPRESS:
		return SEAL_SUPPRESS;
	case SV_DELIVER:
		break;
	}
	if (!seal_inner_props_ok((struct mqtt_buf){m.k.o.props, m.k.o.props_len})) {
		*reason = DROP_MALFORMED;
		return SEAL_DROP;
	}
	res = seal_open_write(s, level, p, topic, &m.k.o, out);
	if (res != SEAL_OK)
		return res;
	seal_delivered(s, dev, &m);
	if (p->qos > 0)
		devstate_pending_put(dev, p->packet_id, m.k.h.key_id, m.k.h.counter);
	return SEAL_OK;
}
