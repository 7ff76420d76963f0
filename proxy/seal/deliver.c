/* deliver.c - the delivery rule (deliver.h; PROTOCOL.md §6.2, §6.3). A message reaches a device at
 * most once per client id, never if it was sealed well before the subscription covering its topic
 * or before the node started, except the copies overlapping subscriptions ask for, the broker's
 * redelivery of what the device did not acknowledge, and the newest retained value of a topic,
 * once per new subscription; a retained value older than the topic's mark never. */
#include "deliver.h"

#include <string.h>

#include "devstate.h"

/* The mark msg would set: ordered by its seal time, a will by when this node first got it. */
static struct mark deliver_mark(struct marks *m, const struct deliver_params *p, const struct deliver_msg *msg)
{
	struct mark mk = {.sealed_at = msg->h.sealed_at, .epoch = msg->epoch, .counter = msg->h.counter};

	memcpy(mk.key_id, msg->h.key_id, ENV_KEY_ID_LEN);
	if (msg->h.flags & ENV_FLAG_WILL)
		mk.sealed_at = marks_will_time(m, msg->h.key_id, msg->h.counter, p->now_ms);
	return mk;
}

/* A retained value (RETAIN=1 as delivered, retain_intent authenticated). */
static enum deliver_verdict deliver_retained(struct devstate *d, struct marks *m, const struct deliver_params *p,
					     const struct deliver_msg *msg, const struct devstate_match *sub,
					     enum stats_drop *reason)
{
	struct mark mk = deliver_mark(m, p, msg);
	bool republish = (msg->h.flags & ENV_FLAG_REPUBLISH) != 0, had;

	if (marks_compare(m, msg->digest, &mk) == MARKS_OLDER) {
		*reason = DROP_ROLLBACK;
		return DELIVER_DROP;
	}
	if (msg->seen == KR_SEEN_NEW && !republish)
		return DELIVER_YES; /* a value the device never had */
	if (devstate_copy_take(d, msg->h.key_id, msg->h.counter, sub->count))
		return DELIVER_COPY;
	/* A repeat, or a re-publication of a value it may hold: a new subscription allows one. */
	if (devstate_credit_take(d, msg->digest, sub->gen))
		return DELIVER_YES;
	had = devstate_credit_had(d, msg->digest);
	if (republish)
		return had ? DELIVER_SUPPRESS : DELIVER_YES;
	if (msg->seen == KR_SEEN_FLOOR && !had)
		return DELIVER_YES; /* sealed before this node held the key; never delivered here */
	*reason = DROP_REPLAY;
	return DELIVER_DROP;
}

/* A live message. */
static enum deliver_verdict deliver_live(struct devstate *d, const struct deliver_params *p,
					 const struct deliver_msg *msg, const struct devstate_match *sub,
					 enum stats_drop *reason)
{
	uint64_t at = msg->h.sealed_at;

	*reason = DROP_REPLAY;
	if (msg->seen == KR_SEEN_FLOOR)
		return DELIVER_DROP;
	if (msg->seen == KR_SEEN_WINDOW) {
		if (msg->repeat)
			return DELIVER_COPY; /* the broker's redelivery: the same round */
		return devstate_copy_take(d, msg->h.key_id, msg->h.counter, sub->count) ? DELIVER_COPY
											: DELIVER_DROP;
	}
	if (!(msg->h.flags & ENV_FLAG_WILL) && (at + p->tolerance_ms < sub->start_ms || at < p->started_ms)) {
		*reason = DROP_BEFORE_SUB;
		return DELIVER_DROP;
	}
	if ((msg->h.flags & ENV_FLAG_REPUBLISH) && !msg->retain_delivered)
		return DELIVER_SUPPRESS;
	return DELIVER_YES;
}

enum deliver_verdict deliver_decide(struct devstate *d, struct marks *m, const struct deliver_params *p,
				    const struct deliver_msg *msg, enum stats_drop *reason)
{
	struct devstate_match sub;
	enum deliver_verdict v;

	devstate_match(d, msg->topic, msg->topic_len, &sub);
	if (msg->retain_delivered && (msg->h.flags & ENV_FLAG_RETAIN))
		v = deliver_retained(d, m, p, msg, &sub, reason);
	else
		v = deliver_live(d, p, msg, &sub, reason);
	if (v == DELIVER_SUPPRESS && (msg->h.flags & ENV_FLAG_RETAIN)) {
		struct mark mk = deliver_mark(m, p, msg);
		(void)marks_record(m, msg->digest, &mk); /* the broker holds it now */
	}
	return v;
}

void deliver_done(struct devstate *d, struct marks *m, const struct deliver_params *p, const struct deliver_msg *msg,
		  enum deliver_verdict v)
{
	struct mark mk;

	if (v != DELIVER_COPY)
		devstate_copy_first(d, msg->h.key_id, msg->h.counter);
	if (!(msg->h.flags & ENV_FLAG_RETAIN))
		return;
	mk = deliver_mark(m, p, msg);
	(void)marks_record(m, msg->digest, &mk);
	devstate_credit_note(d, msg->digest);
}
