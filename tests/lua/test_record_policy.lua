-- The recording policy (docs/results.md): `--record every=S,dv=V,di=A`,
-- `record = {...}` in a procedure and in a step. Rows only when that much
-- time, voltage or current since the last row, but always the first and
-- last row of each step and every mode or error change; summaries and
-- steps.csv from every sample, the same as a run that records them all.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local csv = require "batlab.csv"

local tmp = cli.tmpdir()
local function rows_of(path)
	local rows = csv.parse(cli.read(path) or "")
	table.remove(rows, 1)
	return rows
end
local function run(args)
	local code, out, err = cli.batlab(args)
	return code, out .. err
end

-- ---- --record on a stock cycle test ---------------------------------------------

local code, msg = run(("cycletest --sim --seed 4 --quiet --record every=10,dv=0.005,di=0.01 --out %s/thin A B")
	:format(tmp))
t.is(code, 0, "a cycle test with --record every=10,dv=0.005,di=0.01 runs (" .. msg:match("[^\n]*") .. ")")
code = run(("cycletest --sim --seed 4 --quiet --out %s/full A B"):format(tmp))
t.is(code, 0, "the same cycle test recording every sample runs")
for _, f in ipairs { "summary.csv", "steps.csv", "summary.json" } do
	local a, b = cli.read(tmp .. "/thin/" .. f), cli.read(tmp .. "/full/" .. f)
	t.ok(a and #a > 100 and a == b, f .. ": the same whatever the time series keeps")
end

local thin, full = rows_of(tmp .. "/thin/cells/A.csv"), rows_of(tmp .. "/full/cells/A.csv")
t.ok(#thin > 50 and #thin * 3 < #full, ("fewer rows: %d of %d samples"):format(#thin, #full))

-- every thinned row is one of the full run's (the same sample, the same text)
local by_time = {}
for _, r in ipairs(full) do
	by_time[r[1]] = table.concat(r, ",")
end
local same = 0
for _, r in ipairs(thin) do
	same = same + (by_time[r[1]] == table.concat(r, ",") and 1 or 0)
end
t.is(same, #thin, "each row kept is the full run's row of that sample, unchanged")

-- why each row is there
local function why(prev, r, nxt)
	if not prev or prev[5] ~= r[5] then
		return "first of its step"
	end
	if not nxt or nxt[5] ~= r[5] then
		return "last of its step"
	end
	if prev[7] ~= r[7] or prev[16] ~= r[16] then
		return "mode or error change"
	end
	if r[13] ~= "" then
		return "impedance"
	end
	local dt = tonumber(r[1]) - tonumber(prev[1])
	local dv = math.abs(tonumber(r[8]) - tonumber(prev[8]))
	local di = math.abs(tonumber(r[9]) - tonumber(prev[9]))
	-- the CSV's rounding (4 decimals) may hide a threshold crossed by a hair
	if dt >= 10 - 1e-3 or dv >= 0.005 - 1e-4 or di >= 0.01 - 1e-4 then
		return "threshold"
	end
	return nil
end
local unexplained, gap = 0, 0
for i, r in ipairs(thin) do
	if not why(thin[i - 1], r, thin[i + 1]) then
		unexplained = unexplained + 1
		t.diag("row without a reason: " .. table.concat(r, ","))
	end
	if thin[i - 1] and thin[i - 1][5] == r[5] then
		gap = math.max(gap, tonumber(r[1]) - tonumber(thin[i - 1][1]))
	end
end
t.is(unexplained, 0, "every row is a step's first or last, a mode/error change, an impedance or a threshold")
t.ok(gap <= 11.5, ("no more than every=10 s (and a report) between rows of a step: %.3f s"):format(gap))

-- the first and last sample of each step are rows: the full run's
local function ends(rows)
	local out = {}
	for i, r in ipairs(rows) do
		if not rows[i - 1] or rows[i - 1][5] ~= r[5] then
			out[#out + 1] = r[1]
		end
		if not rows[i + 1] or rows[i + 1][5] ~= r[5] then
			out[#out + 1] = r[1]
		end
	end
	return table.concat(out, " ")
end
t.is(ends(thin), ends(full), "each step's first and last row are those of the full recording")

-- every mode or error change of the full recording is a row (the
-- impedance measurements' IMPEDANCE reports among them)
local kept = {}
for _, r in ipairs(thin) do
	kept[r[1]] = true
end
local changes, missed, imp = 0, 0, 0
for i = 2, #full do
	local p, r = full[i - 1], full[i]
	if p[7] ~= r[7] or p[16] ~= r[16] then
		changes = changes + 1
		missed = missed + (kept[r[1]] and 0 or 1)
		imp = imp + (r[7] == "IMPEDANCE" and 1 or 0)
	end
end
t.ok(changes > 20 and imp > 5 and missed == 0,
	("every mode/error change is a row: %d changes (%d into IMPEDANCE), %d missed"):format(changes, imp, missed))

-- ---- record = {...} in a procedure and in a step ----------------------------------

cli.write(tmp .. "/proc.lua", [[
local steps = require "batlab.steps"
return {
  name = "thin",
  record = { every = 30 },
  run = function(cell)
    steps.rest(cell, 600, { record = { every = 120 } })
    steps.discharge(cell, { current = 1.0, max_time = 600 })
    steps.rest(cell, 300, { record = {} })
    return true
  end,
}
]])
code, msg = run(("run %s/proc.lua --sim --quiet --out %s/proc P1"):format(tmp, tmp))
t.is(code, 0, "a procedure with record = {every = 30} and steps with their own runs (" .. msg:match("[^\n]*") .. ")")
local per_step = {}
for _, r in ipairs(rows_of(tmp .. "/proc/cells/P1.csv")) do
	local s = tonumber(r[5])
	per_step[s] = (per_step[s] or 0) + 1
end
t.ok(per_step[1] and per_step[1] >= 6 and per_step[1] <= 8,
	("a 600 s rest with every = 120: %s rows"):format(tostring(per_step[1])))
t.ok(per_step[2] and per_step[2] >= 20 and per_step[2] <= 24,
	("a 600 s discharge under the procedure's every = 30: %s rows"):format(tostring(per_step[2])))
t.ok(per_step[3] and per_step[3] >= 295, ("a 300 s rest with record = {}: every sample (%s rows)")
	:format(tostring(per_step[3])))

code, msg = run(("run %s/proc.lua --sim --quiet --record every=60 --out %s/proc2 P1"):format(tmp, tmp))
local n2 = 0
for _, r in ipairs(rows_of(tmp .. "/proc2/cells/P1.csv")) do
	n2 = n2 + (r[5] == "2" and 1 or 0)
end
t.ok(code == 0 and n2 >= 10 and n2 <= 12, ("--record overrides the procedure's: %d discharge rows at every=60"):format(n2))

-- ---- the command docs/results.md prints, exactly as printed ----------------------

local doc = cli.read("docs/results.md") or ""
local printed = doc:match("\n    (batlab run capacity%.lua %-%-sim %-%-record [^\n]+)\n")
t.ok(printed, "docs/results.md prints a --record command")
if printed then
	local sh = ("cd %s && mkdir doc && cd doc && %s %s > out 2>&1; echo $?"):format(cli.quote(tmp),
		cli.quote(cli.abs_bin), printed:gsub("^batlab ", ""))
	local p = io.popen(sh)
	local rc = p:read("a")
	p:close()
	t.like(rc, "^0", "`" .. printed .. "` runs (" .. ((cli.read(tmp .. "/doc/out") or ""):match("[^\n]*") or "") .. ")")
	local found = io.popen("ls " .. cli.quote(tmp) .. "/doc/batlab-runs/*/cells/A1.csv 2>/dev/null"):read("l")
	local rows = found and rows_of(found) or {}
	local steps_csv = found and rows_of(found:gsub("cells/A1%.csv$", "steps.csv")) or {}
	t.ok(#rows > 20 and #steps_csv >= 3, ("its time series has %d rows for %d steps"):format(#rows, #steps_csv))
end

-- ---- scripts/cycle-life.lua: retention and end of life ------------------------------

code, msg = run(("run cycle-life.lua --sim --seed 2 --quiet --record every=30 --set cycles=3 --out %s/life L1")
	:format(tmp))
t.is(code, 0, "cycle-life.lua runs 3 cycles")
local life_steps = rows_of(tmp .. "/life/steps.csv")
t.is(#life_steps, 12, "3 cycles of charge, rest, discharge, rest: 12 steps")
local events = cli.read(tmp .. "/life/events.log") or ""
local last_ah, pct, first_ah = events:match("3 cycles: ([%d.]+) Ah, ([%d.]+) %% of the first ([%d.]+) Ah")
t.ok(last_ah and math.abs(tonumber(last_ah) / tonumber(first_ah) * 100 - tonumber(pct)) < 0.06,
	("the verdict gives the retention: %s of %s Ah = %s %%"):format(tostring(last_ah), tostring(first_ah), tostring(pct)))
t.like(events, "end of life not reached %(80 %%%)", "and says the end of life was not reached")
-- a cell that fades fast (3 % of its capacity per Ah moved) reaches 80 %
-- within a few cycles; stop_at_eol ends the test there
cli.write(tmp .. "/fade.json", [[
{ "devices": [ { "cells": [ { "profile": "nmc18650", "soc": 0.5, "fade_per_ah": 0.03 } ] } ] }
]])
code, msg = run(("run cycle-life.lua --sim=%s/fade.json --quiet --set cycles=20 --set stop_at_eol=true --out %s/eol L1")
	:format(tmp, tmp))
local eol_ev = cli.read(tmp .. "/eol/events.log") or ""
local eol_n = tonumber(eol_ev:match("end of life at cycle (%d+)"))
t.ok(eol_n and eol_n >= 2 and eol_n < 20, ("a fast-fading cell reaches its end of life at cycle %s (exit %d)")
	:format(tostring(eol_n), code))
t.is(#rows_of(tmp .. "/eol/steps.csv"), (eol_n or 0) * 4, "stop_at_eol: no cycle after it")
t.is(code, 1, "and the cell fails (exit 1)")

-- ---- bad policies: exit 2, what and where ------------------------------------------

code, msg = run(("cycletest --sim --quiet --record every=soon --out %s/bad1 A"):format(tmp))
t.is(code, 2, "--record every=soon exits 2")
t.like(msg, "%-%-record: every must be a number >= 0", "and says which value is wrong")
code, msg = run(("cycletest --sim --quiet --record every=10,dt=1 --out %s/bad2 A"):format(tmp))
t.is(code, 2, "an unknown --record key exits 2")
t.like(msg, "unknown recording policy key 'dt' %(every, dv, di%)", "and names it and the keys there are")
code, msg = run(("cycletest --sim --quiet --record 10 --out %s/bad3 A"):format(tmp))
t.like(msg, "'10' is not KEY=VALUE", "a bare number is refused, naming it")
cli.write(tmp .. "/bad.lua", "return { name = 'b', record = { dv = -1 }, run = function() end }\n")
code, msg = run(("run %s/bad.lua --sim --quiet --out %s/bad4 A"):format(tmp, tmp))
t.is(code, 2, "a procedure's bad record table exits 2")
t.like(msg, "bad%.lua: record: dv must be a number >= 0", "naming the script and the key")
cli.write(tmp .. "/badstep.lua", [[
local steps = require "batlab.steps"
return { name = 'b', run = function(cell) steps.rest(cell, 10, { record = { evry = 5 } }) end }
]])
code, msg = run(("run %s/badstep.lua --sim --quiet --out %s/bad5 A"):format(tmp, tmp))
t.like(msg, "unknown option 'evry' in record", "a step's misspelt record key is named")
t.done()
