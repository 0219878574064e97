/* lua_batlab.c - the `batlab` Lua module: constants and register metadata
 * from the one C table (regs.c), name lookups, now(), and the classes that
 * add themselves (Packet, Encoder; Device and Pool later).
 */
#include <math.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>

#include "core/bl.h"
#include "core/clock.h"
#include "core/regs.h"
#include "core/units.h"
#include "lua/engine.h"
#include "lua/lua_db.h"
#include "lua/lua_util.h"

#ifndef BL_VERSION
#define BL_VERSION "0.0.0"
#endif

/* Names of enum bl_unit_kind, for batlab.registers[i].kind. */
static const char *const kind_names[BL_UK_COUNT] = {
	[BL_UK_RAW] = "raw",
	[BL_UK_INT16] = "int16",
	[BL_UK_MODE] = "mode",
	[BL_UK_ERROR] = "error",
	[BL_UK_STATUS] = "status",
	[BL_UK_SETTINGS] = "settings",
	[BL_UK_LED] = "led",
	[BL_UK_VOLTAGE] = "voltage",
	[BL_UK_CURRENT] = "current",
	[BL_UK_SETPOINT] = "setpoint",
	[BL_UK_TEMPERATURE] = "temperature",
	[BL_UK_VCC] = "vcc",
	[BL_UK_FREQ] = "freq",
	[BL_UK_MAGDIV] = "magdiv",
	[BL_UK_CHARGEL] = "chargel",
	[BL_UK_CHARGEH] = "chargeh",
	[BL_UK_INTERVAL] = "interval",
	[BL_UK_TICKS] = "ticks",
	[BL_UK_DUTY] = "duty",
	[BL_UK_COMPENSATION] = "compensation",
	[BL_UK_OHMS] = "ohms",
	[BL_UK_KELVIN] = "kelvin",
	[BL_UK_LOCK] = "lock",
	[BL_UK_BOOL] = "bool",
	[BL_UK_PSU_VOLTAGE] = "psu_voltage",
};

static const char *const ns_kind_names[] = {
	[BL_NSK_CELL] = "cell",
	[BL_NSK_UNIT] = "unit",
	[BL_NSK_BOOTLOADER] = "bootloader",
	[BL_NSK_COMMS] = "comms",
};

static void set_bool(lua_State *L, const char *k, bool v)
{
	lua_pushboolean(L, v);
	lua_setfield(L, -2, k);
}

/* One register's description, pushed as a table. */
static void push_register(lua_State *L, const struct bl_reg *r)
{
	const char *kind = r->unit < BL_UK_COUNT ? kind_names[r->unit] : NULL;

	lua_createtable(L, 0, 8);
	lua_pushstring(L, r->name);
	lua_setfield(L, -2, "name");
	lua_pushstring(L, r->ns_kind < BL_ARRAY_LEN(ns_kind_names) ? ns_kind_names[r->ns_kind] : "none");
	lua_setfield(L, -2, "namespace");
	lua_pushinteger(L, r->addr);
	lua_setfield(L, -2, "addr");
	lua_pushstring(L, bl_unit_symbol((enum bl_unit_kind)r->unit));
	lua_setfield(L, -2, "unit");
	lua_pushstring(L, kind ? kind : "raw");
	lua_setfield(L, -2, "kind");
	lua_createtable(L, 0, 6);
	set_bool(L, "read", r->access & BL_ACC_R);
	set_bool(L, "write", r->access & BL_ACC_W);
	set_bool(L, "eeprom", r->access & BL_ACC_EEPROM);
	set_bool(L, "measured", r->access & BL_ACC_MEASURED);
	set_bool(L, "refused", r->access & BL_ACC_REFUSED);
	set_bool(L, "guarded", r->access & BL_ACC_GUARDED);
	lua_setfield(L, -2, "access");
	lua_pushinteger(L, r->power_on);
	lua_setfield(L, -2, "power_on");
	lua_pushstring(L, r->doc);
	lua_setfield(L, -2, "doc");
}

/* batlab.registers: an array in table order, also indexed by name (names
 * are unique across namespaces). */
static void push_registers(lua_State *L)
{
	lua_createtable(L, (int)bl_regs_count, (int)bl_regs_count);
	for (size_t i = 0; i < bl_regs_count; i++) {
		push_register(L, &bl_regs[i]);
		lua_pushvalue(L, -1);
		lua_setfield(L, -3, bl_regs[i].name);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
}

/* Every code and namespace, then every register name as its address. A
 * name already taken keeps its first meaning (there are none today; the
 * tests check that). */
static void set_constants(lua_State *L)
{
	for (size_t i = 0; i < bl_consts_count; i++) {
		lua_pushinteger(L, bl_consts[i].value);
		lua_setfield(L, -2, bl_consts[i].name);
	}
	for (size_t i = 0; i < bl_regs_count; i++) {
		if (lua_getfield(L, -1, bl_regs[i].name) == LUA_TNIL) {
			lua_pushinteger(L, bl_regs[i].addr);
			lua_setfield(L, -3, bl_regs[i].name);
		}
		lua_pop(L, 1);
	}
	/* The full scales of the voltage and current registers: Lua code that
	 * checks settings against what a register holds uses these. */
	lua_pushnumber(L, BL_VOLTAGE_FULL_SCALE);
	lua_setfield(L, -2, "VOLTAGE_FULL_SCALE");
	lua_pushnumber(L, BL_CURRENT_FULL_SCALE);
	lua_setfield(L, -2, "CURRENT_FULL_SCALE");
	/* the most current a host commands (the setpoint's ceiling) */
	lua_pushnumber(L, BL_SETPOINT_MAX / 128.0);
	lua_setfield(L, -2, "CURRENT_MAX");
	static const struct { const char *name; int code; } exits[] = {
		{"EXIT_OK", BL_EXIT_OK}, {"EXIT_FAILED", BL_EXIT_FAILED}, {"EXIT_USAGE", BL_EXIT_USAGE},
		{"EXIT_DEVICE", BL_EXIT_DEVICE}, {"EXIT_INTERRUPTED", BL_EXIT_INTERRUPTED},
	};
	for (size_t i = 0; i < BL_ARRAY_LEN(exits); i++) {
		lua_pushinteger(L, exits[i].code);
		lua_setfield(L, -2, exits[i].name);
	}
}

/* The seed's lists of names, indexed like its Python lists: by the code
 * (MODE_LIST[MODE_IDLE] == "MODE_IDLE", index 0 first) and by the bit
 * number (ERR_LIST[6] == "ERR_BACKWARDS", "" for a bit with no name). */
static void set_seed_lists(lua_State *L)
{
	static const uint8_t namespaces[] = {BL_NS_CELL0, BL_NS_CELL1, BL_NS_CELL2, BL_NS_CELL3,
	                                     BL_NS_UNIT, BL_NS_BOOTLOADER, BL_NS_COMMS};
	int top = 0;

	lua_createtable(L, BL_MODE_COUNT, 1);
	for (int m = 0; m < BL_MODE_COUNT; m++) {
		lua_pushfstring(L, "MODE_%s", bl_mode_name((uint16_t)m));
		lua_rawseti(L, -2, m);
	}
	lua_setfield(L, -2, "MODE_LIST");
	for (int b = 0; b < 16; b++)
		if (bl_bit_name(BL_UK_ERROR, (uint16_t)(1u << b)))
			top = b;
	lua_createtable(L, top, 1);
	for (int b = 0; b <= top; b++) {
		const char *name = bl_bit_name(BL_UK_ERROR, (uint16_t)(1u << b));
		lua_pushfstring(L, "%s%s", name ? "ERR_" : "", name ? name : "");
		lua_rawseti(L, -2, b);
	}
	lua_setfield(L, -2, "ERR_LIST");
	lua_createtable(L, (int)BL_ARRAY_LEN(namespaces), 0);
	for (size_t i = 0; i < BL_ARRAY_LEN(namespaces); i++) {
		lua_pushinteger(L, namespaces[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "NAMESPACE_LIST");
	/* the last register of each namespace */
	lua_pushinteger(L, (lua_Integer)bl_ns_size(BL_NS_CELL0) - 1);
	lua_setfield(L, -2, "CELLREG_MAX");
	lua_pushinteger(L, (lua_Integer)bl_ns_size(BL_NS_UNIT) - 1);
	lua_setfield(L, -2, "UNITREG_MAX");
	lua_pushinteger(L, (lua_Integer)bl_ns_size(BL_NS_COMMS) - 1);
	lua_setfield(L, -2, "COMMREGS_MAX");
}

/* batlab.lookup(ns, reg) -> ns byte, addr */
static int l_batlab_lookup(lua_State *L)
{
	uint8_t ns = bl_lua_check_ns(L, 1);
	uint8_t addr = bl_lua_check_addr(L, 2, ns);

	lua_pushinteger(L, ns);
	lua_pushinteger(L, addr);
	return 2;
}

/* batlab.to_raw(ns, reg, value [, R, B]) -> raw: a value in the
 * register's unit (V, A, degC, Hz, App, s) as the project itself encodes
 * it (units.c: nearest count, clamped to the register; R and B, default
 * nominal, for temperatures). batlab.Encoder is the seed's arithmetic. */
static int l_batlab_to_raw(lua_State *L)
{
	uint8_t ns = bl_lua_check_ns(L, 1);
	uint8_t addr = bl_lua_check_addr(L, 2, ns);
	double v = luaL_checknumber(L, 3);
	double r = luaL_optnumber(L, 4, BL_TEMP_R_NOMINAL);
	double b = luaL_optnumber(L, 5, BL_TEMP_B_NOMINAL);
	const struct bl_reg *reg = bl_reg_by_addr(ns, addr);
	int ok = 0;
	uint16_t raw = 0;

	luaL_argcheck(L, isfinite(v), 3, "value must be a finite number");
	luaL_argcheck(L, r > 0.0 && isfinite(r), 4, "R must be a positive number");
	luaL_argcheck(L, b > 0.0 && isfinite(b), 5, "B must be a positive number");
	if (reg)
		raw = bl_unit_to_raw((enum bl_unit_kind)reg->unit, v, r, b, &ok);
	if (!ok)
		return luaL_error(L, "batlab.to_raw: %f cannot be encoded for %s", v,
		                  reg ? reg->name : "an unknown register");
	lua_pushinteger(L, raw);
	return 1;
}

static uint16_t check_bits(lua_State *L, int arg)
{
	lua_Integer v = luaL_checkinteger(L, arg);

	luaL_argcheck(L, v >= 0 && v <= 0xFFFF, arg, "bit field must be 0..65535");
	return (uint16_t)v;
}

static int l_batlab_mode_name(lua_State *L)
{
	lua_Integer v = luaL_checkinteger(L, 1);
	const char *name = v >= 0 && v <= 0xFFFF ? bl_mode_name((uint16_t)v) : NULL;

	if (name)
		lua_pushstring(L, name);
	else
		lua_pushnil(L);
	return 1;
}

static int l_batlab_led_name(lua_State *L)
{
	lua_Integer v = luaL_checkinteger(L, 1);
	const char *name = v >= 0 && v <= 0xFFFF ? bl_led_name((uint16_t)v) : NULL;

	if (name)
		lua_pushstring(L, name);
	else
		lua_pushnil(L);
	return 1;
}

static int l_batlab_error_names(lua_State *L)
{
	bl_lua_push_bit_names(L, BL_UK_ERROR, check_bits(L, 1), "");
	return 1;
}

static int l_batlab_status_names(lua_State *L)
{
	bl_lua_push_bit_names(L, BL_UK_STATUS, check_bits(L, 1), "");
	return 1;
}

static int l_batlab_settings_names(lua_State *L)
{
	bl_lua_push_bit_names(L, BL_UK_SETTINGS, check_bits(L, 1), "");
	return 1;
}

/* Seconds on the engine's clock: virtual under the simulator, monotonic
 * otherwise. The origin is arbitrary: use differences. */
static int l_batlab_now(lua_State *L)
{
	lua_pushnumber(L, bl_lua_now(L));
	return 1;
}

/* load_procedure(path) -> the table or function a procedure file returns,
 * loaded in a fresh sandbox; nil, message on a missing file, a syntax
 * error ("FILE:LINE: ...") or an error while its main chunk runs. */
static int l_batlab_load_procedure(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct bl_engine *e = bl_engine_from_state(L);

	if (!e)
		return luaL_error(L, "load_procedure: not inside the batlab engine");
	if (bl_engine_load_procedure(e, path) != LUA_OK) {
		lua_pushnil(L);
		lua_insert(L, -2);
		lua_pushstring(L, "EINVAL");
		return 3;
	}
	return 1;
}

/* isatty(fd): whether standard output (1) or another descriptor is a
 * terminal: progress is drawn live there, as plain lines elsewhere. */
static int l_batlab_isatty(lua_State *L)
{
	lua_pushboolean(L, isatty((int)luaL_checkinteger(L, 1)));
	return 1;
}

/* luadir(): the lua/ directory in use (scripts/ sits beside it). */
static int l_batlab_luadir(lua_State *L)
{
	struct bl_engine *e = bl_engine_from_state(L);

	if (e && bl_engine_luadir(e))
		lua_pushstring(L, bl_engine_luadir(e));
	else
		lua_pushnil(L);
	return 1;
}

/* _pace(virtual_elapsed_s, speed): for `batlab run --sim --speed X`, hold
 * the program until the real time since the first call reaches
 * virtual_elapsed / speed, so a dry run can be watched at X times real
 * time. The wait is a poll(2) timeout (a signal ends it early), and only
 * this explicit request ever makes a virtual run wait for the real clock. */
static int l_batlab_pace(lua_State *L)
{
	static uint64_t real0;
	double virt = luaL_checknumber(L, 1), speed = luaL_checknumber(L, 2);
	uint64_t now = bl_clock_monotonic_us(), due;

	luaL_argcheck(L, speed > 0, 2, "speed must be > 0");
	if (real0 == 0)
		real0 = now;
	due = real0 + (uint64_t)(virt > 0 ? virt / speed * 1e6 : 0);
	if (due > now) {
		uint64_t ms = (due - now + 999) / 1000;
		poll(NULL, 0, ms > 1000 ? 1000 : (int)ms);
	}
	return 0;
}

static const luaL_Reg batlab_funcs[] = {
	{"_pace", l_batlab_pace},
	{"load_procedure", l_batlab_load_procedure},
	{"isatty", l_batlab_isatty},
	{"luadir", l_batlab_luadir},
	{"lookup", l_batlab_lookup},
	{"to_raw", l_batlab_to_raw},
	{"mode_name", l_batlab_mode_name},
	{"led_name", l_batlab_led_name},
	{"error_names", l_batlab_error_names},
	{"status_names", l_batlab_status_names},
	{"settings_names", l_batlab_settings_names},
	{"now", l_batlab_now},
	{NULL, NULL},
};

int luaopen_batlab(lua_State *L)
{
	luaL_newlib(L, batlab_funcs);
	set_constants(L);
	set_seed_lists(L);
	push_registers(L);
	lua_setfield(L, -2, "registers");
	lua_pushliteral(L, BL_VERSION);
	lua_setfield(L, -2, "VERSION");
	bl_lua_open_packet(L);
	bl_lua_open_csv(L);
	bl_lua_open_sched(L);
	bl_lua_open_device(L);
	bl_lua_open_pool(L);
	bl_lua_open_db(L);
	bl_lua_open_mqtt(L);
	return 1;
}
