/* seal_deliver.c - opening an incoming sealed PUBLISH for one device (PROTOCOL.md §6.1): the key
 * ring opens it and keeps the windows, the sender's publish list is checked, the delivery rule
 * (deliver.c, §6.2, §6.3) decides, and the plaintext PUBLISH is written for the device.
 * The envelope may come in pieces (the input chains of the broker connection). A large message is
 * decrypted from there into space reserved in a chain of its own (s->stage); once it is
 * authenticated and to be delivered, its header is written into the device's output and the
 * chain moves in behind it: the payload is written once. The header cannot go first: the
 * plaintext's lengths (protected properties, payload, padding) are inside the ciphertext, and
 * nothing of it is used before the tag verified. */
#include "seal_internal.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>
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

/* Grows *buf (capacity *cap) to need bytes. */
static int seal_grow(uint8_t **buf, size_t *cap, size_t need)
{
	uint8_t *n;

	if (need <= *cap)
		return 0;
	n = realloc(*buf, need);
	if (!n)
		return -1;
	*buf = n;
	*cap = need;
	return 0;
}

/* The envelope of an incoming PUBLISH: its pieces (the payload's chains, or the one contiguous
 * payload), len bytes in all; whole: the same bytes contiguous, or NULL. */
struct seal_env {
	const struct aead_part *parts;
	size_t nparts, len;
	const uint8_t *whole;
};

/* Where the inner plaintext (n bytes) is opened to: space reserved in s->stage (staged, v the
 * reservation) for a large one, else s->scratch. */
struct seal_inner {
	uint8_t *p;
	size_t n;
	bool staged;
	struct evbuffer_iovec v;
};

static int seal_inner_get(struct seal *s, size_t n, struct seal_inner *in)
{
	in->n = n;
	in->staged = n >= SEAL_STAGE_MIN;
	if (!in->staged) {
		if (seal_grow(&s->scratch, &s->scratch_cap, n ? n : 1) != 0)
			return -1;
		in->p = s->scratch;
		return 0;
	}
	if (!s->stage && !(s->stage = evbuffer_new()))
		return -1;
	if (evbuffer_reserve_space(s->stage, (ev_ssize_t)n, &in->v, 1) != 1 || in->v.iov_len < n)
		return -1;
	in->p = in->v.iov_base;
	return 0;
}

/* Not delivered: the plaintext is not left behind (a staged one is never committed). */
static void seal_inner_wipe(struct seal_inner *in)
{
	if (in->p && in->n)
		OPENSSL_cleanse(in->p, in->n);
}

/* Writes the PUBLISH for the device: its header (topic in full, props) into out, then the staged
 * chain, trimmed to the payload, moved in behind it. SEAL_TOO_LARGE: nothing written. */
static enum seal_rc seal_write_staged(struct seal *s, uint8_t level, const struct mqtt_publish *p,
				      struct mqtt_buf topic, struct mqtt_buf props, const struct env_opened *o,
				      struct seal_inner *in, uint32_t max_packet, struct evbuffer *out)
{
	struct mqtt_publish np = *p;
	struct evbuffer_iovec h;
	size_t total, head, skip = (size_t)(o->payload - in->p);

	np.topic = topic;
	np.props = level == MQTT_LEVEL_5 ? props : (struct mqtt_buf){NULL, 0};
	total = mqtt_publish_size(level, &np, o->payload_len);
	if (!total || (max_packet && total > max_packet))
		return SEAL_TOO_LARGE;
	head = total - o->payload_len;
	if (evbuffer_reserve_space(out, (ev_ssize_t)head, &h, 1) != 1 ||
	    mqtt_publish_encode_head(level, &np, o->payload_len, h.iov_base, h.iov_len) != head)
		return SEAL_ERROR;
	h.iov_len = head;
	in->v.iov_len = skip + o->payload_len; /* the padding after the payload is not committed */
	if (evbuffer_commit_space(out, &h, 1) != 0)
		return SEAL_ERROR;
	/* From here on the header is out: a failure leaves a broken packet, and SEAL_ERROR closes the
	 * session. */
	if (evbuffer_commit_space(s->stage, &in->v, 1) != 0 || evbuffer_drain(s->stage, skip) != 0 ||
	    evbuffer_add_buffer(out, s->stage) != 0) {
		/* wiped while the chain is still there; then nothing is left for seal_inner_wipe */
		OPENSSL_cleanse(in->p, in->n);
		evbuffer_drain(s->stage, evbuffer_get_length(s->stage));
		in->p = NULL;
		in->n = 0;
		return SEAL_ERROR;
	}
	return SEAL_OK;
}

/* Device-bound properties: the broker's outer ones, then the protected ones. */
static enum seal_rc seal_open_write(struct seal *s, uint8_t level, const struct mqtt_publish *p,
				    struct mqtt_buf topic, const struct env_opened *o, struct seal_inner *in,
				    uint32_t max_packet, struct evbuffer *out)
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
	if (in->staged)
		rc = seal_write_staged(s, level, p, topic, props, o, in, max_packet, out);
	else
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

/* Opens env into in for the receiver rx under the source rule src (NULL: none): from the pieces,
 * or, with a rule, from the whole envelope (its signature is checked over all of it at once; a
 * signed envelope in pieces is joined in s->gather first). */
static enum px_err seal_open_env(struct seal *s, struct keyring_rx *rx, const struct mqtt_buf *aad,
				 const struct seal_env *env, const struct kr_source *src, struct seal_inner *in,
				 struct kr_opened *k)
{
	struct keyring *kr = keyex_keyring(s->ctx->keyex);
	uint8_t *w;
	size_t i;

	if (!src)
		return keyring_open_parts(kr, rx, clock_mono_ms(), aad->p, aad->len, env->parts, env->nparts, in->p, k);
	if (!env->whole) {
		if (seal_grow(&s->gather, &s->gather_cap, env->len) != 0)
			return PX_ERR_NOMEM;
		for (i = 0, w = s->gather; i < env->nparts; w += env->parts[i].len, i++)
			if (env->parts[i].len)
				memcpy(w, env->parts[i].data, env->parts[i].len);
	}
	return keyring_open_source(kr, rx, clock_mono_ms(), aad->p, aad->len, env->whole ? env->whole : s->gather,
				   env->len, src, in->p, k);
}

/* Opens env (the payload of p) for dev into in and k, and describes it for the delivery rule in m. */
static enum seal_rc seal_open_dev(struct seal *s, struct devstate *dev, const struct mqtt_publish *p,
				  const struct env_header *h, struct mqtt_buf topic, const struct mqtt_buf *aad,
				  const struct seal_env *env, struct seal_inner *in, struct kr_opened *k,
				  struct deliver_msg *m, enum stats_drop *reason)
{
	struct keyring *kr = keyex_keyring(s->ctx->keyex);
	struct seal_writers w = {s, policy_group(s->ctx->policy, aad->p, aad->len)};
	const struct kr_source src = {seal_writer_pub, &w};
	enum px_err rc;

	if (!seal_group_ok(s, h, w.group)) {
		*reason = DROP_NOT_A_READER;
		return SEAL_DROP;
	}
	rc = seal_open_env(s, devstate_rx(dev), aad, env,
			   policy_group_has_writers(s->ctx->policy, w.group) ? &src : NULL, in, k);
	if (rc == PX_ERR_NOMEM)
		return SEAL_ERROR;
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

/* Header checks that need no key (§6.1 steps 1-2) on the first bytes of env; the parsed header
 * into h. */
static bool seal_precheck(const struct seal_env *env, struct env_header *h, enum stats_drop *reason)
{
	uint8_t head[ENV_HDR_LEN];
	size_t i, got = 0, k;

	for (i = 0; i < env->nparts && got < sizeof(head); i++) {
		k = env->parts[i].len < sizeof(head) - got ? env->parts[i].len : sizeof(head) - got;
		if (k)
			memcpy(head + got, env->parts[i].data, k);
		got += k;
	}
	if (env->len == 0) {
		*reason = DROP_EMPTY;
		return false;
	}
	if (env->len < ENV_MIN_LEN || got < sizeof(head) || head[0] != ENV_VERSION) {
		*reason = DROP_PLAINTEXT;
		return false;
	}
	/* env_parse_header reads the 26 header bytes; the length checks are of the whole envelope. */
	if (env_parse_header(head, env->len, h) != PX_OK) {
		*reason = DROP_MALFORMED;
		return false;
	}
	return true;
}

/* The checks after the open (§6.1 steps 8-9, the delivery rule) and the write for the device. */
static enum seal_rc seal_deliver_opened(struct seal *s, struct devstate *dev, uint8_t level,
					const struct mqtt_publish *p, struct mqtt_buf topic, uint32_t max_packet,
					struct kr_opened *k, struct deliver_msg *m, struct seal_inner *in,
					struct evbuffer *out, enum stats_drop *reason)
{
	const struct deliver_params dp = {.tolerance_ms = (uint64_t)s->ctx->conf->keyex.max_skew_seconds * 1000u,
					  .started_ms = s->ctx->started_wall_ms, .now_ms = clock_wall_ms()};
	enum deliver_verdict v;
	enum seal_rc res;

	if (!keyex_may_publish(s->ctx->keyex, k->sender, topic.p, topic.len)) {
		*reason = DROP_UNAUTHORIZED;
		return seal_peer_drop(s, k->sender, *reason);
	}
	v = deliver_decide(dev, s->ctx->marks, &dp, m, reason);
	if (v == DELIVER_DROP)
		return seal_peer_drop(s, k->sender, *reason);
	if (v == DELIVER_SUPPRESS)
		return SEAL_SUPPRESS;
	if (!seal_inner_props_ok((struct mqtt_buf){k->o.props, k->o.props_len})) {
		*reason = DROP_MALFORMED;
		return seal_peer_drop(s, k->sender, *reason);
	}
	res = seal_open_write(s, level, p, topic, &k->o, in, max_packet, out);
	if (res == SEAL_TOO_LARGE) { /* not sent, as a broker does for its client (§5.7) */
		*reason = DROP_TOO_LARGE;
		return seal_peer_drop(s, k->sender, *reason);
	}
	if (res != SEAL_OK)
		return res;
	keyex_peer_count_message(s->ctx->keyex, k->sender, -1);
	deliver_done(dev, s->ctx->marks, &dp, m, v);
	if (p->qos > 0)
		devstate_pending_put(dev, p->packet_id, k->h.key_id, k->h.counter);
	return SEAL_OK;
}

enum seal_rc seal_open_pieces(struct seal *s, struct devstate *dev, uint8_t level, const struct mqtt_publish *p,
			      struct mqtt_buf topic, uint32_t max_packet, struct evbuffer *out,
			      enum stats_drop *reason, const struct aead_part *pieces, size_t npieces)
{
	const struct aead_part whole = {p->payload.p, p->payload.len};
	const struct seal_env env = {npieces ? pieces : &whole, npieces ? npieces : 1, p->payload.len,
				     npieces ? NULL : p->payload.p};
	struct seal_inner in = {0};
	struct env_header h;
	struct deliver_msg m;
	struct kr_opened k;
	struct mqtt_buf aad;
	enum seal_rc res;

	if (!dev || npieces > ENV_PARTS_MAX || (!npieces && !p->payload.p && p->payload.len))
		return SEAL_ERROR; /* every session has a device state (session_attach_devstate) */
	if (!seal_precheck(&env, &h, reason))
		return SEAL_DROP;
	res = seal_aad_topic_(s, topic.p, topic.len, &aad);
	if (res != SEAL_OK) { /* a name too long once rewritten cannot be the one it was sealed under */
		*reason = DROP_AUTH;
		return res == SEAL_TOO_LARGE ? SEAL_DROP : res;
	}
	/* The AEAD part's plaintext: the envelope less header, tag and a signature (§5.1, §5.8). */
	if (seal_inner_get(s, env.len - ENV_OVERHEAD - ((h.flags & ENV_FLAG_SIGNED) ? ENV_SIG_LEN : 0), &in) != 0)
		return SEAL_ERROR;
	memset(&m, 0, sizeof(m));
	res = seal_open_dev(s, dev, p, &h, topic, &aad, &env, &in, &k, &m, reason);
	if (res == SEAL_OK)
		res = seal_deliver_opened(s, dev, level, p, topic, max_packet, &k, &m, &in, out, reason);
	if (res != SEAL_OK)
		seal_inner_wipe(&in);
	return res;
}

enum seal_rc seal_open(struct seal *s, struct devstate *dev, uint8_t level, const struct mqtt_publish *p,
		       struct mqtt_buf topic, uint32_t max_packet, struct evbuffer *out, enum stats_drop *reason)
{
	return seal_open_pieces(s, dev, level, p, topic, max_packet, out, reason, NULL, 0);
}
