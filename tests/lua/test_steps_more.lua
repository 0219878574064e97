-- batlab.conditions, batlab.steps_more and batlab.profile on the virtual
-- Batlab in virtual time: conditions fire under their names (any, all,
-- shorthands, dV/dt, -dV, temperature rise), steps end on them and say
-- which; constant power and resistance hold V x I and V / I; the one-step
-- CCCV ends on its current; groups repeat n times, until a condition, or
-- end on a condition of theirs inside a step; profile playback moves the
-- charge the table says and stops at the device's voltage limit mid-profile.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local batlab = require "batlab"
local cellmod = require "batlab.cell"
local C = require "batlab.conditions"
local more = require "batlab.steps_more"
local profile = require "batlab.profile"

-- ---- conditions on made-up samples ------------------------------------------------

local function feed(spec, samples)
	local check = C.compile(spec)
	for k, s in ipairs(samples) do
		local r = check(s, s.sum)
		if r then
			return r, k
		end
	end
	return nil
end
local function smp(v, i, temp, dur, ah)
	return { voltage = v, current = i, temp_c = temp, sum = { duration = dur, ah = ah or 0, wh = 0, temp_start = 25 } }
end

local r, k = feed({ v_below = 3.0, time = 10 }, { smp(3.5, -1, 25, 1), smp(3.2, -1, 25, 5), smp(2.99, -1, 25, 6) })
t.is(r, "voltage", "a shorthand table fires under its kind")
t.is(k, 3, "at the sample that crosses")
r = feed({ v_below = 3.0, time = 10 }, { smp(3.5, -1, 25, 1), smp(3.4, -1, 25, 10) })
t.is(r, "time", "the time shorthand")
r = feed(C.any { C.voltage_above(4.1, "top"), C.temp_rise(5, "warm") }, { smp(4.0, 1, 26, 1), smp(4.0, 1, 30.5, 2) })
t.is(r, "warm", "any: the part that fired, by its name")
r = feed(C.all({ C.time(5), C.current_below(0.1) }, "tail"), { smp(4.2, 0.05, 25, 4), smp(4.2, 0.2, 25, 6), smp(4.2, 0.05, 25, 7) })
t.is(r, "tail", "all: fires under its own name when every part holds at once")
r, k = feed(C.all { C.time(5), C.current_below(0.1) }, { smp(4.2, 0.05, 25, 4), smp(4.2, 0.05, 25, 8) })
t.is(r, "time+current", "an unnamed all joins its parts' names")
local relax = {}
for s = 0, 200, 10 do
	relax[#relax + 1] = smp(3.7 - 0.01 * math.exp(-s / 30), 0, 25, s)
end
r, k = feed(C.dvdt_below(1e-4, 60, "relaxed"), relax)
t.is(r, "relaxed", "dV/dt below a threshold over a window")
t.ok(k and relax[k].sum.duration >= 60 and relax[k].sum.duration <= 120, ("after %s s"):format(k and relax[k].sum.duration))
r, k = feed(C.minus_dv(0.005), { smp(1.40, 1, 25, 40), smp(1.45, 1, 25, 50), smp(1.447, 1, 25, 60), smp(1.444, 1, 25, 70) })
t.is(r, "minus_dv", "-dV from the peak")
t.is(k, 4, "once the drop reaches the threshold")
r = feed(C.predicate(function(s) return s.voltage < 3.3 and "knee" end), { smp(3.5, -1, 25, 1), smp(3.25, -1, 25, 2) })
t.is(r, "knee", "a predicate fires under the string it returns")
local ok, err = pcall(C.compile, { v_bellow = 3.0 })
t.ok(not ok and err:find("unknown condition 'v_bellow'", 1, true), "a misspelt shorthand is an error naming it: " .. tostring(err))
ok, err = pcall(C.voltage_below, "3.0")
t.ok(not ok and err:find("a number expected", 1, true), "a non-number threshold is an error")

-- ---- steps on the virtual Batlab --------------------------------------------------

local pool = assert(batlab.open { sim = true, seed = 5 })
local dev = pool:active()
local function on(n, fn)
	local cell = cellmod.new(dev:channel(n), { name = "c" .. n, log_sink = function() end })
	local task = batlab.spawn_for(dev:channel(n), fn, cell)
	assert(batlab.run())
	if task.status ~= "done" then
		error("task " .. task.status .. ": " .. tostring(task.error))
	end
	return table.unpack(task.results)
end
local limits = { vmax = 4.25, vmin = 2.6, imax = 4.0, tmax_c = 60 }

local s = on(0, function(c)
	c:limits(limits)
	return more.discharge(c, { current = 1.0, stop = C.any { C.voltage_below(3.65, "knee"), C.time(3600) } })
end)
t.is(s.end_reason, "knee", "a discharge ends on a named condition")
t.is(s.end_condition, "knee", "and its summary says which")
t.ok(s.end_sample.voltage <= 3.65 and more and require("batlab.steps").ok(s), "a normal end, at the voltage")

s = on(0, function(c)
	return more.rest(c, 3600, { stop = C.dvdt_below(2e-5, 60, "relaxed") })
end)
t.is(s.end_reason, "relaxed", "a rest ends when relaxed")
t.ok(s.duration < 600 and s.safety == nil, ("after %.0f s, no safety stop"):format(s.duration))

s = on(0, function(c)
	return more.power(c, { watts = 5, stop = { v_below = 3.3 } })
end)
t.is(s.end_reason, "voltage", "constant power to a voltage")
local avg_p = s.wh / (s.duration / 3600)
t.ok(math.abs(avg_p - 5) < 0.1, ("holds 5 W on average (%.3f W)"):format(avg_p))
t.ok(s.regulation and s.regulation.unit == "W" and s.regulation.samples > 100, "records its regulation error")
t.ok(s.regulation.mean_abs_err < 0.05 and s.regulation.max_abs_err < 0.5,
	("within %.3f W on average, %.3f W at most"):format(s.regulation.mean_abs_err, s.regulation.max_abs_err))

s = on(1, function(c)
	c:limits(limits)
	return more.resistance(c, { ohms = 3.0, stop = { time = 600 } })
end)
t.is(s.end_reason, "time", "constant resistance for a time")
t.ok(math.abs(s.avg_v / s.avg_i - 3.0) < 0.03, ("V/I %.3f ohm"):format(s.avg_v / s.avg_i))

s = on(1, function(c)
	return more.cccv(c, { current = 2.0, v = 4.2, until_i = 0.1, max_time = 6 * 3600 })
end)
t.is(s.end_reason, "current", "CCCV ends when the current falls to until_i")
t.ok(s.cv_time > 300 and s.cv_ah > 0.05 and s.cv_ah < s.ah, ("CV phase %.0f s, %.3f of %.3f Ah"):format(s.cv_time, s.cv_ah, s.ah))
t.ok(math.abs(s.end_sample.voltage - 4.2) < 0.01, ("held at %.4f V"):format(s.end_sample.voltage))
s = on(2, function(c)
	c:limits(limits)
	return more.cccv(c, { current = 2.0, v = 4.2, until_i = 0.1, max_time = 1200 })
end)
t.is(s.end_reason, "time", "one time limit for the whole CCCV step")
t.ok(s.duration >= 1200 and s.duration < 1202, ("%.1f s"):format(s.duration))
ok, err = pcall(function()
	on(2, function(c)
		c:limits{ vmax = 4.2 }
		return more.cccv(c, { current = 1, v = 4.2 })
	end)
end)
t.ok(not ok and err:find("charge voltage limit above it", 1, true), "a CV at the device's charge limit is refused")

ok, err = pcall(more.power, {}, { watts = 5, stpo = { v_below = 3 } })
t.ok(not ok and err:find("unknown option 'stpo' to steps_more.power (did you mean stop?)", 1, true),
	"a misspelt option of a regulated step is an error: " .. tostring(err))
ok, err = pcall(more.cccv, {}, { current = 1, v = "4.2" })
t.ok(not ok and err:find("option v to steps_more.cccv must be a number, got string", 1, true), "and a value of the wrong type")

-- ---- groups and pulse trains ---------------------------------------------------------

local g = on(2, function(c)
	c:limits(limits)
	return more.pulses(c, { levels = { { current = -2, time = 10 }, { current = 0, time = 40 },
		{ current = 1.5, time = 10 }, { current = 0, time = 40 } }, n = 3, name = "P" })
end)
t.is(g.iterations, 3, "a pulse train repeats n times")
t.is(#g.steps, 12, "each level a step of its own")
t.is(g.steps[7].name, "P 2.3", "named train, repeat, level")
t.ok(math.abs(g.steps[1].ah - 2 * g.steps[1].duration / 3600) < 2e-4 and math.abs(g.steps[3].avg_i - 1.5) < 0.05, "at the levels' currents")
t.ok(g.ok and g.end_reason == "count", "and ends on its count")

g = on(3, function(c)
	c:limits(limits)
	return more.group(c, { name = "G", ["until"] = { v_below = 3.52 } }, function(n)
		return more.discharge(c, { current = 2.0, max_time = 300, name = "D" .. n })
	end)
end)
t.is(g.end_reason, "voltage", "a group repeats until its condition holds after an iteration")
t.ok(g.iterations >= 2 and g.steps[#g.steps].end_sample.voltage <= 3.52
	and g.steps[#g.steps - 1].end_sample.voltage > 3.52, ("after %d iterations"):format(g.iterations))

g = on(3, function(c)
	return more.group(c, { name = "G", n = 10, during = { v_below = 3.45 } }, function(n)
		return more.discharge(c, { current = 2.0, max_time = 600, name = "D" .. n })
	end)
end)
t.is(g.end_reason, "voltage", "a group's `during` condition ends the step it fires in, and the group")
t.ok(g.iterations < 10 and g.steps[#g.steps].end_condition == "voltage", ("in iteration %d"):format(g.iterations))
ok, err = pcall(more.group, {}, {}, function() end)
t.ok(not ok and err:find("give n or until", 1, true), "a group that could not end is refused")

-- ---- profile playback ----------------------------------------------------------------

local pts = { { 0, -1 }, { 30, -2.5 }, { 60, 0.5 }, { 90, 0 }, { 120, -1 } }
s = on(0, function(c)
	c:limits(limits)
	return profile.play(c, { points = pts, mode = "step", n = 2 })
end)
t.is(s.end_reason, "profile end", "a profile ends after its last point")
t.ok(math.abs(s.duration - 240) < 1.5, ("two passes of 120 s: %.1f s"):format(s.duration))
-- per pass: 30 s at 1 A, 30 s at 2.5 A out, 30 s at 0.5 A in
t.ok(math.abs(s.ah - 2 * (30 + 75 + 15) / 3600) < 0.003, ("throughput %.4f Ah"):format(s.ah))
t.ok(math.abs(s.net_ah + 2 * (30 + 75 - 15) / 3600) < 0.003, ("net %.4f Ah"):format(s.net_ah))
t.is(s.segments, 8, "a new device step at each change of direction or rest")

s = on(1, function(c)
	c:limits{ vmax = 4.25, vmin = 3.7, imax = 4.0, tmax_c = 60 }
	return profile.play(c, { points = pts, mode = "linear", n = 100 })
end)
t.is(s.end_reason, "voltage", "playback stops at the device's voltage limit mid-profile")
t.ok(s.duration < 100 * 120 and s.duration % 120 > 0, ("at %.0f s of %d"):format(s.duration, 100 * 120))
s = on(1, function(c)
	return profile.play(c, { points = pts, n = 100, stop = { v_below = 3.68 }, name = "DRIVE" })
end)
t.is(s.end_reason, "voltage", "and at a condition of its own")
t.is(s.name, "DRIVE", "under its name")

local parsed = profile.parse_csv("time,current\n# comment\n0,-1\n10,-2.5\n20,0\n", "x.csv")
t.is(#parsed, 3, "a profile CSV: header and comments skipped")
t.is(parsed[2][2], -2.5, "time and current columns")
ok, err = pcall(profile.parse_csv, "0,-1\n10 oops\n", "drive.csv")
t.ok(not ok and err:find("drive.csv:2:", 1, true), "a bad line names the file and line: " .. tostring(err))
ok, err = pcall(profile.play, {}, { points = { { 0, -1 }, { 0, -2 } } })
t.ok(not ok and err:find("point 2: times start at 0 and increase", 1, true), "times must increase")
ok, err = pcall(profile.play, {}, { points = { { 0, -1 }, { 5, -9 } } })
t.ok(not ok and err:find("beyond the device", 1, true), "currents within the device's range")

t.done()
