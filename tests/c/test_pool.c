/* test_pool.c - the device pool with several virtual Batlabs: ordering,
 * lookup, the active device, hot-plug, unplug, reset and messages. */
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "core/clock.h"
#include "core/loop.h"
#include "core/regs.h"
#include "device/pool.h"
#include "host/session.h"
#include "sim/simdev.h"
#include "tap.h"

#define S(x) ((uint64_t)((x) * 1e6))

struct counts {
	int ev[8];
	struct bl_device *last;
};

/* When set, the device is silenced as soon as its reset is reported, so
 * the reconnect that follows fails. */
static struct bl_simdev *silence_on_reset;
static struct bl_loop *the_loop;

static void on_pool(struct bl_pool *p, enum bl_pool_event ev, struct bl_device *d, const char *port, void *ud)
{
	struct counts *c = ud;
	(void)p;
	(void)port;
	c->ev[ev]++;
	c->last = d;
	if (ev == BL_POOL_RESET && silence_on_reset) {
		struct bl_fault f = {.kind = BL_FAULT_NO_REPLY, .slot = -1, .count = 100000};
		bl_simdev_fault(silence_on_reset, bl_loop_now(the_loop), &f);
		silence_on_reset = NULL;
	}
}

static struct bl_simdev *make_sim(struct bl_loop *loop, uint16_t serial)
{
	struct bl_simdev_config cfg;

	bl_simdev_config_default(&cfg, 0);
	cfg.serial_num = serial;
	return bl_simdev_new(&cfg, bl_loop_now(loop));
}

static void fault_now(struct bl_loop *loop, struct bl_simdev *sim, enum bl_fault_kind kind)
{
	struct bl_fault f;

	memset(&f, 0, sizeof f);
	f.kind = kind;
	f.slot = -1;
	bl_simdev_fault(sim, bl_loop_now(loop), &f);
}

static int count_messages(struct bl_pool *p, const char *needle)
{
	char *m;
	int n = 0;

	while ((m = bl_pool_next_message(p))) {
		n += strstr(m, needle) != NULL;
		free(m);
	}
	return n;
}

/* One pool of virtual units, shared by the steps below in order. */
struct rig {
	struct bl_vclock vc;
	struct bl_loop *loop;
	struct bl_pool *pool;
	struct counts c;
	struct bl_simdev *s1000, *s1001, *s1002;
};

static void run_for(struct rig *r, double s)
{
	bl_loop_run_until(r->loop, NULL, NULL, bl_loop_now(r->loop) + S(s));
}

static void test_join(struct rig *r)
{
	struct bl_pool *pool = r->pool;

	r->s1002 = make_sim(r->loop, 1002);
	r->s1000 = make_sim(r->loop, 1000);
	r->s1001 = make_sim(r->loop, 1001);
	bl_pool_add_sim(pool, r->s1002, "simC");
	bl_pool_add_sim(pool, r->s1000, "simA");
	bl_pool_add_sim(pool, r->s1001, "simB");
	is_int(bl_pool_count(pool), 0, "nothing joins before it has connected");
	is_int(bl_pool_settle(pool, S(10)), 3, "three virtual Batlabs connect");
	is_int(r->c.ev[BL_POOL_PLUG], 3, "three plug events");
	is_int(bl_device_identity(bl_pool_device(pool, 0))->serial, 1000, "ordered by serial: 1000 first");
	is_int(bl_device_identity(bl_pool_device(pool, 1))->serial, 1001, "1001 second");
	is_int(bl_device_identity(bl_pool_device(pool, 2))->serial, 1002, "1002 third");
	ok(bl_pool_device(pool, 3) == NULL, "nothing past the end");
	ok(bl_pool_find_serial(pool, 1001) == bl_pool_device(pool, 1), "lookup by serial");
	ok(bl_pool_find_port(pool, "simA") == bl_pool_device(pool, 0), "lookup by port");
	ok(bl_pool_find_serial(pool, 4242) == NULL, "unknown serial");
	ok(bl_pool_active(pool) != NULL, "an active device is chosen");
	is_int(r->c.ev[BL_POOL_ACTIVE], 1, "one active event");
	is_int(count_messages(pool, "connected"), 3, "a 'connected' message per device");
}

static void test_plug_unplug_reset(struct rig *r)
{
	struct bl_pool *pool = r->pool;

	/* hot-plug: a fourth unit arrives while the others run */
	run_for(r, 30);
	struct bl_simdev *s999 = make_sim(r->loop, 999);
	bl_pool_add_sim(pool, s999, "simZ");
	bl_pool_settle(pool, S(10));
	is_int(bl_pool_count(pool), 4, "a device plugged in later joins");
	is_int(bl_device_identity(bl_pool_device(pool, 0))->serial, 999, "and takes its place in serial order");
	is_int(r->c.ev[BL_POOL_PLUG], 4, "plug event for it");

	/* unplug the active device */
	bl_pool_set_active(pool, bl_pool_find_serial(pool, 1001));
	count_messages(pool, "");
	fault_now(r->loop, r->s1001, BL_FAULT_UNPLUG);
	run_for(r, 2);
	is_int(r->c.ev[BL_POOL_UNPLUG], 1, "unplug event");
	is_int(bl_pool_count(pool), 3, "the device left the pool");
	ok(bl_pool_find_serial(pool, 1001) == NULL, "and cannot be found");
	ok(bl_pool_active(pool) && bl_device_identity(bl_pool_active(pool))->serial != 1001,
	   "another device became active");
	is_int(count_messages(pool, "disconnected"), 1, "a 'disconnected' message");

	/* a device resets: reported, reconnected, watchdog back on */
	struct bl_device *d1002 = bl_pool_find_serial(pool, 1002);
	fault_now(r->loop, r->s1002, BL_FAULT_RESET);
	run_for(r, 15);
	is_int(r->c.ev[BL_POOL_RESET], 1, "reset event");
	ok(bl_pool_find_serial(pool, 1002) == d1002, "the device stays in the pool");
	ok(bl_simdev_reg(r->s1002, BL_NS_UNIT, BL_UNIT_SETTINGS) & BL_SET_WATCHDOG_TIMER,
	   "the reconnect enabled the watchdog again");
	ok(bl_device_identity(d1002)->connected, "and it is connected");
}

static void test_failures(struct rig *r)
{
	struct bl_pool *pool = r->pool;
	char err[256];

	/* ports that cannot be opened */
	is_int(bl_pool_add_port(pool, "/nonexistent/ttyACM9", err, sizeof err), BL_ERR_NOTFOUND, "a missing port");
	ok(strstr(err, "/nonexistent/ttyACM9") != NULL, "the error names it (%s)", err);

	/* a device that never answers does not join, and does not hang */
	struct bl_simdev *dead = make_sim(r->loop, 1234);
	struct bl_fault f;
	memset(&f, 0, sizeof f);
	f.kind = BL_FAULT_NO_REPLY;
	f.count = 1000;
	f.slot = -1;
	bl_simdev_fault(dead, bl_loop_now(r->loop), &f);
	bl_pool_add_sim(pool, dead, "simDead");
	bl_pool_settle(pool, S(30));
	is_int(r->c.ev[BL_POOL_FAILED], 1, "a silent device fails to connect");
	is_int(bl_pool_count(pool), 3, "and is not in the pool");

	/* a reset whose reconnect fails: the device leaves the pool cleanly,
	 * and the active device is never left dangling */
	struct bl_device *act = bl_pool_find_serial(pool, 1000);
	bl_pool_set_active(pool, act);
	int unplugs = r->c.ev[BL_POOL_UNPLUG];
	the_loop = r->loop;
	silence_on_reset = r->s1000;
	fault_now(r->loop, r->s1000, BL_FAULT_RESET);
	run_for(r, 60);
	is_int(r->c.ev[BL_POOL_UNPLUG], unplugs + 1, "a failed reconnect is an unplug");
	ok(bl_pool_find_serial(pool, 1000) == NULL, "the device left the pool");
	ok(bl_pool_active(pool) != act && bl_pool_active(pool) != NULL, "another device is active");
	ok(bl_device_identity(bl_pool_active(pool))->serial != 1000, "(serial %u)",
	   bl_device_identity(bl_pool_active(pool))->serial);
}

int main(void)
{
	static struct rig r;
	struct bl_pool_opts opts;

	plan_lazy();
	bl_log_set_level(BL_LOG_ERROR);
	bl_vclock_init(&r.vc, S(10));
	r.loop = bl_loop_new(&r.vc.clock);
	bl_pool_opts_default(&opts);
	r.pool = bl_pool_new(r.loop, &opts);
	bl_pool_on_event(r.pool, on_pool, &r.c);

	test_join(&r);
	test_plug_unplug_reset(&r);
	test_failures(&r);

	bl_pool_free(r.pool);
	ok(bl_loop_timer_count(r.loop) == 0, "no timers left after the pool is freed");
	bl_loop_free(r.loop);
	return done_testing();
}
