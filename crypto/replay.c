/* replay.c - anti-replay window over 64-bit message counters: the RFC 6479 bitmap, as WireGuard's
 * kernel counter.c uses it with COUNTER_BITS_TOTAL = 8192 (PROTOCOL-REQUIREMENTS R27).
 *
 * The window is a ring of `bits / 64` words. Counter c lives in block c / 64, stored in word
 * (c / 64) mod words, bit c mod 64. When the highest counter moves into a new block, the words of
 * the blocks passed over are cleared for reuse: that is what keeps an advance O(1) and free of
 * bit shifting (RFC 6479 §2.3). The price is that the word holding the newest block is also the
 * word that held the oldest block, so only the other words - bits - 64 counters behind the
 * highest - are reliably remembered. Hence the usable window is bits - 64 and anything at or below
 * highest - (bits - 64) is refused as too old, even though its bit might still be around.
 *
 * Checking is separate from accepting so the caller can reject cheaply before the AEAD and record
 * a counter only after its tag verified (R27: an attacker must not be able to move the window). */
#include "replay.h"

#include <stdlib.h>

#define REPLAY_WORD_BITS 64
#define REPLAY_BITS_MIN	 128   /* two words: at least one word of history besides the current one */
#define REPLAY_BITS_MAX	 65536 /* 8 KiB per receive key; far beyond any sane reordering */

struct replay {
	uint64_t floor;	  /* counters below this are refused (PROTOCOL.md §6.2) */
	uint64_t highest; /* valid when any is true */
	bool any;	  /* whether any counter was accepted */
	unsigned bits;
	unsigned words; /* bits / 64, a power of two */
	uint64_t map[];
};

enum px_err replay_new(unsigned bits, uint64_t floor, struct replay **out)
{
	struct replay *rp;

	if (!out)
		return PX_ERR_INVAL;
	*out = NULL;
	/* A power of two so the ring index is a mask; bounded so the allocation is small. */
	if (bits < REPLAY_BITS_MIN || bits > REPLAY_BITS_MAX || (bits & (bits - 1)) != 0)
		return PX_ERR_INVAL;
	rp = calloc(1, sizeof(*rp) + (bits / REPLAY_WORD_BITS) * sizeof(uint64_t));
	if (!rp)
		return PX_ERR_NOMEM;
	rp->floor = floor;
	rp->bits = bits;
	rp->words = bits / REPLAY_WORD_BITS;
	*out = rp;
	return PX_OK;
}

void replay_free(struct replay *rp)
{
	free(rp);
}

uint64_t replay_window_size(const struct replay *rp)
{
	return rp ? rp->bits - REPLAY_WORD_BITS : 0;
}

bool replay_highest(const struct replay *rp, uint64_t *out)
{
	if (!rp || !rp->any)
		return false;
	if (out)
		*out = rp->highest;
	return true;
}

static size_t replay_word(const struct replay *rp, uint64_t ctr)
{
	return (size_t)((ctr / REPLAY_WORD_BITS) & (rp->words - 1));
}

static uint64_t replay_bit(uint64_t ctr)
{
	return UINT64_C(1) << (ctr % REPLAY_WORD_BITS);
}

enum px_err replay_check(const struct replay *rp, uint64_t ctr)
{
	if (!rp)
		return PX_ERR_INVAL;
	if (ctr < rp->floor)
		return PX_ERR_REPLAY;
	if (!rp->any || ctr > rp->highest)
		return PX_OK;
	/* Too old: ctr <= highest - (bits - 64), written without underflow. */
	if (rp->highest - ctr >= replay_window_size(rp))
		return PX_ERR_REPLAY;
	return (rp->map[replay_word(rp, ctr)] & replay_bit(ctr)) ? PX_ERR_REPLAY : PX_OK;
}

/* Moves the window so that ctr (> highest, or the first counter) is the highest, clearing the
 * words of every block entered on the way. A jump of `words` blocks or more clears them all. */
static void replay_advance(struct replay *rp, uint64_t ctr)
{
	uint64_t cur = rp->highest / REPLAY_WORD_BITS, next = ctr / REPLAY_WORD_BITS, diff, i;

	diff = rp->any ? next - cur : rp->words;
	if (diff > rp->words)
		diff = rp->words;
	for (i = 1; i <= diff; i++)
		rp->map[(size_t)((cur + i) & (rp->words - 1))] = 0;
	rp->highest = ctr;
	rp->any = true;
}

enum px_err replay_accept(struct replay *rp, uint64_t ctr)
{
	enum px_err rc = replay_check(rp, ctr);

	if (rc != PX_OK)
		return rc;
	if (!rp->any || ctr > rp->highest)
		replay_advance(rp, ctr);
	rp->map[replay_word(rp, ctr)] |= replay_bit(ctr);
	return PX_OK;
}
