/* stats.c - names of the counter labels (the values of {reason="..."} in /metrics). */
#include "stats.h"

static const char *const stats_drop_names[DROP__COUNT] = {
	[DROP_EMPTY] = "empty",       [DROP_MALFORMED] = "malformed", [DROP_UNKNOWN_KEY] = "unknown_key",
	[DROP_STALE_KEY] = "stale_key", [DROP_LIMIT] = "limit",       [DROP_REPLAY] = "replay",
	[DROP_AUTH] = "auth",         [DROP_PLAINTEXT] = "plaintext", [DROP_POLICY] = "policy",
	[DROP_UNAUTHORIZED] = "unauthorized", [DROP_BEFORE_SUB] = "before_subscription",
	[DROP_ROLLBACK] = "rollback", [DROP_TOO_LARGE] = "too_large",
	[DROP_NOT_A_READER] = "not_a_reader", [DROP_WRITER_NOT_PROVEN] = "writer_not_proven",
};

static const char *const stats_reject_names[REJECT__COUNT] = {
	[REJECT_MALFORMED] = "malformed",         [REJECT_VERSION] = "version",
	[REJECT_UNKNOWN_PEER] = "unknown_peer",   [REJECT_WRONG_TOPIC] = "wrong_topic",
	[REJECT_STALE] = "stale",                 [REJECT_CLOCK_SKEW] = "clock_skew",
	[REJECT_EXPIRED] = "expired",             [REJECT_BAD_SIGNATURE] = "bad_signature",
	[REJECT_BAD_WRAP] = "bad_wrap",           [REJECT_RATE_LIMITED] = "rate_limited",
};

const char *stats_drop_name(enum stats_drop d)
{
	return (unsigned)d < DROP__COUNT ? stats_drop_names[d] : "?";
}

const char *stats_reject_name(enum stats_reject r)
{
	return (unsigned)r < REJECT__COUNT ? stats_reject_names[r] : "?";
}
