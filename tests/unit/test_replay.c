/* test_replay.c - the RFC 6479 anti-replay window (crypto/replay.c): in-order counters, duplicates,
 * reordering inside the window, the exact window edge, too-old counters, a jump of more than the
 * window after which old counters are refused, the floor, UINT64_MAX, check not modifying
 * anything, and a cross-check against a plain reference model over a pseudo-random stream. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "replay.h"

static struct replay *mk(unsigned bits, uint64_t floor)
{
	struct replay *rp = NULL;

	CHECK_EQ(replay_new(bits, floor, &rp), PX_OK);
	if (!rp)
		exit(1);
	return rp;
}

static void t_new(void)
{
	struct replay *rp = (struct replay *)&rp;
	uint64_t h = 99;

	CHECK_EQ(replay_new(64, 0, &rp), PX_ERR_INVAL); /* below the minimum */
	CHECK(rp == NULL);
	CHECK_EQ(replay_new(0, 0, &rp), PX_ERR_INVAL);
	CHECK_EQ(replay_new(192, 0, &rp), PX_ERR_INVAL); /* not a power of two */
	CHECK_EQ(replay_new(131072, 0, &rp), PX_ERR_INVAL);
	CHECK_EQ(replay_new(128, 0, NULL), PX_ERR_INVAL);
	CHECK_EQ(replay_new(65536, 0, &rp), PX_OK);
	replay_free(rp);
	rp = mk(REPLAY_BITS_DEFAULT, 0);
	/* Usable window = bits - 64 (R27: 8192 bits -> 8128). */
	CHECK_EQ(replay_window_size(rp), 8128);
	CHECK(!replay_highest(rp, &h));
	CHECK_EQ(h, 99);
	CHECK_EQ(replay_check(NULL, 1), PX_ERR_INVAL);
	CHECK_EQ(replay_accept(NULL, 1), PX_ERR_INVAL);
	CHECK(!replay_highest(NULL, &h));
	CHECK_EQ(replay_window_size(NULL), 0);
	replay_free(rp);
	replay_free(NULL);
}

static void t_in_order_and_duplicates(void)
{
	struct replay *rp = mk(REPLAY_BITS_DEFAULT, 0);
	uint64_t i, h = 0;

	for (i = 0; i < 20000; i++)
		CHECK_EQ(replay_accept(rp, i), PX_OK);
	CHECK(replay_highest(rp, &h));
	CHECK_EQ(h, 19999);
	/* Every counter still inside the window is a duplicate now. */
	for (i = 19999; i > 19999 - 8128; i--)
		CHECK_EQ(replay_check(rp, i), PX_ERR_REPLAY);
	CHECK_EQ(replay_accept(rp, 19999), PX_ERR_REPLAY);
	CHECK_EQ(replay_accept(rp, 15000), PX_ERR_REPLAY);
	CHECK_EQ(replay_accept(rp, 20000), PX_OK);
	replay_free(rp);
}

/* Counters arriving out of order inside the window are accepted once each. */
static void t_reordered(void)
{
	struct replay *rp = mk(REPLAY_BITS_DEFAULT, 0);
	uint64_t i;

	CHECK_EQ(replay_accept(rp, 1000), PX_OK);
	for (i = 999; i > 500; i -= 3)
		CHECK_EQ(replay_accept(rp, i), PX_OK);
	for (i = 999; i > 500; i -= 3)
		CHECK_EQ(replay_accept(rp, i), PX_ERR_REPLAY);
	/* The ones skipped above are still new. */
	CHECK_EQ(replay_accept(rp, 998), PX_OK);
	CHECK_EQ(replay_accept(rp, 0), PX_OK);
	CHECK_EQ(replay_accept(rp, 0), PX_ERR_REPLAY);
	/* Reordering across a block (64-counter word) boundary. */
	CHECK_EQ(replay_accept(rp, 1100), PX_OK);
	CHECK_EQ(replay_accept(rp, 1023), PX_OK);
	CHECK_EQ(replay_accept(rp, 1024), PX_OK);
	CHECK_EQ(replay_accept(rp, 1023), PX_ERR_REPLAY);
	replay_free(rp);
}

/* With highest = H and window W = bits - 64: H - W + 1 is the oldest acceptable, H - W too old.
 * Checked at several offsets of H inside its 64-counter block, for two window sizes. */
static void t_edge(void)
{
	static const unsigned sizes[] = {128, REPLAY_BITS_DEFAULT};
	static const uint64_t offs[] = {0, 1, 31, 62, 63};
	size_t s, o;

	for (s = 0; s < 2; s++) {
		for (o = 0; o < 5; o++) {
			struct replay *rp = mk(sizes[s], 0);
			uint64_t w = replay_window_size(rp), h = 64 * 1000 + offs[o];

			CHECK_EQ(w, sizes[s] - 64);
			CHECK_EQ(replay_accept(rp, h), PX_OK);
			CHECK_EQ(replay_check(rp, h - w), PX_ERR_REPLAY);
			CHECK_EQ(replay_accept(rp, h - w), PX_ERR_REPLAY);
			CHECK_EQ(replay_check(rp, h - w - 1), PX_ERR_REPLAY);
			CHECK_EQ(replay_check(rp, 0), PX_ERR_REPLAY);
			CHECK_EQ(replay_check(rp, h - w + 1), PX_OK);
			CHECK_EQ(replay_accept(rp, h - w + 1), PX_OK);
			CHECK_EQ(replay_accept(rp, h - w + 1), PX_ERR_REPLAY);
			/* Advancing by one moves the edge by one. */
			CHECK_EQ(replay_accept(rp, h + 1), PX_OK);
			CHECK_EQ(replay_check(rp, h - w + 1), PX_ERR_REPLAY);
			CHECK_EQ(replay_check(rp, h - w + 2), PX_OK);
			replay_free(rp);
		}
	}
}

/* A forward jump larger than the whole bitmap: everything before is too old, and the bits of the
 * old blocks must not leak into the new ones (the ring words are cleared). */
static void t_big_jump(void)
{
	struct replay *rp = mk(REPLAY_BITS_DEFAULT, 0);
	uint64_t i, far = 100 + 3 * REPLAY_BITS_DEFAULT + 5;

	for (i = 0; i < 100; i++)
		CHECK_EQ(replay_accept(rp, i), PX_OK);
	CHECK_EQ(replay_accept(rp, far), PX_OK);
	for (i = 0; i < 100; i++)
		CHECK_EQ(replay_check(rp, i), PX_ERR_REPLAY);
	CHECK_EQ(replay_check(rp, far - 8128), PX_ERR_REPLAY);
	/* Counters that share ring words with the old ones (same index mod bits) are new. */
	for (i = 0; i < 100; i++)
		CHECK_EQ(replay_check(rp, i + 3 * REPLAY_BITS_DEFAULT), PX_OK);
	CHECK_EQ(replay_accept(rp, far - 8127), PX_OK);
	CHECK_EQ(replay_accept(rp, far - 1), PX_OK);
	CHECK_EQ(replay_accept(rp, far), PX_ERR_REPLAY);
	/* A jump of less than the window keeps the recent history. */
	CHECK_EQ(replay_accept(rp, far + 4000), PX_OK);
	CHECK_EQ(replay_check(rp, far - 1), PX_ERR_REPLAY);
	CHECK_EQ(replay_check(rp, far - 2), PX_OK);
	replay_free(rp);
}

static void t_floor(void)
{
	struct replay *rp = mk(REPLAY_BITS_DEFAULT, 5000);
	uint64_t h;

	CHECK_EQ(replay_check(rp, 0), PX_ERR_REPLAY);
	CHECK_EQ(replay_accept(rp, 4999), PX_ERR_REPLAY);
	CHECK(!replay_highest(rp, &h)); /* a refused counter is not recorded */
	CHECK_EQ(replay_accept(rp, 5000), PX_OK);
	CHECK_EQ(replay_accept(rp, 5002), PX_OK);
	CHECK_EQ(replay_accept(rp, 4999), PX_ERR_REPLAY); /* inside the window, but below the floor */
	CHECK_EQ(replay_accept(rp, 5001), PX_OK);
	replay_free(rp);
	rp = mk(128, UINT64_MAX);
	CHECK_EQ(replay_accept(rp, UINT64_MAX - 1), PX_ERR_REPLAY);
	CHECK_EQ(replay_accept(rp, UINT64_MAX), PX_OK);
	replay_free(rp);
}

static void t_max(void)
{
	struct replay *rp = mk(REPLAY_BITS_DEFAULT, 0);
	uint64_t h = 0;

	CHECK_EQ(replay_accept(rp, UINT64_MAX - 10), PX_OK);
	CHECK_EQ(replay_accept(rp, UINT64_MAX), PX_OK);
	CHECK(replay_highest(rp, &h));
	CHECK(h == UINT64_MAX);
	CHECK_EQ(replay_accept(rp, UINT64_MAX), PX_ERR_REPLAY);
	CHECK_EQ(replay_accept(rp, UINT64_MAX - 10), PX_ERR_REPLAY);
	CHECK_EQ(replay_accept(rp, UINT64_MAX - 1), PX_OK);
	CHECK_EQ(replay_check(rp, UINT64_MAX - 8128), PX_ERR_REPLAY);
	CHECK_EQ(replay_check(rp, UINT64_MAX - 8127), PX_OK);
	CHECK_EQ(replay_check(rp, 0), PX_ERR_REPLAY);
	replay_free(rp);
	/* The very first counter may be UINT64_MAX, and then 0 is far too old. */
	rp = mk(128, 0);
	CHECK_EQ(replay_accept(rp, UINT64_MAX), PX_OK);
	CHECK_EQ(replay_check(rp, 0), PX_ERR_REPLAY);
	replay_free(rp);
}

/* replay_check never changes the state: checking a new counter many times leaves it new, and the
 * window does not move. */
static void t_check_read_only(void)
{
	struct replay *rp = mk(REPLAY_BITS_DEFAULT, 0);
	uint64_t h = 0;
	int i;

	CHECK_EQ(replay_check(rp, 10), PX_OK);
	CHECK(!replay_highest(rp, &h));
	CHECK_EQ(replay_accept(rp, 10), PX_OK);
	for (i = 0; i < 3; i++) {
		CHECK_EQ(replay_check(rp, 9), PX_OK);
		CHECK_EQ(replay_check(rp, 1000000), PX_OK);
	}
	CHECK(replay_highest(rp, &h));
	CHECK_EQ(h, 10);
	CHECK_EQ(replay_accept(rp, 9), PX_OK);
	CHECK_EQ(replay_accept(rp, 9), PX_ERR_REPLAY);
	replay_free(rp);
}

/* A plain model: a set of every accepted counter (in a big array) and the same window rule. */
static void t_model(void)
{
	enum { SPAN = 40000 };
	unsigned char *seen = calloc(SPAN, 1);
	struct replay *rp = mk(256, 0);
	uint64_t x = 88172645463325252ull, hi = 0, c;
	int any = 0, i, mismatch = 0;

	if (!seen)
		exit(1);
	for (i = 0; i < 200000; i++) {
		int want;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
		/* Mostly small steps around the highest, sometimes a jump back or forward. */
		c = any ? hi + (x % 300) - 250 : 0;
		if (x % 97 == 0)
			c = hi + (x % 2000);
		if (c >= SPAN || (any && c > hi + 5000))
			continue;
		want = !seen[c] && (!any || c > hi || hi - c < 256 - 64);
		if ((replay_check(rp, c) == PX_OK) != want)
			mismatch++;
		if ((replay_accept(rp, c) == PX_OK) != want)
			mismatch++;
		if (want) {
			seen[c] = 1;
			if (!any || c > hi)
				hi = c;
			any = 1;
		}
	}
	CHECK_EQ(mismatch, 0);
	free(seen);
	replay_free(rp);
}

int main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	t_new();
	t_in_order_and_duplicates();
	t_reordered();
	t_edge();
	t_big_jump();
	t_floor();
	t_max();
	t_check_read_only();
	t_model();
	CHECK_DONE();
}
