-- `batlab resume` after kill -9 (make check-resume): stock cycle tests over a pty to
-- `batlab sim --pty`, each host killed (SIGKILL, no cleanup) at chosen
-- journal entries and resumed until the run completes, and one
-- interrupted (SIGINT) at chosen entries; every resumed run must
-- complete, measure each cell's capacity within 1 % of an uninterrupted
-- run, and keep its files whole: steps once each, rows in time order with
-- no hole but the gaps the run recorded. Each kill lands where it is
-- meant to whatever the machine's speed: the host signals itself just
-- before or after writing the entry named (BATLAB_JOURNAL_SIGNAL,
-- batlab.journal). What still depends on real time: the run goes at 100
-- times real time, so a host kept off the CPU for a quarter of a second
-- (a heavily loaded machine) trips the device's watchdog and fails its
-- run; that is why this test is not part of `make check`.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local cjson = require "cjson"
local fsutil = require "batlab.fsutil"

-- Under the sanitizers every process runs several times slower, and this
-- test is timing: seven hosts and simulators at 100 times real time. The
-- replay runs under the sanitizers in test_replay; the kill test itself
-- runs in the plain build.
if (os.getenv("BATLAB") or ""):find("/san/", 1, true) then
	print("1..0 # SKIP real-time kill test: runs in the plain build (make check-resume)")
	return
end

local bin, q = cli.abs_bin, cli.quote
local tmp = cli.tmpdir()
local write, read = cli.write, cli.read

-- The discharges end at 3.0 V: the model's cell is empty at 2.8 V, and
-- one that rested back to just under the 2.8 V limit would be refused its
-- charge by the firmware (CHARGE stops below VOLTAGE_LIMIT_DCHG too).
-- Four small cells (15 minutes at 0.2 A in model time), the model 100
-- times faster than real time: one cycle test takes about 30 s, the
-- device's 25.5 s watchdog a quarter of a second.
write(tmp .. "/lay.json", [[
{ "seed": 3, "devices": [ { "serial": 4242, "cells": [
  { "profile": "nmc18650", "soc": 0.6, "capacity_ah": 0.05 },
  { "profile": "nmc18650", "soc": 0.4, "capacity_ah": 0.06 },
  { "profile": "nmc18650", "soc": 0.5, "capacity_ah": 0.05 },
  { "profile": "nmc18650", "soc": 0.8, "capacity_ah": 0.04 } ] } ] }
]])
write(tmp .. "/set.json", [[
{ "cellPlaylistName": "Resume", "numWarmupCycles": 0, "numMeasurementCycles": 1, "restPeriod": 2,
  "reportingPeriod": 1, "impedanceReportingPeriod": 0, "highVoltageCutoff": 4.2, "lowVoltageCutoff": 3.0,
  "prechargeRate": 0.2, "chargeRate": 0.2, "dischargeRate": 0.2, "storageDischarge": false }
]])

-- One chain: a simulator of its own, the run and then each resume given
-- the next point of `points` to be signalled at (BATLAB_JOURNAL_SIGNAL,
-- batlab.journal: the host signals itself just before or after writing
-- that journal entry), a last resume left to finish. Prints "rc=N" for
-- each, "final=N" for the last. A timeout only guards against a hang.
local function chain_script(name, points, cmd)
	local lines = { "cd " .. q(tmp), "mkfifo " .. name .. ".fifo || exit 9",
		("%s sim --pty --speed 100 --layout lay.json > %s.fifo 2>/dev/null & spid=$!"):format(q(bin), name),
		("exec 3< %s.fifo"):format(name), "IFS= read -r pty <&3" }
	cmd = cmd or ("%s cycletest --settings set.json --port \"$pty\" --out %s A B C D --quiet --no-report")
		:format(q(bin), name)
	for k, p in ipairs(points) do
		local what = k == 1 and cmd or ("%s resume %s --quiet"):format(q(bin), name)
		lines[#lines + 1] = ("BATLAB_JOURNAL_SIGNAL=%s timeout 120 %s > /dev/null 2>&1; echo \"rc=$?\"")
			:format(q(p), what)
	end
	local last = #points == 0 and cmd or ("%s resume %s"):format(q(bin), name)
	lines[#lines + 1] = ("timeout 120 %s > %s.out 2>&1; echo \"final=$?\""):format(last, name)
	lines[#lines + 1] = "kill $spid; wait $spid 2>/dev/null"
	write(("%s/%s.sh"):format(tmp, name), table.concat(lines, "\n") .. "\n")
end

-- Five chains of five kills (SIGKILL: no cleanup, the device's watchdog
-- stops the current 25.5 s of model time later), each following one
-- cell through its steps (1 PRECHARGE, 2 CHARGEREST, 3 DISCHARGE, 4
-- DISCHARGEREST, 5 CHARGE, 6 CHARGEREST) and landing in each window a
-- crash can: just after a step's "begin" (the device not started yet),
-- just before its "started" (the device started the current, the
-- journal does not know), after it, in the middle of a step (the Nth
-- "at"), just before its "end" (the device stopped at its limit, the
-- journal does not know) and just after. The other cells are wherever
-- real time has them then. Five at once and the uninterrupted reference:
-- a pty run mostly waits on real time. No report.html: six runs
-- rendering theirs at once near the end starve the last cells' hosts of
-- the CPU, and at 100 times real time a second off the CPU is the device
-- watchdog.
local KILLS = {
	k1 = { "after begin A 1", "before started A 3", "after at A 3 5", "before end A 3", "after started A 5" },
	k2 = { "before started B 1", "before end B 1", "after begin B 3", "after at B 3 8", "before end B 5" },
	k3 = { "after at C 1 2", "after begin C 2", "before started C 3", "after end C 3", "before started C 5" },
	k4 = { "before started D 3", "after at D 3 3", "after begin D 4", "before end D 4", "after at D 5 2" },
	k5 = { "before started B 2", "before end B 2", "after started B 3", "before end B 3", "after begin B 6" },
}
-- kz: the time series gzip-compressed (--gzip): each resume cuts the
-- file's readable rows to whole ones and writes it again as a whole gzip
-- file before its rows follow as another member (docs/results.md).
KILLS.kz = { "after at A 1 3", "after begin A 3", "after at A 3 5", "before end A 5" }
local chains = { "k1", "k2", "k3", "k4", "k5", "kz" }
for _, name in ipairs(chains) do
	local points = {}
	for k, p in ipairs(KILLS[name]) do
		points[k] = "KILL " .. p
	end
	chain_script(name, points, name == "kz" and ("%s cycletest --settings set.json --port \"$pty\" --out kz "
		.. "A B C D --quiet --no-report --gzip"):format(q(bin)) or nil)
end
chain_script("ref", {})
-- Ctrl-C (SIGINT) while the cells run (the run made safe and closed
-- "interrupted"); then in a resume before its devices' loop takes
-- signals (the host ends at once, its run not closed: the next resume
-- says so); then as a resume runs; then as one closes the run, its
-- cells done (not closed either); a last resume completes.
local INTS = { "INT after begin B 3", "INT after resume", "INT after started C 5", "INT before closed" }
chain_script("int", INTS)
local runs = { "ref", "int" }
for _, c in ipairs(chains) do
	runs[#runs + 1] = c
end
local parts = {}
for _, name in ipairs(runs) do
	parts[#parts + 1] = ("sh %s > %s.log 2>&1 &"):format(q(tmp .. "/" .. name .. ".sh"), q(tmp .. "/" .. name))
end
os.execute(table.concat(parts, " ") .. " wait")

local function summary(dir)
	local text = read(tmp .. "/" .. dir .. "/summary.json")
	local ok, doc = pcall(cjson.decode, text or "")
	local by = {}
	for _, c in ipairs(ok and doc.cells or {}) do
		by[c.name] = c
	end
	return by
end

local function steps(dir)
	local per = {}
	for line in (read(tmp .. "/" .. dir .. "/steps.csv") or ""):gmatch("[^\n]+") do
		local cell, step, name = line:match("^([^,]+),[^,]*,[^,]*,[^,]*,[^,]*,([^,]*),([^,]*),")
		if cell and cell ~= "Cell" then
			per[cell] = per[cell] or {}
			per[cell][#per[cell] + 1] = step .. ":" .. name
		end
	end
	return per
end

-- The gaps a run recorded for a cell: { {from, to}, ... }.
local function gaps(dir, cell)
	local out = {}
	for a, b in (read(tmp .. "/" .. dir .. "/events.log") or ""):gmatch("%[" .. cell
		.. "%] rows stop at ([%d.]+) s and go on from ([%d.]+) s") do
		out[#out + 1] = { tonumber(a), tonumber(b) }
	end
	return out
end

-- Rows in time order; a step in time between two rows longer than a few
-- reports only where a gap was recorded. -> nil | what is wrong
local function rows_problem(dir, cell)
	local base = tmp .. "/" .. dir .. "/cells/" .. cell .. ".csv"
	local text = read(base) or fsutil.read_file(base .. ".gz") or ""
	local g, prev, n = gaps(dir, cell), nil, 0
	for line in text:gmatch("[^\n]+") do
		local tt = tonumber(line:match("^([^,]+),"))
		if tt then
			n = n + 1
			if prev and tt <= prev then
				return ("row %d at %.3f s is not after %.3f s"):format(n, tt, prev)
			end
			if prev and tt - prev > 1.5 then -- a report a second of real time
				local covered = false
				for _, gp in ipairs(g) do
					covered = covered or (prev <= gp[1] + 1e-3 and tt >= gp[2] - 1e-3)
				end
				if not covered then
					return ("rows jump from %.3f to %.3f s with no gap recorded"):format(prev, tt)
				end
			end
			prev = tt
		end
	end
	if n < 100 then
		return ("only %d rows"):format(n)
	end
	return nil
end

local ref = summary("ref")
t.like(read(tmp .. "/ref.log") or "", "final=0", "the uninterrupted run completes")
local ref_steps = steps("ref")

-- What every resumed run must show, per cell, against the reference.
local function like_reference(name)
	local got, st = summary(name), steps(name)
	for _, cell in ipairs { "A", "B", "C", "D" } do
		local want, have = ref[cell] and ref[cell].capacity_ah, got[cell] and got[cell].capacity_ah
		t.ok(type(want) == "number" and type(have) == "number" and math.abs(have - want) <= 0.01 * want,
			("%s %s: capacity %s Ah, uninterrupted %s Ah"):format(name, cell, tostring(have), tostring(want)))
		t.is(got[cell] and got[cell].verdict, "pass", name .. " " .. cell .. ": passes")
		t.is(got[cell] and got[cell].cycles_completed, ref[cell] and ref[cell].cycles_completed,
			name .. " " .. cell .. ": the summary counts the cycles across the gaps")
		t.is(table.concat(st[cell] or {}, " "), table.concat(ref_steps[cell] or {}, " "),
			name .. " " .. cell .. ": each step once, as in the uninterrupted run")
		t.is(rows_problem(name, cell), nil, name .. " " .. cell .. ": rows in order, holes only at recorded gaps")
	end
end

-- The resume events of a run, in order: "interruption" or "crash".
local function resumed_after(name)
	local out = {}
	for what in (read(tmp .. "/" .. name .. "/events.log") or ""):gmatch("resumed after an? (%a+)") do
		out[#out + 1] = what
	end
	return table.concat(out, " ")
end

local UNCLOSED = "resumed after a crash (the run was not closed"
local kills = 0
for _, name in ipairs(chains) do
	local log = read(tmp .. "/" .. name .. ".log") or ""
	local killed = select(2, log:gsub("rc=137", ""))
	kills = kills + killed
	t.is(killed, #KILLS[name], name .. ": each kill landed (the process was killed, not done)")
	t.like(log, "final=0", name .. ": the resumed run completes")
	like_reference(name)
	local resumes = select(2, (read(tmp .. "/" .. name .. "/journal.jsonl") or ""):gsub('"ev":"resume"', ""))
	local told = select(2, (read(tmp .. "/" .. name .. "/events.log") or ""):gsub(UNCLOSED:gsub("%p", "%%%0"), ""))
	t.is(resumes, killed, name .. ": a resume entry in the journal after each kill")
	t.is(told, resumes, name .. ": each an event saying the run was not closed")
	local runj = cjson.decode(read(tmp .. "/" .. name .. "/run.json") or "{}")
	t.is(type(runj.resumes) == "table" and #runj.resumes or 0, resumes, name .. ": run.json lists them")
end
t.is(kills, 29, "29 kills, each at its point")
for _, cell in ipairs { "A", "B", "C", "D" } do
	local ok = os.execute("gzip -t " .. q(tmp .. "/kz/cells/" .. cell .. ".csv.gz"))
	t.ok(ok, "kz " .. cell .. ": after the kills and resumes, cells/" .. cell .. ".csv.gz is a whole gzip file")
end

-- Ctrl-C: the run and the resumes end 130 wherever it lands; where the
-- host took it, the run is closed "interrupted" (channels safe) and the
-- next resume says it follows an interruption; where it came too early
-- or too late for that, the next resume says the run was not closed.
local ilog = read(tmp .. "/int.log") or ""
t.is(table.concat(ilog:match("^(.-)final") and { ilog:match("^(.-)final") } or {}, ""):gsub("%s+", " "),
	"rc=130 rc=130 rc=130 rc=130 ", "the run and three resumes interrupted: each exits 130")
t.like(ilog, "final=0", "the last resume completes the run")
like_reference("int")
t.is(resumed_after("int"), "interruption crash interruption crash",
	"each resume tells an interruption from a run that was not closed")
t.is(select(2, (read(tmp .. "/int/events.log") or ""):gsub("interrupted: every channel was made safe", "")), 2,
	"the two interruptions the host took made the channels safe")

if os.getenv("KEEP") then
	t.diag("kept: " .. tmp)
else
	os.execute("rm -rf " .. q(tmp))
end
t.done()
