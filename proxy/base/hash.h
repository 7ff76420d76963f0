/* hash.h - FNV-1a, for the node's small hash tables keyed by names that devices choose (client ids,
 * topics): cheap, and flooding a table only costs its owner's own lookups. */
#ifndef PX_HASH_H
#define PX_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t px_fnv1a(const uint8_t *p, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

#endif
