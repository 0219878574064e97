/* sim/rng.h - the virtual Batlab's own seeded random numbers.
 *
 * Every random quantity of the simulator (measurement noise, garbage bytes)
 * comes from one of these, so a seed fixes a run completely and two runs
 * with the same seed and the same host traffic are byte-identical. The
 * generator is a 64-bit xorshift with a multiplicative output stage, seeded
 * through a splitmix64 scramble so that nearby seeds give unrelated streams.
 */
#ifndef BL_SIM_RNG_H
#define BL_SIM_RNG_H

#include <stdbool.h>
#include <stdint.h>

struct bl_rng {
	uint64_t s;
	double spare;        /* second value of the last polar-method pair */
	bool has_spare;
};

void bl_rng_seed(struct bl_rng *r, uint64_t seed);
/* Uniform integer in [0, n), n > 0. */
uint32_t bl_rng_below(struct bl_rng *r, uint32_t n);
/* The polar method's next pair: returns one deviate, keeps the other. */
double bl_rng_gauss_pair(struct bl_rng *r);

/* Standard normal deviate (mean 0, variance 1). Inline: every other call
 * only hands out the spare. */
static inline double bl_rng_gauss(struct bl_rng *r)
{
	if (r->has_spare) {
		r->has_spare = false;
		return r->spare;
	}
	return bl_rng_gauss_pair(r);
}

#endif
