/* marks.h - retained order marks (PROTOCOL.md §6.3): per sealed topic, the newest message with
 * retain_intent this node accepted, live or retained, from any sender and for any device. A
 * retained delivery older than the mark is a rollback; only the exact marked message may be
 * repeated to a new subscription. Node-wide, independent of device state and of keys, so neither
 * a reconnect nor a rotation resets it; saved to <state_dir>/marks so a restart does not either.
 * Topics are known by digest only. Bounded: MARKS_MAX topics (a full table refuses new topics). */
#ifndef PX_MARKS_H
#define PX_MARKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "envelope.h"

#define MARKS_DIGEST_LEN 16  /* first 16 bytes of SHA-256 of the topic name (as in the AAD) */
#define MARKS_MAX	 16384 /* topics remembered: 16384 * 64 bytes = 1 MiB of slots at most */

struct marks;

/* One accepted message with retain_intent: what orders it (sealed_at, then (epoch, counter)) and
 * what identifies it (key id, counter). */
struct mark {
	uint64_t sealed_at;
	uint64_t epoch;
	uint64_t counter;
	uint8_t key_id[ENV_KEY_ID_LEN];
};

enum marks_order {
	MARKS_NEWER, /* newer than the mark, or the topic has none */
	MARKS_SAME,  /* the marked message itself */
	MARKS_OLDER, /* older than the mark: a rollback */
};

struct marks *marks_new(void); /* NULL on allocation failure */
void marks_free(struct marks *m); /* accepts NULL */
enum marks_order marks_compare(const struct marks *m, const uint8_t digest[static MARKS_DIGEST_LEN],
			       const struct mark *msg);
/* Records msg as the topic's mark if it is newer. false if the table is full (not recorded). */
bool marks_record(struct marks *m, const uint8_t digest[static MARKS_DIGEST_LEN], const struct mark *msg);
size_t marks_count(const struct marks *m);
/* A will is sealed when its device connects and published by the broker at any later time, so its
 * sealed_at says nothing about its place among the topic's values: it is ordered by when this node
 * first received it (now_ms, wall clock), remembered for the last MARKS_WILLS wills (in memory
 * only). Returns the time to order the will by. */
#define MARKS_WILLS 1024
uint64_t marks_will_time(struct marks *m, const uint8_t key_id[static ENV_KEY_ID_LEN], uint64_t counter,
			 uint64_t now_ms);
/* Recorded since the last marks_save (or load)? */
bool marks_dirty(const struct marks *m);

/* The file: "mqseal-marks 1", then one line per topic "<digest hex> <sealed_at> <epoch> <counter>
 * <key id hex>". Save writes a temporary file, fsyncs and renames it over path. 0 or -1 (errno).
 * Load: a missing file is no error; unreadable lines are skipped. */
int marks_save(struct marks *m, const char *path);
int marks_load(struct marks *m, const char *path);

#endif
