/* lua_record.c - batlab.recorder(ch, path, opts): a cell's time series
 * written in C from every sample of its channel (host/recorder.h), with
 * labels set from Lua.
 *
 *   local rec = batlab.recorder(ch, "cells/A1.csv", {   -- nil: no file
 *       t0 = batlab.now(), epoch = os.time(),
 *       on_sample = function(sample) end,   -- every sample; must not wait
 *       on_error = function(message, code) end,
 *       flush_every_row = true,             -- default: in real-time runs
 *       record = { every = 10, dv = 0.005, di = 0.01 } })  -- default: every sample
 *   rec:label{ step = 2, step_name = "CHARGE", cycle = 1, cycle_kind = "warm-up" }
 *   rec:impedance(0.052)                    -- on the next row
 *   rec:policy{ every = 30 }                -- which samples are rows from now on
 *   rec:stats()   -- { rows, samples, charge_min, charge_max, listening, error }
 *   rec:carry{ step_time = 600, charge_ah = -0.4, energy_wh = -1.5 }  -- a resumed step
 *   rec:close()
 *
 * The callbacks run from the event loop, outside any task: an error in one
 * is logged and reported through on_error, and on_sample is not called
 * again.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "core/bl.h"
#include "host/recorder.h"
#include "lua/lua_devobj.h"

#define MOD "recorder"
#define BL_LUA_RECORDER "batlab.Recorder"

struct lrec {
	struct bl_recorder *r;       /* NULL once closed */
	struct bl_sched *s;
	int sample_ref, error_ref;
	char error[256];
};

static struct lrec *check_rec(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, BL_LUA_RECORDER);
}

static void call_error(struct lrec *lr, int status, const char *msg)
{
	lua_State *L = bl_sched_lua(lr->s);

	if (!lr->error[0])
		snprintf(lr->error, sizeof lr->error, "%s", msg);
	if (lr->error_ref == LUA_NOREF)
		return;
	lua_rawgeti(L, LUA_REGISTRYINDEX, lr->error_ref);
	lua_pushstring(L, msg);
	lua_pushstring(L, bl_strcode(status));
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		BL_WARN(MOD, "on_error: %s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
		lua_pop(L, 1);
	}
}

static void rec_error(struct bl_recorder *r, int status, const char *msg, void *ud)
{
	(void)r;
	call_error(ud, status, msg);
}

static void rec_sample(struct bl_recorder *r, const struct bl_sample *s, void *ud)
{
	struct lrec *lr = ud;
	lua_State *L = bl_sched_lua(lr->s);
	char msg[300];

	(void)r;
	if (lr->sample_ref == LUA_NOREF)
		return;
	lua_rawgeti(L, LUA_REGISTRYINDEX, lr->sample_ref);
	bl_lua_push_sample(L, s);
	if (lua_pcall(L, 1, 0, 0) == LUA_OK)
		return;
	snprintf(msg, sizeof msg, "on_sample: %s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
	lua_pop(L, 1);
	luaL_unref(L, LUA_REGISTRYINDEX, lr->sample_ref);
	lr->sample_ref = LUA_NOREF;
	BL_WARN(MOD, "%s", msg);
	call_error(lr, BL_ERR_STATE, msg);
}

static int opt_ref(lua_State *L, int opts, const char *key)
{
	if (lua_getfield(L, opts, key) == LUA_TNIL) {
		lua_pop(L, 1);
		return LUA_NOREF;
	}
	if (!lua_isfunction(L, -1))
		luaL_error(L, "batlab.recorder: %s must be a function", key);
	return luaL_ref(L, LUA_REGISTRYINDEX);
}

static double opt_number(lua_State *L, int opts, const char *key, double def)
{
	double v = def;

	if (lua_getfield(L, opts, key) != LUA_TNIL) {
		if (!lua_isnumber(L, -1))
			luaL_error(L, "batlab.recorder: %s must be a number", key);
		v = lua_tonumber(L, -1);
	}
	lua_pop(L, 1);
	return v;
}

/* A recording policy table {every =, dv =, di =} at idx (s, V, A; each
 * >= 0, missing: 0, off). */
static void check_policy(lua_State *L, int idx, const char *what, struct bl_record_policy *p)
{
	static const char *const keys[] = {"every", "dv", "di"};
	double *v[] = {&p->every, &p->dv, &p->di};

	memset(p, 0, sizeof *p);
	idx = lua_absindex(L, idx);
	if (!lua_istable(L, idx))
		luaL_error(L, "%s: the recording policy must be a table {every =, dv =, di =}", what);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		int k = -1;
		for (int i = 0; i < 3; i++)
			if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), keys[i]) == 0)
				k = i;
		if (k < 0)
			luaL_error(L, "%s: unknown recording policy key '%s' (every, dv, di)", what,
			           luaL_tolstring(L, -2, NULL));
		if (!lua_isnumber(L, -1) || !(lua_tonumber(L, -1) >= 0) || !isfinite(lua_tonumber(L, -1)))
			luaL_error(L, "%s: %s must be a number >= 0", what, keys[k]);
		*v[k] = lua_tonumber(L, -1);
		lua_pop(L, 1);
	}
}

static int l_recorder(lua_State *L)
{
	struct bl_channel *ch = bl_lua_check_chan(L, 1);
	const char *path = luaL_optstring(L, 2, NULL);
	struct bl_recorder_opts o = {0};
	struct lrec *lr;
	char err[600];

	luaL_checktype(L, 3, LUA_TTABLE);
	if (!ch)
		return bl_lua_fail(L, BL_ERR_CLOSED, "batlab.recorder: the channel's device is detached");
	o.t0 = opt_number(L, 3, "t0", bl_lua_now(L));
	o.epoch = opt_number(L, 3, "epoch", 0);
	lua_getfield(L, 3, "flush_every_row");
	o.flush_every_row = lua_isnil(L, -1) ? !bl_loop_is_virtual(bl_device_loop(bl_channel_device(ch)))
	                                     : lua_toboolean(L, -1);
	lua_pop(L, 1);
	if (lua_getfield(L, 3, "record") != LUA_TNIL)
		check_policy(L, -1, "batlab.recorder", &o.policy);
	lua_pop(L, 1);
	lr = lua_newuserdatauv(L, sizeof *lr, 1);
	memset(lr, 0, sizeof *lr);
	lr->sample_ref = lr->error_ref = LUA_NOREF;
	luaL_setmetatable(L, BL_LUA_RECORDER);
	lr->s = bl_sched_get(L);
	lr->sample_ref = opt_ref(L, 3, "on_sample");
	lr->error_ref = opt_ref(L, 3, "on_error");
	lua_pushvalue(L, 1);                 /* the channel lives as long as we do */
	lua_setiuservalue(L, -2, 1);
	o.on_sample = rec_sample;
	o.on_error = rec_error;
	o.ud = lr;
	lr->r = bl_recorder_open(ch, path, &o, err, sizeof err);
	if (!lr->r)
		return bl_lua_fail(L, BL_ERR_IO, "%s", err);
	return 1;
}

static void unref_all(lua_State *L, struct lrec *lr)
{
	luaL_unref(L, LUA_REGISTRYINDEX, lr->sample_ref);
	luaL_unref(L, LUA_REGISTRYINDEX, lr->error_ref);
	lr->sample_ref = lr->error_ref = LUA_NOREF;
}

static int l_rec_close(lua_State *L)
{
	struct lrec *lr = check_rec(L, 1);
	int st;

	if (!lr->r) {
		lua_pushboolean(L, 1);
		return 1;
	}
	st = bl_recorder_close(lr->r);
	lr->r = NULL;
	unref_all(L, lr);
	if (st != BL_OK)
		return bl_lua_fail(L, st, "%s", lr->error[0] ? lr->error : bl_strerror(st));
	lua_pushboolean(L, 1);
	return 1;
}

static struct bl_recorder *open_rec(lua_State *L)
{
	struct lrec *lr = check_rec(L, 1);

	if (!lr->r)
		luaL_error(L, "the recorder is closed");
	return lr->r;
}

static int l_rec_label(lua_State *L)
{
	struct bl_recorder *r = open_rec(L);
	struct bl_lua_labels lb;

	bl_lua_check_labels(L, 2, &lb);
	bl_recorder_label(r, lb.step, lb.step_name, lb.cycle, lb.cycle_kind);
	return 0;
}

static int l_rec_impedance(lua_State *L)
{
	bl_recorder_impedance(open_rec(L), luaL_checknumber(L, 2));
	return 0;
}

/* rec:carry{step_time =, charge_ah =, energy_wh =}: a resumed step's rows
 * carry on from what it had done (signed, as the rows show them). */
static int l_rec_carry(lua_State *L)
{
	struct bl_recorder *r = open_rec(L);
	double v[3] = {0, 0, 0};
	static const char *const keys[] = {"step_time", "charge_ah", "energy_wh"};

	luaL_checktype(L, 2, LUA_TTABLE);
	for (int i = 0; i < 3; i++) {
		if (lua_getfield(L, 2, keys[i]) != LUA_TNIL)
			v[i] = luaL_checknumber(L, -1);
		lua_pop(L, 1);
	}
	bl_recorder_carry(r, v[0], v[1], v[2]);
	return 0;
}

/* rec:policy{every =, dv =, di =}: which samples are rows from now on. */
static int l_rec_policy(lua_State *L)
{
	struct bl_recorder *r = open_rec(L);
	struct bl_record_policy p;

	check_policy(L, 2, "rec:policy", &p);
	bl_recorder_policy(r, &p);
	return 0;
}

static int l_rec_flush(lua_State *L)
{
	int st = bl_recorder_flush(open_rec(L));

	if (st != BL_OK)
		return bl_lua_fail(L, st, "%s", check_rec(L, 1)->error);
	lua_pushboolean(L, 1);
	return 1;
}

static int l_rec_stats(lua_State *L)
{
	struct lrec *lr = check_rec(L, 1);
	struct bl_recorder_stats st;

	if (!lr->r) {
		lua_pushnil(L);
		return 1;
	}
	bl_recorder_stats(lr->r, &st);
	lua_createtable(L, 0, 5);
	lua_pushinteger(L, (lua_Integer)st.rows);
	lua_setfield(L, -2, "rows");
	lua_pushinteger(L, (lua_Integer)st.samples);
	lua_setfield(L, -2, "samples");
	if (st.have_charge) {
		lua_pushnumber(L, st.charge_min);
		lua_setfield(L, -2, "charge_min");
		lua_pushnumber(L, st.charge_max);
		lua_setfield(L, -2, "charge_max");
	}
	lua_pushboolean(L, bl_recorder_listening(lr->r));
	lua_setfield(L, -2, "listening");
	if (lr->error[0]) {
		lua_pushstring(L, lr->error);
		lua_setfield(L, -2, "error");
	}
	return 1;
}

static int l_rec_gc(lua_State *L)
{
	struct lrec *lr = check_rec(L, 1);

	if (lr->r) {
		bl_recorder_close(lr->r);
		lr->r = NULL;
	}
	unref_all(L, lr);
	return 0;
}

static const luaL_Reg rec_meta[] = {
	{"__index", NULL},
	{"__gc", l_rec_gc},
	{"__close", l_rec_gc},
	{NULL, NULL},
};

static const luaL_Reg rec_methods[] = {
	{"label", l_rec_label},
	{"carry", l_rec_carry},
	{"impedance", l_rec_impedance},
	{"policy", l_rec_policy},
	{"flush", l_rec_flush},
	{"stats", l_rec_stats},
	{"close", l_rec_close},
	{NULL, NULL},
};

/* batlab.fsync(file) -> true | nil, err: a Lua file's buffered writes
 * flushed and on the disk, so that what a run's journal says survives a
 * power cut, not only a crash of the host. */
static int l_fsync(lua_State *L)
{
	luaL_Stream *fh = luaL_checkudata(L, 1, LUA_FILEHANDLE);

	if (!fh->closef)
		return luaL_error(L, "batlab.fsync: the file is closed");
	if (fflush(fh->f) != 0 || fsync(fileno(fh->f)) != 0)
		return bl_lua_fail(L, BL_ERR_IO, "fsync: %s", strerror(errno));
	lua_pushboolean(L, 1);
	return 1;
}

void bl_lua_open_recorder(lua_State *L)
{
	bl_lua_newclass(L, BL_LUA_RECORDER, rec_meta, rec_methods);
	lua_pushcfunction(L, l_recorder);
	lua_setfield(L, -2, "recorder");
	lua_pushcfunction(L, l_fsync);
	lua_setfield(L, -2, "fsync");
}
