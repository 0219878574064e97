/* sim/layout_parse.c - the layout schema (docs/simulator.md, "Layout
 * format"): the tables lua-cjson decoded a layout into are walked with
 * every key, type and range checked (sim/layout_json.h).
 */
#include "sim/layout.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>

#include "core/bl.h"
#include "sim/layout_json.h"
#include "sim/layout_parts.h"

#define MAX_SERIAL          0xFFFFFFFFu

/* ---- Cells ------------------------------------------------------------------ */

static const char *const cell_keys[] = {
	"comment", "profile", "empty", "ocv",
	"capacity_ah", "soc", "r0_ohm", "r1_ohm", "c1_farad", "coulombic_eff",
	"temp_c", "ambient_c", "heat_capacity_j_k", "cooling_w_k", "fade_per_ah",
	"self_discharge_per_day", "self_heating_w", "v_min", "v_max", "reversed",
	NULL,
};

static int parse_ocv(struct bl_json_walk *w, int idx, const char *where, struct bl_cell_params *p)
{
	lua_State *L = w->L;
	int rc = BL_OK;
	if (!bl_jw_field(L, idx, "ocv")) {
		lua_pop(L, 1);
		return BL_OK;
	}
	int t = lua_gettop(L);
	if (bl_jw_kind(L, t) != BL_JW_ARRAY) {
		rc = bl_jw_fail(w, where, "\"ocv\" must be an array of [soc, volts] pairs");
		goto out;
	}
	lua_Integer n = (lua_Integer)lua_rawlen(L, t);
	if (n < 2 || n > BL_OCV_MAX_POINTS) {
		rc = bl_jw_fail(w, where, "\"ocv\" needs 2..%d points (got %lld)", BL_OCV_MAX_POINTS, (long long)n);
		goto out;
	}
	memset(p->ocv_soc, 0, sizeof p->ocv_soc);
	memset(p->ocv_v, 0, sizeof p->ocv_v);
	p->ocv_points = (int)n;
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, t, i);
		bool pair = bl_jw_kind(L, -1) == BL_JW_ARRAY && lua_rawlen(L, -1) == 2;
		double sv[2] = { 0, 0 };
		for (int j = 0; j < 2 && pair; j++) {
			lua_rawgeti(L, -1, j + 1);
			pair = lua_type(L, -1) == LUA_TNUMBER && isfinite(lua_tonumber(L, -1));
			sv[j] = lua_tonumber(L, -1);
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
		if (!pair) {
			rc = bl_jw_fail(w, where, "\"ocv\"[%lld] must be a pair [soc, volts] of numbers", (long long)(i - 1));
			goto out;
		}
		p->ocv_soc[i - 1] = sv[0];
		p->ocv_v[i - 1] = sv[1];
	}
out:
	lua_settop(L, t - 1);
	return rc;
}

/* {"empty": true} takes nothing else but a comment. */
static int parse_empty_slot(struct bl_json_walk *w, int idx, const char *where, bool allow_empty)
{
	lua_State *L = w->L;
	bool alone = true;

	if (!allow_empty)
		return bl_jw_fail(w, where, "a cell is needed here, not an empty slot");
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		const char *k = lua_tostring(L, -1);
		if (strcmp(k, "empty") != 0 && strcmp(k, "comment") != 0)
			alone = false;
	}
	if (!alone)
		return bl_jw_fail(w, where, "an empty slot takes no cell parameters");
	return BL_OK;
}

/* "profile": a known profile name (default nmc18650). */
static int parse_profile(struct bl_json_walk *w, int idx, const char *where, const char **profile)
{
	lua_State *L = w->L;

	*profile = DEFAULT_PROFILE;
	if (bl_jw_field(L, idx, "profile")) {
		size_t n;
		const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
		const struct bl_cell_params *pp = s && strlen(s) == n ? bl_cell_profile(s) : NULL;
		if (!pp) {
			char list[256];
			bl_jw_join(list, sizeof list, bl_cell_profile_names());
			lua_pop(L, 1);
			if (!s)
				return bl_jw_fail(w, where, "\"profile\" must be a string (known: %s)", list);
			return bl_jw_fail(w, where, "unknown profile \"%.40s\" (known: %s)", s, list);
		}
		*profile = pp->profile;
	}
	lua_pop(L, 1);
	return BL_OK;
}

/* The profile's parameters with the fields the entry overrides. */
static int parse_cell_fields(struct bl_json_walk *w, int idx, const char *where, double ambient_c,
                             struct bl_cell_params *p)
{
	const char *profile;
	int rc;

	if ((rc = parse_profile(w, idx, where, &profile)) < 0)
		return rc;
	/* The cell sits at its ambient unless told otherwise. */
	double amb = ambient_c;
	if ((rc = bl_jw_num(w, idx, where, "ambient_c", -60, 200, &amb, NULL)) < 0)
		return rc;
	bl_layout_cell_default(p, profile, amb);
	for (size_t i = 0; i < bl_layout_ncell_fields; i++) {
		const struct cell_field *f = &bl_layout_cell_fields[i];
		if (f->type == F_BOOL) {
			if ((rc = bl_jw_bool(w, idx, where, f->name, &p->reversed)) < 0)
				return rc;
		} else if ((rc = bl_jw_num(w, idx, where, f->name, -1e12, 1e12, cell_num(p, f), NULL)) < 0) {
			return rc;
		}
	}
	return parse_ocv(w, idx, where, p);
}

/* A cell: null or {"empty": true} (if allowed) leaves the slot empty;
 * otherwise a profile (default nmc18650) with per-field overrides. */
static int parse_cell(struct bl_json_walk *w, int idx, const char *where, double ambient_c,
                      bool allow_empty, struct bl_cell_params *p, bool *used)
{
	lua_State *L = w->L;
	int rc;
	idx = lua_absindex(L, idx);
	*used = false;
	if (bl_jw_is_null(L, idx)) {
		if (!allow_empty)
			return bl_jw_fail(w, where, "a cell is needed here, not null");
		return BL_OK;
	}
	if (!bl_jw_is_object(L, idx))
		return bl_jw_fail(w, where, "a cell must be an object or null, not %s",
		                  bl_jw_kind_name(bl_jw_kind(L, idx)));
	if ((rc = bl_jw_check_keys(w, idx, where, cell_keys)) < 0)
		return rc;

	bool empty = false;
	if ((rc = bl_jw_bool(w, idx, where, "empty", &empty)) < 0)
		return rc;
	if (empty)
		return parse_empty_slot(w, idx, where, allow_empty);
	if ((rc = parse_cell_fields(w, idx, where, ambient_c, p)) < 0)
		return rc;

	char why[160];
	if (bl_cell_params_check(p, why, sizeof why) < 0)
		return bl_jw_fail(w, where, "%s", why);
	*used = true;
	return BL_OK;
}

/* ---- Faults ----------------------------------------------------------------- */

static const char *const fault_keys[] = {
	"comment", "at", "kind", "slot", "count", "value", "cell", NULL,
};

static int parse_fault_kind(struct bl_json_walk *w, int idx, const char *where,
                            const struct fault_kind_info **kind)
{
	lua_State *L = w->L;
	const struct fault_kind_info *k = NULL;

	if (bl_jw_field(L, idx, "kind") && lua_type(L, -1) == LUA_TSTRING) {
		size_t n;
		const char *s = lua_tolstring(L, -1, &n);
		if (strlen(s) == n)
			k = bl_layout_fault_kind_by_name(s);
	}
	lua_pop(L, 1);
	if (!k) {
		char list[320];
		bl_layout_fault_kind_names(list, sizeof list);
		return bl_jw_fail(w, where, "\"kind\" must be one of: %s", list);
	}
	*kind = k;
	return BL_OK;
}

/* "at", "slot" and "count", as the kind wants them. */
static int parse_fault_when_where(struct bl_json_walk *w, int idx, const char *where,
                                  const struct fault_kind_info *k, struct bl_fault *f)
{
	double at = 0;
	bool have = false;
	int rc;

	if ((rc = bl_jw_num(w, idx, where, "at", 0, 1e9, &at, &have)) < 0)
		return rc;
	if (!have)
		return bl_jw_fail(w, where, "\"at\" (seconds from the start) is required");
	f->at_us = (uint64_t)llround(at * 1e6);

	long long slot = -1;
	if ((rc = bl_jw_int(w, idx, where, "slot", 0, 3, &slot, &have)) < 0)
		return rc;
	if (k->slot && !have)
		return bl_jw_fail(w, where, "%s needs a \"slot\" (0..3)", k->name);
	if (!k->slot && have)
		return bl_jw_fail(w, where, "%s takes no \"slot\"", k->name);
	f->slot = (int)slot;

	long long count = 1;
	if ((rc = bl_jw_int(w, idx, where, "count", 1, 1000000, &count, &have)) < 0)
		return rc;
	if (!k->count && have)
		return bl_jw_fail(w, where, "%s takes no \"count\"", k->name);
	f->count = k->count ? (int)count : 0;
	return BL_OK;
}

static int parse_fault_value(struct bl_json_walk *w, int idx, const char *where,
                             const struct fault_kind_info *k, struct bl_fault *f)
{
	lua_State *L = w->L;
	double value = 0;
	bool have = false;
	int rc;

	bool vpresent = bl_jw_field(L, idx, "value");
	lua_pop(L, 1);
	if (k->value == NO_VALUE && vpresent)
		return bl_jw_fail(w, where, "%s takes no \"value\"", k->name);
	if (k->value != NO_VALUE) {
		if ((rc = bl_jw_num(w, idx, where, "value", k->vmin, k->vmax, &value, &have)) < 0)
			return rc;
		if (k->value == VALUE_REQUIRED && !have)
			return bl_jw_fail(w, where, "%s needs a \"value\" (%g..%g %s)", k->name, k->vmin,
			                  k->vmax, k->unit);
		if (k->kind == BL_FAULT_PSU_LOST && value != 0 && value != 1)
			return bl_jw_fail(w, where, "psu_lost \"value\" is 0 (lost) or 1 (back)");
	}
	f->value = value;
	return BL_OK;
}

static int parse_fault_cell(struct bl_json_walk *w, int idx, const char *where, double ambient_c,
                            const struct fault_kind_info *k, struct bl_fault *f)
{
	lua_State *L = w->L;
	int rc = BL_OK;

	bool cpresent = bl_jw_field(L, idx, "cell");
	if (!k->cell && cpresent) {
		rc = bl_jw_fail(w, where, "%s takes no \"cell\"", k->name);
	} else if (k->cell && !cpresent) {
		rc = bl_jw_fail(w, where, "%s needs a \"cell\"", k->name);
	} else if (k->cell) {
		char sub[160];
		bool used;
		snprintf(sub, sizeof sub, "%s.cell", where);
		rc = parse_cell(w, -1, sub, ambient_c, false, &f->cell, &used);
	}
	lua_pop(L, 1);
	return rc;
}

static int parse_fault(struct bl_json_walk *w, int idx, const char *where, double ambient_c,
                       struct bl_fault *f)
{
	lua_State *L = w->L;
	const struct fault_kind_info *k;
	int rc;

	idx = lua_absindex(L, idx);
	if (!bl_jw_is_object(L, idx))
		return bl_jw_fail(w, where, "a fault must be an object, not %s",
		                  bl_jw_kind_name(bl_jw_kind(L, idx)));
	if ((rc = bl_jw_check_keys(w, idx, where, fault_keys)) < 0)
		return rc;
	memset(f, 0, sizeof *f);
	f->slot = -1;
	if ((rc = parse_fault_kind(w, idx, where, &k)) < 0)
		return rc;
	f->kind = k->kind;
	if ((rc = parse_fault_when_where(w, idx, where, k, f)) < 0 ||
	    (rc = parse_fault_value(w, idx, where, k, f)) < 0)
		return rc;
	return parse_fault_cell(w, idx, where, ambient_c, k, f);
}

/* ---- Devices ---------------------------------------------------------------- */

static const char *const device_keys[] = {
	"comment", "serial", "vcc", "psu", "psu_v", "ambient_c", "seed", "noise",
	"operator_delay_s", "cells", "faults", "queue", NULL,
};
static const char *const noise_keys[] = { "comment", "v", "a", "temp_c", NULL };

/* One entry of a device's list, on top of the stack; `where` names it. */
typedef int (*entry_fn)(struct bl_json_walk *w, const char *where, int i,
                        struct bl_simdev_config *cfg);

/* The device's array `key`, each entry read by fn. Returns how many
 * entries there are (0 when absent, *present false) or a negative status.
 * `limit` says why more than max is too many; NULL: "(at most max)". */
static int parse_list(struct bl_json_walk *w, int idx, const char *where, const char *key,
                      int max, const char *limit, entry_fn fn, struct bl_simdev_config *cfg,
                      bool *present)
{
	lua_State *L = w->L;
	int rc = BL_OK, n = bl_jw_push_array(w, idx, where, key, present);

	if (n < 0)
		return n;
	if (n > max) {
		lua_pop(L, 1);
		if (limit)
			return bl_jw_fail(w, where, "\"%s\" has %d entries%s", key, n, limit);
		return bl_jw_fail(w, where, "\"%s\" has %d entries (at most %d)", key, n, max);
	}
	for (int i = 0; i < n && rc == BL_OK; i++) {
		char sub[96];
		snprintf(sub, sizeof sub, "%s.%s[%d]", where, key, i);
		lua_rawgeti(L, -1, i + 1);
		rc = fn(w, sub, i, cfg);
		lua_pop(L, 1);
	}
	if (*present)
		lua_pop(L, 1);
	return rc < 0 ? rc : n;
}

static int slot_entry(struct bl_json_walk *w, const char *where, int i, struct bl_simdev_config *cfg)
{
	return parse_cell(w, -1, where, cfg->ambient_c, true, &cfg->cells[i], &cfg->slot_used[i]);
}

static int fault_entry(struct bl_json_walk *w, const char *where, int i, struct bl_simdev_config *cfg)
{
	return parse_fault(w, -1, where, cfg->ambient_c, &cfg->faults[i]);
}

static int queue_entry(struct bl_json_walk *w, const char *where, int i, struct bl_simdev_config *cfg)
{
	bool used;
	return parse_cell(w, -1, where, cfg->ambient_c, false, &cfg->queue[i], &used);
}

/* "cells", "faults" and "queue". */
static int parse_device_lists(struct bl_json_walk *w, int idx, const char *where,
                              struct bl_simdev_config *cfg)
{
	bool present;
	int n;

	/* Listed slots replace the defaults; unlisted slots are empty. */
	if ((n = parse_list(w, idx, where, "cells", 4, "; a Batlab has 4 slots", slot_entry, cfg,
	                    &present)) < 0)
		return n;
	for (int s = 0; s < 4 && present; s++) {
		if (s >= n)
			cfg->slot_used[s] = false;
		if (!cfg->slot_used[s])
			memset(&cfg->cells[s], 0, sizeof cfg->cells[s]);
	}
	if ((n = parse_list(w, idx, where, "faults", BL_SIM_MAX_FAULTS, NULL, fault_entry, cfg,
	                    &present)) < 0)
		return n;
	if (present)
		cfg->nfaults = n;
	bl_sim_faults_sort(cfg->faults, cfg->nfaults);
	if ((n = parse_list(w, idx, where, "queue", BL_SIM_MAX_QUEUE, NULL, queue_entry, cfg,
	                    &present)) < 0)
		return n;
	if (present)
		cfg->nqueue = n;
	return BL_OK;
}

static int parse_noise(struct bl_json_walk *w, int idx, const char *where,
                       struct bl_simdev_config *cfg)
{
	lua_State *L = w->L;
	int rc = BL_OK;

	if (bl_jw_field(L, idx, "noise")) {
		char sub[80];
		snprintf(sub, sizeof sub, "%s.noise", where);
		if (!bl_jw_is_object(L, -1))
			rc = bl_jw_fail(w, sub, "must be an object {\"v\": volts, \"a\": amps}");
		if (rc == BL_OK)
			rc = bl_jw_check_keys(w, -1, sub, noise_keys);
		if (rc == BL_OK)
			rc = bl_jw_num(w, -1, sub, "v", 0, 1, &cfg->noise_v, NULL);
		if (rc == BL_OK)
			rc = bl_jw_num(w, -1, sub, "a", 0, 1, &cfg->noise_a, NULL);
		if (rc == BL_OK)
			rc = bl_jw_num(w, -1, sub, "temp_c", 0, 5, &cfg->noise_temp_c, NULL);
	}
	lua_pop(L, 1);
	return rc;
}

/* "serial", "vcc", "psu", "psu_v", "seed" and "operator_delay_s". */
static int parse_device_scalars(struct bl_json_walk *w, int idx, const char *where, int index,
                                struct bl_simdev_config *cfg)
{
	long long serial = DEFAULT_SERIAL + index;
	int rc;

	if ((rc = bl_jw_int(w, idx, where, "serial", 0, MAX_SERIAL, &serial, NULL)) < 0)
		return rc;
	cfg->serial_num = (uint16_t)(serial & 0xFFFF);
	cfg->device_id = (uint16_t)((unsigned long long)serial >> 16);
	if ((rc = bl_jw_num(w, idx, where, "vcc", 3.0, 6.0, &cfg->vcc_v, NULL)) < 0 ||
	    (rc = bl_jw_bool(w, idx, where, "psu", &cfg->psu)) < 0 ||
	    (rc = bl_jw_num(w, idx, where, "psu_v", 3.0, 6.0, &cfg->psu_v, NULL)) < 0 ||
	    (rc = bl_jw_seed(w, idx, where, &cfg->seed)) < 0)
		return rc;
	return bl_jw_num(w, idx, where, "operator_delay_s", 0, 1e7, &cfg->operator_delay_s, NULL);
}

static int parse_device(struct bl_json_walk *w, int idx, int index, uint64_t base_seed,
                        double ambient_c, struct bl_simdev_config *cfg)
{
	lua_State *L = w->L;
	char where[64];
	int rc;

	idx = lua_absindex(L, idx);
	snprintf(where, sizeof where, "devices[%d]", index);
	if (!bl_jw_is_object(L, idx))
		return bl_jw_fail(w, where, "a device must be an object, not %s",
		                  bl_jw_kind_name(bl_jw_kind(L, idx)));
	if ((rc = bl_jw_check_keys(w, idx, where, device_keys)) < 0)
		return rc;
	if ((rc = bl_jw_num(w, idx, where, "ambient_c", -60, 200, &ambient_c, NULL)) < 0)
		return rc;
	bl_layout_device_default(cfg, index, base_seed, ambient_c);
	if ((rc = parse_device_scalars(w, idx, where, index, cfg)) < 0 ||
	    (rc = parse_noise(w, idx, where, cfg)) < 0)
		return rc;
	return parse_device_lists(w, idx, where, cfg);
}

/* ---- The top level ---------------------------------------------------------- */

static const char *const top_keys[] = {
	"comment", "seed", "ambient_c", "count", "devices", NULL,
};

/* What the top level says about every device. */
struct top {
	uint64_t seed;
	double ambient;
	long long count;
	bool have_count;
};

/* "devices" into a new array of `*total` entries (the count, when given,
 * may ask for more than the list has); returns how many were listed. */
static int parse_devices(struct bl_json_walk *w, int idx, const struct top *top,
                         struct bl_simdev_config **out, int *total)
{
	lua_State *L = w->L;
	bool pushed;
	int rc = BL_OK, n = bl_jw_push_array(w, idx, "", "devices", &pushed);

	if (n < 0)
		return n;
	if (n > BL_SIM_MAX_DEVICES)
		rc = bl_jw_fail(w, "", "%d devices; at most %d", n, BL_SIM_MAX_DEVICES);
	else if (top->have_count && top->count < n)
		rc = bl_jw_fail(w, "", "\"count\" (%lld) is less than the %d devices listed", top->count, n);
	*total = top->have_count ? (int)top->count : n > 0 ? n : 1;
	struct bl_simdev_config *devs = rc < 0 ? NULL : calloc((size_t)*total, sizeof *devs);
	if (rc == BL_OK && !devs)
		rc = BL_ERR_MEM;
	for (int i = 0; i < n && rc == BL_OK; i++) {
		lua_rawgeti(L, -1, i + 1);
		rc = parse_device(w, -1, i, top->seed, top->ambient, &devs[i]);
		lua_pop(L, 1);
	}
	if (pushed)
		lua_pop(L, 1);
	if (rc < 0) {
		free(devs);
		return rc;
	}
	*out = devs;
	return n;
}

/* "count" beyond the list repeats the last device (or the default) with
 * the next serial numbers and their own seeds. */
static void repeat_devices(struct bl_simdev_config *devs, int n, int total, const struct top *top)
{
	for (int i = n; i < total; i++) {
		if (n == 0) {
			bl_layout_device_default(&devs[i], i, top->seed, top->ambient);
			continue;
		}
		devs[i] = devs[n - 1];
		uint32_t serial = ((uint32_t)devs[n - 1].device_id << 16 | devs[n - 1].serial_num)
			+ (uint32_t)(i - n + 1);
		devs[i].serial_num = (uint16_t)(serial & 0xFFFF);
		devs[i].device_id = (uint16_t)(serial >> 16);
		devs[i].seed = bl_layout_device_seed(top->seed, i);
	}
}

static int check_serials(struct bl_json_walk *w, const struct bl_simdev_config *devs, int total)
{
	for (int i = 0; i < total; i++)
		for (int j = 0; j < i; j++)
			if (devs[i].serial_num == devs[j].serial_num && devs[i].device_id == devs[j].device_id) {
				uint32_t serial = (uint32_t)devs[i].device_id << 16 | devs[i].serial_num;
				char sub[64];
				snprintf(sub, sizeof sub, "devices[%d]", i);
				return bl_jw_fail(w, sub, "serial %" PRIu32 " is already used by devices[%d]",
				                  serial, j);
			}
	return BL_OK;
}

int bl_layout_walk(struct bl_json_walk *w, int idx, uint64_t seed, struct bl_sim_layout *out)
{
	lua_State *L = w->L;
	struct top top = { .seed = seed, .ambient = DEFAULT_AMBIENT_C };
	struct bl_simdev_config *devs;
	int rc, n, total;

	if (!bl_jw_is_object(L, idx))
		return bl_jw_fail(w, "", "the layout must be a JSON object, not %s",
		                  bl_jw_kind_name(bl_jw_kind(L, idx)));
	if ((rc = bl_jw_check_keys(w, idx, "", top_keys)) < 0 ||
	    (rc = bl_jw_seed(w, idx, "", &top.seed)) < 0 ||
	    (rc = bl_jw_num(w, idx, "", "ambient_c", -60, 200, &top.ambient, NULL)) < 0 ||
	    (rc = bl_jw_int(w, idx, "", "count", 1, BL_SIM_MAX_DEVICES, &top.count,
	                    &top.have_count)) < 0)
		return rc;
	if ((n = parse_devices(w, idx, &top, &devs, &total)) < 0)
		return n;
	repeat_devices(devs, n, total, &top);
	if ((rc = check_serials(w, devs, total)) < 0) {
		free(devs);
		return rc;
	}
	out->devices = devs;
	out->ndevices = total;
	return BL_OK;
}
