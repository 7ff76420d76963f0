/* kx_presence.c - the presence tracker of the key exchange (kx_presence.h): the ordering rule for
 * a peer's presence messages, the transitions it reports, and this node's own session, will and
 * online/offline messages. Pure: times come in as arguments; nothing is logged or counted here. */
#include "kx_presence.h"

#include <stdio.h>
#include <string.h>

/* rank(online) < rank(offline) within one session: the will (or the clean stop) ends what the
 * online message began. */
static unsigned kx_pres_rank(uint8_t wire_state)
{
	return wire_state == PRES_STATE_OFFLINE ? 1u : 0u;
}

static unsigned kx_pres_rank_of(enum kx_pres_state s)
{
	return s == KX_PRES_OFFLINE ? 1u : 0u;
}

/* <0, 0, >0 as m is older than, the same as, or newer than what p last accepted. */
static int kx_pres_order(const struct kx_pres_peer *p, const struct pres_view *m)
{
	unsigned have = kx_pres_rank_of((enum kx_pres_state)p->state), got = kx_pres_rank(m->state);

	if (m->session != p->session)
		return m->session < p->session ? -1 : 1;
	if (got != have)
		return got < have ? -1 : 1;
	return 0;
}

enum kx_pres_verdict kx_pres_check(const struct kx_pres_peer *p, const struct pres_view *m,
				   uint64_t now_wall_ms, uint64_t max_skew_ms)
{
	uint64_t limit = now_wall_ms + max_skew_ms;
	int order;

	if (limit < now_wall_ms)
		limit = UINT64_MAX;
	/* The will carries issued_at = session, and a connection's messages are issued after it
	 * opened: a session from the future is as wrong as an issued_at from the future, and would
	 * otherwise make every later session of the peer look older. */
	if (m->issued_at_ms > limit || m->session > limit)
		return KX_PRES_CLOCK_SKEW;
	if (p->state == KX_PRES_UNKNOWN)
		return KX_PRES_ACCEPTED;
	order = kx_pres_order(p, m);
	if (order < 0)
		return KX_PRES_STALE;
	return order == 0 ? KX_PRES_DUPLICATE : KX_PRES_ACCEPTED;
}

static enum kx_pres_change kx_pres_transition(enum kx_pres_state before, enum kx_pres_state after)
{
	if (after == KX_PRES_OFFLINE)
		return before == KX_PRES_OFFLINE ? KX_PRES_NO_CHANGE : KX_PRES_WENT_AWAY;
	/* Online, and accepted: either the first news, or a session newer than any seen before (an
	 * online message never follows its own session's offline). The peer restarted or
	 * reconnected and may hold none of our keys: that is "came back", even from online. */
	return before == KX_PRES_UNKNOWN ? KX_PRES_FIRST_ONLINE : KX_PRES_CAME_BACK;
}

enum kx_pres_verdict kx_pres_accept(struct kx_pres_peer *p, const struct pres_view *m, uint64_t now_wall_ms,
				    uint64_t max_skew_ms, enum kx_pres_change *change)
{
	enum kx_pres_verdict v = kx_pres_check(p, m, now_wall_ms, max_skew_ms);
	enum kx_pres_state before = (enum kx_pres_state)p->state, after;

	*change = KX_PRES_NO_CHANGE;
	if (v != KX_PRES_ACCEPTED)
		return v;
	after = m->state == PRES_STATE_ONLINE ? KX_PRES_ONLINE : KX_PRES_OFFLINE;
	*change = kx_pres_transition(before, after);
	p->session = m->session;
	p->issued_at_ms = m->issued_at_ms;
	if (after != before)
		p->since_wall_ms = now_wall_ms;
	p->state = (uint8_t)after;
	return v;
}

void kx_pres_forget(struct kx_pres_peer *p)
{
	memset(p, 0, sizeof(*p));
}

enum kx_pres_state kx_pres_state(const struct kx_pres_peer *p)
{
	return (enum kx_pres_state)p->state;
}

bool kx_pres_away(const struct kx_pres_peer *p)
{
	return p->state == KX_PRES_OFFLINE;
}

const char *kx_pres_state_name(enum kx_pres_state s)
{
	switch (s) {
	case KX_PRES_ONLINE:
		return "online";
	case KX_PRES_OFFLINE:
		return "offline";
	case KX_PRES_UNKNOWN:
		break;
	}
	return "unknown";
}

const char *kx_pres_verdict_name(enum kx_pres_verdict v)
{
	switch (v) {
	case KX_PRES_ACCEPTED:
		return "accepted";
	case KX_PRES_DUPLICATE:
		return "duplicate";
	case KX_PRES_STALE:
		return "stale";
	case KX_PRES_CLOCK_SKEW:
		return "clock_skew";
	}
	return "unknown";
}

/* ---- this node's own presence ---- */

uint64_t kx_pres_self_connect(struct kx_pres_self *s, uint64_t now_wall_ms)
{
	/* Receivers order a node's connections by session: a reconnect within the same
	 * millisecond, or after the clock stepped back, must still get a greater one. */
	s->session = now_wall_ms > s->session ? now_wall_ms : s->session + 1;
	s->online = false;
	return s->session;
}

static enum px_err kx_pres_build(const struct kx_pres_self *s, const struct id_key *id, const char *topic,
				 const char *node_id, bool online, uint64_t issued_at_ms,
				 uint8_t out[static PRES_MAX_LEN], size_t *out_len)
{
	struct pres_info info = {node_id, online, s->session, issued_at_ms};

	if (s->session == 0) {
		*out_len = 0;
		return PX_ERR_INVAL;
	}
	return pres_build(id, topic, &info, out, out_len);
}

enum px_err kx_pres_build_will(const struct kx_pres_self *s, const struct id_key *id, const char *topic,
			       const char *node_id, uint8_t out[static PRES_MAX_LEN], size_t *out_len)
{
	return kx_pres_build(s, id, topic, node_id, false, s->session, out, out_len);
}

enum px_err kx_pres_build_online(struct kx_pres_self *s, const struct id_key *id, const char *topic,
				 const char *node_id, uint64_t now_wall_ms, uint8_t out[static PRES_MAX_LEN],
				 size_t *out_len)
{
	/* issued_at is never before the session, even if the clock stepped back since. */
	uint64_t at = now_wall_ms > s->session ? now_wall_ms : s->session;
	enum px_err rc = kx_pres_build(s, id, topic, node_id, true, at, out, out_len);

	if (rc == PX_OK)
		s->online = true;
	return rc;
}

enum px_err kx_pres_build_offline(struct kx_pres_self *s, const struct id_key *id, const char *topic,
				  const char *node_id, uint64_t now_wall_ms, uint8_t out[static PRES_MAX_LEN],
				  size_t *out_len)
{
	uint64_t at = now_wall_ms > s->session ? now_wall_ms : s->session;
	enum px_err rc = kx_pres_build(s, id, topic, node_id, false, at, out, out_len);

	if (rc == PX_OK)
		s->online = false;
	return rc;
}

bool kx_pres_self_needs_repair(const struct kx_pres_self *s, const struct pres_view *m)
{
	if (!s->online)
		return false;
	/* A newer session under this node's id is another process using the same id (a
	 * configuration error the caller may log); re-publishing would only fight it. */
	if (m->session != s->session)
		return m->session < s->session;
	return m->state != PRES_STATE_ONLINE;
}

size_t kx_pres_topic(const char *prefix, const char *node_id, char *buf, size_t len)
{
	int n;

	if (!prefix || !node_id || !buf || len == 0)
		return 0;
	n = snprintf(buf, len, "%s/presence/%s", prefix, node_id);
	if (n < 0 || (size_t)n >= len) {
		buf[0] = '\0';
		return 0;
	}
	return (size_t)n;
}
