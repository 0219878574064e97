/* lua_await.c - how Device and Channel calls wait for the operations they
 * start (lua_devobj.h), and the checks and failure messages they share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "core/bl.h"
#include "lua/lua_devobj.h"

#define MOD "lua"

struct holder *bl_holder_new(struct bl_wait *w, struct bl_channel *resafe)
{
	struct holder *h = calloc(1, sizeof *h);

	if (!h)
		return NULL;
	h->w = w;
	h->s = w->sched;
	h->resafe = resafe;
	h->progress_ref = LUA_NOREF;
	return h;
}

void bl_holder_free(struct holder *h)
{
	if (h->progress_ref != LUA_NOREF)
		luaL_unref(bl_sched_lua(h->s), LUA_REGISTRYINDEX, h->progress_ref);
	free(h);
}

/* The operation ended after its wait was abandoned: the failure path made
 * the channel safe before the operation finished, so once more. */
static void resafe(struct holder *h)
{
	if (h->resafe)
		bl_channel_safe(h->resafe, NULL, NULL);
}

void bl_holder_op_done(struct bl_device *d, struct bl_op *op, int status, void *ud)
{
	struct holder *h = ud;
	struct bl_wait *w = h->w;

	(void)d;
	if (w) {
		w->value = bl_op_value(op);
		w->number = bl_op_number(op);
		w->raw32 = bl_op_raw32(op);
		if (h->want_cal)
			memcpy(w->payload.bytes, &h->cal, sizeof h->cal);
		bl_wait_complete(w, status);
	} else {
		resafe(h);
	}
	bl_holder_free(h);
}

void bl_holder_chan_done(struct bl_channel *ch, int status, double number, const char *what,
                         void *ud)
{
	struct holder *h = ud;
	struct bl_wait *w = h->w;

	(void)ch;
	if (w) {
		w->number = number;
		snprintf((char *)w->payload.bytes, sizeof w->payload.bytes, "%s", what ? what : "");
		bl_wait_complete(w, status);
	} else {
		resafe(h);
	}
	bl_holder_free(h);
}

const char *bl_holder_what(const struct bl_wait *w)
{
	return (const char *)w->payload.bytes;
}

static void holder_abandon(struct bl_wait *w)
{
	struct holder *h = w->ctx;

	if (h)
		h->w = NULL;
}

int bl_await_op(lua_State *L, struct bl_wait *w, struct holder *h, struct bl_op *op,
                lua_KFunction k)
{
	if (w->done)   /* it completed at once (h is gone) */
		return bl_wait_yield(L, w, k);
	if (!op) {
		bl_holder_free(h);
		return bl_lua_fail(L, BL_ERR_CLOSED, "the device is closed");
	}
	w->ctx = h;
	w->cancel = holder_abandon;
	return bl_wait_yield(L, w, k);
}

int bl_await_chan(lua_State *L, struct bl_wait *w, struct holder *h, int started,
                  lua_KFunction k)
{
	if (w->done)
		return bl_wait_yield(L, w, k);
	if (started != BL_OK) {
		bl_holder_free(h);
		return bl_lua_fail(L, started, "%s", started == BL_ERR_CLOSED ? "the device is closed"
		                                                               : bl_strerror(started));
	}
	w->ctx = h;
	w->cancel = holder_abandon;
	return bl_wait_yield(L, w, k);
}

/* ---- checks and failures ------------------------------------------------------ */

struct bl_lua_device *bl_lua_check_device(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, BL_LUA_DEVICE);
}

int bl_lua_check_cell(lua_State *L, int arg)
{
	lua_Integer c = luaL_checkinteger(L, arg);

	luaL_argcheck(L, c >= 0 && c < BL_CELLS, arg, "cell must be 0..3");
	return (int)c;
}

double bl_lua_check_amps(lua_State *L, int arg, bool zero_ok)
{
	lua_Number a = luaL_checknumber(L, arg);
	double max = BL_SETPOINT_MAX / 128.0;

	if (!(a >= 0 && a <= max) || (!zero_ok && a == 0))
		luaL_argerror(L, arg, lua_pushfstring(L, "current must be %s0 and at most %f A",
		                                      zero_ok ? ">= " : "> ", max));
	return a;
}

int bl_lua_fail_detached(lua_State *L, const struct bl_lua_device *ld)
{
	return bl_lua_fail(L, BL_ERR_CLOSED, "Batlab %d on %s: device detached", (int)ld->serial,
	                   ld->port);
}

int bl_lua_fail_chan(lua_State *L, int status, const struct lchan *c, const char *what)
{
	return bl_lua_fail(L, status, "Batlab %d cell %d: %s: %s", (int)c->ld->serial, c->cell,
	                   what, bl_strerror(status));
}

void bl_lua_bind_task(lua_State *L, struct bl_wait *w, struct lchan *c, int idx)
{
	if (!w->task || c->bound_task == bl_task_id(w->task))
		return;
	bl_task_bind(L, w->task, idx);
	c->bound_task = bl_task_id(w->task);
}
