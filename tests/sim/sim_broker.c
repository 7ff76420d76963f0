/* sim_broker.c - the simulated broker's clients: connections and their generations, clean
 * sessions, per-client queues, wills, restarts, accounting. Routing and the retained store are in
 * sim_broker_index.c. */
#include <stdlib.h>
#include <string.h>

#include "mqtt_topic.h"
#include "sim_broker_internal.h"

struct sim_msg *sim_msg_new(const char *topic, const uint8_t *payload, size_t len, bool retain)
{
	struct sim_msg *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->topic = strdup(topic);
	m->payload = malloc(len ? len : 1);
	if (!m->topic || !m->payload) {
		sim_msg_free(m);
		return NULL;
	}
	if (len)
		memcpy(m->payload, payload, len);
	m->len = len;
	m->retain = retain;
	return m;
}

void sim_msg_free(struct sim_msg *m)
{
	if (!m)
		return;
	free(m->topic);
	free(m->payload);
	free(m);
}

size_t sim_msg_wire_size(const struct sim_msg *m)
{
	size_t rem = 2 + strlen(m->topic) + 2 + m->len; /* topic, packet id (QoS 1), payload */
	size_t vlen = rem < 128 ? 1 : rem < 16384 ? 2 : rem < 2097152 ? 3 : 4;

	return 1 + vlen + rem;
}

struct sim_broker *sim_broker_new(size_t nclients)
{
	struct sim_broker *b = calloc(1, sizeof(*b));
	size_t i;

	if (!b)
		return NULL;
	b->ncl = nclients;
	b->cl = calloc(nclients ? nclients : 1, sizeof(*b->cl));
	b->ready = calloc(nclients ? nclients : 1, sizeof(*b->ready));
	b->retained = sim_map_new();
	b->rparent = sim_map_new();
	b->subidx = sim_map_new();
	if (!b->cl || !b->ready || !b->retained || !b->rparent || !b->subidx)
		goto fail;
	for (i = 0; i < nclients; i++) {
		b->cl[i].subs = sim_map_new();
		if (!b->cl[i].subs)
			goto fail;
	}
	return b;
fail:
	sim_broker_free(b);
	return NULL;
}

static void queue_clear(struct sim_client *cl)
{
	struct sim_msg *m, *n;

	for (m = cl->qhead; m; m = n) {
		n = m->next;
		sim_msg_free(m);
	}
	cl->qhead = cl->qtail = NULL;
	cl->qlen = 0;
}

void sim_broker_free(struct sim_broker *b)
{
	size_t i;

	if (!b)
		return;
	for (i = 0; b->cl && i < b->ncl; i++) {
		queue_clear(&b->cl[i]);
		sim_msg_free(b->cl[i].will);
		sim_map_free(b->cl[i].subs, NULL);
	}
	sim_index_free_(b);
	free(b->cl);
	free(b->ready);
	free(b);
}

int sim_broker_enqueue_(struct sim_broker *b, size_t c, const struct sim_msg *m, bool retain)
{
	struct sim_client *cl = &b->cl[c];
	struct sim_msg *q = sim_msg_new(m->topic, m->payload, m->len, retain);

	if (!q)
		return -1;
	if (cl->qtail)
		cl->qtail->next = q;
	else
		cl->qhead = q;
	cl->qtail = q;
	cl->qlen++;
	if (!cl->ready) {
		cl->ready = true;
		b->ready[(b->rhead + b->rlen++) % b->ncl] = (uint32_t)c;
	}
	return 0;
}

struct sim_msg *sim_broker_pop(struct sim_broker *b, size_t c)
{
	struct sim_client *cl = &b->cl[c];
	struct sim_msg *m = cl->qhead;

	if (!m)
		return NULL;
	cl->qhead = m->next;
	if (!cl->qhead)
		cl->qtail = NULL;
	cl->qlen--;
	m->next = NULL;
	b->st.msgs_out++;
	b->st.bytes_out += sim_msg_wire_size(m);
	return m;
}

bool sim_broker_next_ready(struct sim_broker *b, size_t *c)
{
	while (b->rlen) {
		uint32_t i = b->ready[b->rhead];

		b->rhead = (b->rhead + 1) % b->ncl;
		b->rlen--;
		b->cl[i].ready = false;
		if (b->cl[i].qlen) {
			*c = i;
			return true;
		}
	}
	return false;
}

size_t sim_broker_queued(const struct sim_broker *b, size_t c)
{
	return b->cl[c].qlen;
}

struct unsub_arg {
	struct sim_broker *b;
	size_t c;
};

static void unsub_one(void *arg, const char *key, size_t klen, void *val)
{
	struct unsub_arg *a = arg;

	(void)klen;
	(void)val;
	sim_index_remove_(a->b, a->c, key);
}

/* Drops the session of c: subscriptions (and their index entries) and queue. */
static void session_end(struct sim_broker *b, size_t c)
{
	struct sim_client *cl = &b->cl[c];
	struct unsub_arg a = { b, c };

	sim_map_each(cl->subs, unsub_one, &a);
	sim_map_clear(cl->subs, NULL);
	queue_clear(cl);
	cl->connected = false;
}

static int publish_will(struct sim_broker *b, struct sim_client *cl)
{
	int rc = 0;

	cl->will_pending = false;
	if (cl->will) {
		b->st.wills++;
		rc = sim_broker_publish(b, SIM_BROKER_SELF, cl->will->topic, cl->will->payload, cl->will->len,
					cl->will->retain);
	}
	sim_msg_free(cl->will);
	cl->will = NULL;
	return rc;
}

uint64_t sim_broker_connect(struct sim_broker *b, size_t c, const struct sim_msg *will)
{
	struct sim_client *cl = &b->cl[c];
	struct sim_msg *w = NULL;

	if (will) {
		w = sim_msg_new(will->topic, will->payload, will->len, will->retain);
		if (!w)
			return 0;
	}
	if (cl->connected)
		sim_broker_drop(b, c); /* takeover of a connection the broker still believed alive */
	if (cl->will_pending && publish_will(b, cl) != 0) {
		sim_msg_free(w);
		return 0;
	}
	sim_msg_free(cl->will);
	cl->will = w;
	cl->connected = true;
	cl->will_pending = false;
	return ++cl->gen;
}

void sim_broker_disconnect(struct sim_broker *b, size_t c)
{
	struct sim_client *cl = &b->cl[c];

	if (!cl->connected)
		return;
	session_end(b, c);
	sim_msg_free(cl->will);
	cl->will = NULL;
	cl->will_pending = false;
}

void sim_broker_drop(struct sim_broker *b, size_t c)
{
	struct sim_client *cl = &b->cl[c];

	if (!cl->connected)
		return;
	session_end(b, c);
	cl->will_pending = cl->will != NULL;
}

int sim_broker_will_due(struct sim_broker *b, size_t c, uint64_t gen)
{
	struct sim_client *cl = &b->cl[c];

	if (cl->connected || !cl->will_pending || cl->gen != gen)
		return 0;
	return publish_will(b, cl) == 0 ? 1 : 0;
}

bool sim_broker_connected(const struct sim_broker *b, size_t c)
{
	return b->cl[c].connected;
}

uint64_t sim_broker_gen(const struct sim_broker *b, size_t c)
{
	return b->cl[c].gen;
}

int sim_broker_subscribe(struct sim_broker *b, size_t c, const char *filter)
{
	struct sim_client *cl = &b->cl[c];
	void *old = NULL;

	if (!cl->connected || !mqtt_topic_filter_valid((const uint8_t *)filter, strlen(filter)))
		return -1;
	if (!sim_map_get(cl->subs, filter, strlen(filter))) {
		if (sim_index_add_(b, c, filter) != 0)
			return -1;
		if (sim_map_put(cl->subs, filter, strlen(filter), (void *)1, &old) != 0) {
			sim_index_remove_(b, c, filter);
			return -1;
		}
	}
	return sim_index_retained_for_(b, c, filter);
}

int sim_broker_unsubscribe(struct sim_broker *b, size_t c, const char *filter)
{
	struct sim_client *cl = &b->cl[c];

	if (!cl->connected || !mqtt_topic_filter_valid((const uint8_t *)filter, strlen(filter)))
		return -1;
	if (sim_map_del(cl->subs, filter, strlen(filter)))
		sim_index_remove_(b, c, filter);
	return 0;
}

int sim_broker_publish(struct sim_broker *b, size_t c, const char *topic, const uint8_t *payload, size_t len,
		       bool retain)
{
	struct sim_msg m = { .topic = (char *)topic, .payload = (uint8_t *)payload, .len = len, .retain = retain };

	if (c != SIM_BROKER_SELF && !b->cl[c].connected)
		return -1;
	if (!mqtt_topic_name_valid((const uint8_t *)topic, strlen(topic)))
		return -1;
	if (c != SIM_BROKER_SELF) {
		b->st.msgs_in++;
		b->st.bytes_in += sim_msg_wire_size(&m);
	}
	if (retain && sim_index_retain_(b, &m) != 0)
		return -1;
	return sim_index_route_(b, &m);
}

void sim_broker_restart(struct sim_broker *b, bool keep_retained)
{
	size_t i;

	for (i = 0; i < b->ncl; i++) {
		struct sim_client *cl = &b->cl[i];

		if (cl->connected)
			session_end(b, i);
		/* A will dies with the broker that held it. */
		sim_msg_free(cl->will);
		cl->will = NULL;
		cl->will_pending = false;
	}
	if (!keep_retained)
		sim_index_clear_retained_(b);
	b->st.restarts++;
}

size_t sim_broker_retained_count(const struct sim_broker *b)
{
	return sim_map_count(b->retained);
}

const struct sim_msg *sim_broker_retained(const struct sim_broker *b, const char *topic)
{
	return sim_map_get(b->retained, topic, strlen(topic));
}

void sim_broker_get_stats(const struct sim_broker *b, struct sim_broker_stats *out)
{
	*out = b->st;
}
