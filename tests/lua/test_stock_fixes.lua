-- The stock test where it differed from the seed (issue 13), through the
-- real program on the virtual Batlab, checking the files a run writes:
--   * the precharge trickles at the charge trickle settings (it used the
--     discharge ones: with unequal rates it trickled at the wrong current);
--   * the storage discharge is plain: no pulse, no trickle, no taper;
--   * a lowVoltageCutoff below the seed's 2.4324 V floor is refused, naming
--     the range and the option that allows it; with the option the test
--     runs and run.json records it.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local csv = require "batlab.csv"
local cjson = require "cjson"

local tmp = cli.tmpdir()

-- The rows of a cells/<name>.csv as tables keyed by column name.
local function series(path)
	local rows = csv.parse(assert(cli.read(path), path))
	local head, out = rows[1], {}
	for i = 2, #rows do
		local r = {}
		for j, name in ipairs(head) do
			r[name] = rows[i][j]
		end
		r.v, r.i, r.st = tonumber(r["Voltage / V"]), tonumber(r["Current / A"]), tonumber(r["Step Time / s"])
		out[#out + 1] = r
	end
	return out
end

local function cycletest(name, settings_json, extra)
	local file = tmp .. "/" .. name .. ".json"
	cli.write(file, settings_json)
	local out = tmp .. "/" .. name
	local code, o, e = cli.batlab(("cycletest --settings %s --sim --quiet --out %s %s A"):format(file, out,
		extra or ""))
	return code, out, o, e
end

-- ---- the precharge trickles at the charge trickle settings ----------------------------

local code, out, _, err = cycletest("precharge", [[{
  "cellPlaylistName": "P", "numWarmupCycles": 0, "numMeasurementCycles": 1, "restPeriod": 10,
  "impedanceReportingPeriod": 0, "prechargeRate": 2.0, "chargeRate": 2.0, "dischargeRate": 2.0,
  "lowVoltageCutoff": 2.8, "highVoltageCutoff": 4.2,
  "trickleEnable": true, "trickleChrgEngageVoltage": 4.1, "trickleChrgRate": 0.5,
  "trickleDischrgEngageVoltage": 2.9, "trickleDischrgRate": 0.3 }]])
t.is(code, 0, "cycle test with unequal trickle rates passes (" .. err .. ")")
local rows = series(out .. "/cells/A.csv")
-- Until the voltage reaches 4.1 V the precharge rate; from then on the
-- charge trickle rate (the voltage falls back a little at the lower current).
local before, below, trickle, after, wrong, engaged = 0, 0, 0, 0, 0, false
for _, r in ipairs(rows) do
	if r["Step Name"] == "PRECHARGE" and r.st > 5 then
		engaged = engaged or r.v >= 4.1
		if not engaged then
			below = below + 1
			before = before + (math.abs(r.i - 2.0) < 0.05 and 1 or 0)
		else
			after = after + 1
			trickle = trickle + (math.abs(r.i - 0.5) < 0.03 and 1 or 0)
			wrong = wrong + (math.abs(r.i - 0.3) < 0.03 and 1 or 0)
		end
	end
end
t.ok(below > 60 and before == below, ("precharge at 2.0 A up to the charge engage voltage (%d of %d rows)")
	:format(before, below))
t.ok(after > 30 and trickle >= after - 2 and wrong == 0,
	("then the charge trickle: 0.5 A (%d of %d rows; %d at the discharge trickle's 0.3 A)"):format(trickle, after, wrong))

-- ---- the storage discharge is plain --------------------------------------------------

code, out, _, err = cycletest("storage", [[{
  "cellPlaylistName": "S", "numWarmupCycles": 0, "numMeasurementCycles": 1, "restPeriod": 10,
  "impedanceReportingPeriod": 0, "dischargeRate": 2.0, "lowVoltageCutoff": 2.8,
  "storageDischarge": true, "storageDischargeVoltage": 3.7,
  "pulseEnable": true, "pulseDischrgOnTime": 30, "pulseDischrgOffTime": 20, "pulseDischrgOffRate": 0,
  "pulseChrgOnTime": 60, "pulseChrgOffTime": 10,
  "trickleEnable": true, "trickleDischrgEngageVoltage": 3.95, "trickleDischrgRate": 0.3,
  "trickleChrgEngageVoltage": 4.1, "trickleChrgRate": 0.5 }]])
t.is(code, 0, "cycle test with a storage discharge passes (" .. err .. ")")
rows = series(out .. "/cells/A.csv")
local pulsed, storage, plain = 0, 0, 0
for _, r in ipairs(rows) do
	if r["Step Name"] == "DISCHARGE" and r.st > 5 and math.abs(r.i) < 0.05 then
		pulsed = pulsed + 1
	elseif r["Step Name"] == "POSTDISCHARGE" and r.st > 5 then
		storage = storage + 1
		if math.abs(r.i + 2.0) < 0.05 then
			plain = plain + 1
		end
	end
end
t.ok(pulsed > 20, ("the measurement discharge is pulsed (%d rows in the off phase)"):format(pulsed))
t.ok(storage > 30 and plain == storage, ("the storage discharge runs at 2.0 A throughout: no pulse, no trickle"
	.. " (%d of %d rows)"):format(plain, storage))
local steps = cli.read(out .. "/steps.csv")
t.like(steps, "POSTDISCHARGE,storage,[%d.]+,[%d.]+,voltage,", "and ends at the storage voltage")

-- ---- lowVoltageCutoff below the seed's floor ------------------------------------------

local primary = [[{ "cellPlaylistName": "CR123A", "numMeasurementCycles": 1, "chargeRate": 0,
  "dischargeRate": 2.0, "lowVoltageCutoff": 1.0, "impedanceReportingPeriod": 0 }]]
cli.write(tmp .. "/primary.json", primary)
local o
code, o, err = cli.batlab(("dischargetest --settings %s/primary.json --sim --quiet --out %s/p1 A"):format(tmp, tmp))
t.is(code, 2, "a 1.0 V cutoff is refused (exit 2)")
t.like(err, "key 'lowVoltageCutoff' = 1 V is below 2%.4324 V", "naming the key, the value and the floor")
t.like(err, "allowed: 2%.4324%.%.4%.4 V", "the allowed range")
t.like(err, "%-%-set allowLowVoltageCutoff=true", "and the option that allows it")
t.is(cli.read(tmp .. "/p1/run.json"), nil, "nothing ran")

code, o, err = cli.batlab(("dischargetest --settings %s/primary.json --set allowLowVoltageCutoff=true --sim --quiet"
	.. " --out %s/p2 A"):format(tmp, tmp))
t.is(code, 0, "with --set allowLowVoltageCutoff=true the test runs (" .. err .. ")")
local run = cjson.decode(cli.read(tmp .. "/p2/run.json"))
t.is(run.settings.allowLowVoltageCutoff, true, "run.json records allowLowVoltageCutoff")
t.is(run.settings.lowVoltageCutoff, 1.0, "and the 1.0 V cutoff")
local last
for _, r in ipairs(series(tmp .. "/p2/cells/A.csv")) do
	if r["Step Name"] == "DISCHARGE" then
		last = r
	end
end
t.ok(last and last.v < 2.4, ("the discharge went below 2.4 V (%.3f V at the end)"):format(last and last.v or 0))

require("batlab.fsutil").rm_rf(tmp)
t.done()
