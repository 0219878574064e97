/* sched_wait.c - wait lists and waits: how a binding's call waits, in a
 * task (it yields) or outside one (it runs the loop). See sched.h. */
#include <string.h>

#include <lauxlib.h>

#include "core/bl.h"
#include "lua/sched_int.h"

const char bl_schedi_yield_tag = 0;

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

void bl_schedi_wait_reset(struct bl_wait *w, struct bl_sched *s, struct bl_task *t)
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

void bl_schedi_wait_abort(struct bl_wait *w)
{
	struct bl_sched *s = w->sched;
	bl_wait_cancel_fn fn = w->cancel;

	if (bl_timer_active(&w->timer))
		bl_timer_stop(bl_schedi_cur_loop(s), &w->timer);
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
		bl_timer_stop(bl_schedi_cur_loop(s), &w->timer);
	bl_wait_unlink(w);
	if (!w->active)
		return; /* completed before it yielded: bl_wait_yield sees done */
	w->active = false;
	s->nwaits--;
	if (w->task && w->task->state == BL_TASK_WAITING)
		bl_schedi_enqueue(s, w->task);
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
		bl_schedi_wait_reset(&t->wait, s, t);
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
	bl_schedi_wait_reset(local, s, NULL);
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

/* A failure the way the API reports one: nil, message, code. */
static int push_fail(lua_State *L, const char *msg, const char *code)
{
	lua_pushnil(L);
	lua_pushstring(L, msg);
	lua_pushstring(L, code);
	return 3;
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
		lua_pushlightuserdata(L, (void *)&bl_schedi_yield_tag);
		return lua_yieldk(L, 1, (lua_KContext)w, k);
	}
	rc = bl_schedi_run_loop(s, L, wait_done, w, BL_NEVER);
	if (!w->done) {
		bl_schedi_wait_abort(w);
		if (rc == BL_LOOP_STOPPED) {
			bl_schedi_interrupt(s, L);
			return push_fail(L, "interrupted", "EINTR");
		}
		return push_fail(L, "nothing left that could complete this wait",
		                 bl_strcode(rc < 0 ? rc : BL_ERR_STATE));
	}
	return k(L, LUA_YIELD, (lua_KContext)w);
}
