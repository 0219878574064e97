-- "Never lose a test": a stock cycle test on virtual Batlabs with faults
-- scheduled in their layouts (a reset mid-charge, a burst of lost
-- replies, a long silence, an open thermistor) ends each affected cell
-- with the right step end and verdict, in bounded time, with a small
-- time series; a short silence is an event, not a failure.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local cjson = require "cjson"
local lfs = require "lfs"

local tmp = cli.tmpdir()
local write, read = cli.write, cli.read

local function batlab_cmd(args)
	return cli.batlab(args, "timeout 20")
end

local quick = tmp .. "/quick.json"
write(quick, [[{ "cellPlaylistName": "quick", "numWarmupCycles": 0, "numMeasurementCycles": 1,
  "restPeriod": 30, "reportingPeriod": 1, "impedanceReportingPeriod": 600, "storageDischarge": false,
  "highVoltageCutoff": 4.2, "lowVoltageCutoff": 2.8 }]])

-- Run the stock cycle test on four cells of a layout with these faults.
local function run(name, faults, extra)
	local layout = tmp .. "/" .. name .. ".json"
	write(layout, cjson.encode { devices = { { faults = faults } } })
	local dir = tmp .. "/" .. name
	local code, out, err = batlab_cmd(("cycletest --settings %s --sim=%s --out %s --quiet %s A B C D")
		:format(quick, layout, dir, extra or ""))
	local sum = cjson.decode(read(dir .. "/summary.json") or "{}")
	local by = {}
	for _, c in ipairs(sum.cells or sum) do
		by[c.name] = c
	end
	return { code = code, out = out, err = err, dir = dir, cells = by,
		events = read(dir .. "/events.log") or "" }
end

local function size(path)
	return lfs.attributes(path, "size") or 0
end

-- ---- a reset mid-charge ------------------------------------------------------------
local r = run("reset", { { at = 600, kind = "reset" } })
t.is(r.code, 1, "a reset mid-charge: the run finishes, exit 1 (" .. r.err:sub(1, 200) .. ")")
for _, n in ipairs { "A", "B", "C", "D" } do
	local c = r.cells[n] or {}
	t.is(c.verdict, "error", n .. ": verdict error")
	t.like(tostring(c.reason), "device reset", n .. ": the reason says device reset")
	t.like(r.events, "%[" .. n .. "%] PRECHARGE ended: device reset", n .. ": the step end in events.log")
	t.ok(size(r.dir .. "/cells/" .. n .. ".csv") < 200000,
		("%s: a small time series (%d bytes)"):format(n, size(r.dir .. "/cells/" .. n .. ".csv")))
end
t.ok(not r.events:find("ended: no reports", 1, true), "the reboot's silence is not taken for the end")
-- the run's watcher logs the devices' news as it comes, not on a clock
t.like(r.events, " 599%.99%d s  Batlab 1000 on sim0 reset; reconnecting\n", "the device's news logged when it came")

-- ---- a burst of lost replies: retried, an event --------------------------------------
r = run("burst", { { at = 300, kind = "no_reply", count = 20 } }, "--timeout 3000")
t.is(r.code, 0, "a burst of 20 lost replies: exit 0 (" .. r.out:sub(1, 300) .. ")")
for _, n in ipairs { "A", "B", "C", "D" } do
	t.is((r.cells[n] or {}).verdict, "pass", n .. ": passes")
end
t.like(r.events, "a report could not be read", "the lost replies are an event")
t.like(r.events, "answers again after", "and so is the end of the silence")
t.ok(not r.events:find("no reports", 1, true), "no step ended on them")

-- ---- a long silence: no reports, channels safe ---------------------------------------
r = run("silence", { { at = 300, kind = "no_reply", count = 400 } }, "--timeout 3000")
t.is(r.code, 1, "a long silence: exit 1")
for _, n in ipairs { "A", "B", "C", "D" } do
	local c = r.cells[n] or {}
	t.is(c.verdict, "error", n .. ": verdict error")
	t.like(tostring(c.reason), "no reports", n .. ": ended with no reports")
end
t.like(r.events, "retrying for up to 10 s", "after the grace")

-- ---- an open thermistor ---------------------------------------------------------------
r = run("therm", { { at = 300, kind = "thermistor_open", slot = 1 } }, "--timeout 3000")
t.is(r.code, 1, "an open thermistor: exit 1")
t.is((r.cells.B or {}).verdict, "error", "its cell: verdict error")
t.like(tostring((r.cells.B or {}).reason), "thermistor", "ended on the thermistor")
t.like(r.events, "%[B%] PRECHARGE: the thermistor reads %-66", "warned in events.log")
t.is((r.cells.A or {}).verdict, "pass", "the other cells go on")

-- ---- allow_bad_thermistor: the step goes on, with one warning ----------------------------
local proc = tmp .. "/charge.lua"
write(proc, [[
local steps = require "batlab.steps"
return { run = function(cell)
	local allow = cell.name == "OK"
	local sum = steps.charge(cell, { current = 1, until_v = 4.2, max_time = 600,
		allow_bad_thermistor = allow })
	return steps.ok(sum), sum.end_reason, not steps.ok(sum) and "error" or nil
end }
]])
local layout = tmp .. "/therm2.json"
write(layout, cjson.encode { devices = { { faults = {
	{ at = 100, kind = "thermistor_open", slot = 0 }, { at = 100, kind = "thermistor_open", slot = 1 } } } } })
local code = batlab_cmd(("run %s --sim=%s --quiet --out %s/t2 --cell 0=OK --cell 1=NO"):format(proc, layout, tmp))
local ev = read(tmp .. "/t2/events.log") or ""
t.is(code, 1, "a run with one cell that does not allow it: exit 1")
t.like(ev, "verdict: OK PASS time", "allow_bad_thermistor = true: the step runs to its end")
local _, warnings = ev:gsub("%[OK%] CHARGE: warning: the thermistor reads", "")
t.is(warnings, 1, "with one warning")
t.like(ev, "verdict: NO ERROR thermistor", "without it: the step ends on the thermistor")

os.execute("rm -rf " .. tmp)
t.done()
