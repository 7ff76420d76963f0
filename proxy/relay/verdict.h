/* verdict.h - the one interface between the MQTT session (relay/session.c, which owns the two
 * sides and the bytes between them) and the per-packet logic (policy, seal/open, held messages,
 * SUBACK fix-ups): for each complete frame at the head of a side's input, the logic returns one
 * verdict, and the session carries it out (ARCHITECTURE.md, "One verdict per packet"). */
#ifndef PX_VERDICT_H
#define PX_VERDICT_H

#include <stddef.h>
#include <stdint.h>

enum verdict_kind {
	VERDICT_FORWARD, /* move the frame unchanged to the other side (its evbuffer chains, no copy) */
	VERDICT_DROP,    /* consume the frame; nothing of it goes on. What the logic queued itself
			  * (an ack for the sender, a sealed or opened copy written into the
			  * destination's output) stays queued. */
	VERDICT_REPLACE, /* consume the frame and queue bytes[0..len) to the other side instead */
	VERDICT_WAIT,    /* leave the frame at the head of the input and stop reading this side until
			  * the session is resumed (a key is announced, a hold expires) */
	VERDICT_ABORT,   /* close the session: why (log text), reason (the MQTT 5 reason code for the
			  * DISCONNECT the device gets, MQTT_RC_NONE for none) */
};

struct verdict {
	enum verdict_kind kind;
	uint8_t reason;       /* ABORT */
	const uint8_t *bytes; /* REPLACE: valid until the verdict is carried out */
	size_t len;           /* REPLACE */
	const char *why;      /* ABORT: a static string */
};

static inline struct verdict verdict_forward(void)
{
	return (struct verdict){.kind = VERDICT_FORWARD};
}

static inline struct verdict verdict_drop(void)
{
	return (struct verdict){.kind = VERDICT_DROP};
}

static inline struct verdict verdict_replace(const uint8_t *bytes, size_t len)
{
	return (struct verdict){.kind = VERDICT_REPLACE, .bytes = bytes, .len = len};
}

static inline struct verdict verdict_wait(void)
{
	return (struct verdict){.kind = VERDICT_WAIT};
}

static inline struct verdict verdict_abort(uint8_t reason, const char *why)
{
	return (struct verdict){.kind = VERDICT_ABORT, .reason = reason, .why = why};
}

#endif
