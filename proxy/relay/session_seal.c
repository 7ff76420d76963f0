/* session_seal.c - the sealing side of a session (PROTOCOL.md §6, §9.3, §11): topic policy per
 * PUBLISH and SUBSCRIBE, sealing device publishes and opening broker deliveries, waiting (paused
 * direction) while no key is ready, refusing with the right ack or reason code, and completing the
 * QoS 1/2 flows of dropped messages with the broker on the device's behalf. Each handler returns
 * the verdict for its frame (verdict.h); what it seals or opens it writes into the destination's
 * output itself and returns DROP. */
#include "session_internal.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "devstate.h"
#include "keyex.h"
#include "log.h"
#include "mqtt_reason.h"
#include "policy.h"
#include "seal.h"
#include "stats.h"
#include "conf.h"


/* ---- packet id sets ---- */

static bool pid_set_has(const struct pid_set *ps, uint16_t id)
{
	uint16_t i;

	for (i = 0; i < ps->n; i++)
		if (ps->ids[i] == id)
			return true;
	return false;
}

static int pid_set_add(struct pid_set *ps, uint16_t id)
{
	uint16_t *n;

	if (pid_set_has(ps, id))
		return 0;
	if (ps->n == ps->cap) {
		if (ps->cap >= UINT16_MAX / 2)
			return -1;
		n = realloc(ps->ids, sizeof(*n) * (size_t)(ps->cap ? ps->cap * 2 : 4));
		if (!n)
			return -1;
		ps->ids = n;
		ps->cap = (uint16_t)(ps->cap ? ps->cap * 2 : 4);
	}
	ps->ids[ps->n++] = id;
	return 0;
}

static bool pid_set_take(struct pid_set *ps, uint16_t id)
{
	uint16_t i;

	for (i = 0; i < ps->n; i++) {
		if (ps->ids[i] == id) {
			ps->ids[i] = ps->ids[--ps->n];
			return true;
		}
	}
	return false;
}

void session_seal_free_(struct session *s)
{
	if (s->wait_timer)
		event_free(s->wait_timer);
	session_held_free_(s);
	free(s->q2_local.ids);
	free(s->q2_behalf.ids);
	free(s->up_inflight.ids);
	while (s->subfix) {
		struct sub_fix *f = s->subfix;
		s->subfix = f->next;
		free(f);
	}
}

/* ---- acks ---- */

/* Sends PUBACK/PUBREC/PUBCOMP (type) for pid towards direction d's destination. */
static void session_ack(struct session *s, enum session_dir d, uint8_t type, uint16_t pid, uint8_t reason)
{
	struct mqtt_ack a = {.packet_id = pid, .reason = reason};
	uint8_t buf[MQTT_ACK_MAX_SIMPLE];
	size_t n = mqtt_ack_encode(s->level, type, &a, buf, sizeof(buf));

	if (n)
		session_send_(s, d, buf, n);
}

/* A broker delivery the device will never see: finish its QoS flow with the broker ourselves. */
static void session_ack_behalf(struct session *s, const struct mqtt_publish *p)
{
	if (p->qos == 1) {
		session_ack(s, DIR_UP, MQTT_PUBACK, p->packet_id, MQTT_RC_SUCCESS);
	} else if (p->qos == 2) {
		session_ack(s, DIR_UP, MQTT_PUBREC, p->packet_id, MQTT_RC_SUCCESS);
		if (pid_set_add(&s->q2_behalf, p->packet_id) != 0)
			session_abort_(s, DIR_DOWN, "too many QoS 2 flows");
	}
}

/* Refuses a device PUBLISH (PROTOCOL.md §9.3, §11): dropped. MQTT 5 gets the reason code; MQTT
 * 3.x has no negative ack: close_v3 closes the connection (the device keeps and resends the
 * message), else it is acknowledged as if delivered. */
static struct verdict session_refuse_up(struct session *s, const struct mqtt_publish *p, uint8_t reason,
					bool close_v3, const char *why)
{
	if (p->qos == 0)
		return verdict_drop();
	if (s->level != MQTT_LEVEL_5 && close_v3)
		return verdict_then_close(verdict_drop(), why);
	if (s->level != MQTT_LEVEL_5)
		reason = MQTT_RC_SUCCESS;
	session_ack(s, DIR_DOWN, p->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, p->packet_id, reason);
	if (p->qos == 2 && reason < MQTT_RC_FAILURE_MIN && pid_set_add(&s->q2_local, p->packet_id) != 0)
		return verdict_abort(MQTT_RC_NONE, "too many QoS 2 flows");
	return verdict_drop();
}

static void session_log_topic(struct session *s, struct log_limit *lim, const char *what, struct mqtt_buf topic)
{
	unsigned suppressed = 0;
	char note[LOG_NOTE_MAX], t[256];
	struct log_fields f = {.device = s->peer, .client_id = s->client[0] ? s->client : NULL, .topic = t};

	if (!log_limit_allow(lim, clock_mono_ms(), &suppressed))
		return;
	snprintf(t, sizeof(t), "%.*s", (int)(topic.len > 200 ? 200 : topic.len), (const char *)topic.p);
	log_emitf(LOG_WARN, "seal", &f, "%s: topic %s%s", what, t, log_suppressed_note(suppressed, note));
}

static enum policy_class session_class(struct session *s, struct mqtt_buf topic)
{
	return s->ctx->policy ? policy_topic(s->ctx->policy, topic.p, topic.len) : POLICY_PLAINTEXT;
}

/* ---- device -> broker ---- */

/* Bytes written to out since it held before (what sealing or opening added). */
static uint64_t session_added(struct evbuffer *out, size_t before)
{
	size_t now = evbuffer_get_length(out);

	return now > before ? now - before : 0;
}

/* A device PUBLISH the broker would refuse as too large once sealed is refused the way mosquitto
 * refuses a packet over its max_packet_size (lib/packet_mosq.c, packet__read): DISCONNECT 0x95 at
 * level 5 ("packet over limit", mqtt_reason_of), then the close; 3.x: the close. The broker
 * connection gets the DISCONNECT 0x04 of session_abort_, so the broker publishes the will, as it
 * does after such a close. */
static struct verdict session_close_too_large(void)
{
	return verdict_abort(MQTT_RC_NONE, "packet over limit");
}

/* A device PUBLISH on a group with writers this node is not one of (PROTOCOL.md §11.1): refused
 * like a denied topic, counted as denied, logged. */
static struct verdict session_refuse_writer(struct session *s, const struct mqtt_publish *p, struct mqtt_buf topic)
{
	static struct log_limit lim;

	s->ctx->stats->denied++;
	session_log_topic(s, &lim, "PUBLISH refused: this node is not a writer of the topic's group", topic);
	return session_refuse_up(s, p, MQTT_RC_NOT_AUTHORIZED, false, "not a writer");
}

/* No key to seal p with: it waits (the device's reading stops) until a key is ready, at most
 * seal.hold_seconds, then it is refused (never sent in plaintext). */
static struct verdict session_no_key_up(struct session *s, const struct mqtt_publish *p, struct mqtt_buf topic)
{
	static struct log_limit hold_lim;

	if (!s->hold_expired) {
		s->ctx->stats->held++;
		return verdict_wait();
	}
	s->ctx->stats->refused++;
	session_log_topic(s, &hold_lim, "refused: no key ready within seal.hold_seconds (never sent in plaintext)", topic);
	return session_refuse_up(s, p, MQTT_RC_QUOTA_EXCEEDED, true, "no key ready");
}

static struct verdict session_seal_up(struct session *s, const struct mqtt_frame *f, const struct mqtt_publish *p,
				      struct mqtt_buf topic)
{
	static struct log_limit lim;
	struct evbuffer *out = bufferevent_get_output(s->up);
	size_t before = evbuffer_get_length(out);
	struct env_header sent;
	struct aead_part pieces[ENV_PARTS_MAX];
	size_t npieces = session_payload_pieces_(s, DIR_UP, f->total, pieces);
	enum seal_rc rc;

	if (!p->payload.p && p->payload.len && npieces == 0)
		return verdict_abort(MQTT_RC_NONE, "cannot read a PUBLISH payload");
	/* Sealed from the input chains straight into the broker's output buffer. */
	rc = seal_publish(s->ctx->seal, s->level, p, topic, s->broker_max_packet, clock_wall_ms(), &sent, out, pieces,
			  npieces);

	switch (rc) {
	case SEAL_OK:
		s->ctx->stats->bytes_to_broker += session_added(out, before);
		if (p->retain)
			seal_retained_put(s->ctx->seal, s->level, p, topic, &sent);
		session_inflight_add_(s, p);
		return verdict_drop(); /* the sealed copy is in the broker's output */
	case SEAL_NO_KEY: /* no key of the topic's group yet (a reload added it): as for no key at all */
		return session_no_key_up(s, p, topic);
	case SEAL_DENIED: /* checked before (session_publish_up_); kept for a reload in between */
		return session_refuse_writer(s, p, topic);
	case SEAL_TOO_LARGE:
		s->ctx->stats->refused++;
		session_log_topic(s, &lim, "refused: the sealed PUBLISH would exceed the broker's maximum packet size",
				  topic);
		return session_close_too_large();
	default:
		return verdict_abort(MQTT_RC_NONE, "out of memory sealing a PUBLISH");
	}
}

struct verdict session_publish_up_(struct session *s, const struct mqtt_frame *f, const uint8_t *bytes,
				   const struct mqtt_publish *p, struct mqtt_buf topic)
{
	static struct log_limit deny_lim;

	(void)bytes;
	switch (session_class(s, topic)) {
	case POLICY_DENIED:
		s->ctx->stats->denied++;
		session_log_topic(s, &deny_lim, "PUBLISH refused by the topic policy", topic);
		return session_refuse_up(s, p, MQTT_RC_NOT_AUTHORIZED, false, "denied");
	case POLICY_PLAINTEXT:
		s->ctx->stats->plaintext_out++;
		session_inflight_add_(s, p);
		return verdict_forward();
	case POLICY_SEALED:
		break;
	}
	if (!seal_may_write(s->ctx->seal, topic))
		return session_refuse_writer(s, p, topic);
	if (p->retain && p->payload.len == 0) { /* a retained delete cannot be sealed (§10.2) */
		seal_retained_delete(s->ctx->seal, topic);
		session_inflight_add_(s, p);
		return verdict_forward();
	}
	if (!keyex_can_seal(s->ctx->keyex))
		return session_no_key_up(s, p, topic);
	return session_seal_up(s, f, p, topic);
}

struct verdict session_connect_up_(struct session *s, const struct mqtt_connect *c, bool *seal_will)
{
	struct mqtt_buf topic = c->will_topic;

	*seal_will = false;
	if (!(c->flags & MQTT_CONNECT_FLAG_WILL) || !s->ctx->policy)
		return verdict_forward();
	switch (session_class(s, topic)) {
	case POLICY_DENIED:
		s->ctx->stats->denied++;
		return session_connect_refuse_(s, MQTT_CONNACK_311_NOT_AUTHORIZED, MQTT_RC_NOT_AUTHORIZED,
					       "will topic denied");
	case POLICY_PLAINTEXT:
		return verdict_forward();
	case POLICY_SEALED:
		break;
	}
	if (!seal_may_write(s->ctx->seal, topic)) {
		s->ctx->stats->denied++;
		return session_connect_refuse_(s, MQTT_CONNACK_311_NOT_AUTHORIZED, MQTT_RC_NOT_AUTHORIZED,
					       "will topic in a group this node does not write");
	}
	if (keyex_can_seal(s->ctx->keyex)) {
		*seal_will = true;
		return verdict_forward();
	}
	if (!s->hold_expired) {
		s->ctx->stats->held++;
		return verdict_wait();
	}
	s->ctx->stats->refused++;
	return session_connect_refuse_(s, MQTT_CONNACK_311_SERVER_UNAVAILABLE, MQTT_RC_SERVER_UNAVAILABLE,
				       "no key ready to seal the will");
}

/* ---- broker -> device ---- */

/* Not delivered: counted, logged (rate-limited), and acknowledged to the broker for the device. */
void session_drop_down_(struct session *s, const struct mqtt_publish *p, struct mqtt_buf topic,
			enum stats_drop reason)
{
	static struct log_limit lim;
	char what[96];

	s->ctx->stats->dropped[reason]++;
	snprintf(what, sizeof(what), "dropped a sealed message (%s)", stats_drop_name(reason));
	session_log_topic(s, &lim, what, topic);
	session_ack_behalf(s, p);
}

enum down_verdict session_open_down_(struct session *s, const struct mqtt_publish *p, struct mqtt_buf topic,
				     bool may_hold)
{
	enum stats_drop reason = DROP_MALFORMED;
	struct evbuffer *out = bufferevent_get_output(s->dev);
	size_t before = evbuffer_get_length(out), npieces = 0;
	struct aead_part pieces[ENV_PARTS_MAX];

	/* A large PUBLISH is opened from the broker input's chains (parsed from its header alone,
	 * session_frame_head); a held one, and any other, from its contiguous copy. */
	if (!p->payload.p && p->payload.len &&
	    (npieces = session_payload_pieces_(s, DIR_DOWN, s->frame_head + p->payload.len, pieces)) == 0) {
		session_abort_(s, DIR_DOWN, "cannot read the payload of a PUBLISH");
		return DOWN_ERROR;
	}
	/* Held to the device's own Maximum Packet Size once opened: the broker let the sealed form
	 * through under the raised limit (session_pkt.c) and discards what exceeds its client's limit
	 * (MQTT 5 §3.1.2.11.4); seal_open drops it (too_large), the drop completes it with the broker. */
	switch (seal_open_pieces(s->ctx->seal, s->devstate, s->level, p, topic, s->dev_max_packet, out, &reason,
				 pieces, npieces)) {
	case SEAL_OK:
		s->ctx->stats->bytes_to_device += session_added(out, before);
		return DOWN_DONE;
	case SEAL_SUPPRESS:
		session_ack_behalf(s, p);
		return DOWN_DONE;
	case SEAL_UNKNOWN_KEY:
		if (may_hold)
			return DOWN_HOLD;
		reason = DROP_UNKNOWN_KEY;
		break;
	case SEAL_DROP:
	case SEAL_TOO_LARGE:
		break;
	default:
		session_abort_(s, DIR_DOWN, "out of memory opening a PUBLISH");
		return DOWN_ERROR;
	}
	session_drop_down_(s, p, topic, reason);
	return DOWN_DONE;
}

/* A plaintext-topic message over the device's Maximum Packet Size came only because the limit was
 * raised for sealed ones (session_pkt.c): dropped as the broker would have dropped it (not sent,
 * completed with the broker for the device) and counted too_large. False if dropped. */
static bool session_plain_fits(struct session *s, const struct mqtt_frame *f, const struct mqtt_publish *p,
			       struct mqtt_buf topic)
{
	static struct log_limit lim;
	struct mqtt_publish full = *p;
	size_t size = f->total;

	if (!s->dev_max_packet)
		return true;
	if (p->topic.len == 0) { /* relayed with its topic in full (seal_plain_full_topic) */
		full.topic = topic;
		size = mqtt_publish_size(s->level, &full, p->payload.len);
	}
	if (size && size <= s->dev_max_packet)
		return true;
	s->ctx->stats->dropped[DROP_TOO_LARGE]++;
	session_log_topic(s, &lim, "dropped a message over the device's maximum packet size (too_large)", topic);
	session_ack_behalf(s, p);
	return false;
}

struct verdict session_publish_down_(struct session *s, const struct mqtt_frame *f, const uint8_t *bytes,
				     const struct mqtt_publish *p, struct mqtt_buf topic)
{
	struct evbuffer *out = bufferevent_get_output(s->dev);
	size_t before = evbuffer_get_length(out);
	enum down_verdict v;

	switch (session_class(s, topic)) {
	case POLICY_DENIED:
		session_drop_down_(s, p, topic, DROP_POLICY);
		break;
	case POLICY_PLAINTEXT:
		s->ctx->stats->plaintext_in++;
		if (!session_plain_fits(s, f, p, topic))
			break;
		if (p->topic.len > 0)
			return verdict_forward();
		if (seal_plain_full_topic(s->level, p, topic, out) != SEAL_OK)
			return verdict_abort(MQTT_RC_NONE, "out of memory relaying a PUBLISH");
		s->ctx->stats->bytes_to_device += session_added(out, before);
		break;
	case POLICY_SEALED:
	default:
		/* While an older message on this topic waits for its key, a later one queues behind it. */
		v = session_held_topic_(s, topic) ? DOWN_HOLD : session_open_down_(s, p, topic, true);
		/* A full waiting room: the newcomer is handled at once (delivered if it opens now, out of
		 * order behind the waiting ones; dropped as unknown_key if its own key is missing). */
		if (v == DOWN_HOLD && session_hold_down_(s, f, bytes, topic) != 0)
			v = session_open_down_(s, p, topic, false);
		if (v == DOWN_ERROR) /* session_open_down_ has closed the session */
			return verdict_abort(MQTT_RC_NONE, "out of memory opening a PUBLISH");
		break;
	}
	/* delivered (opened or rewritten into the device's output), held aside (copied), or dropped */
	return verdict_drop();
}

/* ---- subscriptions ---- */

/* Encodes ack as a SUBACK at the session's level and queues it to the device. */
static int session_send_suback(struct session *s, const struct mqtt_suback *ack)
{
	size_t n = mqtt_suback_size(s->level, MQTT_SUBACK, ack);
	uint8_t *buf = n ? malloc(n) : NULL;
	int rc = -1;

	if (buf && mqtt_suback_encode(s->level, MQTT_SUBACK, ack, buf, n) == n) {
		session_send_(s, DIR_DOWN, buf, n);
		rc = 0;
	}
	free(buf);
	return rc;
}

/* Every filter denied: the SUBACK is ours, the SUBSCRIBE is dropped. */
static int session_suback_all_denied(struct session *s, const struct mqtt_subscribe *sub)
{
	uint8_t code = s->level == MQTT_LEVEL_5 ? MQTT_RC_NOT_AUTHORIZED : MQTT_SUBACK_311_FAILURE, *codes = malloc(sub->count);
	struct mqtt_suback ack = {.packet_id = sub->packet_id};
	int rc;

	if (!codes)
		return -1;
	memset(codes, code, sub->count);
	ack.codes.p = codes;
	ack.codes.len = sub->count;
	rc = session_send_suback(s, &ack);
	free(codes);
	return rc;
}

/* The SUBSCRIBE without its denied filters (REPLACE), remembering where they were. */
static struct verdict session_subscribe_kept(struct session *s, const struct mqtt_subscribe *sub, bool *denied)
{
	struct sub_fix *fix = malloc(sizeof(*fix) + sub->count);
	bool *keep = malloc(sub->count);
	struct verdict v = verdict_abort(MQTT_RC_NONE, "out of memory filtering a SUBSCRIBE");
	uint8_t *buf = NULL;
	size_t i, n;

	if (!fix || !keep)
		goto out;
	for (i = 0; i < sub->count; i++)
		keep[i] = !denied[i];
	n = mqtt_subscribe_size_kept(s->level, MQTT_SUBSCRIBE, sub, keep);
	buf = n ? malloc(n) : NULL;
	if (!buf || mqtt_subscribe_encode_kept(s->level, MQTT_SUBSCRIBE, sub, keep, buf, n) != n)
		goto out;
	fix->packet_id = sub->packet_id;
	fix->count = (uint16_t)sub->count;
	memcpy(fix->denied, denied, sub->count);
	fix->next = s->subfix;
	s->subfix = fix;
	fix = NULL;
	v = verdict_replace_owned(buf, n);
	buf = NULL;
out:
	free(fix);
	free(keep);
	free(buf);
	return v;
}

struct verdict session_subscribe_up_(struct session *s, const struct mqtt_frame *f, const uint8_t *bytes)
{
	struct mqtt_subscribe sub;
	struct mqtt_buf filter;
	const char *why = NULL;
	size_t pos = 0, i = 0, ndenied = 0;
	uint8_t options;
	bool *denied;
	struct verdict v;

	if (mqtt_subscribe_parse(s->level, MQTT_SUBSCRIBE, bytes + f->hdr_len, f->remaining, &sub, &why) !=
	    MQTT_PARSE_OK)
		return verdict_protocol_error(why ? why : "malformed SUBSCRIBE");
	if (!s->ctx->policy || sub.count > UINT16_MAX)
		return verdict_forward();
	denied = calloc(sub.count, sizeof(bool));
	if (!denied)
		return verdict_abort(MQTT_RC_NONE, "out of memory filtering a SUBSCRIBE");
	while (mqtt_sub_next(&sub, MQTT_SUBSCRIBE, &pos, &filter, &options) && i < sub.count) {
		denied[i] = policy_filter_denied(s->ctx->policy, filter.p, filter.len);
		/* When it began, for the delivery rule (§6.2); a failure leaves it judged as untracked. */
		if (!denied[i] && s->devstate)
			(void)devstate_subscribe(s->devstate, filter.p, filter.len, clock_wall_ms());
		ndenied += denied[i++];
	}
	s->ctx->stats->denied += ndenied;
	if (ndenied == 0)
		v = verdict_forward();
	else if (ndenied == sub.count)
		v = session_suback_all_denied(s, &sub) == 0
			    ? verdict_drop()
			    : verdict_abort(MQTT_RC_NONE, "out of memory filtering a SUBSCRIBE");
	else
		v = session_subscribe_kept(s, &sub, denied);
	free(denied);
	return v;
}

/* The broker's SUBACK with the failure codes of the filters we removed put back (REPLACE). */
static struct verdict session_suback_fixed(struct session *s, struct mqtt_suback *ack, const struct sub_fix *fix)
{
	uint8_t fail = s->level == MQTT_LEVEL_5 ? MQTT_RC_NOT_AUTHORIZED : MQTT_SUBACK_311_FAILURE, *codes, *buf;
	size_t i, k = 0, n;

	codes = malloc(fix->count);
	if (!codes)
		return verdict_abort(MQTT_RC_NONE, "out of memory fixing a SUBACK");
	for (i = 0; i < fix->count; i++)
		codes[i] = fix->denied[i] ? fail : (k < ack->codes.len ? ack->codes.p[k++] : fail);
	ack->codes.p = codes;
	ack->codes.len = fix->count;
	n = mqtt_suback_size(s->level, MQTT_SUBACK, ack);
	buf = n ? malloc(n) : NULL;
	if (buf && mqtt_suback_encode(s->level, MQTT_SUBACK, ack, buf, n) != n) {
		free(buf);
		buf = NULL;
	}
	free(codes);
	if (!buf)
		return verdict_abort(MQTT_RC_NONE, "out of memory fixing a SUBACK");
	return verdict_replace_owned(buf, n);
}

struct verdict session_suback_down_(struct session *s, const struct mqtt_frame *f, const uint8_t *bytes)
{
	struct mqtt_suback ack;
	struct sub_fix **pp;
	const char *why = NULL;
	struct verdict v;

	/* the packet id, read by the codec (checked already, mqtt_server_packet_check) */
	if (mqtt_suback_parse(s->level, MQTT_SUBACK, bytes + f->hdr_len, f->remaining, &ack, &why) != MQTT_PARSE_OK)
		return verdict_abort(MQTT_RC_NONE, why ? why : "malformed SUBACK");
	for (pp = &s->subfix; *pp; pp = &(*pp)->next) {
		if ((*pp)->packet_id == ack.packet_id) {
			struct sub_fix *fix = *pp;
			*pp = fix->next;
			v = session_suback_fixed(s, &ack, fix);
			free(fix);
			return v;
		}
	}
	return verdict_forward();
}

bool session_pubrel_local_(struct session *s, enum session_dir d, uint16_t pid)
{
	struct pid_set *ps = d == DIR_UP ? &s->q2_local : &s->q2_behalf;

	if (ps->n == 0 || !pid_set_take(ps, pid))
		return false;
	/* PUBCOMP goes back where the PUBREL came from. */
	session_ack(s, d == DIR_UP ? DIR_DOWN : DIR_UP, MQTT_PUBCOMP, pid, MQTT_RC_SUCCESS);
	return true;
}

/* ---- in-flight device publishes (graceful shutdown) ---- */

void session_inflight_add_(struct session *s, const struct mqtt_publish *p)
{
	if (p->qos > 0)
		(void)pid_set_add(&s->up_inflight, p->packet_id); /* best effort: shutdown is bounded anyway */
}

/* PUBACK, or PUBREC (from then on the broker owns a QoS 2 message), from the broker. */
bool session_inflight_done_(struct session *s, uint16_t pid)
{
	if (s->up_inflight.n == 0)
		return false;
	pid_set_take(&s->up_inflight, pid);
	return s->state == SESSION_STOPPING && s->up_inflight.n == 0;
}

void session_shutdown(struct session *s)
{
	if (s->state >= SESSION_DRAINING)
		return;
	if (s->up_inflight.n == 0 || !s->up)
		session_close_as_(s, "shutting down", RELAY_END_SHUTDOWN);
	else
		session_set_state_(s, SESSION_STOPPING); /* unread publishes stay with the device */
}

/* ---- waiting for keys ---- */

static void session_on_wait_up(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	if (!s->waiting[DIR_UP] || s->state >= SESSION_DRAINING)
		return;
	s->waiting[DIR_UP] = false;
	s->hold_expired = true; /* refused from now on until a key is ready */
	session_resume_(s, DIR_UP);
}

void session_wait_(struct session *s, enum session_dir d)
{
	struct timeval tv = {.tv_sec = (time_t)s->ctx->conf->seal.hold_seconds, .tv_usec = 0};

	if (d != DIR_UP)
		return; /* only the device's own publishes wait in line; incoming ones are held aside */
	if (!s->wait_timer) {
		s->wait_timer = evtimer_new(s->ctx->base, session_on_wait_up, s);
		if (!s->wait_timer) {
			session_abort_(s, d, "out of memory");
			return;
		}
	}
	s->waiting[d] = true;
	pump_hold(&s->pump, PUMP_DEV, true); /* until session_resume_ */
	evtimer_add(s->wait_timer, &tv);
}

void session_keys_changed(struct session *s)
{
	int d;

	if (s->state >= SESSION_DRAINING)
		return;
	if (keyex_can_seal(s->ctx->keyex))
		s->hold_expired = false;
	session_held_retry_(s);
	for (d = 0; d < 2 && s->state < SESSION_DRAINING; d++) {
		if (!s->waiting[d])
			continue;
		s->waiting[d] = false;
		evtimer_del(s->wait_timer);
		session_resume_(s, (enum session_dir)d);
	}
}

/* An UNSUBSCRIBE from the device: its filters no longer cover their topics (§6.2). */
void session_unsubscribe_up_(struct session *s, const struct mqtt_frame *f, const uint8_t *bytes)
{
	struct mqtt_subscribe sub;
	struct mqtt_buf filter;
	size_t pos = 0, i = 0;
	uint8_t options;

	if (!s->devstate || mqtt_subscribe_parse(s->level, MQTT_UNSUBSCRIBE, bytes + f->hdr_len, f->remaining,
						 &sub, NULL) != MQTT_PARSE_OK)
		return; /* the broker answers a malformed one */
	while (i++ < sub.count && mqtt_sub_next(&sub, MQTT_UNSUBSCRIBE, &pos, &filter, &options))
		devstate_unsubscribe(s->devstate, filter.p, filter.len);
}
