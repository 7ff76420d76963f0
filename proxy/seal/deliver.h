/* deliver.h - the delivery rule of PROTOCOL.md §6.2 and §6.3 as a pure decision: given an opened,
 * authenticated message (what the key ring says of its counter, its header, how the broker
 * delivered it), one device's state and the node's retained order marks, deliver it, suppress it
 * (a re-publication the device holds) or drop it with a reason. No I/O, no clock: times come in.
 * seal_deliver.c applies it to each incoming PUBLISH; tests/fuzz/fuzz_deliver.c checks it. */
#ifndef PX_DELIVER_H
#define PX_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "envelope.h"
#include "keyring.h"
#include "marks.h"
#include "stats.h"

struct devstate;

struct deliver_msg {
	struct env_header h;   /* authenticated */
	uint64_t epoch;        /* the sender's epoch of the key */
	enum kr_seen seen;     /* what the device's window of the key said */
	bool retain_delivered; /* RETAIN=1 as the broker delivered it */
	bool repeat;           /* the broker's redelivery of what the device did not acknowledge */
	const uint8_t *topic;  /* as the device sees it (its subscriptions match this) */
	size_t topic_len;
	uint8_t digest[MARKS_DIGEST_LEN]; /* of the topic bound in the AAD; needed with retain_intent */
};

struct deliver_params {
	uint64_t tolerance_ms; /* keyex.max_skew_seconds */
	uint64_t started_ms;   /* wall clock when the node started */
	uint64_t now_ms;       /* wall clock now (a will is ordered by when it was first received) */
};

enum deliver_verdict {
	DELIVER_YES,      /* deliver; a new round of copies starts (deliver_done) */
	DELIVER_COPY,     /* deliver as one more copy of the current round (already counted) */
	DELIVER_SUPPRESS, /* acknowledged for the device, not delivered, not a drop */
	DELIVER_DROP,     /* *reason says why */
};

/* Decides for device d; may use up a copy or a retained repeat of d. */
enum deliver_verdict deliver_decide(struct devstate *d, struct marks *m, const struct deliver_params *p,
				    const struct deliver_msg *msg, enum stats_drop *reason);
/* The message was delivered to d (v: DELIVER_YES or DELIVER_COPY): its copy round, the topic's
 * mark, d's retained note. */
void deliver_done(struct devstate *d, struct marks *m, const struct deliver_params *p, const struct deliver_msg *msg,
		  enum deliver_verdict v);

#endif
