-- batlab.replay and the refusals of `batlab resume`, without a pty: the
-- replay of finished steps (their summaries back, nothing driven), the
-- step the crash cut short carrying on, and each way a cell cannot be
-- replayed; then the runs `batlab resume` must refuse with exit 2.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local cellmod = require "batlab.cell"
local recording = require "batlab.recording"
local journal = require "batlab.journal"
local replay = require "batlab.replay"
local steps = require "batlab.steps"

local pool = assert(batlab.open { sim = true })
local dev = pool:devices()[1]

local function done_step(n, name, kind, ah)
	return { row = { step = n, step_name = name, cycle = 1, cycle_kind = "measurement" },
		sum = { name = name, kind = kind, ah = ah, wh = ah * 3.7, duration = 600, end_reason = "voltage" },
		v = 3.0 }
end

-- A cell on a virtual channel with a recording (no file) and a replay.
local function new_cell(index, r)
	local cell = cellmod.new(dev:channel(index), { name = "R" .. index, log_sink = function() end })
	local rec = assert(recording.attach(cell, {}))
	local told = {}
	r.on_interrupt = function(why) told.interrupt = why end
	r.on_live = function(msg) told.live = msg end
	cell.replay = replay.new(r)
	return cell, rec, told
end

-- 1. Finished steps come back as they were; what follows runs.
batlab.spawn(function()
	local cell, rec, told = new_cell(0, { done = { done_step(1, "DISCHARGE", "discharge", 0.5),
		done_step(2, "REST", "rest", 0) } })
	local d = steps.discharge(cell, { current = 1, until_v = 3.0 })
	t.is(d.ah, 0.5, "a finished discharge returns its summary")
	t.is(d.end_sample and d.end_sample.voltage, 3.0, "with its last voltage")
	t.is(cell.ch:wait().mode_name, "IDLE", "and drove nothing")
	local r = steps.rest(cell, 60)
	t.is(r.name, "REST", "the rest too")
	t.is(rec.step_no, 2, "the recording is at step 2")
	t.ok(cell.replay ~= nil, "still replaying before the next step")
	local c = steps.charge(cell, { current = 1, max_time = 30 })
	t.is(cell.replay, nil, "the next step ends the replay")
	t.like(told.live or "", "goes on after step 2", "and says so")
	t.is(c.end_reason, "time", "the next step runs on the device")
	t.is(rec.step_no, 3, "as step 3")
	rec:close()
end)
batlab.run()

-- 2. The step a crash cut short carries on from what it had done.
batlab.spawn(function()
	local carry = { step = 2, start = 10, ah = 0.25, wh = 0.9, time = 300, sign = -1, current = 1 }
	local cell, rec, told = new_cell(1, { done = { done_step(1, "CHARGE", "charge", 1.0) },
		open = { step = 2, name = "DISCHARGE", resumable = true, carry = carry } })
	steps.charge(cell, { current = 1, until_v = 4.2 })
	local d = steps.discharge(cell, { current = 1, max_time = 400 })
	t.like(told.live or "", "DISCHARGE %(step 2%) starts again, carrying over 0.2500 Ah", "the step starts again")
	t.is(rec.step_no, 2, "under its own step number")
	t.is(d.end_reason, "time", "its time limit counts the time before the crash")
	t.ok(d.duration >= 400 and d.duration < 420, "duration " .. d.duration .. " s: 300 before, about 100 after")
	t.ok(d.ah > 0.25 + 0.02 and d.ah < 0.25 + 0.04, ("%.4f Ah: 0.25 before the crash and 100 s at 1 A"):format(d.ah))
	rec:close()
end)
batlab.run()

-- 3. What cannot be replayed ends the cell, saying why.
local function refused(index, r, body, pattern, name)
	batlab.spawn(function()
		local cell, rec, told = new_cell(index, r)
		local ok, err = pcall(body, cell)
		t.ok(not ok and tostring(err):find(pattern) ~= nil, name .. ": " .. tostring(err))
		t.like(told.interrupt or "", pattern, name .. ": the runner is told")
		t.is(cell.ch:wait().mode_name, "IDLE", name .. ": nothing was driven")
		rec:close()
	end)
	batlab.run()
end
refused(2, { done = { done_step(1, "DISCHARGE", "discharge", 0.5) } },
	function(cell) steps.charge(cell, { current = 1, until_v = 4.2 }) end,
	"it took another path", "another step than before")
refused(2, { done = { done_step(1, "DISCHARGE", "discharge", 0.5) } },
	function(cell) cell:charge(1) end,
	"drives the channel itself %(cell:charge%)", "raw driving before the finished steps")
refused(3, { open = { step = 1, name = "PULSE", resumable = false, carry = { step = 1, ah = 0, wh = 0, time = 0,
	sign = -1 } } }, function(cell) steps.discharge(cell, { name = "PULSE", current = 1, max_time = 5,
	resumable = false }) end, "declared not resumable", "a step declared not resumable")

-- 4. Impedance measured outside a step comes back as it was.
batlab.spawn(function()
	local cell, rec = new_cell(0, { zs = { 0.0421 } })
	t.is(cell:impedance(), 0.0421, "a measured impedance is replayed")
	t.ok(cell.replay ~= nil, "without ending the replay")
	rec:close()
end)
batlab.run()

-- 5. A finished step whose steps.csv row a crash cut off (journal "end"
-- written, row not) is written when replayed; the others are not.
batlab.spawn(function()
	local missing = done_step(1, "DISCHARGE", "discharge", 0.5)
	missing.missing = true
	local cell = cellmod.new(dev:channel(0), { name = "M", log_sink = function() end })
	local known = {}
	local rec = assert(recording.attach(cell, { on_step = function(row, _, _, k) known[row.step] = k end }))
	cell.replay = replay.new { done = { missing, done_step(2, "REST", "rest", 0) } }
	steps.discharge(cell, { current = 1, until_v = 3.0 })
	steps.rest(cell, 60)
	t.is(known[1], false, "a step whose row is missing: its row is written")
	t.is(known[2], true, "a step whose row is there: not written again")
	rec:close()
end)
batlab.run()

-- 6. Before a charge or discharge step begins, a run that can be resumed
-- clears the device's charge counter (batlab.journal clear_for_step), so
-- a crash before "started" leaves in it only that step's charge; not
-- while a current still counts, nor for a run on the in-process simulator.
local tmp = cli.tmpdir()
local q = cli.quote
batlab.spawn(function()
	local ch = dev:channel(1)
	local jn = assert(journal.open(tmp))
	assert(ch:charge(1))
	for _ = 1, 5 do
		ch:wait()
	end
	t.is(jn:clear_for_step(ch, ch:wait().mode_name), false, "not while the channel counts")
	t.ok(dev:charge(1) > 0, "the counter counts")
	ch:stop()
	t.is(jn:clear_for_step(ch, ch:wait().mode_name), true, "stopped: cleared")
	t.is(dev:charge(1), 0.0, "the counter is 0")
	assert(ch:charge(1))
	for _ = 1, 3 do
		ch:wait()
	end
	ch:stop()
	jn:write({ ev = "run", sim = true })
	t.is(jn:clear_for_step(ch, ch:wait().mode_name), false, "a run on the in-process simulator: left alone")
	t.ok(dev:charge(1) > 0, "its counter as it was")
	jn:close()
end)
batlab.run()
pool:close()

-- 6b. "at" entries go to the file together about once a second (a lab
-- of 256 channels wrote one line a channel a second), flushed sooner by
-- any other entry.
do
	os.execute("mkdir -p " .. q(tmp .. "/jat"))
	local jn = assert(journal.open(tmp .. "/jat"))
	local function lines()
		return select(2, (cli.read(tmp .. "/jat/journal.jsonl") or ""):gsub("\n", ""))
	end
	jn:write({ ev = "at", cell = "X", step = 1, t = 1 })
	jn:write({ ev = "at", cell = "Y", step = 1, t = 1 })
	jn:write({ ev = "at", cell = "X", step = 1, t = 2 })
	t.is(lines(), 1, "the first 'at' is written at once, the next ones within the second wait")
	jn:write({ ev = "end", cell = "Y", step = 1 })
	t.is(lines(), 4, "the next entry of another kind takes them along")
	jn:write({ ev = "at", cell = "X", step = 2, t = 3 })
	jn:close()
	t.is(lines(), 5, "and the close")
end

-- 7. BATLAB_JOURNAL_SIGNAL: the host signals itself at the journal entry
-- named (the kill-and-resume test lands its kills with it).
cli.write(tmp .. "/j.lua", ([[
local journal = require "batlab.journal"
local j = assert(journal.open(%q))
for step = 1, 3 do
	j:write({ ev = "begin", cell = "X", step = step })
	j:write({ ev = "at", cell = "X", step = step })
	j:write({ ev = "at", cell = "X", step = step })
end
print("not killed")
]]):format(tmp .. "/jk"))
os.execute("mkdir -p " .. q(tmp .. "/jk"))
local function killed_at(spec)
	os.remove(tmp .. "/jk/journal.jsonl")
	local out = io.popen(("BATLAB_JOURNAL_SIGNAL=%s %s lua %s 2>&1; echo \"rc=$?\""):format(q(spec),
		q(cli.abs_bin), q(tmp .. "/j.lua"))):read("a")
	local n = select(2, (cli.read(tmp .. "/jk/journal.jsonl") or ""):gsub("\n", ""))
	return out:match("rc=(%d+)"), n
end
local rc, n = killed_at("KILL before at X 2 2")
t.is(rc, "137", "killed")
t.is(n, 5, "just before the second 'at' of step 2")
rc, n = killed_at("KILL after begin X 3")
t.is(rc .. " " .. n, "137 7", "just after step 3's 'begin'")
rc, n = killed_at("KILL after begin X 4")
t.is(rc .. " " .. n, "0 9", "an entry never written: no signal")

-- 8. `batlab resume` refuses what it cannot resume.
cli.write(tmp .. "/p.lua", [[
local steps = require "batlab.steps"
return { name = "p", run = function(cell) steps.rest(cell, 5) return true end }
]])
local code = cli.batlab(("run %s --sim --out %s A --quiet"):format(q(tmp .. "/p.lua"), q(tmp .. "/r")))
t.is(code, 0, "a virtual run to resume")
local j = cli.read(tmp .. "/r/journal.jsonl")
t.like(j, '"ev":"closed"', "its journal says it ended")
local err
code, _, err = cli.batlab("resume " .. q(tmp .. "/r"))
t.is(code, 2, "an ended run: exit 2")
t.like(err, "the run ended %(completed%): there is nothing to resume", "an ended run: why")
-- the host died: no "closed" line, the last one cut in the middle
cli.write(tmp .. "/r/journal.jsonl", j:gsub('[^\n]*"ev":"closed"[^\n]*\n$', '{"ev":"do'))
code, _, err = cli.batlab("resume " .. q(tmp .. "/r"))
t.is(code, 2, "a run on the in-process simulator: exit 2")
t.like(err, "in%-process virtual Batlab, which ended with it", "it cannot be resumed, and why")
-- as if on a real port: a changed procedure is refused
local j2 = cli.read(tmp .. "/r/journal.jsonl"):gsub('"sim":true', '"sim":false'):gsub('"dev":{[^}]*}', '"dev":{}')
cli.write(tmp .. "/r/journal.jsonl", j2)
cli.write(tmp .. "/p.lua", cli.read(tmp .. "/p.lua") .. "-- changed\n")
code, _, err = cli.batlab("resume " .. q(tmp .. "/r"))
t.is(code, 2, "a changed procedure: exit 2")
t.like(err, "p%.lua changed since the run started", "a changed procedure: named")
code, _, err = cli.batlab("resume " .. q(tmp .. "/r") .. " --sim")
t.is(code, 2, "--sim: exit 2")
t.like(err, "a run goes on on its own devices", "--sim: why")
code, _, err = cli.batlab("resume " .. q(tmp .. "/nothing"))
t.is(code, 2, "no run directory: exit 2")
t.like(err, "no journal to resume from", "no run directory: why")

os.execute("rm -rf " .. q(tmp))
t.done()
