-- "Never lose a test", point 4: the fault matrix. Every simulator fault
-- kind, at three points of a short stock cycle test (during the precharge,
-- the rest after it and the measurement discharge), on a 4-cell virtual
-- Batlab. For each run: the outcome (exit code, each cell's verdict), the
-- channels left with current (from BATLAB_TRACE: the last MODE the host
-- wrote to each channel must be IDLE or STOPPED), rows lost in
-- cells/*.csv (16 columns, time strictly increasing, no gap over 5 s
-- except within 20 s after the fault), the summary (json and csv, every
-- cell) and the event in events.log.
--
-- All 36 runs take about 35 s on 2 cores, so `make check` runs them all,
-- as does `make check-faults` (verbose, the table in
-- $BUILD/fault-matrix.txt). FAULT_MATRIX=subset runs 12 (each kind at one
-- of the three points, every point used). The table goes to stdout as TAP
-- diagnostics and to FAULT_TABLE (default $BUILD/fault-matrix.txt).
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local cjson = require "cjson"
local lfs = require "lfs"

local BATLAB = cli.bin
local FULL = os.getenv("FAULT_MATRIX") ~= "subset"
local TABLE = os.getenv("FAULT_TABLE")
	or ((os.getenv("BUILD") or "build/rel") .. (FULL and "/fault-matrix.txt" or "/fault-matrix-subset.txt"))
local tmp = cli.tmpdir()
local write, read = cli.write, cli.read

-- The quick settings: the precharge runs 0..~1745 s, the rest ~1740..1777 s,
-- the discharge ~1771..~5687 s (all four cells in each at the fault time).
local POINTS = { { "charge", 600 }, { "rest", 1755 }, { "discharge", 3000 } }
local CELLS = { "A", "B", "C", "D" }

-- kind, extra fields, what events.log must say (a Lua pattern), and a TODO
-- reason for a check known to fail (reported, not hidden).
local KINDS = {
	{ "cell_remove", { slot = 1 }, "%[B%] %u+ ended: removed" },
	{ "cell_insert", { slot = 1, cell = { profile = "nmc18650" } }, "%[B%].*inserted" },
	{ "unplug", {}, "device went away" },
	{ "reset", {}, "the device reset" },
	{ "no_reply", { count = 20 }, "does not answer" },
	{ "late_reply", { count = 5, value = 5 }, "a report could not be read" },
	{ "garbage", { count = 64 }, "bytes that were no packet discarded" },
	{ "drop_bytes", { count = 20 }, "a report could not be read" },
	{ "vcc_sag", { value = 4.0 }, "safety %(LOW_VCC%)" },
	{ "psu_lost", { value = 0 }, "safety %(NO_PSU%)" },
	{ "thermistor_open", { slot = 1 }, "%[B%].*thermistor reads" },
	{ "self_heating", { slot = 1, value = 20 }, "%[B%].*safety %(TEMP_LIMIT_" },
}

local quick = tmp .. "/quick.json"
write(quick, [[{ "cellPlaylistName": "quick", "numWarmupCycles": 0, "numMeasurementCycles": 1,
  "restPeriod": 30, "reportingPeriod": 1, "impedanceReportingPeriod": 600, "storageDischarge": false,
  "highVoltageCutoff": 4.2, "lowVoltageCutoff": 2.8 }]])

-- The cases, their layouts, and one shell line each; run two at a time.
local cases = {}
for i, k in ipairs(KINDS) do
	for j, p in ipairs(POINTS) do
		if FULL or (i - 1) % 3 == j - 1 then
			local fault = { at = p[2], kind = k[1] }
			for f, v in pairs(k[2]) do
				fault[f] = v
			end
			local name = k[1] .. "_" .. p[1]
			write(tmp .. "/" .. name .. ".json", cjson.encode { devices = { { faults = { fault } } } })
			cases[#cases + 1] = { name = name, kind = k, point = p[1], at = p[2] }
		end
	end
end
local list = {}
for _, c in ipairs(cases) do
	list[#list + 1] = c.name
end
write(tmp .. "/cases", table.concat(list, "\n") .. "\n")
write(tmp .. "/one.sh", ([[
cd %s && BATLAB_TRACE=$1.trace timeout 120 %s cycletest --settings quick.json --sim=$1.json --quiet --out $1 A B C D > $1.out 2> $1.err
echo $? > $1.rc
]]):format(tmp, BATLAB))
local started = os.time()
os.execute(("xargs -P2 -n1 sh %s/one.sh < %s/cases"):format(tmp, tmp))
local elapsed = os.time() - started

-- The last MODE written to each channel: the channels left active. A
-- device unplugged with channels active is left alone by the host (it
-- cannot reach it); the virtual Batlab goes on for 30 s and the trace
-- says what each channel is then: one its watchdog stopped, with no
-- current, is not left active. -> active, stopped by the watchdog
local function active_channels(trace)
	local last = {}
	for ch, mode in trace:gmatch("W CELL(%d) MODE (%d+)") do
		last[tonumber(ch)] = tonumber(mode)
	end
	local alone = {}
	for ch, mode, amps in trace:gmatch("CELL(%d) MODE (%d+) ([-%d.]+) A") do
		alone[tonumber(ch)] = tonumber(mode) == batlab.MODE_STOPPED and tonumber(amps) == 0
	end
	local n, wdog = 0, 0
	for ch, m in pairs(last) do
		if m ~= batlab.MODE_IDLE and m ~= batlab.MODE_STOPPED then
			if alone[ch] then
				wdog = wdog + 1
			else
				n = n + 1
			end
		end
	end
	return n, wdog
end

-- Rows lost in one cells/X.csv: bad rows, times not increasing, and gaps
-- over 5 s not within 20 s after the fault. Also the largest gap.
local function rows_lost(text, at)
	local lost, prev, maxgap, rows = 0, nil, 0, 0
	local first = true
	for line in text:gmatch("[^\n]+") do
		if first then
			first = false
		else
			rows = rows + 1
			local cols = 1
			for _ in line:gmatch(",") do
				cols = cols + 1
			end
			local time = tonumber(line:match("^([^,]*)"))
			if cols ~= 16 or not time or (prev and time <= prev) then
				lost = lost + 1
			elseif prev then
				local gap = time - prev
				maxgap = math.max(maxgap, gap)
				if gap > 5 and not (prev >= at - 5 and prev <= at + 20) then
					lost = lost + 1
				end
			end
			prev = time or prev
		end
	end
	return lost, maxgap, rows
end

local function summary_ok(dir)
	local js = read(dir .. "/summary.json")
	local csv = read(dir .. "/summary.csv")
	if not js or not csv then
		return false
	end
	local ok, sum = pcall(cjson.decode, js)
	if not ok then
		return false
	end
	local seen = {}
	for _, c in ipairs(sum.cells or {}) do
		seen[c.name] = true
	end
	for _, n in ipairs(CELLS) do
		if not seen[n] or not csv:find("\n" .. n .. ",", 1, true) then
			return false
		end
	end
	return true
end

local function verdicts(dir)
	local ok, sum = pcall(cjson.decode, read(dir .. "/summary.json") or "{}")
	local by = {}
	for _, c in ipairs(ok and sum.cells or {}) do
		by[c.name] = c.verdict
	end
	local v = {}
	for _, n in ipairs(CELLS) do
		v[#v + 1] = n .. "=" .. (by[n] or "?")
	end
	return table.concat(v, " "), by
end

-- One TAP line per check; a known failure is a skip with its reason.
local function check(c, what, cond, name)
	local todo = c.kind.todo and c.kind.todo[what]
	if todo and not cond then
		t.skip(c.name .. ": " .. name, "TODO " .. todo)
	else
		t.ok(cond, c.name .. ": " .. name)
	end
end

local rows = { ("%-16s %-9s %-4s %-44s %-7s %-5s %-7s %-7s %-5s"):format(
	"fault", "point", "exit", "verdicts", "current", "lost", "max gap", "summary", "event") }
for _, c in ipairs(cases) do
	local dir = tmp .. "/" .. c.name
	local code = tonumber(read(dir .. ".rc") or "") or -1
	local vtext, by = verdicts(dir)
	local active, wdog = active_channels(read(dir .. ".trace") or "")
	local lost, maxgap = 0, 0
	for _, n in ipairs(CELLS) do
		local l, g = rows_lost(read(dir .. "/cells/" .. n .. ".csv") or "", c.at)
		lost, maxgap = lost + l, math.max(maxgap, g)
	end
	local sum = summary_ok(dir)
	local event = (read(dir .. "/events.log") or ""):find(c.kind[3]) ~= nil
	local verdict_ok = code == 0 or code == 1
	for _, n in ipairs(CELLS) do
		verdict_ok = verdict_ok and (by[n] == "pass" or by[n] == "error" or by[n] == "fail")
			and not (by[n] or ""):find("endless")
	end
	local reason_ok = not (read(dir .. ".out") or ""):find("endless loop", 1, true)
	check(c, "verdict", verdict_ok and reason_ok, "exit 0/1 and a verdict for every cell, no endless loop")
	check(c, "current", active == 0, "no channel left with current (" .. active .. ")")
	check(c, "rows", lost == 0, "no rows lost (" .. lost .. ")")
	check(c, "summary", sum, "summary.json and summary.csv list every cell")
	check(c, "event", event, "events.log records it (" .. c.kind[3] .. ")")
	rows[#rows + 1] = ("%-16s %-9s %-4d %-44s %-7s %-5d %-7.1f %-7s %-5s"):format(c.kind[1], c.point, code,
		vtext .. (reason_ok and "" or " (loop)"), active == 0 and (wdog > 0 and "0 wdog" or "0") or active .. " on", lost, maxgap,
		sum and "yes" or "NO", event and "yes" or "NO")
end
rows[#rows + 1] = ("%d runs in %d s (2 at a time)"):format(#cases, elapsed)
local table_text = table.concat(rows, "\n") .. "\n"
t.diag(table_text)
write(TABLE, table_text)

os.execute("rm -rf " .. tmp)
t.done()
