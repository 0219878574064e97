-- batlab.results (with batlab.fsutil, batlab.csv): every file and column,
-- flushing, safe names, summary math, determinism.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local results = require "batlab.results"
local fsutil = require "batlab.fsutil"
local csv = require "batlab.csv"
local lfs = require "lfs"
local cjson = require "cjson.safe"

local TMP = assert(fsutil.tmpdir("test-results"))
local EPOCH = 1700000000   -- 2023-11-14T22:13:20Z

local function read(path)
	return fsutil.read_file(path)
end

local function rows_of(path)
	return csv.parse(assert(read(path)))
end

local function listdir(path)
	local out = {}
	for e in lfs.dir(path) do
		if e ~= "." and e ~= ".." then
			out[#out + 1] = e
		end
	end
	table.sort(out)
	return out
end

-- csv helpers ----------------------------------------------------------------

t.is(csv.field("plain"), "plain", "csv.field plain")
t.is(csv.field('a,"b"'), '"a,""b"""', "csv.field quotes and doubles")
t.is(csv.field("two\nlines"), '"two\nlines"', "csv.field newline")
t.is(csv.field(nil), "", "csv.field nil")
t.is(csv.num(-0.00001, "%.4f"), "0.0000", "csv.num: no negative zero")
t.is(csv.num(0 / 0, "%.4f"), "", "csv.num: NaN -> empty")
t.is(csv.num(math.huge, "%.4f"), "", "csv.num: inf -> empty")
t.is(csv.num(2.6, "%d"), "3", "csv.num %d rounds")
t.is(csv.trimmed(62.5229930), "62.522993", "csv.trimmed")
t.is(csv.trimmed(60), "60.0", "csv.trimmed keeps one decimal")
t.is_deeply(csv.parse('a,"b,c"\n"x\n""y""",z\n'), { { "a", "b,c" }, { 'x\n"y"', "z" } }, "csv.parse quoted fields")
t.is_deeply(csv.parse("a,,\r\n"), { { "a", "", "" } }, "csv.parse empty fields, CRLF")

-- JSON encoder -----------------------------------------------------------------

t.is(results.json_encode({ b = 1, a = { 1, 2.5 }, c = "x\"\n" }),
	'{\n  "a": [\n    1,\n    2.5\n  ],\n  "b": 1,\n  "c": "x\\"\\n"\n}\n', "json: sorted keys, indent, escapes")
t.is(results.json_encode({ x = 0 / 0, y = results.null, z = {} }),
	'{\n  "x": null,\n  "y": null,\n  "z": []\n}\n', "json: NaN and null; empty table is []")
t.is(results.json_encode(results.object({})), "{}\n", "json: results.object() is {}")
t.is(results.json_encode(3.0), "3.0\n", "json: integral float keeps .0")
t.ok(cjson.decode(results.json_encode({ s = "caf\233" })) ~= nil, "json: non-UTF-8 bytes still give valid JSON")
t.is(results.json_encode({ "cells/A1.csv", 1 / 3, -0.0, 1700000000, 123456789012.0, true, "\1\t" }),
	'[\n  "cells/A1.csv",\n  0.3333333333,\n  -0.0,\n  1700000000,\n  123456789012.0,\n  true,\n  "\\u0001\\t"\n]\n',
	"json: paths keep their /, floats %.10g, whole numbers exact, control characters escaped")
t.is(results.json_encode({ [2] = "b", [10] = "a" }), '{\n  "10": "a",\n  "2": "b"\n}\n', "json: a sparse array is an object")
t.ok(not pcall(require("cjson").encode, 0 / 0), "json: cjson itself is left as it was (NaN still refused)")
local deep = {}
deep[1] = deep
t.ok(not pcall(results.json_encode, deep), "json: a cycle is an error, not a hang")

-- Safe names --------------------------------------------------------------------

local sn = fsutil.safe_name
t.is(sn("A1"), "A1", "safe_name keeps a plain name")
t.is(sn("My-Cell_0987"), "My-Cell_0987", "safe_name keeps - and _")
t.is(sn("../evil"), "__evil", "safe_name ../evil")
t.is(sn("a/b"), "a_b", "safe_name a/b")
t.is(sn("a\\b"), "a_b", "safe_name backslash")
t.is(sn(""), "unnamed", "safe_name empty")
t.is(sn(nil), "unnamed", "safe_name nil")
t.is(sn(".."), "_", "safe_name ..")
t.is(sn("."), "_", "safe_name .")
t.is(sn(".hidden"), "_hidden", "safe_name leading dot")
t.is(sn("-rf"), "_rf", "safe_name leading dash")
t.is(sn("a\0b\nc\127"), "a_b_c_", "safe_name control characters")
t.is(sn("x..y"), "x_y", "safe_name inner ..")
t.is(sn("name."), "name_", "safe_name trailing dot")
t.is(sn("CON"), "CON_", "safe_name Windows device name")
t.is(sn("a:b*c?d"), "a_b_c_d", "safe_name Windows-refused characters")
t.is(sn("Zelle ü"), "Zelle ü", "safe_name keeps UTF-8")
local long = string.rep("x", 300)
local l1 = sn(long)
t.ok(#l1 <= fsutil.MAX_NAME, "safe_name: very long name cut to MAX_NAME")
t.like(l1, "~%x%x%x%x%x%x%x%x$", "safe_name: cut name ends with a hash")
t.isnt(sn(long .. "y"), l1, "safe_name: two long names stay distinct")
local u = sn(string.rep("é", 80))
t.ok(utf8.len(u) ~= nil, "safe_name: cut at a UTF-8 boundary")
local used = {}
t.is(fsutil.unique_name("A1", used, ".csv"), "A1.csv", "unique_name first")
t.is(fsutil.unique_name("A1", used, ".csv"), "A1-2.csv", "unique_name duplicate")
t.is(fsutil.unique_name("a1", used, ".csv"), "a1-3.csv", "unique_name ignores case")

-- default_dir ---------------------------------------------------------------------

t.is(results.default_dir("batlab-runs", "cycle test", EPOCH), "batlab-runs/cycle test-20231114-221320", "default_dir")
t.is(results.default_dir(nil, "../x", EPOCH), "batlab-runs/__x-20231114-221320", "default_dir: safe name, default base")
t.is(results.iso_time(EPOCH + 1.2345), "2023-11-14T22:13:21.235Z", "iso_time milliseconds")

-- median and median_mid ----------------------------------------------------------------

t.is(results.median({ 3, 1, 2 }), 2, "median odd")
t.is(results.median({ 4, 1, 3, 2 }), 2.5, "median even: mean of the middle two")
t.is(results.median({}), nil, "median empty -> nil")
-- charges 0..10: middle 50 % is 2.5..7.5 -> values at q 3,5,7 = 30,50,70
local zs = { 10, 20, 30, 50, 70, 90, 100 }
local qs = { 0, 2, 3, 5, 7, 9, 10 }
local m, n = results.median_mid(zs, qs)
t.is(m, 50, "median_mid: middle 50 % of the charge range")
t.is(n, 3, "median_mid: samples used")
m, n = results.median_mid({ 10, 20, 30, 40 }, { 2.5, 4, 6, 7.5 }, 0, 10)
t.is(m, 25, "median_mid: edges included, explicit range, even count")
t.is(n, 4, "median_mid: 4 used")
m, n = results.median_mid({ 0.05, 0 / 0, -1, 0, 0.07 }, { 5, 5, 5, 5, 5 })
t.near(m, 0.06, 1e-12, "median_mid: NaN, negative and zero skipped; equal charges all count")
t.is(n, 2, "median_mid: 2 valid")
m, n = results.median_mid({}, {})
t.ok(m == nil and n == 0, "median_mid: empty -> nil, 0 (the GUI's empty median)")
m = results.median_mid({ 1, 2, 3 }, nil)
t.is(m, 2, "median_mid without charges: all samples")

-- step_kind ----------------------------------------------------------------------------

t.is(results.step_kind({ step_name = "PRECHARGE" }), "charge", "kind PRECHARGE")
t.is(results.step_kind({ step_name = "CHARGEREST" }), "rest", "kind CHARGEREST")
t.is(results.step_kind({ step_name = "DISCHARGE" }), "discharge", "kind DISCHARGE")
t.is(results.step_kind({ step_name = "DISCHARGEREST" }), "rest", "kind DISCHARGEREST")
t.is(results.step_kind({ step_name = "POSTDISCHARGE" }), "storage", "kind POSTDISCHARGE = storage (not a cycle discharge)")
t.is(results.step_kind({ step_name = "x", avg_i = -1 }), "discharge", "kind from avg_i")
t.is(results.step_kind({ step_name = "DISCHARGE", kind = "other" }), "other", "explicit kind wins")

-- summarize ----------------------------------------------------------------------------

-- A Lexcelon cycle test: precharge (cycle 0), 1 warm-up, 2 measurement cycles
-- (DISCHARGE, rest, CHARGE, rest each), storage discharge.
local function cycle_steps()
	local st = {}
	local function add(cycle, kind, name, ah, wh, extra)
		local s = { cycle = cycle, cycle_kind = kind, step = #st + 1, step_name = name, charge_ah = ah,
			energy_wh = wh, duration = 3600, avg_v = name == "DISCHARGE" and 3.6 or 3.9,
			temp_start = 25, temp_end = 25 + #st % 3 }
		for k, v in pairs(extra or {}) do
			s[k] = v
		end
		st[#st + 1] = s
	end
	add(0, "other", "PRECHARGE", 1.0, 4.0)
	add(0, "other", "CHARGEREST", 0, 0)
	add(1, "warmup", "DISCHARGE", 2.5, 9.0)
	add(1, "warmup", "DISCHARGEREST", 0, 0)
	add(1, "warmup", "CHARGE", 2.6, 10.0)
	add(1, "warmup", "CHARGEREST", 0, 0)
	add(2, "measurement", "DISCHARGE", 2.4, 8.8, { avg_v = 3.5, duration = 1000 })
	add(2, "measurement", "DISCHARGEREST", 0, 0)
	add(2, "measurement", "CHARGE", 2.5, 9.6)
	add(2, "measurement", "CHARGEREST", 0, 0)
	add(3, "measurement", "DISCHARGE", 2.2, 8.0, { avg_v = 3.7, duration = 3000 })
	add(3, "measurement", "DISCHARGEREST", 0, 0)
	add(3, "measurement", "CHARGE", 2.3, 8.9)
	add(3, "measurement", "CHARGEREST", 0, 0)
	add(3, "other", "POSTDISCHARGE", 1.0, 3.7)
	return st
end

local rec = { name = "A1", serial = 7, channel = 0, steps = cycle_steps(),
	impedance = { values = { 0.05, 0.06, 0.07, 0.5 }, charges = { 0.1, 1.2, 1.3, 2.4 } }, charge_min = 0, charge_max = 2.4 }
local sum = results.summarize(rec, { threshold = 0.1 })
t.is(#sum.cycles, 4, "summary: cycles 0..3")
t.is(sum.cycles[2].cycle, 1, "summary: cycle 1")
t.is(sum.cycles[2].kind, "warmup", "summary: cycle 1 is warm-up")
t.near(sum.cycles[2].discharge_ah, 2.5, 1e-12, "cycle 1 discharge_ah")
t.near(sum.cycles[2].charge_ah, 2.6, 1e-12, "cycle 1 charge_ah")
t.near(sum.cycles[2].discharge_wh, 9.0, 1e-12, "cycle 1 discharge_wh")
t.near(sum.cycles[2].charge_wh, 10.0, 1e-12, "cycle 1 charge_wh")
t.is(sum.cycles[2].coulombic_efficiency, nil, "cycle 1: no CE (filled by the precharge, unknown start)")
t.near(sum.cycles[3].coulombic_efficiency, 2.4 / 2.6, 1e-12, "cycle 2 CE = discharge 2 / the charge of cycle 1 that filled it")
t.near(sum.cycles[4].coulombic_efficiency, 2.2 / 2.5, 1e-12, "cycle 3 CE = discharge 3 / charge 2")
t.near(sum.cycles[4].energy_efficiency, 8.0 / 9.6, 1e-12, "cycle 3 energy efficiency")
t.near(sum.cycles[4].discharge_ah, 2.2, 1e-12, "storage discharge not in the cycle's discharge_ah")
t.near(sum.capacity_ah, (2.4 + 2.2) / 2, 1e-12, "capacity_ah: mean of the measurement cycles only")
t.near(sum.capacity_c, (2.4 + 2.2) / 2 * 3600, 1e-9, "capacity_c in coulombs")
t.is(sum.capacity_cycles, 2, "capacity from 2 cycles")
t.near(sum.capacity_min_ah, 2.2, 1e-12, "capacity_min_ah")
t.near(sum.capacity_max_ah, 2.4, 1e-12, "capacity_max_ah")
t.near(sum.energy_wh, (8.8 + 8.0) / 2, 1e-12, "energy_wh: mean of the measurement cycles")
t.near(sum.coulombic_efficiency, (2.4 / 2.6 + 2.2 / 2.5) / 2, 1e-12, "mean CE of the measurement cycles")
t.near(sum.avg_voltage, (3.5 * 1000 + 3.7 * 3000) / 4000, 1e-12, "avg voltage weighted by discharge time")
t.is(sum.temp_rise_c, 2.0, "temperature rise: the largest step rise")
t.is(sum.impedance_ohm, 0.065, "impedance: median of the mid-charge samples")
t.is(sum.impedance_samples, 2, "impedance samples used")
t.is(sum.impedance_pass, true, "impedance under the threshold")
t.is(sum.cycles_completed, 3, "cycles completed (1..3)")
t.is(sum.verdict, "pass", "verdict pass")
t.like(sum.reason, "capacity 2%.3000 Ah, impedance 0%.0650 ohm <= 0%.1000 ohm", "pass reason")

sum = results.summarize(rec, { threshold = 0.06 })
t.is(sum.verdict, "fail", "impedance above the threshold -> fail")
t.is(sum.impedance_pass, false, "impedance_pass false")
t.like(sum.reason, "impedance 0%.0650 ohm is above 0%.0600 ohm", "fail reason")

local rec2 = { name = "A2", steps = cycle_steps() }
rec2.steps[11].safety_stop = { "TEMP_LIMIT_DCHG" }
sum = results.summarize(rec2, {})
t.is(sum.verdict, "fail", "safety stop -> fail")
t.like(sum.reason, "safety stop in step 11 %(DISCHARGE%): TEMP_LIMIT_DCHG", "safety stop reason")
t.near(sum.capacity_ah, 2.4, 1e-12, "a safety-stopped discharge is left out of the capacity")
t.is(sum.capacity_cycles, 1, "one capacity cycle left")
t.is(sum.impedance_ohm, nil, "no impedance measured -> nil")
t.is(sum.impedance_pass, nil, "no impedance -> no pass/fail")
t.is(results.summarize(rec, { error = "cell removed" }).verdict, "error", "error verdict")
t.is(results.summarize(rec, { complete = false }).verdict, "incomplete", "incomplete verdict")
local given = results.summarize(rec, { verdict = "fail", reason = "capacity too low" })
t.ok(given.verdict == "fail" and given.reason == "capacity too low", "a given verdict is kept")
sum = results.summarize({ name = "D", steps = { { cycle = 1, cycle_kind = "measurement", step = 1,
	step_name = "DISCHARGE", charge_ah = 2.0, energy_wh = 7.2 } } }, {})
t.is(sum.capacity_ah, 2.0, "discharge test: capacity from one measurement discharge")
t.is(sum.cycles[1].coulombic_efficiency, nil, "discharge test: no CE")
t.is(sum.capacity_complete, true, "discharge test ended on its voltage: a complete capacity")
t.is(sum.coulombic_efficiency_note, "no charge before the measurement discharge", "why there is no CE")
t.is(results.summarize({ name = "E", steps = {} }).verdict, "pass", "empty record summarises")

-- a capacity from a discharge that did not reach its end voltage is marked
local function dstep(cycle, ah, reason)
	return { cycle = cycle, cycle_kind = "measurement", step = cycle, step_name = "DISCHARGE",
		charge_ah = ah, energy_wh = ah * 3.6, end_reason = reason }
end
for _, why in ipairs({ "timeout", "removed", "no reports", "time" }) do
	sum = results.summarize({ name = "T", steps = { dstep(1, 0.8, why) } }, {})
	t.ok(sum.capacity_ah == 0.8 and sum.capacity_complete == false
		and sum.capacity_note == "cycle 1's discharge ended on " .. why .. ", before its end voltage",
		("a discharge ended on %s: capacity marked incomplete (%s)"):format(why, tostring(sum.capacity_note)))
end
t.like(sum.reason, "capacity 0%.8000 Ah %(incomplete: cycle 1's discharge ended on time", "and the reason says so")
t.is(sum.cycles[1].discharge_complete, false, "the cycle says so")
local st2 = dstep(1, 0.5, "voltage")
st2.safety_stop = { "TEMP_LIMIT_DCHG" }
sum = results.summarize({ name = "S", steps = { st2 } }, {})
t.ok(sum.capacity_ah == 0.5 and sum.capacity_complete == false and sum.capacity_note:find("safety stop"),
	"a safety-stopped discharge alone: its capacity, marked incomplete")
-- a complete cycle wins; the incomplete one is left out and named
local mixed = cycle_steps()
mixed[11].end_reason = "removed"
sum = results.summarize({ name = "M", steps = mixed }, {})
t.near(sum.capacity_ah, 2.4, 1e-12, "an incomplete discharge is left out when a complete one exists")
t.is(sum.capacity_complete, true, "so the capacity is complete")
t.is(sum.capacity_note, "cycle 3's discharge ended on removed, before its end voltage", "the one left out is named")
t.near(sum.coulombic_efficiency, 2.4 / 2.6, 1e-12, "CE from the complete cycle only")
t.is(sum.coulombic_efficiency_note, nil, "no CE note when there is a CE")
-- CE n/a, and why
local pre = { { cycle = 0, cycle_kind = "precharge", step = 1, step_name = "PRECHARGE", charge_ah = 1.0,
	end_reason = "voltage" }, dstep(1, 2.2, "voltage") }
sum = results.summarize({ name = "P", steps = pre }, {})
t.ok(sum.coulombic_efficiency == nil and sum.coulombic_efficiency_note:find("^no full charge before the measurement discharge"),
	"only the precharge before the measurement: CE n/a, no full charge (" .. tostring(sum.coulombic_efficiency_note) .. ")")
sum = results.summarize({ name = "N", steps = { { cycle = 1, step_name = "CHARGE", charge_ah = 1 } } }, {})
t.is(sum.coulombic_efficiency_note, "no measurement discharge", "no measurement discharge: CE n/a says so")

-- A full run -------------------------------------------------------------------------

-- Writes a small, fixed run into dir; returns the run (closed) and the cell
-- writer of A1 and the contents read before close.
local function scripted_run(dir)
	local now = 0
	local run = assert(results.open(dir, { start_time = EPOCH, clock = function() return now end,
		settings = { acceptableImpedanceThreshold = 0.1, cellPlaylistName = "P" },
		procedure = "cycle-test", devices = { { serial = 262209, firmware = 4 } } }))
	local before = {}
	local a = assert(run:cell("A1", { serial = 262209, channel = 0 }))
	local b = assert(run:cell("../evil", { serial = 262209, channel = 1 }))
	run:event("run started", 0)
	-- What the recorder saw (its rows are tested in test_record.lua): 21
	-- samples, |Ah| 0..0.2, an impedance every fifth.
	local z = { values = {}, charges = {} }
	for i = 0, 20, 5 do
		z.values[#z.values + 1] = 0.05 + i * 0.001
		z.charges[#z.charges + 1] = i * 0.01
	end
	a:samples({ rows = 21, charge_min = 0, charge_max = 0.2 }, z)
	b:samples({ rows = 21, charge_min = 0, charge_max = 0.1 })
	now = 30
	assert(a:step{ cycle = 1, cycle_kind = "measurement", step = 1, step_name = "DISCHARGE", start = 0,
		duration = 30, end_reason = "voltage", charge_ah = 0.2, energy_wh = 0.74, avg_v = 3.9, avg_i = -2.0,
		temp_start = 25, temp_end = 27, impedance = 0.06 })
	before.steps = read(dir .. "/steps.csv")
	assert(b:step{ cycle = 0, cycle_kind = "other", step = 1, step_name = "PRECHARGE", start = 0,
		duration = 30, end_reason = "safety", safety_stop = { "TEMP_LIMIT_CHG" }, charge_ah = 0.1,
		energy_wh = 0.37, avg_v = 3.7, avg_i = 0.33, temp_start = 25, temp_end = 46 })
	b:event("safety stop: TEMP_LIMIT_CHG", 30)
	before.events = read(dir .. "/events.log")
	a:summary{ note = "extra field" }
	before.summary = read(dir .. "/summary.json")
	before.summary_csv = read(dir .. "/summary.csv")
	before.series = a:series()
	before.run_json = read(dir .. "/run.json")
	local log = assert(run:lexcelon_log("P", '{"cellPlaylistName": "P"}'))
	log:level1{ name = "A1", serial = 262209, channel = 0, time = 1.5, voltage = 3.99, current = -2,
		temp_c = 25.1, charge_c = 36, energy_j = 133, state = "DISCHARGE", vcc = 5.01 }
	now = 31
	local ok, err = run:close("completed")
	assert(ok, err)
	return run, before
end

local D1 = TMP .. "/nested/deeper/run1"
local run, before = scripted_run(D1)
local function a_path_of()
	return before.series
end
t.ok(fsutil.is_dir(D1), "open: mkdir -p of the run directory")
t.is_deeply(listdir(D1), { "batlab-log_P.csv", "cells", "events.log", "run.json", "steps.csv", "summary.csv", "summary.json" },
	"run directory: exactly the documented files (no temp files left)")
t.is_deeply(listdir(D1 .. "/cells"), { "A1.csv", "__evil.csv" }, "cells/: safe names, nothing outside")

-- cells/A1.csv
local rows = rows_of(D1 .. "/cells/A1.csv")
local want_header = { "Test Time / s", "Step Time / s", "Cycle", "Cycle Kind", "Step", "Step Name", "Mode",
	"Voltage / V", "Current / A", "Temperature / degC", "Charge / Ah", "Energy / Wh", "Impedance / Ohm",
	"VCC / V", "Date Time", "Errors" }
t.is_deeply(rows[1], want_header, "cell CSV header")
t.is(#rows, 1, "cell CSV: the writer writes the header (the rows come from the recorder)")
t.is(a_path_of(run), D1 .. "/cells/A1.csv", "series() names the cell's file")

-- steps.csv
rows = rows_of(D1 .. "/steps.csv")
t.is_deeply(rows[1], { "Cell", "Serial", "Channel", "Cycle", "Cycle Kind", "Step", "Step Name", "Step Kind",
	"Start / s", "Duration / s", "End Reason", "Safety Stop", "Charge / Ah", "Energy / Wh", "Avg Voltage / V",
	"Avg Current / A", "Temperature Start / degC", "Temperature End / degC", "Temperature Rise / degC",
	"Impedance / Ohm" }, "steps.csv header")
t.is(#rows, 3, "steps.csv: header + 2 rows")
t.is_deeply(rows[2], { "A1", "262209", "0", "1", "measurement", "1", "DISCHARGE", "discharge", "0.000", "30.000",
	"voltage", "", "0.200000", "0.740000", "3.9000", "-2.0000", "25.00", "27.00", "2.00", "0.06000" }, "steps.csv A1 row")
t.is(rows[3][1], "../evil", "steps.csv keeps the cell's real name")
t.is(rows[3][12], "TEMP_LIMIT_CHG", "steps.csv safety stop")
t.is(rows[3][19], "21.00", "temperature rise computed")
t.like(before.steps, "\nA1,262209,0,1,measurement,1,DISCHARGE", "steps.csv row flushed before close")

-- events.log
local evtext = read(D1 .. "/events.log")
t.is(evtext, "2023-11-14T22:13:20.000Z        0.000 s  run started\n"
	.. "2023-11-14T22:13:50.000Z       30.000 s  [../evil] safety stop: TEMP_LIMIT_CHG\n", "events.log lines")
t.is(before.events, evtext, "events flushed before close")

-- summary.json / summary.csv
local sj = cjson.decode(read(D1 .. "/summary.json"))
t.is(sj.format, "batlab-summary", "summary.json format")
t.is(#sj.cells, 2, "summary.json: every cell")
local sa, sb = sj.cells[1], sj.cells[2]
t.is(sa.name, "A1", "summary A1")
t.is(sa.serial, 262209, "summary serial")
t.is(sa.channel, 0, "summary channel")
t.is(sa.verdict, "pass", "A1 pass")
t.is(sa.note, "extra field", "extra summary fields kept")
t.is(sa.capacity_ah, 0.2, "A1 capacity_ah")
t.is(sa.file, "cells/A1.csv", "summary names the cell's file")
t.is(sa.impedance_threshold, 0.1, "threshold from the run's settings (acceptableImpedanceThreshold)")
t.ok(sa.impedance_ohm ~= nil and sa.impedance_samples > 0, "A1 impedance from mid-charge samples")
t.is(#sa.cycles, 1, "A1 one cycle")
for _, k in ipairs({ "cycle", "kind", "charge_ah", "discharge_ah", "charge_wh", "discharge_wh", "coulombic_efficiency" }) do
	t.ok(sa.cycles[1][k] ~= nil, "per-cycle field " .. k)
end
t.is(sa.cycles[1].charge_ah, cjson.null, "absent numbers are null, not missing")
t.is(sb.name, "../evil", "summary of the cell without a summary call")
t.is(sb.verdict, "incomplete", "no summary call -> incomplete at close")
t.like(sb.reason, "when the run ended %(completed%)", "incomplete reason")
t.like(before.summary, '"name": "A1"', "summary.json written at cw:summary, before close")
t.ok(not before.summary:find("evil"), "summary.json before close holds only the summarised cell")
rows = rows_of(D1 .. "/summary.csv")
t.is_deeply(rows[1], { "Cell", "Serial", "Channel", "Verdict", "Reason", "Capacity / Ah", "Capacity / C",
	"Capacity Min / Ah", "Capacity Max / Ah", "Capacity Cycles", "Energy / Wh", "Coulombic Efficiency",
	"Avg Voltage / V", "Temperature Rise / degC", "Impedance / Ohm", "Impedance Samples",
	"Impedance Threshold / Ohm", "Impedance Pass", "Cycles", "Safety Stops", "Capacity Complete",
	"Capacity Note", "Coulombic Efficiency Note" }, "summary.csv header")
t.is(#rows, 3, "summary.csv: header + 2 cells")
t.is(rows[2][4], "pass", "summary.csv verdict")
t.is(rows[2][6], "0.200000", "summary.csv capacity")
t.is(rows[2][18], "true", "summary.csv impedance pass")
t.is(rows[3][4], "incomplete", "summary.csv incomplete cell")
t.is(rows[3][20], "1", "summary.csv safety stops")
t.like(before.summary_csv, "\nA1,262209,0,pass,", "summary.csv written before close")

-- run.json
local rj = cjson.decode(read(D1 .. "/run.json"))
t.is(rj.format, "batlab-run", "run.json format")
t.is(rj.procedure, "cycle-test", "run.json procedure")
t.is(rj.settings.cellPlaylistName, "P", "run.json settings")
t.is(rj.devices[1].serial, 262209, "run.json devices")
t.ok(rj.versions.batlab ~= nil and rj.versions.lua ~= nil, "run.json versions")
t.is(rj.start, "2023-11-14T22:13:20.000Z", "run.json start")
t.is(rj.start_epoch, EPOCH, "run.json start_epoch")
t.is(rj["end"], "2023-11-14T22:13:51.000Z", "run.json end (start + clock at close)")
t.is(rj.duration_s, 31, "run.json duration")
t.is(rj.outcome.status, "completed", "run.json outcome")
t.is(#rj.cells, 2, "run.json cells")
t.is(rj.cells[2].name, "../evil", "run.json cell name")
t.is(rj.cells[2].file, "cells/__evil.csv", "run.json cell file")
t.is(rj.cells[2].channel, 1, "run.json cell channel")
local bj = cjson.decode(before.run_json)
t.is(bj.outcome, cjson.null, "run.json before close: no outcome yet")
t.is(bj["end"], cjson.null, "run.json before close: no end yet")
t.is(bj.start, "2023-11-14T22:13:20.000Z", "run.json written at open")

-- Lexcelon log in the run directory
local lx = read(D1 .. "/batlab-log_P.csv")
t.like(lx, '^"{""cellPlaylistName"": ""P""}",,,', "batlab-log_<playlist>.csv written in the run")
t.like(lx, "\nA1,262209,0,2023%-11%-14 %d%d:13:21%.500000,3%.9900,2%.0000,", "Lexcelon timestamp from the run's start")

-- close: idempotent, writers refuse afterwards
t.is(run:close("failed"), true, "close twice: fine")
t.is(cjson.decode(read(D1 .. "/run.json")).outcome.status, "completed", "second close changes nothing")
local okw, werr = run:event("late")
t.ok(okw == nil and werr:find("closed"), "event after close -> nil, err")
okw, werr = run:cell("late")
t.ok(okw == nil and werr:find("closed"), "cell after close -> nil, err")

-- Determinism: the same run twice gives the same bytes.
local D2 = TMP .. "/run2"
scripted_run(D2)
for _, f in ipairs({ "run.json", "steps.csv", "summary.json", "summary.csv", "events.log", "cells/A1.csv",
		"cells/__evil.csv", "batlab-log_P.csv" }) do
	t.is(read(D2 .. "/" .. f), read(D1 .. "/" .. f), "deterministic: " .. f .. " byte-identical")
end

-- Existing directories ---------------------------------------------------------------

local r2, oerr = results.open(D1, { start_time = EPOCH })
t.ok(r2 == nil and oerr:find("exists and is not empty"), "an existing non-empty run directory is refused")
local keep = assert(io.open(D1 .. "/notes.txt", "w"))
keep:write("mine")
keep:close()
r2 = assert(results.open(D1, { start_time = EPOCH, overwrite = true, clock = function() return 0 end }))
t.ok(not fsutil.exists(D1 .. "/cells/__evil.csv"), "overwrite removes the old run's cell files")
t.ok(fsutil.exists(D1 .. "/notes.txt"), "overwrite leaves other files alone")
r2:close()
local E = TMP .. "/empty"
assert(lfs.mkdir(E))
r2 = results.open(E, { start_time = EPOCH, clock = function() return 0 end })
t.ok(r2 ~= nil, "an existing empty directory is fine")
r2:close()
local F = TMP .. "/afile"
assert(io.open(F, "w")):close()
r2, oerr = results.open(F, {})
t.ok(r2 == nil and oerr:find("not a directory"), "a file in the way is refused")

-- Names: collisions, odd names, never outside the run -------------------------------------

local D3 = TMP .. "/names"
local r3 = assert(results.open(D3, { start_time = EPOCH, clock = function() return 0 end }))
local odd = { "../evil", "a/b", "", "A1", "A1", "a1", string.rep("n", 400), "/etc/passwd", "..", ".", "\n" }
for _, name in ipairs(odd) do
	assert(r3:cell(name, {}))
end
local files = listdir(D3 .. "/cells")
t.is(#files, #odd, "one file per cell, duplicates disambiguated")
local all_inside = true
for _, f in ipairs(files) do
	if f:find("/") or f == ".." or f:sub(1, 1) == "." or #f > fsutil.MAX_NAME + 8 then
		all_inside = false
	end
end
t.ok(all_inside, "no cell file name escapes cells/ or is hidden")
t.is_deeply(listdir(TMP), { "afile", "empty", "names", "nested", "run2" }, "nothing created beside the run directories")
t.ok(fsutil.exists(D3 .. "/cells/A1.csv") and fsutil.exists(D3 .. "/cells/A1-2.csv") and fsutil.exists(D3 .. "/cells/a1-3.csv"),
	"A1, A1, a1 -> A1.csv, A1-2.csv, a1-3.csv")
t.ok(fsutil.exists(D3 .. "/cells/unnamed.csv"), "empty name -> unnamed.csv")
t.ok(fsutil.exists(D3 .. "/cells/a_b.csv"), "a/b -> a_b.csv")
r3:close()

-- close from an error path: <close> and pcall -----------------------------------------------

local D4 = TMP .. "/errpath"
local okp = pcall(function()
	local r <close> = assert(results.open(D4, { start_time = EPOCH, clock = function() return 5 end }))
	local c = r:cell("X", { channel = 2 })
	c:samples({ rows = 1 })
	error("boom")
end)
t.ok(not okp, "the body failed")
local rj4 = cjson.decode(read(D4 .. "/run.json"))
t.is(rj4.outcome.status, "error", "<close> after an error: outcome error")
t.like(rj4.outcome.message, "boom", "outcome message")
t.is(cjson.decode(read(D4 .. "/summary.json")).cells[1].verdict, "incomplete", "summary.json complete after an error")
t.is(#rows_of(D4 .. "/cells/X.csv"), 1, "cell CSV intact after an error (its header)")

local D5 = TMP .. "/outcome"
local r5 = assert(results.open(D5, { start_time = EPOCH, clock = function() return 0 end }))
r5:write_meta({ warnings = { "w1" }, overwrite = true })
t.is(cjson.decode(read(D5 .. "/run.json")).warnings[1], "w1", "write_meta rewrites run.json")
t.is(cjson.decode(read(D5 .. "/run.json")).overwrite, nil, "control keys are not written")
r5:close({ status = "interrupted", message = "Ctrl-C" })
local rj5 = cjson.decode(read(D5 .. "/run.json"))
t.ok(rj5.outcome.status == "interrupted" and rj5.outcome.message == "Ctrl-C", "outcome table")

fsutil.rm_rf(TMP)
t.ok(not fsutil.exists(TMP), "temp directory removed")

t.done()
