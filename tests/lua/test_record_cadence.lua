-- The recording's sample path without Lua (issue 14): batlab.recorder
-- calls on_sample only at the sample time it asked for, batlab.recording
-- asks only for what it needs (the journal's "at" entries, the progress),
-- cell.last is looked up, and the Lexcelon level-1 rows are written in C
-- exactly as the Lua wrote them (checked against the Lua writer,
-- lexcelon_log's level1, fed every sample with the old rules), on the
-- virtual Batlab in virtual time.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local batlab = require "batlab"
local cellmod = require "batlab.cell"
local csv = require "batlab.csv"
local lex = require "batlab.lexcelon_log"
local recording = require "batlab.recording"

local tmp = cli.tmpdir()
local pool = assert(batlab.open { sim = true })
local dev = pool:active()

-- ---- batlab.recorder: on_sample's answer is when it is called next ----------------------

local function times_apart(times)
	local min, max = math.huge, 0
	for i = 2, #times do
		min, max = math.min(min, times[i] - times[i - 1]), math.max(max, times[i] - times[i - 1])
	end
	return min, max
end

local every10, every, never = {}, {}, {}
local r10 = assert(batlab.recorder(dev:channel(0), nil, { on_sample = function(s)
	every10[#every10 + 1] = s.time
	return s.time + 10
end }))
local r1 = assert(batlab.recorder(dev:channel(0), nil, { on_sample = function(s)
	every[#every + 1] = s.time -- returns nothing: every sample
end }))
local rn = assert(batlab.recorder(dev:channel(0), nil, { on_sample = function(s)
	never[#never + 1] = s.time
	return math.huge
end }))
batlab.sleep(95.5) -- the last call about 5 s ago
local samples = r10:stats().samples
t.ok(samples >= 94, ("a report a second for 95 s (%d samples)"):format(samples))
t.is(#every, samples, "on_sample returning nothing: called at every sample")
t.is(#never, 1, "returning math.huge: called at the first sample only")
local lo, hi = times_apart(every10)
t.ok(#every10 >= samples / 10 - 1 and #every10 <= samples / 10 + 1,
	("returning time + 10: %d calls in %d samples"):format(#every10, samples))
t.ok(lo >= 10 - 1e-6 and hi < 11, ("10 s of sample time apart at least, the first sample past it (%.3f..%.3f)")
	:format(lo, hi))
local before = #every10
rn:wake()
r10:wake()
batlab.sleep(1.2)
t.is(#never, 2, "rec:wake(): called at the next sample whatever it said")
t.is(#every10, before + 1, "the one after the wake too")
t.ok(every10[#every10] - every10[#every10 - 1] < 10, "before its 10 s were up")
for _, r in ipairs { r10, r1, rn } do
	assert(r:close())
end

-- ---- batlab.recording: Lua sees the samples it asked for --------------------------------

-- Every call from the C recorder into the recording's Lua, counted (a
-- test's wrapper: the library is not patched).
local real_recorder = batlab.recorder
local lua_calls = 0
batlab.recorder = function(ch, path, o)
	local f = o.on_sample
	o.on_sample = f and function(s)
		lua_calls = lua_calls + 1
		return f(s)
	end
	return real_recorder(ch, path, o)
end

local entries = {}
local journal = { write = function(_, e)
	entries[#entries + 1] = e
	return true
end }
local progress = {}
local cell = cellmod.new(dev:channel(1), { name = "J1" })
local rec = assert(recording.attach(cell, { journal = journal, journal_every = 60,
	on_sample = function(s) progress[#progress + 1] = s.time end, sample_every = 5 }))
batlab.recorder = real_recorder
local task = batlab.spawn_for(cell.ch, function()
	cell:begin_step("DISCHARGE")
	assert(cell:discharge(0.5))
	batlab.sleep(600)
	cell:idle()
	cell:end_step { name = "DISCHARGE", kind = "discharge", duration = 600, ah = 0.08, wh = 0.3 }
end)
assert(batlab.run())
t.is(task.status, "done", "a 10-minute discharge recorded")
local n = rec:stats().samples
local at = {}
for _, e in ipairs(entries) do
	if e.ev == "at" then
		at[#at + 1] = e.t
	end
end
t.ok(#at >= 10 and #at <= 12, ("the journal: where the cell is every 60 s (%d entries)"):format(#at))
lo = times_apart(at)
t.ok(lo >= 60 - 1e-6, ("60 s apart at least (%.3f)"):format(lo))
lo, hi = times_apart(progress)
t.ok(#progress >= n / 5 - 2 and lo >= 5 - 1e-6 and hi < 6,
	("sample_every = 5: on_sample every 5 s (%d calls for %d samples, %.3f..%.3f apart)"):format(#progress, n, lo, hi))
t.ok(lua_calls <= #progress + #at + 4,
	("the C recorder called Lua %d times for %d samples: only when it was asked to"):format(lua_calls, n))

-- cell.last and rec.last: the channel's latest sample, nobody storing it
local last = cell.ch.last
t.ok(last ~= nil, "the channel has a latest sample")
t.is(rawget(cell, "last"), nil, "cell.last is not stored in the cell")
t.is(cell.last and cell.last.time, last.time, "cell.last is ch.last")
t.is(rec.last and rec.last.time, last.time, "and so is the recording's")
batlab.sleep(3)
t.ok(cell.last.time >= last.time + 2, "a later sample, without cell:wait")
rec:close()

-- ---- Lexcelon level-1 rows: written in C as the Lua wrote them ----------------------------

-- The old Lua rules, fed every sample: the oracle.
local function lua_rows(r, log, period)
	local o = { due = nil, z_seen = 0 }
	local row = { name = r.cell.name, serial = r.lex.serial, channel = r.lex.channel }
	return function(smp)
		local zs = r.impedance.values
		if #zs > o.z_seen then
			o.z_seen, o.z = #zs, zs[#zs]
		end
		if r.step_no == 0 then
			return
		end
		local on_time = not o.due or smp.time >= o.due - 1e-6
		if not (on_time or o.z) then
			return
		end
		if on_time then
			local due = (o.due or smp.time) + period
			o.due = due > smp.time + 1e-6 and due or smp.time + period
		end
		row.time, row.epoch = smp.time - r.t0, r.epoch and (r.epoch + smp.time - r.t0) or nil
		row.voltage, row.current, row.temp_c, row.vcc = smp.voltage, smp.current, smp.temp_c, smp.vcc
		row.op_raw, row.sp_raw, row.duty = smp.op_raw, smp.sp_raw, smp.duty
		row.impedance, row.state = o.z, r.labels.step_name or "IDLE"
		local c = r.carry
		row.energy_wh = smp.energy_wh and math.abs(smp.energy_wh) + (c and c.wh or 0)
		row.charge_ah = smp.charge_ah and math.abs(smp.charge_ah) + (c and c.ah or 0)
		o.z = nil
		assert(log:level1(row))
	end
end

-- A cell whose level-1 rows go to <name>.csv (C) and <name>-lua.csv (the
-- oracle), its level-2 rows to <name>-l2.csv, or with shared: all to
-- <name>.csv.
local function lex_cell(index, name, o)
	local opts = { start_time = 1700000000.25, utc = o.utc, flush_steps_only = o.lazy }
	local c = { path = tmp .. "/" .. name .. ".csv", opts = opts }
	c.log = assert(lex.open(c.path, "{}", opts))
	c.ref = assert(lex.open(tmp .. "/" .. name .. "-lua.csv", "{}", opts))
	c.l2 = o.shared and c.log or assert(lex.open(tmp .. "/" .. name .. "-l2.csv", nil, opts))
	c.cell = cellmod.new(dev:channel(index), { name = name })
	local oracle
	c.rec = assert(recording.attach(c.cell, { epoch = o.epoch, t0 = batlab.now(),
		lexcelon = { log1 = c.log, log2 = c.l2, period = o.period, serial = 262209, channel = index },
		on_sample = function(s) oracle(s) end }))
	oracle = lua_rows(c.rec, c.ref, o.period)
	return c
end

local function run_steps(c, disk_rows)
	local cell = c.cell
	batlab.sleep(5) -- before step 1: no rows
	cell:begin_step("CHARGE")
	assert(cell:charge(1.0))
	batlab.sleep(10.2)
	disk_rows[#disk_rows + 1] = select(2, lex.read(cli.read(c.path)))
	assert(cell:impedance())
	batlab.sleep(7)
	assert(cell:report_interval(4)) -- a gap longer than the period: the grid starts again
	batlab.sleep(13)
	assert(cell:report_interval(1))
	batlab.sleep(6)
	cell:end_step { name = "CHARGE", kind = "charge", duration = 36, ah = 0.01, wh = 0.04 }
	-- a step resumed after a crash: its rows carry on from what it had done
	c.rec.resumed = { step = 2, start = 40, ah = 0.25, wh = 0.9, time = 300, sign = -1 }
	cell:begin_step("DISCHARGE")
	assert(cell:discharge(1.0))
	batlab.sleep(12)
	cell:idle()
	cell:end_step { name = "DISCHARGE", kind = "discharge", duration = 12, ah = 0.26, wh = 0.95 }
	batlab.sleep(3) -- after the step: rows without its carry
end

local A = lex_cell(2, "A,1", { period = 2.5, epoch = 1700000100.125 })
local B = lex_cell(3, "B", { period = 1, utc = true, lazy = true })
local C = lex_cell(0, "C", { period = 1, shared = true })
local on_disk = { A = {}, B = {}, C = {} }
local tasks = {}
-- in a fixed order (pairs' order changes from run to run, and with it
-- which channel's requests go first)
for _, k in ipairs { "A", "B", "C" } do
	local c = ({ A = A, B = B, C = C })[k]
	tasks[#tasks + 1] = batlab.spawn_for(c.cell.ch, function() run_steps(c, on_disk[k]) end)
end
assert(batlab.run())
for _, tk in ipairs(tasks) do
	t.is(tk.status, "done", "the steps ran (" .. tostring(tk.error) .. ")")
end
for _, c in ipairs { A, B, C } do
	assert(c.rec:close())
	assert(c.log:close() and c.ref:close() and c.l2:close())
end
t.is(A.rec.failed, nil, "no recording failed")

local function level1_lines(path)
	local out = {}
	for line in cli.read(path):gmatch("[^\n]+") do
		local f = csv.parse(line)[1]
		if f[5] and f[5] ~= "" and f[1] ~= "Cell Name" then
			out[#out + 1] = line
		end
	end
	return out
end

for _, c in ipairs { A, B } do
	local text, ref = cli.read(c.path), cli.read(tmp .. "/" .. c.cell.name .. "-lua.csv")
	t.ok(#text > 500, ("%s: level-1 rows written (%d bytes)"):format(c.cell.name, #text))
	t.is(text, ref, c.cell.name .. ": the C rows are the Lua rows, byte for byte")
	t.is(c.log.rows, c.ref.rows, c.cell.name .. ": and the log counts them")
end
local a = level1_lines(A.path)
t.like(a[1], '^"A,1",262209,2,2023%-11%-14 %d%d:%d%d:%d%d%.%d%d%d%d%d%d,', "fields: cell (quoted), serial, channel, date")
-- ~36 s of 1 s reports: a row each at 1 s, one per 2.5 at 2.5 s (~21 fewer)
t.ok(#level1_lines(B.path) > #a + 15, ("period 1 s: more rows than 2.5 s (%d, %d)"):format(#level1_lines(B.path), #a))
t.like(level1_lines(B.path)[1], "^B,262209,3,2023%-11%-14 22:13:2%d%.%d+,", "utc: the date in UTC")
local zrow
for _, line in ipairs(a) do
	local f = csv.parse(line)[1]
	zrow = zrow or (f[8] ~= "" and f)
end
t.ok(zrow and tonumber(zrow[8]) > 0, "an impedance row, with its ohms")

-- the flush: at every row, or only at step ends (the rows on the disk in
-- the middle of the step)
t.ok(#on_disk.A[1] >= 3, ("flush per row: the rows on the disk at once (%d)"):format(#on_disk.A[1]))
t.is(#on_disk.B[1], 0, "flush_steps_only: none before the step's end")

-- one log for both levels: each step's level-2 row after its level-1 rows
local order = {}
for _, f in ipairs(select(2, lex.read(cli.read(C.path)))) do
	local what = f[5] ~= "" and f[11] or ("L2 " .. f[12])
	if what ~= order[#order] then
		order[#order + 1] = what
	end
end
t.is(table.concat(order, "|"), "CHARGE|L2 CHARGE|DISCHARGE|L2 DISCHARGE|DISCHARGE",
	"the level-2 rows come between the level-1 rows where the steps end")

-- ---- a Lexcelon log closed under the recording: told once ---------------------------------

local errs = {}
local D = { log = assert(lex.open(tmp .. "/D.csv", "{}", {})) }
D.cell = cellmod.new(dev:channel(1), { name = "D" })
D.rec = assert(recording.attach(D.cell, { lexcelon = { log1 = D.log, period = 1, serial = 1, channel = 1 },
	on_error = function(msg, code) errs[#errs + 1] = { msg = msg, code = code } end }))
batlab.spawn_for(D.cell.ch, function()
	D.cell:begin_step("REST")
	batlab.sleep(3)
	D.log:close()
	batlab.sleep(5)
end)
assert(batlab.run())
t.is(#errs, 1, "rows that cannot be written: reported once")
t.is(errs[1] and errs[1].msg, "Lexcelon log: " .. tmp .. "/D.csv: log is closed", "saying which log and why")
t.is(errs[1] and errs[1].code, nil, "as the Lua did (no code)")
t.is(D.rec:stats().error, nil, "the time series itself did not fail")
local written = #level1_lines(tmp .. "/D.csv")
t.ok(written >= 2 and written <= 4, ("the rows before the close are in the file (%d)"):format(written))
D.rec:close()
t.ok(D.log.rows >= written + 4, ("and the log counts every row tried (%d)"):format(D.log.rows))

t.raises(recording.attach, "lexcelon.log1 must be an open batlab.lexcelon_log", "a closed log is refused",
	cellmod.new(dev:channel(1)), { lexcelon = { log1 = D.log } })
t.raises(batlab.recorder, "lexcelon.file must be a Lua file", "batlab.recorder: lexcelon.file checked",
	dev:channel(1), nil, { lexcelon = { file = "x" } })
t.raises(batlab.recorder, "lexcelon.period must be a number > 0", "and the period",
	dev:channel(1), nil, { lexcelon = { file = io.stdout, period = 0 } })

pool:close()
t.done()
