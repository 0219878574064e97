/* lua_channel.c - batlab.Channel: one channel of a Device, converted to
 * and from the channel layer (device/channel.h), which owns the report
 * tick, the sample, steps and limits. ch:wait() listens to the channel
 * while tasks wait and hands each of them the next sample. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "core/bl.h"
#include "core/regs.h"
#include "lua/lua_devobj.h"

#define MOD "lua"

static struct lchannel *check_channel(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, BL_LUA_CHANNEL);
}

static struct lchan *chan_of(const struct lchannel *ch)
{
	return &ch->ld->ch[ch->cell];
}

struct bl_channel *bl_lua_check_chan(lua_State *L, int idx)
{
	return chan_of(check_channel(L, idx))->c;
}

/* ---- Samples as tables ------------------------------------------------------------ */

/* Sample tables are built at every report of every waited channel: the
 * keys are interned once (a registry array) and the bit names looked up
 * once per bit, instead of lua_setfield's string lookups each time. */
static const char sample_keys_key = 0;

enum {
	K_TIME = 1, K_STEP_TIME, K_MODE, K_MODE_NAME, K_STATUS, K_STATUS_NAMES, K_ERROR,
	K_ERROR_NAMES, K_VOLTAGE, K_CURRENT, K_TEMP_C, K_CHARGE_AH, K_ENERGY_WH, K_VCC, K_CELL,
	K_SERIAL, K_DEVICE_RESET, K_STEP_SEQ, K_OP_RAW, K_SP_RAW, K_DUTY, K_COUNT = K_DUTY,
};

static const char *const sample_keys[K_COUNT + 1] = {
	NULL, "time", "step_time", "mode", "mode_name", "status", "status_names", "error",
	"error_names", "voltage", "current", "temp_c", "charge_ah", "energy_wh", "vcc", "cell",
	"serial", "device_reset", "step_seq", "op_raw", "sp_raw", "duty",
};

static const char *bit_names[2][16];

static void init_sample_keys(lua_State *L)
{
	lua_createtable(L, K_COUNT, 0);
	for (int i = 1; i <= K_COUNT; i++) {
		lua_pushstring(L, sample_keys[i]);
		lua_rawseti(L, -2, i);
	}
	lua_rawsetp(L, LUA_REGISTRYINDEX, &sample_keys_key);
	for (unsigned b = 0; b < 16; b++) {
		bit_names[0][b] = bl_bit_name(BL_UK_STATUS, (uint16_t)(1u << b));
		bit_names[1][b] = bl_bit_name(BL_UK_ERROR, (uint16_t)(1u << b));
	}
}

/* keys at index -2 when called with the value on top: t[keys[k]] = v */
static void put(lua_State *L, int tbl, int keys, int k)
{
	lua_rawgeti(L, keys, k);
	lua_insert(L, -2);
	lua_rawset(L, tbl);
}

/* The names of the set bits, like bl_lua_push_bit_names ("0x1000" for a
 * bit with no name). */
static void push_bits(lua_State *L, int which, uint16_t bits)
{
	lua_Integer n = 0;
	int count = 0;

	for (uint16_t x = bits; x; x &= (uint16_t)(x - 1))
		count++;
	lua_createtable(L, count, 0);
	for (unsigned b = 0; b < 16; b++) {
		char hex[8];

		if (!(bits & (1u << b)))
			continue;
		if (bit_names[which][b]) {
			lua_pushstring(L, bit_names[which][b]);
		} else {
			snprintf(hex, sizeof hex, "0x%04X", 1u << b);
			lua_pushstring(L, hex);
		}
		lua_rawseti(L, -2, ++n);
	}
}

/* The same sample reaches Lua twice or more: the recorder's on_sample
 * (batlab.recording) and every task waiting on the channel. One table
 * serves them all: the last table of each channel is kept (a direct-mapped
 * cache of CACHE_SLOTS channels, by serial and cell) with the sample it
 * was made from, and a sample equal to it field by field gets that table
 * again. A procedure that writes into a sample table writes into the one
 * the recording has seen (cell.last), which was so already. */
#define CACHE_SLOTS 64
static const char sample_cache_key = 0;

struct sample_cache {
	struct bl_sample s[CACHE_SLOTS];
	bool used[CACHE_SLOTS];
};

static bool same_double(double a, double b)
{
	return memcmp(&a, &b, sizeof a) == 0;
}

static bool same_sample(const struct bl_sample *a, const struct bl_sample *b)
{
	return same_double(a->time, b->time) && same_double(a->step_time, b->step_time) &&
	       a->mode == b->mode && a->status == b->status && a->error == b->error &&
	       same_double(a->voltage, b->voltage) && same_double(a->current, b->current) &&
	       same_double(a->temp_c, b->temp_c) && same_double(a->charge_ah, b->charge_ah) &&
	       same_double(a->energy_wh, b->energy_wh) && same_double(a->vcc, b->vcc) &&
	       a->cell == b->cell && a->serial == b->serial && a->device_reset == b->device_reset &&
	       a->step_seq == b->step_seq && a->op_raw == b->op_raw && a->sp_raw == b->sp_raw &&
	       a->have_duty == b->have_duty && a->duty == b->duty;
}

/* The cache on top of the stack (its tables as uservalue 1). */
static struct sample_cache *push_cache(lua_State *L)
{
	struct sample_cache *c;

	if (lua_rawgetp(L, LUA_REGISTRYINDEX, &sample_cache_key) == LUA_TUSERDATA)
		return lua_touserdata(L, -1);
	lua_pop(L, 1);
	c = lua_newuserdatauv(L, sizeof *c, 1);
	memset(c, 0, sizeof *c);
	lua_createtable(L, CACHE_SLOTS, 0);
	lua_setiuservalue(L, -2, 1);
	lua_pushvalue(L, -1);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &sample_cache_key);
	return c;
}

static void build_sample(lua_State *L, const struct bl_sample *s);

void bl_lua_push_sample(lua_State *L, const struct bl_sample *s)
{
	struct sample_cache *c;
	unsigned slot = ((unsigned)s->serial * 4u + (unsigned)s->cell) % CACHE_SLOTS;

	luaL_checkstack(L, 6, NULL);
	c = push_cache(L);
	lua_getiuservalue(L, -1, 1);
	if (c->used[slot] && same_sample(&c->s[slot], s)) {
		lua_rawgeti(L, -1, (lua_Integer)slot + 1);
		lua_replace(L, -3);
		lua_pop(L, 1);
		return;
	}
	build_sample(L, s);
	lua_pushvalue(L, -1);
	lua_rawseti(L, -3, (lua_Integer)slot + 1);
	c->s[slot] = *s;
	c->used[slot] = true;
	lua_replace(L, -3);
	lua_pop(L, 1);
}

/* The names of a status or error word, from the keys table at `keys`: one
 * table per word value, made once (the table at key -1 - (which << 16 |
 * bits)) and shared by every sample with that value: a sample table costs
 * one allocation, not three (and the collector's work that goes with
 * them). The tables are read, never written (a procedure that changed one
 * would change the names of later samples). */
static void push_names(lua_State *L, int keys, int which, uint16_t bits)
{
	lua_Integer k = -1 - (((lua_Integer)which << 16) | bits);

	if (lua_rawgeti(L, keys, k) == LUA_TTABLE)
		return;
	lua_pop(L, 1);
	push_bits(L, which, bits);
	lua_pushvalue(L, -1);
	lua_rawseti(L, keys, k);
}

static void build_sample(lua_State *L, const struct bl_sample *s)
{
	const char *mode = bl_mode_name(s->mode);
	int keys, t;

	luaL_checkstack(L, 4, NULL);
	lua_rawgetp(L, LUA_REGISTRYINDEX, &sample_keys_key);
	keys = lua_gettop(L);
	lua_createtable(L, 0, K_COUNT);
	t = keys + 1;
	lua_pushnumber(L, s->time);          put(L, t, keys, K_TIME);
	lua_pushnumber(L, s->step_time);     put(L, t, keys, K_STEP_TIME);
	lua_pushinteger(L, s->mode);         put(L, t, keys, K_MODE);
	lua_pushstring(L, mode ? mode : "UNKNOWN"); put(L, t, keys, K_MODE_NAME);
	lua_pushinteger(L, s->status);       put(L, t, keys, K_STATUS);
	push_names(L, keys, 0, s->status);   put(L, t, keys, K_STATUS_NAMES);
	lua_pushinteger(L, s->error);        put(L, t, keys, K_ERROR);
	push_names(L, keys, 1, s->error);    put(L, t, keys, K_ERROR_NAMES);
	lua_pushnumber(L, s->voltage);       put(L, t, keys, K_VOLTAGE);
	lua_pushnumber(L, s->current);       put(L, t, keys, K_CURRENT);
	if (!isnan(s->temp_c)) {
		lua_pushnumber(L, s->temp_c);
		put(L, t, keys, K_TEMP_C);
	}
	lua_pushnumber(L, s->charge_ah);     put(L, t, keys, K_CHARGE_AH);
	lua_pushnumber(L, s->energy_wh);     put(L, t, keys, K_ENERGY_WH);
	lua_pushnumber(L, s->vcc);           put(L, t, keys, K_VCC);
	lua_pushinteger(L, s->cell);         put(L, t, keys, K_CELL);
	lua_pushinteger(L, s->serial);       put(L, t, keys, K_SERIAL);
	lua_pushinteger(L, s->step_seq);     put(L, t, keys, K_STEP_SEQ);
	lua_pushinteger(L, s->op_raw);       put(L, t, keys, K_OP_RAW);
	lua_pushinteger(L, s->sp_raw);       put(L, t, keys, K_SP_RAW);
	if (s->have_duty) {
		lua_pushinteger(L, s->duty);
		put(L, t, keys, K_DUTY);
	}
	if (s->device_reset) {
		lua_pushboolean(L, 1);
		put(L, t, keys, K_DEVICE_RESET);
	}
	lua_remove(L, keys);
}

/* ---- Waiting for the next sample ------------------------------------------------- */

static struct lchan *lchan_of_listener(struct bl_chan_listener *l)
{
	return (struct lchan *)(void *)((char *)l - offsetof(struct lchan, listener));
}

/* A report starts a tick: the tasks waiting now get its sample. */
static void on_tick(struct bl_chan_listener *l)
{
	struct lchan *c = lchan_of_listener(l);

	bl_wait_list_move(&c->batch, &c->waiters);
}

static void on_sample(struct bl_chan_listener *l, const struct bl_sample *s, int status)
{
	struct lchan *c = lchan_of_listener(l);

	while (c->batch.head) {
		struct bl_wait *w = c->batch.head;
		if (s && w->arg[1] == BL_LUA_WATCH && bl_lua_watch_quiet(w, s)) {
			bl_wait_list_add(&c->waiters, w);   /* a quiet report: wait on */
			continue;
		}
		if (s)
			memcpy(w->payload.bytes, s, sizeof *s);
		w->arg[0] = 1;   /* a report's reads failing is not the wait timing out */
		bl_wait_complete(w, status);
	}
	if (status == BL_ERR_CLOSED)
		while (c->waiters.head)
			bl_wait_complete(c->waiters.head, status);
	if (!c->waiters.head)
		bl_channel_unlisten(l);   /* no tick reads while nobody waits */
}

int bl_lua_chan_report(lua_State *L, struct bl_wait *w)
{
	if (w->status == BL_ERR_TIMEOUT && !w->arg[0])
		return bl_lua_timed_out(L);
	if (w->status != BL_OK)
		return bl_lua_fail_chan(L, w->status, w->obj, "waiting for a report");
	bl_lua_push_sample(L, (const struct bl_sample *)(const void *)w->payload.bytes);
	return 1;
}

static int k_ch_wait(lua_State *L, int status, lua_KContext ctx)
{
	(void)status;
	return bl_lua_chan_report(L, bl_wait_ctx(L, ctx));
}

void bl_lua_chan_wait(struct lchan *c, struct bl_wait *w)
{
	w->obj = c;
	w->arg[0] = 0;
	bl_wait_list_add(&c->waiters, w);
	if (!c->listener.ch) {
		c->listener.fn = on_sample;
		c->listener.tick = on_tick;
		bl_channel_listen(c->c, &c->listener);
	}
}

static int l_channel_wait(lua_State *L)
{
	struct lchannel *ch = check_channel(L, 1);
	struct lchan *c = chan_of(ch);
	struct bl_wait local, *w;
	uint64_t timeout = 0;

	if (!lua_isnoneornil(L, 2)) {
		lua_Number s = luaL_checknumber(L, 2);
		luaL_argcheck(L, s >= 0 && s < 1e12, 2, "timeout must be a number of seconds >= 0");
		timeout = (uint64_t)llround(s * 1e6);
	}
	w = bl_wait_begin(L, &local, "ch:wait");
	if (!ch->ld->d)
		return bl_lua_fail_detached(L, ch->ld);
	bl_lua_bind_task(L, w, c, 1);
	w->arg[1] = 0;
	bl_lua_chan_wait(c, w);
	if (!lua_isnoneornil(L, 2))
		bl_wait_after(w, timeout, BL_ERR_TIMEOUT);
	return bl_wait_yield(L, w, k_ch_wait);
}

/* ---- Channel operations ----------------------------------------------------------- */

/* One continuation for every channel operation: true, or the ohms of an
 * impedance measurement (arg[0] = 1). */
static int k_chan_op(lua_State *L, int status, lua_KContext ctx)
{
	struct bl_wait *w = bl_wait_ctx(L, ctx);

	(void)status;
	if (w->status != BL_OK)
		return bl_lua_fail_chan(L, w->status, w->obj, bl_holder_what(w));
	if (w->arg[0])
		lua_pushnumber(L, w->number);
	else
		lua_pushboolean(L, 1);
	return 1;
}

/* Begin a channel call: the wait, bound to the calling task (the channel
 * is made safe if the task fails); NULL after pushing a failure. */
static struct bl_wait *chan_call(lua_State *L, struct bl_wait *local, const char *what,
                                 struct lchan **cp, bool bind)
{
	struct lchannel *ch = check_channel(L, 1);
	struct bl_wait *w = bl_wait_begin(L, local, what);

	*cp = chan_of(ch);
	if (!ch->ld->d) {
		bl_lua_fail_detached(L, ch->ld);
		return NULL;
	}
	if (bind)
		bl_lua_bind_task(L, w, *cp, 1);
	w->obj = *cp;
	w->arg[0] = 0;
	return w;
}

static int channel_step(lua_State *L, enum bl_step_kind kind, const char *what)
{
	double amps = 0;
	struct bl_wait local, *w;
	struct holder *h;
	struct lchan *c;

	check_channel(L, 1);
	if (kind == BL_STEP_CHARGE || kind == BL_STEP_DISCHARGE)
		amps = bl_lua_check_amps(L, 2, false);
	if (!(w = chan_call(L, &local, what, &c, true)))
		return 3;
	NEW_HOLDER(h, w, c->c);
	return bl_await_chan(L, w, h, bl_channel_start(c->c, kind, amps, bl_holder_chan_done, h),
	                     k_chan_op);
}

static int l_channel_charge(lua_State *L) { return channel_step(L, BL_STEP_CHARGE, "ch:charge"); }
static int l_channel_discharge(lua_State *L)
{
	return channel_step(L, BL_STEP_DISCHARGE, "ch:discharge");
}
static int l_channel_idle(lua_State *L) { return channel_step(L, BL_STEP_IDLE, "ch:idle"); }
static int l_channel_stop(lua_State *L) { return channel_step(L, BL_STEP_STOP, "ch:stop"); }

/* ch:want_duty(on): samples while a current is driven carry DUTY (one
 * more read per report) until as many want_duty(false). */
static int l_channel_want_duty(lua_State *L)
{
	struct bl_channel *c = bl_lua_check_chan(L, 1);

	luaL_checktype(L, 2, LUA_TBOOLEAN);
	if (c)
		bl_channel_want_duty(c, lua_toboolean(L, 2));
	return 0;
}

static int l_channel_report_interval(lua_State *L)
{
	lua_Number s = luaL_checknumber(L, 2);
	struct bl_wait local, *w;
	struct holder *h;
	struct lchan *c;

	luaL_argcheck(L, s >= 0 && s <= 6553.6, 2, "report interval must be 0 (off) or 0.1..6553.6 s");
	if (!(w = chan_call(L, &local, "ch:report_interval", &c, false)))
		return 3;
	NEW_HOLDER(h, w, NULL);
	return bl_await_chan(L, w, h, bl_channel_set_interval(c->c, s, bl_holder_chan_done, h),
	                     k_chan_op);
}

static int l_channel_impedance(lua_State *L)
{
	struct bl_wait local, *w;
	struct holder *h;
	struct lchan *c;

	if (!(w = chan_call(L, &local, "ch:impedance", &c, true)))
		return 3;
	w->arg[0] = 1;
	NEW_HOLDER(h, w, c->c);
	return bl_await_chan(L, w, h, bl_channel_impedance(c->c, bl_holder_chan_done, h), k_chan_op);
}

static int l_channel_set_current(lua_State *L)
{
	struct lchannel *ch = check_channel(L, 1);
	double amps = bl_lua_check_amps(L, 2, true);
	struct bl_task *t = bl_sched_current(L);

	if (!ch->ld->d)
		return bl_lua_fail_detached(L, ch->ld);
	if (t && chan_of(ch)->bound_task != bl_task_id(t)) {
		bl_task_bind(L, t, 1);
		chan_of(ch)->bound_task = bl_task_id(t);
	}
	if (bl_channel_set_current(chan_of(ch)->c, amps) != BL_OK)
		return bl_lua_fail_detached(L, ch->ld);
	lua_pushboolean(L, 1);
	return 1;
}

/* ch:limits{vmax=, vmin=, imax=, imax_chg=, imax_dchg=, tmax_c=, ...} */
static void check_limits(lua_State *L, struct bl_limits *lim)
{
	char err[160];

	memset(lim, 0, sizeof *lim);
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_pushnil(L);
	while (lua_next(L, 2)) {
		const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
		int i = k ? bl_limit_by_key(k) : -1;

		if (i < 0)
			luaL_error(L, "ch:limits: unknown limit %s (vmax, vmin, imax, imax_chg, "
			           "imax_dchg, tmax_c, tmax_chg_c, tmax_dchg_c)",
			           k ? lua_pushfstring(L, "'%s'", k) : luaL_typename(L, -2));
		if (lua_type(L, -1) != LUA_TNUMBER)
			luaL_error(L, "ch:limits: %s must be a number, got %s", k, luaL_typename(L, -1));
		lim->given[i] = true;
		lim->value[i] = lua_tonumber(L, -1);
		lua_pop(L, 1);
	}
	if (bl_limits_check(lim, err, sizeof err) != BL_OK)
		luaL_error(L, "ch:limits: %s", err);
}

static int l_channel_limits(lua_State *L)
{
	struct bl_limits lim;
	struct bl_wait local, *w;
	struct holder *h;
	struct lchan *c;

	check_channel(L, 1);
	check_limits(L, &lim);
	if (!(w = chan_call(L, &local, "ch:limits", &c, true)))
		return 3;
	NEW_HOLDER(h, w, NULL);
	return bl_await_chan(L, w, h, bl_channel_limits(c->c, &lim, bl_holder_chan_done, h),
	                     k_chan_op);
}

/* ---- The class ------------------------------------------------------------------- */

/* What batlab.extend_channel added: methods, and fields computed in Lua
 * (name -> function(ch)), looked up after the class's own. */
static const char ext_methods_key = 0;
static const char ext_fields_key = 0;

/* The class's own names: its fields and its methods table. */
static bool builtin_name(lua_State *L, int methods, const char *k)
{
	static const char *const fields[] = {"index", "cell", "device", "last", "step_time"};
	bool has;

	for (size_t i = 0; i < BL_ARRAY_LEN(fields); i++)
		if (strcmp(k, fields[i]) == 0)
			return true;
	has = lua_getfield(L, methods, k) != LUA_TNIL;
	lua_pop(L, 1);
	return has;
}

static void extend_from(lua_State *L, int from, const void *key, int methods)
{
	lua_rawgetp(L, LUA_REGISTRYINDEX, key);
	lua_pushnil(L);
	while (lua_next(L, from)) {
		const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;

		if (!k || !lua_isfunction(L, -1))
			luaL_error(L, "batlab.extend_channel: a table of name = function expected");
		if (builtin_name(L, methods, k))
			luaL_error(L, "batlab.extend_channel: batlab.Channel already has '%s'", k);
		lua_pushvalue(L, -2);
		lua_insert(L, -2);
		lua_rawset(L, -4);
	}
	lua_pop(L, 1);
}

/* batlab.extend_channel(methods [, fields]): more Channel methods, and
 * fields whose value a function(ch) computes (the seed library's
 * interface lives on these). The class's own names cannot be replaced;
 * a name extended before can. */
static int l_extend_channel(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	if (!lua_isnoneornil(L, 2))
		luaL_checktype(L, 2, LUA_TTABLE);
	lua_settop(L, 2);
	luaL_getmetatable(L, BL_LUA_CHANNEL);
	lua_getfield(L, 3, "__index");
	lua_getupvalue(L, 4, 1);                 /* 5: the class's methods */
	extend_from(L, 1, &ext_methods_key, 5);
	if (!lua_isnil(L, 2))
		extend_from(L, 2, &ext_fields_key, 5);
	return 0;
}

static int l_channel_index(lua_State *L)
{
	struct lchannel *ch = check_channel(L, 1);
	const char *k = luaL_checkstring(L, 2);
	struct lchan *c = chan_of(ch);

	if (strcmp(k, "index") == 0 || strcmp(k, "cell") == 0) {
		lua_pushinteger(L, ch->cell);
	} else if (strcmp(k, "device") == 0) {
		lua_getiuservalue(L, 1, 1);
	} else if (strcmp(k, "last") == 0) {
		const struct bl_sample *s = c->c ? bl_channel_last(c->c) : NULL;
		if (s)
			bl_lua_push_sample(L, s);
		else
			lua_pushnil(L);
	} else if (strcmp(k, "step_time") == 0) {
		double t = c->c ? bl_channel_step_time(c->c) : -1.0;
		if (t >= 0)
			lua_pushnumber(L, t);
		else
			lua_pushnil(L);
	} else if (lua_getfield(L, lua_upvalueindex(1), k) == LUA_TNIL) {
		lua_rawgetp(L, LUA_REGISTRYINDEX, &ext_methods_key);
		if (lua_getfield(L, -1, k) == LUA_TNIL) {
			lua_rawgetp(L, LUA_REGISTRYINDEX, &ext_fields_key);
			if (lua_getfield(L, -1, k) == LUA_TFUNCTION) {
				lua_pushvalue(L, 1);
				lua_call(L, 1, 1);
			}
		}
	}
	return 1;
}

static int l_channel_tostring(lua_State *L)
{
	struct lchannel *ch = check_channel(L, 1);

	lua_pushfstring(L, "batlab.Channel %d of Batlab %d%s", ch->cell, (int)ch->ld->serial,
	                ch->ld->d ? "" : " (detached)");
	return 1;
}

static const luaL_Reg channel_methods[] = {
	{"wait", l_channel_wait},
	{"watch", bl_lua_channel_watch},
	{"report_interval", l_channel_report_interval},
	{"charge", l_channel_charge},
	{"discharge", l_channel_discharge},
	{"idle", l_channel_idle},
	{"stop", l_channel_stop},
	{"set_current", l_channel_set_current},
	{"want_duty", l_channel_want_duty},
	{"impedance", l_channel_impedance},
	{"limits", l_channel_limits},
	{NULL, NULL},
};

static const luaL_Reg channel_meta[] = {
	{"__index", l_channel_index},
	{"__tostring", l_channel_tostring},
	{NULL, NULL},
};

void bl_lua_push_channel(lua_State *L, int dev_idx, int cell)
{
	struct bl_lua_device *ld = lua_touserdata(L, dev_idx);
	struct lchannel *ch;

	dev_idx = lua_absindex(L, dev_idx);
	if (lua_getiuservalue(L, dev_idx, 1) != LUA_TTABLE) {
		lua_pop(L, 1);
		lua_createtable(L, BL_CELLS, 0);
		lua_pushvalue(L, -1);
		lua_setiuservalue(L, dev_idx, 1);
	}
	if (lua_rawgeti(L, -1, cell + 1) == LUA_TUSERDATA) {
		lua_remove(L, -2);
		return;
	}
	lua_pop(L, 1);
	ch = lua_newuserdatauv(L, sizeof *ch, 1);
	ch->ld = ld;
	ch->cell = cell;
	luaL_setmetatable(L, BL_LUA_CHANNEL);
	lua_pushvalue(L, dev_idx);
	lua_setiuservalue(L, -2, 1);
	lua_pushvalue(L, -1);
	lua_rawseti(L, -3, cell + 1);
	lua_remove(L, -2);
}

/* The scheduler's safe hook: the channel of a task that ended. */
static void channel_safe(lua_State *L, int idx, void *ud)
{
	struct lchannel *ch = luaL_testudata(L, idx, BL_LUA_CHANNEL);

	(void)ud;
	if (!ch || !ch->ld->d || bl_device_closed(ch->ld->d))
		return;
	if (bl_channel_safe(chan_of(ch)->c, NULL, NULL) != BL_OK)
		BL_WARN(MOD, "Batlab %u cell %d: cannot start the safe sequence", ch->ld->serial,
		        ch->cell);
}

void bl_lua_open_channel(lua_State *L)
{
	_Static_assert(sizeof(struct bl_sample) <= BL_WAIT_PAYLOAD, "a sample fits a wait");
	init_sample_keys(L);
	bl_lua_newclass(L, BL_LUA_CHANNEL, channel_meta, channel_methods);
	lua_newtable(L);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &ext_methods_key);
	lua_newtable(L);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &ext_fields_key);
	lua_pushcfunction(L, l_extend_channel);
	lua_setfield(L, -2, "extend_channel");
	bl_lua_open_recorder(L);
	bl_lua_open_trail(L);
	bl_lua_open_series(L);
	bl_sched_set_safe_hook(bl_sched_get(L), channel_safe, NULL);
}
