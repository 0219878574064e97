/* lua_record.c - batlab.recorder(ch, path, opts): a cell's time series
 * written in C from every sample of its channel (host/recorder.h), with
 * labels set from Lua, and its level-1 rows of a Lexcelon log
 * (host/lexlog.h).
 *
 *   local rec = batlab.recorder(ch, "cells/A1.csv", {   -- nil: no file
 *       t0 = batlab.now(), epoch = os.time(),
 *       on_sample = function(sample) return due end,  -- must not wait
 *       on_error = function(message, code) end,
 *       flush_every_row = true,             -- default: in real-time runs
 *       record = { every = 10, dv = 0.005, di = 0.01 },  -- default: every sample
 *       lexcelon = { file = log.f, path = log.path, prefix = "A1,262209,3",
 *                    period = 1, epoch = 1.7e9, start_time = 1.7e9,
 *                    utc = false, flush_every_row = true } })
 *   rec:label{ step = 2, step_name = "CHARGE", cycle = 1, cycle_kind = "warm-up" }
 *   rec:impedance(0.052)                    -- on the next row (and Lexcelon row)
 *   rec:policy{ every = 30 }                -- which samples are rows from now on
 *   rec:stats()   -- { rows, samples, charge_min, charge_max, listening, error,
 *                 --   lexcelon_rows }
 *   rec:carry{ step_time = 600, charge_ah = -0.4, energy_wh = -1.5 }  -- a resumed step
 *   rec:lexcelon_carry(0.4, 1.5)            -- the same for the Lexcelon rows (|Ah|, |Wh|)
 *   rec:wake()                              -- on_sample at the next sample
 *   rec:close()
 *
 * Lua is called only when it asked to be: a sample costs no Lua unless
 * on_sample wants it. on_sample returns the sample time (batlab.now()
 * seconds) before which it is not wanted again, or nil for the next
 * sample (every sample, as a function that returns nothing gets them);
 * rec:wake() asks for the next one whatever it said. The Lexcelon level-1
 * rows, which come at every report of every cell, are written here in C
 * into the Lua log's own FILE (lexcelon.file, which must stay open while
 * rows come; a closed one is an error reported through on_error).
 *
 * The callbacks run from the event loop, outside any task: an error in one
 * is logged and reported through on_error, and on_sample is not called
 * again. A Lexcelon row that cannot be written is reported once, as
 * on_error("Lexcelon log: PATH: what") without a code.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lualib.h>

#include "core/bl.h"
#include "host/lexlog.h"
#include "host/recorder.h"
#include "lua/lua_devobj.h"
#include "lua/lua_gzfile.h"

#define MOD "recorder"
#define BL_LUA_RECORDER "batlab.Recorder"
/* on_sample is called this much before the time it asked for: report
 * times are sums of doubles, and the Lua decides on its own arithmetic
 * (at worst it is called once more and says "not yet" again). */
#define DUE_SLACK 1e-6

struct lrec {
	struct bl_recorder *r;       /* NULL once closed */
	struct bl_sched *s;
	int sample_ref, error_ref;
	double due;                  /* on_sample's next sample time; -inf: the next */
	struct bl_lexlog *lex;       /* NULL: no Lexcelon rows */
	luaL_Stream *lex_fh;         /* the log's Lua file (uservalue 2 keeps it) */
	bool lex_failed;             /* told once */
	char error[256];
};

static struct lrec *check_rec(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, BL_LUA_RECORDER);
}

/* on_error(msg, code); code NULL: none (a Lexcelon row, which is no
 * failure of the time series: stats() and close() do not report it). */
static void call_on_error(struct lrec *lr, const char *msg, const char *code)
{
	lua_State *L = bl_sched_lua(lr->s);

	if (lr->error_ref == LUA_NOREF)
		return;
	lua_rawgeti(L, LUA_REGISTRYINDEX, lr->error_ref);
	lua_pushstring(L, msg);
	if (code)
		lua_pushstring(L, code);
	else
		lua_pushnil(L);
	if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
		BL_WARN(MOD, "on_error: %s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
		lua_pop(L, 1);
	}
}

static void call_error(struct lrec *lr, int status, const char *msg)
{
	if (!lr->error[0])       /* kept for stats() and close(), cut to fit */
		snprintf(lr->error, sizeof lr->error, "%.*s", (int)sizeof lr->error - 1, msg);
	call_on_error(lr, msg, bl_strcode(status));
}

static void rec_error(struct bl_recorder *r, int status, const char *msg, void *ud)
{
	(void)r;
	call_error(ud, status, msg);
}

/* The Lexcelon log's FILE, NULL once Lua closed it. */
static FILE *lex_file(void *ud)
{
	struct lrec *lr = ud;

	return lr->lex_fh->closef ? lr->lex_fh->f : NULL;
}

static void lex_row(struct lrec *lr, const struct bl_sample *s)
{
	char err[600], msg[700];

	if (bl_lexlog_sample(lr->lex, s, err, sizeof err) == BL_OK || lr->lex_failed)
		return;
	lr->lex_failed = true;
	snprintf(msg, sizeof msg, "Lexcelon log: %s", err);
	call_on_error(lr, msg, NULL);
}

static void rec_sample(struct bl_recorder *r, const struct bl_sample *s, void *ud)
{
	struct lrec *lr = ud;
	lua_State *L = bl_sched_lua(lr->s);
	char msg[300];

	(void)r;
	if (lr->lex)
		lex_row(lr, s);
	if (lr->sample_ref == LUA_NOREF || s->time < lr->due - DUE_SLACK)
		return;
	lua_rawgeti(L, LUA_REGISTRYINDEX, lr->sample_ref);
	bl_lua_push_sample(L, s);
	if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
		lr->due = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -INFINITY;
		lua_pop(L, 1);
		return;
	}
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

static const char *opt_string(lua_State *L, int opts, const char *key)
{
	const char *v = NULL;

	if (lua_getfield(L, opts, key) != LUA_TNIL) {
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "batlab.recorder: lexcelon.%s must be a string", key);
		v = lua_tostring(L, -1);
	}
	lua_pop(L, 1);                       /* opts keeps the string */
	return v;
}

/* opts.lexcelon at idx: the cell's Lexcelon level-1 rows, written in C
 * into the log's file (the recorder userdata at -1 keeps the file). */
static void open_lexcelon(lua_State *L, int idx, struct lrec *lr, double t0)
{
	struct bl_lexlog_opts o = {0};

	idx = lua_absindex(L, idx);
	lua_getfield(L, idx, "file");
	lr->lex_fh = luaL_testudata(L, -1, LUA_FILEHANDLE);
	if (!lr->lex_fh)
		luaL_error(L, "batlab.recorder: lexcelon.file must be a Lua file");
	lua_setiuservalue(L, -2, 2);
	o.prefix = opt_string(L, idx, "prefix");
	o.path = opt_string(L, idx, "path");
	o.period = opt_number(L, idx, "period", 1);
	if (!(o.period > 0) || !isfinite(o.period))
		luaL_error(L, "batlab.recorder: lexcelon.period must be a number > 0");
	o.t0 = t0;
	lua_getfield(L, idx, "epoch");
	o.have_epoch = !lua_isnil(L, -1);
	lua_pop(L, 1);
	o.epoch = opt_number(L, idx, "epoch", 0);
	o.start_time = opt_number(L, idx, "start_time", 0);
	lua_getfield(L, idx, "utc");
	o.utc = lua_toboolean(L, -1);
	lua_getfield(L, idx, "flush_every_row");
	o.flush_every_row = lua_toboolean(L, -1);
	lua_pop(L, 2);
	o.file = lex_file;
	o.ud = lr;
	lr->lex = bl_lexlog_new(&o);
	if (!lr->lex)
		luaL_error(L, "batlab.recorder: out of memory");
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
	lr = lua_newuserdatauv(L, sizeof *lr, 2);
	memset(lr, 0, sizeof *lr);
	lr->sample_ref = lr->error_ref = LUA_NOREF;
	lr->due = -INFINITY;
	luaL_setmetatable(L, BL_LUA_RECORDER);
	if (lua_getfield(L, 3, "lexcelon") != LUA_TNIL) {
		if (!lua_istable(L, -1))
			luaL_error(L, "batlab.recorder: lexcelon must be a table");
		lua_insert(L, -2);               /* the recorder on top */
		open_lexcelon(L, -2, lr, o.t0);
		lua_remove(L, -2);
	} else {
		lua_pop(L, 1);
	}
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
	bl_lexlog_free(lr->lex);             /* with the recorder: no row after it */
	lr->lex = NULL;
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

static struct lrec *open_lrec(lua_State *L)
{
	struct lrec *lr = check_rec(L, 1);

	if (!lr->r)
		luaL_error(L, "the recorder is closed");
	return lr;
}

static struct bl_recorder *open_rec(lua_State *L)
{
	return open_lrec(L)->r;
}

static int l_rec_label(lua_State *L)
{
	struct lrec *lr = open_lrec(L);
	struct bl_lua_labels lb;

	bl_lua_check_labels(L, 2, &lb);
	bl_recorder_label(lr->r, lb.step, lb.step_name, lb.cycle, lb.cycle_kind);
	if (lr->lex)
		bl_lexlog_state(lr->lex, lb.step, lb.step_name);
	return 0;
}

static int l_rec_impedance(lua_State *L)
{
	struct lrec *lr = open_lrec(L);
	double z = luaL_checknumber(L, 2);

	bl_recorder_impedance(lr->r, z);
	if (lr->lex)
		bl_lexlog_impedance(lr->lex, z);
	return 0;
}

/* rec:lexcelon_carry(ah, wh): a resumed step's Lexcelon rows go on from
 * what it had done (magnitudes); 0, 0 at its end. */
static int l_rec_lexcelon_carry(lua_State *L)
{
	struct lrec *lr = open_lrec(L);
	double ah = luaL_checknumber(L, 2), wh = luaL_checknumber(L, 3);

	if (lr->lex)
		bl_lexlog_carry(lr->lex, ah, wh);
	return 0;
}

/* rec:wake(): on_sample at the next sample, whatever it last returned. */
static int l_rec_wake(lua_State *L)
{
	open_lrec(L)->due = -INFINITY;
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
	lua_createtable(L, 0, 7);
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
	if (lr->lex) {
		lua_pushinteger(L, (lua_Integer)bl_lexlog_rows(lr->lex));
		lua_setfield(L, -2, "lexcelon_rows");
	}
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
	{"lexcelon_carry", l_rec_lexcelon_carry},
	{"wake", l_rec_wake},
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
	bl_lua_open_gzfile(L);     /* the compressed series' reader and writer */
}
