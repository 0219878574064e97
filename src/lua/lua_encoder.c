/* lua_encoder.c - batlab.Encoder: engineering units -> raw register values
 * with the seed library's arithmetic, so that a script moved over from
 * Lexcelon's Python library computes the same raw numbers.
 *
 * The seed's encoders truncate toward zero (Python's int()), scale current
 * by 32767/4.096 where the decoder uses 32768/4.096, and do not clamp: a
 * negative voltage stays negative (-0.01 V is -72), 10 V is 72817. This is
 * deliberately not what the project itself writes: src/core/units.c rounds
 * to the nearest count and clamps to the register (the firmware's own
 * defaults are the rounded values, e.g. 2.8 V = 20389 where the seed gives
 * 20388); batlab.to_raw() gives those. docs/lua-api.md lists the
 * differences.
 *
 * The seed raises where its arithmetic does (a VCC of 0 V, a magnitude of
 * 0 App, -273.15 degrees); so does this. Its aschargel/aschargeh raised on
 * every input (a float & int); here they work.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/units.h"
#include "lua/lua_util.h"

/* The seed's constants. The arithmetic below keeps the seed's order of
 * operations: floating point rounding then truncates the same way. */
#define SEED_FULL 32768.0                 /* 2**15 */
#define SEED_FREQ_STEP (10000.0 / 256.0)
#define SEED_T0 (25.0 + 273.15)
#define SEED_R0 10000.0

struct encoder {
	double value;
};

static struct encoder *check_encoder(lua_State *L, int arg)
{
	return luaL_checkudata(L, arg, BL_LUA_ENCODER);
}

static int l_batlab_encoder(lua_State *L)
{
	double v = luaL_checknumber(L, 1);
	struct encoder *enc;

	luaL_argcheck(L, !isnan(v), 1, "value is NaN");
	enc = lua_newuserdatauv(L, sizeof *enc, 0);
	enc->value = v;
	luaL_setmetatable(L, BL_LUA_ENCODER);
	return 1;
}

/* Python's int(x) for a float: toward zero. Out of Lua's integer range (or
 * infinite) is an error here, where Python would return a big integer. */
static int push_int(lua_State *L, double x, const char *what)
{
	double t = trunc(x);

	if (!(t >= -9007199254740992.0 && t <= 9007199254740992.0))
		return luaL_error(L, "batlab.Encoder:%s: %f has no raw value", what, x);
	lua_pushinteger(L, (lua_Integer)t);
	return 1;
}

static int l_encoder_asvoltage(lua_State *L)
{
	return push_int(L, check_encoder(L, 1)->value * SEED_FULL / 4.5, "asvoltage");
}

static int l_encoder_ascurrent(lua_State *L)
{
	return push_int(L, check_encoder(L, 1)->value * (SEED_FULL - 1) / 4.096, "ascurrent");
}

static int l_encoder_asvcc(lua_State *L)
{
	double v = check_encoder(L, 1)->value;

	if (v == 0.0)
		return luaL_error(L, "batlab.Encoder:asvcc: a VCC of 0 V has no raw value "
		                  "(division by zero)");
	return push_int(L, SEED_FULL * 4.096 / v, "asvcc");
}

static int l_encoder_asfreq(lua_State *L)
{
	return push_int(L, check_encoder(L, 1)->value / SEED_FREQ_STEP, "asfreq");
}

/* asioff and assetpoint: 128 counts per amp, no clamp (dev:write clamps
 * CURRENT_SETPOINT as the seed's write does). */
static int l_encoder_assetpoint(lua_State *L)
{
	return push_int(L, check_encoder(L, 1)->value * 128.0, "assetpoint");
}

static int l_encoder_asmagdiv(lua_State *L)
{
	double v = check_encoder(L, 1)->value;

	if (!(v > 0.0))
		return luaL_error(L, "batlab.Encoder:asmagdiv: %f App has no raw value "
		                  "(log2 of a number <= 0)", v);
	return push_int(L, 1.0 - log2(v), "asmagdiv");
}

/* R or B of a temperature encoder: optional (the nominal values), else a
 * number as the seed takes them. */
static double opt_number(lua_State *L, int arg, double def)
{
	return lua_isnoneornil(L, arg) ? def : luaL_checknumber(L, arg);
}

/* The seed's thermistor encoder from degrees Celsius: the NTC resistance
 * at that temperature, then the divider's reading; -100 (its "dummy
 * value") when either resistance is not positive. */
static int temperature(lua_State *L, double celsius, const char *what)
{
	double rdiv = opt_number(L, 2, BL_TEMP_R_NOMINAL);
	double b = opt_number(L, 3, BL_TEMP_B_NOMINAL);
	double r;

	if (celsius + 273.15 == 0.0)
		return luaL_error(L, "batlab.Encoder:%s: absolute zero has no raw value "
		                  "(division by zero)", what);
	r = exp((1.0 / (celsius + 273.15) - 1.0 / SEED_T0) * b) * SEED_R0;
	if (r > 0.0 && rdiv > 0.0)
		return push_int(L, SEED_FULL / ((1.0 / r) * rdiv + 1.0), what);
	lua_pushinteger(L, -100);
	return 1;
}

static int l_encoder_astemperature(lua_State *L)
{
	return temperature(L, (check_encoder(L, 1)->value - 32.0) / 1.8, "astemperature");
}

static int l_encoder_c_astemperature(lua_State *L)
{
	return temperature(L, check_encoder(L, 1)->value, "c_astemperature");
}

/* The 32-bit charge counter for a charge in coulombs, as the seed's
 * formula gives it (multiplier 6, or 1 for the hi-res channel). */
static uint32_t charge_count(lua_State *L)
{
	double c = check_encoder(L, 1)->value, n;
	lua_Integer m = luaL_optinteger(L, 2, BL_CHARGE_MULT_NORMAL);

	luaL_argcheck(L, m >= 1 && m <= 1000, 2,
	              "charge multiplier must be 6 (normal) or 1 (hi-res channel)");
	n = trunc(c * 9.765625 / 4.096 / (double)m * SEED_FULL);
	if (!(n >= 0.0 && n <= 4294967295.0))
		luaL_error(L, "batlab.Encoder: %f C does not fit the charge counter "
		           "(0..4294967295 counts)", c);
	return (uint32_t)n;
}

static int l_encoder_aschargel(lua_State *L)
{
	lua_pushinteger(L, charge_count(L) & 0xFFFF);
	return 1;
}

static int l_encoder_aschargeh(lua_State *L)
{
	lua_pushinteger(L, charge_count(L) >> 16);
	return 1;
}

static int l_encoder_index(lua_State *L)
{
	struct encoder *enc = check_encoder(L, 1);
	const char *k = lua_tostring(L, 2);

	if (lua_type(L, 2) == LUA_TSTRING && (strcmp(k, "value") == 0 || strcmp(k, "data") == 0)) {
		lua_pushnumber(L, enc->value);
		return 1;
	}
	lua_pushvalue(L, 2);
	lua_gettable(L, lua_upvalueindex(1));
	return 1;
}

static int l_encoder_tostring(lua_State *L)
{
	struct encoder *enc = check_encoder(L, 1);

	lua_pushfstring(L, "batlab.Encoder(%f)", enc->value);
	return 1;
}

static const luaL_Reg encoder_meta[] = {
	{"__index", l_encoder_index},
	{"__tostring", l_encoder_tostring},
	{NULL, NULL},
};

static const luaL_Reg encoder_methods[] = {
	{"asvoltage", l_encoder_asvoltage},
	{"ascurrent", l_encoder_ascurrent},
	{"asvcc", l_encoder_asvcc},
	{"asfreq", l_encoder_asfreq},
	{"asioff", l_encoder_assetpoint},
	{"assetpoint", l_encoder_assetpoint},
	{"asmagdiv", l_encoder_asmagdiv},
	{"astemperature", l_encoder_astemperature},
	{"c_astemperature", l_encoder_c_astemperature},
	{"aschargel", l_encoder_aschargel},
	{"aschargeh", l_encoder_aschargeh},
	{NULL, NULL},
};

void bl_lua_open_encoder(lua_State *L)
{
	bl_lua_newclass(L, BL_LUA_ENCODER, encoder_meta, encoder_methods);
	lua_pushcfunction(L, l_batlab_encoder);
	lua_setfield(L, -2, "Encoder");
}
