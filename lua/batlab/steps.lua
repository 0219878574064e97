-- batlab.steps - the building blocks of test procedures: constant-current
-- charge and discharge that end on conditions and say which one ended
-- them, a constant-voltage hold, rest and impedance. Every step returns a
-- summary table (see docs/procedures.md):
--
--   { name, kind, duration, ah, wh, avg_v, avg_i, temp_start, temp_end,
--     temp_max, temp_rise, end_reason, safety, errors, samples,
--     impedance = { {time, step_time, charge_ah, ohms}, ... }, end_sample,
--     first_sample, tail (with opts.tail: the last reports' voltages) }
--
-- end_reason is one of: "voltage", "current", "time", "charge", "energy",
-- "temperature", a predicate's own reason, "safety" (the device stopped
-- the channel on a limit it was not asked to end on: see `safety` and
-- `errors`), "stopped" (stopped with no error: watchdog or another
-- program), "removed" (the cell is gone), "no reports" (the device went
-- silent for longer than silence_grace), "device reset" (the device reset
-- and lost the step), "thermistor" (an open or shorted thermistor), or a
-- guard's reason ("low VCC", ...). ok(summary) tells a
-- normal end from the others.
--
-- A step runs in the task that drives the cell; it yields at every report.
-- On a batlab.cell in a run, each step is labelled in the cell's time
-- series and ends with a row of steps.csv (cell:begin_step/end_step).

local batlab = require "batlab"
local step_options = require "batlab.step_options"
local step_watch = require "batlab.step_watch"
local guards = require "batlab.guards"
local zero_amp = require "batlab.zero_amp"

local M = {}
-- per report: a local is cheaper than a field of a global
local abs = math.abs

-- Ends that are a normal outcome of a step (everything else is abnormal).
local NORMAL = {
	voltage = true, current = true, time = true, charge = true, energy = true,
	temperature = true, predicate = true, timeout = true,
}

function M.ok(summary)
	return summary ~= nil and (NORMAL[summary.end_reason] or summary.predicate_reason ~= nil)
		and summary.safety == nil
end

local function has(list, name)
	for _, v in ipairs(list or {}) do
		if v == name then
			return true
		end
	end
	return false
end

-- A summary under construction: running sums, first and last values.
local function new_summary(name, kind)
	return {
		name = name, kind = kind, samples = 0, duration = 0, ah = 0, wh = 0,
		avg_v = 0, avg_i = 0, impedance = {}, _sum_v = 0, _sum_i = 0,
	}
end

local bad_thermistor

-- What the latest sample says of the whole step: its time, charge and
-- energy, and the sample itself.
local function account_latest(sum, s)
	-- a phase that continues the channel's step (the CV hold after CC)
	-- counts from its own start
	sum.t_offset = sum.t_offset or (sum.continues and s.step_time) or 0
	-- a step resumed after a crash carries on from what it had done
	local c = sum.carry
	sum.duration = s.step_time - sum.t_offset + (c and c.time or 0)
	sum.ah = abs(s.charge_ah or 0) + (c and c.ah or 0)
	sum.wh = abs(s.energy_wh or 0) + (c and c.wh or 0)
	sum.end_sample = s
end

local function account(sum, s, bad_t)
	local temp = not bad_t and s.temp_c or nil
	local n = sum.samples + 1
	sum.samples = n
	if n == 1 then
		sum.first_sample = s
	end
	sum._sum_v = sum._sum_v + s.voltage
	sum._sum_i = sum._sum_i + abs(s.current)
	sum.temp_start = sum.temp_start or temp
	sum.temp_end = temp or sum.temp_end
	if temp and (not sum.temp_max or temp > sum.temp_max) then
		sum.temp_max = temp
	end
	account_latest(sum, s)
end

local function finish(sum, reason, extra)
	sum.end_reason = reason
	if sum.samples > 0 then
		sum.avg_v = sum._sum_v / sum.samples
		sum.avg_i = sum._sum_i / sum.samples
	end
	if sum.temp_start and sum.temp_max then
		sum.temp_rise = sum.temp_max - sum.temp_start
	end
	if sum._tail then
		sum.tail, sum._tail = sum._tail:values(), nil
	end
	sum._sum_v, sum._sum_i, sum.t_offset, sum.continues, sum.carry = nil, nil, nil, nil, nil
	sum._thermistor_told, sum._jump_told = nil, nil
	for k, v in pairs(extra or {}) do
		sum[k] = v
	end
	return sum
end

-- The device stopped the channel. Hitting the limit the step was heading
-- for (the charge limit while charging up to it, the discharge limit while
-- discharging down to it) is how a Lexcelon-style step ends; any other
-- error bit is a safety stop.
local function classify_stop(kind, s)
	local errs = s.error_names or {}
	if #errs == 0 then
		return "stopped"
	end
	local expected = kind == "charge" and "VOLTAGE_LIMIT_CHG" or kind == "discharge" and "VOLTAGE_LIMIT_DCHG"
	if expected and #errs == 1 and errs[1] == expected then
		return "voltage"
	end
	return "safety", errs
end

-- Default guards (low VCC, voltage jumps): batlab.guards.
M.default_guards = guards.default

-- The cell is gone: the channel says so in IDLE (mode NO_CELL/BACKWARDS),
-- but a charge or discharge carries on into an empty slot until a limit
-- stops it, which would look like the end of the step. An empty slot reads
-- (near) zero volts with the NO_CELL or BACKWARDS status bit; a cell being
-- discharged to a low cut-off still reads well above that.
local function removed(s)
	if s.mode_name == "NO_CELL" or s.mode_name == "BACKWARDS" then
		return true
	end
	if s.voltage < 0.5 then
		for _, name in ipairs(s.status_names or {}) do
			if name == "NO_CELL" or name == "BACKWARDS" then
				return true
			end
		end
	end
	return false
end

-- How long a device may fail to answer the reads of a report (a burst of
-- lost replies) before the step gives up on it: well inside the device's
-- 25.5 s watchdog. A silence shorter than this is an event, not an end.
M.SILENCE_GRACE = 10
-- A thermistor reading outside this range is no temperature: the
-- thermistor is open (very cold) or shorted, and no temperature limit
-- can trip.
M.THERMISTOR_MIN_C, M.THERMISTOR_MAX_C = -40, 150

-- Wait for the next report, with a limit on how long the device may stay
-- silent before the step gives up on it. Failed report reads within the
-- grace are retried (the next report reads again) and logged: nil, err
-- only after the grace, or when no report came for report_timeout.
local function next_sample(cell, opts, sum, spec)
	local grace = opts.silence_grace or M.SILENCE_GRACE
	local since
	while true do
		local s, err, code
		if spec then
			s, err, code = step_watch.wait(cell, sum, spec, opts, account_latest)
		else
			s, err, code = cell:wait(opts.report_timeout or 15)
		end
		if s then
			if since then
				cell:log(("%s: the device answers again after %.1f s without reports")
					:format(sum.name, batlab.now() - since))
			end
			return s
		end
		if err == "timeout" then
			return nil, "timeout"
		end
		-- A device that went away (ECLOSED) fails at once: no retry can
		-- wait on it.
		if code == "ECLOSED" then
			return nil, err
		end
		if not since then
			since = batlab.now()
			cell:log(("%s: a report could not be read (%s): retrying for up to %g s")
				:format(sum.name, tostring(err), grace))
		end
		if batlab.now() - since >= grace then
			return nil, err
		end
	end
end

-- The end of the step, with the channel made safe (a STOPPED channel does
-- nothing; what the device does not take now it is in no state to do).
local function end_unsafe(cell, sum, reason, why)
	cell:stop()
	return finish(sum, reason, { safety = why })
end

function bad_thermistor(s)
	return s.temp_c ~= nil and (s.temp_c < M.THERMISTOR_MIN_C or s.temp_c > M.THERMISTOR_MAX_C)
end

-- An open or shorted thermistor ends a charge or discharge (no limit
-- could stop an overheating cell) unless the step allows it; a rest, or a
-- step that allows it, goes on with a warning (once).
local function thermistor(cell, kind, sum, opts, s, bad_t)
	if not bad_t then
		return nil
	end
	local what = ("the thermistor reads %.2f degC (outside %g..%g): open or shorted, "
		.. "no temperature limit can trip"):format(s.temp_c, M.THERMISTOR_MIN_C, M.THERMISTOR_MAX_C)
	if kind ~= "rest" and not opts.allow_bad_thermistor then
		cell:log(("%s: %s: step ended"):format(sum.name, what))
		return end_unsafe(cell, sum, "thermistor", what)
	end
	if not sum._thermistor_told then
		sum._thermistor_told = true
		cell:log(("%s: warning: %s"):format(sum.name, what))
	end
	return nil
end

-- A cell's voltage does not jump within one report at a steady current,
-- nor does its temperature (its thermal mass): one that does was swapped
-- for another, or its contact (or thermistor) is loose. Told once a step
-- (the step goes on: a loose contact can recover).
M.VOLTAGE_JUMP, M.TEMP_JUMP = 0.1, 1.5
local function jumped(cell, sum, s)
	local p = sum.end_sample
	if sum._jump_told or not p or p.mode ~= s.mode or abs(s.current - p.current) > 0.05 then
		return
	end
	local what
	if abs(s.voltage - p.voltage) > M.VOLTAGE_JUMP then
		what = ("the voltage jumped from %.3f V to %.3f V"):format(p.voltage, s.voltage)
	elseif p.temp_c and s.temp_c and abs(s.temp_c - p.temp_c) > M.TEMP_JUMP then
		what = ("the temperature jumped from %.2f to %.2f degC"):format(p.temp_c, s.temp_c)
	else
		return
	end
	sum._jump_told = true
	cell:log(("%s: %s within one report at the same current: another cell inserted, or a loose "
		.. "contact?"):format(sum.name, what))
end

-- Wait for the next sample and apply what ends any step: no reports, a
-- device reset, a removed cell, a device stop, a bad thermistor, a guard.
-- Returns the sample, or nil and the finished summary.
local function observe(cell, kind, sum, opts, spec)
	local s, err = next_sample(cell, opts, sum, spec)
	if not s then
		return nil, end_unsafe(cell, sum, "no reports", err)
	end
	if s.device_reset then
		-- a sample after the step: its counter and time start again
		cell:log(("%s: the device reset: the step is over"):format(sum.name))
		return nil, end_unsafe(cell, sum, "device reset", "the device lost the step")
	end
	jumped(cell, sum, s)
	local bad_t = bad_thermistor(s)
	account(sum, s, bad_t)
	if opts.tail then
		-- the voltages of the last reports (the quiet ones went in in C)
		local tr = sum._tail or batlab.trail { keep = opts.tail }
		sum._tail = tr
		tr:push(sum.duration, s.voltage)
	end
	if opts.capture then
		opts.capture:push(s)
	end
	if opts.on_sample then
		opts.on_sample(s, sum)
	end
	if removed(s) then
		return nil, finish(sum, "removed")
	end
	if s.mode_name == "STOPPED" then
		local reason, errs = classify_stop(kind, s)
		return nil, finish(sum, reason, { safety = errs and table.concat(errs, ",") or nil, errors = errs })
	end
	if s.mode_name == "IDLE" and kind ~= "rest" then
		-- not what the step drives: a reset the host did not see, another
		-- program; a step that goes on would record rows that mean nothing
		return nil, end_unsafe(cell, sum, "stopped", "the channel is IDLE")
	end
	local bad = thermistor(cell, kind, sum, opts, s, bad_t)
	if bad then
		return nil, bad
	end
	if opts.guard then
		local why = opts.guard(s)
		if why then
			return nil, finish(sum, why, { safety = why })
		end
	end
	return s
end

-- Change the current within a step. A failed write means the current may
-- not be what the step thinks: the channel is stopped and the step ends.
local function set_current(cell, sum, amps)
	local ok, err = cell:set_current(amps)
	if ok then
		return nil
	end
	cell:log(("%s: setting %.3f A failed (%s): channel stopped"):format(sum.name, amps, tostring(err)))
	cell:stop()
	return finish(sum, "device error", { safety = tostring(err) })
end

-- Label the step in the cell's record, run it, record its end. A
-- resumed cell replays the steps it finished before a crash
-- (batlab.replay): their summaries, without running them again.
local function stepped(cell, name, body, opts, kind)
	if cell.replay then
		local sum = cell.replay:step(cell, name)
		if sum then
			return sum
		end
	end
	if cell.begin_step then
		cell:begin_step(name, { resumable = not (opts and opts.resumable == false), kind = kind,
			record = opts and opts.record })
	end
	local sum = body()
	if cell.end_step then
		cell:end_step(sum)
	end
	return sum
end

-- The end conditions, in a fixed order so the reason is predictable: the
-- finished summary, or nil while the step goes on.
local function ended(kind, sign, opts, s, sum)
	local v, i = s.voltage, abs(s.current)
	if opts.until_v and ((sign > 0 and v >= opts.until_v) or (sign < 0 and kind ~= "rest" and v <= opts.until_v)) then
		return finish(sum, "voltage")
	end
	if opts.until_i and s.step_time >= (opts.settle or 5) and i <= opts.until_i then
		return finish(sum, "current")
	end
	if opts.max_time and sum.duration >= opts.max_time then
		return finish(sum, "time")
	end
	if opts.max_ah and sum.ah >= opts.max_ah then
		return finish(sum, "charge")
	end
	if opts.max_wh and sum.wh >= opts.max_wh then
		return finish(sum, "energy")
	end
	if opts.max_temp_c and s.temp_c and s.temp_c >= opts.max_temp_c then
		return finish(sum, "temperature")
	end
	if opts["until"] then
		local why = opts["until"](s, sum)
		if why then
			return finish(sum, type(why) == "string" and why or "predicate",
				{ predicate_reason = type(why) == "string" and why or "predicate" })
		end
	end
	return nil
end

-- The features that change the current within a step share the step's
-- state `st`: sign (+1 charging), base_current (what the step drives when
-- no pulse is off), trickle_on, pulse_on and pulse_t (when the pulse phase
-- began), last_z (the latest impedance). Each returns the finished summary
-- when a current write failed, nil otherwise.

-- Drop to the trickle current once the voltage reaches engage_v.
local function trickle(cell, opts, st, s, sum)
	local v = s.voltage
	if opts.trickle and not st.trickle_on and
		((st.sign > 0 and v >= opts.trickle.engage_v) or (st.sign < 0 and v <= opts.trickle.engage_v)) then
		st.trickle_on = true
		st.base_current = opts.trickle.current
		if st.pulse_on then
			local failed = set_current(cell, sum, st.base_current)
			if failed then
				return failed
			end
		end
		cell:log(("%s: trickle at %.3f A from %.3f V"):format(sum.name, st.base_current, v))
	end
	return nil
end

-- Alternate `on` seconds at the step's current with `off` seconds at
-- off_current.
local function pulse(cell, opts, st, s, sum)
	if opts.pulse and (opts.pulse.on or 0) > 0 then
		local phase = s.step_time - st.pulse_t
		local amps
		if st.pulse_on and phase >= opts.pulse.on then
			st.pulse_on, st.pulse_t, amps = false, s.step_time, opts.pulse.off_current or 0
		elseif not st.pulse_on and (opts.pulse.off or 0) > 0 and phase >= opts.pulse.off then
			st.pulse_on, st.pulse_t, amps = true, s.step_time, st.base_current
		end
		local failed = amps and set_current(cell, sum, amps)
		if failed then
			return failed
		end
	end
	return nil
end

-- Taper before the voltage limit: Vmax - I x Z x sensitivity (Lexcelon's
-- constant-voltage approximation), lowering the current by `step` A per report.
local function cv_approach(cell, opts, st, s, sum)
	if opts.cv_approach and st.pulse_on and not st.trickle_on then
		local v, cv = s.voltage, opts.cv_approach
		local margin = step_watch.cv_margin(cv, st)
		local near = st.sign > 0 and v > cv.v - margin or st.sign < 0 and v < cv.v + margin
		if near and st.base_current > cv.step then
			st.base_current = math.max(st.base_current - cv.step, cv.step)
			local failed = set_current(cell, sum, st.base_current)
			if failed then
				return failed
			end
		end
	end
	return nil
end

-- Measure the impedance every impedance_every seconds of the step (not
-- while trickling), keeping it in the summary.
local function impedance_due(cell, opts, st, s, sum)
	if opts.impedance_every and opts.impedance_every > 0 and not st.trickle_on then
		local due = (sum._next_z or opts.impedance_every)
		if s.step_time >= due then
			sum._next_z = s.step_time + opts.impedance_every
			local z = cell:impedance()
			if z and z > 0 then
				st.last_z = z
				sum.impedance[#sum.impedance + 1] = {
					time = s.time, step_time = s.step_time, charge_ah = s.charge_ah, ohms = z,
				}
				if opts.on_impedance then
					opts.on_impedance(z, s, sum)
				end
			end
		end
	end
end

-- The generic loop for charge/discharge/rest. `kind` picks the end-of-step
-- logic; `start` begins the step (or nil to continue the current mode).
local function run(cell, kind, name, opts, start)
	local sum = new_summary(name, kind)
	sum.carry = cell.recording and cell.recording.carry
	local st = {
		sign = kind == "charge" and 1 or -1, base_current = opts.current,
		trickle_on = false, pulse_on = true, pulse_t = 0, last_z = nil,
	}
	if start then
		local ok, err, code = start()
		if not ok then
			return finish(sum, "safety", { safety = err, errors = { code } })
		end
		if cell.recording then
			cell.recording:started()
		end
	end
	while true do
		local spec = step_watch.spec(cell, kind, opts, st, sum, M)
		local s, done = observe(cell, kind, sum, opts, spec)
		if not s then
			return done
		end
		done = ended(kind, st.sign, opts, s, sum)
			or trickle(cell, opts, st, s, sum)
			or pulse(cell, opts, st, s, sum)
			or cv_approach(cell, opts, st, s, sum)
		if done then
			return done
		end
		impedance_due(cell, opts, st, s, sum)
	end
end

local function check_current(a, what)
	if type(a) ~= "number" or a <= 0 or a > batlab.CURRENT_MAX then
		error(("%s: current must be a number in (0, %g] A, got %s"):format(what, batlab.CURRENT_MAX,
			tostring(a)), 3)
	end
end

-- ZERO_AMP_THRESH lowered for the steps that need it: batlab.zero_amp.
M.ZERO_AMP_LOW, M.ZERO_AMP_FLOOR = zero_amp.LOW, zero_amp.FLOOR
M.zero_amp_guard = zero_amp.guard
local check_smallest, zero_amp_for = zero_amp.check_smallest, zero_amp.for_step

-- Run a step with ZERO_AMP_THRESH lowered if it needs it; the summary says
-- so (zero_amp = {was, set} in A).
local function with_zero_amp(cell, name, opts, kind, body)
	local g, err = zero_amp_for(cell, name, opts, kind)
	if g == nil then
		return stepped(cell, name, function()
			return finish(new_summary(name, kind == "cv_hold" and "charge" or kind), "device error",
				{ safety = "ZERO_AMP_THRESH: " .. tostring(err) })
		end)
	end
	local guard <close> = g or nil
	local sum = body()
	if g then
		sum.zero_amp = { was = g.was, set = g.set }
	end
	return sum
end

-- Constant-current charge. opts: current (A, required), until_v, until_i,
-- max_time, max_ah, max_wh, max_temp_c, until(sample, summary) -> reason,
-- trickle = {engage_v, current}, pulse = {on, off, off_current},
-- cv_approach = {v, step (A), sensitivity, z}, impedance_every (s),
-- on_impedance(ohms, sample, summary), guard(sample) -> reason,
-- on_sample(sample, summary), name, report_timeout, cv = {v, until_i,
-- max_time} (a constant-voltage hold after the CC phase). Unknown options
-- and values of the wrong type raise (batlab.step_options).
function M.charge(cell, opts)
	step_options.check("charge", opts)
	check_current(opts.current, "charge")
	check_smallest("charge", opts)
	-- The device stops a charge above its charge voltage limit: a hold at
	-- that very voltage would be stopped as soon as it began.
	local cv_v = opts.cv and (opts.cv.v or opts.until_v)
	local vmax = cell.limits_set and cell.limits_set.vmax
	if cv_v and vmax and vmax < cv_v + 0.02 then
		error(("charge: a constant-voltage hold at %.3f V needs the charge voltage limit above it "
			.. "(cell:limits{vmax = %.3f}): set vmax to %.2f V or more"):format(cv_v, vmax, cv_v + 0.05), 2)
	end
	local name = opts.name or "CHARGE"
	return with_zero_amp(cell, name, opts, "charge", function()
		local sum = stepped(cell, name, function()
			return run(cell, "charge", name, opts, function()
				return cell:charge(opts.current)
			end)
		end, opts, "charge")
		if opts.cv and sum.end_reason == "voltage" and sum.safety == nil then
			sum.cv = M.cv_hold(cell, {
				v = opts.cv.v or opts.until_v, until_i = opts.cv.until_i, max_time = opts.cv.max_time,
				current = opts.current, guard = opts.guard, on_sample = opts.on_sample,
				report_timeout = opts.report_timeout, name = name .. "-CV",
				silence_grace = opts.silence_grace, allow_bad_thermistor = opts.allow_bad_thermistor,
				resumable = opts.resumable,
			})
		end
		return sum
	end)
end

-- Constant-current discharge; the same options (until_v is a floor), no cv.
function M.discharge(cell, opts)
	step_options.check("discharge", opts)
	check_current(opts.current, "discharge")
	check_smallest("discharge", opts)
	local name = opts.name or "DISCHARGE"
	return with_zero_amp(cell, name, opts, "discharge", function()
		return stepped(cell, name, function()
			return run(cell, "discharge", name, opts, function()
				return cell:discharge(opts.current)
			end)
		end, opts, "discharge")
	end)
end

-- Rest (IDLE) for `seconds`. opts: on_sample, guard, name, report_timeout.
function M.rest(cell, seconds, opts)
	opts = opts or {}
	step_options.check("rest", opts)
	if type(seconds) ~= "number" or seconds < 0 then
		error("rest: seconds must be a number >= 0", 2)
	end
	local o = { max_time = seconds, on_sample = opts.on_sample, guard = opts.guard,
		report_timeout = opts.report_timeout, silence_grace = opts.silence_grace,
		allow_bad_thermistor = opts.allow_bad_thermistor, tail = opts.tail, capture = opts.capture }
	local name = opts.name or "REST"
	return stepped(cell, name, function()
		if seconds == 0 then
			return finish(new_summary(name, "rest"), "time")
		end
		return run(cell, "rest", name, o, function()
			return cell:idle()
		end)
	end, opts, "rest")
end

local cv_loop

-- Hold the cell at `v` while charging: a proportional loop on voltage that
-- lowers the current target, ending when the current falls to until_i
-- (default 0.05 A) or after max_time. The channel stays in CHARGE (no new
-- relay sequence); the device's charge limit must sit above v.
function M.cv_hold(cell, opts)
	step_options.check("cv_hold", opts)
	if type(opts.v) ~= "number" then
		error("cv_hold: v (the voltage to hold) is required", 2)
	end
	check_smallest("cv_hold", opts)
	local name = opts.name or "CV"
	return with_zero_amp(cell, name, opts, "cv_hold", function()
		return stepped(cell, name, function()
			return cv_loop(cell, opts)
		end, opts, "charge")
	end)
end

function cv_loop(cell, opts)
	local v = opts.v
	local target = opts.current or 1.0
	local until_i = opts.until_i or 0.05
	local r_est = 0.1   -- ohms: how hard to correct per volt of error
	-- what the watch wakes for (batlab.step_watch.cv_spec): the voltage
	-- error that moves the target by the loop's least change (0.008 A),
	-- less a margin for rounding
	local w = { v = v, until_i = until_i, band = r_est * 0.008 - 1e-6,
		opts = { guard = opts.guard, on_sample = opts.on_sample } }
	local sum = new_summary(opts.name or "CV", "charge")
	sum.continues = true
	sum.carry = cell.recording and cell.recording.carry
	if sum.carry then
		-- resumed after a crash: the charge the hold continues is gone
		-- with the host; it starts again at the current it had reached
		local ok, err, code = cell:charge(math.max(sum.carry.current or target, until_i))
		if not ok then
			return finish(sum, "safety", { safety = err, errors = { code } })
		end
		cell.recording:started()
		target = math.max(sum.carry.current or target, until_i)
	end
	while true do
		local s, done = observe(cell, "cv", sum, opts, step_watch.cv_spec(cell, opts, sum, w, target, M))
		if not s then
			return done
		end
		if abs(s.current) <= until_i and target <= until_i * 1.5 then
			return finish(sum, "current")
		end
		if opts.max_time and s.step_time + (sum.carry and sum.carry.time or 0) >= opts.max_time then
			return finish(sum, "time")
		end
		-- The target may go below the end current: that is how the
		-- current gets there while the voltage is held.
		local new = target - (s.voltage - v) / r_est
		new = math.max(math.min(new, opts.current or target), until_i / 2)
		if abs(new - target) >= 0.008 then
			target = new
			local failed = set_current(cell, sum, target)
			if failed then
				return failed
			end
		end
	end
end

-- One impedance measurement (ohms at the sine frequency).
function M.impedance(cell)
	return cell:impedance()
end

-- Measure impedance `count` times `interval` seconds apart, resting.
function M.impedance_survey(cell, count, interval)
	local out = {}
	for k = 1, count do
		out[k] = cell:impedance()
		if k < count then
			M.rest(cell, interval)
		end
	end
	return out
end

M._has = has
-- The step machinery, for modules that build further steps on it
-- (batlab.steps_more): labelling, observation, ending, current changes.
M._core = {
	stepped = stepped, observe = observe, finish = finish, new_summary = new_summary,
	set_current = set_current, with_zero_amp = with_zero_amp, check_current = check_current,
	check_smallest = check_smallest, NORMAL = NORMAL,
}
return M
