/* seal_deliver.c - opening an incoming sealed PUBLISH for one device (PROTOCOL.md §6.1): the key
 * ring opens it and keeps the windows, the sender's publish list is checked, the delivery rule
 * (deliver.c, §6.2, §6.3) decides, and the plaintext PUBLISH is written for the device. */
#include "seal_internal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "clock.h"
#include "deliver.h"
#include "devstate.h"
#include "envelope.h"
#include "keyex.h"
#include "keyring.h"
#include "marks.h"
#include "policy.h"
#include "conf.h"

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
	case PX_ERR_SOURCE:
		return DROP_WRITER_NOT_PROVEN;
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
				    struct mqtt_buf topic, const struct env_opened *o, uint32_t max_packet,
				    struct evbuffer *out)
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
	rc = seal_write_plain_(level, p, topic, props, o->payload, o->payload_len, max_packet, out);
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

/* The source rule of a group with writers (§5.8) for keyring_open_source: the pinned identity key
 * of the key's sender if it is a writer of the topic's group (this node's own for its own keys). */
struct seal_writers {
	struct seal *s;
	int group;
};

static const struct id_pub *seal_writer_pub(void *arg, const char *sender)
{
	const struct seal_writers *w = arg;

	if (!policy_group_is_writer(w->s->ctx->policy, w->group, sender))
		return NULL;
	return keyex_sender_pub(w->s->ctx->keyex, sender);
}

/* §6.1 step 3, before a message is held for its key: the topic's group must be one this node
 * reads (or the key must be its own), and a known key must be of the topic's group. */
static bool seal_group_ok(struct seal *s, const struct env_header *h, int group)
{
	const struct policy *pol = s->ctx->policy;
	const char *name, *kg;

	if (policy_group_count(pol) == 0)
		return true; /* no groups: every key is of the default group, as every topic */
	name = policy_group_name(pol, group);
	if (!name)
		return false;
	kg = keyring_key_group(keyex_keyring(s->ctx->keyex), h->key_id);
	if (kg)
		return strcmp(kg, name) == 0; /* a key carries only its own group's topics */
	/* Unknown: no key of a group this node does not read will ever come. */
	return policy_group_is_reader(pol, group, s->ctx->conf->node_id);
}

/* A drop after the key was found: the sender is known, so it counts for that peer too. */
static enum seal_rc seal_peer_drop(struct seal *s, const char *sender, enum stats_drop reason)
{
	keyex_peer_count_message(s->ctx->keyex, sender, (int)reason);
	return SEAL_DROP;
}

/* Opens p for dev into k and describes it for the delivery rule in m. */
static enum seal_rc seal_open_dev(struct seal *s, struct devstate *dev, const struct mqtt_publish *p,
				  const struct env_header *h, struct mqtt_buf topic, const struct mqtt_buf *aad,
				  struct kr_opened *k, struct deliver_msg *m, enum stats_drop *reason)
{
	struct keyring *kr = keyex_keyring(s->ctx->keyex);
	struct seal_writers w = {s, policy_group(s->ctx->policy, aad->p, aad->len)};
	const struct kr_source src = {seal_writer_pub, &w};
	enum px_err rc;

	if (!seal_group_ok(s, h, w.group)) {
		*reason = DROP_NOT_A_READER;
		return SEAL_DROP;
	}
	rc = keyring_open_source(kr, devstate_rx(dev), clock_mono_ms(), aad->p, aad->len, p->payload.p,
				 p->payload.len, policy_group_has_writers(s->ctx->policy, w.group) ? &src : NULL,
				 s->scratch, k);
	if (rc == PX_ERR_UNKNOWN_KEY && !keyring_recv_erased(kr, k->h.key_id))
		return SEAL_UNKNOWN_KEY;
	if (rc == PX_ERR_UNKNOWN_KEY)
		rc = PX_ERR_EXPIRED; /* a key erased lately: stale at once, nothing to wait for */
	if (rc == PX_ERR_SOURCE) {
		*reason = DROP_WRITER_NOT_PROVEN;
		return seal_peer_drop(s, k->sender, *reason);
	}
	if (rc != PX_OK) {
		*reason = seal_map_open_error(rc);
		return SEAL_DROP;
	}
	m->h = k->h;
	m->epoch = k->epoch;
	m->seen = k->seen;
	m->retain_delivered = p->retain;
	m->repeat = p->qos > 0 && devstate_pending_match(dev, p->packet_id, k->h.key_id, k->h.counter);
	m->topic = topic.p;
	m->topic_len = topic.len;
	if ((k->h.flags & ENV_FLAG_RETAIN) && seal_digest(s, aad, m->digest) != 0)
		return SEAL_ERROR;
	return SEAL_OK;
}

/* Header checks that need no key (§6.1 steps 1-2); the parsed header into h. */
static bool seal_precheck(const struct mqtt_publish *p, struct env_header *h, enum stats_drop *reason)
{
	if (p->payload.len == 0) {
		*reason = DROP_EMPTY;
		return false;
	}
	if (p->payload.len < ENV_MIN_LEN || p->payload.p[0] != ENV_VERSION) {
		*reason = DROP_PLAINTEXT;
		return false;
	}
	if (env_parse_header(p->payload.p, p->payload.len, h) != PX_OK) {
		*reason = DROP_MALFORMED;
		return false;
	}
	return true;
}

enum seal_rc seal_open(struct seal *s, struct devstate *dev, uint8_t level, const struct mqtt_publish *p,
		       struct mqtt_buf topic, uint32_t max_packet, struct evbuffer *out, enum stats_drop *reason)
{
	const struct deliver_params dp = {.tolerance_ms = (uint64_t)s->ctx->conf->keyex.max_skew_seconds * 1000u,
					  .started_ms = s->ctx->started_wall_ms, .now_ms = clock_wall_ms()};
	enum deliver_verdict v;
	struct env_header h;
	struct deliver_msg m;
	struct kr_opened k;
	struct mqtt_buf aad;
	enum seal_rc res;

	if (!dev)
		return SEAL_ERROR; /* every session has a device state (session_attach_devstate) */
	if (!seal_precheck(p, &h, reason))
		return SEAL_DROP;
	if (seal_scratch(s, p->payload.len) != 0)
		return SEAL_ERROR;
	res = seal_aad_topic_(s, topic.p, topic.len, &aad);
	if (res != SEAL_OK) { /* a name too long once rewritten cannot be the one it was sealed under */
		*reason = DROP_AUTH;
		return res == SEAL_TOO_LARGE ? SEAL_DROP : res;
	}
	memset(&m, 0, sizeof(m));
	res = seal_open_dev(s, dev, p, &h, topic, &aad, &k, &m, reason);
	if (res != SEAL_OK)
		return res;
	if (!keyex_may_publish(s->ctx->keyex, k.sender, topic.p, topic.len)) {
		*reason = DROP_UNAUTHORIZED;
		return seal_peer_drop(s, k.sender, *reason);
	}
	v = deliver_decide(dev, s->ctx->marks, &dp, &m, reason);
	if (v == DELIVER_DROP)
		return seal_peer_drop(s, k.sender, *reason);
	if (v == DELIVER_SUPPRESS)
		return SEAL_SUPPRESS;
	if (!seal_inner_props_ok((struct mqtt_buf){k.o.props, k.o.props_len})) {
		*reason = DROP_MALFORMED;
		return seal_peer_drop(s, k.sender, *reason);
	}
	res = seal_open_write(s, level, p, topic, &k.o, max_packet, out);
	if (res == SEAL_TOO_LARGE) { /* not sent, as a broker does for its client (§5.7) */
		*reason = DROP_TOO_LARGE;
		return seal_peer_drop(s, k.sender, *reason);
	}
	if (res != SEAL_OK)
		return res;
	keyex_peer_count_message(s->ctx->keyex, k.sender, -1);
	deliver_done(dev, s->ctx->marks, &dp, &m, v);
	if (p->qos > 0)
		devstate_pending_put(dev, p->packet_id, k.h.key_id, k.h.counter);
	return SEAL_OK;
}
