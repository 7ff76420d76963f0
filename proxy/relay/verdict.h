/* verdict.h - the one interface between the MQTT session (relay/session.c, which owns the two
 * sides and the bytes between them) and the per-packet logic (policy, seal/open, held messages,
 * SUBACK fix-ups): for each complete frame at the head of a side's input, the logic returns one
 * verdict, and the session carries it out (ARCHITECTURE.md, "One verdict per packet"). */
#ifndef PX_VERDICT_H
#define PX_VERDICT_H

#include <stdbool.h>
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
	uint8_t reason;       /* ABORT; MQTT_RC_NONE: the session takes it from why (mqtt_reason_of,
			       * the one mapping), which is what every handler does today */
	bool protocol;        /* ABORT: the packet broke the protocol (the session counts it; from the
			       * broker also in mqseal_broker_malformed_total). false: the session cannot
			       * go on (out of memory, ...), not a codec reason */
	const uint8_t *bytes; /* REPLACE: valid until the verdict is carried out */
	size_t len;           /* REPLACE */
	void *owned;          /* REPLACE: heap memory holding bytes, freed once they are queued */
	const char *why;      /* ABORT: a static string. FORWARD, DROP, REPLACE: NULL, or the session
			       * closes once they are carried out, after flushing what is queued and
			       * without counting a protocol error (verdict_then_close): a CONNECT refused
			       * with its CONNACK, a 3.x PUBLISH refused by closing, the broker's ack of
			       * the last in-flight publish of a stopping session */
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

/* REPLACE with bytes in buf, which the verdict owns (malloc'd; freed by the session). */
static inline struct verdict verdict_replace_owned(uint8_t *buf, size_t len)
{
	return (struct verdict){.kind = VERDICT_REPLACE, .bytes = buf, .len = len, .owned = buf};
}

static inline struct verdict verdict_wait(void)
{
	return (struct verdict){.kind = VERDICT_WAIT};
}

static inline struct verdict verdict_abort(uint8_t reason, const char *why)
{
	return (struct verdict){.kind = VERDICT_ABORT, .reason = reason, .why = why};
}

/* ABORT for a packet that breaks the protocol (reason from why, mqtt_reason_of). */
static inline struct verdict verdict_protocol_error(const char *why)
{
	return (struct verdict){.kind = VERDICT_ABORT, .protocol = true, .why = why};
}

/* v (FORWARD, DROP or REPLACE), then an orderly close for why (see struct verdict, why). */
static inline struct verdict verdict_then_close(struct verdict v, const char *why)
{
	v.why = why;
	return v;
}

#endif
