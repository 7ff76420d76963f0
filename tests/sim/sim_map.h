/* sim_map.h - a string-keyed hash map for the simulated broker (retained topics, subscriptions):
 * keys are copied, values are the caller's. Iteration order is a function of the insertions only
 * (FNV-1a, no random seed), so runs stay deterministic. */
#ifndef PX_SIM_MAP_H
#define PX_SIM_MAP_H

#include <stddef.h>

struct sim_map;

struct sim_map *sim_map_new(void); /* NULL on allocation failure */
/* free_val (may be NULL) is called on every value. Accepts NULL. */
void sim_map_free(struct sim_map *m, void (*free_val)(void *val));
void *sim_map_get(const struct sim_map *m, const char *key, size_t klen);
/* Removes every entry (free_val, may be NULL, on each value). */
void sim_map_clear(struct sim_map *m, void (*free_val)(void *val));
/* Sets key to val; the previous value (NULL if none) goes to *old. -1 on allocation failure. */
int sim_map_put(struct sim_map *m, const char *key, size_t klen, void *val, void **old);
/* Removes key; returns its value (NULL if absent). */
void *sim_map_del(struct sim_map *m, const char *key, size_t klen);
size_t sim_map_count(const struct sim_map *m);
/* Calls fn for each entry; fn must not change m. */
void sim_map_each(const struct sim_map *m, void (*fn)(void *arg, const char *key, size_t klen, void *val),
		  void *arg);

#endif
