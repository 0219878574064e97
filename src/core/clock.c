/* clock.c - real and virtual clocks. The only caller of clock_gettime in
 * the project: keeping it here is what makes virtual time trustworthy. */
#include <time.h>

#include "core/bl.h"
#include "core/clock.h"

uint64_t bl_clock_monotonic_us(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail with a valid clock id and pointer. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t real_now(void *ud)
{
	(void)ud;
	return bl_clock_monotonic_us();
}

static const struct bl_clock real_clock = {real_now, NULL, NULL};

const struct bl_clock *bl_clock_real(void)
{
	return &real_clock;
}

static uint64_t virtual_now(void *ud)
{
	return ((const struct bl_vclock *)ud)->now_us;
}

static void virtual_set(void *ud, uint64_t t_us)
{
	struct bl_vclock *vc = ud;

	if (t_us > vc->now_us)
		vc->now_us = t_us;
}

void bl_vclock_init(struct bl_vclock *vc, uint64_t start_us)
{
	vc->clock.now_us = virtual_now;
	vc->clock.set_us = virtual_set;
	vc->clock.ud = vc;
	vc->now_us = start_us;
}

int bl_clock_set(const struct bl_clock *c, uint64_t t_us)
{
	if (!c->set_us)
		return BL_ERR_SUPP;
	c->set_us(c->ud, t_us);
	return BL_OK;
}
