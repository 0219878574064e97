/* test_sim_layout.c - JSON layouts for the virtual Batlab: defaults,
 * parsing, validation messages and the describe round trip. */
#include <stdlib.h>
#include <string.h>

#include "core/bl.h"
#include "sim/layout.h"
#include "tap.h"

static char err[1024];

static int parse(const char *json, struct bl_sim_layout *l)
{
	err[0] = 0;
	return bl_sim_layout_parse(json, strlen(json), "t.json", 1, l, err, sizeof err);
}

/* Expect a parse error whose message contains every `want` fragment. */
static void parse_fails(const char *json, const char *want1, const char *want2, const char *what)
{
	struct bl_sim_layout l;
	int rc = parse(json, &l);
	ok(rc == BL_ERR_ARG && l.devices == NULL && l.ndevices == 0, "%s: refused", what);
	int has = strncmp(err, "t.json: ", 8) == 0 && (!want1 || strstr(err, want1))
		&& (!want2 || strstr(err, want2));
	ok(has, "%s: message \"%s\"", what, err);
	bl_sim_layout_free(&l);
}

static void test_default(void)
{
	struct bl_sim_layout l;
	is_int(bl_sim_layout_default(&l, 0, 99), BL_OK, "default layout");
	is_int(l.ndevices, 1, "0 devices means 1");
	struct bl_simdev_config *d = &l.devices[0];
	is_int(d->serial_num, 1000, "serial 1000");
	is_int(d->device_id, 0, "device id 0");
	is_num(d->vcc_v, 5.0, 0, "vcc 5.0");
	ok(d->psu, "psu present");
	is_num(d->ambient_c, 25, 0, "ambient 25");
	int all = 1;
	for (int s = 0; s < 4; s++)
		all &= d->slot_used[s] && strcmp(d->cells[s].profile, "nmc18650") == 0
			&& d->cells[s].soc == 0.5 && d->cells[s].temp_c == 25;
	ok(all, "four nmc18650 cells at 50 %% and 25 degC");
	is_num(d->noise_v, 0.0005, 0, "noise 0.5 mV");
	is_num(d->noise_a, 0.001, 0, "noise 1 mA");
	is_int((long long)d->seed, 99, "seed");
	is_int(d->nfaults, 0, "no faults");
	is_int(d->nqueue, 0, "empty queue");
	bl_sim_layout_free(&l);
	ok(l.devices == NULL && l.ndevices == 0, "free resets");
	bl_sim_layout_free(&l);

	is_int(bl_sim_layout_default(&l, 3, 5), BL_OK, "three devices");
	ok(l.ndevices == 3 && l.devices[2].serial_num == 1002 && l.devices[2].seed == 7,
	   "serials and seeds count up");
	bl_sim_layout_free(&l);
	is_int(bl_sim_layout_default(&l, BL_SIM_MAX_DEVICES + 1, 0), BL_ERR_ARG, "too many devices");
	is_int(bl_sim_layout_default(&l, -1, 0), BL_ERR_ARG, "negative count");
}

/* The first cell of the full example: every parameter overridden. */
static void check_full_cell(const struct bl_cell_params *c)
{
	is_num(c->soc, 1.0, 0, "soc");
	is_num(c->capacity_ah, 2.6, 0, "capacity_ah");
	is_num(c->r0_ohm, 0.04, 0, "r0_ohm");
	is_num(c->r1_ohm, 0.01, 0, "r1_ohm");
	is_num(c->c1_farad, 1000, 0, "c1_farad");
	is_num(c->coulombic_eff, 0.99, 0, "coulombic_eff");
	is_num(c->temp_c, 30, 0, "temp_c");
	is_num(c->ambient_c, 22, 0, "ambient_c");
	is_num(c->heat_capacity_j_k, 50, 0, "heat_capacity_j_k");
	is_num(c->cooling_w_k, 0.1, 0, "cooling_w_k");
	is_num(c->fade_per_ah, 0.0001, 0, "fade_per_ah");
	is_num(c->self_discharge_per_day, 0.01, 0, "self_discharge_per_day");
	is_num(c->self_heating_w, 0.2, 0, "self_heating_w");
	is_num(c->v_min, 2.7, 0, "v_min");
	is_num(c->v_max, 4.15, 0, "v_max");
	ok(c->reversed, "reversed");
	ok(c->ocv_points == 3 && c->ocv_soc[1] == 0.5 && c->ocv_v[2] == 4.1 && c->ocv_v[3] == 0,
	   "ocv table replaced");
}

/* The full example's faults (sorted, same instant in file order), queue,
 * operator and noise. */
static void check_full_faults(const struct bl_simdev_config *d)
{
	is_int(d->nfaults, 4, "four faults");
	ok(d->faults[0].kind == BL_FAULT_CELL_INSERT && d->faults[0].at_us == 500000
	   && d->faults[0].slot == 1 && strcmp(d->faults[0].cell.profile, "lipo-pouch") == 0
	   && d->faults[0].cell.soc == 0.25, "faults sorted; cell_insert with its cell");
	ok(d->faults[1].kind == BL_FAULT_VCC_SAG && d->faults[1].value == 4.2 && d->faults[1].slot == -1,
	   "vcc_sag value, no slot");
	ok(d->faults[2].kind == BL_FAULT_GARBAGE && d->faults[2].count == 1, "same instant keeps file order; count defaults to 1");
	ok(d->faults[3].kind == BL_FAULT_CELL_REMOVE && d->faults[3].at_us == 3600000000ULL
	   && d->faults[3].slot == 1, "cell_remove at 3600 s");
	is_int(d->nqueue, 2, "queue of two");
	is_str(d->queue[1].profile, "nmc18650-aged", "queue profile");
	is_num(d->operator_delay_s, 12.5, 0, "operator delay");
	ok(d->noise_v == 0.001 && d->noise_a == 0.002, "noise");
}

static void test_parse(void)
{
	struct bl_sim_layout l;
	const char *json =
		"{ \"seed\": 7, \"ambient_c\": 20,\n"
		"  \"devices\": [ { \"serial\": 131077, \"vcc\": 4.8, \"psu\": false,\n"
		"    \"cells\": [ {\"profile\": \"nmc18650\", \"soc\": 1.0, \"capacity_ah\": 2.6, \"r0_ohm\": 0.04,\n"
		"                  \"temp_c\": 30, \"ambient_c\": 22, \"r1_ohm\": 0.01, \"c1_farad\": 1000,\n"
		"                  \"coulombic_eff\": 0.99, \"heat_capacity_j_k\": 50, \"cooling_w_k\": 0.1,\n"
		"                  \"fade_per_ah\": 0.0001, \"self_discharge_per_day\": 0.01, \"self_heating_w\": 0.2,\n"
		"                  \"v_min\": 2.7, \"v_max\": 4.15, \"reversed\": true,\n"
		"                  \"ocv\": [[0, 3.0], [0.5, 3.7], [1, 4.1]], \"comment\": \"everything\"},\n"
		"               null, {\"profile\": \"lfp26650\", \"soc\": 0.5} ],\n"
		"    \"faults\": [ {\"at\": 3600, \"kind\": \"cell_remove\", \"slot\": 1},\n"
		"                  {\"at\": 10, \"kind\": \"vcc_sag\", \"value\": 4.2},\n"
		"                  {\"at\": 10, \"kind\": \"garbage\"},\n"
		"                  {\"at\": 0.5, \"kind\": \"cell_insert\", \"slot\": 1, \"cell\": {\"profile\": \"lipo-pouch\", \"soc\": 0.25}} ],\n"
		"    \"queue\": [ {\"profile\": \"nmc18650\", \"soc\": 0.3}, {\"profile\": \"nmc18650-aged\"} ],\n"
		"    \"operator_delay_s\": 12.5, \"noise\": {\"v\": 0.001, \"a\": 0.002} },\n"
		"   {} ] }\n";
	int rc = parse(json, &l);
	is_int(rc, BL_OK, "full example parses %s", err);
	if (rc < 0)
		return;
	is_int(l.ndevices, 2, "two devices");
	struct bl_simdev_config *d = &l.devices[0];
	is_int(d->serial_num, 5, "serial low 16 bits");
	is_int(d->device_id, 2, "serial high 16 bits");
	is_num(d->vcc_v, 4.8, 0, "vcc");
	ok(!d->psu, "psu false");
	is_num(d->ambient_c, 20, 0, "top-level ambient inherited");
	is_int((long long)d->seed, 7, "layout seed wins over the argument");
	is_int((long long)l.devices[1].seed, 8, "second device seed + 1");
	is_int(l.devices[1].serial_num, 1001, "second device default serial");

	ok(d->slot_used[0] && !d->slot_used[1] && d->slot_used[2] && !d->slot_used[3],
	   "slots: cell, null, cell, missing");
	check_full_cell(&d->cells[0]);
	const struct bl_cell_params *c = &d->cells[2];
	is_str(c->profile, "lfp26650", "lfp profile");
	is_num(c->temp_c, 20, 0, "cell temperature defaults to the ambient");
	is_num(c->capacity_ah, 3.0, 0, "profile capacity kept");

	check_full_faults(d);
	bl_sim_layout_free(&l);
}

/* Short layouts: the defaults, a 64-bit seed, "count". */
static void test_parse_counts(void)
{
	struct bl_sim_layout l;

	is_int(parse("{}", &l), BL_OK, "empty object is one default device");
	ok(l.ndevices == 1 && l.devices[0].slot_used[3] && l.devices[0].seed == 1, "  ... with the argument's seed");
	bl_sim_layout_free(&l);

	is_int(parse("{\"seed\": \"18446744073709551615\", \"count\": 3}", &l), BL_OK, "seed as a string, count alone");
	ok(l.ndevices == 3 && l.devices[0].seed == UINT64_MAX && l.devices[1].seed == 0
	   && l.devices[2].serial_num == 1002, "  ... 64-bit seed, default devices");
	bl_sim_layout_free(&l);

	is_int(parse("{\"count\": 3, \"devices\": [{\"serial\": 65535, \"cells\": [{\"soc\": 0.1}],"
	             " \"faults\": [{\"at\": 1, \"kind\": \"reset\"}]}]}", &l), BL_OK, "count repeats the last device");
	ok(l.ndevices == 3 && l.devices[1].serial_num == 0 && l.devices[1].device_id == 1
	   && l.devices[2].serial_num == 1 && l.devices[2].nfaults == 1
	   && l.devices[2].cells[0].soc == 0.1 && !l.devices[2].slot_used[1]
	   && l.devices[2].seed == 3, "  ... with following serials and seeds");
	bl_sim_layout_free(&l);
}

static void test_errors(void)
{
	parse_fails("{\"devices\": [\n  {\"cells\": [\n    {\"soc\": 0.5,}\n  ]}\n]}",
	            "line 3", "invalid JSON", "trailing comma");
	parse_fails("{\n\n\n  \"seed\" 1 }", "line 4, column 10", "colon but found a number", "missing colon");
	parse_fails("", "line 1", "end of the file", "empty text");
	parse_fails("[1, 2]", "must be a JSON object", NULL, "top-level array");
	parse_fails("{\"devcies\": []}", "unknown key \"devcies\"", "devices", "typo at top level");
	parse_fails("{\"devices\": [{\"cells\": [{\"capcity_ah\": 2}]}]}",
	            "devices[0].cells[0]: unknown key \"capcity_ah\"", "capacity_ah", "typo in a cell");
	parse_fails("{\"devices\": [{\"cells\": [{\"profile\": \"nmc2170\"}]}]}",
	            "unknown profile \"nmc2170\"", "lfp26650, lipo-pouch", "unknown profile lists known ones");
	parse_fails("{\"devices\": [{\"cells\": [null, {\"soc\": 1.5}]}]}",
	            "devices[0].cells[1]", "soc", "soc above 1");
	parse_fails("{\"devices\": [{\"cells\": [{\"soc\": -0.1}]}]}", "soc", NULL, "soc below 0");
	parse_fails("{\"devices\": [{\"cells\": [{\"capacity_ah\": 0}]}]}", "capacity_ah", NULL, "zero capacity");
	parse_fails("{\"devices\": [{\"cells\": [{\"soc\": \"full\"}]}]}", "\"soc\" must be a number", "a string", "wrong type");
	parse_fails("{\"devices\": [{\"cells\": [{\"reversed\": 1}]}]}", "\"reversed\" must be true or false", NULL, "bool type");
	parse_fails("{\"devices\": [{\"cells\": [{}, {}, {}, {}, {}]}]}", "5 entries", "4 slots", "five cells");
	parse_fails("{\"devices\": [{\"cells\": {\"soc\": 1}}]}", "\"cells\" must be an array", NULL, "cells not an array");
	parse_fails("{\"devices\": [{\"cells\": [{\"empty\": true, \"soc\": 1}]}]}", "empty slot", NULL, "empty with parameters");
	parse_fails("{\"devices\": [{\"cells\": [{\"ocv\": [[0, 3], [0.5]]}]}]}", "ocv", "pair", "bad ocv pair");
	parse_fails("{\"devices\": [{\"cells\": [{\"ocv\": [[0, 3], [1, 2]]}]}]}", "ocv", "decrease", "falling ocv");
	parse_fails("{\"devices\": [{\"cells\": [{\"ocv\": [[0.1, 3], [1, 4]]}]}]}", "ocv", "soc 0", "ocv not from 0");
	parse_fails("{\"devices\": [{\"cells\": [{\"soc\": NaN}]}]}", "invalid JSON", NULL, "NaN refused");
	parse_fails("{\"devices\": [{\"cells\": [{\"soc\": 1e400}]}]}", "\"soc\" must be a finite number", NULL, "infinity refused");
	parse_fails("{\"devices\": [{\"faults\": [{\"at\": 1, \"kind\": \"cell_remove\", \"slot\": 4}]}]}",
	            "devices[0].faults[0]", "\"slot\" must be within 0..3", "slot 4");
	parse_fails("{\"devices\": [{\"faults\": [{\"at\": 1, \"kind\": \"cell_remove\"}]}]}",
	            "needs a \"slot\"", NULL, "missing slot");
	parse_fails("{\"devices\": [{\"faults\": [{\"at\": 1, \"kind\": \"unplug\", \"slot\": 0}]}]}",
	            "unplug takes no \"slot\"", NULL, "slot on a device fault");
	parse_fails("{\"devices\": [{\"faults\": [{\"at\": 1, \"kind\": \"melt\"}]}]}",
	            "\"kind\" must be one of", "thermistor_open", "unknown fault kind");
	parse_fails("{\"devices\": [{\"faults\": [{\"kind\": \"reset\"}]}]}", "\"at\"", "required", "missing time");
	parse_fails("{\"devices\": [{\"faults\": [{\"at\": -1, \"kind\": \"reset\"}]}]}", "\"at\"", NULL, "negative time");
	parse_fails("{\"devices\": [{\"faults\": [{\"at\": 1, \"kind\": \"vcc_sag\"}]}]}", "needs a \"value\"", NULL, "sag without value");
	parse_fails("{\"devices\": [{\"faults\": [{\"at\": 1, \"kind\": \"psu_lost\", \"value\": 0.5}]}]}", "psu_lost", NULL, "psu_lost value");
	parse_fails("{\"devices\": [{\"faults\": [{\"at\": 1, \"kind\": \"cell_insert\", \"slot\": 0}]}]}",
	            "needs a \"cell\"", NULL, "insert without a cell");
	parse_fails("{\"devices\": [{\"faults\": [{\"at\": 1, \"kind\": \"cell_insert\", \"slot\": 0, \"cell\": {\"soc\": 2}}]}]}",
	            "devices[0].faults[0].cell", "soc", "insert with a bad cell");
	parse_fails("{\"devices\": [{\"faults\": [{\"at\": 1, \"kind\": \"garbage\", \"count\": 1.5}]}]}", "whole number", NULL, "fractional count");
	parse_fails("{\"devices\": [{\"queue\": [null]}]}", "devices[0].queue[0]", "not null", "null in queue");
	parse_fails("{\"devices\": [{\"serial\": 4294967296}]}", "serial", NULL, "serial beyond 32 bits");
	parse_fails("{\"devices\": [{\"serial\": 5}, {\"serial\": 5}]}", "devices[1]", "already used", "duplicate serial");
	parse_fails("{\"devices\": [{\"vcc\": 12}]}", "vcc", NULL, "vcc out of range");
	parse_fails("{\"devices\": [{\"noise\": {\"v\": 0.1, \"x\": 1}}]}", "devices[0].noise", "unknown key \"x\"", "noise typo");
	parse_fails("{\"count\": 1, \"devices\": [{}, {}]}", "count", NULL, "count below the list");
	parse_fails("{\"seed\": 1.5}", "seed", NULL, "fractional seed");
	parse_fails("{\"seed\": \"12x\"}", "seed", NULL, "seed string with letters");

	/* 65 devices */
	char big[65 * 4 + 32];
	strcpy(big, "{\"devices\": [");
	for (int i = 0; i <= BL_SIM_MAX_DEVICES; i++)
		strcat(big, i ? ",{}" : "{}");
	strcat(big, "]}");
	parse_fails(big, "65 devices", "at most 64", "too many devices");

	/* Error text is bounded by errlen. */
	struct bl_sim_layout l;
	char small[16];
	int rc = bl_sim_layout_parse("{\"devcies\": 1}", 14, "a-long-file-name.json", 0, &l, small, sizeof small);
	ok(rc == BL_ERR_ARG && strlen(small) == sizeof small - 1, "message truncated to errlen");
	rc = bl_sim_layout_parse("{\"devcies\": 1}", 14, "x", 0, &l, NULL, 0);
	is_int(rc, BL_ERR_ARG, "NULL err buffer is fine");
}

static void test_files(void)
{
	struct bl_sim_layout l;
	int rc = bl_sim_layout_load("tests/data/layouts/no-such.json", 0, &l, err, sizeof err);
	ok(rc == BL_ERR_NOTFOUND && strstr(err, "tests/data/layouts/no-such.json: "), "missing file: %s", err);
	rc = bl_sim_layout_load("tests/data/layouts", 0, &l, err, sizeof err);
	ok(rc < 0 && strstr(err, "tests/data/layouts"), "a directory is refused: %s", err);

	static const char *const files[] = {
		"tests/data/layouts/mixed.json", "tests/data/layouts/batch.json",
		"tests/data/layouts/faults.json", "tests/data/layouts/empty-slots.json",
		"docs/examples/layout-mixed.json",
	};
	for (size_t i = 0; i < BL_ARRAY_LEN(files); i++) {
		rc = bl_sim_layout_load(files[i], 0, &l, err, sizeof err);
		is_int(rc, BL_OK, "%s loads %s", files[i], err);
		bl_sim_layout_free(&l);
	}
	rc = bl_sim_layout_load("tests/data/layouts/batch.json", 0, &l, err, sizeof err);
	ok(rc == BL_OK && l.ndevices == 8 && l.devices[7].serial_num == 2007 && l.devices[7].nqueue == 4,
	   "batch: eight units with queues");
	bl_sim_layout_free(&l);
	rc = bl_sim_layout_load("tests/data/layouts/faults.json", 0, &l, err, sizeof err);
	ok(rc == BL_OK && l.devices[0].nfaults == 13, "faults: every kind");
	int kinds = 0;
	for (int i = 0; rc == BL_OK && i < l.devices[0].nfaults; i++)
		kinds |= 1 << l.devices[0].faults[i].kind;
	is_int(kinds, 0x1FFE, "faults: all twelve kinds present");
	bl_sim_layout_free(&l);
	rc = bl_sim_layout_load("tests/data/layouts/mixed.json", 0, &l, err, sizeof err);
	ok(rc == BL_OK && l.devices[1].serial_num == 1 && l.devices[1].device_id == 2
	   && l.devices[1].cells[0].temp_c == 20 && l.devices[1].cells[2].ambient_c == 5
	   && l.devices[0].cells[3].reversed, "mixed: serial split, per-cell values");
	bl_sim_layout_free(&l);
}

static void round_trip(const struct bl_sim_layout *a, const char *what)
{
	char *text = bl_sim_layout_describe(a);
	ok(text != NULL, "%s: describe", what);
	if (!text)
		return;
	struct bl_sim_layout b;
	int rc = bl_sim_layout_parse(text, strlen(text), "describe", 12345, &b, err, sizeof err);
	is_int(rc, BL_OK, "%s: description parses %s", what, err);
	if (rc == BL_OK) {
		is_int(b.ndevices, a->ndevices, "%s: same device count", what);
		int same = b.ndevices == a->ndevices;
		for (int i = 0; same && i < a->ndevices; i++)
			same = memcmp(&a->devices[i], &b.devices[i], sizeof a->devices[i]) == 0;
		ok(same, "%s: identical configurations (bitwise)", what);
		char *again = bl_sim_layout_describe(&b);
		ok(again && strcmp(text, again) == 0, "%s: description is stable", what);
		free(again);
		bl_sim_layout_free(&b);
	}
	free(text);
}

static void test_describe(void)
{
	struct bl_sim_layout l;
	bl_sim_layout_default(&l, 2, 0xFEDCBA9876543210ULL);
	char *text = bl_sim_layout_describe(&l);
	ok(text && strstr(text, "\"serial\": 1001") && strstr(text, "\"profile\": \"nmc18650\"")
	   && strstr(text, "\"self_discharge_per_day\"") && strstr(text, "\"ocv\": [[0, 3]"),
	   "describe lists serials, profiles and every parameter");
	ok(text && strstr(text, "\"seed\": \"18364758544493064720\""), "a 64-bit seed is written as a string");
	free(text);
	round_trip(&l, "default");
	bl_sim_layout_free(&l);

	static const char *const files[] = {
		"tests/data/layouts/mixed.json", "tests/data/layouts/faults.json",
		"tests/data/layouts/batch.json", "tests/data/layouts/empty-slots.json",
	};
	for (size_t i = 0; i < BL_ARRAY_LEN(files); i++) {
		if (bl_sim_layout_load(files[i], 3, &l, err, sizeof err) == BL_OK) {
			round_trip(&l, files[i]);
			bl_sim_layout_free(&l);
		} else {
			ok(0, "%s: %s", files[i], err);
		}
	}

	/* Awkward doubles survive too. */
	bl_sim_layout_default(&l, 1, 0);
	l.devices[0].cells[0].r0_ohm = 0.1 + 0.2;
	l.devices[0].cells[0].soc = 1.0 / 3.0;
	l.devices[0].cells[1].capacity_ah = 5e-324 + 2.0;
	l.devices[0].noise_v = 1e-7;
	round_trip(&l, "awkward doubles");
	bl_sim_layout_free(&l);

	struct bl_sim_layout none = { 0, NULL };
	text = bl_sim_layout_describe(&none);
	ok(text && strstr(text, "\"count\": 0"), "describe of an empty layout");
	free(text);
}

int main(void)
{
	plan_lazy();
	test_default();
	test_parse();
	test_parse_counts();
	test_errors();
	test_files();
	test_describe();
	return done_testing();
}
