/* test_sched.c - the scheduler core through its C API: waits completed
 * from C in a chosen order (FIFO resumes), completion before the yield,
 * timeouts, cancel hooks, blocking waits outside tasks, the safe hook for
 * bound objects, stats; and an interrupt (SIGINT raised from a loop timer
 * in virtual time) during batlab.run with virtual Batlabs. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "core/bl.h"
#include "core/clock.h"
#include "core/loop.h"
#include "lua/engine.h"
#include "lua/sched.h"
#include "tap.h"

#define S(x) ((uint64_t)((x) * 1e6))
#define SLOTS 8

static struct bl_wait *slot[SLOTS];
static char cancelled[64];
static int safe_calls;
static char safe_seen[64];

static void on_cancel(struct bl_wait *w)
{
	size_t n = strlen(cancelled);

	snprintf(cancelled + n, sizeof cancelled - n, "%d", w->arg[0]);
	slot[w->arg[0]] = NULL;
}

static int k_cwait(lua_State *L, int status, lua_KContext ctx)
{
	struct bl_wait *w = bl_wait_ctx(L, ctx);

	(void)status;
	slot[w->arg[0]] = NULL;
	lua_pushinteger(L, w->status);
	lua_pushinteger(L, w->value);
	return 2;
}

/* cwait(id [, timeout_s]): wait until C completes slot id. */
static int l_cwait(lua_State *L)
{
	int id = (int)luaL_checkinteger(L, 1);
	struct bl_wait local, *w = bl_wait_begin(L, &local, "cwait");

	w->arg[0] = id;
	w->cancel = on_cancel;
	slot[id] = w;
	if (!lua_isnoneornil(L, 2))
		bl_wait_after(w, S(luaL_checknumber(L, 2)), BL_ERR_TIMEOUT);
	return bl_wait_yield(L, w, k_cwait);
}

/* cnow(v): a wait that completes before it would yield. */
static int l_cnow(lua_State *L)
{
	struct bl_wait local, *w = bl_wait_begin(L, &local, "cnow");

	w->value = (uint16_t)luaL_checkinteger(L, 1);
	bl_wait_complete(w, BL_OK);
	return bl_wait_yield(L, w, k_cwait);
}

/* bind(x): the running task drives x. */
static int l_bind(lua_State *L)
{
	struct bl_task *t = bl_sched_current(L);

	if (!t)
		return luaL_error(L, "bind outside a task");
	bl_task_bind(L, t, 1);
	return 0;
}

static void count_safe(lua_State *L, int idx, void *ud)
{
	(void)ud;
	safe_calls++;
	lua_getfield(L, idx, "name");
	snprintf(safe_seen, sizeof safe_seen, "%s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
	lua_pop(L, 1);
}

static void complete_slot(int id, int status, uint16_t value)
{
	struct bl_wait *w = slot[id];

	if (!w)
		return;
	w->value = value;
	bl_wait_complete(w, status);
}

static struct bl_engine *engine;

static int run(const char *chunk)
{
	int st = bl_engine_dostring(engine, chunk, "=test");

	if (st != LUA_OK) {
		diag("lua: %s", lua_tostring(bl_engine_state(engine), -1));
		lua_pop(bl_engine_state(engine), 1);
	}
	return st;
}

static int eval_int(const char *expr)
{
	lua_State *L = bl_engine_state(engine);
	char chunk[512];
	int v = -999;

	snprintf(chunk, sizeof chunk, "return %s", expr);
	if (luaL_loadstring(L, chunk) == LUA_OK && bl_engine_pcall(engine, 0, 1) == LUA_OK)
		v = (int)lua_tointeger(L, -1);
	else
		diag("eval %s: %s", expr, lua_tostring(L, -1));
	lua_pop(L, 1);
	return v;
}

static const char *eval_str(const char *expr, char *buf, size_t n)
{
	lua_State *L = bl_engine_state(engine);
	char chunk[512];

	snprintf(chunk, sizeof chunk, "return tostring(%s)", expr);
	buf[0] = '\0';
	if (luaL_loadstring(L, chunk) == LUA_OK && bl_engine_pcall(engine, 0, 1) == LUA_OK)
		snprintf(buf, n, "%s", lua_tostring(L, -1));
	else
		diag("eval %s: %s", expr, lua_tostring(L, -1));
	lua_pop(L, 1);
	return buf;
}

static bool slots_filled(void *ud)
{
	int want = *(int *)ud, n = 0;

	for (int i = 0; i < SLOTS; i++)
		n += slot[i] != NULL;
	return n >= want;
}

static bool log_len(void *ud)
{
	return eval_int("#LOG") >= *(int *)ud;
}

static void fire_slot0(struct bl_loop *loop, struct bl_timer *t, void *ud)
{
	(void)loop;
	(void)t;
	(void)ud;
	complete_slot(0, BL_OK, 77);
}

static void fire_sigint(struct bl_loop *loop, struct bl_timer *t, void *ud)
{
	(void)loop;
	(void)t;
	(void)ud;
	raise(SIGINT);
}

static void task_log_quiet(void *ud, struct bl_task *t, const char *msg)
{
	(void)ud;
	(void)t;
	(void)msg;
}

static struct bl_vclock other_vc;

static const struct bl_clock *other_clock(lua_State *L)
{
	(void)L;
	return &other_vc.clock;
}

int main(void)
{
	struct bl_vclock vc;
	struct bl_engine_opts opts = {0};
	struct bl_sched *s;
	struct bl_sched_stats st;
	struct bl_loop *loop;
	struct bl_timer tm;
	lua_State *L;
	char buf[256];
	int want;

	plan_lazy();
	bl_log_set_level(BL_LOG_ERROR);
	bl_vclock_init(&vc, S(100));
	opts.clock = &vc.clock;
	engine = bl_engine_new(&opts);
	if (!engine)
		return 1;
	L = bl_engine_state(engine);
	lua_register(L, "cwait", l_cwait);
	lua_register(L, "cnow", l_cnow);
	lua_register(L, "bind", l_bind);
	s = bl_sched_get(L);
	ok(s != NULL, "the engine has a scheduler");
	bl_sched_set_log(s, task_log_quiet, NULL);
	loop = bl_sched_loop(s);
	ok(loop && bl_loop_is_virtual(loop), "its default loop runs on the engine's (virtual) clock");

	/* FIFO: resumed in the order their waits complete */
	run("LOG = {} for i = 0, 2 do batlab.spawn(function() local st, v = cwait(i); "
	    "LOG[#LOG + 1] = i .. ':' .. st .. ':' .. v end) end");
	is_int((long long)bl_sched_live(s), 3, "three live tasks");
	want = 3;
	bl_loop_run_until(loop, slots_filled, &want, bl_loop_now(loop) + S(1));
	ok(slot[0] && slot[1] && slot[2], "all three wait");
	ok(slot[0] && slot[0]->task != NULL, "a task's wait knows its task");
	bl_sched_stats(s, &st);
	is_int((long long)st.waits, 3, "three waits");
	complete_slot(2, BL_OK, 20);
	complete_slot(0, BL_ERR_TIMEOUT, 0);
	complete_slot(1, BL_OK, 10);
	want = 3;
	bl_loop_run_until(loop, log_len, &want, bl_loop_now(loop) + S(1));
	is_str(eval_str("table.concat(LOG, ' ')", buf, sizeof buf), "2:0:20 0:-3:0 1:0:10",
	       "resumed in completion order, with the results pushed by the continuation");
	is_int((long long)bl_sched_live(s), 0, "all finished");

	/* a wait completed before it yields: no yield at all */
	run("R = nil batlab.spawn(function() R = select(2, cnow(5)) end)");
	bl_sched_run(s, L, BL_NEVER);
	is_int(eval_int("R"), 5, "completion before the yield runs the continuation at once");
	is_int(eval_int("select(2, cnow(6))"), 6, "also outside a task");

	/* timeouts: the cancel hook runs, then the timer's status */
	cancelled[0] = '\0';
	run("LOG = {} batlab.spawn(function() LOG[1] = cwait(4, 2.5) end)");
	uint64_t t0 = bl_loop_now(loop);
	bl_sched_run(s, L, BL_NEVER);
	is_int(eval_int("LOG[1]"), BL_ERR_TIMEOUT, "a timed-out wait completes with its timer status");
	is_int((long long)(bl_loop_now(loop) - t0), S(2.5), "after exactly 2.5 virtual seconds");
	is_str(cancelled, "4", "the cancel hook ran first");

	/* cancel: hook, state, stats */
	cancelled[0] = '\0';
	run("TK = batlab.spawn(function() cwait(5) end)");
	want = 1;
	bl_loop_run_until(loop, slots_filled, &want, bl_loop_now(loop) + S(1));
	is_str(eval_str("TK.status", buf, sizeof buf), "waiting", "the task waits");
	run("TK:cancel()");
	is_str(cancelled, "5", "cancel runs the wait's cancel hook");
	is_str(eval_str("TK.status", buf, sizeof buf), "cancelled", "and the task is cancelled");
	bl_sched_stats(s, &st);
	is_int((long long)st.waits, 0, "no waits left");
	is_int((long long)st.tasks, 0, "no tasks left");
	is_int((long long)st.refs, 0, "no references left");

	/* a blocking wait outside tasks, completed from a loop timer */
	bl_timer_init(&tm, fire_slot0, NULL);
	bl_timer_after(loop, &tm, S(3), 0);
	t0 = bl_loop_now(loop);
	is_int(eval_int("select(2, cwait(0))"), 77, "outside a task the wait runs the loop until done");
	is_int((long long)(bl_loop_now(loop) - t0), S(3), "which took 3 virtual seconds");

	/* a blocking wait that nothing can complete: the API's failure, and
	 * its cancel hook ran */
	cancelled[0] = '\0';
	run("B1, B2, B3 = cwait(1)");
	is_str(eval_str("B1", buf, sizeof buf), "nil", "a wait nothing can complete returns nil");
	is_str(eval_str("B2", buf, sizeof buf), "nothing left that could complete this wait",
	       "with a message");
	is_str(eval_str("B3", buf, sizeof buf), bl_strcode(BL_ERR_STATE), "and a code");
	is_str(cancelled, "1", "after its cancel hook ran");

	/* the safe hook gets every object a task drove, however it ended */
	bl_sched_set_safe_hook(s, count_safe, NULL);
	run("F = batlab.spawn(function() bind({name = 'chanA'}) cwait(6) error('bad') end)"
	    "G = batlab.spawn(function() bind({name = 'chanB'}) return 1 end)");
	want = 1;
	bl_loop_run_until(loop, slots_filled, &want, bl_loop_now(loop) + S(1));
	complete_slot(6, BL_OK, 0);
	bl_sched_run(s, L, BL_NEVER);
	is_int(safe_calls, 2, "the safe hook ran for both tasks (one returned, one failed)");
	is_str(safe_seen, "chanA", "the failed task's object last (the other returned first)");
	is_str(eval_str("F.status", buf, sizeof buf), "failed", "the task failed");
	run("H = batlab.spawn(function() bind({name = 'chanC'}) cwait(7) end)");
	want = 1;
	bl_loop_run_until(loop, slots_filled, &want, bl_loop_now(loop) + S(1));
	run("H:cancel()");
	is_int(safe_calls, 3, "cancelling makes the bound objects safe too");
	is_str(safe_seen, "chanC", "the cancelled task's object");

	/* the instruction budget from C */
	bl_sched_set_budget(s, 50000);
	run("SPIN = batlab.spawn(function() while true do end end)");
	bl_sched_run(s, L, BL_NEVER);
	is_str(eval_str("SPIN.status", buf, sizeof buf), "failed", "a runaway task is stopped");
	bl_sched_set_budget(s, 100000000);

	/* the wrong context */
	ok(run("batlab.spawn(function() end); local ok, e = pcall(coroutine.wrap(function() "
	       "batlab.spawn(function() coroutine.wrap(function() cwait(1) end)() end) end)) "
	       "assert(ok, e)") == LUA_OK, "spawning from a plain coroutine is fine");
	bl_sched_run(s, L, BL_NEVER);

	/* the private loop's clock comes from the clock hook, asked again
	 * while nothing waits */
	bl_vclock_init(&other_vc, S(7));
	bl_sched_set_clock(s, other_clock);
	loop = bl_sched_loop(s);
	ok(loop && bl_loop_clock(loop) == &other_vc.clock, "the private loop follows the clock hook");
	bl_sched_set_clock(s, NULL);
	loop = bl_sched_loop(s);
	ok(loop && bl_loop_clock(loop) == bl_clock_real(), "no clock hook: the real clock");

	bl_engine_free(engine);

	/* interrupt during batlab.run with virtual Batlabs: every channel safe
	 * (a fresh engine: the one above had its safe hook replaced) */
	engine = bl_engine_new(NULL);
	if (!engine)
		return 1;
	L = bl_engine_state(engine);
	s = bl_sched_get(L);
	bl_sched_set_log(s, task_log_quiet, NULL);
	ok(run("P = assert(batlab.open{sim = true, devices = 2}) "
	       "for _, d in ipairs(P:devices()) do for c = 0, 3 do batlab.spawn(function() "
	       "local ch = d:channel(c) assert(c % 2 == 0 and ch:discharge(1) or ch:charge(1)) "
	       "while true do ch:wait() end end) end end") == LUA_OK, "eight tasks drive eight channels");
	loop = bl_sched_loop(s);
	bl_timer_init(&tm, fire_sigint, NULL);
	bl_timer_after(loop, &tm, S(5), 0);
	/* (what the run must put back: SIG_DFL, or SIG_IGN when the shell
	 * started the tests in the background) */
	struct sigaction before;
	sigaction(SIGINT, NULL, &before);
	run("R1, R2, R3 = batlab.run()");
	is_str(eval_str("R2", buf, sizeof buf), "interrupted", "run returns nil, 'interrupted'");
	is_str(eval_str("R3", buf, sizeof buf), "EINTR", "and EINTR");
	ok(bl_sched_interrupted(s), "the scheduler says it was interrupted");
	is_int((long long)bl_sched_live(s), 0, "every task was cancelled");
	is_int(eval_int("(function() local n = 0 for _, d in ipairs(P:devices()) do for c = 0, 3 do "
	                "if P:sim_reg(d, c, 'MODE') == batlab.MODE_IDLE then n = n + 1 end end end "
	                "return n end)()"), 8, "every channel of every device is IDLE");
	is_int(eval_int("(function() local n = 0 for _, d in ipairs(P:devices()) do for c = 0, 3 do "
	                "if math.abs(P:sim_current(d, c)) < 1e-9 then n = n + 1 end end end "
	                "return n end)()"), 8, "and no current flows");
	bl_sched_clear_interrupted(s);
	struct sigaction sa;
	sigaction(SIGINT, NULL, &sa);
	ok(sa.sa_handler == before.sa_handler, "the signal handlers are restored after the run");
	run("P:close()");

	bl_engine_free(engine);
	return done_testing();
}
