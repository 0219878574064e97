-- batlab.step_watch - what a step of batlab.steps would act on, as the
-- thresholds of ch:watch (see src/lua/lua_watch.c): the step's task is
-- resumed only for a report that crosses one of them, or an unusual one;
-- the quiet reports in between are accounted in C. Every condition the
-- step checks per report must be here (or make the step look at every
-- report): a threshold missed here is a step that does not end.
local M = {}

-- Guards whose state a watched step can bring up to date over the quiet
-- reports they did not see: guard -> function(last_quiet, vcc_seen).
-- A step with a guard not in here looks at every report.
M.quiet_guards = setmetatable({}, { __mode = "k" })

-- `until` predicates whose ends are thresholds (batlab.conditions):
-- until -> function(spec, sum) -> true when it tightened spec to wake at
-- every report it could fire on, false when it needs them all now. A step
-- with any other `until` looks at every report.
M.until_thresholds = setmetatable({}, { __mode = "k" })

-- Thresholds from a difference (a pulse phase) are woken this early:
-- waking early is safe (the step checks, then watches again).
local EARLY = 1e-6

-- The tighter of a threshold (nil: none) and another: the lower of two
-- upper thresholds, the higher of two lower ones.
local function lower(a, b)
	return (a and a < b) and a or b
end

local function higher(a, b)
	return (a and a > b) and a or b
end
M.EARLY, M.lower, M.higher = EARLY, lower, higher

-- How far before cv.v the constant-voltage taper lowers the current:
-- I x Z x sensitivity (Lexcelon's approximation), Z the latest impedance
-- (or cv.z, 0.05 ohm) kept within 0.01..0.5 ohm. batlab.steps tapers
-- there; the watch wakes there.
function M.cv_margin(cv, st)
	local z = math.min(math.max(st.last_z or cv.z or 0.05, 0.01), 0.5)
	return st.base_current * z * (cv.sensitivity or 1)
end

-- The voltage thresholds: the end voltage, trickle engagement, the
-- constant-voltage taper's margin, and a removed cell (< 0.5 V).
local function voltages(kind, opts, st, spec)
	local hi, lo = math.huge, 0.5
	local up = st.sign > 0
	if opts.until_v then
		if up then
			hi = lower(hi, opts.until_v)
		elseif kind ~= "rest" then
			lo = higher(lo, opts.until_v)
		end
	end
	if opts.trickle and not st.trickle_on then
		if up then
			hi = lower(hi, opts.trickle.engage_v)
		else
			lo = higher(lo, opts.trickle.engage_v)
		end
	end
	local cv = opts.cv_approach
	if cv and st.pulse_on and not st.trickle_on and st.base_current > cv.step then
		local margin = M.cv_margin(cv, st)
		if up then
			hi = lower(hi, cv.v - margin)
		else
			lo = higher(lo, cv.v + margin)
		end
	end
	spec.v_hi, spec.v_lo = hi, lo
end

-- The step-time thresholds: the next pulse phase change, the next
-- impedance measurement.
local function times(opts, st, sum, spec)
	local at = math.huge
	local p = opts.pulse
	if p and (p.on or 0) > 0 then
		if st.pulse_on then
			at = st.pulse_t + p.on - EARLY
		elseif (p.off or 0) > 0 then
			at = st.pulse_t + p.off - EARLY
		end
	end
	if opts.impedance_every and opts.impedance_every > 0 and not st.trickle_on then
		at = math.min(at, sum._next_z or opts.impedance_every)
	end
	spec.t_at = at
end

-- wait(cell, sum, spec, opts, account_latest) -> as cell:wait. Waits
-- through ch:watch: the quiet reports it accounted are added to the
-- summary as account() would have added them one by one (same sums, in
-- the same order: the summary is bit for bit the same).
function M.wait(cell, sum, spec, opts, account_latest)
	local p = sum.end_sample
	spec.sum_v, spec.sum_i, spec.prev_v, spec.prev_t = sum._sum_v, sum._sum_i, p.voltage, p.temp_c
	spec.timeout = opts.report_timeout or 15
	local s, err, code = cell:watch(spec)
	local n = spec.quiet
	if n > 0 then
		sum.samples = sum.samples + n
		sum._sum_v, sum._sum_i = spec.sum_v, spec.sum_i
		if spec.temp_first then
			sum.temp_start = sum.temp_start or spec.temp_first
			sum.temp_end = spec.temp_last
			if not sum.temp_max or spec.temp_max_seen > sum.temp_max then
				sum.temp_max = spec.temp_max_seen
			end
		end
		account_latest(sum, spec.prev)
		local g = opts.guard and M.quiet_guards[opts.guard]
		if g then
			g(spec.prev, spec.vcc_seen)
		end
	end
	return s, err, code
end

-- spec(cell, kind, opts, st, sum, steps) -> the watch spec of the step's
-- next report, or nil when the step has to look at every report (its
-- own predicate, on_sample or guard, a cell hook, the first report).
-- `steps` gives the limits the step module uses (thermistor, jumps).
function M.spec(cell, kind, opts, st, sum, steps)
	local until_ = opts["until"] and M.until_thresholds[opts["until"]]
	if sum.samples == 0 or opts.on_sample or (opts["until"] and not until_) or cell.on_sample
		or (opts.guard and not M.quiet_guards[opts.guard]) or not cell.watch then
		return nil
	end
	local spec = st.spec or {}
	st.spec = spec
	spec.mode = sum.end_sample.mode
	voltages(kind, opts, st, spec)
	times(opts, st, sum, spec)
	spec.i_lo, spec.i_after = opts.until_i, opts.settle or 5
	local c = sum.carry
	spec.dur_at, spec.t_offset, spec.carry_time = opts.max_time, sum.t_offset, c and c.time or 0
	spec.ah_at, spec.carry_ah = opts.max_ah, c and c.ah or 0
	spec.wh_at, spec.carry_wh = opts.max_wh, c and c.wh or 0
	spec.temp_at, spec.temp_min, spec.temp_max = opts.max_temp_c, steps.THERMISTOR_MIN_C, steps.THERMISTOR_MAX_C
	-- the default guards count a drop of 0.2 V: a jump too
	spec.jump_v = opts.guard and math.min(steps.VOLTAGE_JUMP, 0.2) or steps.VOLTAGE_JUMP
	spec.jump_t = steps.TEMP_JUMP
	spec.vcc_lo = opts.guard and 4.35 or nil
	spec.i_hi, spec.dvdt, spec.dvdt_below, spec.reg, spec.mdv_dv = nil, nil, nil, nil, nil
	-- the voltages the step keeps (opts.tail): the quiet reports' too
	spec.tail = sum._tail
	spec.capture = opts.capture
	if until_ and not until_(spec, sum) then
		return nil
	end
	return spec
end

-- The spec of a constant-voltage hold's next report (batlab.steps'
-- cv_hold), or nil to look at it: it wakes where the hold's loop could
-- act. A voltage within w.band of w.v moves the target by less than the
-- loop's least change (its clamps only make the change smaller, the
-- target being within them); the end current and time limit are
-- thresholds (the hold's time is its step time plus what it carried).
local CV_ST = { sign = 1, pulse_on = true, trickle_on = false, base_current = 0 }
function M.cv_spec(cell, opts, sum, w, target, steps)
	if target < w.until_i / 2 or (opts.current and target > opts.current) then
		return nil
	end
	local spec = M.spec(cell, "cv", w.opts, CV_ST, sum, steps)
	if spec then
		spec.v_hi = lower(spec.v_hi, w.v + w.band)
		spec.v_lo = higher(spec.v_lo, w.v - w.band)
		spec.i_lo, spec.i_after = higher(spec.i_lo, w.until_i), 0
		if opts.max_time then
			spec.t_at = math.min(spec.t_at, opts.max_time - (sum.carry and sum.carry.time or 0) - EARLY)
		end
	end
	return spec
end

return M
