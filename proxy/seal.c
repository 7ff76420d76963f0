/* seal.c - the bytes of sealing (PROTOCOL.md §5, §6): split MQTT 5 properties into the protected
 * set (inside the envelope) and the broker-facing set (outside), write the sealed PUBLISH or
 * CONNECT straight into the destination buffer (one reservation, no intermediate copy of the
 * payload), open incoming envelopes into a reusable scratch buffer, and keep the retained cache. */
#include "seal_internal.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "clock.h"
#include "devstate.h"
#include "envelope.h"
#include "keyex.h"
#include "keyring.h"
#include "policy.h"

/* §5.3: what travels inside the envelope. */
bool seal_prop_inner_(uint8_t id, void *arg)
{
	(void)arg;
	return id == MQTT_PROP_PAYLOAD_FORMAT || id == MQTT_PROP_CONTENT_TYPE || id == MQTT_PROP_RESPONSE_TOPIC ||
	       id == MQTT_PROP_CORRELATION_DATA || id == MQTT_PROP_USER_PROPERTY;
}

/* What stays outside: hop-by-hop or broker-managed (never a UTF-8 payload format flag). */
static bool seal_prop_outer(uint8_t id, void *arg)
{
	(void)arg;
	return id == MQTT_PROP_TOPIC_ALIAS || id == MQTT_PROP_MESSAGE_EXPIRY || id == MQTT_PROP_SUBSCRIPTION_ID ||
	       id == MQTT_PROP_WILL_DELAY;
}

struct seal *seal_new(struct px_ctx *ctx)
{
	struct seal *s = calloc(1, sizeof(*s));

	if (s)
		s->ctx = ctx;
	return s;
}

void seal_free(struct seal *s)
{
	size_t i;

	if (!s)
		return;
	for (i = 0; i < SEAL_BUCKETS; i++) {
		while (s->buckets[i]) {
			struct seal_entry *e = s->buckets[i];
			s->buckets[i] = e->next;
			seal_entry_free_(e);
		}
	}
	free(s->scratch);
	free(s->topic_buf);
	free(s);
}

/* Splits props into freshly allocated inner and outer blocks (either may be empty). */
static int seal_split(struct mqtt_buf props, struct mqtt_buf *inner, struct mqtt_buf *outer, uint8_t **bufp)
{
	size_t ilen = mqtt_props_filter(props, seal_prop_inner_, NULL, NULL, 0);
	size_t olen = mqtt_props_filter(props, seal_prop_outer, NULL, NULL, 0);
	uint8_t *buf;

	*bufp = NULL;
	inner->len = outer->len = 0;
	inner->p = outer->p = NULL;
	if (ilen + olen == 0)
		return 0;
	buf = malloc(ilen + olen);
	if (!buf)
		return -1;
	inner->p = buf;
	inner->len = mqtt_props_filter(props, seal_prop_inner_, NULL, buf, ilen);
	outer->p = buf + ilen;
	outer->len = mqtt_props_filter(props, seal_prop_outer, NULL, buf + ilen, olen);
	*bufp = buf;
	return 0;
}

/* The envelope of an empty payload without padding (header, inner lengths, tag), padding - 1 bytes
 * of padding at most, and one more byte of Remaining Length: a few hundred bytes cross at most one
 * of its steps (128, 16384, 2097152). Protected properties add nothing: they leave the property
 * block (whose length can only shrink) for the envelope, byte for byte. */
uint32_t seal_overhead_max(unsigned padding)
{
	if (padding == SEAL_PADDING_ANY || padding > ENV_PAD_MAX)
		padding = ENV_PAD_MAX;
	return (uint32_t)env_sealed_size(0, 0, 1) + (padding - 1) + 1;
}

enum seal_rc seal_aad_topic_(struct seal *s, const uint8_t *topic, size_t len, struct mqtt_buf *out)
{
	const struct policy *pol = s->ctx->policy;

	if (policy_has_prefix_map(pol) && !s->topic_buf) {
		s->topic_buf = malloc(POLICY_TOPIC_MAX);
		if (!s->topic_buf)
			return SEAL_ERROR;
	}
	return policy_aad_topic(pol, topic, len, s->topic_buf, POLICY_TOPIC_MAX, &out->p, &out->len) ? SEAL_OK : SEAL_TOO_LARGE;
}

static enum seal_rc seal_map_send_error(enum px_err rc)
{
	return rc == PX_ERR_LIMIT || rc == PX_ERR_EXPIRED || rc == PX_ERR_UNKNOWN_KEY ? SEAL_NO_KEY : SEAL_ERROR;
}

enum seal_rc seal_publish(struct seal *s, uint8_t level, const struct mqtt_publish *p, struct mqtt_buf topic,
			  uint32_t max_packet, struct evbuffer *out)
{
	struct keyring *kr = keyex_keyring(s->ctx->keyex);
	struct mqtt_buf inner = {0}, outer = {0}, aad;
	struct mqtt_publish np = *p;
	struct evbuffer_iovec v;
	uint8_t *buf = NULL;
	size_t env_len, total, head;
	enum seal_rc rc = seal_aad_topic_(s, topic.p, topic.len, &aad);
	enum px_err px;

	if (rc != SEAL_OK)
		return rc;
	rc = SEAL_ERROR;
	if (level == MQTT_LEVEL_5 && seal_split(p->props, &inner, &outer, &buf) != 0)
		return SEAL_ERROR;
	np.props = outer;
	env_len = keyring_sealed_size(kr, inner.len, p->payload.len);
	total = env_len ? mqtt_publish_size(level, &np, env_len) : 0;
	if (!total || (max_packet && total > max_packet)) {
		rc = SEAL_TOO_LARGE;
		goto out;
	}
	if (evbuffer_reserve_space(out, (ev_ssize_t)total, &v, 1) < 1)
		goto out;
	head = mqtt_publish_encode_head(level, &np, env_len, v.iov_base, total);
	px = keyring_seal(kr, clock_mono_ms(), p->retain ? ENV_FLAG_RETAIN : 0, aad.p, aad.len, inner.p, inner.len,
			  p->payload.p, p->payload.len, (uint8_t *)v.iov_base + head, env_len);
	if (head == 0 || px != PX_OK) {
		rc = head == 0 ? SEAL_ERROR : seal_map_send_error(px);
		goto out;
	}
	v.iov_len = total;
	rc = evbuffer_commit_space(out, &v, 1) == 0 ? SEAL_OK : SEAL_ERROR;
	if (rc == SEAL_OK) {
		s->ctx->stats->sealed++;
		keyex_after_seal(s->ctx->keyex);
	}
out:
	free(buf);
	return rc;
}

enum seal_rc seal_connect(struct seal *s, const struct mqtt_connect *c, struct evbuffer *out)
{
	struct keyring *kr = keyex_keyring(s->ctx->keyex);
	struct mqtt_buf inner = {0}, outer = {0}, aad;
	struct mqtt_connect nc = *c;
	struct evbuffer_iovec v;
	uint8_t *props_buf = NULL, *env = NULL;
	size_t env_len, total;
	enum seal_rc rc = seal_aad_topic_(s, c->will_topic.p, c->will_topic.len, &aad);
	enum px_err px;

	if (rc != SEAL_OK)
		return rc;
	rc = SEAL_ERROR;
	if (c->level == MQTT_LEVEL_5 && seal_split(c->will_props, &inner, &outer, &props_buf) != 0)
		return SEAL_ERROR;
	env_len = keyring_sealed_size(kr, inner.len, c->will_payload.len);
	env = env_len ? malloc(env_len) : NULL;
	if (!env)
		goto out;
	px = keyring_seal(kr, clock_mono_ms(), (c->flags & MQTT_CONNECT_FLAG_WILL_RETAIN) ? ENV_FLAG_RETAIN : 0,
			  aad.p, aad.len, inner.p, inner.len, c->will_payload.p,
			  c->will_payload.len, env, env_len);
	if (px != PX_OK) {
		rc = seal_map_send_error(px);
		goto out;
	}
	nc.will_props = outer;
	nc.will_payload.p = env;
	nc.will_payload.len = env_len;
	total = mqtt_connect_size(&nc);
	if (!total) {
		rc = SEAL_TOO_LARGE;
		goto out;
	}
	if (evbuffer_reserve_space(out, (ev_ssize_t)total, &v, 1) < 1 ||
	    mqtt_connect_encode(&nc, v.iov_base, total) != total)
		goto out;
	v.iov_len = total;
	rc = evbuffer_commit_space(out, &v, 1) == 0 ? SEAL_OK : SEAL_ERROR;
	if (rc == SEAL_OK)
		s->ctx->stats->sealed++;
out:
	free(env);
	free(props_buf);
	return rc;
}

/* Writes p with topic in full and props (level 5) and payload to out. */
static enum seal_rc seal_write_plain(uint8_t level, const struct mqtt_publish *p, struct mqtt_buf topic,
				     struct mqtt_buf props, const uint8_t *payload, size_t payload_len,
				     struct evbuffer *out)
{
	struct mqtt_publish np = *p;
	struct evbuffer_iovec v;
	size_t total, head;

	np.topic = topic;
	np.props = level == MQTT_LEVEL_5 ? props : (struct mqtt_buf){NULL, 0};
	total = mqtt_publish_size(level, &np, payload_len);
	if (!total || evbuffer_reserve_space(out, (ev_ssize_t)total, &v, 1) < 1)
		return total ? SEAL_ERROR : SEAL_TOO_LARGE;
	head = mqtt_publish_encode_head(level, &np, payload_len, v.iov_base, total);
	if (head == 0 || head + payload_len != total)
		return SEAL_ERROR;
	if (payload_len)
		memcpy((uint8_t *)v.iov_base + head, payload, payload_len);
	v.iov_len = total;
	return evbuffer_commit_space(out, &v, 1) == 0 ? SEAL_OK : SEAL_ERROR;
}

enum seal_rc seal_plain_full_topic(uint8_t level, const struct mqtt_publish *p, struct mqtt_buf topic,
				   struct evbuffer *out)
{
	return seal_write_plain(level, p, topic, p->props, p->payload.p, p->payload.len, out);
}

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
		olen = mqtt_props_filter(p->props, seal_prop_outer, NULL, NULL, 0);
		buf = malloc(olen + o->props_len + 1);
		if (!buf)
			return SEAL_ERROR;
		mqtt_props_filter(p->props, seal_prop_outer, NULL, buf, olen);
		if (o->props_len)
			memcpy(buf + olen, o->props, o->props_len);
		props.p = buf;
		props.len = olen + o->props_len;
	}
	rc = seal_write_plain(level, p, topic, props, o->payload, o->payload_len, out);
	if (rc == SEAL_OK)
		s->ctx->stats->opened++;
	free(buf);
	return rc;
}

enum seal_rc seal_open(struct seal *s, struct devstate *dev, uint8_t level, const struct mqtt_publish *p,
		       struct mqtt_buf topic, struct evbuffer *out, enum stats_drop *reason)
{
	const uint8_t *env = p->payload.p;
	size_t len = p->payload.len;
	struct mqtt_buf aad;
	struct env_header h;
	struct env_opened o;
	enum seal_rc res;
	unsigned flags = 0;
	enum px_err rc;
	const char *sender = NULL;

	if (len == 0) {
		*reason = DROP_EMPTY;
		return SEAL_DROP;
	}
	if (len < ENV_MIN_LEN || env[0] != ENV_VERSION) {
		*reason = DROP_PLAINTEXT;
		return SEAL_DROP;
	}
	if (env_parse_header(env, len, &h) != PX_OK) {
		*reason = DROP_MALFORMED;
		return SEAL_DROP;
	}
	if (seal_scratch(s, len) != 0)
		return SEAL_ERROR;
	res = seal_aad_topic_(s, topic.p, topic.len, &aad);
	if (res != SEAL_OK) { /* a name too long once rewritten cannot be the one it was sealed under */
		*reason = DROP_AUTH;
		return res == SEAL_TOO_LARGE ? SEAL_DROP : res;
	}
	if (dev && p->qos > 0 && devstate_pending_match(dev, p->packet_id, h.key_id, h.counter))
		flags |= KR_OPEN_REPEAT; /* the broker's redelivery of what the device did not acknowledge */
	rc = keyring_open(keyex_keyring(s->ctx->keyex), dev ? devstate_rx(dev) : NULL, clock_mono_ms(), aad.p,
			  aad.len, env, len, p->retain, flags, s->scratch, &o, &sender);
	if (rc == PX_ERR_UNKNOWN_KEY)
		return SEAL_UNKNOWN_KEY;
	if (rc != PX_OK) {
		*reason = seal_map_open_error(rc);
		return SEAL_DROP;
	}
	if (!keyex_may_publish(s->ctx->keyex, sender, topic.p, topic.len)) {
		*reason = DROP_UNAUTHORIZED;
		return SEAL_DROP;
	}
	if ((h.flags & ENV_FLAG_REPUBLISH) && !p->retain)
		return SEAL_SUPPRESS;
	if (!seal_inner_props_ok((struct mqtt_buf){o.props, o.props_len})) {
		*reason = DROP_MALFORMED;
		return SEAL_DROP;
	}
	res = seal_open_write(s, level, p, topic, &o, out);
	if (res == SEAL_OK && dev && p->qos > 0)
		devstate_pending_put(dev, p->packet_id, h.key_id, h.counter);
	return res;
}
