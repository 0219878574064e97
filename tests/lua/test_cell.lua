-- lua/batlab/cell.lua (the object a procedure gets) and lua/batlab/wait.lua
-- (wait_until), on a virtual Batlab in virtual time.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local batlab = require "batlab"
local cellmod = require "batlab.cell"
local wait = require "batlab.wait"

t.is(type(cellmod.new), "function", "batlab.cell is a module with new()")
t.is(wait.wait_until, wait.until_, "wait.wait_until is wait.until_")
t.raises(cellmod.new, "batlab.Channel expected", "new() without a channel raises")
t.raises(cellmod.new, "batlab.Channel expected", "new(42) raises", 42)

local pool = assert(batlab.open { sim = true })
local dev = pool:active()
local ch = dev:channel(2)

t.raises(cellmod.new, "options table expected", "new(ch, 42) raises", ch, 42)

-- ---- fields and defaults -------------------------------------------------------
local c = cellmod.new(ch)
t.is(c.name, "1000:2", "default name SERIAL:INDEX")
t.is(c.device, dev, "cell.device")
t.is(c.channel, 2, "cell.channel is the index")
t.is(c.ch, ch, "cell.ch is the Channel")
t.is_deeply(c.records, {}, "no records yet")
t.is(c.last, nil, "no sample yet")
t.is(tostring(c), "cell 1000:2", "tostring")

local named = cellmod.new(dev:channel(3), { name = "A1" })
t.is(named.name, "A1", "a given name")

-- ---- log ---------------------------------------------------------------------------
local lines = {}
c.log_sink = function(line, who)
	lines[#lines + 1] = line
	t.is(who, c, "the sink gets the cell")
end
local line = c:log("capacity %.2f Ah after %d steps", 2.345, 3)
t.is(line, "capacity 2.35 Ah after 3 steps", "log formats the message")
t.is(lines[1], line, "and sends it to the sink, which adds its own time and name (one clock)")
c:log("100% plain")
t.is(lines[2], "100% plain", "a single argument is not a format")

-- ---- record ---------------------------------------------------------------------------
local seen_records = {}
c.on_record = function(fields) seen_records[#seen_records + 1] = fields end
t.is(c:record { capacity_ah = 2.5, verdict = "pass" }, c, "record returns the cell")
c:record { capacity_ah = 2.4, impedance = 0.05 }
t.is_deeply(c.records, { capacity_ah = 2.4, verdict = "pass", impedance = 0.05 },
	"records accumulate, later keys win")
t.is(#seen_records, 2, "on_record sees every call")
t.raises(function() c:record(5) end, "table expected", "record(5) raises")

-- ---- a procedure through the cell ----------------------------------------------------
local samples = 0
c.on_sample = function(s, who)
	samples = samples + 1
	t.ok(who == c or samples > 1, "on_sample gets the cell")
end
local task = batlab.spawn_for(ch, function(cell)
	assert(cell:limits { vmax = 4.25, vmin = 2.5, imax = 4.0, tmax_c = 50 })
	assert(cell:discharge(2.0))
	local s = assert(cell:wait())
	assert(s.mode_name == "DISCHARGE")
	local ok, why = cell:wait_until(function(x) return x and x.step_time >= 30 end, 100)
	assert(ok, why)
	assert(cell:set_current(1.0))
	local ok2, why2 = cell:wait_until(function(x) return x.voltage > 10 end, 5)
	assert(cell:idle())
	cell:record { ah = cell.last.charge_ah }
	return ok2, why2, cell.last.step_time
end, c)
t.ok(batlab.run(), "a procedure runs through the cell")
t.is(task.status, "done", "it finished: " .. tostring(task.error))
t.is(task.results[1], false, "wait_until returns false on timeout")
t.is(task.results[2], "timeout", "with 'timeout'")
-- about 35 s of reports, less the first after the step began (settling)
t.ok(samples >= 33, "on_sample saw every sample (" .. samples .. ")")
t.ok(c.records.ah < -0.015, "the discharged charge was recorded (" .. tostring(c.records.ah) .. ")")
t.is(c.last.mode_name, "DISCHARGE", "cell.last is the last sample seen through cell:wait")

-- ---- wait.until_ ---------------------------------------------------------------------
t.raises(wait.until_, "condition function expected", "until_(nil) raises")
t.raises(wait.until_, "timeout must be", "until_(f, -1) raises", function() end, -1)
t.is(wait.until_(function() return true end, 0), true, "a condition true at once: true, no wait")
local t0 = batlab.now()
local ok, why = wait.until_(function() return false end, 3)
t.is(ok, false, "polling without a source times out")
t.is(why, "timeout", "'timeout'")
t.near(batlab.now() - t0, 3, 1e-6, "after exactly the timeout (virtual time)")
local n = 0
t.is(wait.until_(function() n = n + 1; return n >= 3 end), true, "polling until true")
local start = batlab.now()
t.is(wait.until_(function(s) return s and s.time - start >= 4 end, nil, ch), true,
	"on a channel: true at the report that satisfies it")
t.ok(batlab.now() - start >= 4 and batlab.now() - start < 6, "after about 4 s")

-- in a sandboxed procedure
local engine_ok = pcall(require, "batlab.cell")
t.ok(engine_ok, "require 'batlab.cell' works")

pool:close()
t.done()
