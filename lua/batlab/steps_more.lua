-- batlab.steps_more - steps beyond the seed's, built on batlab.steps and
-- ending on batlab.conditions (docs/characterisation.md):
--
--   local more = require "batlab.steps_more"
--   more.discharge(cell, { current = 1, stop = { v_below = 3.0, time = 3600 } })
--   more.cccv(cell, { current = 1.25, v = 4.2, until_i = 0.125, max_time = 4 * 3600 })
--   more.power(cell, { watts = 4, direction = "discharge", stop = { v_below = 3.0 } })
--   more.resistance(cell, { ohms = 4, stop = { v_below = 3.0 } })
--   more.pulses(cell, { levels = { { current = -2, time = 10 }, { current = 0, time = 40 } }, n = 5 })
--   more.group(cell, { n = 50, ["until"] = { v_below = 3.0 } }, function(k) ... end)
--
-- Every step goes through batlab.steps' labelling (a steps.csv row, resumable
-- after a crash) and returns its summary (as batlab.steps: end_reason, ah,
-- wh, ...) with `end_condition`: the name of the condition that fired.
-- A group's `during` conditions end whatever step of the group is running.

local batlab = require "batlab"
local steps = require "batlab.steps"
local C = require "batlab.conditions"
local step_options = require "batlab.step_options"
local step_watch = require "batlab.step_watch"
local suggest = require "batlab.suggest"

local core = steps._core
local M = {}

-- The conditions of the groups the cell is in (innermost last): each step
-- checks them as well as its own.
local function group_stops(cell)
	cell._group_stops = cell._group_stops or {}
	return cell._group_stops
end

-- A fresh evaluator for a step: its own conditions, then its groups'.
-- Fires name, group (the group whose condition fired, or nil).
local function step_check(cell, spec)
	local own = C.compile(spec)
	local outer = {}
	for i, g in ipairs(group_stops(cell)) do
		outer[i] = { C.compile(g.during), g }
	end
	local check = function(s, sum)
		local name = own(s, sum)
		if name then
			return name
		end
		for _, o in ipairs(outer) do
			name = o[1](s, sum)
			if name then
				o[2].fired = name
				return name
			end
		end
		return nil
	end
	-- a step whose conditions are all thresholds is watched (batlab.step_watch)
	local parts = { C.thresholds[own] or false }
	for i, o in ipairs(outer) do
		parts[i + 1] = C.thresholds[o[1]] or false
	end
	for _, p in ipairs(parts) do
		if not p then
			return check
		end
	end
	step_watch.until_thresholds[check] = function(wspec, sum)
		for _, p in ipairs(parts) do
			if not p(wspec, sum) then
				return false
			end
		end
		return true
	end
	return check
end

-- The summary ended by condition `name` (a reason batlab.steps knows is
-- its end_reason; another is also its predicate_reason, a normal end).
local function end_on(sum, name)
	local extra = { end_condition = name }
	if not core.NORMAL[name] then
		extra.predicate_reason = name
	end
	return core.finish(sum, name, extra)
end
M._end_on = end_on
M._check = function(cell, spec) return step_check(cell, spec) end

-- opts without the keys batlab.steps does not know.
local function without(opts, ...)
	local o = {}
	for k, v in pairs(opts) do
		o[k] = v
	end
	for _, k in ipairs({ ... }) do
		o[k] = nil
	end
	return o
end

-- charge/discharge/rest of batlab.steps, with `stop` (a condition) ending
-- them as well as the options they take.
local function wrap(fn)
	return function(cell, opts)
		opts = opts or {}
		local check = step_check(cell, opts.stop)
		local o = without(opts, "stop")
		local user = opts["until"]
		if user then
			o["until"] = function(s, sum)
				return check(s, sum) or user(s, sum) or nil
			end
		else
			o["until"] = check
		end
		local sum = fn(cell, o)
		sum.end_condition = sum.end_condition or sum.end_reason
		return sum
	end
end
M.charge = wrap(steps.charge)
M.discharge = wrap(steps.discharge)

-- rest(cell, seconds_or_nil, opts): a rest (IDLE) that ends after
-- `seconds` (if given) or on opts.stop (e.g. { dvdt_below = 1e-5 }),
-- whichever first; opts as batlab.steps' rest. Resumed after a crash, it
-- goes on for what was left of it (the carried time counts).
function M.rest(cell, seconds, opts)
	opts = opts or {}
	step_options.check("rest", without(opts, "stop"))
	if seconds ~= nil and (type(seconds) ~= "number" or seconds < 0) then
		error("steps_more.rest: seconds must be nil or a number >= 0", 2)
	end
	local name = opts.name or "REST"
	local check = step_check(cell, opts.stop)
	local sum = core.stepped(cell, name, function()
		local sum = core.new_summary(name, "rest")
		sum.carry = cell.recording and cell.recording.carry
		if seconds == 0 then
			return end_on(sum, "time")
		end
		local ok, err, code = cell:idle()
		if not ok then
			return core.finish(sum, "safety", { safety = err, errors = { code } })
		end
		if cell.recording then
			cell.recording:started()
		end
		-- what a watched rest wakes for: its time, its conditions
		local wopts = { max_time = seconds, guard = opts.guard, on_sample = opts.on_sample, ["until"] = check,
			capture = opts.capture }
		local wst = { sign = -1, pulse_on = true, trickle_on = false, base_current = 0 }
		while true do
			local spec = step_watch.spec(cell, "rest", wopts, wst, sum, steps)
			local s, done = core.observe(cell, "rest", sum, opts, spec)
			if not s then
				return done
			end
			if seconds and sum.duration >= seconds then
				return end_on(sum, "time")
			end
			local fired = check(s, sum)
			if fired then
				return end_on(sum, fired)
			end
		end
	end, opts, "rest")
	sum.end_condition = sum.end_condition or sum.end_reason
	return sum
end

-- ---- groups ------------------------------------------------------------------------

-- group(cell, opts, body): body(k, g) runs steps for iteration k = 1, 2, ...
-- and returns the last summary (or a list of them). opts: name, n (at most
-- this many times), until (a condition checked after each iteration on
-- the last sample, with the group's totals), during (a condition every
-- step of the group checks at every sample). Returns { name, iterations,
-- end_reason ("count", the fired condition, or the end of a step that did
-- not end normally), ok, steps = {summaries} }.
function M.group(cell, opts, body)
	opts = opts or {}
	if type(body) ~= "function" then
		error("steps_more.group: body function expected, got " .. type(body), 2)
	end
	if opts.n == nil and opts["until"] == nil then
		error("steps_more.group: give n or until (a group must end)", 2)
	end
	local g = { name = opts.name or "GROUP", during = opts.during, steps = {}, iterations = 0 }
	local stack = group_stops(cell)
	if g.during then
		stack[#stack + 1] = g
	end
	local check = C.compile(opts["until"])
	local tot = { duration = 0, ah = 0, wh = 0 }
	local t0 = batlab.now()
	local ok, res, normal = pcall(function()
		for k = 1, opts.n or math.huge do
			g.iterations = k
			local r = body(k, g)
			local list = type(r) == "table" and r.end_reason == nil and r or { r }
			local last
			for _, sum in ipairs(list) do
				g.steps[#g.steps + 1] = sum
				tot.ah, tot.wh = tot.ah + (sum.ah or 0), tot.wh + (sum.wh or 0)
				tot.temp_start = tot.temp_start or sum.temp_start
				last = sum
			end
			tot.duration = batlab.now() - t0
			if g.fired then
				return g.fired, true
			end
			if last and not steps.ok(last) then
				return last.end_reason, false
			end
			local name = last and last.end_sample and check(last.end_sample, tot)
			if name then
				return name, true
			end
		end
		return "count", true
	end)
	if g.during then
		table.remove(stack)
	end
	if not ok then
		error(res, 0)
	end
	return { name = g.name, iterations = g.iterations, end_reason = res, ok = normal,
		steps = g.steps, ah = tot.ah, wh = tot.wh, duration = batlab.now() - t0 }
end

-- pulses(cell, opts): a train of constant-current levels, each its own
-- step: opts.levels = { {current = A (+ charge, - discharge, 0 rest),
-- time = s}, ... }, n (repeats, default 1), stop (a condition ending the
-- train, checked in every level), name. Returns the group's result; its
-- steps are the levels' summaries in order.
function M.pulses(cell, opts)
	if type(opts) ~= "table" or type(opts.levels) ~= "table" or #opts.levels == 0 then
		error("steps_more.pulses: levels = { {current =, time =}, ... } expected", 2)
	end
	for i, l in ipairs(opts.levels) do
		if type(l.current) ~= "number" or type(l.time) ~= "number" or l.time <= 0 then
			error(("steps_more.pulses: level %d needs a number current and a time > 0"):format(i), 2)
		end
	end
	local name = opts.name or "PULSE"
	return M.group(cell, { name = name, n = opts.n or 1, during = opts.stop }, function(k)
		local out = {}
		for j, l in ipairs(opts.levels) do
			local sn = ("%s %d.%d"):format(name, k, j)
			local sum
			if l.current > 0 then
				sum = M.charge(cell, { current = l.current, max_time = l.time, name = sn })
			elseif l.current < 0 then
				sum = M.discharge(cell, { current = -l.current, max_time = l.time, name = sn })
			else
				sum = M.rest(cell, l.time, { name = sn })
			end
			out[#out + 1] = sum
			if not steps.ok(sum) or sum.end_reason ~= "time" then
				break
			end
		end
		return out
	end)
end

-- ---- regulated steps ----------------------------------------------------------------

-- The statistics of a regulation error (after the settling time).
local function track(st, e)
	st.n, st.se, st.sae = (st.n or 0) + 1, (st.se or 0) + e * e, (st.sae or 0) + math.abs(e)
	st.maxe = math.max(st.maxe or 0, math.abs(e))
end

-- control.watch of a power (reg 1) or resistance (reg 2) step: the watch
-- wakes when the current it wants moves by the least change the step
-- makes, and accounts the quiet reports' regulation error as track() does.
local function reg_watch(reg, target, settle)
	return function(spec, st)
		spec.reg, spec.reg_target, spec.reg_amps, spec.reg_settle = reg, target, st.amps, settle
		spec.reg_n, spec.reg_se, spec.reg_sae, spec.reg_maxe = st.n or 0, st.se or 0, st.sae or 0, st.maxe or 0
		return true
	end
end

local function errors_of(st, target, unit)
	if not st.n then
		return nil
	end
	return { target = target, unit = unit, samples = st.n, mean_abs_err = st.sae / st.n,
		rms_err = math.sqrt(st.se / st.n), max_abs_err = st.maxe }
end

-- The watch spec of a regulated step's next report (batlab.step_watch),
-- or nil to look at it: control.watch(spec, st) tightens it to wake at
-- every report where ended or next could act (false: it cannot). Only
-- while the current is within what the step clamps it to (0.01..hi):
-- then a clamp can only make a change smaller.
local function regulated_spec(cell, kind, control, st, sum, wopts, wst, hi)
	if not control.watch or st.amps < 0.01 or st.amps > hi then
		return nil
	end
	local spec = step_watch.spec(cell, kind, wopts, wst, sum, steps)
	if spec and control.watch(spec, st) then
		return spec
	end
	return nil
end

-- One labelled step whose current a control recomputes at every report
-- (or at the reports control.watch says can change it). control: first
-- (A), next(s, sum, st) -> A or nil, ended(s, sum, st) -> name or nil
-- (before opts.stop), done(sum, st) (fills the summary), watch (above).
local function regulated(cell, kind, name, opts, control)
	local check = step_check(cell, opts.stop)
	local wopts = { guard = opts.guard, on_sample = opts.on_sample, ["until"] = check, max_time = control.max_time,
		capture = opts.capture }
	local hi = opts.max_current or batlab.CURRENT_MAX
	local wst = { sign = kind == "charge" and 1 or -1, pulse_on = true, trickle_on = false, base_current = 0 }
	local zopts = { current = control.smallest or control.first }
	return core.with_zero_amp(cell, name, zopts, kind, function()
		return core.stepped(cell, name, function()
			local sum = core.new_summary(name, kind)
			sum.carry = cell.recording and cell.recording.carry
			local st = { amps = control.first }
			local ok, err, code = cell[kind](cell, st.amps)
			if not ok then
				return core.finish(sum, "safety", { safety = err, errors = { code } })
			end
			if cell.recording then
				cell.recording:started()
			end
			local done
			repeat
				local s
				local spec = regulated_spec(cell, kind, control, st, sum, wopts, wst, hi)
				s, done = core.observe(cell, kind, sum, opts, spec)
				if spec and spec.reg and spec.reg_n ~= (st.n or 0) then
					-- the regulation error of the quiet reports, accounted in C
					st.n, st.se, st.sae, st.maxe = spec.reg_n, spec.reg_se, spec.reg_sae, spec.reg_maxe
				end
				if s then
					local fired = control.ended and control.ended(s, sum, st) or check(s, sum)
					if fired then
						done = end_on(sum, fired)
					else
						local new = control.next(s, sum, st)
						new = new and math.max(math.min(new, hi), 0.01)
						if new and math.abs(new - st.amps) >= 1 / 256 then
							st.amps = new
							done = core.set_current(cell, sum, new)
						end
					end
				end
			until done
			if control.done then
				control.done(done, st)
			end
			return done
		end, opts, kind)
	end)
end

-- The options each regulated step takes (besides batlab.steps' common
-- ones): a misspelt one raises at the caller, as batlab.steps' do.
local T = { n = "number", s = "string", f = "function", b = "boolean" }
local COMMON = { name = T.s, guard = T.f, on_sample = T.f, report_timeout = T.n, silence_grace = T.n,
	allow_bad_thermistor = T.b, resumable = T.b, stop = "table", max_current = T.n, settle = T.n,
	tail = T.n, capture = "userdata" }
local function schema(extra)
	local out = {}
	for k, v in pairs(COMMON) do
		out[k] = v
	end
	for k, v in pairs(extra) do
		out[k] = v
	end
	return out
end
local SCHEMA = {
	power = schema { watts = T.n, direction = T.s, v_guess = T.n },
	resistance = schema { ohms = T.n, direction = T.s, v_guess = T.n },
	cccv = schema { current = T.n, v = T.n, until_i = T.n, max_time = T.n },
}
M.OPTIONS = SCHEMA

local function check_opts(fn, opts)
	if type(opts) ~= "table" then
		error(("steps_more.%s: options table expected, got %s"):format(fn, type(opts)), 3)
	end
	local sch = SCHEMA[fn]
	for k, v in pairs(opts) do
		local want = sch[k]
		if want == nil then
			local names = {}
			for n in pairs(sch) do
				names[#names + 1] = n
			end
			table.sort(names)
			local near = type(k) == "string" and suggest.closest(k, names) or nil
			error(("unknown option '%s' to steps_more.%s%s; it takes: %s"):format(tostring(k), fn,
				near and (" (did you mean " .. near .. "?)") or "", table.concat(names, ", ")), 3)
		elseif want ~= "table" and type(v) ~= want then
			error(("option %s to steps_more.%s must be a %s, got %s"):format(k, fn, want, type(v)), 3)
		end
	end
end

local function direction(opts, fn)
	local d = opts.direction or "discharge"
	if d ~= "charge" and d ~= "discharge" then
		error(("steps_more.%s: direction must be \"charge\" or \"discharge\", got %s"):format(fn, tostring(d)), 3)
	end
	return d
end

local function positive(v, what)
	if type(v) ~= "number" or v <= 0 then
		error(("steps_more.%s must be a number > 0, got %s"):format(what, tostring(v)), 3)
	end
	return v
end

-- Where the cell is now (for the first current of a power or resistance
-- step): the latest report, or a guess.
local function volts_now(cell, opts)
	return (cell.last and cell.last.voltage > 0.5 and cell.last.voltage) or opts.v_guess or 3.7
end

-- power(cell, opts): constant power. opts: watts, direction ("discharge"
-- default, or "charge"), stop (a condition: give one, e.g. { v_below =
-- 3.0 }), settle (s before the regulation error counts, default 3),
-- max_current, name, and batlab.steps' common options. The current is P/V
-- at each report; summary.regulation = { target, unit = "W", samples,
-- mean_abs_err, rms_err, max_abs_err } (V x |I| - P).
function M.power(cell, opts)
	check_opts("power", opts)
	local kind = direction(opts, "power")
	local p = positive(opts.watts, "power: watts")
	local settle = opts.settle or 3
	return regulated(cell, kind, opts.name or "POWER", opts, {
		first = math.min(p / volts_now(cell, opts), batlab.CURRENT_MAX),
		watch = reg_watch(1, p, settle),
		next = function(s, sum, st)
			if sum.duration >= settle then
				track(st, s.voltage * math.abs(s.current) - p)
			end
			return p / math.max(s.voltage, 0.5)
		end,
		done = function(sum, st)
			sum.regulation = errors_of(st, p, "W")
		end,
	})
end

-- resistance(cell, opts): a constant resistance load (or source with
-- direction = "charge"): the current is V/R at each report. opts: ohms,
-- stop, settle, max_current, name; summary.regulation in ohms (V/|I| - R).
function M.resistance(cell, opts)
	check_opts("resistance", opts)
	local kind = direction(opts, "resistance")
	local r = positive(opts.ohms, "resistance: ohms")
	local settle = opts.settle or 3
	return regulated(cell, kind, opts.name or "RESISTANCE", opts, {
		first = math.min(volts_now(cell, opts) / r, batlab.CURRENT_MAX),
		watch = reg_watch(2, r, settle),
		next = function(s, sum, st)
			if sum.duration >= settle and math.abs(s.current) > 0.01 then
				track(st, s.voltage / math.abs(s.current) - r)
			end
			return s.voltage / r
		end,
		done = function(sum, st)
			sum.regulation = errors_of(st, r, "ohm")
		end,
	})
end

-- cccv(cell, opts): constant current then constant voltage as one step,
-- one time limit for both. opts: current, v, until_i (default C/20 of
-- nothing: 0.05 A), max_time (the whole step), stop, name. Ends with
-- "current" (the CV current fell to until_i), "time", or a condition.
-- summary.cv_time (s) and summary.cv_ah: the CV phase's share.
function M.cccv(cell, opts)
	check_opts("cccv", opts)
	local i = positive(opts.current, "cccv: current")
	local v = positive(opts.v, "cccv: v")
	local until_i = opts.until_i or 0.05
	local vmax = cell.limits_set and cell.limits_set.vmax
	if vmax and vmax < v + 0.02 then
		error(("steps_more.cccv: holding %.3f V needs the charge voltage limit above it (vmax %.3f)")
			:format(v, vmax), 2)
	end
	local r_est = 0.1 -- ohms: how hard to correct per volt of error
	-- the voltage error that moves the current by the least change the
	-- step makes (1/256 A), less a margin for rounding: a report within
	-- it changes nothing (the clamps only make the change smaller)
	local band = r_est / 256 - 1e-6
	return regulated(cell, "charge", opts.name or "CCCV", opts, {
		first = i, smallest = until_i, max_time = opts.max_time,
		watch = function(spec, st)
			if st.amps < until_i / 2 or st.amps > i then
				return false
			end
			if not st.cv_at then
				spec.v_hi = step_watch.lower(spec.v_hi, v)
				return true
			end
			spec.v_hi = step_watch.lower(spec.v_hi, v + band)
			spec.v_lo = step_watch.higher(spec.v_lo, v - band)
			spec.i_lo, spec.i_after = step_watch.higher(spec.i_lo, until_i), 0
			return true
		end,
		ended = function(s, sum, st)
			if st.cv_at and math.abs(s.current) <= until_i and st.amps <= until_i * 1.5 then
				return "current"
			end
			if opts.max_time and sum.duration >= opts.max_time then
				return "time"
			end
			return nil
		end,
		next = function(s, sum, st)
			if not st.cv_at and s.voltage >= v then
				st.cv_at, st.cv_ah = sum.duration, sum.ah
			end
			if not st.cv_at then
				return nil
			end
			return math.max(math.min(st.amps - (s.voltage - v) / r_est, i), until_i / 2)
		end,
		done = function(sum, st)
			sum.cv_time = st.cv_at and sum.duration - st.cv_at or 0
			sum.cv_ah = st.cv_at and sum.ah - st.cv_ah or 0
		end,
	})
end

return M
