/* sched_end.c - the end of a task, however it comes (it returns, fails,
 * yields outside the API, is cancelled): the C bookkeeping, then the Lua
 * side under lua_pcall, so that running out of memory there still leaves
 * the scheduler consistent. See sched.h. */
#include <lauxlib.h>

#include "core/bl.h"
#include "lua/engine.h"
#include "lua/sched_int.h"

#define MOD BL_SCHED_MOD

/* 5.4.4 has lua_resetthread; 5.4.6 replaced it with lua_closethread. */
#if LUA_VERSION_RELEASE_NUM >= 50406
#define bl_closethread(co, from) lua_closethread(co, from)
#else
#define bl_closethread(co, from) ((void)(from), lua_resetthread(co))
#endif

struct end_args {
	struct bl_sched *s;
	struct bl_task *t;
	enum bl_end_kind kind;
	int nres;
};

static void task_log(struct bl_sched *s, struct bl_task *t, const char *msg)
{
	if (s->log_fn)
		s->log_fn(s->log_ud, t, msg);
	else
		bl_log(BL_LOG_ERROR, MOD, "%s", msg);
}

/* ---- What the task object keeps (its uservalue 3) --------------------------- */

/* A returning task: its results, as a table with n. */
static void keep_results(lua_State *L, lua_State *co, int nres, int task_idx)
{
	int base;

	lua_createtable(L, nres, 1);
	base = lua_gettop(L);
	lua_xmove(co, L, nres);
	for (int i = nres; i >= 1; i--)
		lua_rawseti(L, base, i);
	lua_pushinteger(L, nres);
	lua_setfield(L, base, "n");
	lua_setiuservalue(L, task_idx, 3);
}

/* A failed task: its message with the traceback, kept and returned. The
 * copy of the error object stays on L at *err_idx; the message stays on
 * top of L (the returned string lives as long as it does). */
static const char *keep_error(lua_State *L, lua_State *co, struct bl_task *t, int task_idx,
                              int *err_idx)
{
	const char *m;

	/* A copy of the error object: the thread keeps its own, which
	 * closing it passes to the __close handlers. */
	lua_checkstack(co, 1);
	lua_pushvalue(co, -1);
	lua_xmove(co, L, 1);
	*err_idx = lua_gettop(L);
	m = lua_tostring(L, *err_idx);
	if (!m)
		m = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, *err_idx));
	/* The traceback, before the thread is closed and its stack gone. */
	luaL_traceback(L, co, lua_pushfstring(L, "task %d failed: %s", (int)t->id, m), 0);
	lua_pushvalue(L, -1);
	lua_setiuservalue(L, task_idx, 3);
	return lua_tostring(L, -1);
}

/* A task that yielded something other than a batlab wait. */
static const char *keep_bad_yield(lua_State *L, lua_State *co, struct bl_task *t, int task_idx)
{
	luaL_traceback(L, co, lua_pushfstring(L, "task %d failed: yield outside the batlab "
	               "API (coroutine.yield in a task; wait with batlab.sleep, ch:wait "
	               "or a device call)", (int)t->id), 0);
	lua_pushvalue(L, -1);
	lua_setiuservalue(L, task_idx, 3);
	return lua_tostring(L, -1);
}

/* Keep the outcome; the message to log (NULL: none). */
static const char *keep_outcome(lua_State *L, const struct end_args *a, int task_idx,
                                int *err_idx)
{
	switch (a->kind) {
	case BL_END_OK:
		keep_results(L, a->t->co, a->nres, task_idx);
		return NULL;
	case BL_END_ERROR:
		return keep_error(L, a->t->co, a->t, task_idx, err_idx);
	case BL_END_BAD_YIELD:
		return keep_bad_yield(L, a->t->co, a->t, task_idx);
	case BL_END_CANCEL:
		break;
	}
	return NULL;
}

/* ---- The Lua side of the end ------------------------------------------------- */

/* Make every bound object safe (the task's uservalue 2). */
static void make_bound_safe(struct bl_sched *s, lua_State *L, int task_idx)
{
	if (!s->safe_fn || lua_getiuservalue(L, task_idx, 2) != LUA_TTABLE) {
		lua_pop(L, 1);
		return;
	}
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		/* keys are the objects, values true */
		lua_pop(L, 1);
		s->safe_fn(L, lua_gettop(L), s->safe_ud);
	}
	lua_pop(L, 1);
}

/* Close the thread so its <close> variables run. err_idx (0: none) is
 * the failed task's own error, which closing hands back. */
static void close_thread(struct bl_sched *s, struct bl_task *t, lua_State *L, int err_idx)
{
	lua_State *co = t->co;
	int cst;

	lua_sethook(co, NULL, 0, 0);
	*(struct bl_task **)lua_getextraspace(co) = NULL;
	s->closing = true;
	cst = bl_closethread(co, L);
	s->closing = false;
	if (cst != LUA_OK && lua_gettop(co) > 0) {
		/* A failed (or interrupted) task's own error comes back: not news. Anything else
		 * is an error from a __close handler. */
		lua_xmove(co, L, 1);
		if (!(err_idx && lua_rawequal(L, -1, err_idx)) && !t->interrupted &&
		    !t->out_of_memory) {
			const char *cm = lua_tostring(L, -1);
			lua_pushfstring(L, "task %d: error in a <close> handler: %s", (int)t->id,
			                cm ? cm : luaL_typename(L, -1));
			task_log(s, t, lua_tostring(L, -1));
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
	}
	lua_settop(co, 0);
}

static int end_protected(lua_State *L)
{
	struct end_args *a = lua_touserdata(L, 1);
	struct bl_sched *s = a->s;
	struct bl_task *t = a->t;
	int task_idx, err_idx = 0;
	const char *msg;

	lua_settop(L, 0);
	luaL_checkstack(L, a->nres + 8, "too many results");
	bl_schedi_push_task(L, t);
	task_idx = lua_gettop(L);
	msg = keep_outcome(L, a, task_idx, &err_idx);

	/* C makes the hardware safe first, whatever the Lua cleanup does,
	 * and however the task ended: a procedure that returns with its
	 * current flowing leaves nobody to watch it. */
	make_bound_safe(s, L, task_idx);
	if (msg)
		task_log(s, t, msg);
	close_thread(s, t, L, err_idx);

	/* Drop the thread; unanchor. */
	lua_pushnil(L);
	lua_setiuservalue(L, task_idx, 1);
	bl_schedi_push_tasks(L);
	luaL_unref(L, -1, t->ref);
	return 0;
}

/* ---- The C side ---------------------------------------------------------------- */

static void unlink_live(struct bl_sched *s, struct bl_task *t)
{
	if (t->live_prev)
		t->live_prev->live_next = t->live_next;
	else
		s->live = t->live_next;
	if (t->live_next)
		t->live_next->live_prev = t->live_prev;
	t->live_next = t->live_prev = NULL;
	s->nlive--;
}

void bl_schedi_task_end(struct bl_sched *s, lua_State *L, struct bl_task *t,
                        enum bl_end_kind kind, int nres)
{
	struct end_args a = {s, t, kind, nres};
	int st;

	bl_schedi_wait_abort(&t->wait);
	bl_schedi_dequeue(s, t);
	t->state = kind == BL_END_OK ? BL_TASK_DONE
	         : kind == BL_END_CANCEL ? BL_TASK_CANCELLED : BL_TASK_FAILED;
	if (kind == BL_END_CANCEL)
		BL_INFO(MOD, "task %d cancelled", (int)t->id);
	lua_pushcfunction(L, end_protected);
	lua_pushlightuserdata(L, &a);
	st = lua_pcall(L, 1, 0, 0);
	if (st != LUA_OK) {
		bl_log(BL_LOG_ERROR, MOD, "task %d: cannot end cleanly: %s", (int)t->id,
		       lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
		lua_pop(L, 1);
	}
	t->co = NULL;
	t->ref = LUA_NOREF;
	s->nrefs--;
	unlink_live(s, t);
	while (t->joiners.head)
		bl_wait_complete(t->joiners.head, BL_OK);
}

void bl_schedi_end_out_of_memory(struct bl_sched *s, lua_State *L, struct bl_task *t)
{
	struct bl_engine *e = bl_engine_from_state(L);

	t->out_of_memory = true;
	if (e)
		bl_engine_memory_reserve(e, true);
	if (lua_gettop(t->co) > 0)
		lua_pop(t->co, 1);  /* the error object: "not enough memory" */
	lua_pushfstring(t->co, "not enough memory: the procedure went over the memory limit "
	                "(%d MB; BATLAB_MEMORY_MB)", e ? (int)(bl_engine_memory_limit(e) >> 20) : 0);
	bl_schedi_task_end(s, L, t, BL_END_ERROR, 0);
	lua_gc(L, LUA_GCCOLLECT);
	if (e)
		bl_engine_memory_reserve(e, false);
}
