/* lua_util.c - helpers shared by the Lua bindings. */
#include <stdarg.h>
#include <stdio.h>

#include "core/bl.h"
#include "core/regs.h"
#include "lua/lua_util.h"

/* Registry key (its address) under which the clock pointer lives. */
static const char clock_key = 0;

int bl_lua_fail(lua_State *L, int status, const char *fmt, ...)
{
	va_list ap;

	lua_pushnil(L);
	va_start(ap, fmt);
	lua_pushvfstring(L, fmt, ap);
	va_end(ap);
	lua_pushstring(L, bl_strcode(status));
	return 3;
}

void bl_lua_newclass(lua_State *L, const char *name, const luaL_Reg *meta,
                     const luaL_Reg *methods)
{
	int n = 0;

	while (methods[n].name)
		n++;
	luaL_newmetatable(L, name);            /* mt */
	luaL_setfuncs(L, meta, 0);             /* NULL entries become false */
	lua_createtable(L, 0, n);
	luaL_setfuncs(L, methods, 0);          /* mt methods */
	lua_getfield(L, -2, "__index");        /* mt methods index */
	if (lua_iscfunction(L, -1)) {
		/* A field-aware __index: close it over the methods so that
		 * anything that is not a field is looked up there. */
		lua_CFunction f = lua_tocfunction(L, -1);

		lua_pop(L, 1);                 /* mt methods */
		lua_pushcclosure(L, f, 1);     /* mt index */
	} else {
		lua_pop(L, 1);                 /* mt methods */
	}
	lua_setfield(L, -2, "__index");        /* mt */
	lua_pop(L, 1);
}

const char *bl_lua_to_ns(lua_State *L, int idx, uint8_t *ns)
{
	int isint;
	lua_Integer n;

	switch (lua_type(L, idx)) {
	case LUA_TNUMBER:
		n = lua_tointegerx(L, idx, &isint);
		if (!isint)
			return lua_pushstring(L, "namespace must be an integer");
		if (n < 0 || n > 0xFF)
			return lua_pushfstring(L, "namespace %I out of range 0..255", n);
		*ns = (uint8_t)n;
		return NULL;
	case LUA_TSTRING:
		if (bl_ns_parse(lua_tostring(L, idx), ns) == BL_OK)
			return NULL;
		return lua_pushfstring(L, "unknown namespace '%s' (expected CELL0..CELL3, "
		                       "UNIT, BOOTLOADER, COMMS or 0..255)", lua_tostring(L, idx));
	default:
		return lua_pushfstring(L, "namespace name or number expected, got %s",
		                       luaL_typename(L, idx));
	}
}

const char *bl_lua_to_addr(lua_State *L, int idx, uint8_t ns, uint8_t *addr)
{
	int isint;
	lua_Integer n;
	char nsname[16];

	switch (lua_type(L, idx)) {
	case LUA_TNUMBER:
		n = lua_tointegerx(L, idx, &isint);
		if (!isint)
			return lua_pushstring(L, "register address must be an integer");
		if (n < 0 || n > BL_ADDR_MAX)
			return lua_pushfstring(L, "register address %I out of range 0..127", n);
		*addr = (uint8_t)n;
		return NULL;
	case LUA_TSTRING:
		if (bl_reg_parse(ns, lua_tostring(L, idx), addr) == BL_OK)
			return NULL;
		return lua_pushfstring(L, "unknown register '%s' in namespace %s",
		                       lua_tostring(L, idx), bl_ns_name(ns, nsname, sizeof nsname));
	default:
		return lua_pushfstring(L, "register name or number expected, got %s",
		                       luaL_typename(L, idx));
	}
}

const char *bl_lua_to_u16(lua_State *L, int idx, uint16_t *v)
{
	int isint;
	lua_Integer n;

	if (lua_type(L, idx) != LUA_TNUMBER)
		return lua_pushfstring(L, "integer expected, got %s", luaL_typename(L, idx));
	n = lua_tointegerx(L, idx, &isint);
	if (!isint)
		return lua_pushstring(L, "register value must be an integer");
	if (n < -32768 || n > 0xFFFF)
		return lua_pushfstring(L, "register value %I out of range -32768..65535", n);
	*v = (uint16_t)n;
	return NULL;
}

uint8_t bl_lua_check_ns(lua_State *L, int arg)
{
	uint8_t ns = 0;
	const char *msg = bl_lua_to_ns(L, arg, &ns);

	if (msg)
		luaL_argerror(L, arg, msg);
	return ns;
}

uint8_t bl_lua_check_addr(lua_State *L, int arg, uint8_t ns)
{
	uint8_t addr = 0;
	const char *msg = bl_lua_to_addr(L, arg, ns, &addr);

	if (msg)
		luaL_argerror(L, arg, msg);
	return addr;
}

uint16_t bl_lua_check_u16(lua_State *L, int arg)
{
	uint16_t v = 0;
	const char *msg = bl_lua_to_u16(L, arg, &v);

	if (msg)
		luaL_argerror(L, arg, msg);
	return v;
}


/* Push an array of the names of every set bit, each with its constant
 * prefix ("ERR_NO_PSU"); a bit with no name appears as "0x1000". */
void bl_lua_push_bit_names(lua_State *L, enum bl_unit_kind kind, uint16_t bits,
                           const char *prefix)
{
	lua_Integer n = 0;

	lua_createtable(L, 4, 0);
	for (unsigned b = 0; b < 16; b++) {
		uint16_t bit = (uint16_t)(1u << b);
		const char *name;

		if (!(bits & bit))
			continue;
		name = bl_bit_name(kind, bit);
		if (!name) {
			char hex[8];

			snprintf(hex, sizeof hex, "0x%04X", bit);
			lua_pushstring(L, hex);
		} else {
			lua_pushfstring(L, "%s%s", prefix, name);
		}
		lua_rawseti(L, -2, ++n);
	}
}

void bl_lua_set_clock(lua_State *L, const struct bl_clock *clock)
{
	/* The registry holds a plain pointer: the clock belongs to whoever
	 * drives time (the engine, the sim), never to Lua. */
	lua_pushlightuserdata(L, (void *)clock);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &clock_key);
}

const struct bl_clock *bl_lua_get_clock(lua_State *L)
{
	const struct bl_clock *c;

	lua_rawgetp(L, LUA_REGISTRYINDEX, &clock_key);
	c = lua_touserdata(L, -1);
	lua_pop(L, 1);
	return c ? c : bl_clock_real();
}

double bl_lua_now(lua_State *L)
{
	return (double)bl_clock_now(bl_lua_get_clock(L)) / 1e6;
}

int bl_lua_timed_out(lua_State *L)
{
	lua_pushnil(L);
	lua_pushliteral(L, "timeout");
	lua_pushliteral(L, "ETIMEDOUT");
	return 3;
}

void bl_lua_check_carry(lua_State *L, int idx, double v[3])
{
	static const char *const keys[] = {"step_time", "charge_ah", "energy_wh"};

	luaL_checktype(L, idx, LUA_TTABLE);
	for (int i = 0; i < 3; i++) {
		v[i] = 0;
		if (lua_getfield(L, idx, keys[i]) != LUA_TNIL)
			v[i] = luaL_checknumber(L, -1);
		lua_pop(L, 1);
	}
}

void bl_lua_check_labels(lua_State *L, int idx, struct bl_lua_labels *out)
{
	out->step = out->cycle = -1;
	out->step_name = out->cycle_kind = NULL;
	luaL_checktype(L, idx, LUA_TTABLE);
	if (lua_getfield(L, idx, "step") != LUA_TNIL)
		out->step = (int)luaL_checkinteger(L, -1);
	if (lua_getfield(L, idx, "cycle") != LUA_TNIL)
		out->cycle = (int)luaL_checkinteger(L, -1);
	if (lua_getfield(L, idx, "step_name") != LUA_TNIL)
		out->step_name = luaL_tolstring(L, -1, NULL);
	if (lua_getfield(L, idx, "cycle_kind") != LUA_TNIL)
		out->cycle_kind = luaL_tolstring(L, -1, NULL);
	luaL_argcheck(L, out->step >= -1 && out->cycle >= -1, idx, "step and cycle must be >= 0");
}
