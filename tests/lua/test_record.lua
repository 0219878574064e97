-- What a run records, whatever the procedure calls, and how every
-- procedure ends: users' own procedures through `batlab run`, exactly as a
-- user runs them, on the virtual Batlab (in-process, and over a pty
-- served by `batlab sim --pty`).
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local batlab = require "batlab"
local csv = require "batlab.csv"
local lfs = require "lfs"

local BATLAB = cli.bin
local tmp = cli.tmpdir()
local write, read = cli.write, cli.read

local batlab_cmd = cli.batlab

local function rows_of(path)
	return csv.parse(read(path) or "")
end

-- ---- a raw procedure: discharge and wait, nothing else -------------------------------

write(tmp .. "/raw.lua", [[
return {
  name = "raw",
  run = function(cell)
    assert(cell:discharge(0.5))
    local t0 = batlab.now()
    repeat local s = assert(cell:wait()) until batlab.now() - t0 >= 3600
    return true, "an hour at 0.5 A"
  end,
}
]])
local code, out, err = batlab_cmd(("run %s/raw.lua --sim --out %s/raw --cell 0=R1"):format(tmp, tmp))
t.is(code, 0, "a raw discharge-and-wait procedure runs (" .. (out .. err):match("[^\n]*") .. ")")
local rows = rows_of(tmp .. "/raw/cells/R1.csv")
local header = rows[1] or {}
t.is(#header, 16, "the time series has its 16 columns")
local data = #rows - 1
-- one report a second for an hour, and the few around the start and end
t.ok(data >= 3595 and data <= 3610, ("one row per report for an hour (%d rows)"):format(data))
local steady, complete = 0, 0
for i = 2, #rows do
	local r = rows[i]
	complete = complete + (#r == 16 and 1 or 0)
	local amps = tonumber(r[9])
	if r[7] == "DISCHARGE" and amps and math.abs(amps + 0.5) < 0.01 then
		steady = steady + 1
	end
end
t.is(complete, data, "every row has every column")
t.ok(steady >= 3590, ("the rows are the discharge at -0.5 A (%d of them)"):format(steady))
local last = rows[#rows]
t.ok(tonumber(last[11]) < -0.49 and tonumber(last[11]) > -0.51,
	("charge since the step began, signed: %s Ah after an hour at 0.5 A"):format(last[11]))
t.ok(tonumber(last[12]) < -1.7, ("energy integrated from V x I: %s Wh"):format(last[12]))
t.like(last[15], "^2000%-01%-01T01:00:0%d%.%d%d%dZ$", "Date Time of a virtual run counts from 2000-01-01")
local t1, t2 = tonumber(rows[3][1]), tonumber(rows[4][1])
t.ok(math.abs(t2 - t1 - 1) < 0.01, ("rows a report apart (%.3f s)"):format(t2 - t1))
local sj = read(tmp .. "/raw/summary.json") or ""
t.like(sj, '"verdict": "pass"', "the procedure's verdict")

-- ---- the README's first procedure: its time series and its steps ---------------------------

code, out, err = batlab_cmd(("run scripts/capacity.lua --sim --out %s/cap --cell 0=A1"):format(tmp))
t.is(code, 0, "scripts/capacity.lua passes (" .. out:match("[^\n]*A1[^\n]*") .. ")")
local steps = rows_of(tmp .. "/cap/steps.csv")
local names = {}
for i = 2, #steps do
	names[#names + 1] = steps[i][7] .. ":" .. steps[i][11]
end
t.is(table.concat(names, " "), "CHARGE:voltage CHARGE-CV:current REST:time DISCHARGE:voltage",
	"steps.csv: every step with its end reason")
rows = rows_of(tmp .. "/cap/cells/A1.csv")
local per_step, labelled = {}, 0
for i = 2, #rows do
	local name = rows[i][6]
	per_step[name] = (per_step[name] or 0) + 1
	labelled = labelled + (name ~= "" and 1 or 0)
end
t.ok(labelled >= #rows - 3, ("rows carry their step's name (%d of %d)"):format(labelled, #rows - 1))
local dur = tonumber(steps[#steps][10]) or 0
t.ok(math.abs((per_step.DISCHARGE or 0) - dur) < 5,
	("the discharge's rows: one per second of it (%d rows, %.0f s)"):format(per_step.DISCHARGE or 0, dur))
t.ok((per_step.REST or 0) >= 595 and (per_step.REST or 0) <= 605, ("the rest's 600 s (%d rows)"):format(per_step.REST or 0))
local cap = tonumber(steps[#steps][13]) or 0
t.ok(cap > 2.2 and cap < 2.6, ("steps.csv: the discharge's capacity %.4f Ah"):format(cap))
t.like(out, "capacity " .. ("%.3f"):format(cap), "the verdict line's capacity is the step's")
-- events.log tells the run's story, one time stamp a line
local ev = read(tmp .. "/cap/events.log") or ""
t.like(ev, "0%.000 s  Batlab 1000 on sim0 connected", "events.log: the device as the run found it")
t.like(ev, "%[A1%] CHARGE started %(step 1, cycle 0, other%)", "events.log: each step's start")
t.like(ev, "%[A1%] CHARGE%-CV ended: current, [%d.]+ Ah", "events.log: each step's end and why")
t.like(ev, "%[A1%] DISCHARGE ended: voltage, " .. ("%.4f"):format(cap) .. " Ah", "with its charge")
t.like(ev, "verdict: A1 PASS capacity", "events.log: the verdict")
local starts = select(2, ev:gsub("started %(step", ""))
t.is(starts, 4, "four steps started")

-- a device that stops answering for a while: in events.log too
write(tmp .. "/quiet.json", [[{ "devices": [ { "serial": 1000,
  "cells": [ { "profile": "nmc18650", "soc": 0.5 }, null, null, null ],
  "faults": [ { "at": 600, "kind": "no_reply", "count": 12 } ] } ] }]])
write(tmp .. "/patient.lua", [[
return { run = function(c)
  c:discharge(0.5)
  local t0 = batlab.now()
  while batlab.now() - t0 < 900 do c:wait(30) end
  return true
end }
]])
code = batlab_cmd(("run %s/patient.lua --sim=%s/quiet.json --quiet --out %s/quiet --cell 0=S1"):format(tmp, tmp, tmp))
ev = read(tmp .. "/quiet/events.log") or ""
t.like(ev, "Batlab 1000 on sim0 does not answer\n.-Batlab 1000 on sim0 answers again",
	"events.log: a device's silence and its return")

-- ---- every task end is safe: a procedure that returns with current flowing --------------

write(tmp .. "/leave.lua", [[
return { run = function(c) assert(c:charge(2)); c:wait(); return true end }
]])
local sim = assert(io.popen(("sh -c 'echo $$; exec %s sim --pty --speed 4 --devices 1'"):format(BATLAB)))
local pid = sim:read("l")
local port = sim:read("l")
t.ok(port and port:match("^/dev/pts/"), "batlab sim --pty serves a virtual Batlab (" .. tostring(port) .. ")")
code, out, err = batlab_cmd(("run %s/leave.lua --port %s --out %s/leave --cell 0=L1 --cell 1=L2"):format(tmp, port, tmp))
t.is(code, 0, "a procedure that returns while charging passes (" .. (out .. err):match("[^\n]*") .. ")")
for ch = 0, 1 do
	local c2, o2 = batlab_cmd(("read --port %s CELL%d MODE"):format(port, ch))
	-- (IDLE drives no current; the CURRENT register would still hold the
	-- last measurement until the device's next 614 ms latch)
	t.ok(c2 == 0 and o2:find("IDLE"), ("after the run, CELL%d is IDLE, not charging (%s)"):format(ch, o2:gsub("\n", "")))
end
os.execute("kill " .. pid)
sim:close()

-- ---- one code path: the command line and a procedure write the same registers ------------

-- The writes to CELL0 that start and end a step, from BATLAB_TRACE (every
-- request sent), without the report interval and the regulation's
-- setpoint corrections.
local function step_writes(trace)
	local out = {}
	for line in (read(trace) or ""):gmatch("[^\n]+") do
		local reg, v = line:match(" W CELL0 (%S+) (%d+)$")
		if reg and reg ~= "REPORT_INTERVAL" then
			out[#out + 1] = reg .. "=" .. v
		end
	end
	return table.concat(out, " ")
end
write(tmp .. "/five.lua", [[
return { run = function(c) assert(c:charge(1.0)); for _ = 1, 5 do c:wait() end; return true end }
]])
code = batlab_cmd(("run %s/five.lua --sim --out %s/five --cell 0=F1"):format(tmp, tmp), "BATLAB_TRACE=" .. tmp .. "/lua.trace")
local code2 = batlab_cmd("charge --sim 0 1.0 --for 5", "BATLAB_TRACE=" .. tmp .. "/cli.trace")
local lua_w, cli_w = step_writes(tmp .. "/lua.trace"), step_writes(tmp .. "/cli.trace")
t.ok(code == 0 and code2 == 0, "a one-amp charge from a procedure and from the command line")
t.is(lua_w, "ERROR=0 CHARGEH=0 CURRENT_SETPOINT=0 MODE=3 CURRENT_SETPOINT=128 MODE=6 MODE=2",
	"the procedure: ERROR and counter cleared, relay sequence, then STOPPED and IDLE at its end")
t.is(cli_w, lua_w, "batlab charge writes the very same registers in the same order")

-- ---- batlab.recorder: the Lua side of the C recorder ----------------------------------------

local pool = assert(batlab.open { sim = true })
local ch = pool:active():channel(2)
local path = tmp .. "/rec.csv"
local seen = 0
local rec = assert(batlab.recorder(ch, path, { t0 = batlab.now(), epoch = 946684800,
	on_sample = function() seen = seen + 1 end }))
rec:label { step = 7, step_name = "A,B", cycle = 3, cycle_kind = "warm-up" }
local task = batlab.spawn_for(ch, function()
	assert(ch:charge(1.0))
	batlab.sleep(10.5)
	rec:impedance(0.0512)
	batlab.sleep(2)
end)
assert(batlab.run())
t.is(task.status, "done", "a task drives the channel while the recorder writes")
t.is(rec:stats().rows, seen, ("on_sample sees each row (%d)"):format(seen))
assert(rec:close())
rows = rows_of(path)
t.ok(#rows >= 12, ("a row per report without anyone waiting (%d rows)"):format(#rows))
t.is(rows[2][3] .. rows[2][4] .. rows[2][5] .. rows[2][6], "3warm-up7A,B", "rows carry the labels (quoted text kept whole)")
local zrows = 0
for _, r in ipairs(rows) do
	if r[13] ~= "" then
		zrows = zrows + 1
		t.is(r[13], "0.05120", "the impedance on the next row only")
	end
end
t.is(zrows, 1, "one row carries the impedance")
t.ok(not pcall(rec.label, rec, { step = 1 }), "a closed recorder refuses labels")
local bad = batlab.recorder(ch, tmp .. "/no/such/dir/x.csv", {})
t.is(bad, nil, "a recorder on a path that cannot be written: nil, message")
-- a write that fails (a full disk) is reported once, with what failed
local errs = {}
local full = assert(batlab.recorder(ch, "/dev/full", { flush_every_row = true,
	on_error = function(msg, code) errs[#errs + 1] = code .. " " .. msg end }))
batlab.sleep(5)
t.is(#errs, 1, "a failed write is reported once")
t.like(errs[1] or "", "^EIO /dev/full: No space left", "naming the file and the error")
t.like(full:stats().error or "", "No space left", "stats() says so too")
local okc, cerr = full:close()
t.ok(okc == nil and cerr:find("No space left"), "close() returns the error")
pool:close()

-- ---- csv_line: __tostring runs while the line is being built ---------------------------------

local line = batlab.csv_line("s,s", ("x"):rep(1000), setmetatable({}, { __tostring = function()
	collectgarbage()
	return "y"
end }))
t.is(line, ("x"):rep(1000) .. ",y\n", "csv_line survives a __tostring that runs the collector")

t.done()
