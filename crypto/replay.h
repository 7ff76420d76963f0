/* replay.h - anti-replay sliding window over 64-bit counters (RFC 6479 bitmap, PROTOCOL.md §6).
 * Use: replay_check before the AEAD (cheap reject), replay_accept only after the tag verified. */
#ifndef PX_REPLAY_H
#define PX_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

#include "px_err.h"

#define REPLAY_BITS_DEFAULT 8192 /* WireGuard's COUNTER_BITS_TOTAL */

struct replay;

/* bits: a power of two from 128 to 65536. Counters below floor are refused (PROTOCOL.md §6.2). */
enum px_err replay_new(unsigned bits, uint64_t floor, struct replay **out);
void replay_free(struct replay *rp); /* accepts NULL */
/* PX_OK if ctr could be new; PX_ERR_REPLAY if seen, below the floor or behind the window. */
enum px_err replay_check(const struct replay *rp, uint64_t ctr);
/* Records ctr (call only after authentication). Returns PX_ERR_REPLAY if it was not new. */
enum px_err replay_accept(struct replay *rp, uint64_t ctr);
/* The largest counter accepted so far, and whether any was. */
bool replay_highest(const struct replay *rp, uint64_t *out);
/* Usable window: counters greater than highest - window_size() are judged by the bitmap. */
uint64_t replay_window_size(const struct replay *rp);

#endif
