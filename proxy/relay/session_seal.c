/* session_seal.c - the sealing side of a session (PROTOCOL.md §6, §9.3, §11): topic policy per
 * PUBLISH and SUBSCRIBE, sealing device publishes and opening broker deliveries, waiting (paused
 * direction) while no key is ready, refusing with the right ack or reason code, and completing the
 * QoS 1/2 flows of dropped messages with the broker on the device's behalf. */
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
		session_ack(s, DIR_UP, MQTT_PUBACK, p->packet_id, 0);
	} else if (p->qos == 2) {
		session_ack(s, DIR_UP, MQTT_PUBREC, p->packet_id, 0);
		if (pid_set_add(&s->q2_behalf, p->packet_id) != 0)
			session_abort_(s, DIR_DOWN, "too many QoS 2 flows");
	}
}

/* Refuses a device PUBLISH (PROTOCOL.md §9.3, §11). MQTT 5 gets the reason code; MQTT 3.x has no
 * negative ack: close_v3 closes the connection (the device keeps and resends the message), else it
 * is acknowledged and dropped. Returns the session_packet_ convention. */
static int session_refuse_up(struct session *s, const struct mqtt_frame *f, const struct mqtt_publish *p,
			     uint8_t reason, bool close_v3, const char *why)
{
	session_discard_(s, DIR_UP, f->total);
	if (p->qos == 0)
		return 0;
	if (s->level != MQTT_LEVEL_5 && close_v3) {
		session_close(s, why);
		return -1;
	}
	if (s->level != MQTT_LEVEL_5)
		reason = 0;
	session_ack(s, DIR_DOWN, p->qos == 1 ? MQTT_PUBACK : MQTT_PUBREC, p->packet_id, reason);
	if (p->qos == 2 && reason < MQTT_RC_FAILURE_MIN && pid_set_add(&s->q2_local, p->packet_id) != 0) {
		session_abort_(s, DIR_UP, "too many QoS 2 flows");
		return -1;
	}
	return 0;
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
static int session_close_too_large(struct session *s)
{
	session_abort_(s, DIR_UP, "packet over limit");
	return -1;
}

/* A device PUBLISH on a group with writers this node is not one of (PROTOCOL.md §11.1): refused
 * like a denied topic, counted as denied, logged. */
static int session_refuse_writer(struct session *s, const struct mqtt_frame *f, const struct mqtt_publish *p,
				 struct mqtt_buf topic)
{
	static struct log_limit lim;

	s->ctx->stats->denied++;
	session_log_topic(s, &lim, "PUBLISH refused: this node is not a writer of the topic's group", topic);
	return session_refuse_up(s, f, p, MQTT_RC_NOT_AUTHORIZED, false, "not a writer");
}

static int session_seal_up(struct session *s, const struct mqtt_frame *f, const struct mqtt_publish *p,
			   struct mqtt_buf topic)
{
	static struct log_limit lim;
	struct evbuffer *out = bufferevent_get_output(s->up);
	size_t before = evbuffer_get_length(out);
	struct env_header sent;
	struct aead_part pieces[ENV_PARTS_MAX];
	size_t npieces = session_payload_pieces_(s, f, pieces);
	enum seal_rc rc;

	if (!p->payload.p && p->payload.len && npieces == 0) {
		session_abort_(s, DIR_UP, "cannot read a PUBLISH payload");
		return -1;
	}
	/* Sealed from the input chains straight into the broker's output buffer. */
	rc = seal_publish(s->ctx->seal, s->level, p, topic, s->broker_max_packet, clock_wall_ms(), &sent, out, pieces,
			  npieces);

	switch (rc) {
	case SEAL_OK:
		s->ctx->stats->bytes_to_broker += session_added(out, before);
		if (p->retain)
			seal_retained_put(s->ctx->seal, s->level, p, topic, &sent);
		session_discard_(s, DIR_UP, f->total);
		session_inflight_add_(s, p);
		return 0;
	case SEAL_NO_KEY:
		return 1;
	case SEAL_DENIED: /* checked before (session_publish_up_); kept for a reload in between */
		return session_refuse_writer(s, f, p, topic);
	case SEAL_TOO_LARGE:
		s->ctx->stats->refused++;
		session_log_topic(s, &lim, "refused: the sealed PUBLISH would exceed the broker's maximum packet size",
				  topic);
		return session_close_too_large(s);
	default:
		session_abort_(s, DIR_UP, "out of memory sealing a PUBLISH");
		return -1;
	}
}

int session_publish_up_(struct session *s, const struct mqtt_frame *f, const uint8_t *bytes,
			const struct mqtt_publish *p, struct mqtt_buf topic)
{
	static struct log_limit deny_lim, hold_lim;

	(void)bytes;
	switch (session_class(s, topic)) {
	case POLICY_DENIED:
		s->ctx->stats->denied++;
		session_log_topic(s, &deny_lim, "PUBLISH refused by the topic policy", topic);
		return session_refuse_up(s, f, p, MQTT_RC_NOT_AUTHORIZED, false, "denied");
	case POLICY_PLAINTEXT:
		s->ctx->stats->plaintext_out++;
		session_inflight_add_(s, p);
		session_forward_(s, DIR_UP, f->total);
		return 0;
	case POLICY_SEALED:
		break;
	}
	if (!seal_may_write(s->ctx->seal, topic))
		return session_refuse_writer(s, f, p, topic);
	if (p->retain && p->payload.len == 0) { /* a retained delete cannot be sealed (§10.2) */
		seal_retained_delete(s->ctx->seal, topic);
		session_inflight_add_(s, p);
		session_forward_(s, DIR_UP, f->total);
		return 0;
	}
	if (!keyex_can_seal(s->ctx->keyex)) {
		if (!s->hold_expired) {
			s->ctx->stats->held++;
			return 1;
		}
		s->ctx->stats->refused++;
		session_log_topic(s, &hold_lim, "refused: no key ready within seal.hold_seconds (never sent in plaintext)",
				  topic);
		return session_refuse_up(s, f, p, MQTT_RC_QUOTA_EXCEEDED, true, "no key ready");
	}
	return session_seal_up(s, f, p, topic);
}

int session_connect_up_(struct session *s, const struct mqtt_frame *f, const struct mqtt_connect *c)
{
	struct mqtt_buf topic = c->will_topic;

	(void)f;
	if (!(c->flags & MQTT_CONNECT_FLAG_WILL) || !s->ctx->policy)
		return 0;
	switch (session_class(s, topic)) {
	case POLICY_DENIED:
		s->ctx->stats->denied++;
		session_refuse_connect_(s, MQTT_CONNACK_311_NOT_AUTHORIZED, MQTT_RC_NOT_AUTHORIZED, "will topic denied");
		return -1;
	case POLICY_PLAINTEXT:
		return 0;
	case POLICY_SEALED:
		break;
	}
	if (!seal_may_write(s->ctx->seal, topic)) {
		s->ctx->stats->denied++;
		session_refuse_connect_(s, MQTT_CONNACK_311_NOT_AUTHORIZED, MQTT_RC_NOT_AUTHORIZED,
					"will topic in a group this node does not write");
		return -1;
	}
	if (keyex_can_seal(s->ctx->keyex))
		return 2;
	if (!s->hold_expired) {
		s->ctx->stats->held++;
		return 1;
	}
	s->ctx->stats->refused++;
	session_refuse_connect_(s, MQTT_CONNACK_311_SERVER_UNAVAILABLE, MQTT_RC_SERVER_UNAVAILABLE,
				"no key ready to seal the will");
	return -1;
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
	size_t before = evbuffer_get_length(out);

	/* Held to the device's own Maximum Packet Size once opened: the broker let the sealed form
	 * through under the raised limit (session_pkt.c) and discards what exceeds its client's limit
	 * (MQTT 5 §3.1.2.11.4); seal_open drops it (too_large), the drop completes it with the broker. */
	switch (seal_open(s->ctx->seal, s->devstate, s->level, p, topic, s->dev_max_packet, out, &reason)) {
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

int session_publish_down_(struct session *s, const struct mqtt_frame *f, const uint8_t *bytes,
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
		if (p->topic.len > 0) {
			session_forward_(s, DIR_DOWN, f->total);
			return 0;
		}
		if (seal_plain_full_topic(s->level, p, topic, out) != SEAL_OK) {
			session_abort_(s, DIR_DOWN, "out of memory relaying a PUBLISH");
			return -1;
		}
		s->ctx->stats->bytes_to_device += session_added(out, before);
		break;
	case POLICY_SEALED:
	default:
		/* While an older message on this topic waits for its key, a later one queues behind it. */
		v = session_held_topic_(s, topic) ? DOWN_HOLD : session_open_down_(s, p, topic, true);
		if (v == DOWN_ERROR)
			return -1;
		/* A full waiting room: the newcomer is handled at once (delivered if it opens now, out of
		 * order behind the waiting ones; dropped as unknown_key if its own key is missing). */
		if (v == DOWN_HOLD && session_hold_down_(s, f, bytes, topic) != 0 &&
		    session_open_down_(s, p, topic, false) == DOWN_ERROR)
			return -1;
		break;
	}
	session_discard_(s, DIR_DOWN, f->total);
	return s->state < SESSION_DRAINING ? 0 : -1;
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

static int session_suback_all_denied(struct session *s, const struct mqtt_frame *f, const struct mqtt_subscribe *sub)
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
	if (rc == 0)
		session_discard_(s, DIR_UP, f->total);
	return rc;
}

/* Relays the SUBSCRIBE without its denied filters and remembers where they were. */
static int session_subscribe_kept(struct session *s, const struct mqtt_frame *f, const struct mqtt_subscribe *sub,
				  bool *denied)
{
	struct sub_fix *fix = malloc(sizeof(*fix) + sub->count);
	bool *keep = malloc(sub->count);
	uint8_t *buf = NULL;
	size_t i, n;
	int rc = -1;

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
	session_send_(s, DIR_UP, buf, n);
	session_discard_(s, DIR_UP, f->total);
	rc = 0;
out:
	free(fix);
	free(keep);
	free(buf);
	return rc;
}

int session_subscribe_up_(struct session *s, const struct mqtt_frame *f, const uint8_t *bytes)
{
	struct mqtt_subscribe sub;
	struct mqtt_buf filter;
	const char *why = NULL;
	size_t pos = 0, i = 0, ndenied = 0;
	uint8_t options;
	bool *denied;
	int rc;

	if (mqtt_subscribe_parse(s->level, MQTT_SUBSCRIBE, bytes + f->hdr_len, f->remaining, &sub, &why) !=
	    MQTT_PARSE_OK) {
		session_abort_(s, DIR_UP, why ? why : "malformed SUBSCRIBE");
		return -1;
	}
	if (!s->ctx->policy || sub.count > UINT16_MAX) {
		session_forward_(s, DIR_UP, f->total);
		return 0;
	}
	denied = calloc(sub.count, sizeof(bool));
	if (!denied)
		return -1;
	while (mqtt_sub_next(&sub, MQTT_SUBSCRIBE, &pos, &filter, &options) && i < sub.count) {
		denied[i] = policy_filter_denied(s->ctx->policy, filter.p, filter.len);
		/* When it began, for the delivery rule (§6.2); a failure leaves it judged as untracked. */
		if (!denied[i] && s->devstate)
			(void)devstate_subscribe(s->devstate, filter.p, filter.len, clock_wall_ms());
		ndenied += denied[i++];
	}
	s->ctx->stats->denied += ndenied;
	if (ndenied == 0) {
		session_forward_(s, DIR_UP, f->total);
		rc = 0;
	} else if (ndenied == sub.count) {
		rc = session_suback_all_denied(s, f, &sub);
	} else {
		rc = session_subscribe_kept(s, f, &sub, denied);
	}
	free(denied);
	if (rc != 0)
		session_abort_(s, DIR_UP, "out of memory filtering a SUBSCRIBE");
	return rc;
}

/* Puts the failure codes of the filters we removed back into the broker's SUBACK. */
static int session_suback_fixed(struct session *s, const struct mqtt_frame *f, const uint8_t *bytes,
				const struct sub_fix *fix)
{
	uint8_t fail = s->level == MQTT_LEVEL_5 ? MQTT_RC_NOT_AUTHORIZED : MQTT_SUBACK_311_FAILURE, *codes;
	struct mqtt_suback ack;
	const char *why = NULL;
	size_t i, k = 0;
	int rc = -1;

	if (mqtt_suback_parse(s->level, MQTT_SUBACK, bytes + f->hdr_len, f->remaining, &ack, &why) != MQTT_PARSE_OK) {
		session_abort_(s, DIR_DOWN, why ? why : "malformed SUBACK");
		return -1;
	}
	codes = malloc(fix->count);
	if (codes) {
		for (i = 0; i < fix->count; i++)
			codes[i] = fix->denied[i] ? fail : (k < ack.codes.len ? ack.codes.p[k++] : fail);
		ack.codes.p = codes;
		ack.codes.len = fix->count;
		rc = session_send_suback(s, &ack);
		free(codes);
	}
	if (rc != 0) {
		session_abort_(s, DIR_DOWN, "out of memory fixing a SUBACK");
		return -1;
	}
	session_discard_(s, DIR_DOWN, f->total);
	return 0;
}

int session_suback_down_(struct session *s, const struct mqtt_frame *f, const uint8_t *bytes)
{
	struct sub_fix **pp;
	uint16_t pid;
	int rc;

	if (f->remaining < 2) {
		session_abort_(s, DIR_DOWN, "malformed SUBACK");
		return -1;
	}
	pid = (uint16_t)(bytes[f->hdr_len] << 8 | bytes[f->hdr_len + 1]);
	for (pp = &s->subfix; *pp; pp = &(*pp)->next) {
		if ((*pp)->packet_id == pid) {
			struct sub_fix *fix = *pp;
			*pp = fix->next;
			rc = session_suback_fixed(s, f, bytes, fix);
			free(fix);
			return rc;
		}
	}
	session_forward_(s, DIR_DOWN, f->total);
	return 0;
}

int session_pubrel_local_(struct session *s, enum session_dir d, const struct mqtt_frame *f, const uint8_t *bytes)
{
	struct pid_set *ps = d == DIR_UP ? &s->q2_local : &s->q2_behalf;
	uint16_t pid;

	if (ps->n == 0 || f->remaining < 2)
		return 0;
	pid = (uint16_t)(bytes[f->hdr_len] << 8 | bytes[f->hdr_len + 1]);
	if (!pid_set_take(ps, pid))
		return 0;
	/* PUBCOMP goes back where the PUBREL came from. */
	session_ack(s, d == DIR_UP ? DIR_DOWN : DIR_UP, MQTT_PUBCOMP, pid, 0);
	session_discard_(s, d, f->total);
	return 1;
}

/* ---- in-flight device publishes (graceful shutdown) ---- */

void session_inflight_add_(struct session *s, const struct mqtt_publish *p)
{
	if (p->qos > 0)
		(void)pid_set_add(&s->up_inflight, p->packet_id); /* best effort: shutdown is bounded anyway */
}

/* PUBACK, or PUBREC (from then on the broker owns a QoS 2 message), from the broker. */
void session_inflight_done_(struct session *s, uint16_t pid)
{
	if (s->up_inflight.n == 0)
		return;
	pid_set_take(&s->up_inflight, pid);
	if (s->state == SESSION_STOPPING && s->up_inflight.n == 0)
		session_close(s, "shutting down (in-flight publishes acknowledged)");
}

void session_shutdown(struct session *s)
{
	if (s->state >= SESSION_DRAINING)
		return;
	if (s->up_inflight.n == 0 || !s->up)
		session_close(s, "shutting down");
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
	bufferevent_disable(s->dev, EV_READ);
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
