-- `batlab cycletest`, `dischargetest` and `run` as a user runs them, on the
-- virtual Batlab: files, columns, verdicts, exit codes, determinism, a
-- slow capacity test against the cell's nominal capacity, and Ctrl-C.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local cjson = require "cjson"
local csv = require "batlab.csv"
local lfs = require "lfs"

local BATLAB = cli.bin
local tmp = cli.tmpdir()
local write, read = cli.write, cli.read

-- Run batlab with arguments; returns exit code, stdout, stderr.
local batlab_cmd = cli.batlab

local quick = tmp .. "/quick.json"
write(quick, [[{ "cellPlaylistName": "quick", "numWarmupCycles": 0, "numMeasurementCycles": 1,
  "restPeriod": 30, "reportingPeriod": 1, "impedanceReportingPeriod": 600, "storageDischarge": true,
  "storageDischargeVoltage": 3.7, "highVoltageCutoff": 4.2, "lowVoltageCutoff": 2.8 }]])

-- ---- a full run: files and columns -------------------------------------------------------
local code, out, err = batlab_cmd(("cycletest --settings %s --sim --out %s/r1 A1 A2 A3 A4"):format(quick, tmp))
t.is(code, 0, "cycletest on four virtual cells exits 0 (" .. err:sub(1, 200) .. ")")
t.like(out, "A1%s+PASS", "prints each cell's verdict")
t.like(out, "results: " .. tmp:gsub("%p", "%%%0") .. "/r1", "and where the files are")
for _, f in ipairs({ "run.json", "steps.csv", "summary.json", "summary.csv", "events.log",
	"batlab-log_quick.csv", "cells/A1.csv", "cells/A4.csv" }) do
	t.ok(lfs.attributes(tmp .. "/r1/" .. f), "writes " .. f)
end
local rows = csv.parse(read(tmp .. "/r1/cells/A1.csv") or "")
t.is(rows[1] and rows[1][1], "Test Time / s", "time series: self-describing header")
t.ok(#rows > 1000, ("one row per report (%d rows)"):format(#rows))
local header = table.concat(rows[1] or {}, ",")
for _, col in ipairs({ "Voltage / V", "Current / A", "Temperature / degC", "Charge / Ah", "Energy / Wh",
	"Cycle", "Step Name", "Mode" }) do
	t.ok(header:find(col, 1, true), "column " .. col)
end
local summary = cjson.decode(read(tmp .. "/r1/summary.json") or "{}")
local cells = summary.cells or summary
local cell1 = cells[1] or {}
t.is(cell1.verdict, "pass", "summary.json: verdict")
t.ok(type(cell1.capacity_ah) == "number" and cell1.capacity_ah > 2.0 and cell1.capacity_ah < 2.5,
	("capacity %.4f Ah"):format(tonumber(cell1.capacity_ah) or 0))
t.ok(type(cell1.impedance_ohm) == "number" and cell1.impedance_ohm > 0, "impedance from the 600 s readings")
local steps_rows = csv.parse(read(tmp .. "/r1/steps.csv") or "")
local last_names = {}
for i = 2, #steps_rows do
	if steps_rows[i][1] == "A1" then
		last_names[#last_names + 1] = steps_rows[i][7]
	end
end
t.is(table.concat(last_names, " "), "PRECHARGE CHARGEREST DISCHARGE DISCHARGEREST CHARGE CHARGEREST POSTDISCHARGE",
	"steps.csv: every step, the storage discharge last")
local lex = csv.parse(read(tmp .. "/r1/batlab-log_quick.csv") or "")
local lex_header
for _, r in ipairs(lex) do
	if r[1] == "Cell Name" then
		lex_header = r
		break
	end
end
t.ok(lex_header and #lex_header == 23, "Lexcelon log: a header readers find (Cell Name ...)")
local widths_ok = true
for _, r in ipairs(lex) do
	if r[1] ~= "Cell Name" and #r > 1 and #r ~= 23 then
		widths_ok = false
	end
end
t.ok(widths_ok, "every Lexcelon row as wide as its header")

-- the same seed gives byte-identical results
code = batlab_cmd(("cycletest --settings %s --sim --out %s/r2 A1 A2 A3 A4"):format(quick, tmp))
local same = code == 0
for _, f in ipairs({ "steps.csv", "summary.json", "summary.csv", "cells/A1.csv", "cells/A3.csv",
	"batlab-log_quick.csv", "events.log" }) do
	same = same and read(tmp .. "/r1/" .. f) == read(tmp .. "/r2/" .. f)
end
t.ok(same, "two runs with the same seed write byte-identical results")

-- --speed paces a virtual run against the real clock without changing it
code = batlab_cmd(("cycletest --settings %s --sim --speed 1e7 --out %s/r2s A1 A2 A3 A4"):format(quick, tmp))
t.ok(code == 0 and read(tmp .. "/r1/cells/A2.csv") == read(tmp .. "/r2s/cells/A2.csv"),
	"--speed: the same results, only paced")
code, out, err = batlab_cmd(("cycletest --settings %s --sim --speed fast A1"):format(quick))
t.ok(code == 2 and err:find("--speed", 1, true), "--speed needs a number")

-- --json
code, out = batlab_cmd(("cycletest --settings %s --sim --json --out %s/r3 A1"):format(quick, tmp))
local ok_json, j = pcall(cjson.decode, out)
t.ok(code == 0 and ok_json and j.cells and j.cells[1].verdict == "pass", "--json prints the summary as JSON")

-- a cell that fails its verdict: exit 1
local hot = tmp .. "/hot.json"
write(hot, [[{ "cellPlaylistName": "hot", "chargeTemperatureCutoff": 20, "numMeasurementCycles": 1 }]])
code, out = batlab_cmd(("cycletest --settings %s --sim --out %s/r4 A1"):format(hot, tmp))
t.is(code, 1, "a safety stop fails the cell: exit 1")
t.like(out, "A1%s+ERROR%s+.*TEMP_LIMIT_CHG", "as an error, naming the limit")

-- usage and settings errors: exit 2, one clear line
local bad = tmp .. "/bad.json"
write(bad, '{ "chargeRate": 2.0,\n  "restPeriod": oops }')
local cases = {
	{ ("cycletest --settings %s/missing.json --sim A"):format(tmp), "missing%.json" },
	{ ("cycletest --settings %s --sim A"):format(bad), "bad%.json:2" },
	{ "cycletest --bogus --sim A", "unknown option '%-%-bogus'" },
	{ ("cycletest --settings %s --sim --cell 9=X"):format(quick), "no channel 9" },
	{ ("cycletest --settings %s --sim --set highVoltageCutoff=5.5 A"):format(quick), "highVoltageCutoff" },
	{ "run --sim", "which script" },
	{ ("run %s/nope.lua --sim"):format(tmp), "nope%.lua" },
}
for _, c in ipairs(cases) do
	code, out, err = batlab_cmd(c[1])
	t.ok(code == 2 and err:find(c[2]) ~= nil, ("exit 2 for: batlab %s (%s)"):format(c[1], err:match("[^\n]*")))
end

-- a --port that does not exist is a usage error, as for every command
code, out, err = batlab_cmd(("cycletest --settings %s --port %s/ttyNONE A"):format(quick, tmp))
t.is(code, 2, "a port that is not there: exit 2")
t.like(err, "^batlab: cycletest: [^\n]*/ttyNONE: no such port", "saying so")

-- a cell name cannot escape the run directory
code = batlab_cmd(("cycletest --settings %s --sim --out %s/r5 ../../evil"):format(quick, tmp))
local escaped = lfs.attributes(tmp .. "/evil.csv") or lfs.attributes(tmp .. "/r5/../evil.csv")
local inside = false
for f in lfs.dir(tmp .. "/r5/cells") do
	inside = inside or f:find("evil") ~= nil
end
t.ok(code == 0 and not escaped and inside, "a name like ../../evil stays inside cells/")

-- a user's own procedure through `batlab run`
local proc = tmp .. "/capacity.lua"
write(proc, [[
local steps = require "batlab.steps"
return {
	name = "capacity",
	params = { charge_a = 1.0, discharge_a = 2.0, vmax = 4.2, vmin = 3.0 },
	run = function(cell, p)
		cell:limits{ vmax = p.vmax, vmin = p.vmin - 0.2, imax = 4.0, tmax_c = 50 }
		steps.charge(cell, { current = p.charge_a, until_v = p.vmax })
		steps.rest(cell, 60)
		local r = steps.discharge(cell, { current = p.discharge_a, until_v = p.vmin })
		cell:record{ capacity_ah = r.ah }
		return r.ah >= 2.0, ("capacity %.3f Ah"):format(r.ah)
	end,
}
]])
code, out, err = batlab_cmd(("run %s --sim --cell 0=X1 --cell 2=X2 --set discharge_a=1.5 --out %s/r6"):format(proc, tmp))
t.is(code, 0, "batlab run with a procedure file exits 0 (" .. err:sub(1, 120) .. ")")
t.like(out, "X1%s+PASS%s+capacity 2%.%d%d%d Ah", "its verdict and message")
t.ok(lfs.attributes(tmp .. "/r6/cells/X2.csv") and not lfs.attributes(tmp .. "/r6/cells/X3.csv"),
	"--cell puts cells on the channels named")
write(proc, "return { run = function(cell) error('boom') end }")
code, out = batlab_cmd(("run %s --sim --cell 0=E --out %s/r7"):format(proc, tmp))
t.is(code, 1, "a procedure that raises: exit 1")
t.like(out, "E%s+ERROR%s+.*boom", "the error is the cell's verdict")
write(proc, "return {")
code, out, err = batlab_cmd(("run %s --sim --out %s/r8"):format(proc, tmp))
t.ok(code == 2 and err:find("capacity%.lua:1:") ~= nil, "a syntax error: exit 2 with FILE:LINE")

-- the discharge test's timeout
local dt = tmp .. "/dt.json"
write(dt, [[{ "cellPlaylistName": "dt", "dischargeRate": 1.0, "impedanceReportingPeriod": 0 }]])
code, out = batlab_cmd(("dischargetest --settings %s --timeout 600 --sim --out %s/r9 D1"):format(dt, tmp))
local srows = csv.parse(read(tmp .. "/r9/steps.csv") or "")
t.ok(code == 0 and srows[2] and srows[2][11] == "timeout", "dischargetest --timeout ends the discharge on time")

-- a slow C/10 test measures the cell's nominal capacity (2.5 Ah) within 3 %
local slow = tmp .. "/slow.json"
write(slow, [[{ "cellPlaylistName": "slow", "numWarmupCycles": 0, "numMeasurementCycles": 1,
  "prechargeRate": 0.25, "chargeRate": 0.25, "dischargeRate": 0.25, "restPeriod": 600,
  "reportingPeriod": 1, "impedanceReportingPeriod": 0, "storageDischarge": false,
  "highVoltageCutoff": 4.2, "lowVoltageCutoff": 2.5 }]])
code, out = batlab_cmd(("cycletest --settings %s --sim --json --out %s/r10 S1"):format(slow, tmp))
local okj, sj = pcall(cjson.decode, out)
local cap = okj and sj.cells and sj.cells[1].capacity_ah or 0
t.ok(code == 0 and math.abs(cap - 2.5) / 2.5 < 0.03, ("C/10 capacity %.4f Ah is within 3 %% of 2.5 Ah"):format(cap))

-- Lexcelon's own log, when the reference data is beside the project: the
-- recorded log (an older version, no header) has its values in the same
-- columns as ours, for both row kinds (level 1: a voltage in column 5;
-- level 2: the step summary from column 12).
local ref = read("../shared/reference/lexcelon/batlab-log_DefaultPlaylist.csv")
if ref then
	local function shape(r)
		local filled = {}
		for i = 1, #r do
			filled[i] = r[i] ~= "" and "x" or "."
		end
		return table.concat(filled)
	end
	local ref_shapes, our_shapes = {}, {}
	for _, r in ipairs(csv.parse(ref)) do
		if #r >= 18 then
			ref_shapes[r[5] ~= "" and 1 or 2] = shape(r)
		end
	end
	for _, r in ipairs(lex) do
		if r[1] ~= "Cell Name" and #r == 23 and r[2] ~= "" and r[8] == "" then
			our_shapes[r[5] ~= "" and 1 or 2] = our_shapes[r[5] ~= "" and 1 or 2] or shape(r)
		end
	end
	for kind = 1, 2 do
		local a, b = ref_shapes[kind] or "?", our_shapes[kind] or ""
		t.is(b:sub(1, #a), a, ("level-%d rows fill the columns the real log fills"):format(kind))
	end
else
	t.skip("reference Lexcelon log", "../shared/reference/lexcelon not present")
end

-- more cells than channels: the operator is told which cell to swap in,
-- the swap is detected, and every cell is tested (the virtual operator
-- takes the finished cell out and puts the next one in)
code, out = batlab_cmd(("cycletest --settings %s --sim --out %s/r12 P1 P2 P3 P4 P5 P6"):format(quick, tmp))
local passes = select(2, out:gsub("P%d%s+PASS", ""))
t.ok(code == 0 and passes == 6, ("six cells on four channels all tested (%d passed)"):format(passes))
local done_cell, swap_ch = out:match("(P%d) is done: take it out of Batlab 1000 channel (%d) and put in P5")
t.ok(done_cell ~= nil, "the operator is told what to swap (" .. tostring(done_cell) .. " for P5)")
local ev = read(tmp .. "/r12/events.log") or ""
t.like(ev, "P5 inserted in Batlab 1000 channel " .. tostring(swap_ch), "the insertion is detected")
t.ok(lfs.attributes(tmp .. "/r12/cells/P6.csv"), "the swapped-in cell has its own time series")

-- the example procedures of docs/procedures.md run as they are
for _, ex in ipairs({ "capacity", "impedance-survey", "grade" }) do
	code, out, err = batlab_cmd(("run scripts/%s.lua --sim --out %s/ex-%s --cell 0=E1 --cell 3=E2"):format(ex, tmp, ex))
	t.ok(code == 0 and out:find("E2%s+PASS"), ("scripts/%s.lua runs and passes (%s)"):format(ex, (out .. err):match("[^\n]*")))
end

-- Ctrl-C in the middle of a long run: exit 130, the files complete. The
-- signal is sent once the run has printed its first line (a blocking read
-- on a pipe, no timing involved); 200 cycles take far longer than that.
local long = tmp .. "/long.json"
write(long, [[{ "cellPlaylistName": "long", "numWarmupCycles": 0, "numMeasurementCycles": 200 }]])
write(tmp .. "/sigint.sh", ([[
cd '%s' || exit 9
mkfifo '%s/fifo' || exit 9
'%s' cycletest --settings '%s' --sim --out '%s/r11' L1 L2 > '%s/fifo' 2>&1 &
pid=$!
{ IFS= read -r first; kill -INT "$pid"; cat > /dev/null; } < '%s/fifo'
wait "$pid"
echo "exit=$?"
]]):format(lfs.currentdir(), tmp, BATLAB, long, tmp, tmp, tmp))
local p = io.popen("sh " .. tmp .. "/sigint.sh")
local got = p:read("a")
p:close()
t.like(got, "exit=130", "SIGINT: exit 130")
local sj = cjson.decode(read(tmp .. "/r11/summary.json") or "null")
local verdicts = {}
for _, c in ipairs(type(sj) == "table" and (sj.cells or sj) or {}) do
	verdicts[#verdicts + 1] = c.verdict
end
t.is(table.concat(verdicts, " "), "incomplete incomplete", "every cell's summary is there, marked incomplete")
local rj = cjson.decode(read(tmp .. "/r11/run.json") or "null")
t.ok(type(rj) == "table" and tostring(rj.outcome and (rj.outcome.status or rj.outcome)):find("interrupted"),
	"run.json says the run was interrupted")
local tail = (read(tmp .. "/r11/cells/L1.csv") or ""):match("([^\n]*)\n$") or ""
t.ok(select(2, tail:gsub(",", ",")) == 15, "the time series ends with a complete row")

os.execute("rm -rf " .. tmp)
t.done()
