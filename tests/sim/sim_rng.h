/* sim_rng.h - the simulation's pseudo-random numbers: xoshiro256** seeded through splitmix64, so a
 * run is a pure function of its seed. Each consumer (fault plan, network, each node's core) has its
 * own stream, derived from the seed and a stream number, so adding draws to one does not shift the
 * others. Not for keys: those come from OpenSSL and only change bytes, never control flow. */
#ifndef PX_SIM_RNG_H
#define PX_SIM_RNG_H

#include <stdbool.h>
#include <stdint.h>

struct sim_rng {
	uint64_t s[4];
};

/* Seeds stream `stream` of `seed`. */
void sim_rng_seed(struct sim_rng *r, uint64_t seed, uint64_t stream);
uint64_t sim_rng_next(struct sim_rng *r);
/* Uniform in [0, n); 0 when n is 0. */
uint64_t sim_rng_below(struct sim_rng *r, uint64_t n);
/* Uniform in [lo, hi] (lo when hi <= lo). */
uint64_t sim_rng_range(struct sim_rng *r, uint64_t lo, uint64_t hi);
/* True with probability pm / 1000. */
bool sim_rng_permille(struct sim_rng *r, unsigned pm);

#endif
