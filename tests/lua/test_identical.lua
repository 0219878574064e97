-- The speed-ups change how fast a run goes, never what it records: the
-- same seed gives byte-identical files. A short stock cycle test and a
-- user's procedure (waiting on samples in Lua, with on_sample and until)
-- on the virtual Batlab, each file's SHA-256 compared with the one a
-- build before the speed-ups wrote into tests/lua/data/identical.sha256.
--
-- What may differ for reasons of its own is left out: run.json and the
-- journal (paths, argv), report.html, and the Lexcelon log's first line
-- (the settings as JSON, keys in Lua's hash order). A deliberate change
-- of what a run records (a new column, another rounding) regenerates
-- the reference: BATLAB_WRITE_REFERENCE=1 and say so in the commit.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")

local here = arg[0]:match("^(.-)[^/]*$")
local REF = here .. "data/identical.sha256"
local tmp = cli.tmpdir()

cli.write(tmp .. "/short.json", [[
{ "cellPlaylistName": "short", "numWarmupCycles": 1, "numMeasurementCycles": 1,
  "restPeriod": 60, "reportingPeriod": 1, "impedanceReportingPeriod": 120,
  "storageDischarge": true, "highVoltageCutoff": 4.2, "lowVoltageCutoff": 2.8,
  "chargeRate": 2.0, "dischargeRate": 2.0, "prechargeRate": 2.0 }
]])
cli.write(tmp .. "/user.lua", [[
local steps = require "batlab.steps"
return {
  name = "user",
  run = function(cell)
    local seen = 0
    steps.discharge(cell, { current = 1.5, until_v = 3.0, on_sample = function() seen = seen + 1 end })
    steps.rest(cell, 120)
    steps.charge(cell, { current = 1.0, until_v = 4.1, cv = { until_i = 0.2 },
      ["until"] = function(s, sum) if sum.ah > 1.2 then return "enough" end end })
    assert(cell:discharge(0.5))
    local t0 = batlab.now()
    repeat assert(cell:wait()) until batlab.now() - t0 >= 600
    return true, ("%d samples seen"):format(seen)
  end,
}
]])

local code = cli.batlab(("cycletest --settings %s/short.json --sim --seed 11 --quiet --out %s/ct A B C D")
	:format(tmp, tmp))
t.is(code, 0, "the short stock cycle test runs")
code = cli.batlab(("run %s/user.lua --sim --seed 12 --quiet --out %s/user U1 U2"):format(tmp, tmp))
t.is(code, 0, "the user's procedure runs")

local files = {
	"ct/cells/A.csv", "ct/cells/B.csv", "ct/cells/C.csv", "ct/cells/D.csv", "ct/steps.csv",
	"ct/summary.csv", "ct/summary.json", "ct/events.log", "ct/batlab-log_short.csv",
	"user/cells/U1.csv", "user/cells/U2.csv", "user/steps.csv", "user/summary.csv",
	"user/summary.json", "user/events.log",
}

local function sha256(text)
	local path = tmp .. "/hash.in"
	cli.write(path, text)
	local p = io.popen("sha256sum " .. cli.quote(path))
	local out = p:read("a")
	p:close()
	return out:match("^(%x+)")
end

local got, lines = {}, {}
for _, f in ipairs(files) do
	local text = cli.read(tmp .. "/" .. f)
	t.ok(text and #text > 200, f .. " was written")
	if f:match("batlab%-log") then
		text = (text or ""):gsub("^[^\n]*\n", "", 1)
	end
	got[f] = sha256(text or "")
	lines[#lines + 1] = got[f] .. "  " .. f
end

if os.getenv("BATLAB_WRITE_REFERENCE") == "1" then
	cli.write(REF, table.concat(lines, "\n") .. "\n")
	t.diag("wrote " .. REF)
end

local want = {}
for line in (cli.read(REF) or ""):gmatch("[^\n]+") do
	local h, f = line:match("^(%x+)  (.+)$")
	if h then
		want[f] = h
	end
end
for _, f in ipairs(files) do
	t.is(got[f], want[f], f .. " is byte-identical to the reference build's")
end
t.done()
