/* sched.c - the coroutine scheduler. See sched.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "core/bl.h"
#include "lua/lua_util.h"
#include "lua/sched.h"

#define MOD "task"
#define DEFAULT_BUDGET 100000000u
#define HOOK_EVERY 100000u

/* 5.4.4 has lua_resetthread; 5.4.6 replaced it with lua_closethread. */
#if LUA_VERSION_RELEASE_NUM >= 50406
#define bl_closethread(co, from) lua_closethread(co, from)
#else
#define bl_closethread(co, from) ((void)(from), lua_resetthread(co))
#endif

struct bl_task {
	struct bl_sched *s;
	lua_State *co;              /* NULL once finished */
	int ref;                    /* in the tasks table while live */
	enum bl_task_state state;
	uint64_t id;
	int nargs;                  /* values on co for the first resume */
	bool queued;
	struct bl_task *ready_next;
	struct bl_task *live_next, *live_prev;
	uint64_t used;              /* instructions since the last resume */
	uint64_t budget;
	unsigned every;             /* count hook period */
	bool killed;
	struct bl_wait wait;
	struct bl_wait_list joiners; /* waits for this task's end */
};

struct bl_sched {
	lua_State *L;               /* main thread */
	lua_State *loop_L;          /* thread running the loop, NULL if none */
	struct bl_loop *loop;       /* a pool's loop */
	struct bl_loop *own_loop;   /* ours when no pool is open */
	struct bl_loop *ready_loop; /* where ready_timer is armed */
	struct bl_timer ready_timer;
	struct bl_task *ready_head, *ready_tail;
	size_t nready;
	struct bl_task *live;
	size_t nlive;
	struct bl_task *running;
	size_t nrefs, nwaits;
	uint64_t next_id, resumes, spawned;
	uint64_t budget;
	int depth;                  /* loop runs of ours in progress */
	bool closing;               /* a task's thread is being closed */
	bool catch_signals, interrupted, freed;
	bl_sched_safe_fn safe_fn;
	void *safe_ud;
	bl_sched_interrupt_fn intr_fn;
	void *intr_ud;
	bl_sched_log_fn log_fn;
	void *log_ud;
};

/* Registry keys (their addresses). */
static const char sched_key = 0;
static const char tasks_key = 0;
/* What every batlab wait yields: nothing in Lua can forge it. */
static const char yield_tag = 0;

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

static void task_log(struct bl_sched *s, struct bl_task *t, const char *msg)
{
	if (s->log_fn)
		s->log_fn(s->log_ud, t, msg);
	else
		bl_log(BL_LOG_ERROR, MOD, "%s", msg);
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
	clock = bl_lua_get_clock(s->L);
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

/* The loop in use, never creating one: from callbacks, where something
 * already runs on it. */
static struct bl_loop *cur_loop(const struct bl_sched *s)
{
	return s->loop ? s->loop : s->own_loop;
}

static void arm_ready(struct bl_sched *s)
{
	struct bl_loop *loop = cur_loop(s);

	if (!loop || bl_timer_active(&s->ready_timer))
		return;
	s->ready_loop = loop;
	bl_timer_start(loop, &s->ready_timer, bl_loop_now(loop), 0);
}

static void enqueue(struct bl_sched *s, struct bl_task *t)
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

static void dequeue(struct bl_sched *s, struct bl_task *t)
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

/* ---- Wait lists ------------------------------------------------------------- */

void bl_wait_list_add(struct bl_wait_list *l, struct bl_wait *w)
{
	bl_wait_unlink(w);
	w->list = l;
	w->next = NULL;
	w->prev = l->tail;
	if (l->tail)
		l->tail->next = w;
	else
		l->head = w;
	l->tail = w;
	l->n++;
}

void bl_wait_unlink(struct bl_wait *w)
{
	struct bl_wait_list *l = w->list;

	if (!l)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		l->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		l->tail = w->prev;
	l->n--;
	w->list = NULL;
	w->next = w->prev = NULL;
}

void bl_wait_list_move(struct bl_wait_list *to, struct bl_wait_list *from)
{
	while (from->head)
		bl_wait_list_add(to, from->head);
}

/* ---- Waits -------------------------------------------------------------------- */

static void reset_wait(struct bl_wait *w, struct bl_sched *s, struct bl_task *t)
{
	memset(w, 0, sizeof *w);
	w->sched = s;
	w->task = t;
	bl_timer_init(&w->timer, NULL, w);
}

void bl_wait_again(struct bl_wait *w)
{
	w->done = false;
	w->active = false;
	w->status = BL_OK;
	w->value = 0;
	w->number = 0;
	w->raw32 = 0;
	w->cancel = NULL;
	w->ctx = NULL;
}

/* Take w off everything it waits on; the cancel hook undoes the rest. */
static void wait_abort(struct bl_wait *w)
{
	struct bl_sched *s = w->sched;
	bl_wait_cancel_fn fn = w->cancel;

	if (bl_timer_active(&w->timer))
		bl_timer_stop(cur_loop(s), &w->timer);
	bl_wait_unlink(w);
	w->cancel = NULL;
	if (fn)
		fn(w);
	if (w->active) {
		w->active = false;
		s->nwaits--;
	}
}

void bl_wait_complete(struct bl_wait *w, int status)
{
	struct bl_sched *s = w->sched;

	if (w->done)
		return;
	w->done = true;
	w->status = status;
	w->cancel = NULL;
	if (bl_timer_active(&w->timer))
		bl_timer_stop(cur_loop(s), &w->timer);
	bl_wait_unlink(w);
	if (!w->active)
		return; /* completed before it yielded: bl_wait_yield sees done */
	w->active = false;
	s->nwaits--;
	if (w->task && w->task->state == BL_TASK_WAITING)
		enqueue(s, w->task);
}

static void wait_timer_fired(struct bl_loop *loop, struct bl_timer *tm, void *ud)
{
	struct bl_wait *w = ud;
	bl_wait_cancel_fn fn = w->cancel;

	(void)loop;
	(void)tm;
	w->cancel = NULL;
	bl_wait_unlink(w);
	if (fn)
		fn(w);
	bl_wait_complete(w, w->timer_status);
}

void bl_wait_after(struct bl_wait *w, uint64_t us, int status)
{
	w->timer_status = status;
	bl_timer_init(&w->timer, wait_timer_fired, w);
	bl_timer_after(bl_sched_loop(w->sched), &w->timer, us, 0);
}

struct bl_task *bl_sched_current(lua_State *L)
{
	struct bl_task *t = *(struct bl_task **)lua_getextraspace(L);

	return t && t->co == L ? t : NULL;
}

struct bl_task *bl_sched_running(const struct bl_sched *s)
{
	return s->running;
}

struct bl_wait *bl_wait_begin(lua_State *L, struct bl_wait *local, const char *what)
{
	struct bl_sched *s = bl_sched_get(L);
	struct bl_task *t = bl_sched_current(L);

	if (!s)
		luaL_error(L, "%s: the batlab scheduler is not loaded", what);
	if (s->closing)
		luaL_error(L, "%s cannot wait while a cancelled task is being closed "
		           "(its channels were already made safe)", what);
	if (t) {
		if (s->running != t)
			luaL_error(L, "%s: this task's coroutine was resumed outside the scheduler", what);
		if (!lua_isyieldable(L))
			luaL_error(L, "%s cannot wait here: the task is inside a C function that "
			           "cannot yield (a metamethod, a sort comparator, a require'd "
			           "chunk...); call it from the task's own code", what);
		reset_wait(&t->wait, s, t);
		return &t->wait;
	}
	if (s->running)
		luaL_error(L, "%s: called from a coroutine nested inside a task; batlab waits "
		           "must be called from the task's own coroutine", what);
	if (s->depth > 0)
		luaL_error(L, "%s cannot block here: this code runs from an event-loop "
		           "callback (spawn a task instead)", what);
	if (!bl_sched_loop(s))
		luaL_error(L, "%s: cannot create the event loop", what);
	reset_wait(local, s, NULL);
	return local;
}

struct bl_wait *bl_wait_ctx(lua_State *L, lua_KContext ctx)
{
	struct bl_wait *w = (struct bl_wait *)ctx;

	if (!w->done)
		luaL_error(L, "a task waiting in the batlab API was resumed by someone else");
	return w;
}

static bool wait_done(void *ud)
{
	return ((struct bl_wait *)ud)->done;
}

static bool no_live_tasks(void *ud)
{
	return ((struct bl_sched *)ud)->nlive == 0;
}

static void interrupt(struct bl_sched *s, lua_State *L);

/* Run our loop (from thread L, outside tasks) until pred or deadline. */
static int run_loop(struct bl_sched *s, lua_State *L, bl_loop_pred pred, void *ud,
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

int bl_wait_yield(lua_State *L, struct bl_wait *w, lua_KFunction k)
{
	struct bl_sched *s = w->sched;
	int rc;

	if (w->done)
		return k(L, LUA_YIELD, (lua_KContext)w);
	w->active = true;
	s->nwaits++;
	if (w->task) {
		w->task->state = BL_TASK_WAITING;
		lua_pushlightuserdata(L, (void *)&yield_tag);
		return lua_yieldk(L, 1, (lua_KContext)w, k);
	}
	rc = run_loop(s, L, wait_done, w, BL_NEVER);
	if (!w->done) {
		wait_abort(w);
		if (rc == BL_LOOP_STOPPED) {
			interrupt(s, L);
			lua_pushnil(L);
			lua_pushliteral(L, "interrupted");
			lua_pushliteral(L, "EINTR");
			return 3;
		}
		return bl_lua_fail(L, rc < 0 ? rc : BL_ERR_STATE,
		                   "nothing left that could complete this wait");
	}
	return k(L, LUA_YIELD, (lua_KContext)w);
}

/* ---- Tasks: the Lua side of the end of a task ---------------------------------- */

enum end_kind { END_OK, END_ERROR, END_BAD_YIELD, END_CANCEL };

struct end_args {
	struct bl_sched *s;
	struct bl_task *t;
	enum end_kind kind;
	int nres;
};

static void push_task(lua_State *L, struct bl_task *t)
{
	lua_rawgetp(L, LUA_REGISTRYINDEX, &tasks_key);
	lua_rawgeti(L, -1, t->ref);
	lua_remove(L, -2);
}

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

static int end_protected(lua_State *L)
{
	struct end_args *a = lua_touserdata(L, 1);
	struct bl_sched *s = a->s;
	struct bl_task *t = a->t;
	lua_State *co = t->co;
	int task_idx, err_idx = 0, cst;
	const char *msg = NULL;

	lua_settop(L, 0);
	luaL_checkstack(L, a->nres + 8, "too many results");
	push_task(L, t);
	task_idx = lua_gettop(L);

	switch (a->kind) {
	case END_OK: {
		int base;
		lua_createtable(L, a->nres, 1);
		base = lua_gettop(L);
		lua_xmove(co, L, a->nres);
		for (int i = a->nres; i >= 1; i--)
			lua_rawseti(L, base, i);
		lua_pushinteger(L, a->nres);
		lua_setfield(L, base, "n");
		lua_setiuservalue(L, task_idx, 3);
		break;
	}
	case END_ERROR: {
		const char *m;
		/* A copy of the error object: the thread keeps its own, which
		 * closing it passes to the __close handlers. */
		lua_checkstack(co, 1);
		lua_pushvalue(co, -1);
		lua_xmove(co, L, 1);
		err_idx = lua_gettop(L);
		m = lua_tostring(L, err_idx);
		if (!m)
			m = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, err_idx));
		/* The traceback, before the thread is closed and its stack gone. */
		luaL_traceback(L, co, lua_pushfstring(L, "task %d failed: %s", (int)t->id, m), 0);
		msg = lua_tostring(L, -1);
		lua_pushvalue(L, -1);
		lua_setiuservalue(L, task_idx, 3);
		break;
	}
	case END_BAD_YIELD:
		luaL_traceback(L, co, lua_pushfstring(L, "task %d failed: yield outside the batlab "
		               "API (coroutine.yield in a task; wait with batlab.sleep, ch:wait "
		               "or a device call)", (int)t->id), 0);
		msg = lua_tostring(L, -1);
		lua_pushvalue(L, -1);
		lua_setiuservalue(L, task_idx, 3);
		break;
	case END_CANCEL:
		break;
	}

	/* C makes the hardware safe first, whatever the Lua cleanup does,
	 * and however the task ended: a procedure that returns with its
	 * current flowing leaves nobody to watch it. */
	make_bound_safe(s, L, task_idx);
	if (msg)
		task_log(s, t, msg);

	lua_sethook(co, NULL, 0, 0);
	*(struct bl_task **)lua_getextraspace(co) = NULL;
	s->closing = true;
	cst = bl_closethread(co, L);
	s->closing = false;
	if (cst != LUA_OK && lua_gettop(co) > 0) {
		/* A failed task's own error comes back: not news. Anything else
		 * is an error from a __close handler. */
		lua_xmove(co, L, 1);
		if (!(err_idx && lua_rawequal(L, -1, err_idx))) {
			const char *cm = lua_tostring(L, -1);
			lua_pushfstring(L, "task %d: error in a <close> handler: %s", (int)t->id,
			                cm ? cm : luaL_typename(L, -1));
			task_log(s, t, lua_tostring(L, -1));
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
	}
	lua_settop(co, 0);

	/* Drop the thread; unanchor. */
	lua_pushnil(L);
	lua_setiuservalue(L, task_idx, 1);
	lua_rawgetp(L, LUA_REGISTRYINDEX, &tasks_key);
	luaL_unref(L, -1, t->ref);
	return 0;
}

/* The end of a task: C bookkeeping, then the Lua side, protected. */
static void task_end(struct bl_sched *s, lua_State *L, struct bl_task *t, enum end_kind kind,
                     int nres)
{
	struct end_args a = {s, t, kind, nres};
	int st;

	wait_abort(&t->wait);
	dequeue(s, t);
	t->state = kind == END_OK ? BL_TASK_DONE
	         : kind == END_CANCEL ? BL_TASK_CANCELLED : BL_TASK_FAILED;
	if (kind == END_CANCEL)
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
	if (t->live_prev)
		t->live_prev->live_next = t->live_next;
	else
		s->live = t->live_next;
	if (t->live_next)
		t->live_next->live_prev = t->live_prev;
	t->live_next = t->live_prev = NULL;
	s->nlive--;
	while (t->joiners.head)
		bl_wait_complete(t->joiners.head, BL_OK);
}

/* ---- Resuming ------------------------------------------------------------------- */

static void resume(struct bl_sched *s, struct bl_task *t)
{
	lua_State *L = bl_sched_lua(s);
	lua_State *co = t->co;
	int nres = 0, st;

	t->state = BL_TASK_RUNNING;
	t->used = 0;
	s->running = t;
	s->resumes++;
	st = lua_resume(co, s->loop_L, t->nargs, &nres);
	t->nargs = 0;
	s->running = NULL;
	if (st == LUA_YIELD) {
		if (t->state == BL_TASK_WAITING && nres == 1 &&
		    lua_touserdata(co, -1) == (void *)&yield_tag) {
			lua_pop(co, 1);
			return;
		}
		lua_pop(co, nres);
		task_end(s, L, t, END_BAD_YIELD, 0);
		return;
	}
	task_end(s, L, t, st == LUA_OK ? END_OK : END_ERROR, st == LUA_OK ? nres : 0);
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

static void count_hook(lua_State *L, lua_Debug *ar)
{
	struct bl_sched *s;
	struct bl_task *t;

	(void)ar;
	s = bl_sched_get(L);
	t = s ? s->running : NULL;
	if (!t)
		return;
	t->used += t->every;
	if (!t->killed && (t->budget == 0 || t->used < t->budget))
		return;
	if (!t->killed) {
		t->killed = true;
		/* From now on every instruction raises, so a pcall in the task
		 * cannot swallow the error and carry on. */
		lua_sethook(t->co, count_hook, LUA_MASKCOUNT, 1);
		if (L != t->co)
			lua_sethook(L, count_hook, LUA_MASKCOUNT, 1);
	}
	t->every = 1;
	luaL_error(L, "task %d ran more than %I instructions without waiting (an endless "
	           "loop?): stopped", (int)t->id, (lua_Integer)t->budget);
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
	reset_wait(&t->wait, s, t);
	/* New threads copy the main thread's extra space: overwrite it. */
	*(struct bl_task **)lua_getextraspace(co) = t;
	if (t->budget)
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
	enqueue(s, t);
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
	push_task(L, t);
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
		push_task(L, t);
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
	task_end(s, L, t, END_CANCEL, 0);
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
		task_end(s, L, t, END_CANCEL, 0);
	}
}

/* ---- Running ---------------------------------------------------------------------- */

static void interrupt(struct bl_sched *s, lua_State *L)
{
	s->interrupted = true;
	BL_WARN(MOD, "interrupted: cancelling %zu tasks, making every channel safe", s->nlive);
	bl_sched_cancel_all(L, s);
	if (s->intr_fn)
		s->intr_fn(s, s->intr_ud);
}

int bl_sched_run(struct bl_sched *s, lua_State *L, uint64_t deadline_us)
{
	int rc = run_loop(s, L, no_live_tasks, s, deadline_us);

	if (rc == BL_LOOP_STOPPED)
		interrupt(s, L);
	return rc;
}

int bl_sched_run_for(struct bl_sched *s, lua_State *L, uint64_t deadline_us)
{
	int rc = run_loop(s, L, NULL, NULL, deadline_us);

	if (rc == BL_LOOP_STOPPED)
		interrupt(s, L);
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

static int l_sched_gc(lua_State *L)
{
	struct bl_sched *s = lua_touserdata(L, 1);

	if (s->freed)
		return 0;
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
	lua_createtable(L, 0, 1);
	lua_pushcfunction(L, l_sched_gc);
	lua_setfield(L, -2, "__gc");
	lua_setmetatable(L, -2);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &sched_key);
	lua_newtable(L);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &tasks_key);
	*(struct bl_task **)lua_getextraspace(s->L) = NULL;
}
