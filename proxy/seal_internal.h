/* seal_internal.h - struct seal, shared by seal.c (sealing and opening) and seal_cache.c (the
 * retained cache). Not for other modules. */
#ifndef PX_SEAL_INTERNAL_H
#define PX_SEAL_INTERNAL_H

#include "log.h"
#include "seal.h"

#define SEAL_BUCKETS 256

struct seal_entry {
	struct seal_entry *next;
	char *topic; /* NUL-terminated */
	size_t topic_len;
	uint8_t *inner_props;
	size_t props_len;
	uint8_t *payload;
	size_t payload_len;
};

struct seal {
	struct px_ctx *ctx;
	uint8_t *scratch; /* opened plaintext, grown to the largest envelope seen */
	size_t scratch_cap;
	struct seal_entry *buckets[SEAL_BUCKETS];
	size_t count, bytes;
	struct log_limit cache_log;
};

/* §5.3: the MQTT 5 properties that travel inside the envelope. */
bool seal_prop_inner_(uint8_t id, void *arg);
void seal_entry_free_(struct seal_entry *e);

#endif
