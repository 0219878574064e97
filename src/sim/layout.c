/* sim/layout.c - virtual Batlab layouts from JSON (see docs/simulator.md).
 *
 * JSON is decoded by lua-cjson in a private, short-lived Lua state; the
 * resulting tables are walked from C and every key, type and range is
 * checked, so a typo in a layout is an error that names the spot rather
 * than a silently ignored setting. The defaults for a device live here
 * too, so that the built-in layout and a file give the same answers.
 */
#include "sim/layout.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "core/bl.h"

#define DEFAULT_SERIAL      1000
#define DEFAULT_AMBIENT_C   25.0
#define DEFAULT_PROFILE     "nmc18650"
/* Half charged: a dry run of the stock cycle test (charge first) then sees
 * a partial charge, a full discharge and a full charge in its first cycle. */
#define DEFAULT_SOC         0.5

#define MAX_FILE_BYTES      (16u << 20)
#define MAX_SERIAL          0xFFFFFFFFu
/* Seeds beyond 2^53 do not survive a JSON number; they are written as
 * strings instead. */
#define MAX_EXACT_INT       9007199254740992.0

/* ---- fault kinds ---------------------------------------------------- */

enum { NO_VALUE, VALUE_REQUIRED, VALUE_OPTIONAL };

struct fault_kind_info {
	const char *name;
	enum bl_fault_kind kind;
	bool slot;        /* takes a slot 0..3 */
	bool count;       /* takes a count (default 1) */
	int value;        /* NO_VALUE, VALUE_REQUIRED, VALUE_OPTIONAL (0) */
	double vmin, vmax;
	const char *unit;
	bool cell;        /* takes a cell */
};

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

static const struct fault_kind_info *fault_kind_by_name(const char *name)
{
	for (size_t i = 0; i < BL_ARRAY_LEN(fault_kinds); i++)
		if (strcmp(fault_kinds[i].name, name) == 0)
			return &fault_kinds[i];
	return NULL;
}

static const struct fault_kind_info *fault_kind_by_kind(enum bl_fault_kind k)
{
	for (size_t i = 0; i < BL_ARRAY_LEN(fault_kinds); i++)
		if (fault_kinds[i].kind == k)
			return &fault_kinds[i];
	return NULL;
}

/* ---- cell parameters by name ---------------------------------------- */

enum field_type { F_NUM, F_BOOL };

struct cell_field {
	const char *name;
	size_t off;
	enum field_type type;
};

#define NUMF(f) { #f, offsetof(struct bl_cell_params, f), F_NUM }
static const struct cell_field cell_fields[] = {
	NUMF(capacity_ah), NUMF(soc), NUMF(r0_ohm), NUMF(r1_ohm), NUMF(c1_farad),
	NUMF(coulombic_eff), NUMF(temp_c), NUMF(ambient_c), NUMF(heat_capacity_j_k),
	NUMF(cooling_w_k), NUMF(fade_per_ah), NUMF(self_discharge_per_day),
	NUMF(self_heating_w), NUMF(v_min), NUMF(v_max),
	{ "reversed", offsetof(struct bl_cell_params, reversed), F_BOOL },
};
#undef NUMF

static double *cell_num(struct bl_cell_params *p, const struct cell_field *f)
{
	return (double *)((char *)p + f->off);
}

static double cell_num_get(const struct bl_cell_params *p, const struct cell_field *f)
{
	return *(const double *)((const char *)p + f->off);
}

/* ---- defaults -------------------------------------------------------- */

static uint64_t device_seed(uint64_t base, int index)
{
	return base + (uint64_t)index;
}

static void cell_default(struct bl_cell_params *p, const char *profile, double ambient_c)
{
	*p = *bl_cell_profile(profile);
	p->ambient_c = ambient_c;
	p->temp_c = ambient_c;
}

/* The device defaults are simdev's (one place); a layout changes only the
 * serial, seed, ambient and the starting state of charge: half full, since
 * a dry-run cycle test begins by charging. */
static void device_default(struct bl_simdev_config *cfg, int index, uint64_t seed, double ambient_c)
{
	bl_simdev_config_default(cfg, 0);
	cfg->serial_num = (uint16_t)(DEFAULT_SERIAL + index);
	cfg->ambient_c = ambient_c;
	for (int s = 0; s < 4; s++) {
		cfg->slot_used[s] = true;
		cell_default(&cfg->cells[s], DEFAULT_PROFILE, ambient_c);
		cfg->cells[s].soc = DEFAULT_SOC;
	}
	cfg->seed = device_seed(seed, index);
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
		device_default(&out->devices[i], i, seed, DEFAULT_AMBIENT_C);
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

/* ---- walking decoded JSON ------------------------------------------ */

struct walk {
	lua_State *L;
	const char *name;
	char *err;
	size_t errlen;
	uint64_t seed;
	struct bl_sim_layout *out;
	int status;
};

static int failf(struct walk *w, const char *where, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int failf(struct walk *w, const char *where, const char *fmt, ...)
{
	if (w->err && w->errlen) {
		char msg[512];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof msg, fmt, ap);
		va_end(ap);
		if (where && *where)
			snprintf(w->err, w->errlen, "%s: %s: %s", w->name, where, msg);
		else
			snprintf(w->err, w->errlen, "%s: %s", w->name, msg);
	}
	return BL_ERR_ARG;
}

static bool is_null(lua_State *L, int idx)
{
	return lua_islightuserdata(L, idx) && lua_touserdata(L, idx) == NULL;
}

enum jkind { J_NULL, J_BOOL, J_NUM, J_STR, J_ARRAY, J_OBJECT, J_EMPTY, J_OTHER };

/* cjson gives both arrays and objects as tables: an array has exactly the
 * keys 1..n, an object only string keys; {} and [] are indistinguishable. */
static enum jkind jkind(lua_State *L, int idx)
{
	switch (lua_type(L, idx)) {
	case LUA_TLIGHTUSERDATA: return is_null(L, idx) ? J_NULL : J_OTHER;
	case LUA_TBOOLEAN: return J_BOOL;
	case LUA_TNUMBER: return J_NUM;
	case LUA_TSTRING: return J_STR;
	case LUA_TTABLE: break;
	default: return J_OTHER;
	}
	idx = lua_absindex(L, idx);
	lua_Integer n = (lua_Integer)lua_rawlen(L, idx), keys = 0;
	bool strings = false, ints = false;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		keys++;
		if (lua_type(L, -1) == LUA_TSTRING)
			strings = true;
		else
			ints = true;
	}
	if (keys == 0)
		return J_EMPTY;
	if (strings && !ints)
		return J_OBJECT;
	if (ints && !strings && keys == n)
		return J_ARRAY;
	return J_OTHER;
}

static const char *jkind_name(enum jkind k)
{
	switch (k) {
	case J_NULL: return "null";
	case J_BOOL: return "a boolean";
	case J_NUM: return "a number";
	case J_STR: return "a string";
	case J_ARRAY: return "an array";
	case J_OBJECT: return "an object";
	case J_EMPTY: return "an empty object/array";
	default: return "something else";
	}
}

static bool is_object(lua_State *L, int idx)
{
	enum jkind k = jkind(L, idx);
	return k == J_OBJECT || k == J_EMPTY;
}

static bool is_array(lua_State *L, int idx)
{
	enum jkind k = jkind(L, idx);
	return k == J_ARRAY || k == J_EMPTY;
}

/* Unknown keys are errors: the message lists what is allowed. */
static int check_keys(struct walk *w, int idx, const char *where, const char *const *allowed)
{
	lua_State *L = w->L;
	idx = lua_absindex(L, idx);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		size_t klen;
		const char *k = lua_tolstring(L, -1, &klen);
		bool known = false;
		for (int i = 0; allowed[i] && !known; i++)
			known = strlen(allowed[i]) == klen && strcmp(allowed[i], k) == 0;
		if (!known) {
			char list[512] = "";
			size_t used = 0;
			for (int i = 0; allowed[i] && used < sizeof list; i++)
				used += (size_t)snprintf(list + used, sizeof list - used, "%s%s",
				                         i ? ", " : "", allowed[i]);
			lua_pop(L, 1);
			return failf(w, where, "unknown key \"%.*s\" (known: %s)",
			             (int)(klen > 64 ? 64 : klen), k, list);
		}
	}
	return BL_OK;
}

/* Pushes t[key] (raw) and returns its kind; J_NULL also for "absent". */
static bool field(lua_State *L, int idx, const char *key)
{
	lua_pushstring(L, key);
	lua_rawget(L, idx < 0 ? idx - 1 : idx);
	return !lua_isnil(L, -1);
}

static int get_num(struct walk *w, int idx, const char *where, const char *key,
                   double lo, double hi, double *out, bool *present)
{
	lua_State *L = w->L;
	int rc = BL_OK;
	if (present)
		*present = false;
	if (field(L, idx, key)) {
		if (lua_type(L, -1) != LUA_TNUMBER) {
			rc = failf(w, where, "\"%s\" must be a number, not %s", key, jkind_name(jkind(L, -1)));
		} else {
			double v = lua_tonumber(L, -1);
			if (!isfinite(v))
				rc = failf(w, where, "\"%s\" must be a finite number", key);
			else if (v < lo || v > hi)
				rc = failf(w, where, "\"%s\" must be within %.10g..%.10g (got %.10g)", key, lo, hi, v);
			else {
				*out = v;
				if (present)
					*present = true;
			}
		}
	}
	lua_pop(L, 1);
	return rc;
}

static int get_int(struct walk *w, int idx, const char *where, const char *key,
                   double lo, double hi, long long *out, bool *present)
{
	double v;
	bool have = false;
	int rc = get_num(w, idx, where, key, lo, hi, &v, &have);
	if (rc < 0)
		return rc;
	if (have && v != floor(v))
		return failf(w, where, "\"%s\" must be a whole number (got %g)", key, v);
	if (have)
		*out = (long long)v;
	if (present)
		*present = have;
	return BL_OK;
}

static int get_bool(struct walk *w, int idx, const char *where, const char *key, bool *out)
{
	lua_State *L = w->L;
	int rc = BL_OK;
	if (field(L, idx, key)) {
		if (lua_type(L, -1) != LUA_TBOOLEAN)
			rc = failf(w, where, "\"%s\" must be true or false, not %s", key, jkind_name(jkind(L, -1)));
		else
			*out = lua_toboolean(L, -1);
	}
	lua_pop(L, 1);
	return rc;
}

/* A seed is a whole number, or a string of digits for values past 2^53. */
static int get_seed(struct walk *w, int idx, const char *where, uint64_t *out)
{
	lua_State *L = w->L;
	int rc = BL_OK;
	if (field(L, idx, "seed")) {
		if (lua_type(L, -1) == LUA_TNUMBER) {
			double v = lua_tonumber(L, -1);
			if (!(v >= 0 && v <= MAX_EXACT_INT) || v != floor(v))
				rc = failf(w, where, "\"seed\" must be a whole number 0..2^53 (or a string of digits)");
			else
				*out = (uint64_t)v;
		} else if (lua_type(L, -1) == LUA_TSTRING) {
			size_t n;
			const char *s = lua_tolstring(L, -1, &n);
			char *end = NULL;
			bool digits = n > 0 && n <= 20;
			for (size_t i = 0; i < n && digits; i++)
				digits = s[i] >= '0' && s[i] <= '9';
			errno = 0;
			unsigned long long v = digits ? strtoull(s, &end, 10) : 0;
			if (!digits || errno || end != s + n)
				rc = failf(w, where, "\"seed\" string must hold a decimal number below 2^64");
			else
				*out = (uint64_t)v;
		} else {
			rc = failf(w, where, "\"seed\" must be a number or a string of digits, not %s",
			           jkind_name(jkind(L, -1)));
		}
	}
	lua_pop(L, 1);
	return rc;
}

static void profile_list(char *buf, size_t n)
{
	const char *const *names = bl_cell_profile_names();
	size_t used = 0;
	buf[0] = 0;
	for (int i = 0; names[i] && used < n; i++)
		used += (size_t)snprintf(buf + used, n - used, "%s%s", i ? ", " : "", names[i]);
}

static const char *const cell_keys[] = {
	"comment", "profile", "empty", "ocv",
	"capacity_ah", "soc", "r0_ohm", "r1_ohm", "c1_farad", "coulombic_eff",
	"temp_c", "ambient_c", "heat_capacity_j_k", "cooling_w_k", "fade_per_ah",
	"self_discharge_per_day", "self_heating_w", "v_min", "v_max", "reversed",
	NULL,
};

static int parse_ocv(struct walk *w, int idx, const char *where, struct bl_cell_params *p)
{
	lua_State *L = w->L;
	int rc = BL_OK;
	if (!field(L, idx, "ocv")) {
		lua_pop(L, 1);
		return BL_OK;
	}
	int t = lua_gettop(L);
	if (jkind(L, t) != J_ARRAY) {
		rc = failf(w, where, "\"ocv\" must be an array of [soc, volts] pairs");
		goto out;
	}
	lua_Integer n = (lua_Integer)lua_rawlen(L, t);
	if (n < 2 || n > BL_OCV_MAX_POINTS) {
		rc = failf(w, where, "\"ocv\" needs 2..%d points (got %lld)", BL_OCV_MAX_POINTS, (long long)n);
		goto out;
	}
	memset(p->ocv_soc, 0, sizeof p->ocv_soc);
	memset(p->ocv_v, 0, sizeof p->ocv_v);
	p->ocv_points = (int)n;
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, t, i);
		bool pair = jkind(L, -1) == J_ARRAY && lua_rawlen(L, -1) == 2;
		double sv[2] = { 0, 0 };
		for (int j = 0; j < 2 && pair; j++) {
			lua_rawgeti(L, -1, j + 1);
			pair = lua_type(L, -1) == LUA_TNUMBER && isfinite(lua_tonumber(L, -1));
			sv[j] = lua_tonumber(L, -1);
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
		if (!pair) {
			rc = failf(w, where, "\"ocv\"[%lld] must be a pair [soc, volts] of numbers", (long long)(i - 1));
			goto out;
		}
		p->ocv_soc[i - 1] = sv[0];
		p->ocv_v[i - 1] = sv[1];
	}
out:
	lua_settop(L, t - 1);
	return rc;
}

/* A cell: null or {"empty": true} (if allowed) leaves the slot empty;
 * otherwise a profile (default nmc18650) with per-field overrides. */
static int parse_cell(struct walk *w, int idx, const char *where, double ambient_c,
                      bool allow_empty, struct bl_cell_params *p, bool *used)
{
	lua_State *L = w->L;
	int rc;
	idx = lua_absindex(L, idx);
	*used = false;
	if (is_null(L, idx)) {
		if (!allow_empty)
			return failf(w, where, "a cell is needed here, not null");
		return BL_OK;
	}
	if (!is_object(L, idx))
		return failf(w, where, "a cell must be an object or null, not %s", jkind_name(jkind(L, idx)));
	if ((rc = check_keys(w, idx, where, cell_keys)) < 0)
		return rc;

	bool empty = false;
	if ((rc = get_bool(w, idx, where, "empty", &empty)) < 0)
		return rc;
	if (empty) {
		if (!allow_empty)
			return failf(w, where, "a cell is needed here, not an empty slot");
		lua_pushnil(L);
		bool alone = true;
		while (lua_next(L, idx)) {
			lua_pop(L, 1);
			const char *k = lua_tostring(L, -1);
			if (strcmp(k, "empty") != 0 && strcmp(k, "comment") != 0)
				alone = false;
		}
		if (!alone)
			return failf(w, where, "an empty slot takes no cell parameters");
		return BL_OK;
	}

	const char *profile = DEFAULT_PROFILE;
	if (field(L, idx, "profile")) {
		size_t n;
		const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
		const struct bl_cell_params *pp = s && strlen(s) == n ? bl_cell_profile(s) : NULL;
		if (!pp) {
			char list[256];
			profile_list(list, sizeof list);
			lua_pop(L, 1);
			if (!s)
				return failf(w, where, "\"profile\" must be a string (known: %s)", list);
			return failf(w, where, "unknown profile \"%.40s\" (known: %s)", s, list);
		}
		profile = pp->profile;
	}
	lua_pop(L, 1);

	/* The cell sits at its ambient unless told otherwise. */
	double amb = ambient_c;
	if ((rc = get_num(w, idx, where, "ambient_c", -60, 200, &amb, NULL)) < 0)
		return rc;
	cell_default(p, profile, amb);

	for (size_t i = 0; i < BL_ARRAY_LEN(cell_fields); i++) {
		const struct cell_field *f = &cell_fields[i];
		if (f->type == F_BOOL) {
			if ((rc = get_bool(w, idx, where, f->name, &p->reversed)) < 0)
				return rc;
		} else if ((rc = get_num(w, idx, where, f->name, -1e12, 1e12, cell_num(p, f), NULL)) < 0) {
			return rc;
		}
	}
	if ((rc = parse_ocv(w, idx, where, p)) < 0)
		return rc;

	char why[160];
	if (bl_cell_params_check(p, why, sizeof why) < 0)
		return failf(w, where, "%s", why);
	*used = true;
	return BL_OK;
}

static const char *const fault_keys[] = {
	"comment", "at", "kind", "slot", "count", "value", "cell", NULL,
};

static int parse_fault(struct walk *w, int idx, const char *where, double ambient_c,
                       struct bl_fault *f)
{
	lua_State *L = w->L;
	int rc;
	idx = lua_absindex(L, idx);
	if (!is_object(L, idx))
		return failf(w, where, "a fault must be an object, not %s", jkind_name(jkind(L, idx)));
	if ((rc = check_keys(w, idx, where, fault_keys)) < 0)
		return rc;
	memset(f, 0, sizeof *f);
	f->slot = -1;

	const struct fault_kind_info *k = NULL;
	if (field(L, idx, "kind") && lua_type(L, -1) == LUA_TSTRING) {
		size_t n;
		const char *s = lua_tolstring(L, -1, &n);
		if (strlen(s) == n)
			k = fault_kind_by_name(s);
	}
	lua_pop(L, 1);
	if (!k) {
		char list[320] = "";
		size_t used = 0;
		for (size_t i = 0; i < BL_ARRAY_LEN(fault_kinds) && used < sizeof list; i++)
			used += (size_t)snprintf(list + used, sizeof list - used, "%s%s",
			                         i ? ", " : "", fault_kinds[i].name);
		return failf(w, where, "\"kind\" must be one of: %s", list);
	}
	f->kind = k->kind;

	double at = 0;
	bool have = false;
	if ((rc = get_num(w, idx, where, "at", 0, 1e9, &at, &have)) < 0)
		return rc;
	if (!have)
		return failf(w, where, "\"at\" (seconds from the start) is required");
	f->at_us = (uint64_t)llround(at * 1e6);

	long long slot = -1;
	if ((rc = get_int(w, idx, where, "slot", 0, 3, &slot, &have)) < 0)
		return rc;
	if (k->slot && !have)
		return failf(w, where, "%s needs a \"slot\" (0..3)", k->name);
	if (!k->slot && have)
		return failf(w, where, "%s takes no \"slot\"", k->name);
	f->slot = (int)slot;

	long long count = 1;
	if ((rc = get_int(w, idx, where, "count", 1, 1000000, &count, &have)) < 0)
		return rc;
	if (!k->count && have)
		return failf(w, where, "%s takes no \"count\"", k->name);
	f->count = k->count ? (int)count : 0;

	double value = 0;
	bool vpresent = field(L, idx, "value");
	lua_pop(L, 1);
	if (k->value == NO_VALUE && vpresent)
		return failf(w, where, "%s takes no \"value\"", k->name);
	if (k->value != NO_VALUE) {
		if ((rc = get_num(w, idx, where, "value", k->vmin, k->vmax, &value, &have)) < 0)
			return rc;
		if (k->value == VALUE_REQUIRED && !have)
			return failf(w, where, "%s needs a \"value\" (%g..%g %s)", k->name, k->vmin, k->vmax, k->unit);
		if (k->kind == BL_FAULT_PSU_LOST && value != 0 && value != 1)
			return failf(w, where, "psu_lost \"value\" is 0 (lost) or 1 (back)");
	}
	f->value = value;

	bool cpresent = field(L, idx, "cell");
	if (!k->cell && cpresent) {
		lua_pop(L, 1);
		return failf(w, where, "%s takes no \"cell\"", k->name);
	}
	if (k->cell) {
		if (!cpresent) {
			lua_pop(L, 1);
			return failf(w, where, "%s needs a \"cell\"", k->name);
		}
		char sub[160];
		snprintf(sub, sizeof sub, "%s.cell", where);
		bool used;
		rc = parse_cell(w, -1, sub, ambient_c, false, &f->cell, &used);
		if (rc < 0) {
			lua_pop(L, 1);
			return rc;
		}
	}
	lua_pop(L, 1);
	return BL_OK;
}

/* Pushes t[key] if it is an array and sets *pushed; returns its length
 * (0 when absent, with nothing pushed) or a negative status. */
static int push_array(struct walk *w, int idx, const char *where, const char *key, bool *pushed)
{
	lua_State *L = w->L;
	*pushed = false;
	if (!field(L, idx, key)) {
		lua_pop(L, 1);
		return 0;
	}
	if (!is_array(L, -1)) {
		int rc = failf(w, where, "\"%s\" must be an array, not %s", key, jkind_name(jkind(L, -1)));
		lua_pop(L, 1);
		return rc;
	}
	*pushed = true;
	return (int)lua_rawlen(L, -1);
}

static void sort_faults(struct bl_simdev_config *cfg)
{
	/* Stable, so faults at the same instant keep the file's order. */
	for (int i = 1; i < cfg->nfaults; i++) {
		struct bl_fault f = cfg->faults[i];
		int j = i - 1;
		while (j >= 0 && cfg->faults[j].at_us > f.at_us) {
			cfg->faults[j + 1] = cfg->faults[j];
			j--;
		}
		cfg->faults[j + 1] = f;
	}
}

static const char *const device_keys[] = {
	"comment", "serial", "vcc", "psu", "psu_v", "ambient_c", "seed", "noise",
	"operator_delay_s", "cells", "faults", "queue", NULL,
};
static const char *const noise_keys[] = { "comment", "v", "a", "temp_c", NULL };

static int parse_device(struct walk *w, int idx, int index, uint64_t base_seed,
                        double ambient_c, struct bl_simdev_config *cfg)
{
	lua_State *L = w->L;
	char where[64];
	int rc, n;
	idx = lua_absindex(L, idx);
	snprintf(where, sizeof where, "devices[%d]", index);
	if (!is_object(L, idx))
		return failf(w, where, "a device must be an object, not %s", jkind_name(jkind(L, idx)));
	if ((rc = check_keys(w, idx, where, device_keys)) < 0)
		return rc;

	if ((rc = get_num(w, idx, where, "ambient_c", -60, 200, &ambient_c, NULL)) < 0)
		return rc;
	device_default(cfg, index, base_seed, ambient_c);

	long long serial = DEFAULT_SERIAL + index;
	if ((rc = get_int(w, idx, where, "serial", 0, MAX_SERIAL, &serial, NULL)) < 0)
		return rc;
	cfg->serial_num = (uint16_t)(serial & 0xFFFF);
	cfg->device_id = (uint16_t)((unsigned long long)serial >> 16);
	if ((rc = get_num(w, idx, where, "vcc", 3.0, 6.0, &cfg->vcc_v, NULL)) < 0)
		return rc;
	if ((rc = get_bool(w, idx, where, "psu", &cfg->psu)) < 0)
		return rc;
	if ((rc = get_num(w, idx, where, "psu_v", 3.0, 6.0, &cfg->psu_v, NULL)) < 0)
		return rc;
	if ((rc = get_seed(w, idx, where, &cfg->seed)) < 0)
		return rc;
	if ((rc = get_num(w, idx, where, "operator_delay_s", 0, 1e7, &cfg->operator_delay_s, NULL)) < 0)
		return rc;

	if (field(L, idx, "noise")) {
		char sub[80];
		snprintf(sub, sizeof sub, "%s.noise", where);
		if (!is_object(L, -1))
			rc = failf(w, sub, "must be an object {\"v\": volts, \"a\": amps}");
		if (rc == BL_OK)
			rc = check_keys(w, -1, sub, noise_keys);
		if (rc == BL_OK)
			rc = get_num(w, -1, sub, "v", 0, 1, &cfg->noise_v, NULL);
		if (rc == BL_OK)
			rc = get_num(w, -1, sub, "a", 0, 1, &cfg->noise_a, NULL);
		if (rc == BL_OK)
			rc = get_num(w, -1, sub, "temp_c", 0, 5, &cfg->noise_temp_c, NULL);
	}
	lua_pop(L, 1);
	if (rc < 0)
		return rc;

	/* Cells: listed slots replace the defaults; unlisted slots are empty. */
	bool pushed;
	if ((n = push_array(w, idx, where, "cells", &pushed)) < 0)
		return n;
	if (n > 4) {
		lua_pop(L, 1);
		return failf(w, where, "\"cells\" has %d entries; a Batlab has 4 slots", n);
	}
	if (pushed) {
		for (int s = 0; s < 4; s++)
			cfg->slot_used[s] = false;
		for (int s = 0; s < n && rc == BL_OK; s++) {
			char sub[96];
			snprintf(sub, sizeof sub, "%s.cells[%d]", where, s);
			lua_rawgeti(L, -1, s + 1);
			rc = parse_cell(w, -1, sub, cfg->ambient_c, true, &cfg->cells[s], &cfg->slot_used[s]);
			lua_pop(L, 1);
		}
		for (int s = 0; s < 4; s++)
			if (!cfg->slot_used[s])
				memset(&cfg->cells[s], 0, sizeof cfg->cells[s]);
		lua_pop(L, 1);
	}
	if (rc < 0)
		return rc;

	if ((n = push_array(w, idx, where, "faults", &pushed)) < 0)
		return n;
	if (n > BL_SIM_MAX_FAULTS) {
		lua_pop(L, 1);
		return failf(w, where, "\"faults\" has %d entries (at most %d)", n, BL_SIM_MAX_FAULTS);
	}
	if (pushed) {
		for (int i = 0; i < n && rc == BL_OK; i++) {
			char sub[96];
			snprintf(sub, sizeof sub, "%s.faults[%d]", where, i);
			lua_rawgeti(L, -1, i + 1);
			rc = parse_fault(w, -1, sub, cfg->ambient_c, &cfg->faults[i]);
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
		cfg->nfaults = n;
	}
	if (rc < 0)
		return rc;
	sort_faults(cfg);

	if ((n = push_array(w, idx, where, "queue", &pushed)) < 0)
		return n;
	if (n > BL_SIM_MAX_QUEUE) {
		lua_pop(L, 1);
		return failf(w, where, "\"queue\" has %d entries (at most %d)", n, BL_SIM_MAX_QUEUE);
	}
	if (pushed) {
		for (int i = 0; i < n && rc == BL_OK; i++) {
			char sub[96];
			bool used;
			snprintf(sub, sizeof sub, "%s.queue[%d]", where, i);
			lua_rawgeti(L, -1, i + 1);
			rc = parse_cell(w, -1, sub, cfg->ambient_c, false, &cfg->queue[i], &used);
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
		cfg->nqueue = n;
	}
	return rc;
}

static const char *const top_keys[] = {
	"comment", "seed", "ambient_c", "count", "devices", NULL,
};

static int walk_top(struct walk *w, int idx)
{
	lua_State *L = w->L;
	int rc, n;
	if (!is_object(L, idx))
		return failf(w, "", "the layout must be a JSON object, not %s", jkind_name(jkind(L, idx)));
	if ((rc = check_keys(w, idx, "", top_keys)) < 0)
		return rc;
	uint64_t seed = w->seed;
	if ((rc = get_seed(w, idx, "", &seed)) < 0)
		return rc;
	double ambient = DEFAULT_AMBIENT_C;
	if ((rc = get_num(w, idx, "", "ambient_c", -60, 200, &ambient, NULL)) < 0)
		return rc;
	long long count = 0;
	bool have_count = false;
	if ((rc = get_int(w, idx, "", "count", 1, BL_SIM_MAX_DEVICES, &count, &have_count)) < 0)
		return rc;

	bool pushed;
	if ((n = push_array(w, idx, "", "devices", &pushed)) < 0)
		return n;
	if (n > BL_SIM_MAX_DEVICES) {
		if (pushed)
			lua_pop(L, 1);
		return failf(w, "", "%d devices; at most %d", n, BL_SIM_MAX_DEVICES);
	}
	if (have_count && count < n) {
		if (pushed)
			lua_pop(L, 1);
		return failf(w, "", "\"count\" (%lld) is less than the %d devices listed", count, n);
	}
	int total = have_count ? (int)count : n > 0 ? n : 1;

	struct bl_simdev_config *devs = calloc((size_t)total, sizeof *devs);
	if (!devs) {
		if (pushed)
			lua_pop(L, 1);
		return BL_ERR_MEM;
	}
	for (int i = 0; i < n && rc == BL_OK; i++) {
		lua_rawgeti(L, -1, i + 1);
		rc = parse_device(w, -1, i, seed, ambient, &devs[i]);
		lua_pop(L, 1);
	}
	if (pushed)
		lua_pop(L, 1);
	if (rc < 0) {
		free(devs);
		return rc;
	}
	/* "count" beyond the list repeats the last device (or the default)
	 * with the next serial numbers and their own seeds. */
	for (int i = n; i < total; i++) {
		if (n == 0) {
			device_default(&devs[i], i, seed, ambient);
			continue;
		}
		devs[i] = devs[n - 1];
		uint32_t serial = ((uint32_t)devs[n - 1].device_id << 16 | devs[n - 1].serial_num)
			+ (uint32_t)(i - n + 1);
		devs[i].serial_num = (uint16_t)(serial & 0xFFFF);
		devs[i].device_id = (uint16_t)(serial >> 16);
		devs[i].seed = device_seed(seed, i);
	}
	for (int i = 0; i < total; i++)
		for (int j = 0; j < i; j++)
			if (devs[i].serial_num == devs[j].serial_num && devs[i].device_id == devs[j].device_id) {
				uint32_t serial = (uint32_t)devs[i].device_id << 16 | devs[i].serial_num;
				char sub[64];
				snprintf(sub, sizeof sub, "devices[%d]", i);
				free(devs);
				return failf(w, sub, "serial %" PRIu32 " is already used by devices[%d]", serial, j);
			}
	w->out->devices = devs;
	w->out->ndevices = total;
	return BL_OK;
}

/* cjson names its tokens T_OBJ_END etc.; say what a user typed instead. */
static const char *token_words(const char *tok, size_t n)
{
	static const struct { const char *t, *words; } map[] = {
		{ "T_OBJ_BEGIN", "'{'" }, { "T_OBJ_END", "'}'" },
		{ "T_ARR_BEGIN", "'['" }, { "T_ARR_END", "']'" },
		{ "T_STRING", "a string" }, { "T_NUMBER", "a number" },
		{ "T_BOOLEAN", "a boolean" }, { "T_NULL", "null" },
		{ "T_COLON", "':'" }, { "T_COMMA", "','" },
		{ "T_END", "the end of the file" }, { "T_WHITESPACE", "whitespace" },
		{ "T_ERROR", "an error" }, { "T_UNKNOWN", "an unknown token" },
	};
	for (size_t i = 0; i < BL_ARRAY_LEN(map); i++)
		if (strlen(map[i].t) == n && strncmp(map[i].t, tok, n) == 0)
			return map[i].words;
	return NULL;
}

/* "Expected X but found T_OBJ_END at character 13" becomes
 * "line 2, column 5: expected X but found '}'". */
static int json_error(struct walk *w, const char *msg, const char *json, size_t len)
{
	char text[256];
	snprintf(text, sizeof text, "%s", msg ? msg : "invalid JSON");
	long long at = -1;
	char *mark = strstr(text, " at character ");
	if (mark) {
		at = strtoll(mark + 14, NULL, 10);
		*mark = 0;
	}
	char *tok = strstr(text, "found T_");
	if (tok) {
		tok += 6;
		size_t n = strspn(tok, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_");
		const char *words = token_words(tok, n);
		if (words && strlen(words) <= n + 16) {
			char rest[256];
			snprintf(rest, sizeof rest, "%s", tok + n);
			snprintf(tok, sizeof text - (size_t)(tok - text), "%s%s", words, rest);
		}
	}
	if (text[0] >= 'A' && text[0] <= 'Z')
		text[0] = (char)(text[0] - 'A' + 'a');
	if (at < 1)
		return failf(w, "", "invalid JSON: %s", text);
	size_t upto = (size_t)at - 1 < len ? (size_t)at - 1 : len;
	long line = 1, col = 1;
	for (size_t i = 0; i < upto; i++) {
		if (json[i] == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	return failf(w, "", "line %ld, column %ld: invalid JSON: %s", line, col, text);
}

struct decode_args {
	struct walk *w;
	const char *json;
	size_t len;
};

/* Runs under lua_pcall, so a memory error in Lua cannot escape. */
static int decode_and_walk(lua_State *L)
{
	struct decode_args *a = lua_touserdata(L, 1);
	struct walk *w = a->w;

	lua_getglobal(L, "require");
	lua_pushliteral(L, "cjson.safe");
	if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
		w->status = failf(w, "", "lua-cjson is not available (%s)", lua_tostring(L, -1));
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
		w->status = json_error(w, lua_tostring(L, -1), a->json, a->len);
		return 0;
	}
	lua_pop(L, 1);
	w->status = walk_top(w, -1);
	return 0;
}

int bl_sim_layout_parse(const char *json, size_t len, const char *name, uint64_t seed,
                        struct bl_sim_layout *out, char *err, size_t errlen)
{
	struct walk w = {
		.name = name ? name : "layout", .err = err, .errlen = errlen,
		.seed = seed, .out = out, .status = BL_OK,
	};
	out->ndevices = 0;
	out->devices = NULL;
	if (err && errlen)
		err[0] = 0;
	if (!json)
		return failf(&w, "", "no layout text");

	lua_State *L = luaL_newstate();
	if (!L)
		return BL_ERR_MEM;
	luaL_openlibs(L);
	w.L = L;
	struct decode_args a = { &w, json, len };
	lua_pushcfunction(L, decode_and_walk);
	lua_pushlightuserdata(L, &a);
	int prc = lua_pcall(L, 1, 0, 0);
	if (prc != LUA_OK) {
		/* Only allocation failures can get here: the walker reports
		 * its own errors through w.status. */
		if (w.status == BL_OK)
			w.status = prc == LUA_ERRMEM ? BL_ERR_MEM : failf(&w, "", "%s", lua_tostring(L, -1));
		bl_sim_layout_free(out);
	}
	lua_close(L);
	if (w.status < 0)
		bl_sim_layout_free(out);
	return w.status;
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

/* ---- describe --------------------------------------------------------- */

struct sb {
	char *buf;
	size_t len, cap;
	bool oom;
};

static void sb_add(struct sb *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_add(struct sb *s, const char *fmt, ...)
{
	if (s->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			s->oom = true;
			return;
		}
		if ((size_t)n < s->cap - s->len) {
			s->len += (size_t)n;
			return;
		}
		size_t ncap = s->cap * 2 + (size_t)n;
		char *nb = realloc(s->buf, ncap);
		if (!nb) {
			s->oom = true;
			return;
		}
		s->buf = nb;
		s->cap = ncap;
	}
}

/* The shortest decimal that reads back as the same double, so that a
 * description parses to exactly the layout it came from. */
static void sb_num(struct sb *s, double v)
{
	char tmp[40];
	if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(tmp, sizeof tmp, "%.0f", v);
		sb_add(s, "%s", tmp);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(tmp, sizeof tmp, "%.*g", prec, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	sb_add(s, "%s", tmp);
}

static void sb_str(struct sb *s, const char *str)
{
	sb_add(s, "\"");
	for (const unsigned char *p = (const unsigned char *)str; *p; p++) {
		if (*p == '"' || *p == '\\')
			sb_add(s, "\\%c", *p);
		else if (*p < 0x20)
			sb_add(s, "\\u%04x", *p);
		else
			sb_add(s, "%c", *p);
	}
	sb_add(s, "\"");
}

static void sb_seed(struct sb *s, uint64_t seed)
{
	if (seed <= (uint64_t)MAX_EXACT_INT)
		sb_add(s, "%" PRIu64, seed);
	else
		sb_add(s, "\"%" PRIu64 "\"", seed);
}

static void describe_cell(struct sb *s, const struct bl_cell_params *p, const char *indent)
{
	sb_add(s, "{\n%s  \"profile\": ", indent);
	sb_str(s, p->profile);
	for (size_t i = 0; i < BL_ARRAY_LEN(cell_fields); i++) {
		const struct cell_field *f = &cell_fields[i];
		sb_add(s, ",\n%s  \"%s\": ", indent, f->name);
		if (f->type == F_BOOL)
			sb_add(s, "%s", p->reversed ? "true" : "false");
		else
			sb_num(s, cell_num_get(p, f));
	}
	sb_add(s, ",\n%s  \"ocv\": [", indent);
	for (int i = 0; i < p->ocv_points; i++) {
		sb_add(s, "%s[", i ? ", " : "");
		sb_num(s, p->ocv_soc[i]);
		sb_add(s, ", ");
		sb_num(s, p->ocv_v[i]);
		sb_add(s, "]");
	}
	sb_add(s, "]\n%s}", indent);
}

static void describe_fault(struct sb *s, const struct bl_fault *f)
{
	const struct fault_kind_info *k = fault_kind_by_kind(f->kind);
	sb_add(s, "{\"at\": ");
	sb_num(s, (double)f->at_us / 1e6);
	sb_add(s, ", \"kind\": \"%s\"", k ? k->name : "unknown");
	if (!k)
		sb_add(s, ", \"comment\": \"unknown kind %d\"", (int)f->kind);
	if (k && k->slot)
		sb_add(s, ", \"slot\": %d", f->slot);
	if (k && k->count)
		sb_add(s, ", \"count\": %d", f->count);
	if (k && k->value != NO_VALUE) {
		sb_add(s, ", \"value\": ");
		sb_num(s, f->value);
	}
	if (k && k->cell) {
		sb_add(s, ", \"cell\": ");
		describe_cell(s, &f->cell, "          ");
	}
	sb_add(s, "}");
}

char *bl_sim_layout_describe(const struct bl_sim_layout *l)
{
	struct sb s = { .cap = 4096 };
	s.buf = malloc(s.cap);
	if (!s.buf)
		return NULL;
	s.buf[0] = 0;
	int n = l ? l->ndevices : 0;
	sb_add(&s, "{\n  \"count\": %d,\n  \"devices\": [", n);
	for (int i = 0; i < n; i++) {
		const struct bl_simdev_config *d = &l->devices[i];
		sb_add(&s, "%s\n    {\n", i ? "," : "");
		sb_add(&s, "      \"serial\": %" PRIu32 ",\n",
		       (uint32_t)d->device_id << 16 | d->serial_num);
		sb_add(&s, "      \"vcc\": ");
		sb_num(&s, d->vcc_v);
		sb_add(&s, ",\n      \"psu\": %s,\n      \"psu_v\": ", d->psu ? "true" : "false");
		sb_num(&s, d->psu_v);
		sb_add(&s, ",\n      \"ambient_c\": ");
		sb_num(&s, d->ambient_c);
		sb_add(&s, ",\n      \"seed\": ");
		sb_seed(&s, d->seed);
		sb_add(&s, ",\n      \"noise\": {\"v\": ");
		sb_num(&s, d->noise_v);
		sb_add(&s, ", \"a\": ");
		sb_num(&s, d->noise_a);
		sb_add(&s, ", \"temp_c\": ");
		sb_num(&s, d->noise_temp_c);
		sb_add(&s, "},\n      \"operator_delay_s\": ");
		sb_num(&s, d->operator_delay_s);
		sb_add(&s, ",\n      \"cells\": [");
		for (int c = 0; c < 4; c++) {
			sb_add(&s, "%s\n        ", c ? "," : "");
			if (d->slot_used[c])
				describe_cell(&s, &d->cells[c], "        ");
			else
				sb_add(&s, "null");
		}
		sb_add(&s, "\n      ],\n      \"faults\": [");
		for (int f = 0; f < d->nfaults; f++) {
			sb_add(&s, "%s\n        ", f ? "," : "");
			describe_fault(&s, &d->faults[f]);
		}
		sb_add(&s, "%s],\n      \"queue\": [", d->nfaults ? "\n      " : "");
		for (int q = 0; q < d->nqueue; q++) {
			sb_add(&s, "%s\n        ", q ? "," : "");
			describe_cell(&s, &d->queue[q], "        ");
		}
		sb_add(&s, "%s]\n    }", d->nqueue ? "\n      " : "");
	}
	sb_add(&s, "%s]\n}\n", n ? "\n  " : "");
	if (s.oom) {
		free(s.buf);
		return NULL;
	}
	return s.buf;
}
