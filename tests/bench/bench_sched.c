/* bench_sched.c - the scheduler and the Lua bindings.
 *
 *   sched_64dev   64 virtual Batlabs, 256 tasks sampling every second for
 *                 one virtual hour (target < 10 s wall, < 100 MB RSS);
 *   sched_24h     one virtual Batlab, a 4-channel procedure (discharge at
 *                 0.1 A, then a sample every second) for 24 virtual hours
 *                 (target < 2 s wall);
 *   sched_resume  resuming a task with a fresh sample: the wait completed
 *                 from C, the ready queue, lua_resume, the sample table,
 *                 the task's loop body and its next wait (target < 5 us).
 *
 * Figures only: nothing fails on timing. Wall time is the monotonic clock
 * (bl_clock_monotonic_us); memory is getrusage's ru_maxrss, so the 64-unit
 * run goes first.
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include <lauxlib.h>

#include "core/bl.h"
#include "core/clock.h"
#include "core/loop.h"
#include "lua/engine.h"
#include "device/channel.h"
#include "lua/lua_util.h"
#include "lua/sched.h"
#include "figure.h"

static double wall_s(void)
{
	return (double)bl_clock_monotonic_us() / 1e6;
}

static long maxrss_kb(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void quiet(void *ud, enum bl_log_level level, const char *module, const char *msg)
{
	(void)ud;
	(void)level;
	(void)module;
	(void)msg;
}

/* Run a chunk; returns its first result as a number (or -1 on error). */
static double run_chunk(struct bl_engine *e, const char *chunk)
{
	lua_State *L = bl_engine_state(e);
	double v = -1;

	if (luaL_loadstring(L, chunk) != LUA_OK || bl_engine_pcall(e, 0, 1) != LUA_OK) {
		fprintf(stderr, "bench: %s\n", lua_tostring(L, -1));
	} else {
		v = lua_tonumber(L, -1);
	}
	lua_pop(L, 1);
	return v;
}

static int bench_64dev(void)
{
	struct bl_engine *e = bl_engine_new(NULL);
	double t0, t1, samples;

	if (!e)
		return 1;
	t0 = wall_s();
	samples = run_chunk(e,
		"local pool = assert(batlab.open{sim = true, devices = 64})\n"
		"local n = 0\n"
		"for _, dev in ipairs(pool:devices()) do\n"
		"  for c = 0, 3 do\n"
		"    batlab.spawn(function()\n"
		"      local ch = dev:channel(c)\n"
		"      repeat local s = assert(ch:wait()); n = n + 1 until s.time >= 3600\n"
		"    end)\n"
		"  end\n"
		"end\n"
		"assert(batlab.run())\n"
		"pool:close()\n"
		"return n\n");
	t1 = wall_s();
	printf("bench sched_64dev: %.2f s wall, %.1f MB max RSS (target < 10 s, < 100 MB)\n",
	       t1 - t0, (double)maxrss_kb() / 1024.0);
	printf("  64 virtual Batlabs, 256 tasks, 1 virtual hour at 1 s: %.0f samples, %.2f us each\n",
	       samples, (t1 - t0) * 1e6 / (samples > 0 ? samples : 1));
	{
		char m[96];
		snprintf(m, sizeof m, "%.2f s wall, %.0f MB", t1 - t0, (double)maxrss_kb() / 1024.0);
		bench_figure("64 virtual Batlabs, 256 tasks, one virtual hour", m, "< 10 s, < 100 MB", 0);
	}
	bl_engine_free(e);
	return samples >= 256 * 3590 ? 0 : 1;
}

static int bench_24h(void)
{
	struct bl_engine *e = bl_engine_new(NULL);
	double t0, t1, samples;

	if (!e)
		return 1;
	t0 = wall_s();
	samples = run_chunk(e,
		"local pool = assert(batlab.open{sim = true})\n"
		"local dev, n = pool:active(), 0\n"
		"for c = 0, 3 do\n"
		"  batlab.spawn(function()\n"
		"    local ch = dev:channel(c)\n"
		"    assert(ch:limits{vmax = 4.25, vmin = 2.5, imax = 4, tmax_c = 60})\n"
		"    assert(ch:discharge(0.1))\n"
		"    repeat local s = assert(ch:wait()); n = n + 1 until s.time >= 24 * 3600\n"
		"  end)\n"
		"end\n"
		"assert(batlab.run())\n"
		"pool:close()\n"
		"return n\n");
	t1 = wall_s();
	printf("bench sched_24h: %.3f s wall (target < 2 s)\n", t1 - t0);
	{
		char m[64];
		snprintf(m, sizeof m, "%.2f s wall", t1 - t0);
		bench_figure("4 channels sampled every second for 24 virtual hours", m, "< 2 s", 0);
	}
	printf("  4 channels, 24 virtual hours at 1 s: %.0f samples\n", samples);
	bl_engine_free(e);
	return samples >= 4 * 86390 ? 0 : 1;
}

/* ---- resume cost ------------------------------------------------------------ */

#define NTASKS 64
#define ROUNDS 20000

static struct bl_wait *slot[NTASKS];
static int nslot;

static int k_bwait(lua_State *L, int status, lua_KContext ctx)
{
	struct bl_wait *w = bl_wait_ctx(L, ctx);

	(void)status;
	bl_lua_push_sample(L, (const struct bl_sample *)(const void *)w->payload.bytes);
	return 1;
}

static int l_bwait(lua_State *L)
{
	struct bl_wait local, *w = bl_wait_begin(L, &local, "bwait");

	slot[nslot++] = w;
	return bl_wait_yield(L, w, k_bwait);
}

static bool all_waiting(void *ud)
{
	(void)ud;
	return nslot == NTASKS;
}

static int bench_resume(void)
{
	struct bl_vclock vc;
	struct bl_engine_opts opts = {0};
	struct bl_engine *e;
	struct bl_sched *s;
	struct bl_loop *loop;
	struct bl_sample sample = {
		.time = 1, .step_time = 1, .mode = 4, .status = 0, .error = 0, .voltage = 3.7,
		.current = -1.0, .temp_c = 25.0, .charge_ah = -0.1, .energy_wh = -0.37,
		.vcc = 5.0, .cell = 0, .serial = 1000,
	};
	double t0, t1;
	long resumes = 0;

	bl_vclock_init(&vc, 0);
	opts.clock = &vc.clock;
	e = bl_engine_new(&opts);
	if (!e)
		return 1;
	lua_register(bl_engine_state(e), "bwait", l_bwait);
	s = bl_sched_get(bl_engine_state(e));
	loop = bl_sched_loop(s);
	run_chunk(e,
		"ACC = 0\n"
		"for i = 1, 64 do\n"
		"  batlab.spawn(function()\n"
		"    while true do\n"
		"      local s = bwait()\n"
		"      if s.voltage > 3 and s.current < 0 then ACC = ACC + s.voltage end\n"
		"    end\n"
		"  end)\n"
		"end\n"
		"return 0\n");
	bl_loop_run_until(loop, all_waiting, NULL, BL_NEVER);
	t0 = wall_s();
	for (int r = 0; r < ROUNDS; r++) {
		int n = nslot;
		nslot = 0;
		for (int i = 0; i < n; i++) {
			sample.time = r;
			memcpy(slot[i]->payload.bytes, &sample, sizeof sample);
			bl_wait_complete(slot[i], BL_OK);
		}
		bl_loop_run_until(loop, all_waiting, NULL, BL_NEVER);
		resumes += n;
	}
	t1 = wall_s();
	printf("bench sched_resume: %.2f us per resume with a fresh sample (target < 5 us)\n",
	       (t1 - t0) * 1e6 / (double)resumes);
	{
		char m[64];
		snprintf(m, sizeof m, "%.2f us", (t1 - t0) * 1e6 / (double)resumes);
		bench_figure("resuming a task with a fresh sample", m, "< 5 us", 0);
	}
	printf("  %ld resumes of %d tasks; ACC %.0f\n", resumes, NTASKS,
	       run_chunk(e, "return ACC"));
	bl_engine_free(e);
	return 0;
}

int main(void)
{
	int rc = 0;

	bl_log_set_handler(quiet, NULL);
	rc |= bench_64dev();
	rc |= bench_24h();
	rc |= bench_resume();
	return rc;
}
