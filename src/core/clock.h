/* clock.h - the injectable clock: real (CLOCK_MONOTONIC) or virtual.
 *
 * Everything that needs "now" asks a struct bl_clock, never the system, so
 * the same engine runs real hardware in real time and virtual Batlabs in
 * virtual time. This module (and the event loop's poll) is the only place
 * that talks to the system clock.
 *
 * Times are absolute microsecond counts. The real clock counts from an
 * arbitrary origin (boot); a virtual clock starts where its owner says.
 */
#ifndef BL_CLOCK_H
#define BL_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

struct bl_clock {
	uint64_t (*now_us)(void *ud);
	/* Virtual clocks only: move time forward to t (never backwards).
	 * NULL for the real clock, whose time passes by itself. */
	void (*set_us)(void *ud, uint64_t t_us);
	void *ud;
};

/* A virtual clock: a settable counter. Embed it; hand out &vc->clock. */
struct bl_vclock {
	struct bl_clock clock;
	uint64_t now_us;
};

/* The process-wide real clock (CLOCK_MONOTONIC, microseconds). */
const struct bl_clock *bl_clock_real(void);
/* Read CLOCK_MONOTONIC directly, in microseconds. */
uint64_t bl_clock_monotonic_us(void);

/* Make vc a virtual clock reading start_us. */
void bl_vclock_init(struct bl_vclock *vc, uint64_t start_us);

static inline uint64_t bl_clock_now(const struct bl_clock *c)
{
	return c->now_us(c->ud);
}

static inline bool bl_clock_is_virtual(const struct bl_clock *c)
{
	return c->set_us != 0;
}

/* Virtual clocks: advance to t_us if that is later than now (time never
 * goes backwards). Real clock: BL_ERR_SUPP. */
int bl_clock_set(const struct bl_clock *c, uint64_t t_us);

#endif
