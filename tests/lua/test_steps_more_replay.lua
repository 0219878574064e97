-- The steps of batlab.steps_more and batlab.profile after a crash of the
-- host (batlab.replay, as `batlab resume` uses it), without a pty: finished
-- steps of a pulse train come back as they were with nothing driven; a
-- constant-power step and a condition-ended rest cut short carry on from
-- what they had done (time and charge); profile playback, declared not
-- resumable, ends the cell instead.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local batlab = require "batlab"
local cellmod = require "batlab.cell"
local recording = require "batlab.recording"
local replay = require "batlab.replay"
local more = require "batlab.steps_more"
local profile = require "batlab.profile"

local pool = assert(batlab.open { sim = true })
local dev = pool:devices()[1]

local function done_step(n, name, kind, ah)
	return { row = { step = n, step_name = name, cycle = 0, cycle_kind = "other" },
		sum = { name = name, kind = kind, ah = ah, wh = ah * 3.7, duration = 10, end_reason = "time" }, v = 3.7 }
end

local function new_cell(index, r)
	local cell = cellmod.new(dev:channel(index), { name = "M" .. index, log_sink = function() end })
	local rec = assert(recording.attach(cell, {}))
	local told = {}
	r.on_interrupt = function(why) told.interrupt = why end
	r.on_live = function(msg) told.live = msg end
	cell.replay = replay.new(r)
	return cell, rec, told
end

-- 1. a pulse train's finished levels replayed, the step after it runs
batlab.spawn(function()
	local cell, rec, told = new_cell(0, { done = { done_step(1, "P 1.1", "discharge", 0.005),
		done_step(2, "P 1.2", "rest", 0) } })
	cell:limits{ vmax = 4.25, vmin = 2.6, imax = 4.0, tmax_c = 60 }
	local g = more.pulses(cell, { name = "P", levels = { { current = -2, time = 10 }, { current = 0, time = 40 } } })
	t.is(#g.steps, 2, "the train's two levels")
	t.is(g.steps[1].ah, 0.005, "come back with their summaries")
	t.is(cell.ch:wait().mode_name, "IDLE", "and drove nothing")
	local c = more.cccv(cell, { current = 1, v = 4.2, max_time = 30 })
	t.is(rec.step_no, 3, "the step after them runs as step 3")
	t.is(c.end_reason, "time", "on the device")
	t.like(told.live or "", "goes on after step 2", "the replay says where it goes on")
	rec:close()
end)
batlab.run()

-- 2. constant power cut short: carries on
batlab.spawn(function()
	local carry = { step = 1, start = 0, ah = 0.1, wh = 0.37, time = 300, sign = -1, current = 1 }
	local cell, rec, told = new_cell(1, { open = { step = 1, name = "POWER", resumable = true, carry = carry } })
	local s = more.power(cell, { watts = 3.7, stop = { time = 400 } })
	t.like(told.live or "", "POWER %(step 1%) starts again, carrying over 0%.1000 Ah", "the power step starts again")
	t.is(s.end_reason, "time", "its time condition counts the time before the crash")
	t.ok(s.duration >= 400 and s.duration < 410, ("%.1f s: 300 before, about 100 after"):format(s.duration))
	t.ok(s.ah > 0.1 + 0.02 and s.ah < 0.1 + 0.035, ("%.4f Ah: 0.1 before and 100 s at about 1 A"):format(s.ah))
	rec:close()
end)
batlab.run()

-- 3. a rest with a condition, cut short: the rest of its time
batlab.spawn(function()
	local carry = { step = 1, start = 0, ah = 0, wh = 0, time = 500, sign = 0 }
	local cell, rec = new_cell(2, { open = { step = 1, name = "RELAX", resumable = true, carry = carry } })
	local r = more.rest(cell, 600, { name = "RELAX", stop = { v_below = 0.5 } })
	t.is(r.end_reason, "time", "a rest cut short ends on its time")
	t.ok(r.duration >= 600 and r.duration < 603, ("after %.1f s in all"):format(r.duration))
	rec:close()
end)
batlab.run()

-- 4. profile playback is not resumable: the cell ends instead
batlab.spawn(function()
	local cell, rec, told = new_cell(3, { open = { step = 1, name = "PROFILE", resumable = false,
		carry = { step = 1, ah = 0, wh = 0, time = 0, sign = -1 } } })
	local ok, err = pcall(profile.play, cell, { points = { { 0, -1 }, { 10, -1 } } })
	t.ok(not ok and tostring(err):find("declared not resumable"), "a profile cut short: " .. tostring(err))
	t.like(told.interrupt or "", "declared not resumable", "the runner is told")
	t.is(cell.ch:wait().mode_name, "IDLE", "nothing was driven")
	rec:close()
end)
batlab.run()
pool:close()
t.done()
