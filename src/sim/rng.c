/* sim/rng.c - seeded PRNG and Gaussian deviates for the simulator. */
#include <math.h>

#include "sim/rng.h"

/* splitmix64 finaliser: spreads consecutive seeds over the whole state
 * space, and never yields the all-zero state xorshift cannot leave. */
static uint64_t scramble(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

void bl_rng_seed(struct bl_rng *r, uint64_t seed)
{
	r->s = scramble(seed);
	if (r->s == 0)
		r->s = 0x2545F4914F6CDD1Dull;
	r->has_spare = false;
	r->spare = 0;
}

static uint64_t rng_u64(struct bl_rng *r)
{
	uint64_t x = r->s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->s = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static double rng_uniform(struct bl_rng *r)
{
	/* 53 high bits: the low bits of xorshift* are its weakest. */
	return (double)(rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

uint32_t bl_rng_below(struct bl_rng *r, uint32_t n)
{
	/* Multiply-shift instead of modulo: no bias worth caring about for the
	 * small n used here, and no division. */
	return (uint32_t)(((rng_u64(r) >> 32) * (uint64_t)n) >> 32);
}

double bl_rng_gauss_pair(struct bl_rng *r)
{
	/* Marsaglia's polar method: one log and one sqrt per two deviates and
	 * no trigonometry, which matters at millions of latches per day. */
	double u, v, s;
	do {
		u = 2.0 * rng_uniform(r) - 1.0;
		v = 2.0 * rng_uniform(r) - 1.0;
		s = u * u + v * v;
	} while (s >= 1.0 || s == 0.0);
	double m = sqrt(-2.0 * log(s) / s);
	r->spare = v * m;
	r->has_spare = true;
	return u * m;
}
