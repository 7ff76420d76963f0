/* kx_core_queue.c - the core's outputs: a FIFO of actions (kx_core.h) the adapter drains after
 * every entry point. Each action owns copies of its topic, bytes and filters; the one handed out
 * last is freed when the next one is taken (or the queue is pushed to while empty). */
#include "kx_core_internal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

static void kx_qaction_free(struct kx_qaction *q)
{
	size_t i;

	free(q->topic);
	free(q->peer);
	if (q->data) {
		OPENSSL_cleanse(q->data, q->a.len); /* a persist text or public bytes: cheap to be sure */
		free(q->data);
	}
	for (i = 0; q->filters && i < q->a.nfilters; i++)
		free(q->filters[i]);
	free(q->filters);
	memset(q, 0, sizeof(*q));
}

void kx_queue_free_(struct kx_core *kx)
{
	size_t i;

	for (i = 0; i < kx->qn; i++)
		kx_qaction_free(&kx->q[i]);
	free(kx->q);
	kx->q = NULL;
	kx->qn = kx->qcap = kx->qhead = 0;
}

/* A fresh slot at the end; the queue restarts at 0 when everything was taken. */
static struct kx_qaction *kx_qslot(struct kx_core *kx)
{
	size_t i;

	if (kx->qhead == kx->qn) {
		for (i = 0; i < kx->qn; i++)
			kx_qaction_free(&kx->q[i]);
		kx->qn = kx->qhead = 0;
	}
	if (kx->qn == kx->qcap) {
		size_t cap = kx->qcap ? kx->qcap * 2 : 16;
		struct kx_qaction *nq = realloc(kx->q, cap * sizeof(*nq));
		if (!nq) {
			log_error("keyex", "out of memory: an action is lost");
			return NULL;
		}
		kx->q = nq;
		kx->qcap = cap;
	}
	memset(&kx->q[kx->qn], 0, sizeof(kx->q[0]));
	return &kx->q[kx->qn];
}

int kx_push_publish_(struct kx_core *kx, const char *topic, const uint8_t *data, size_t len, bool retain, int tag,
		     const char *peer)
{
	struct kx_qaction *q = kx_qslot(kx);

	if (!q)
		return -1;
	q->topic = strdup(topic);
	q->data = malloc(len ? len : 1);
	q->peer = peer ? strdup(peer) : NULL;
	if (!q->topic || !q->data || (peer && !q->peer)) {
		kx_qaction_free(q);
		log_error("keyex", "out of memory: a publish on %s is lost", topic);
		return -1;
	}
	if (len)
		memcpy(q->data, data, len);
	q->a = (struct kx_action){.type = KX_ACT_PUBLISH, .topic = q->topic, .data = q->data, .len = len,
				  .qos = 1, .retain = retain};
	q->tag = tag;
	kx->qn++;
	return 0;
}

int kx_push_filters_(struct kx_core *kx, enum kx_action_type type, const char *const *filters, size_t n)
{
	struct kx_qaction *q;
	size_t i;

	if (n == 0 || n > KX_SUB_BATCH)
		return -1;
	q = kx_qslot(kx);
	if (!q)
		return -1;
	q->filters = calloc(n, sizeof(*q->filters));
	q->a.nfilters = q->filters ? n : 0;
	for (i = 0; q->filters && i < n; i++) {
		q->filters[i] = strdup(filters[i]);
		if (!q->filters[i]) {
			kx_qaction_free(q);
			log_error("keyex", "out of memory: a subscription is lost");
			return -1;
		}
	}
	if (!q->filters)
		return -1;
	q->a.type = type;
	q->a.qos = 1;
	q->a.filters = (const char *const *)q->filters;
	kx->qn++;
	return 0;
}

int kx_push_simple_(struct kx_core *kx, enum kx_action_type type)
{
	struct kx_qaction *q = kx_qslot(kx);

	if (!q)
		return -1;
	q->a.type = type;
	kx->qn++;
	return 0;
}

int kx_push_persist_(struct kx_core *kx)
{
	size_t len = 0;
	char *text = kx_state_text_(kx, &len);
	struct kx_qaction *q;

	kx->persist_due = false;
	if (!text || !(q = kx_qslot(kx))) {
		free(text);
		kx->persist_due = true;
		log_error("keyex", "out of memory: the state is not persisted yet");
		return -1;
	}
	q->data = (uint8_t *)text;
	q->a = (struct kx_action){.type = KX_ACT_PERSIST, .data = q->data, .len = len};
	kx->qn++;
	return 0;
}

/* Our message to q's peer did not go out: it is due again (sent at the next tick or connection). */
static void kx_announce_failed(struct kx_core *kx, const struct kx_qaction *q)
{
	struct kx_peer *p = q->peer ? kx_peer_(kx, q->peer, strlen(q->peer)) : NULL;

	if (p)
		p->announce_due = true;
}

bool kx_core_next_action(struct kx_core *kx, struct kx_action *out)
{
	if (kx->qhead > 0 && kx->qhead <= kx->qn)
		kx_qaction_free(&kx->q[kx->qhead - 1]); /* the one handed out last */
	while (kx->qhead < kx->qn && kx->q[kx->qhead].dropped)
		kx_qaction_free(&kx->q[kx->qhead++]);
	if (kx->qhead >= kx->qn) {
		kx->qn = kx->qhead = 0;
		return false;
	}
	*out = kx->q[kx->qhead].a;
	kx->qhead++;
	return true;
}

/* A failed publish undoes what queueing it counted or cleared; a failed persist also drops the
 * publishes queued after it (the local actions stay: keys that changed did change). */
void kx_core_action_failed(struct kx_core *kx, const struct kx_now *now)
{
	struct kx_qaction *q;
	size_t i;

	if (kx->qhead == 0 || kx->qhead > kx->qn)
		return;
	kx->now = *now;
	q = &kx->q[kx->qhead - 1];
	if (q->tag == KX_TAG_ANNOUNCE) {
		kx_announce_failed(kx, q);
		if (kx->stats->announcements_sent)
			kx->stats->announcements_sent--;
	} else if (q->tag == KX_TAG_ACK && kx->stats->acks_sent) {
		kx->stats->acks_sent--;
	}
	if (q->a.type != KX_ACT_PERSIST)
		return;
	log_error("keyex", "cannot write %s; nothing more is announced until it is written",
		  kx->env.persist_path ? kx->env.persist_path : "the state file");
	kx->persist_due = true;
	for (i = kx->qhead; i < kx->qn; i++) {
		struct kx_qaction *r = &kx->q[i];
		if (r->a.type != KX_ACT_PUBLISH)
			continue;
		if (r->tag == KX_TAG_ANNOUNCE)
			kx_announce_failed(kx, r);
		if (r->tag == KX_TAG_ACK && kx->stats->acks_sent)
			kx->stats->acks_sent--;
		r->dropped = true;
	}
}

int kx_batch_add_(struct kx_core *kx, struct kx_batch *b, const char *filter)
{
	if (b->n == KX_SUB_BATCH && kx_batch_flush_(kx, b) != 0)
		b->rc = -1;
	b->f[b->n] = strdup(filter);
	if (!b->f[b->n]) {
		b->rc = -1;
		return -1;
	}
	b->n++;
	return 0;
}

int kx_batch_flush_(struct kx_core *kx, struct kx_batch *b)
{
	size_t i;
	int rc = 0;

	if (b->n)
		rc = kx_push_filters_(kx, b->type, (const char *const *)b->f, b->n);
	for (i = 0; i < b->n; i++)
		free(b->f[i]);
	b->n = 0;
	if (rc != 0)
		b->rc = -1;
	return b->rc;
}
