/* sim/layout.c - virtual Batlab layouts (see docs/simulator.md): the
 * built-in default, the defaults a layout file starts from, the tables of
 * fault kinds and cell parameters, and reading a layout. Its JSON is
 * decoded by lua-cjson in a private, short-lived Lua state, so the sim
 * needs no JSON parser of its own; the schema walk over the decoded tables
 * is layout_parse.c, writing a layout back as JSON layout_describe.c.
 */
#include "sim/layout.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "core/bl.h"
#include "sim/layout_json.h"
#include "sim/layout_parts.h"

/* Half charged: a dry run of the stock cycle test (charge first) then sees
 * a partial charge, a full discharge and a full charge in its first cycle. */
#define DEFAULT_SOC         0.5

#define MAX_FILE_BYTES      (16u << 20)

/* ---- Fault kinds ---------------------------------------------------------- */

static const struct fault_kind_info fault_kinds[] = {
	{ "cell_remove",     BL_FAULT_CELL_REMOVE,     true,  false, NO_VALUE,       0, 0,    "",  false },
	{ "cell_insert",     BL_FAULT_CELL_INSERT,     true,  false, NO_VALUE,       0, 0,    "",  true },
	{ "unplug",          BL_FAULT_UNPLUG,          false, false, NO_VALUE,       0, 0,    "",  false },
	{ "reset",           BL_FAULT_RESET,           false, false, NO_VALUE,       0, 0,    "",  false },
	{ "no_reply",        BL_FAULT_NO_REPLY,        false, true,  NO_VALUE,       0, 0,    "",  false },
	{ "late_reply",      BL_FAULT_LATE_REPLY,      false, true,  VALUE_REQUIRED, 0, 3600, "s", false },
	{ "garbage",         BL_FAULT_GARBAGE,         false, true,  NO_VALUE,       0, 0,    "",  false },
	{ "drop_bytes",      BL_FAULT_DROP_BYTES,      false, true,  NO_VALUE,       0, 0,    "",  false },
	{ "vcc_sag",         BL_FAULT_VCC_SAG,         false, false, VALUE_REQUIRED, 0, 6,    "V", false },
	{ "psu_lost",        BL_FAULT_PSU_LOST,        false, false, VALUE_OPTIONAL, 0, 1,    "",  false },
	{ "thermistor_open", BL_FAULT_THERMISTOR_OPEN, true,  false, NO_VALUE,       0, 0,    "",  false },
	{ "self_heating",    BL_FAULT_SELF_HEATING,    true,  false, VALUE_REQUIRED, 0, 1000, "W", false },
};

const struct fault_kind_info *bl_layout_fault_kind_by_name(const char *name)
{
	for (size_t i = 0; i < BL_ARRAY_LEN(fault_kinds); i++)
		if (strcmp(fault_kinds[i].name, name) == 0)
			return &fault_kinds[i];
	return NULL;
}

const struct fault_kind_info *bl_layout_fault_kind_by_kind(enum bl_fault_kind k)
{
	for (size_t i = 0; i < BL_ARRAY_LEN(fault_kinds); i++)
		if (fault_kinds[i].kind == k)
			return &fault_kinds[i];
	return NULL;
}

void bl_layout_fault_kind_names(char *buf, size_t n)
{
	size_t used = 0;
	buf[0] = 0;
	for (size_t i = 0; i < BL_ARRAY_LEN(fault_kinds) && used < n; i++)
		used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? ", " : "", fault_kinds[i].name);
}

/* ---- Cell parameters by name ---------------------------------------------- */

#define NUMF(f) { #f, offsetof(struct bl_cell_params, f), F_NUM }
const struct cell_field bl_layout_cell_fields[] = {
	NUMF(capacity_ah), NUMF(soc), NUMF(r0_ohm), NUMF(r1_ohm), NUMF(c1_farad),
	NUMF(coulombic_eff), NUMF(temp_c), NUMF(ambient_c), NUMF(heat_capacity_j_k),
	NUMF(cooling_w_k), NUMF(fade_per_ah), NUMF(self_discharge_per_day),
	NUMF(self_heating_w), NUMF(v_min), NUMF(v_max),
	{ "reversed", offsetof(struct bl_cell_params, reversed), F_BOOL },
};
#undef NUMF

const size_t bl_layout_ncell_fields = BL_ARRAY_LEN(bl_layout_cell_fields);

/* ---- Defaults --------------------------------------------------------------- */

uint64_t bl_layout_device_seed(uint64_t base, int index)
{
	return base + (uint64_t)index;
}

void bl_layout_cell_default(struct bl_cell_params *p, const char *profile, double ambient_c)
{
	*p = *bl_cell_profile(profile);
	p->ambient_c = ambient_c;
	p->temp_c = ambient_c;
}

/* The device defaults are simdev's (one place); a layout changes only the
 * serial, seed, ambient and the starting state of charge: half full, since
 * a dry-run cycle test begins by charging. */
void bl_layout_device_default(struct bl_simdev_config *cfg, int index, uint64_t seed,
                              double ambient_c)
{
	bl_simdev_config_default(cfg, 0);
	cfg->serial_num = (uint16_t)(DEFAULT_SERIAL + index);
	cfg->ambient_c = ambient_c;
	for (int s = 0; s < 4; s++) {
		cfg->slot_used[s] = true;
		bl_layout_cell_default(&cfg->cells[s], DEFAULT_PROFILE, ambient_c);
		cfg->cells[s].soc = DEFAULT_SOC;
	}
	cfg->seed = bl_layout_device_seed(seed, index);
}

int bl_sim_layout_default(struct bl_sim_layout *out, int ndevices, uint64_t seed)
{
	out->ndevices = 0;
	out->devices = NULL;
	if (ndevices == 0)
		ndevices = 1;
	if (ndevices < 0 || ndevices > BL_SIM_MAX_DEVICES)
		return BL_ERR_ARG;
	out->devices = calloc((size_t)ndevices, sizeof *out->devices);
	if (!out->devices)
		return BL_ERR_MEM;
	for (int i = 0; i < ndevices; i++)
		bl_layout_device_default(&out->devices[i], i, seed, DEFAULT_AMBIENT_C);
	out->ndevices = ndevices;
	return BL_OK;
}

void bl_sim_layout_free(struct bl_sim_layout *l)
{
	if (!l)
		return;
	free(l->devices);
	l->devices = NULL;
	l->ndevices = 0;
}

/* ---- Reading a layout ---------------------------------------------------------------- */

struct decode_args {
	struct bl_json_walk *w;
	const char *json;
	size_t len;
	uint64_t seed;
	struct bl_sim_layout *out;
	int status;
};

/* Runs under lua_pcall, so a memory error in Lua cannot escape. */
static int decode_and_walk(lua_State *L)
{
	struct decode_args *a = lua_touserdata(L, 1);
	struct bl_json_walk *w = a->w;

	lua_getglobal(L, "require");
	lua_pushliteral(L, "cjson.safe");
	if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
		a->status = bl_jw_fail(w, "", "lua-cjson is not available (%s)", lua_tostring(L, -1));
		return 0;
	}
	int mod = lua_gettop(L);
	/* Strict JSON: no NaN, Infinity or hex numbers. */
	lua_getfield(L, mod, "decode_invalid_numbers");
	if (lua_isfunction(L, -1)) {
		lua_pushboolean(L, 0);
		lua_call(L, 1, 0);
	} else {
		lua_pop(L, 1);
	}
	lua_getfield(L, mod, "decode");
	lua_pushlstring(L, a->json, a->len);
	lua_call(L, 1, 2);
	if (lua_isnil(L, -2)) {
		a->status = bl_jw_syntax_error(w, lua_tostring(L, -1), a->json, a->len);
		return 0;
	}
	lua_pop(L, 1);
	a->status = bl_layout_walk(w, -1, a->seed, a->out);
	return 0;
}

int bl_sim_layout_parse(const char *json, size_t len, const char *name, uint64_t seed,
                        struct bl_sim_layout *out, char *err, size_t errlen)
{
	struct bl_json_walk w = {
		.name = name ? name : "layout", .err = err, .errlen = errlen,
	};
	out->ndevices = 0;
	out->devices = NULL;
	if (err && errlen)
		err[0] = 0;
	if (!json)
		return bl_jw_fail(&w, "", "no layout text");

	lua_State *L = luaL_newstate();
	if (!L)
		return BL_ERR_MEM;
	luaL_openlibs(L);
	w.L = L;
	struct decode_args a = { &w, json, len, seed, out, BL_OK };
	lua_pushcfunction(L, decode_and_walk);
	lua_pushlightuserdata(L, &a);
	int prc = lua_pcall(L, 1, 0, 0);
	if (prc != LUA_OK) {
		/* Only allocation failures can get here: the walker reports
		 * its own errors through a.status. */
		if (a.status == BL_OK)
			a.status = prc == LUA_ERRMEM ? BL_ERR_MEM : bl_jw_fail(&w, "", "%s", lua_tostring(L, -1));
		bl_sim_layout_free(out);
	}
	lua_close(L);
	if (a.status < 0)
		bl_sim_layout_free(out);
	return a.status;
}

int bl_sim_layout_load(const char *path, uint64_t seed, struct bl_sim_layout *out,
                       char *err, size_t errlen)
{
	out->ndevices = 0;
	out->devices = NULL;
	FILE *f = fopen(path, "rb");
	if (!f) {
		int e = errno;
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(e));
		return e == ENOENT || e == ENOTDIR ? BL_ERR_NOTFOUND : BL_ERR_IO;
	}
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	int rc = buf ? BL_OK : BL_ERR_MEM;
	while (rc == BL_OK) {
		if (len == cap) {
			if (cap >= MAX_FILE_BYTES) {
				if (err && errlen)
					snprintf(err, errlen, "%s: larger than %u bytes", path, MAX_FILE_BYTES);
				rc = BL_ERR_ARG;
				break;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				rc = BL_ERR_MEM;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		size_t got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0) {
			if (ferror(f)) {
				if (err && errlen)
					snprintf(err, errlen, "%s: read error", path);
				rc = BL_ERR_IO;
			}
			break;
		}
	}
	fclose(f);
	if (rc == BL_OK)
		rc = bl_sim_layout_parse(buf, len, path, seed, out, err, errlen);
	else if (rc == BL_ERR_MEM && err && errlen)
		snprintf(err, errlen, "%s: out of memory", path);
	free(buf);
	return rc;
}
