/* session_held.c - incoming sealed messages whose key id is not known yet (PROTOCOL.md §6.1 step 3,
 * R35): an announcement and the data it keys travel on different topics, so a message can arrive
 * first. Such a message is copied aside (at most SESSION_HELD_MAX of them, a byte budget in all,
 * each for SESSION_HELD_MS) and the stream goes on; a later sealed message on the same topic waits
 * behind it, so each topic's order holds (MQTT orders per topic, §4.6). When keys change they are tried again in order; what is still
 * unknown at its deadline is dropped as unknown_key (and acknowledged for the device). Besides
 * each session's own limits, all sessions together hold at most seal.held_max_kb and
 * seal.held_max_messages (counted in the node context): the broker fans one burst out to every
 * subscribed device, and what does not fit is dropped at once as unknown_key. */
#include "session_internal.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "conf.h"

/* WireGuard stages 128 packets (R35). Held QoS 1/2 messages are not acknowledged to the broker
 * yet, so once the broker's in-flight window for this device is full (RabbitMQ's mqtt.prefetch
 * is 10, mosquitto's max_inflight_messages 20) it sends nothing more until they are: the device's
 * other topics wait too, for at most SESSION_HELD_MS. That is a delay; staging fewer would drop
 * messages a restarted peer's re-issued announcement is about to key. */
#define SESSION_HELD_MAX 128
#define SESSION_HELD_MS 5000    /* WireGuard's REKEY_TIMEOUT */

struct held {
	struct held *next;
	uint64_t deadline;
	size_t frame_len, topic_len;
	uint8_t data[]; /* the PUBLISH frame, then its resolved topic */
};

/* The byte budget: one largest packet, at least 1 MiB. */
static size_t session_held_budget(const struct session *s)
{
	size_t max = s->ctx->conf->listen.max_packet_size;

	return max > 1048576 ? max : 1048576;
}

bool session_held_topic_(const struct session *s, struct mqtt_buf topic)
{
	const struct held *h;

	for (h = s->held; h; h = h->next)
		if (h->topic_len == topic.len && memcmp(h->data + h->frame_len, topic.p, topic.len) == 0)
			return true;
	return false;
}

static void session_held_arm(struct session *s)
{
	uint64_t now = clock_mono_ms(), wait;
	struct timeval tv;

	if (!s->held) {
		if (s->held_timer)
			evtimer_del(s->held_timer);
		return;
	}
	wait = s->held->deadline > now ? s->held->deadline - now : 0;
	tv.tv_sec = (time_t)(wait / 1000);
	tv.tv_usec = (suseconds_t)(wait % 1000) * 1000;
	evtimer_add(s->held_timer, &tv);
}

/* Parses a held frame again (it was valid when it arrived). */
static int session_held_parse(const struct session *s, const struct held *h, struct mqtt_publish *p,
			      struct mqtt_buf *topic)
{
	struct mqtt_frame f;

	if (mqtt_frame_parse(h->data, h->frame_len, SIZE_MAX, s->level, &f, NULL) != MQTT_PARSE_OK ||
	    mqtt_publish_parse(s->level, f.flags, h->data + f.hdr_len, f.remaining, p, NULL) != MQTT_PARSE_OK)
		return -1;
	topic->p = h->data + h->frame_len;
	topic->len = h->topic_len;
	return 0;
}

/* What a held copy costs the node-wide budget: the copy and its bookkeeping. */
static size_t session_held_cost(size_t frame_len, size_t topic_len)
{
	return sizeof(struct held) + frame_len + topic_len;
}

/* Whether one more message (frame_bytes of frame, cost in all) fits this session's limits and
 * the node-wide ones; a full node-wide budget is logged (rate-limited). */
static bool session_held_fits(const struct session *s, size_t frame_bytes, size_t cost)
{
	static struct log_limit lim;
	const struct px_ctx *ctx = s->ctx;
	const struct px_conf *conf = ctx->conf;
	unsigned suppressed = 0;
	char note[LOG_NOTE_MAX];

	if (s->held_count >= SESSION_HELD_MAX || s->held_bytes + frame_bytes > session_held_budget(s))
		return false;
	if (ctx->held_count < conf->seal.held_max_messages &&
	    ctx->held_bytes + cost <= (size_t)conf->seal.held_max_kb * 1024u)
		return true;
	if (log_limit_allow(&lim, clock_mono_ms(), &suppressed))
		log_warn("seal", "node-wide budget for incoming messages with unknown keys full (%zu messages, %zu "
			 "bytes; seal.held_max_messages = %u, seal.held_max_kb = %u): dropping at once as unknown_key%s",
			 ctx->held_count, ctx->held_bytes, conf->seal.held_max_messages, conf->seal.held_max_kb,
			 log_suppressed_note(suppressed, note));
	return false;
}

/* Unlinks h, whose predecessor's next pointer is *pp. */
static void session_held_unlink(struct session *s, struct held **pp)
{
	struct held *h = *pp;

	*pp = h->next;
	if (s->held_tail == &h->next)
		s->held_tail = pp;
	s->held_count--;
	s->held_bytes -= h->frame_len;
	s->ctx->held_count--;
	s->ctx->held_bytes -= session_held_cost(h->frame_len, h->topic_len);
	free(h);
}

/* Tries the held messages in order. One whose key is still unknown stays (unless past its
 * deadline: then it is dropped), and so do later ones on its topic. */
static void session_held_run(struct session *s, uint64_t now)
{
	struct mqtt_publish p;
	struct mqtt_buf topic;
	struct held **pp = &s->held;
	enum down_verdict v;

	while (*pp && s->state < SESSION_DRAINING && s->dev) {
		struct held *h = *pp, *b;
		bool behind = false;
		if (session_held_parse(s, h, &p, &topic) != 0) {
			session_held_unlink(s, pp);
			continue;
		}
		for (b = s->held; b != h && !behind; b = b->next)
			behind = b->topic_len == topic.len && memcmp(b->data + b->frame_len, topic.p, topic.len) == 0;
		v = behind ? DOWN_HOLD : session_open_down_(s, &p, topic, now < h->deadline);
		if (v == DOWN_ERROR)
			return;
		if (v == DOWN_HOLD) {
			pp = &h->next;
			continue;
		}
		session_held_unlink(s, pp);
	}
	if (s->held_timer)
		session_held_arm(s);
}

static void session_on_held_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	session_held_run(arg, clock_mono_ms());
}

void session_held_retry_(struct session *s)
{
	if (s->held)
		session_held_run(s, clock_mono_ms());
}

int session_hold_down_(struct session *s, const struct mqtt_frame *f, const uint8_t *bytes, struct mqtt_buf topic)
{
	size_t cost = session_held_cost(f->total, topic.len);
	struct held *h;

	if (!session_held_fits(s, f->total, cost))
		return -1;
	if (!s->held_timer && !(s->held_timer = evtimer_new(s->ctx->base, session_on_held_timer, s)))
		return -1;
	h = malloc(sizeof(*h) + f->total + topic.len);
	if (!h)
		return -1;
	h->next = NULL;
	h->deadline = clock_mono_ms() + SESSION_HELD_MS;
	h->frame_len = f->total;
	h->topic_len = topic.len;
	/* A large frame may have only its header in bytes (session_frame_head): it is copied from
	 * the broker input, at whose head it is. */
	if (s->frame_head >= f->total)
		memcpy(h->data, bytes, f->total);
	else if (evbuffer_copyout(bufferevent_get_input(s->up), h->data, f->total) != (ev_ssize_t)f->total) {
		free(h);
		return -1;
	}
	memcpy(h->data + f->total, topic.p, topic.len);
	if (!s->held)
		s->held_tail = &s->held;
	*s->held_tail = h;
	s->held_tail = &h->next;
	s->held_count++;
	s->held_bytes += f->total;
	s->ctx->held_count++;
	s->ctx->held_bytes += cost;
	s->ctx->stats->held_incoming++;
	if (s->held == h)
		session_held_arm(s);
	return 0;
}

void session_held_free_(struct session *s)
{
	while (s->held)
		session_held_unlink(s, &s->held);
	if (s->held_timer)
		event_free(s->held_timer);
}
