-- The verdict line `batlab cycletest` / `dischargetest` print per cell:
-- a capacity that is not the whole one (a discharge test's timeout) is
-- marked, and the coulombic efficiency is there or says why not.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local cjson = require "cjson"
local lfs = require "lfs"

local tmp = cli.tmpdir()
local write, read = cli.write, cli.read

local batlab_cmd = cli.batlab

local function line_of(out, name)
	return out:match("\n?(" .. name .. " [^\n]*)") or ""
end

-- a discharge test that hits its timeout
local code, out = batlab_cmd(("dischargetest --sim --timeout 600 --set impedanceReportingPeriod=0 --out %s/d1 D1"):format(tmp))
local l = line_of(out, "D1")
t.is(code, 0, "a timeout is a normal end of the discharge test")
t.like(l, "timeout after 60%d s at 3%.%d+ V, before 2%.%d+ V: the capacity is incomplete",
	"the verdict says the timeout ended it")
t.like(l, "capacity 0%.%d+ Ah %(incomplete: cycle 1's discharge ended on timeout, before its end voltage%)",
	"and marks the capacity")
t.like(l, "CE n/a: no charge before the measurement discharge", "CE n/a, and why")
local sj = cjson.decode(read(tmp .. "/d1/summary.json"))
local c = sj.cells[1]
t.ok(c.capacity_complete == false and c.capacity_note:find("timeout"), "summary.json: capacity_complete false, why")
t.like(read(tmp .. "/d1/summary.csv"), "incomplete: cycle 1's discharge ended on timeout", "summary.csv's reason")

-- without the timeout: a whole capacity
code, out = batlab_cmd(("dischargetest --sim --set impedanceReportingPeriod=0 --out %s/d2 D2"):format(tmp))
l = line_of(out, "D2")
t.ok(code == 0 and l:find("capacity %d%.%d+ Ah") and not l:find("incomplete"), "a whole discharge: no mark (" .. l .. ")")

-- a cycle test: one warm-up, one measurement cycle: CE there
code, out = batlab_cmd(("cycletest --sim --set numWarmupCycles=1 --set numMeasurementCycles=1 "
	.. "--set impedanceReportingPeriod=0 --set restPeriod=60 --out %s/c1 C1"):format(tmp))
l = line_of(out, "C1")
t.like(l, "CE 0%.99%d%d", "a cycle test's verdict line has the CE")
-- no warm-up: the measurement discharge follows the precharge only
code, out = batlab_cmd(("cycletest --sim --set numWarmupCycles=0 --set numMeasurementCycles=1 "
	.. "--set impedanceReportingPeriod=0 --set restPeriod=60 --out %s/c2 C2"):format(tmp))
l = line_of(out, "C2")
t.like(l, "CE n/a: no full charge before the measurement discharge", "without a full charge: CE n/a, and why")

os.execute("rm -rf " .. tmp)
t.done()
