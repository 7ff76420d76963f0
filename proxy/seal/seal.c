/* seal.c - the bytes of sealing (PROTOCOL.md §5): split MQTT 5 properties into the protected set
 * (inside the envelope) and the broker-facing set (outside), and write the sealed PUBLISH or
 * CONNECT straight into the destination buffer (one reservation, no intermediate copy of the
 * payload, which may come in pieces: the input chains). Opening is seal_deliver.c, the retained cache seal_cache.c. */
#include "seal_internal.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/evp.h>

#include "clock.h"
#include "conf.h"
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
bool seal_prop_outer_(uint8_t id, void *arg)
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
	free(s->gather);
	if (s->stage)
		evbuffer_free(s->stage);
	free(s->topic_buf);
	EVP_MD_free(s->sha256);
	free(s);
}

/* Splits props into freshly allocated inner and outer blocks (either may be empty). */
static int seal_split(struct mqtt_buf props, struct mqtt_buf *inner, struct mqtt_buf *outer, uint8_t **bufp)
{
	size_t ilen = mqtt_props_filter(props, seal_prop_inner_, NULL, NULL, 0);
	size_t olen = mqtt_props_filter(props, seal_prop_outer_, NULL, NULL, 0);
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
	outer->len = mqtt_props_filter(props, seal_prop_outer_, NULL, buf + ilen, olen);
	*bufp = buf;
	return 0;
}

/* The envelope of an empty payload without padding (header, inner lengths, tag), padding - 1 bytes
 * of padding at most, and one more byte of Remaining Length: a few hundred bytes cross at most one
 * of its steps (128, 16384, 2097152). Protected properties add nothing: they leave the property
 * block (whose length can only shrink) for the envelope, byte for byte. A group with writers adds
 * the source signature (§5.8). */
uint32_t seal_overhead_max(unsigned padding, const struct policy *pol)
{
	uint32_t sig = seal_policy_signs_(pol) ? ENV_SIG_LEN : 0;

	if (padding == SEAL_PADDING_ANY || padding > ENV_PAD_MAX)
		padding = ENV_PAD_MAX;
	return (uint32_t)env_sealed_size(0, 0, 1) + (padding - 1) + 1 + sig;
}

bool seal_policy_signs_(const struct policy *pol)
{
	size_t i, n = pol ? policy_group_count(pol) : 0;

	for (i = 0; i < n; i++)
		if (policy_group_has_writers(pol, (int)i))
			return true;
	return false;
}

enum seal_rc seal_how_(const struct seal *s, struct mqtt_buf aad, struct seal_how *how)
{
	const struct policy *pol = s->ctx->policy;
	int g = policy_group(pol, aad.p, aad.len);

	if (!policy_group_is_writer(pol, g, s->ctx->conf->node_id))
		return SEAL_DENIED;
	how->group = policy_group_name(pol, g);
	how->sign = policy_group_has_writers(pol, g);
	return how->group ? SEAL_OK : SEAL_DENIED;
}

size_t seal_env_size_(const struct seal *s, const struct seal_how *how, size_t props_len, size_t payload_len)
{
	size_t n = keyring_sealed_size(keyex_keyring(s->ctx->keyex), props_len, payload_len);

	return n && how->sign ? n + ENV_SIG_LEN : n;
}

enum px_err seal_env_(struct seal *s, const struct seal_how *how, uint64_t sealed_at, uint8_t flags,
		      struct mqtt_buf aad, struct mqtt_buf props, const struct aead_part *pieces, size_t npieces,
		      uint8_t *env, size_t env_len)
{
	struct keyring *kr = keyex_keyring(s->ctx->keyex);
	size_t n = how->sign ? env_len - ENV_SIG_LEN : env_len;
	enum px_err rc;

	if (how->sign && env_len < ENV_MIN_LEN_SIGNED)
		return PX_ERR_INVAL;
	rc = keyring_seal_group_parts(kr, how->group, clock_mono_ms(), sealed_at,
				      (uint8_t)(flags | (how->sign ? ENV_FLAG_SIGNED : 0)), aad.p, aad.len, props.p,
				      props.len, pieces, npieces, env, n);
	if (rc == PX_OK && how->sign)
		rc = env_source_sign(keyex_identity(s->ctx->keyex), aad.p, aad.len, env, env_len);
	return rc;
}

bool seal_may_write(struct seal *s, struct mqtt_buf topic)
{
	struct seal_how how;
	struct mqtt_buf aad;

	/* A name too long once rewritten is refused later as too large, not here. */
	if (seal_aad_topic_(s, topic.p, topic.len, &aad) != SEAL_OK)
		return true;
	return seal_how_(s, aad, &how) == SEAL_OK;
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
			  uint32_t max_packet, uint64_t sealed_at, struct env_header *sent, struct evbuffer *out,
			  const struct aead_part *pieces, size_t npieces)
{
	struct mqtt_buf inner = {0}, outer = {0}, aad;
	struct mqtt_publish np = *p;
	struct seal_how how;
	struct aead_part whole = {p->payload.p, p->payload.len};
	struct evbuffer_iovec v;
	uint8_t *buf = NULL;
	size_t env_len, total, head;
	enum seal_rc rc = seal_aad_topic_(s, topic.p, topic.len, &aad);
	enum px_err px;

	if (rc == SEAL_OK)
		rc = seal_how_(s, aad, &how); /* the key of the topic's group, the one place it is chosen */
	if (rc != SEAL_OK)
		return rc;
	rc = SEAL_ERROR;
	if (level == MQTT_LEVEL_5 && seal_split(p->props, &inner, &outer, &buf) != 0)
		return SEAL_ERROR;
	np.props = outer;
	env_len = seal_env_size_(s, &how, inner.len, p->payload.len);
	total = env_len ? mqtt_publish_size(level, &np, env_len) : 0;
	if (!total || (max_packet && total > max_packet)) {
		rc = SEAL_TOO_LARGE;
		goto out;
	}
	if (evbuffer_reserve_space(out, (ev_ssize_t)total, &v, 1) < 1)
		goto out;
	head = mqtt_publish_encode_head(level, &np, env_len, v.iov_base, total);
	if (npieces == 0) {
		pieces = &whole;
		npieces = 1;
	}
	px = seal_env_(s, &how, sealed_at, p->retain ? ENV_FLAG_RETAIN : 0, aad, inner, pieces, npieces,
		       (uint8_t *)v.iov_base + head, env_len);
	if (head == 0 || px != PX_OK) {
		rc = head == 0 ? SEAL_ERROR : seal_map_send_error(px);
		goto out;
	}
	if (sent && env_parse_header((uint8_t *)v.iov_base + head, env_len, sent) != PX_OK)
		goto out;
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
	struct mqtt_buf inner = {0}, outer = {0}, aad;
	struct mqtt_connect nc = *c;
	struct aead_part whole = {c->will_payload.p, c->will_payload.len};
	struct seal_how how;
	struct evbuffer_iovec v;
	uint8_t *props_buf = NULL, *env = NULL;
	size_t env_len, total;
	enum seal_rc rc = seal_aad_topic_(s, c->will_topic.p, c->will_topic.len, &aad);
	enum px_err px;

	if (rc == SEAL_OK)
		rc = seal_how_(s, aad, &how);
	if (rc != SEAL_OK)
		return rc;
	rc = SEAL_ERROR;
	if (c->level == MQTT_LEVEL_5 && seal_split(c->will_props, &inner, &outer, &props_buf) != 0)
		return SEAL_ERROR;
	env_len = seal_env_size_(s, &how, inner.len, c->will_payload.len);
	env = env_len ? malloc(env_len) : NULL;
	if (!env)
		goto out;
	/* A will is published by the broker at a time nobody knows yet: flagged, so receivers do not
	 * hold its seal time against their subscriptions (§6.2). */
	px = seal_env_(s, &how, clock_wall_ms(),
		       ENV_FLAG_WILL | ((c->flags & MQTT_CONNECT_FLAG_WILL_RETAIN) ? ENV_FLAG_RETAIN : 0), aad, inner,
		       &whole, 1, env, env_len);
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

enum seal_rc seal_write_plain_(uint8_t level, const struct mqtt_publish *p, struct mqtt_buf topic,
				     struct mqtt_buf props, const uint8_t *payload, size_t payload_len,
				     uint32_t max_packet, struct evbuffer *out)
{
	struct mqtt_publish np = *p;
	struct evbuffer_iovec v;
	size_t total, head;

	np.topic = topic;
	np.props = level == MQTT_LEVEL_5 ? props : (struct mqtt_buf){NULL, 0};
	total = mqtt_publish_size(level, &np, payload_len);
	if (!total || (max_packet && total > max_packet))
		return SEAL_TOO_LARGE;
	if (evbuffer_reserve_space(out, (ev_ssize_t)total, &v, 1) < 1)
		return SEAL_ERROR;
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
	return seal_write_plain_(level, p, topic, p->props, p->payload.p, p->payload.len, 0, out);
}

