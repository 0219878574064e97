/* sched.c - the coroutine scheduler: the ready queue, spawning,
 * resuming, running the loop, hooks and settings. Waits are in
 * sched_wait.c, the end of a task in sched_end.c. See sched.h. */
#include <string.h>

#include <lauxlib.h>

#include "core/bl.h"
#include "lua/engine.h"
#include "lua/sched_int.h"

#define MOD BL_SCHED_MOD
#define DEFAULT_BUDGET 100000000u
#define HOOK_EVERY 100000u

/* Registry keys (their addresses). */
static const char sched_key = 0;
static const char tasks_key = 0;

static void resume_ready(struct bl_loop *loop, struct bl_timer *tm, void *ud);
static void arm_ready(struct bl_sched *s);

/* ---- Small helpers -------------------------------------------------------- */

const char *bl_task_state_name(enum bl_task_state st)
{
	static const char *const names[] = {
		[BL_TASK_READY] = "ready", [BL_TASK_WAITING] = "waiting",
		[BL_TASK_RUNNING] = "running", [BL_TASK_DONE] = "done",
		[BL_TASK_FAILED] = "failed", [BL_TASK_CANCELLED] = "cancelled",
	};
	return (unsigned)st < BL_ARRAY_LEN(names) ? names[st] : "?";
}

static bool finished(const struct bl_task *t)
{
	return t->state == BL_TASK_DONE || t->state == BL_TASK_FAILED ||
	       t->state == BL_TASK_CANCELLED;
}

struct bl_sched *bl_sched_get(lua_State *L)
{
	struct bl_sched *s;

	lua_rawgetp(L, LUA_REGISTRYINDEX, &sched_key);
	s = lua_touserdata(L, -1);
	lua_pop(L, 1);
	return s;
}

lua_State *bl_sched_lua(struct bl_sched *s)
{
	return s->loop_L ? s->loop_L : s->L;
}

/* ---- Loops ---------------------------------------------------------------- */

static void stop_ready_timer(struct bl_sched *s)
{
	if (s->ready_loop)
		bl_timer_stop(s->ready_loop, &s->ready_timer);
	s->ready_loop = NULL;
}

void bl_sched_set_loop(struct bl_sched *s, struct bl_loop *loop)
{
	if (s->nwaits > 0)
		BL_WARN(MOD, "event loop changed with %zu waits pending", s->nwaits);
	stop_ready_timer(s);
	s->loop = loop;
	if (s->ready_head && bl_sched_loop(s))
		arm_ready(s);
}

struct bl_loop *bl_sched_loop(struct bl_sched *s)
{
	const struct bl_clock *clock;

	if (s->loop)
		return s->loop;
	clock = s->clock_fn ? s->clock_fn(s->L) : bl_clock_real();
	/* The engine's clock may have changed (a pool came and went): a
	 * private loop follows it while nothing waits on the old one. */
	if (s->own_loop && bl_loop_clock(s->own_loop) != clock && s->nwaits == 0 &&
	    !s->ready_head) {
		stop_ready_timer(s);
		bl_loop_free(s->own_loop);
		s->own_loop = NULL;
	}
	if (!s->own_loop)
		s->own_loop = bl_loop_new(clock);
	return s->own_loop;
}

struct bl_loop *bl_schedi_cur_loop(const struct bl_sched *s)
{
	return s->loop ? s->loop : s->own_loop;
}

static void arm_ready(struct bl_sched *s)
{
	struct bl_loop *loop = bl_schedi_cur_loop(s);

	if (!loop || bl_timer_active(&s->ready_timer))
		return;
	s->ready_loop = loop;
	bl_timer_start(loop, &s->ready_timer, bl_loop_now(loop), 0);
}

void bl_schedi_enqueue(struct bl_sched *s, struct bl_task *t)
{
	if (t->queued)
		return;
	t->state = BL_TASK_READY;
	t->queued = true;
	t->ready_next = NULL;
	if (s->ready_tail)
		s->ready_tail->ready_next = t;
	else
		s->ready_head = t;
	s->ready_tail = t;
	s->nready++;
	arm_ready(s);
}

void bl_schedi_dequeue(struct bl_sched *s, struct bl_task *t)
{
	struct bl_task **pp = &s->ready_head, *prev = NULL;

	if (!t->queued)
		return;
	while (*pp && *pp != t) {
		prev = *pp;
		pp = &(*pp)->ready_next;
	}
	if (*pp) {
		*pp = t->ready_next;
		if (s->ready_tail == t)
			s->ready_tail = prev;
		s->nready--;
	}
	t->queued = false;
	t->ready_next = NULL;
}

static struct bl_task *pop_ready(struct bl_sched *s)
{
	struct bl_task *t = s->ready_head;

	if (!t)
		return NULL;
	s->ready_head = t->ready_next;
	if (!s->ready_head)
		s->ready_tail = NULL;
	s->nready--;
	t->queued = false;
	t->ready_next = NULL;
	return t;
}

/* ---- Tasks ---------------------------------------------------------------------- */

struct bl_task *bl_sched_current(lua_State *L)
{
	struct bl_task *t = *(struct bl_task **)lua_getextraspace(L);

	return t && t->co == L ? t : NULL;
}

struct bl_task *bl_sched_running(const struct bl_sched *s)
{
	return s->running;
}

void bl_schedi_push_tasks(lua_State *L)
{
	lua_rawgetp(L, LUA_REGISTRYINDEX, &tasks_key);
}

void bl_schedi_push_task(lua_State *L, struct bl_task *t)
{
	bl_schedi_push_tasks(L);
	lua_rawgeti(L, -1, t->ref);
	lua_remove(L, -2);
}

/* ---- Resuming ------------------------------------------------------------------- */

/* Did task t have an allocation refused (the engine's memory limit)? */
static bool over_memory(lua_State *L, struct bl_task *t)
{
	struct bl_engine *e = bl_engine_from_state(L);

	return e && bl_engine_memory_refusals(e) != t->refusals;
}

static void resume(struct bl_sched *s, struct bl_task *t)
{
	lua_State *L = bl_sched_lua(s);
	lua_State *co = t->co;
	struct bl_engine *e = bl_engine_from_state(L);
	int nres = 0, st;

	t->state = BL_TASK_RUNNING;
	t->used = 0;
	t->refusals = e ? bl_engine_memory_refusals(e) : 0;
	s->running = t;
	s->resumes++;
	st = lua_resume(co, s->loop_L, t->nargs, &nres);
	t->nargs = 0;
	s->running = NULL;
	if (st == LUA_YIELD) {
		if (t->state == BL_TASK_WAITING && nres == 1 &&
		    lua_touserdata(co, -1) == (void *)&bl_schedi_yield_tag) {
			lua_pop(co, 1);
			return;
		}
		lua_pop(co, nres);
		bl_schedi_task_end(s, L, t, BL_END_BAD_YIELD, 0);
		return;
	}
	if (st == LUA_ERRMEM || (st != LUA_OK && t->out_of_memory)) {
		bl_schedi_end_out_of_memory(s, L, t);
		return;
	}
	/* A task stopped by a signal was cancelled, as every other task of
	 * the run is: it did not fail. */
	bl_schedi_task_end(s, L, t, st == LUA_OK ? BL_END_OK : t->interrupted ? BL_END_CANCEL
	                   : BL_END_ERROR, st == LUA_OK ? nres : 0);
}

static void resume_ready(struct bl_loop *loop, struct bl_timer *tm, void *ud)
{
	struct bl_sched *s = ud;
	size_t n = s->nready;

	(void)loop;
	(void)tm;
	s->ready_loop = NULL;
	/* Never from inside another task's resume (someone ran the loop from
	 * a task): come back later. */
	if (s->running) {
		arm_ready(s);
		return;
	}
	/* One resume per queued task: tasks woken meanwhile wait for the next
	 * round, so none can starve the others. */
	while (n-- > 0) {
		struct bl_task *t = pop_ready(s);
		if (!t)
			break;
		resume(s, t);
	}
	if (s->ready_head)
		arm_ready(s);
}

/* ---- Runaway tasks ------------------------------------------------------------------ */

/* Push "FILE:LINE: " of the code that runs: the innermost Lua frame that
 * is not batlab's own library (lua/), so that an endless loop inside
 * steps.charge is reported at the procedure's call; else the innermost
 * Lua frame; else "". */
static void push_user_where(lua_State *L)
{
	struct bl_engine *e = bl_engine_from_state(L);
	const char *dir = e ? bl_engine_luadir(e) : NULL;
	size_t dlen = dir ? strlen(dir) : 0;
	lua_Debug ar, first;
	bool have_first = false;

	for (int level = 0; lua_getstack(L, level, &ar); level++) {
		if (!lua_getinfo(L, "Sl", &ar) || ar.currentline <= 0)
			continue;
		if (!have_first) {
			first = ar;
			have_first = true;
		}
		if (!(dir && ar.source[0] == '@' && strncmp(ar.source + 1, dir, dlen) == 0 &&
		      ar.source[1 + dlen] == '/')) {
			lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
			return;
		}
	}
	if (have_first)
		lua_pushfstring(L, "%s:%d: ", first.short_src, first.currentline);
	else
		lua_pushliteral(L, "");
}

/* Every `every` instructions of a task: the instruction budget, and a
 * signal (Ctrl-C, SIGTERM, SIGHUP) that came while the task computes
 * without waiting - the loop cannot see it until the task yields. */
static void count_hook(lua_State *L, lua_Debug *ar)
{
	struct bl_sched *s;
	struct bl_task *t;
	struct bl_loop *loop;
	bool signalled;

	(void)ar;
	s = bl_sched_get(L);
	t = s ? s->running : NULL;
	if (!t)
		return;
	t->used += t->every;
	loop = bl_schedi_cur_loop(s);
	signalled = loop && bl_loop_signal_pending(loop);
	if (!t->killed && !signalled && (t->budget == 0 || t->used < t->budget) &&
	    !over_memory(L, t))
		return;
	if (!t->killed) {
		t->killed = true;
		t->interrupted = signalled;
		t->out_of_memory = !signalled && over_memory(L, t);
		/* From now on every instruction raises, so a pcall in the task
		 * cannot swallow the error and carry on. */
		lua_sethook(t->co, count_hook, LUA_MASKCOUNT, 1);
		if (L != t->co)
			lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
	}
	t->every = 1;
	if (t->out_of_memory) {
		/* An interned string: there may be no memory for a new one. */
		lua_pushliteral(L, "not enough memory");
		lua_error(L);
	}
	if (signalled || t->budget == 0 || t->used < t->budget)
		luaL_error(L, "task %d interrupted (signal %d) while it computed: stopped", (int)t->id,
		           loop ? bl_loop_caught_signal(loop) : 0);
	push_user_where(L);
	lua_pushfstring(L, "ran more than %I instructions without waiting (an endless loop?): "
	                "stopped", (lua_Integer)t->budget);
	lua_concat(L, 2);
	lua_error(L);
}

/* ---- Spawning and cancelling ---------------------------------------------------------- */

struct bl_task *bl_sched_spawn(lua_State *L, int nargs)
{
	struct bl_sched *s = bl_sched_get(L);
	struct bl_task *t;
	lua_State *co;
	int fn = lua_gettop(L) - nargs;

	luaL_checktype(L, fn, LUA_TFUNCTION);
	if (!s)
		luaL_error(L, "the batlab scheduler is not loaded");
	if (!bl_sched_loop(s))
		luaL_error(L, "cannot create the event loop");
	luaL_checkstack(L, 4, NULL);
	t = lua_newuserdatauv(L, sizeof *t, 3);
	memset(t, 0, sizeof *t);
	t->ref = LUA_NOREF;
	luaL_setmetatable(L, BL_TASK_MT);
	co = lua_newthread(L);
	lua_setiuservalue(L, -2, 1);              /* the task anchors its thread */
	lua_insert(L, fn);                        /* task fn args... */
	lua_xmove(L, co, nargs + 1);              /* task */

	t->s = s;
	t->co = co;
	t->id = ++s->next_id;
	t->nargs = nargs;
	t->budget = s->budget;
	t->every = t->budget && t->budget < HOOK_EVERY ? (unsigned)t->budget : HOOK_EVERY;
	bl_schedi_wait_reset(&t->wait, s, t);
	/* New threads copy the main thread's extra space: overwrite it. */
	*(struct bl_task **)lua_getextraspace(co) = t;
	/* Always: the hook also notices a signal while the task computes. */
	lua_sethook(co, count_hook, LUA_MASKCOUNT, (int)t->every);

	lua_rawgetp(L, LUA_REGISTRYINDEX, &tasks_key);
	lua_pushvalue(L, -2);
	t->ref = luaL_ref(L, -2);
	lua_pop(L, 1);
	s->nrefs++;
	s->spawned++;
	t->live_next = s->live;
	if (s->live)
		s->live->live_prev = t;
	s->live = t;
	s->nlive++;
	bl_schedi_enqueue(s, t);
	return t;
}

int bl_task_join(struct bl_task *t, struct bl_wait *w)
{
	if (w->task == t)
		return BL_ERR_STATE;
	if (finished(t))
		bl_wait_complete(w, BL_OK);
	else
		bl_wait_list_add(&t->joiners, w);
	return BL_OK;
}

void bl_task_bind(lua_State *L, struct bl_task *t, int idx)
{
	idx = lua_absindex(L, idx);
	if (finished(t))
		return;
	bl_schedi_push_task(L, t);
	if (lua_getiuservalue(L, -1, 2) != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_newtable(L);
		lua_pushvalue(L, -1);
		lua_setiuservalue(L, -3, 2);
	}
	lua_pushvalue(L, idx);
	lua_pushboolean(L, 1);
	lua_rawset(L, -3);
	lua_pop(L, 2);
}

void bl_task_push(lua_State *L, struct bl_task *t)
{
	if (t->ref != LUA_NOREF) {
		bl_schedi_push_task(L, t);
		return;
	}
	lua_pushnil(L);
}

enum bl_task_state bl_task_state(const struct bl_task *t) { return t->state; }
uint64_t bl_task_id(const struct bl_task *t) { return t->id; }

struct bl_task *bl_task_check(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, BL_TASK_MT);
}

int bl_sched_cancel(lua_State *L, struct bl_task *t)
{
	struct bl_sched *s = t->s;

	if (finished(t))
		return BL_OK;
	if (t->state == BL_TASK_RUNNING)
		return BL_ERR_STATE;
	bl_schedi_task_end(s, L, t, BL_END_CANCEL, 0);
	return BL_OK;
}

void bl_sched_cancel_all(lua_State *L, struct bl_sched *s)
{
	/* From the head each time: a <close> handler of one task may cancel
	 * (or spawn) others while we go. */
	for (;;) {
		struct bl_task *t = s->live;

		while (t && t->state == BL_TASK_RUNNING)
			t = t->live_next;
		if (!t)
			break;
		bl_schedi_task_end(s, L, t, BL_END_CANCEL, 0);
	}
}

/* ---- Running ---------------------------------------------------------------------- */

static bool no_live_tasks(void *ud)
{
	return ((struct bl_sched *)ud)->nlive == 0;
}

int bl_schedi_run_loop(struct bl_sched *s, lua_State *L, bl_loop_pred pred, void *ud,
                       uint64_t deadline)
{
	struct bl_loop *loop = bl_sched_loop(s);
	lua_State *old = s->loop_L;
	bool caught = false;
	int rc;

	if (!loop)
		return BL_ERR_MEM;
	if (s->catch_signals && s->depth == 0)
		caught = bl_loop_catch_signals(loop) == BL_OK;
	s->depth++;
	s->loop_L = L;
	rc = bl_loop_run_until(loop, pred, ud, deadline);
	s->loop_L = old;
	s->depth--;
	if (caught)
		bl_loop_release_signals();
	return rc;
}

void bl_schedi_interrupt(struct bl_sched *s, lua_State *L)
{
	s->interrupted = true;
	BL_WARN(MOD, "interrupted: cancelling %zu tasks, making every channel safe", s->nlive);
	bl_sched_cancel_all(L, s);
	if (s->intr_fn)
		s->intr_fn(s, s->intr_ud);
}

int bl_sched_run(struct bl_sched *s, lua_State *L, uint64_t deadline_us)
{
	int rc = bl_schedi_run_loop(s, L, no_live_tasks, s, deadline_us);

	if (rc == BL_LOOP_STOPPED)
		bl_schedi_interrupt(s, L);
	return rc;
}

int bl_sched_run_for(struct bl_sched *s, lua_State *L, uint64_t deadline_us)
{
	int rc = bl_schedi_run_loop(s, L, NULL, NULL, deadline_us);

	if (rc == BL_LOOP_STOPPED)
		bl_schedi_interrupt(s, L);
	return rc == BL_ERR_TIMEOUT ? BL_OK : rc;
}

size_t bl_sched_live(const struct bl_sched *s)
{
	return s->nlive;
}

void bl_sched_stats(const struct bl_sched *s, struct bl_sched_stats *out)
{
	out->tasks = s->nlive;
	out->refs = s->nrefs;
	out->waits = s->nwaits;
	out->ready = s->nready;
	out->resumes = s->resumes;
	out->spawned = s->spawned;
}

/* ---- Hooks and settings ------------------------------------------------------------- */

void bl_sched_set_clock(struct bl_sched *s, bl_sched_clock_fn fn) { s->clock_fn = fn; }

void bl_sched_set_safe_hook(struct bl_sched *s, bl_sched_safe_fn fn, void *ud)
{
	s->safe_fn = fn;
	s->safe_ud = ud;
}

void bl_sched_set_interrupt_hook(struct bl_sched *s, bl_sched_interrupt_fn fn, void *ud)
{
	s->intr_fn = fn;
	s->intr_ud = ud;
}

void bl_sched_set_log(struct bl_sched *s, bl_sched_log_fn fn, void *ud)
{
	s->log_fn = fn;
	s->log_ud = ud;
}

void bl_sched_set_budget(struct bl_sched *s, uint64_t instructions) { s->budget = instructions; }
uint64_t bl_sched_budget(const struct bl_sched *s) { return s->budget; }
void bl_sched_set_catch_signals(struct bl_sched *s, bool on) { s->catch_signals = on; }
bool bl_sched_interrupted(const struct bl_sched *s) { return s->interrupted; }
void bl_sched_clear_interrupted(struct bl_sched *s) { s->interrupted = false; }

/* ---- Life ------------------------------------------------------------------------- */

/* An allocation over the engine's limit while a task runs: its hook fires
 * at the next instruction and stops it, before a pcall that swallowed
 * "not enough memory" can try again (each try costs a full collection). */
static void on_memory_refusal(void *ud)
{
	struct bl_sched *s = ud;
	struct bl_task *t = s->running;

	if (t && t->co && !t->killed) {
		t->every = 1;
		lua_sethook(t->co, count_hook, LUA_MASKCOUNT, 1);
	}
}

static int l_sched_gc(lua_State *L)
{
	struct bl_sched *s = lua_touserdata(L, 1);

	if (s->freed)
		return 0;
	if (bl_engine_from_state(L))
		bl_engine_on_memory_refusal(bl_engine_from_state(L), NULL, NULL);
	bl_sched_cancel_all(L, s);
	stop_ready_timer(s);
	if (s->own_loop)
		bl_loop_free(s->own_loop);
	s->own_loop = NULL;
	s->loop = NULL;
	s->freed = true;
	return 0;
}

void bl_sched_open(lua_State *L)
{
	struct bl_sched *s;

	s = lua_newuserdatauv(L, sizeof *s, 0);
	memset(s, 0, sizeof *s);
	lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
	s->L = lua_tothread(L, -1);
	lua_pop(L, 1);
	s->budget = DEFAULT_BUDGET;
	s->catch_signals = true;
	bl_timer_init(&s->ready_timer, resume_ready, s);
	if (bl_engine_from_state(L))
		bl_engine_on_memory_refusal(bl_engine_from_state(L), on_memory_refusal, s);
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, l_sched_gc);
	lua_setfield(L, -2, "__gc");
	lua_setmetatable(L, -2);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &sched_key);
	lua_newtable(L);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &tasks_key);
	*(struct bl_task **)lua_getextraspace(s->L) = NULL;
}
