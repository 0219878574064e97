/* lua_pool.c - batlab.open and batlab.Pool: the connected Batlabs as Lua
 * sees them, plus batlab._stats for leak checks and the simulator hooks.
 *
 * One pool is open at a time per engine. While it is open the registry
 * anchors it (so a pool nobody references keeps running until closed),
 * the scheduler runs on its loop and batlab.now() reads its clock. Devices
 * are Lua objects made on first use; each keeps its pool alive, and the
 * pool's table keeps each attached device alive (the stream listener
 * points into it).
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "core/bl.h"
#include "device/pool.h"
#include "host/session.h"
#include "lua/engine.h"
#include "lua/lua_pool_parts.h"
#include "lua/lua_util.h"
#include "lua/sched.h"

#define FLUSH_US 2000000u

/* Registry key: the open Pool object (its address). */
static const char open_key = 0;

struct lpool *bl_lua_check_pool(lua_State *L, int idx)
{
	struct lpool *lp = luaL_checkudata(L, idx, BL_LUA_POOL);

	if (lp->closed)
		luaL_error(L, "attempt to use a closed pool");
	return lp;
}

static struct lpool *open_pool(lua_State *L)
{
	struct lpool *lp;

	lua_rawgetp(L, LUA_REGISTRYINDEX, &open_key);
	lp = lua_touserdata(L, -1);
	lua_pop(L, 1);
	return lp;
}

static void set_clock(lua_State *L, const struct bl_clock *clock)
{
	struct bl_engine *e = bl_engine_from_state(L);

	if (e)
		bl_engine_set_clock(e, clock);
	else
		bl_lua_set_clock(L, clock);
}

/* ---- Devices ------------------------------------------------------------ */

static struct bl_lua_device *find_ld(struct lpool *lp, const struct bl_device *d, size_t *at)
{
	for (size_t i = 0; i < lp->n; i++)
		if (bl_lua_device_ptr(lp->devs[i]) == d) {
			if (at)
				*at = i;
			return lp->devs[i];
		}
	return NULL;
}

/* Push the Device object of d (the pool object at pool_idx). */
static void push_device(lua_State *L, int pool_idx, struct bl_device *d)
{
	struct lpool *lp = lua_touserdata(L, pool_idx);
	struct bl_lua_device *ld;

	pool_idx = lua_absindex(L, pool_idx);
	lua_getiuservalue(L, pool_idx, 1);
	lua_pushlightuserdata(L, d);
	if (lua_rawget(L, -2) == LUA_TUSERDATA && find_ld(lp, d, NULL) &&
	    bl_lua_device_ptr(lua_touserdata(L, -1)) == d) {
		lua_remove(L, -2);
		return;
	}
	lua_pop(L, 1);
	if (lp->n == lp->cap) {
		size_t cap = lp->cap ? lp->cap * 2 : 8;
		struct bl_lua_device **nd = realloc(lp->devs, cap * sizeof *nd);
		if (!nd)
			luaL_error(L, "out of memory");
		lp->devs = nd;
		lp->cap = cap;
	}
	ld = bl_lua_push_device(L, d, lp->s);
	lua_pushvalue(L, pool_idx);
	lua_setiuservalue(L, -2, 2);             /* the device keeps its pool */
	lp->devs[lp->n++] = ld;
	lua_pushlightuserdata(L, d);
	lua_pushvalue(L, -2);
	lua_rawset(L, -4);
	lua_remove(L, -2);
}

static void detach_all(struct lpool *lp)
{
	for (size_t i = 0; i < lp->n; i++)
		bl_lua_device_detach(lp->devs[i]);
	lp->n = 0;
}

static void on_session_event(struct bl_session *s, enum bl_pool_event ev, struct bl_device *d,
                             void *ud)
{
	struct lpool *lp = ud;
	struct bl_lua_device *ld;
	size_t at;

	(void)s;
	ld = d ? find_ld(lp, d, &at) : NULL;
	if (!ld)
		return;
	if (ev == BL_POOL_UNPLUG) {
		bl_lua_device_detach(ld);
		lp->devs[at] = lp->devs[--lp->n];
	} else if (ev == BL_POOL_RESET) {
		bl_lua_device_reset(ld);
	}
}

/* ---- Safety on interrupt and close ------------------------------------------ */

static bool nothing_pending(void *ud)
{
	struct lpool *lp = ud;
	struct bl_pool *p = bl_session_pool(lp->s);

	for (size_t i = 0; i < bl_pool_count(p); i++)
		if (bl_device_pending(bl_pool_device(p, i)) > 0)
			return false;
	return true;
}

/* Let the commands in the queues (the safe sequences) go out. */
static void flush(struct lpool *lp)
{
	struct bl_loop *loop = bl_session_loop(lp->s);

	bl_loop_run_until(loop, nothing_pending, lp, bl_loop_now(loop) + FLUSH_US);
}

static void pool_interrupt(struct bl_sched *s, void *ud)
{
	struct lpool *lp = ud;
	struct bl_pool *p = bl_session_pool(lp->s);

	(void)s;
	for (size_t i = 0; i < lp->n; i++)
		bl_lua_device_safe_all(lp->devs[i]);
	/* Devices no script touched too: every channel of every device. */
	for (size_t i = 0; i < bl_pool_count(p); i++) {
		struct bl_device *d = bl_pool_device(p, i);
		if (!find_ld(lp, d, NULL))
			for (int c = 0; c < BL_CELLS; c++)
				bl_op_safe(d, c, NULL, NULL);
	}
	flush(lp);
}

/* Tasks end, devices detach, queued commands go out, the scheduler and
 * the clock go back to what they were; an owned session is closed. */
static void pool_close(lua_State *L, struct lpool *lp)
{
	if (lp->closed)
		return;
	bl_sched_cancel_all(L, lp->sched);
	detach_all(lp);
	flush(lp);
	bl_sched_set_interrupt_hook(lp->sched, NULL, NULL);
	bl_sched_set_loop(lp->sched, NULL);
	set_clock(L, lp->old_clock);
	bl_session_on_event(lp->s, NULL, NULL);
	bl_lua_pool_messages_off(lp);
	if (lp->owned)
		bl_session_close(lp->s);
	lp->s = NULL;
	lp->closed = true;
	free(lp->devs);
	lp->devs = NULL;
	lp->cap = 0;
	if (open_pool(L) == lp) {
		lua_pushnil(L);
		lua_rawsetp(L, LUA_REGISTRYINDEX, &open_key);
	}
}

static struct lpool *new_pool(lua_State *L, struct bl_session *s, bool owned)
{
	struct lpool *lp = lua_newuserdatauv(L, sizeof *lp, 1);
	struct bl_pool *p = bl_session_pool(s);

	memset(lp, 0, sizeof *lp);
	lp->closed = true;                 /* until it is set up */
	luaL_setmetatable(L, BL_LUA_POOL);
	lua_newtable(L);
	lua_setiuservalue(L, -2, 1);
	lp->s = s;
	lp->owned = owned;
	lp->sched = bl_sched_get(L);
	lp->old_clock = bl_lua_get_clock(L);
	lp->closed = false;
	bl_session_on_event(s, on_session_event, lp);
	bl_pool_on_message(p, bl_lua_pool_message_posted, lp);
	bl_sched_set_loop(lp->sched, bl_session_loop(s));
	bl_sched_set_interrupt_hook(lp->sched, pool_interrupt, lp);
	set_clock(L, bl_session_clock(s));
	lua_pushvalue(L, -1);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &open_key);
	/* Every device gets its object now, so its reports are followed
	 * from the start. */
	for (size_t i = 0; i < bl_pool_count(p); i++) {
		push_device(L, -1, bl_pool_device(p, i));
		lua_pop(L, 1);
	}
	return lp;
}

void bl_lua_push_pool(lua_State *L, struct bl_session *s)
{
	new_pool(L, s, false);
}

/* ---- batlab.open ---------------------------------------------------------- */

static const char *opt_string(lua_State *L, const char *key)
{
	const char *v = NULL;

	if (lua_getfield(L, 1, key) != LUA_TNIL) {
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "batlab.open: %s must be a string, got %s", key, luaL_typename(L, -1));
		v = lua_tostring(L, -1);
	}
	lua_pop(L, 1);      /* the options table keeps the string alive */
	return v;
}

static bool opt_integer(lua_State *L, const char *key, lua_Integer min, lua_Integer max,
                        lua_Integer *out)
{
	int isint = 0;

	if (lua_getfield(L, 1, key) == LUA_TNIL) {
		lua_pop(L, 1);
		return false;
	}
	*out = lua_tointegerx(L, -1, &isint);
	if (!isint || *out < min || *out > max)
		luaL_error(L, "batlab.open: %s must be an integer %I..%I", key, min, max);
	lua_pop(L, 1);
	return true;
}

/* port = "PATH" or { "PATH", ... } (up to BL_MAX_PORTS): o->port the
 * first, o->more_ports the rest, in more[] (the strings stay in the
 * options table). */
#define BL_MAX_PORTS 64
static void opt_ports(lua_State *L, struct bl_session_opts *o, const char **more)
{
	lua_Integer n;

	if (lua_getfield(L, 1, "port") != LUA_TTABLE) {
		lua_pop(L, 1);
		o->port = opt_string(L, "port");
		return;
	}
	n = luaL_len(L, -1);
	if (n < 1 || n > BL_MAX_PORTS)
		luaL_error(L, "batlab.open: port must be a path or a list of 1 to %d paths", BL_MAX_PORTS);
	for (lua_Integer i = 1; i <= n; i++) {
		if (lua_rawgeti(L, -1, i) != LUA_TSTRING)
			luaL_error(L, "batlab.open: port[%I] must be a string", i);
		if (i == 1)
			o->port = lua_tostring(L, -1);
		else
			more[i - 2] = lua_tostring(L, -1);
		lua_pop(L, 1);
	}
	o->more_ports = more;
	o->n_more = (int)n - 1;
	lua_pop(L, 1);      /* the options table keeps the list alive */
}

static int l_batlab_open(lua_State *L)
{
	static const char *const known[] = {"sim", "devices", "seed", "port", "serial", NULL};
	struct bl_session_opts o;
	const char *more[BL_MAX_PORTS];
	struct bl_session *s;
	struct bl_wait local, *w;
	lua_Integer n;
	char err[512];
	int rc;

	memset(&o, 0, sizeof o);
	if (lua_isnoneornil(L, 1)) {
		lua_settop(L, 0);
		lua_newtable(L);
	}
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_pushnil(L);
	while (lua_next(L, 1)) {
		int i;
		const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
		for (i = 0; known[i] && strcmp(known[i], k) != 0; i++)
			;
		if (!known[i])
			luaL_error(L, "batlab.open: unknown option %s (sim, devices, seed, port, serial)",
			           lua_type(L, -2) == LUA_TSTRING ? lua_pushfstring(L, "'%s'", k)
			                                         : luaL_typename(L, -2));
		lua_pop(L, 1);
	}
	switch (lua_getfield(L, 1, "sim")) {
	case LUA_TNIL: break;
	case LUA_TBOOLEAN: o.sim = lua_toboolean(L, -1); break;
	case LUA_TSTRING: o.sim = true; o.layout = lua_tostring(L, -1); break;
	default: luaL_error(L, "batlab.open: sim must be true or a layout file name");
	}
	lua_pop(L, 1);
	if (opt_integer(L, "devices", 1, 64, &n))
		o.devices = (int)n;
	if (opt_integer(L, "seed", 0, LUA_MAXINTEGER, &n))
		o.seed = (uint64_t)n;
	opt_ports(L, &o, more);
	if (opt_integer(L, "serial", 0, 0xFFFFFFFF, &n)) {
		o.has_serial = true;
		o.serial = (uint32_t)n;
	}
	if (o.sim && o.port)
		luaL_error(L, "batlab.open: sim and port exclude each other");
	if (o.layout && o.devices)
		luaL_error(L, "batlab.open: a layout file lists its devices (devices= is for the default layout)");

	/* It runs the loop (connecting), so the same rules as a blocking call. */
	w = bl_wait_begin(L, &local, "batlab.open");
	if (w->task)
		return luaL_error(L, "batlab.open cannot be called from a task");
	if (open_pool(L))
		return bl_lua_fail(L, BL_ERR_BUSY, "batlab.open: a pool is already open (close it first)");
	if (bl_sched_live(bl_sched_get(L)) > 0)
		return bl_lua_fail(L, BL_ERR_BUSY, "batlab.open: tasks are running on the default "
		                   "loop; open the pool before spawning them");
	rc = bl_session_open(&o, &s, err, sizeof err);
	if (rc != BL_OK)
		return bl_lua_fail(L, rc, "batlab.open: %s", err);
	new_pool(L, s, true);
	return 1;
}

/* ---- Pool methods ------------------------------------------------------------ */

static int l_pool_devices(lua_State *L)
{
	struct lpool *lp = bl_lua_check_pool(L, 1);
	struct bl_pool *p = bl_session_pool(lp->s);
	size_t n = bl_pool_count(p);

	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		push_device(L, 1, bl_pool_device(p, i));
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

static int l_pool_find(lua_State *L)
{
	struct lpool *lp = bl_lua_check_pool(L, 1);
	struct bl_pool *p = bl_session_pool(lp->s);
	struct bl_device *d;

	if (lua_type(L, 2) == LUA_TNUMBER) {
		lua_Integer sn = luaL_checkinteger(L, 2);
		d = sn >= 0 && sn <= 0xFFFFFFFF ? bl_pool_find_serial(p, (uint32_t)sn) : NULL;
	} else if (lua_type(L, 2) == LUA_TSTRING) {
		d = bl_pool_find_port(p, lua_tostring(L, 2));
	} else {
		return luaL_argerror(L, 2, "serial number or port name expected");
	}
	if (d)
		push_device(L, 1, d);
	else
		lua_pushnil(L);
	return 1;
}

static int l_pool_active(lua_State *L)
{
	struct lpool *lp = bl_lua_check_pool(L, 1);
	struct bl_device *d = bl_pool_active(bl_session_pool(lp->s));

	if (d)
		push_device(L, 1, d);
	else
		lua_pushnil(L);
	return 1;
}

/* pool:get_ports() -> the ports of the pool's Batlabs, in pool order (the
 * seed's Batpool.get_ports listed every Batlab the system showed; a pool
 * holds every one it found when it opened). */
static int l_pool_get_ports(lua_State *L)
{
	struct lpool *lp = bl_lua_check_pool(L, 1);
	struct bl_pool *p = bl_session_pool(lp->s);
	size_t n = bl_pool_count(p);

	lua_createtable(L, (int)n, 0);
	for (size_t i = 0; i < n; i++) {
		lua_pushstring(L, bl_device_port(bl_pool_device(p, i)));
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

/* pool:active_exists() -> whether there is an active Batlab (the seed's). */
static int l_pool_active_exists(lua_State *L)
{
	struct lpool *lp = bl_lua_check_pool(L, 1);

	lua_pushboolean(L, bl_pool_active(bl_session_pool(lp->s)) != NULL);
	return 1;
}

static int l_pool_set_active(lua_State *L)
{
	struct lpool *lp = bl_lua_check_pool(L, 1);
	struct bl_lua_device *ld = luaL_checkudata(L, 2, BL_LUA_DEVICE);
	struct bl_device *d = bl_lua_device_ptr(ld);

	if (!d || !find_ld(lp, d, NULL) ||
	    bl_pool_set_active(bl_session_pool(lp->s), d) != BL_OK)
		return bl_lua_fail(L, BL_ERR_NOTFOUND, "pool:set_active: that device is not in this pool");
	lua_pushboolean(L, 1);
	return 1;
}

static int l_pool_close(lua_State *L)
{
	struct lpool *lp = luaL_checkudata(L, 1, BL_LUA_POOL);
	struct bl_wait local, *w;

	if (lp->closed)
		return 0;
	if (!lp->owned)
		return bl_lua_fail(L, BL_ERR_STATE, "pool:close: this pool belongs to the program "
		                   "(it closes it when it exits)");
	w = bl_wait_begin(L, &local, "pool:close");
	if (w->task)
		return luaL_error(L, "pool:close cannot be called from a task");
	pool_close(L, lp);
	return 0;
}

static int l_pool_gc(lua_State *L)
{
	struct lpool *lp = lua_touserdata(L, 1);

	pool_close(L, lp);
	return 0;
}

/* `local pool <close> = batlab.open{...}` */
static int l_pool_closemeta(lua_State *L)
{
	struct lpool *lp = luaL_checkudata(L, 1, BL_LUA_POOL);

	if (lp->owned)
		pool_close(L, lp);
	return 0;
}

/* Simulator hooks: the virtual Batlab behind a device. */
static struct bl_simdev *check_sim(lua_State *L, struct lpool *lp, int arg)
{
	struct bl_lua_device *ld = luaL_checkudata(L, arg, BL_LUA_DEVICE);
	struct bl_device *d = bl_lua_device_ptr(ld);
	struct bl_simdev *sim = d ? bl_session_simdev(lp->s, d) : NULL;

	if (!sim)
		luaL_argerror(L, arg, "a virtual Batlab of this pool expected");
	return sim;
}

static int l_pool_sim_reg(lua_State *L)
{
	struct lpool *lp = bl_lua_check_pool(L, 1);
	struct bl_simdev *sim = check_sim(L, lp, 2);
	uint8_t ns = bl_lua_check_ns(L, 3);
	uint8_t addr = bl_lua_check_addr(L, 4, ns);

	lua_pushinteger(L, bl_simdev_reg(sim, ns, addr));
	return 1;
}

static int l_pool_sim_current(lua_State *L)
{
	struct lpool *lp = bl_lua_check_pool(L, 1);
	struct bl_simdev *sim = check_sim(L, lp, 2);
	lua_Integer cell = luaL_checkinteger(L, 3);

	luaL_argcheck(L, cell >= 0 && cell < BL_CELLS, 3, "cell must be 0..3");
	lua_pushnumber(L, bl_simdev_cell_current(sim, (int)cell));
	return 1;
}

/* pool:sim_cell(dev, cell) -> the model's truth about a virtual cell (nil
 * for an empty slot): soc, capacity_ah, temp_c, charge_in_ah (put into
 * the cell so far), charge_out_ah (taken out), throughput_ah. Tests
 * compare measured capacities with these. */
static int l_pool_sim_cell(lua_State *L)
{
	struct lpool *lp = bl_lua_check_pool(L, 1);
	struct bl_simdev *sim = check_sim(L, lp, 2);
	lua_Integer cell = luaL_checkinteger(L, 3);
	const struct bl_cell *c;

	luaL_argcheck(L, cell >= 0 && cell < BL_CELLS, 3, "cell must be 0..3");
	c = bl_simdev_cell(sim, (int)cell);
	if (!c) {
		lua_pushnil(L);
		return 1;
	}
	lua_createtable(L, 0, 6);
	lua_pushnumber(L, c->soc);
	lua_setfield(L, -2, "soc");
	lua_pushnumber(L, c->capacity_ah);
	lua_setfield(L, -2, "capacity_ah");
	lua_pushnumber(L, c->temp_c);
	lua_setfield(L, -2, "temp_c");
	lua_pushnumber(L, c->charge_in_ah);
	lua_setfield(L, -2, "charge_in_ah");
	lua_pushnumber(L, c->charge_out_ah);
	lua_setfield(L, -2, "charge_out_ah");
	lua_pushnumber(L, c->throughput_ah);
	lua_setfield(L, -2, "throughput_ah");
	return 1;
}

static int l_pool_sim_fault(lua_State *L)
{
	static const char *const kinds[] = {
		"cell_remove", "cell_insert", "unplug", "reset", "no_reply", "late_reply",
		"garbage", "drop_bytes", "vcc_sag", "psu_lost", "thermistor_open", "self_heating",
		NULL,
	};
	struct lpool *lp = bl_lua_check_pool(L, 1);
	struct bl_simdev *sim = check_sim(L, lp, 2);
	int kind = luaL_checkoption(L, 3, NULL, kinds);
	struct bl_fault f;

	memset(&f, 0, sizeof f);
	f.kind = (enum bl_fault_kind)(kind + 1);
	f.slot = -1;
	if (!lua_isnoneornil(L, 4)) {
		luaL_checktype(L, 4, LUA_TTABLE);
		if (lua_getfield(L, 4, "slot") != LUA_TNIL)
			f.slot = (int)luaL_checkinteger(L, -1);
		if (lua_getfield(L, 4, "count") != LUA_TNIL)
			f.count = (int)luaL_checkinteger(L, -1);
		if (lua_getfield(L, 4, "value") != LUA_TNIL)
			f.value = luaL_checknumber(L, -1);
		lua_pop(L, 3);
	}
	bl_simdev_fault(sim, bl_loop_now(bl_session_loop(lp->s)), &f);
	lua_pushboolean(L, 1);
	return 1;
}

static int l_pool_index(lua_State *L)
{
	struct lpool *lp = luaL_checkudata(L, 1, BL_LUA_POOL);
	const char *k = luaL_checkstring(L, 2);

	if (strcmp(k, "sim") == 0)
		lua_pushboolean(L, !lp->closed && bl_session_is_sim(lp->s));
	else if (strcmp(k, "closed") == 0)
		lua_pushboolean(L, lp->closed);
	else
		lua_getfield(L, lua_upvalueindex(1), k);
	return 1;
}

static int l_pool_tostring(lua_State *L)
{
	struct lpool *lp = luaL_checkudata(L, 1, BL_LUA_POOL);

	if (lp->closed)
		lua_pushliteral(L, "batlab.Pool (closed)");
	else
		lua_pushfstring(L, "batlab.Pool (%d devices%s)",
		                (int)bl_pool_count(bl_session_pool(lp->s)),
		                bl_session_is_sim(lp->s) ? ", virtual" : "");
	return 1;
}

static const luaL_Reg pool_meta[] = {
	{"__index", l_pool_index},
	{"__gc", l_pool_gc},
	{"__close", l_pool_closemeta},
	{"__tostring", l_pool_tostring},
	{NULL, NULL},
};

static const luaL_Reg pool_methods[] = {
	{"devices", l_pool_devices},
	{"find", l_pool_find},
	{"active", l_pool_active},
	{"active_exists", l_pool_active_exists},
	{"get_ports", l_pool_get_ports},
	{"set_active", l_pool_set_active},
	{"messages", bl_lua_pool_messages},
	{"wait_messages", bl_lua_pool_wait_messages},
	{"close", l_pool_close},
	{"sim_reg", l_pool_sim_reg},
	{"sim_current", l_pool_sim_current},
	{"sim_cell", l_pool_sim_cell},
	{"sim_fault", l_pool_sim_fault},
	{NULL, NULL},
};

/* ---- batlab._stats ---------------------------------------------------------------- */

static void set_count(lua_State *L, const char *k, lua_Integer v)
{
	lua_pushinteger(L, v);
	lua_setfield(L, -2, k);
}

static int l_batlab_stats(lua_State *L)
{
	struct bl_sched *s = bl_sched_get(L);
	struct lpool *lp = open_pool(L);
	struct bl_sched_stats st;
	lua_Integer pending = 0, busy = 0;

	bl_sched_stats(s, &st);
	lua_createtable(L, 0, 9);
	set_count(L, "tasks", (lua_Integer)st.tasks);
	set_count(L, "refs", (lua_Integer)st.refs);
	set_count(L, "waits", (lua_Integer)st.waits);
	set_count(L, "ready", (lua_Integer)st.ready);
	set_count(L, "resumes", (lua_Integer)st.resumes);
	set_count(L, "spawned", (lua_Integer)st.spawned);
	set_count(L, "timers", bl_sched_loop(s) ? (lua_Integer)bl_loop_timer_count(bl_sched_loop(s)) : 0);
	if (lp && !lp->closed) {
		struct bl_pool *p = bl_session_pool(lp->s);
		for (size_t i = 0; i < bl_pool_count(p); i++)
			pending += bl_device_pending(bl_pool_device(p, i));
		for (size_t i = 0; i < lp->n; i++)
			busy += bl_lua_device_busy(lp->devs[i]);
	}
	set_count(L, "pending", pending);
	set_count(L, "channel_waits", busy);
	return 1;
}

static const luaL_Reg pool_funcs[] = {
	{"open", l_batlab_open},
	{"_stats", l_batlab_stats},
	{NULL, NULL},
};

void bl_lua_open_pool(lua_State *L)
{
	bl_lua_newclass(L, BL_LUA_POOL, pool_meta, pool_methods);
	luaL_setfuncs(L, pool_funcs, 0);
}
