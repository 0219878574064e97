/* link/sim.c - a link to an in-process virtual Batlab.
 *
 * There is no descriptor: the link is a loop "source" whose next-event time
 * is the device's, so in virtual time the loop jumps straight to the next
 * reply or stream packet. Every call hands the device the clock's current
 * time; the device never reads a clock itself.
 */
#include <stdlib.h>

#include "core/bl.h"
#include "link/link.h"
#include "sim/simdev.h"

#define MOD "link"

struct sim_link {
	struct bl_link base;
	struct bl_simdev *dev;
	bool own;
	const struct bl_clock *clock;
	struct bl_source src;
	bool close_told;        /* on_data has seen the close */
	uint64_t stall_at;      /* see sim_next */
};

static uint64_t now_of(const struct sim_link *s)
{
	return bl_clock_now(s->clock);
}

static bool close_unplugged(struct sim_link *s)
{
	s->base.closed = true;
	bl_link_set_error(&s->base, "%s: device unplugged", s->base.name);
	BL_INFO(MOD, "%s: closed (unplugged)", s->base.name);
	return true;
}

/* Asked at every read, write and dispatch: the common answer is short. */
static inline bool check_unplugged(struct sim_link *s)
{
	if (s->base.closed)
		return true;
	return bl_simdev_unplugged(s->dev) && close_unplugged(s);
}

static int sim_write(struct bl_link *l, const uint8_t *data, size_t n)
{
	struct sim_link *s = (struct sim_link *)l;

	if (n > (size_t)INT32_MAX)
		return BL_ERR_ARG;
	if (check_unplugged(s))
		return BL_ERR_CLOSED;
	s->stall_at = BL_NEVER;
	bl_simdev_host_write(s->dev, now_of(s), data, n);
	return (int)n;
}

static int sim_read(struct bl_link *l, uint8_t *buf, size_t max)
{
	struct sim_link *s = (struct sim_link *)l;
	size_t n;

	if (check_unplugged(s))
		return BL_ERR_CLOSED;
	if (max > (size_t)INT32_MAX)
		max = INT32_MAX;
	/* Nothing can be there before the device's next event (never late):
	 * the read that ends every drain costs no device call. The device
	 * catches up on its own events at the next call, in the same order. */
	if (bl_simdev_next_event_us(s->dev) > now_of(s))
		return 0;
	n = bl_simdev_host_read(s->dev, now_of(s), buf, max);
	if (n == 0 && check_unplugged(s))
		return BL_ERR_CLOSED;
	return (int)n;
}

/* When the source wants dispatching: at once to report a close, never while
 * the buffer is full (the consumer must read first), else when the device
 * has bytes. */
static uint64_t sim_next(void *ud)
{
	struct sim_link *s = ud;
	uint64_t t;

	/* The loop asks every source at every step (64 virtual Batlabs: 64
	 * calls): one device call, unplugged devices say BL_NEVER. */
	if (s->base.closed)
		return s->close_told ? BL_NEVER : 0;
	t = bl_simdev_next_event_us(s->dev);
	if (t == BL_NEVER && bl_simdev_unplugged(s->dev))
		return s->close_told ? BL_NEVER : 0;
	if (s->base.rx_len == sizeof s->base.rx)
		return BL_NEVER;
	/* A "due" event that yielded no bytes must not pin virtual time: look
	 * again only once time has moved on (or after the next write). */
	if (s->stall_at != BL_NEVER && t <= s->stall_at) {
		uint64_t now = now_of(s);
		return now > s->stall_at ? now : BL_NEVER;
	}
	return t;
}

static void sim_dispatch(struct bl_loop *loop, struct bl_source *src, uint64_t now, void *ud)
{
	struct sim_link *s = ud;
	struct bl_link *l = &s->base;
	bool got = false;

	(void)loop;
	(void)src;
	if (!check_unplugged(s)) {
		size_t n = bl_simdev_host_read(s->dev, now, l->rx + l->rx_len, sizeof l->rx - l->rx_len);
		l->rx_len += n;
		got = n > 0;
		s->stall_at = BL_NEVER;
		if (!got && bl_simdev_next_event_us(s->dev) <= now)
			s->stall_at = now;
		check_unplugged(s);
	}
	if (l->closed) {
		if (s->close_told && !got)
			return;
		s->close_told = true;
	} else if (!got) {
		return;
	}
	bl_link_notify(l);
}

static int sim_rewatch(struct bl_link *l)
{
	struct sim_link *s = (struct sim_link *)l;

	if (!l->loop)
		return BL_OK;
	if (!l->on_data) {
		bl_source_stop(l->loop, &s->src);
		return BL_OK;
	}
	return bl_source_start(l->loop, &s->src);
}

static int sim_fd(const struct bl_link *l)
{
	(void)l;
	return -1;
}

static uint64_t sim_next_event(const struct bl_link *l)
{
	const struct sim_link *s = (const struct sim_link *)l;

	return l->closed ? BL_NEVER : bl_simdev_next_event_us(s->dev);
}

static void sim_destroy(struct bl_link *l)
{
	struct sim_link *s = (struct sim_link *)l;

	if (s->own)
		bl_simdev_free(s->dev);
	free(s);
}

static const struct bl_link_ops sim_ops = {
	.write = sim_write,
	.read = sim_read,
	.rewatch = sim_rewatch,
	.fd = sim_fd,
	.next_event_us = sim_next_event,
	.destroy = sim_destroy,
};

int bl_link_open_sim(struct bl_simdev *dev, bool own, const struct bl_clock *clock,
                     const char *name, struct bl_link **out)
{
	struct sim_link *s;

	if (!dev || !clock || !out)
		return BL_ERR_ARG;
	s = calloc(1, sizeof *s);
	if (!s)
		return BL_ERR_MEM;
	bl_link_base_init(&s->base, &sim_ops, "sim", name ? name : "sim");
	s->dev = dev;
	s->own = own;
	s->clock = clock;
	s->stall_at = BL_NEVER;
	bl_source_init(&s->src, sim_next, sim_dispatch, s);
	*out = &s->base;
	return BL_OK;
}
