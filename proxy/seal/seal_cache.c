/* seal_cache.c - the retained cache of PROTOCOL.md §10.1: per sealed topic, the plaintext of the
 * last retained message a device published here (memory only, bounded by seal.retained_cache_kb),
 * re-sealed under each newly active epoch and published retained, so the broker never keeps a
 * retained ciphertext older than one epoch. Only values the broker has shown it accepted from the
 * device are re-published, and a topic is forgotten as soon as the broker has anything else for
 * it: the control connection watches each cached topic. */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "envelope.h"
#include "hash.h"
#include "keyex.h"
#include "keyring.h"
#include "seal_internal.h"
#include "conf.h"

void seal_entry_free_(struct seal_entry *e)
{
	free(e->topic);
	free(e->inner_props);
	free(e->payload);
	free(e);
}

static size_t seal_cache_hash(const uint8_t *p, size_t len)
{
	return px_fnv1a(p, len) % SEAL_BUCKETS;
}

static size_t seal_entry_size(const struct seal_entry *e)
{
	return sizeof(*e) + e->topic_len + 1 + e->props_len + e->payload_len;
}

static struct seal_entry **seal_cache_find(struct seal *s, struct mqtt_buf topic)
{
	struct seal_entry **pp = &s->buckets[seal_cache_hash(topic.p, topic.len)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->topic_len == topic.len && memcmp((*pp)->topic, topic.p, topic.len) == 0)
			return pp;
	return pp;
}

/* Unlinks and frees *pp; unwatch: the topic has no cached value any more. */
static void seal_cache_remove(struct seal *s, struct seal_entry **pp, bool unwatch)
{
	struct seal_entry *e = *pp;

	*pp = e->next;
	s->count--;
	s->bytes -= seal_entry_size(e);
	if (unwatch)
		(void)keyex_watch(s->ctx->keyex, e->topic, false);
	seal_entry_free_(e);
}

void seal_retained_delete(struct seal *s, struct mqtt_buf topic)
{
	struct seal_entry **pp = seal_cache_find(s, topic);

	if (*pp)
		seal_cache_remove(s, pp, true);
}

static struct seal_entry *seal_entry_new(uint8_t level, const struct mqtt_publish *p, struct mqtt_buf topic)
{
	struct seal_entry *e = calloc(1, sizeof(*e));
	size_t plen = level == MQTT_LEVEL_5 ? mqtt_props_filter(p->props, seal_prop_inner_, NULL, NULL, 0) : 0;

	if (!e)
		return NULL;
	e->topic = malloc(topic.len + 1);
	e->inner_props = plen ? malloc(plen) : NULL;
	e->payload = malloc(p->payload.len ? p->payload.len : 1);
	if (!e->topic || (plen && !e->inner_props) || !e->payload) {
		seal_entry_free_(e);
		return NULL;
	}
	memcpy(e->topic, topic.p, topic.len);
	e->topic[topic.len] = '\0';
	e->topic_len = topic.len;
	e->props_len = plen ? mqtt_props_filter(p->props, seal_prop_inner_, NULL, e->inner_props, plen) : 0;
	if (p->payload.len)
		memcpy(e->payload, p->payload.p, p->payload.len);
	e->payload_len = p->payload.len;
	return e;
}

void seal_retained_put(struct seal *s, uint8_t level, const struct mqtt_publish *p, struct mqtt_buf topic,
		       const struct env_header *sent)
{
	size_t cap = (size_t)s->ctx->conf->seal.retained_cache_kb * 1024u;
	struct seal_entry *e;
	unsigned suppressed = 0;
	char note[LOG_NOTE_MAX];

	struct seal_entry **old = seal_cache_find(s, topic);

	if (*old) /* the old value is wrong now, whatever happens next; the watch stays for now */
		seal_cache_remove(s, old, false);
	e = seal_entry_new(level, p, topic);
	if (!e || s->bytes + seal_entry_size(e) > cap) {
		if (log_limit_allow(&s->cache_log, clock_mono_ms(), &suppressed))
			log_warn("seal", "retained cache full (seal.retained_cache_kb = %u): the retained value of "
				 "a topic will not survive key rotation%s", s->ctx->conf->seal.retained_cache_kb,
				 log_suppressed_note(suppressed, note));
		if (e) {
			(void)keyex_watch(s->ctx->keyex, e->topic, false);
			seal_entry_free_(e);
		}
		return;
	}
	e->sealed_at = sent->sealed_at;
	memcpy(e->key_id, sent->key_id, ENV_KEY_ID_LEN);
	e->counter = sent->counter;
	(void)keyex_watch(s->ctx->keyex, e->topic, true); /* or when the connection is back */
	struct seal_entry **slot = &s->buckets[seal_cache_hash(topic.p, topic.len)];
	e->next = *slot;
	*slot = e;
	s->count++;
	s->bytes += seal_entry_size(e);
}

size_t seal_retained_count(const struct seal *s)
{
	return s->count;
}

static void seal_republish_one(struct seal *s, struct seal_entry *e)
{
	struct aead_part whole = {e->payload, e->payload_len};
	struct mqtt_buf props = {e->inner_props, e->props_len}, aad;
	enum px_err rc = PX_ERR_NOMEM;
	struct env_header h = {0};
	struct seal_how how = {0};
	uint8_t *env = NULL;
	size_t len = 0;

	if (seal_aad_topic_(s, (const uint8_t *)e->topic, e->topic_len, &aad) != SEAL_OK)
		rc = PX_ERR_TOO_LARGE;
	else if (seal_how_(s, aad, &how) != SEAL_OK) /* no longer a writer of its group (a reload) */
		rc = PX_ERR_INVAL;
	else if ((len = seal_env_size_(s, &how, e->props_len, e->payload_len)) > 0 && (env = malloc(len)) != NULL)
		rc = seal_env_(s, &how, e->sealed_at, ENV_FLAG_RETAIN | ENV_FLAG_REPUBLISH, aad, props, &whole, 1,
			       env, len);
	if (rc == PX_OK)
		rc = env_parse_header(env, len, &h);
	if (rc != PX_OK || keyex_publish_retained(s->ctx->keyex, e->topic, env, len) != 0) {
		log_warn("seal", "cannot re-seal the retained value of %s: %s", e->topic,
			 rc != PX_OK ? px_strerror(rc) : "publish failed");
	} else {
		s->ctx->stats->sealed++;
		memcpy(e->key_id, h.key_id, ENV_KEY_ID_LEN); /* its echo is ours, not a newer value */
		e->counter = h.counter;
	}
	free(env);
}

void seal_retained_republish(struct seal *s)
{
	size_t i, n = 0;

	if (!keyex_republish_allowed(s->ctx->keyex))
		return;
	for (i = 0; i < SEAL_BUCKETS; i++) {
		struct seal_entry *e;
		for (e = s->buckets[i]; e; e = e->next)
			if (e->confirmed) {
				seal_republish_one(s, e);
				n++;
			}
	}
	if (n)
		log_info("seal", "re-sealed %zu retained value(s) under the new epoch", n);
}

void seal_retained_watched(struct seal *s, const char *topic, const uint8_t *payload, size_t len)
{
	struct mqtt_buf t = {(const uint8_t *)topic, strlen(topic)};
	struct seal_entry **pp = seal_cache_find(s, t), *e = *pp;
	struct env_header h;

	if (!e)
		return;
	if (len > 0 && payload[0] == ENV_VERSION && env_parse_header(payload, len, &h) == PX_OK) {
		if (h.counter == e->counter && memcmp(h.key_id, e->key_id, ENV_KEY_ID_LEN) == 0) {
			e->confirmed = true; /* ours, as sent: the broker took it */
			return;
		}
		if (h.sealed_at <= e->sealed_at)
			return; /* an older value (the broker's retained one before ours arrived) */
	}
	/* A delete, a newer value, or anything else: ours is not the topic's value any more. */
	seal_cache_remove(s, pp, true);
}

void seal_retained_watch_all(struct seal *s)
{
	size_t i;

	for (i = 0; i < SEAL_BUCKETS; i++) {
		const struct seal_entry *e;
		for (e = s->buckets[i]; e; e = e->next)
			(void)keyex_watch(s->ctx->keyex, e->topic, true);
	}
}
