/* lua_watch_series.c - batlab.series: chosen numbers of every report of a
 * step (a pulse's voltage and current, a slow curve's charge and
 * voltage), kept in C so that ch:watch (lua_watch.c) can add the reports
 * it lets pass: a step that only records its reports does not need Lua
 * at each of them.
 *
 *   local sr = batlab.series { "step_time", "voltage", "current" }
 *   sr:push(sample)      -- a sample table: its fields in that order
 *   sr:rows()            -- { {step_time, voltage, current}, ... } (a missing
 *                        -- temp_c is nil)
 *   #sr                  -- how many reports
 *
 * The numbers are the sample's doubles, the ones a sample table holds. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "core/bl.h"
#include "lua/lua_devobj.h"

#define SERIES_MT "batlab.Series"

static const char *const field_names[] = {
	"time", "step_time", "voltage", "current", "temp_c", "charge_ah", "energy_wh", "vcc", NULL,
};

static double field_of(const struct bl_sample *s, int f)
{
	switch (f) {
	case 0: return s->time;
	case 1: return s->step_time;
	case 2: return s->voltage;
	case 3: return s->current;
	case 4: return s->temp_c;
	case 5: return s->charge_ah;
	case 6: return s->energy_wh;
	default: return s->vcc;
	}
}

bool bl_series_room(struct bl_series *sr)
{
	size_t cap;
	double *d;

	if (sr->n < sr->cap)
		return true;
	cap = sr->cap ? sr->cap * 2 : 64;
	d = realloc(sr->data, cap * (size_t)sr->nf * sizeof *d);
	if (!d)
		return false;
	sr->data = d;
	sr->cap = cap;
	return true;
}

bool bl_series_add(struct bl_series *sr, const struct bl_sample *s)
{
	double *row;

	if (!bl_series_room(sr))
		return false;
	row = sr->data + sr->n * (size_t)sr->nf;
	for (int i = 0; i < sr->nf; i++)
		row[i] = field_of(s, sr->field[i]);
	sr->n++;
	return true;
}

struct bl_series *bl_series_test(lua_State *L, int idx)
{
	return luaL_testudata(L, idx, SERIES_MT);
}

static struct bl_series *check_series(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, SERIES_MT);
}

static int l_series_push(lua_State *L)
{
	struct bl_series *sr = check_series(L, 1);
	double *row;

	luaL_checktype(L, 2, LUA_TTABLE);
	if (!bl_series_room(sr))
		return luaL_error(L, "series: out of memory");
	row = sr->data + sr->n * (size_t)sr->nf;
	for (int i = 0; i < sr->nf; i++) {
		lua_getfield(L, 2, field_names[sr->field[i]]);
		row[i] = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : NAN;
		lua_pop(L, 1);
	}
	sr->n++;
	return 0;
}

static int l_series_rows(lua_State *L)
{
	struct bl_series *sr = check_series(L, 1);

	lua_createtable(L, (int)sr->n, 0);
	for (size_t r = 0; r < sr->n; r++) {
		const double *row = sr->data + r * (size_t)sr->nf;

		lua_createtable(L, sr->nf, 0);
		for (int i = 0; i < sr->nf; i++) {
			if (isnan(row[i]))
				continue;
			lua_pushnumber(L, row[i]);
			lua_rawseti(L, -2, i + 1);
		}
		lua_rawseti(L, -2, (lua_Integer)r + 1);
	}
	return 1;
}

static int l_series_len(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)check_series(L, 1)->n);
	return 1;
}

static int l_series_gc(lua_State *L)
{
	struct bl_series *sr = check_series(L, 1);

	free(sr->data);
	sr->data = NULL;
	sr->n = sr->cap = 0;
	return 0;
}

/* batlab.series { field, ... } */
static int l_series_new(lua_State *L)
{
	struct bl_series *sr;
	int n;

	luaL_checktype(L, 1, LUA_TTABLE);
	n = (int)luaL_len(L, 1);
	luaL_argcheck(L, n >= 1 && n <= BL_SERIES_FIELDS, 1, "series: 1 to 8 field names expected");
	sr = lua_newuserdatauv(L, sizeof *sr, 0);
	memset(sr, 0, sizeof *sr);
	sr->nf = n;
	for (int i = 0; i < n; i++) {
		const char *name = (lua_geti(L, 1, i + 1), lua_tostring(L, -1));
		int f = 0;

		while (field_names[f] && !(name && strcmp(name, field_names[f]) == 0))
			f++;
		if (!field_names[f])
			return luaL_error(L, "series: field %d is '%s', not one of time, step_time, voltage, "
			                  "current, temp_c, charge_ah, energy_wh, vcc", i + 1, name ? name : "?");
		sr->field[i] = (unsigned char)f;
		lua_pop(L, 1);
	}
	luaL_setmetatable(L, SERIES_MT);
	return 1;
}

static const luaL_Reg series_methods[] = {
	{"push", l_series_push},
	{"rows", l_series_rows},
	{NULL, NULL},
};

static const luaL_Reg series_meta[] = {
	{"__len", l_series_len},
	{"__gc", l_series_gc},
	{NULL, NULL},
};

/* With the batlab module table on top: batlab.series. */
void bl_lua_open_series(lua_State *L)
{
	bl_lua_newclass(L, SERIES_MT, series_meta, series_methods);
	lua_pushcfunction(L, l_series_new);
	lua_setfield(L, -2, "series");
}
