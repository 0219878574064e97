/* lua_packet.c - batlab.Packet: a register reply and its decoders, the
 * seed library's Packet (Lexcelon's Python batlab.packet) on batlab's
 * register table. The encoders are lua_encoder.c.
 *
 * The decoders give the seed's numbers (the arithmetic is units.c's, the
 * same formulas; SINE_MAGDIV keeps 2/2^raw past 7 as the seed does, where
 * the firmware makes no sine). Differences, on purpose and listed in
 * docs/lua-api.md: decoders of an invalid packet, and temperatures of a
 * raw value no thermistor gives, return nil, message, code where the
 * seed returned NaN; aserr_list() gives every ERROR flag (aserr() names
 * the lowest, as the seed does); asstatus and assettings are additions.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/bl.h"
#include "core/regs.h"
#include "core/units.h"
#include "lua/lua_util.h"

struct packet {
	struct bl_packet p;
	bool valid;
	int status;        /* why it is invalid */
	double timestamp;  /* NAN: none */
	double r, b;       /* this cell's thermistor calibration */
};

static struct packet *check_packet(lua_State *L, int arg)
{
	return luaL_checkudata(L, arg, BL_LUA_PACKET);
}


static struct packet *new_packet(lua_State *L)
{
	struct packet *pk = lua_newuserdatauv(L, sizeof *pk, 0);

	memset(pk, 0, sizeof *pk);
	pk->status = BL_ERR_PROTO;
	pk->timestamp = NAN;
	pk->r = BL_TEMP_R_NOMINAL;
	pk->b = BL_TEMP_B_NOMINAL;
	luaL_setmetatable(L, BL_LUA_PACKET);
	return pk;
}

void bl_lua_push_packet(lua_State *L, const struct bl_packet *p,
                        const struct bl_lua_packet_info *info)
{
	struct packet *pk = new_packet(L);

	pk->p = *p;
	pk->valid = true;
	pk->status = BL_OK;
	if (info) {
		pk->valid = info->valid;
		pk->status = info->valid ? BL_OK : (info->status ? info->status : BL_ERR_PROTO);
		pk->timestamp = info->timestamp;
		if (info->r > 0.0)
			pk->r = info->r;
		if (info->b > 0.0)
			pk->b = info->b;
	}
}

/* "CELL2 VOLTAGE", "UNIT 0x1F": what a packet is about, for messages. */
static const char *packet_label(const struct bl_packet *p, char *buf, size_t n)
{
	const struct bl_reg *r = bl_reg_by_addr(p->ns, p->addr);
	char ns[16];

	bl_ns_name(p->ns, ns, sizeof ns);
	if (r)
		snprintf(buf, n, "%s %s", ns, r->name);
	else
		snprintf(buf, n, "%s 0x%02X", ns, p->addr);
	return buf;
}

/* The failure every decoder returns for a packet with no trustworthy value. */
static int fail_invalid(lua_State *L, const struct packet *pk)
{
	char label[48];

	return bl_lua_fail(L, pk->status, "%s: no valid value (%s)",
	                   packet_label(&pk->p, label, sizeof label), bl_strerror(pk->status));
}

/* SINE_MAGDIV as the seed decodes it: 2 / 2^raw for every raw value (the
 * firmware makes no sine from 8 up; units.c says 0 A there). */
static double seed_magdiv(uint16_t raw)
{
	return ldexp(2.0, -(int)raw);
}

/* Decoders share one shape: check self, bail out if invalid, convert. */
#define DECODER(fname, conv)                                          \
	static int fname(lua_State *L)                                \
	{                                                             \
		struct packet *pk = check_packet(L, 1);               \
		if (!pk->valid)                                       \
			return fail_invalid(L, pk);                   \
		lua_pushnumber(L, conv(pk->p.value));                 \
		return 1;                                             \
	}

DECODER(l_packet_asvoltage, bl_voltage_from_raw)
DECODER(l_packet_ascurrent, bl_current_from_raw)
DECODER(l_packet_asvcc, bl_vcc_from_raw)
DECODER(l_packet_asfreq, bl_freq_from_raw)
DECODER(l_packet_asioff, bl_setpoint_from_raw)
DECODER(l_packet_assetpoint, bl_setpoint_from_raw)
DECODER(l_packet_asmagdiv, seed_magdiv)

static int l_packet_asmode(lua_State *L)
{
	struct packet *pk = check_packet(L, 1);
	const char *name;

	if (!pk->valid)
		return fail_invalid(L, pk);
	name = bl_mode_name(pk->p.value);
	/* The constant's name, so that batlab[p:asmode()] == p.value. */
	if (name)
		lua_pushfstring(L, "MODE_%s", name);
	else
		lua_pushfstring(L, "MODE_UNKNOWN: %d", (int)pk->p.value);
	return 1;
}

static int bits_decoder(lua_State *L, enum bl_unit_kind kind, const char *prefix)
{
	struct packet *pk = check_packet(L, 1);

	if (!pk->valid)
		return fail_invalid(L, pk);
	bl_lua_push_bit_names(L, kind, pk->p.value, prefix);
	return 1;
}

/* The seed's form: the name of the lowest ERROR flag set, "ERR_NONE" for
 * none. The seed looked only at the flags its ERR_LIST names; here every
 * named flag counts (ERR_HW_CURRENT_LIMIT too) and an unnamed one shows as
 * "ERR_0x1000". */
static int l_packet_aserr(lua_State *L)
{
	struct packet *pk = check_packet(L, 1);
	uint16_t v = pk->p.value;
	const char *name;

	if (!pk->valid)
		return fail_invalid(L, pk);
	if (v == 0) {
		lua_pushliteral(L, "ERR_NONE");
		return 1;
	}
	v &= (uint16_t)-v;  /* the lowest bit set */
	name = bl_bit_name(BL_UK_ERROR, v);
	if (name) {
		lua_pushfstring(L, "ERR_%s", name);
	} else {
		char hex[16];
		snprintf(hex, sizeof hex, "ERR_0x%04X", (unsigned)v);
		lua_pushstring(L, hex);
	}
	return 1;
}

static int l_packet_aserr_list(lua_State *L) { return bits_decoder(L, BL_UK_ERROR, "ERR_"); }
static int l_packet_asstatus(lua_State *L) { return bits_decoder(L, BL_UK_STATUS, "STAT_"); }
static int l_packet_assettings(lua_State *L) { return bits_decoder(L, BL_UK_SETTINGS, "SET_"); }

/* R or B for a temperature decoder: argument arg may be absent (the
 * packet's own), a number, or a list indexed by cell like the seed's
 * Rlist/Blist (Lua index = cell + 1). */
static double calibration(lua_State *L, int arg, const struct packet *pk, double own,
                          const char *what)
{
	double v;

	switch (lua_type(L, arg)) {
	case LUA_TNONE:
	case LUA_TNIL:
		return own;
	case LUA_TNUMBER:
		v = lua_tonumber(L, arg);
		break;
	case LUA_TTABLE:
		if (lua_geti(L, arg, (lua_Integer)pk->p.ns + 1) != LUA_TNUMBER)
			luaL_argerror(L, arg, lua_pushfstring(L,
			              "the %s list has no number for cell %d (index %d)",
			              what, (int)pk->p.ns, (int)pk->p.ns + 1));
		v = lua_tonumber(L, -1);
		lua_pop(L, 1);
		break;
	default:
		return luaL_typeerror(L, arg, "number or list of numbers");
	}
	if (!(v > 0.0) || isinf(v))
		luaL_argerror(L, arg, lua_pushfstring(L, "%s must be a positive number", what));
	return v;
}

static int temperature(lua_State *L, bool fahrenheit)
{
	struct packet *pk = check_packet(L, 1);
	double r = calibration(L, 2, pk, pk->r, "R");
	double b = calibration(L, 3, pk, pk->b, "B");
	double c;
	char label[48];

	if (!pk->valid)
		return fail_invalid(L, pk);
	c = bl_temp_c_from_raw(pk->p.value, r, b);
	if (isnan(c))
		return bl_lua_fail(L, BL_ERR_PROTO, "%s: raw %d is not a thermistor reading",
		                   packet_label(&pk->p, label, sizeof label), (int)pk->p.value);
	lua_pushnumber(L, fahrenheit ? bl_c_to_f(c) : c);
	return 1;
}

static int l_packet_astemperature(lua_State *L) { return temperature(L, true); }
static int l_packet_astemperature_c(lua_State *L) { return temperature(L, false); }

/* The value of a register in its unit, for display ("4.2000 V"); empty
 * when the raw number says it all. */
static void format_value(char *buf, size_t n, const struct bl_reg *reg,
                         const struct packet *pk)
{
	uint16_t v = pk->p.value;
	double c;
	int w;

	buf[0] = '\0';
	if (!reg)
		return;
	switch (reg->unit) {
	case BL_UK_VOLTAGE: snprintf(buf, n, "%.4f V", bl_voltage_from_raw(v)); break;
	case BL_UK_CURRENT: snprintf(buf, n, "%.4f A", bl_current_from_raw(v)); break;
	case BL_UK_SETPOINT: snprintf(buf, n, "%.4f A", bl_setpoint_from_raw(v)); break;
	case BL_UK_VCC: snprintf(buf, n, "%.3f V", bl_vcc_from_raw(v)); break;
	case BL_UK_PSU_VOLTAGE: snprintf(buf, n, "%.3f V", bl_psu_pin_from_raw(v)); break;
	case BL_UK_FREQ: snprintf(buf, n, "%.4f Hz", bl_freq_from_raw(v)); break;
	case BL_UK_MAGDIV: snprintf(buf, n, "%.6g App", seed_magdiv(v)); break;
	case BL_UK_INTERVAL:
		if (v)
			snprintf(buf, n, "%.1f s", bl_interval_from_raw(v));
		else
			snprintf(buf, n, "off");
		break;
	case BL_UK_TICKS: snprintf(buf, n, "%.1f s", bl_ticks_from_raw(v)); break;
	case BL_UK_DUTY: snprintf(buf, n, "%.1f %%", v * 100.0 / BL_DUTY_MAX); break;
	case BL_UK_INT16:
		if (v & 0x8000)
			snprintf(buf, n, "%d", (int)(int16_t)v);
		break;
	case BL_UK_COMPENSATION: snprintf(buf, n, "%d", bl_compensation_from_raw(v)); break;
	case BL_UK_TEMPERATURE:
		c = bl_temp_c_from_raw(v, pk->r, pk->b);
		if (isnan(c))
			snprintf(buf, n, "no reading");
		else
			snprintf(buf, n, "%.2f degC", c);
		break;
	case BL_UK_MODE:
		snprintf(buf, n, "%s", bl_mode_name(v) ? bl_mode_name(v) : "unknown mode");
		break;
	case BL_UK_LED:
		snprintf(buf, n, "%s", bl_led_name(v) ? bl_led_name(v) : "unknown LED code");
		break;
	case BL_UK_ERROR:
	case BL_UK_STATUS:
	case BL_UK_SETTINGS:
		w = bl_bits_format(reg->unit, v, "|", buf, n);
		if (w == 0)
			snprintf(buf, n, "none");
		break;
	case BL_UK_LOCK: snprintf(buf, n, "%s", v ? "LOCKED" : "UNLOCKED"); break;
	case BL_UK_BOOL: snprintf(buf, n, "%s", v ? "yes" : "no"); break;
	default: break; /* raw counts, ohms, kelvin, charge halves */
	}
}

static void push_display(lua_State *L, const struct packet *pk)
{
	const struct bl_reg *reg = bl_reg_by_addr(pk->p.ns, pk->p.addr);
	char label[48], val[96];

	packet_label(&pk->p, label, sizeof label);
	if (!pk->valid) {
		lua_pushfstring(L, "%s%s = invalid (%s)", pk->p.write ? "write " : "", label,
		                bl_strerror(pk->status));
		return;
	}
	format_value(val, sizeof val, reg, pk);
	lua_pushfstring(L, "%s%s = %d%s%s%s", pk->p.write ? "write " : "", label,
	                (int)pk->p.value, val[0] ? " (" : "", val, val[0] ? ")" : "");
}

/* p:display(): prints the packet (the seed printed it) and returns the
 * text. */
static int l_packet_display(lua_State *L)
{
	push_display(L, check_packet(L, 1));
	lua_getglobal(L, "print");
	lua_pushvalue(L, -2);
	lua_call(L, 1, 0);
	return 1;
}

/* p:value(): the seed's method: the raw value (nil, message, code if
 * invalid, where the seed returned NaN). */
static int l_packet_value(lua_State *L)
{
	struct packet *pk = check_packet(L, 1);

	if (!pk->valid)
		return fail_invalid(L, pk);
	lua_pushinteger(L, pk->p.value);
	return 1;
}

static int l_packet_tostring(lua_State *L)
{
	push_display(L, check_packet(L, 1));
	return 1;
}

static int l_packet_eq(lua_State *L)
{
	struct packet *a = check_packet(L, 1), *b = check_packet(L, 2);

	lua_pushboolean(L, a->p.ns == b->p.ns && a->p.addr == b->p.addr &&
	                   a->p.write == b->p.write && a->valid == b->valid &&
	                   a->p.value == b->p.value);
	return 1;
}

/* Fields first, then the methods (upvalue 1, see bl_lua_newclass). */
static int l_packet_index(lua_State *L)
{
	struct packet *pk = check_packet(L, 1);
	const char *k = lua_tostring(L, 2);
	const struct bl_reg *reg;

	if (lua_type(L, 2) != LUA_TSTRING)
		k = "";
	if (strcmp(k, "data") == 0) {
		/* the seed's field: NaN when the packet is invalid */
		if (pk->valid)
			lua_pushinteger(L, pk->p.value);
		else
			lua_pushnumber(L, NAN);
	} else if (strcmp(k, "raw") == 0) {
		lua_pushinteger(L, pk->p.value);
	} else if (strcmp(k, "type") == 0) {
		lua_pushliteral(L, "RESPONSE");
	} else if (strcmp(k, "valid") == 0) {
		lua_pushboolean(L, pk->valid);
	} else if (strcmp(k, "namespace") == 0) {
		lua_pushinteger(L, pk->p.ns);
	} else if (strcmp(k, "addr") == 0) {
		lua_pushinteger(L, pk->p.addr);
	} else if (strcmp(k, "write") == 0) {
		lua_pushboolean(L, pk->p.write);
	} else if (strcmp(k, "timestamp") == 0) {
		if (isnan(pk->timestamp))
			lua_pushnil(L);
		else
			lua_pushnumber(L, pk->timestamp);
	} else if (strcmp(k, "R") == 0) {
		lua_pushnumber(L, pk->r);
	} else if (strcmp(k, "B") == 0) {
		lua_pushnumber(L, pk->b);
	} else if (strcmp(k, "name") == 0) {
		reg = bl_reg_by_addr(pk->p.ns, pk->p.addr);
		if (reg)
			lua_pushstring(L, reg->name);
		else
			lua_pushnil(L);
	} else if (strcmp(k, "code") == 0) {
		if (pk->valid)
			lua_pushnil(L);
		else
			lua_pushstring(L, bl_strcode(pk->status));
	} else {
		lua_pushvalue(L, 2);
		lua_gettable(L, lua_upvalueindex(1));
	}
	return 1;
}

static double check_positive(lua_State *L, int idx, const char *what)
{
	double v = luaL_checknumber(L, idx);

	if (!(v > 0.0) || isinf(v))
		luaL_error(L, "batlab.Packet: %s must be a positive number", what);
	return v;
}

/* Only the calibration and the timestamp may change: the rest is what the
 * device said. */
static int l_packet_newindex(lua_State *L)
{
	struct packet *pk = check_packet(L, 1);
	const char *k = luaL_checkstring(L, 2);

	if (strcmp(k, "R") == 0) {
		pk->r = check_positive(L, 3, "R");
	} else if (strcmp(k, "B") == 0) {
		pk->b = check_positive(L, 3, "B");
	} else if (strcmp(k, "timestamp") == 0) {
		pk->timestamp = lua_isnil(L, 3) ? NAN : luaL_checknumber(L, 3);
	} else {
		return luaL_error(L, "batlab.Packet: field '%s' cannot be set "
		                  "(only R, B and timestamp can)", k);
	}
	return 0;
}

/* Read field `name` of the table at 1 onto the stack; its type. */
static int field(lua_State *L, const char *name)
{
	return lua_getfield(L, 1, name);
}

static void field_error(lua_State *L, const char *name, const char *msg)
{
	luaL_argerror(L, 1, lua_pushfstring(L, "field '%s': %s", name, msg));
}

/* batlab.Packet{namespace=, addr=, value=, write=, timestamp=, valid=, R=, B=} */
static int l_batlab_packet(lua_State *L)
{
	struct bl_packet p = {0};
	struct bl_lua_packet_info info = {
		.valid = true, .status = BL_OK, .timestamp = NAN,
		.r = BL_TEMP_R_NOMINAL, .b = BL_TEMP_B_NOMINAL,
	};
	const char *msg;
	bool has_value;

	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);

	if (field(L, "namespace") == LUA_TNIL)
		field_error(L, "namespace", "missing");
	if ((msg = bl_lua_to_ns(L, 2, &p.ns)))
		field_error(L, "namespace", msg);
	lua_settop(L, 1);

	if (field(L, "addr") == LUA_TNIL)
		field_error(L, "addr", "missing");
	if ((msg = bl_lua_to_addr(L, 2, p.ns, &p.addr)))
		field_error(L, "addr", msg);
	lua_settop(L, 1);

	has_value = field(L, "value") != LUA_TNIL;
	if (has_value && (msg = bl_lua_to_u16(L, 2, &p.value)))
		field_error(L, "value", msg);
	lua_settop(L, 1);

	switch (field(L, "write")) {
	case LUA_TNIL: break;
	case LUA_TBOOLEAN: p.write = lua_toboolean(L, 2); break;
	default: field_error(L, "write", "boolean expected");
	}
	lua_settop(L, 1);

	/* No value means nothing trustworthy to decode. */
	info.valid = has_value;
	switch (field(L, "valid")) {
	case LUA_TNIL: break;
	case LUA_TBOOLEAN: info.valid = lua_toboolean(L, 2); break;
	default: field_error(L, "valid", "boolean expected");
	}
	if (info.valid && !has_value)
		field_error(L, "value", "missing (a valid packet needs a value)");
	info.status = info.valid ? BL_OK : BL_ERR_PROTO;
	lua_settop(L, 1);

	switch (field(L, "timestamp")) {
	case LUA_TNIL: break;
	case LUA_TNUMBER: info.timestamp = lua_tonumber(L, 2); break;
	default: field_error(L, "timestamp", "number expected");
	}
	lua_settop(L, 1);

	if (field(L, "R") != LUA_TNIL) {
		info.r = lua_tonumber(L, 2);
		if (!lua_isnumber(L, 2) || !(info.r > 0.0) || isinf(info.r))
			field_error(L, "R", "positive number expected");
	}
	lua_settop(L, 1);
	if (field(L, "B") != LUA_TNIL) {
		info.b = lua_tonumber(L, 2);
		if (!lua_isnumber(L, 2) || !(info.b > 0.0) || isinf(info.b))
			field_error(L, "B", "positive number expected");
	}
	lua_settop(L, 1);

	bl_lua_push_packet(L, &p, &info);
	return 1;
}

/* ---- Charge ---------------------------------------------------------------- */

static int check_multiplier(lua_State *L, int arg)
{
	lua_Integer m = luaL_optinteger(L, arg, BL_CHARGE_MULT_NORMAL);

	luaL_argcheck(L, m >= 1 && m <= 1000, arg,
	              "charge multiplier must be 6 (normal) or 1 (hi-res channel)");
	return (int)m;
}

static uint32_t check_raw32(lua_State *L, int arg)
{
	lua_Integer v = luaL_checkinteger(L, arg);

	luaL_argcheck(L, v >= 0 && v <= (lua_Integer)UINT32_MAX, arg,
	              "charge counter must be 0..4294967295 (CHARGEH << 16 | CHARGEL)");
	return (uint32_t)v;
}

static int l_batlab_ascharge(lua_State *L)
{
	uint32_t raw = check_raw32(L, 1);

	lua_pushnumber(L, bl_charge_coulombs(raw, check_multiplier(L, 2)));
	return 1;
}

static int l_batlab_ascharge_ah(lua_State *L)
{
	uint32_t raw = check_raw32(L, 1);

	lua_pushnumber(L, bl_charge_ah(raw, check_multiplier(L, 2)));
	return 1;
}

/* ---- Registration ---------------------------------------------------------- */

static const luaL_Reg packet_meta[] = {
	{"__index", l_packet_index},
	{"__newindex", l_packet_newindex},
	{"__tostring", l_packet_tostring},
	{"__eq", l_packet_eq},
	{NULL, NULL},
};

static const luaL_Reg packet_methods[] = {
	{"asvoltage", l_packet_asvoltage},
	{"ascurrent", l_packet_ascurrent},
	{"asvcc", l_packet_asvcc},
	{"asfreq", l_packet_asfreq},
	{"asioff", l_packet_asioff},
	{"assetpoint", l_packet_assetpoint},
	{"asmagdiv", l_packet_asmagdiv},
	{"asmode", l_packet_asmode},
	{"aserr", l_packet_aserr},
	{"aserr_list", l_packet_aserr_list},
	{"asstatus", l_packet_asstatus},
	{"assettings", l_packet_assettings},
	{"astemperature", l_packet_astemperature},
	{"astemperature_c", l_packet_astemperature_c},
	{"display", l_packet_display},
	{"value", l_packet_value},
	{NULL, NULL},
};

static const luaL_Reg module_funcs[] = {
	{"Packet", l_batlab_packet},
	{"ascharge", l_batlab_ascharge},
	{"ascharge_ah", l_batlab_ascharge_ah},
	{NULL, NULL},
};

void bl_lua_open_packet(lua_State *L)
{
	bl_lua_newclass(L, BL_LUA_PACKET, packet_meta, packet_methods);
	luaL_setfuncs(L, module_funcs, 0);
	bl_lua_open_encoder(L);
}
