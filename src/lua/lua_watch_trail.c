/* lua_watch_trail.c - batlab.trail: the recent (time, voltage) pairs of a
 * step, kept in C so that ch:watch (lua_watch.c) can add the reports it
 * lets pass, and tell whether a report would end a dV/dt condition
 * without handing it to Lua. The step's Lua code pushes the reports it
 * does see into the same trail, so the history is the same one whether a
 * report was seen by the watch or by Lua.
 *
 *   local tr = batlab.trail{ window = 60 }  -- the last 60 s (and at least 2 pairs)
 *   local tr = batlab.trail{ keep = 5 }     -- the last 5 pairs
 *   local slope = tr:push(t, v)   -- window: |v - v_first| / (t - t_first) once
 *                                 -- the trail spans the window, else nil
 *   tr:values()                   -- the voltages, oldest first
 *   #tr                           -- how many pairs are kept
 *
 * A window trail drops its oldest pair while the second oldest is at
 * least `window` seconds before the newest (keeping two at least): the
 * slope is over the shortest span of the history that covers the window.
 * The arithmetic is that of the Lua evaluator it replaces, double for
 * double, so a step ends on the same report either way. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "lua/lua_devobj.h"

#define TRAIL_MT "batlab.Trail"

/* The i-th oldest pair. */
static double tr_t(const struct bl_trail *tr, size_t i)
{
	return tr->t[(tr->head + i) % tr->cap];
}

static double tr_v(const struct bl_trail *tr, size_t i)
{
	return tr->v[(tr->head + i) % tr->cap];
}

/* How many of the oldest pairs a push of time t would drop. */
static size_t to_drop(const struct bl_trail *tr, double t, size_t n_after)
{
	size_t f = 0;

	if (tr->window < 0) {
		return n_after > tr->keep ? n_after - tr->keep : 0;
	}
	/* the pair after the first is always an old one here: n_after - f > 2 */
	while (n_after - f > 2 && t - tr_t(tr, f + 1) >= tr->window)
		f++;
	return f;
}

bool bl_trail_slope_if(const struct bl_trail *tr, double t, double v, double *slope)
{
	size_t f;
	double ft, fv;

	if (tr->window < 0)
		return false;
	f = to_drop(tr, t, tr->n + 1);
	ft = f < tr->n ? tr_t(tr, f) : t;
	fv = f < tr->n ? tr_v(tr, f) : v;
	if (t - ft < tr->window)
		return false;
	*slope = fabs(v - fv) / (t - ft);
	return true;
}

static bool grow(struct bl_trail *tr)
{
	size_t cap = tr->cap ? tr->cap * 2 : 16;
	double *t = malloc(cap * sizeof *t), *v = malloc(cap * sizeof *v);

	if (!t || !v) {
		free(t);
		free(v);
		return false;
	}
	for (size_t i = 0; i < tr->n; i++) {
		t[i] = tr_t(tr, i);
		v[i] = tr_v(tr, i);
	}
	free(tr->t);
	free(tr->v);
	tr->t = t;
	tr->v = v;
	tr->cap = cap;
	tr->head = 0;
	return true;
}

bool bl_trail_room(struct bl_trail *tr)
{
	return tr->n < tr->cap || grow(tr);
}

bool bl_trail_push(struct bl_trail *tr, double t, double v)
{
	size_t f, at;

	if (!bl_trail_room(tr))
		return false;
	at = (tr->head + tr->n) % tr->cap;
	tr->t[at] = t;
	tr->v[at] = v;
	tr->n++;
	f = to_drop(tr, t, tr->n);
	tr->head = (tr->head + f) % tr->cap;
	tr->n -= f;
	return true;
}

struct bl_trail *bl_trail_check(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, TRAIL_MT);
}

struct bl_trail *bl_trail_test(lua_State *L, int idx)
{
	return luaL_testudata(L, idx, TRAIL_MT);
}

static int l_trail_push(lua_State *L)
{
	struct bl_trail *tr = bl_trail_check(L, 1);
	double t = luaL_checknumber(L, 2), v = luaL_checknumber(L, 3), slope;
	bool spans = bl_trail_slope_if(tr, t, v, &slope);

	if (!bl_trail_push(tr, t, v))
		return luaL_error(L, "trail: out of memory");
	if (!spans)
		return 0;
	lua_pushnumber(L, slope);
	return 1;
}

static int l_trail_values(lua_State *L)
{
	struct bl_trail *tr = bl_trail_check(L, 1);

	lua_createtable(L, (int)tr->n, 0);
	for (size_t i = 0; i < tr->n; i++) {
		lua_pushnumber(L, tr_v(tr, i));
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

static int l_trail_len(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)bl_trail_check(L, 1)->n);
	return 1;
}

static int l_trail_gc(lua_State *L)
{
	struct bl_trail *tr = bl_trail_check(L, 1);

	free(tr->t);
	free(tr->v);
	tr->t = tr->v = NULL;
	tr->n = tr->cap = 0;
	return 0;
}

/* batlab.trail{ window = s } or batlab.trail{ keep = n } */
static int l_trail_new(lua_State *L)
{
	struct bl_trail *tr;
	lua_Number window = -1, keep = 0;

	luaL_checktype(L, 1, LUA_TTABLE);
	if (lua_getfield(L, 1, "window") != LUA_TNIL)
		window = luaL_checknumber(L, -1);
	if (lua_getfield(L, 1, "keep") != LUA_TNIL)
		keep = luaL_checknumber(L, -1);
	lua_pop(L, 2);
	luaL_argcheck(L, (window >= 0) != (keep >= 1), 1,
	              "trail: give window = seconds >= 0 or keep = a count >= 1 (one of them)");
	luaL_argcheck(L, keep < 1e9 && window < 1e12, 1, "trail: window or keep too large");
	tr = lua_newuserdatauv(L, sizeof *tr, 0);
	memset(tr, 0, sizeof *tr);
	tr->window = window >= 0 ? window : -1;
	tr->keep = (size_t)keep;
	luaL_setmetatable(L, TRAIL_MT);
	return 1;
}

static const luaL_Reg trail_methods[] = {
	{"push", l_trail_push},
	{"values", l_trail_values},
	{NULL, NULL},
};

static const luaL_Reg trail_meta[] = {
	{"__len", l_trail_len},
	{"__gc", l_trail_gc},
	{NULL, NULL},
};

/* With the batlab module table on top: batlab.trail. */
void bl_lua_open_trail(lua_State *L)
{
	bl_lua_newclass(L, TRAIL_MT, trail_meta, trail_methods);
	lua_pushcfunction(L, l_trail_new);
	lua_setfield(L, -2, "trail");
}
