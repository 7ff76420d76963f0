/* test_kx_presence.c - the presence tracker of the key exchange (proxy/keyex/kx_presence.c) with
 * real signed messages and a fake clock: the ordering rule (s, online) < (s, offline) < (s' > s,
 * either), duplicates and replays, a will arriving after a newer online, every arrival order of two
 * connections' messages ending in the same state, clock skew (issued_at and session, at the bound,
 * near the top of the clock), the reported transitions, this node's sessions (strictly increasing
 * even if the clock stands still or steps back), its will/online/offline builders, the repair of
 * its own retained copy, and the topic. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kx_presence.h"

#include "check.h"

#define TOPIC	 "mqseal/presence/node-a"
#define NODE	 "node-a"
#define SKEW_MS	 60000u
#define NOW_MS	 1764085600000u

struct msg {
	uint8_t buf[PRES_MAX_LEN];
	size_t len;
	struct pres_view v;
};

static struct id_key *key;
static struct id_pub *pub;

static void keys_make(void)
{
	uint8_t raw[ID_PUB_LEN];

	CHECK_EQ(id_key_generate(&key), PX_OK);
	CHECK_EQ(id_key_public(key, raw), PX_OK);
	CHECK_EQ(id_pub_new(raw, &pub), PX_OK);
}

/* A signed presence message of node-a, parsed and verified as a receiver would. */
static void msg(struct msg *m, bool online, uint64_t session, uint64_t issued_at)
{
	struct pres_info info = {NODE, online, session, issued_at};

	CHECK_EQ(pres_build(key, TOPIC, &info, m->buf, &m->len), PX_OK);
	CHECK_EQ(pres_parse(m->buf, m->len, &m->v), PX_OK);
	CHECK_EQ(pres_verify(&m->v, pub, TOPIC), PX_OK);
}

static enum kx_pres_verdict feed(struct kx_pres_peer *p, const struct msg *m, enum kx_pres_change *ch)
{
	return kx_pres_accept(p, &m->v, NOW_MS, SKEW_MS, ch);
}

/* The life of a peer: first news, a clean stop, replays, a restart, a crash. */
static void test_ordering(void)
{
	struct kx_pres_peer p = {0};
	struct msg on1, off1, on2, will2, will3, on4;
	enum kx_pres_change ch;

	msg(&on1, true, 1000, 1001);
	msg(&off1, false, 1000, 5000);
	msg(&on2, true, 2000, 2001);
	msg(&will2, false, 2000, 2000);
	msg(&will3, false, 3000, 3000);
	msg(&on4, true, 4000, 4002);
	CHECK_EQ(kx_pres_state(&p), KX_PRES_UNKNOWN);
	CHECK(!kx_pres_away(&p));
	CHECK_EQ(feed(&p, &on1, &ch), KX_PRES_ACCEPTED);
	CHECK_EQ(ch, KX_PRES_FIRST_ONLINE);
	CHECK_EQ(feed(&p, &on1, &ch), KX_PRES_DUPLICATE); /* the retained copy again */
	CHECK_EQ(ch, KX_PRES_NO_CHANGE);
	CHECK_EQ(feed(&p, &off1, &ch), KX_PRES_ACCEPTED);
	CHECK_EQ(ch, KX_PRES_WENT_AWAY);
	CHECK(kx_pres_away(&p));
	CHECK_EQ(feed(&p, &on1, &ch), KX_PRES_STALE); /* (s, online) < (s, offline) */
	CHECK_EQ(ch, KX_PRES_NO_CHANGE);
	CHECK(kx_pres_away(&p));
	CHECK_EQ(feed(&p, &on2, &ch), KX_PRES_ACCEPTED);
	CHECK_EQ(ch, KX_PRES_CAME_BACK);
	CHECK(!kx_pres_away(&p));
	CHECK_EQ(feed(&p, &off1, &ch), KX_PRES_STALE); /* the older session's offline, replayed */
	CHECK_EQ(feed(&p, &will2, &ch), KX_PRES_ACCEPTED);
	CHECK_EQ(ch, KX_PRES_WENT_AWAY);
	/* The will of a session never seen online: accepted (newer), still away, no transition. */
	CHECK_EQ(feed(&p, &will3, &ch), KX_PRES_ACCEPTED);
	CHECK_EQ(ch, KX_PRES_NO_CHANGE);
	CHECK_EQ(p.session, 3000);
	CHECK_EQ(feed(&p, &on2, &ch), KX_PRES_STALE);
	CHECK_EQ(feed(&p, &on4, &ch), KX_PRES_ACCEPTED);
	CHECK_EQ(ch, KX_PRES_CAME_BACK);
	CHECK_EQ(kx_pres_state(&p), KX_PRES_ONLINE);
	CHECK_EQ(p.issued_at_ms, 4002);
}

/* The old connection's will, delivered after the new connection's online message (a broker
 * cluster, or a slow takeover): stale, the peer stays present. */
static void test_will_after_newer_online(void)
{
	struct kx_pres_peer p = {0};
	struct msg on1, will1, on2;
	enum kx_pres_change ch;

	msg(&on1, true, 1000, 1000);
	msg(&will1, false, 1000, 1000);
	msg(&on2, true, 2000, 2000);
	CHECK_EQ(feed(&p, &on1, &ch), KX_PRES_ACCEPTED);
	/* It restarted before its will was published: online with a new session is "back". */
	CHECK_EQ(feed(&p, &on2, &ch), KX_PRES_ACCEPTED);
	CHECK_EQ(ch, KX_PRES_CAME_BACK);
	CHECK_EQ(kx_pres_check(&p, &will1.v, NOW_MS, SKEW_MS), KX_PRES_STALE);
	CHECK_EQ(feed(&p, &will1, &ch), KX_PRES_STALE);
	CHECK_EQ(ch, KX_PRES_NO_CHANGE);
	CHECK(!kx_pres_away(&p));
	CHECK_EQ(p.session, 2000);

	/* A late starter whose first news is the retained will of the newest session. */
	kx_pres_forget(&p);
	CHECK_EQ(kx_pres_state(&p), KX_PRES_UNKNOWN);
	msg(&will1, false, 2000, 2000);
	CHECK_EQ(feed(&p, &will1, &ch), KX_PRES_ACCEPTED);
	CHECK_EQ(ch, KX_PRES_WENT_AWAY);
	CHECK_EQ(feed(&p, &on2, &ch), KX_PRES_STALE);
	CHECK(kx_pres_away(&p));
}

/* Two connections' four messages in every one of the 24 orders: the receiver ends at the newest,
 * (s2, offline), and never accepts anything older than what it holds. */
static void test_every_order(void)
{
	static const int perms[24][4] = {
		{0, 1, 2, 3}, {0, 1, 3, 2}, {0, 2, 1, 3}, {0, 2, 3, 1}, {0, 3, 1, 2}, {0, 3, 2, 1},
		{1, 0, 2, 3}, {1, 0, 3, 2}, {1, 2, 0, 3}, {1, 2, 3, 0}, {1, 3, 0, 2}, {1, 3, 2, 0},
		{2, 0, 1, 3}, {2, 0, 3, 1}, {2, 1, 0, 3}, {2, 1, 3, 0}, {2, 3, 0, 1}, {2, 3, 1, 0},
		{3, 0, 1, 2}, {3, 0, 2, 1}, {3, 1, 0, 2}, {3, 1, 2, 0}, {3, 2, 0, 1}, {3, 2, 1, 0},
	};
	struct msg m[4]; /* ascending: (1000, on), (1000, off), (2000, on), (2000, off) */
	enum kx_pres_change ch;
	size_t i, j;

	msg(&m[0], true, 1000, 1001);
	msg(&m[1], false, 1000, 1000);
	msg(&m[2], true, 2000, 2001);
	msg(&m[3], false, 2000, 2000);
	for (i = 0; i < 24; i++) {
		struct kx_pres_peer p = {0};
		int newest = -1;

		for (j = 0; j < 4; j++) {
			int k = perms[i][j];
			enum kx_pres_verdict v = feed(&p, &m[k], &ch);

			CHECK_EQ(v == KX_PRES_ACCEPTED, k > newest);
			if (k > newest)
				newest = k;
		}
		CHECK_EQ(p.session, 2000);
		CHECK(kx_pres_away(&p));
		for (j = 0; j < 4; j++) /* every replay afterwards */
			CHECK(feed(&p, &m[j], &ch) != KX_PRES_ACCEPTED);
	}
}

/* issued_at and session at most max_skew ahead; a refused message changes nothing. */
static void test_skew(void)
{
	struct kx_pres_peer p = {0}, before;
	struct msg m;
	enum kx_pres_change ch = KX_PRES_CAME_BACK;

	msg(&m, true, 1000, NOW_MS + SKEW_MS + 1);
	CHECK_EQ(kx_pres_check(&p, &m.v, NOW_MS, SKEW_MS), KX_PRES_CLOCK_SKEW);
	CHECK_EQ(feed(&p, &m, &ch), KX_PRES_CLOCK_SKEW);
	CHECK_EQ(ch, KX_PRES_NO_CHANGE);
	CHECK_EQ(kx_pres_state(&p), KX_PRES_UNKNOWN);
	msg(&m, false, NOW_MS + SKEW_MS + 1, 1000); /* a session from the future */
	CHECK_EQ(feed(&p, &m, &ch), KX_PRES_CLOCK_SKEW);
	msg(&m, true, NOW_MS + SKEW_MS, NOW_MS + SKEW_MS); /* at the bound */
	CHECK_EQ(feed(&p, &m, &ch), KX_PRES_ACCEPTED);
	memcpy(&before, &p, sizeof(p));
	msg(&m, false, NOW_MS + SKEW_MS, NOW_MS + SKEW_MS + 1);
	CHECK_EQ(feed(&p, &m, &ch), KX_PRES_CLOCK_SKEW);
	CHECK_MEM(&p, &before, sizeof(p));
	/* now + skew past the top of the clock does not wrap into "everything is skewed" */
	CHECK_EQ(kx_pres_check(&p, &m.v, UINT64_MAX - 5, SKEW_MS), KX_PRES_ACCEPTED);
	/* kx_pres_check alone never records */
	CHECK_MEM(&p, &before, sizeof(p));
}

/* since_wall_ms moves only when the state changes. */
static void test_since(void)
{
	struct kx_pres_peer p = {0};
	struct msg on1, on2, will3;
	enum kx_pres_change ch;

	msg(&on1, true, 1000, 1000);
	msg(&on2, true, 2000, 2000);
	msg(&will3, false, 3000, 3000);
	CHECK_EQ(kx_pres_accept(&p, &on1.v, 10000, SKEW_MS, &ch), KX_PRES_ACCEPTED);
	CHECK_EQ(p.since_wall_ms, 10000);
	CHECK_EQ(kx_pres_accept(&p, &on2.v, 20000, SKEW_MS, &ch), KX_PRES_ACCEPTED);
	CHECK_EQ(p.since_wall_ms, 10000);
	CHECK_EQ(kx_pres_accept(&p, &will3.v, 30000, SKEW_MS, &ch), KX_PRES_ACCEPTED);
	CHECK_EQ(p.since_wall_ms, 30000);
}

/* This node's sessions and messages. */
static void test_self(void)
{
	struct kx_pres_self s = {0};
	uint8_t out[PRES_MAX_LEN];
	struct pres_view v;
	size_t len = 9;

	CHECK_EQ(kx_pres_build_will(&s, key, TOPIC, NODE, out, &len), PX_ERR_INVAL); /* no session */
	CHECK_EQ(len, 0);
	CHECK_EQ(kx_pres_self_connect(&s, 5000), 5000);
	CHECK_EQ(kx_pres_self_connect(&s, 5000), 5001); /* same millisecond */
	CHECK_EQ(kx_pres_self_connect(&s, 4000), 5002); /* the clock stepped back */
	CHECK_EQ(kx_pres_self_connect(&s, 9000), 9000);

	CHECK_EQ(kx_pres_build_will(&s, key, TOPIC, NODE, out, &len), PX_OK);
	CHECK_EQ(pres_parse(out, len, &v), PX_OK);
	CHECK_EQ(pres_verify(&v, pub, TOPIC), PX_OK);
	CHECK_EQ(v.state, PRES_STATE_OFFLINE);
	CHECK_EQ(v.session, 9000);
	CHECK_EQ(v.issued_at_ms, 9000);
	CHECK(!s.online);

	CHECK_EQ(kx_pres_build_online(&s, key, TOPIC, NODE, 9100, out, &len), PX_OK);
	CHECK_EQ(pres_parse(out, len, &v), PX_OK);
	CHECK_EQ(pres_verify(&v, pub, TOPIC), PX_OK);
	CHECK_EQ(v.state, PRES_STATE_ONLINE);
	CHECK_EQ(v.session, 9000);
	CHECK_EQ(v.issued_at_ms, 9100);
	CHECK(s.online);
	CHECK_EQ(kx_pres_build_online(&s, key, TOPIC, NODE, 8000, out, &len), PX_OK);
	CHECK_EQ(pres_parse(out, len, &v), PX_OK);
	CHECK_EQ(v.issued_at_ms, 9000); /* never before its session */

	CHECK_EQ(kx_pres_build_offline(&s, key, TOPIC, NODE, 9900, out, &len), PX_OK);
	CHECK_EQ(pres_parse(out, len, &v), PX_OK);
	CHECK_EQ(pres_verify(&v, pub, TOPIC), PX_OK);
	CHECK_EQ(v.state, PRES_STATE_OFFLINE);
	CHECK_EQ(v.session, 9000);
	CHECK_EQ(v.issued_at_ms, 9900);
	CHECK(!s.online);
	/* a topic that does not end in the node id is refused, not signed */
	CHECK_EQ(kx_pres_build_online(&s, key, "mqseal/presence/node-b", NODE, 9100, out, &len), PX_ERR_INVAL);
	CHECK(!s.online);
}

/* What this node's messages look like to a peer, across a restart: will, online, clean stop,
 * the next connection's online. */
static void test_self_seen_by_peer(void)
{
	struct kx_pres_self s = {0};
	struct kx_pres_peer p = {0};
	struct msg m;
	enum kx_pres_change ch;

	kx_pres_self_connect(&s, 1000);
	CHECK_EQ(kx_pres_build_online(&s, key, TOPIC, NODE, 1001, m.buf, &m.len), PX_OK);
	CHECK_EQ(pres_parse(m.buf, m.len, &m.v), PX_OK);
	CHECK_EQ(feed(&p, &m, &ch), KX_PRES_ACCEPTED);
	CHECK_EQ(ch, KX_PRES_FIRST_ONLINE);
	CHECK_EQ(kx_pres_build_offline(&s, key, TOPIC, NODE, 1500, m.buf, &m.len), PX_OK);
	CHECK_EQ(pres_parse(m.buf, m.len, &m.v), PX_OK);
	CHECK_EQ(feed(&p, &m, &ch), KX_PRES_ACCEPTED);
	CHECK_EQ(ch, KX_PRES_WENT_AWAY);
	/* the will of the same connection, should the DISCONNECT have been lost */
	CHECK_EQ(kx_pres_build_will(&s, key, TOPIC, NODE, m.buf, &m.len), PX_OK);
	CHECK_EQ(pres_parse(m.buf, m.len, &m.v), PX_OK);
	CHECK_EQ(feed(&p, &m, &ch), KX_PRES_DUPLICATE);
	kx_pres_self_connect(&s, 1000); /* restarted within the same millisecond */
	CHECK_EQ(kx_pres_build_online(&s, key, TOPIC, NODE, 1000, m.buf, &m.len), PX_OK);
	CHECK_EQ(pres_parse(m.buf, m.len, &m.v), PX_OK);
	CHECK_EQ(feed(&p, &m, &ch), KX_PRES_ACCEPTED);
	CHECK_EQ(ch, KX_PRES_CAME_BACK);
}

static void test_repair(void)
{
	struct kx_pres_self s = {0};
	struct msg m;
	uint8_t out[PRES_MAX_LEN];
	size_t len;

	kx_pres_self_connect(&s, 2000);
	msg(&m, false, 1000, 1000);
	CHECK(!kx_pres_self_needs_repair(&s, &m.v)); /* not online yet: nothing to repair */
	CHECK_EQ(kx_pres_build_online(&s, key, TOPIC, NODE, 2001, out, &len), PX_OK);
	CHECK(kx_pres_self_needs_repair(&s, &m.v)); /* an older connection's will */
	msg(&m, true, 1000, 1000);
	CHECK(kx_pres_self_needs_repair(&s, &m.v));
	msg(&m, true, 2000, 2001);
	CHECK(!kx_pres_self_needs_repair(&s, &m.v)); /* our own online */
	msg(&m, false, 2000, 2000);
	CHECK(kx_pres_self_needs_repair(&s, &m.v)); /* our own will while we are up */
	msg(&m, true, 3000, 3000);
	CHECK(!kx_pres_self_needs_repair(&s, &m.v)); /* another process with our id: no fight */
}

static void test_topic_and_names(void)
{
	char buf[64];

	CHECK_EQ(kx_pres_topic("mqseal", NODE, buf, sizeof(buf)), strlen(TOPIC));
	CHECK(strcmp(buf, TOPIC) == 0);
	CHECK_EQ(kx_pres_topic("mqseal", NODE, buf, strlen(TOPIC)), 0); /* no room for the NUL */
	CHECK_EQ(buf[0], '\0');
	CHECK_EQ(kx_pres_topic(NULL, NODE, buf, sizeof(buf)), 0);
	CHECK(strcmp(kx_pres_state_name(KX_PRES_ONLINE), "online") == 0);
	CHECK(strcmp(kx_pres_state_name(KX_PRES_OFFLINE), "offline") == 0);
	CHECK(strcmp(kx_pres_state_name(KX_PRES_UNKNOWN), "unknown") == 0);
	CHECK(strcmp(kx_pres_verdict_name(KX_PRES_STALE), "stale") == 0);
	CHECK(strcmp(kx_pres_verdict_name(KX_PRES_CLOCK_SKEW), "clock_skew") == 0);
	CHECK(strcmp(kx_pres_verdict_name(KX_PRES_DUPLICATE), "duplicate") == 0);
	CHECK(strcmp(kx_pres_verdict_name(KX_PRES_ACCEPTED), "accepted") == 0);
}

int main(void)
{
	keys_make();
	test_ordering();
	test_will_after_newer_online();
	test_every_order();
	test_skew();
	test_since();
	test_self();
	test_self_seen_by_peer();
	test_repair();
	test_topic_and_names();
	id_key_free(key);
	id_pub_free(pub);
	CHECK_DONE();
}
