-- lua/batlab/steps.lua on the virtual Batlab, in virtual time: every end
-- condition says what ended the step, the summaries agree with the cell
-- model, the device's own stops are told apart from normal ends, the
-- current is shaped within a step, and a current that cannot be set ends
-- the step.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local batlab = require "batlab"
local cellmod = require "batlab.cell"
local steps = require "batlab.steps"

local pool = assert(batlab.open { sim = true, seed = 3 })
local dev = pool:active()

-- Run fn(cell) as a task on channel n; returns what it returned.
local function on(n, fn)
	local cell = cellmod.new(dev:channel(n), { name = "c" .. n, log_sink = function() end })
	local task = batlab.spawn_for(dev:channel(n), fn, cell)
	assert(batlab.run())
	if task.status ~= "done" then
		error("task " .. task.status .. ": " .. tostring(task.error))
	end
	return table.unpack(task.results)
end

local limits = { vmax = 4.2, vmin = 2.8, imax = 4.0, tmax_c = 60 }

-- ---- end conditions ---------------------------------------------------------------

local s = on(0, function(cell)
	cell:limits(limits)
	return steps.discharge(cell, { current = 2.0, until_v = 3.6 })
end)
t.is(s.end_reason, "voltage", "discharge to 3.6 V ends on voltage")
t.ok(s.end_sample.voltage <= 3.6 and s.end_sample.voltage > 3.55, ("at %.3f V"):format(s.end_sample.voltage))
t.ok(steps.ok(s), "a normal end")
t.ok(math.abs(s.avg_i - 2.0) < 0.05, ("average current %.3f A"):format(s.avg_i))
t.ok(s.ah > 0 and s.wh > s.ah * 3.5, ("%.4f Ah, %.4f Wh"):format(s.ah, s.wh))

s = on(0, function(cell)
	return steps.charge(cell, { current = 1.0, until_v = 4.2, max_time = 120 })
end)
t.is(s.end_reason, "time", "a time limit")
t.ok(s.duration >= 120 and s.duration < 122, ("after %.1f s"):format(s.duration))
t.ok(math.abs(s.ah - 120 / 3600) < 0.002, ("1 A for 120 s is %.4f Ah"):format(s.ah))

s = on(1, function(cell)
	cell:limits(limits)
	return steps.discharge(cell, { current = 2.0, max_ah = 0.1 })
end)
t.is(s.end_reason, "charge", "a charge limit")
t.ok(s.ah >= 0.1 and s.ah < 0.1 + 2.0 * 1.5 / 3600, ("at %.5f Ah"):format(s.ah))

s = on(1, function(cell)
	return steps.discharge(cell, { current = 2.0, max_wh = 0.3 })
end)
t.is(s.end_reason, "energy", "an energy limit")
t.ok(s.wh >= 0.3 and s.wh < 0.31, ("at %.4f Wh"):format(s.wh))

s = on(2, function(cell)
	cell:limits(limits)
	return steps.discharge(cell, { current = 1.0, ["until"] = function(smp)
		return smp.voltage < 3.65 and "below 3.65 V" or nil
	end })
end)
t.is(s.end_reason, "below 3.65 V", "a predicate ends the step with its own reason")
t.ok(steps.ok(s), "which is a normal end")

-- heat the cell: the temperature condition ends the step before the device limit
pool:sim_fault(dev, "self_heating", { slot = 3, value = 3.0 })
s = on(3, function(cell)
	cell:limits(limits)
	return steps.charge(cell, { current = 1.0, until_v = 4.3, max_temp_c = 32 })
end)
t.is(s.end_reason, "temperature", "a temperature condition")
t.ok(s.temp_end >= 32 and s.temp_rise > 5, ("%.1f degC, rise %.1f K"):format(s.temp_end, s.temp_rise))
-- now let it hit the device's own limit: a safety stop, not a normal end
s = on(3, function(cell)
	cell:limits{ vmax = 4.2, vmin = 2.8, imax = 4.0, tmax_c = 36 }
	return steps.charge(cell, { current = 1.0, until_v = 4.3 })
end)
t.is(s.end_reason, "safety", "the device's temperature limit is a safety stop")
t.is(s.safety, "TEMP_LIMIT_CHG", "naming the error bit")
t.ok(not steps.ok(s), "and not a normal end")
pool:sim_fault(dev, "self_heating", { slot = 3, value = 0 })
on(3, function(cell) return steps.rest(cell, 1800) end)

-- the charge voltage limit the step was heading for is a normal end
s = on(0, function(cell)
	cell:limits(limits)
	return steps.charge(cell, { current = 2.0 })
end)
t.is(s.end_reason, "voltage", "the device's charge voltage limit ends a charge normally")
t.is(s.safety, nil, "with no safety flag")

-- constant-voltage hold after the CC phase
s = on(0, function(cell)
	cell:limits{ vmax = 4.25, vmin = 2.8, imax = 4.0, tmax_c = 60 }
	return steps.charge(cell, { current = 1.0, until_v = 4.15, cv = { v = 4.15, until_i = 0.3 } })
end)
t.is(s.end_reason, "voltage", "CC phase to 4.15 V")
t.ok(s.cv and s.cv.end_reason == "current", "the CV hold ends on current (" .. tostring(s.cv and s.cv.end_reason) .. ")")
t.ok(s.cv and s.cv.end_sample.voltage < 4.17 and s.cv.end_sample.voltage > 4.12,
	("the voltage held near 4.15 V (%.3f)"):format(s.cv and s.cv.end_sample.voltage or 0))
t.ok(s.cv and math.abs(s.cv.end_sample.current) <= 0.3, "the current tapered below 0.3 A")

-- a removed cell ends the step
s = on(1, function(cell)
	cell:limits(limits)
	steps.charge(cell, { current = 2.0, until_v = 4.0 })
	local smp
	return steps.discharge(cell, { current = 1.0, until_v = 3.0, on_sample = function(x)
		smp = x
		if x.step_time > 30 and x.step_time < 32 then
			pool:sim_fault(dev, "cell_remove", { slot = 1 })
		end
	end })
end)
t.is(s.end_reason, "removed", "a removed cell ends the step as removed")
t.ok(not steps.ok(s), "not a normal end")
pool:sim_fault(dev, "cell_insert", { slot = 1 })

-- rest, and the argument checks
s = on(2, function(cell) return steps.rest(cell, 30) end)
t.is(s.end_reason, "time", "rest ends on time")
t.ok(s.duration >= 30 and s.duration < 32 and s.ah == 0, "30 s at no current")
t.raises(function() steps.charge(nil, { current = 9 }) end, "current must be", "a current above 4.5 A raises")
t.raises(function() steps.rest(nil, -1) end, "seconds must be", "a negative rest raises")

-- ---- options: a typo or a wrong type raises at the call, before anything starts ----

local function call_err(fn)
	local okay, err = pcall(fn)
	return not okay and tostring(err) or nil
end
local here = "test_steps%.lua:%d+: "
local err = call_err(function() steps.discharge(nil, { current = 2, untl_v = 3.0 }) end)
t.like(err, here .. "unknown option 'untl_v' to steps%.discharge %(did you mean until_v%?%)",
	"an unknown option raises at the caller's line, with a suggestion")
t.like(err, "steps%.discharge takes: .*current,.*until_v", "and the names allowed")
t.like(call_err(function() steps.charge(nil, { current = 1, until_v = 4.1, cv = { untl_i = 0.1 } }) end),
	here .. "unknown option 'untl_i' in cv to steps%.charge %(did you mean until_i%?%)", "in cv")
t.like(call_err(function() steps.charge(nil, { current = 1, trickle = { engage = 4.0, current = 0.5 } }) end),
	"unknown option 'engage' in trickle to steps%.charge %(did you mean engage_v%?%)", "in trickle")
t.like(call_err(function() steps.discharge(nil, { current = 1, pulse = { on = 5, of = 2 } }) end),
	"unknown option 'of' in pulse to steps%.discharge %(did you mean o", "in pulse")
t.like(call_err(function() steps.charge(nil, { current = 1, cv_approach = { v = 4.1, stepsize = 0.1 } }) end),
	"unknown option 'stepsize' in cv_approach to steps%.charge %(did you mean step%?%)", "in cv_approach")
t.like(call_err(function() steps.discharge(nil, { current = 1, cv = { until_i = 0.1 } }) end),
	"unknown option 'cv' to steps%.discharge", "cv is a charge's option only")
t.like(call_err(function() steps.rest(nil, 60, { nmae = "R" }) end),
	here .. "unknown option 'nmae' to steps%.rest %(did you mean name%?%)", "rest's options")
t.like(call_err(function() steps.cv_hold(nil, { v = 4.1, until_current = 0.1 }) end),
	here .. "unknown option 'until_current' to steps%.cv_hold", "cv_hold's options")
t.like(call_err(function() steps.discharge(nil, { current = 2, until_v = "3.0" }) end),
	here .. "option until_v to steps%.discharge must be a number, got string", "a value of the wrong type")
t.like(call_err(function() steps.charge(nil, { current = 1, cv = 0.1 }) end),
	"cv to steps%.charge must be a table, got number", "a nested table that is not one")
t.like(call_err(function() steps.discharge(nil, { current = 2, ["until"] = "3 V" }) end),
	"option until to steps%.discharge must be a function, got string", "until must be a function")
-- nothing started: the channel is as it was
s = on(1, function(cell)
	cell:limits(limits)
	local before = cell.device:read_raw(1, batlab.MODE)
	local okay = pcall(steps.discharge, cell, { current = 2, untl_v = 3.0 })
	return { okay = okay, before = before, after = cell.device:read_raw(1, batlab.MODE) }
end)
t.ok(not s.okay and s.after == s.before and s.after ~= batlab.MODE_DISCHARGE, "and the channel never started")

-- ---- currents below ZERO_AMP_THRESH ---------------------------------------------------

-- a constant-voltage hold until 0.1 A: below the device's 0.25 A threshold
-- the current would read 0; the step lowers it for its duration
local zat0 = dev:read_raw(batlab.UNIT, batlab.ZERO_AMP_THRESH)
local zat_in, cv_last = nil, nil
s = on(0, function(cell)
	cell:limits{ vmax = 4.25, vmin = 2.8, imax = 4.0, tmax_c = 60 }
	return steps.charge(cell, { current = 1.0, until_v = 4.15, cv = { v = 4.15, until_i = 0.1, max_time = 7200 },
		on_sample = function(smp)
			zat_in = pool:sim_reg(dev, batlab.UNIT, batlab.ZERO_AMP_THRESH)
			cv_last = smp
		end })
end)
t.is(zat0, 2000, "ZERO_AMP_THRESH is 0.25 A from the factory")
t.ok(s.cv and s.cv.end_reason == "current", "the hold until 0.1 A ends on current ("
	.. tostring(s.cv and s.cv.end_reason) .. ")")
t.ok(cv_last and cv_last.current > 0.02 and cv_last.current <= 0.1,
	("the last current read %.3f A, not 0"):format(cv_last and cv_last.current or -1))
t.ok(s.cv and s.cv.ah > 0.01, ("the hold counted its charge (%.4f Ah)"):format(s.cv and s.cv.ah or 0))
t.is(zat_in, 400, "ZERO_AMP_THRESH was 0.05 A during the step")
t.ok(s.zero_amp and math.abs(s.zero_amp.was - 0.25) < 1e-3 and math.abs(s.zero_amp.set - 0.05) < 1e-3,
	"the summary says it was lowered from 0.25 A to 0.05 A")
t.is(dev:read_raw(batlab.UNIT, batlab.ZERO_AMP_THRESH), 2000, "and it is back to 0.25 A after the step")

-- a current below the threshold is counted
s = on(2, function(cell)
	cell:limits(limits)
	return steps.discharge(cell, { current = 0.2, max_time = 600 })
end)
t.ok(math.abs(s.ah - 0.2 * 600 / 3600) < 0.002, ("0.2 A for 600 s counted: %.4f Ah"):format(s.ah))
t.ok(s.zero_amp ~= nil and dev:read_raw(batlab.UNIT, batlab.ZERO_AMP_THRESH) == 2000, "lowered, then put back")
-- a step at 1 A leaves it alone
s = on(2, function(cell) return steps.discharge(cell, { current = 1.0, max_time = 30 }) end)
t.is(s.zero_amp, nil, "a step at 1 A leaves the threshold alone")
t.like(call_err(function() steps.charge(nil, { current = 1, cv = { until_i = 0.005 } }) end),
	here .. "steps%.charge: cv%.until_i = 0%.005 A is below the smallest current the device counts",
	"a current the device cannot count is refused")

-- ---- the model agrees with the measured charge -------------------------------------

on(2, function(cell)
	cell:limits(limits)
	return steps.charge(cell, { current = 2.0, until_v = 4.1 })
end)
local truth_before = pool:sim_cell(dev, 2)
s = on(2, function(cell)
	return steps.discharge(cell, { current = 2.0, until_v = 3.3 })
end)
local truth_after = pool:sim_cell(dev, 2)
local model_ah = truth_after.charge_out_ah - truth_before.charge_out_ah
t.ok(s.ah > 0.5 and math.abs(s.ah - model_ah) / model_ah < 0.01,
	("discharged %.4f Ah measured, %.4f Ah in the model (within 1 %%)"):format(s.ah, model_ah))
truth_before = pool:sim_cell(dev, 2)
s = on(2, function(cell)
	return steps.charge(cell, { current = 1.5, until_v = 4.0 })
end)
truth_after = pool:sim_cell(dev, 2)
model_ah = truth_after.charge_in_ah - truth_before.charge_in_ah
t.ok(s.ah > 0.5 and math.abs(s.ah - model_ah) / model_ah < 0.01,
	("charged %.4f Ah measured, %.4f Ah in the model (within 1 %%)"):format(s.ah, model_ah))

-- ---- the current within a step ---------------------------------------------------------

-- the CV approach tapers the current before the voltage limit; impedance is
-- measured on schedule
local late_max, zs = 0, 0
s = on(0, function(cell)
	cell:limits(limits)
	steps.discharge(cell, { current = 2.0, until_v = 3.9 })
	return steps.charge(cell, { current = 2.0, until_v = 4.15, max_time = 1800,
		cv_approach = { v = 4.15, step = 0.1 }, impedance_every = 300,
		on_sample = function(smp)
			if smp.step_time >= 1500 then
				late_max = math.max(late_max, math.abs(smp.current))
			end
		end,
		on_impedance = function() zs = zs + 1 end })
end)
t.is(s.end_reason, "time", "tapering, the charge stays below the voltage limit")
t.ok(late_max > 0 and late_max < 1.9, ("the CV approach lowered the current from 2 A to %.2f A"):format(late_max))
t.ok(#s.impedance >= 1 and #s.impedance == zs, ("%d impedance readings, each reported"):format(#s.impedance))
t.ok(#s.impedance >= 1 and s.impedance[1].ohms > 0 and s.impedance[1].step_time >= 300,
	"the first after 300 s of the step")

-- a current that cannot be set ends the step with the channel stopped
local stopped
s = on(1, function(cell)
	cell:limits(limits)
	local failing = setmetatable({
		set_current = function() return nil, "write refused", "EIO" end,
		stop = function() stopped = true return cell:stop() end,
	}, { __index = function(_, k)
		local v = cell[k]
		if type(v) == "function" then
			return function(_, ...) return v(cell, ...) end
		end
		return v
	end })
	return steps.discharge(failing, { current = 1.0, until_v = 3.0, pulse = { on = 20, off = 5 } })
end)
t.is(s.end_reason, "device error", "a failed current write ends the step")
t.is(s.safety, "write refused", "with the error as the safety reason")
t.ok(stopped and not steps.ok(s), "the channel was stopped; not a normal end")
t.ok(s.duration >= 20 and s.duration < 22, ("at the first pulse change (%.1f s)"):format(s.duration))

-- ---- guards ----------------------------------------------------------------------------

local guard = steps.default_guards()
t.is(guard({ vcc = 4.0, voltage = 3.7, current = -1 }), nil, "one low VCC reading is tolerated")
t.is(guard({ vcc = 4.0, voltage = 3.7, current = -1 }), "low VCC", "two in a row abort")
guard = steps.default_guards()
local why
for k = 1, 15 do
	why = why or guard({ vcc = 5, voltage = 4.0 - 0.25 * (k % 2), current = -1.0 })
end
t.is(why, "voltage jumps: possible hardware problem", "repeated voltage drops at steady current abort")

pool:close()
t.done()
