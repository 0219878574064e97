/* lua_sched.c - tasks in Lua: batlab.spawn, spawn_for, sleep, run,
 * current, instruction_limit, task_log, and the batlab.Task class. The
 * scheduler itself is src/sched.c. */
#include <math.h>
#include <string.h>

#include <lauxlib.h>

#include "core/bl.h"
#include "lua/lua_util.h"
#include "lua/sched.h"

/* Registry key of the Lua function task_log installed (its address). */
static const char task_log_key = 0;

static uint64_t check_seconds_us(lua_State *L, int arg, const char *what)
{
	lua_Number s = luaL_checknumber(L, arg);

	luaL_argcheck(L, s >= 0 && s < 1e12, arg,
	              lua_pushfstring(L, "%s must be a number of seconds >= 0", what));
	return (uint64_t)llround(s * 1e6);
}

/* ---- batlab.Task ------------------------------------------------------------ */

static int l_task_cancel(lua_State *L)
{
	struct bl_task *t = bl_task_check(L, 1);

	if (bl_sched_cancel(L, t) != BL_OK)
		return luaL_error(L, "a task cannot cancel itself (return from it, or raise an error)");
	lua_pushboolean(L, 1);
	return 1;
}

static int k_join(lua_State *L, int status, lua_KContext ctx)
{
	struct bl_wait *w = bl_wait_ctx(L, ctx);

	(void)status;
	if (w->status == BL_ERR_TIMEOUT)
		return bl_lua_timed_out(L);
	lua_pushstring(L, bl_task_state_name(bl_task_state(w->obj)));
	return 1;
}

/* task:join([timeout]) -> the task's end state ("done", "failed",
 * "cancelled"), or nil, "timeout", "ETIMEDOUT". */
static int l_task_join(lua_State *L)
{
	struct bl_task *t = bl_task_check(L, 1);
	bool timed = !lua_isnoneornil(L, 2);
	uint64_t us = timed ? check_seconds_us(L, 2, "join timeout") : 0;
	struct bl_wait local, *w = bl_wait_begin(L, &local, "task:join");

	w->obj = t;
	if (bl_task_join(t, w) != BL_OK)
		return luaL_error(L, "a task cannot join itself");
	if (timed && !w->done)
		bl_wait_after(w, us, BL_ERR_TIMEOUT);
	return bl_wait_yield(L, w, k_join);
}

static int l_task_index(lua_State *L)
{
	struct bl_task *t = bl_task_check(L, 1);
	const char *k = luaL_checkstring(L, 2);
	enum bl_task_state st = bl_task_state(t);

	if (strcmp(k, "status") == 0) {
		lua_pushstring(L, bl_task_state_name(st));
	} else if (strcmp(k, "id") == 0) {
		lua_pushinteger(L, (lua_Integer)bl_task_id(t));
	} else if (strcmp(k, "results") == 0) {
		if (st == BL_TASK_DONE)
			lua_getiuservalue(L, 1, 3);
		else
			lua_pushnil(L);
	} else if (strcmp(k, "error") == 0) {
		if (st == BL_TASK_FAILED)
			lua_getiuservalue(L, 1, 3);
		else
			lua_pushnil(L);
	} else {
		lua_getfield(L, lua_upvalueindex(1), k);
	}
	return 1;
}

static int l_task_tostring(lua_State *L)
{
	struct bl_task *t = bl_task_check(L, 1);

	lua_pushfstring(L, "batlab.Task %d (%s)", (int)bl_task_id(t),
	                bl_task_state_name(bl_task_state(t)));
	return 1;
}

static const luaL_Reg task_meta[] = {
	{"__index", l_task_index},
	{"__tostring", l_task_tostring},
	{NULL, NULL},
};

static const luaL_Reg task_methods[] = {
	{"cancel", l_task_cancel},
	{"join", l_task_join},
	{NULL, NULL},
};

/* ---- Module functions -------------------------------------------------------- */

/* Registry key of the function batlab.on_spawn installed. */
static const char spawn_hook_key = 0;

/* Tell the spawn hook about the new task on top of the stack: (task,
 * channel or nil, "file:line" of the spawning call). */
static void spawned(lua_State *L, int ch_idx)
{
	if (lua_rawgetp(L, LUA_REGISTRYINDEX, &spawn_hook_key) != LUA_TFUNCTION) {
		lua_pop(L, 1);
		return;
	}
	lua_pushvalue(L, -2);
	if (ch_idx)
		lua_pushvalue(L, ch_idx);
	else
		lua_pushnil(L);
	luaL_where(L, 1);
	lua_pushstring(L, lua_tostring(L, -1));
	lua_remove(L, -2);
	lua_call(L, 3, 0);
}

static int l_batlab_spawn(lua_State *L)
{
	bl_sched_spawn(L, lua_gettop(L) - 1);
	spawned(L, 0);
	return 1;
}

/* batlab.on_spawn(fn | nil): fn(task, channel, where) after every spawn
 * (the interactive shell follows tasks with it). */
static int l_batlab_on_spawn(lua_State *L)
{
	if (!lua_isnoneornil(L, 1))
		luaL_checktype(L, 1, LUA_TFUNCTION);
	lua_settop(L, 1);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &spawn_hook_key);
	return 0;
}

static int l_batlab_spawn_for(lua_State *L)
{
	struct bl_task *t;

	luaL_checkudata(L, 1, BL_LUA_CHANNEL);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	t = bl_sched_spawn(L, lua_gettop(L) - 2);   /* ch task */
	spawned(L, 1);
	bl_task_bind(L, t, 1);
	return 1;
}

static int k_sleep(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	bl_wait_ctx(L, ctx);
	lua_pushboolean(L, 1);
	return 1;
}

static int l_batlab_sleep(lua_State *L)
{
	uint64_t us = check_seconds_us(L, 1, "sleep time");
	struct bl_wait local, *w = bl_wait_begin(L, &local, "batlab.sleep");
	struct bl_sched *s = w->sched;
	int rc;

	if (w->task) {
		bl_wait_after(w, us, BL_OK);
		return bl_wait_yield(L, w, k_sleep);
	}
	/* Outside tasks: run the loop for that long (tasks progress; in
	 * virtual time it is a jump). */
	rc = bl_sched_run_for(s, L, bl_loop_now(bl_sched_loop(s)) + us);
	if (rc == BL_LOOP_STOPPED) {
		lua_pushnil(L);
		lua_pushliteral(L, "interrupted");
		lua_pushliteral(L, "EINTR");
		return 3;
	}
	lua_pushboolean(L, 1);
	return 1;
}

static int l_batlab_run(lua_State *L)
{
	struct bl_sched *s = bl_sched_get(L);
	uint64_t deadline = BL_NEVER;
	int rc;

	if (bl_sched_current(L) || bl_sched_running(s))
		return luaL_error(L, "batlab.run cannot be called from a task "
		                  "(tasks wait; the code that spawned them runs them)");
	/* bl_wait_begin checks the context like every blocking call. */
	{
		struct bl_wait local;
		bl_wait_begin(L, &local, "batlab.run");
	}
	if (!lua_isnoneornil(L, 1)) {
		uint64_t us = check_seconds_us(L, 1, "timeout");
		deadline = bl_loop_now(bl_sched_loop(s)) + us;
	}
	rc = bl_sched_run(s, L, deadline);
	switch (rc) {
	case BL_OK:
		lua_pushboolean(L, 1);
		return 1;
	case BL_ERR_TIMEOUT:
		return bl_lua_timed_out(L);
	case BL_LOOP_STOPPED:
		lua_pushnil(L);
		lua_pushliteral(L, "interrupted");
		lua_pushliteral(L, "EINTR");
		return 3;
	case BL_LOOP_IDLE:
		lua_pushnil(L);
		lua_pushfstring(L, "%d tasks wait for something that cannot happen",
		                (int)bl_sched_live(s));
		lua_pushliteral(L, "EIDLE");
		return 3;
	default:
		return bl_lua_fail(L, rc, "batlab.run: %s", bl_strerror(rc));
	}
}

static int l_batlab_current(lua_State *L)
{
	struct bl_task *t = bl_sched_current(L);

	if (t)
		bl_task_push(L, t);
	else
		lua_pushnil(L);
	return 1;
}

static int l_batlab_instruction_limit(lua_State *L)
{
	struct bl_sched *s = bl_sched_get(L);
	uint64_t old = bl_sched_budget(s);

	if (!lua_isnoneornil(L, 1)) {
		lua_Integer n = luaL_checkinteger(L, 1);
		luaL_argcheck(L, n >= 0, 1, "instruction limit must be >= 0 (0: none)");
		bl_sched_set_budget(s, (uint64_t)n);
	}
	lua_pushinteger(L, (lua_Integer)old);
	return 1;
}

/* The C log hook when a Lua function was installed: call it (protected)
 * on the thread that runs the loop. */
static void lua_task_log(void *ud, struct bl_task *t, const char *msg)
{
	struct bl_sched *s = ud;
	lua_State *L = bl_sched_lua(s);

	lua_rawgetp(L, LUA_REGISTRYINDEX, &task_log_key);
	bl_task_push(L, t);
	lua_pushstring(L, msg);
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		bl_log(BL_LOG_ERROR, "task", "%s", msg);
		bl_log(BL_LOG_ERROR, "task", "task_log function failed: %s",
		       lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
		lua_pop(L, 1);
	}
}

static int l_batlab_task_log(lua_State *L)
{
	struct bl_sched *s = bl_sched_get(L);

	if (lua_isnoneornil(L, 1)) {
		lua_pushnil(L);
		lua_rawsetp(L, LUA_REGISTRYINDEX, &task_log_key);
		bl_sched_set_log(s, NULL, NULL);
		return 0;
	}
	luaL_checktype(L, 1, LUA_TFUNCTION);
	lua_pushvalue(L, 1);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &task_log_key);
	bl_sched_set_log(s, lua_task_log, s);
	return 0;
}

static const luaL_Reg sched_funcs[] = {
	{"spawn", l_batlab_spawn},
	{"spawn_for", l_batlab_spawn_for},
	{"on_spawn", l_batlab_on_spawn},
	{"sleep", l_batlab_sleep},
	{"run", l_batlab_run},
	{"current", l_batlab_current},
	{"instruction_limit", l_batlab_instruction_limit},
	{"task_log", l_batlab_task_log},
	{NULL, NULL},
};

void bl_lua_open_sched(lua_State *L)
{
	bl_sched_open(L);
	bl_sched_set_clock(bl_sched_get(L), bl_lua_get_clock);
	bl_lua_newclass(L, BL_TASK_MT, task_meta, task_methods);
	luaL_setfuncs(L, sched_funcs, 0);
}
