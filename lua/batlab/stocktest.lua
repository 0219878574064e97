-- batlab.stocktest - Lexcelon's stock cycle and discharge tests (their test
-- manager's state machine) on batlab's engine; scripts/cycle-test.lua and
-- scripts/discharge-test.lua are the procedures that use it.
--
-- The sequence is the test manager's: precharge, rest, then for each of
-- the warm-up and measurement cycles a discharge, rest, charge and rest,
-- then an optional storage discharge. What differs, on purpose:
--   * a step the device stopped on a safety limit (temperature, current,
--     supply) is reported as such and ends that cell's test, instead of
--     passing for a normal end of step;
--   * a removed cell ends that cell's test with a clear result;
--   * the last charge gets its rest like every other;
--   * every cycle is numbered and marked warm-up or measurement;
--   * an impedance measurement or a step change on one channel never stalls
--     the others (each cell is its own task);
--   * ZERO_AMP_THRESH, which the constant-voltage mode lowers and which the
--     device keeps in EEPROM, is put back however the test ends.

local steps = require "batlab.steps"

local M = {}

-- The rate for a step, or nil when the settings say not to run it.
local function rate(x)
	return type(x) == "number" and x > 0 and x or nil
end

-- Options every current step shares, from the settings. kind: "precharge",
-- "charge", "discharge" or "storage". The precharge is a charge: it
-- trickles at the charge trickle settings (the seed's PRECHARGE does), but
-- is never pulsed. The storage discharge is plain, as the seed's: no
-- trickle, no pulse, no constant-voltage taper.
local function step_options(cell, p, kind)
	local o = {
		guard = steps.default_guards(function(msg) cell:log(msg) end),
		impedance_every = (p.impedanceReportingPeriod or 0) > 0 and p.impedanceReportingPeriod or nil,
	}
	if kind == "storage" then
		return o
	end
	local charge = kind == "charge" or kind == "precharge"
	if p.trickleEnable and not p.constantVoltageEnable then
		o.trickle = charge
			and { engage_v = p.trickleChrgEngageVoltage, current = p.trickleChrgRate }
			or { engage_v = p.trickleDischrgEngageVoltage, current = p.trickleDischrgRate }
	end
	if p.pulseEnable and kind ~= "precharge" then
		o.pulse = charge
			and { on = p.pulseChrgOnTime, off = p.pulseChrgOffTime, off_current = p.pulseChrgOffRate }
			or { on = p.pulseDischrgOnTime, off = p.pulseDischrgOffTime, off_current = p.pulseDischrgOffRate }
	end
	local cv = charge and p.constantVoltageEnable or (kind == "discharge" and p.constantVoltageDischargeEnable)
	if cv and not o.pulse then
		o.cv_approach = {
			v = charge and p.highVoltageCutoff or p.lowVoltageCutoff,
			step = (p.constantVoltageStepsize or 8) / 128,
			sensitivity = p.constantVoltageSensitivity or 1,
		}
	end
	return o
end

local function charge_step(cell, p, name, current)
	local o = step_options(cell, p, name == "PRECHARGE" and "precharge" or "charge")
	o.name, o.current, o.until_v = name, current, p.highVoltageCutoff
	return steps.charge(cell, o)
end

local function discharge_step(cell, p, ctx, name, floor, kind)
	local o = step_options(cell, p, kind or "discharge")
	o.name, o.current, o.until_v = name, p.dischargeRate, floor
	if ctx.deadline then
		-- The discharge test's timeout counts from the start of the test.
		o["until"] = function(s)
			return s.time >= ctx.deadline and "timeout" or nil
		end
	end
	return steps.discharge(cell, o)
end

local function rest_step(cell, p, name)
	return steps.rest(cell, p.restPeriod or 0, {
		name = name,
		guard = steps.default_guards(function(msg) cell:log(msg) end),
	})
end

-- An abnormal end of a step stops the test.
local function check(sum)
	if not steps.ok(sum) then
		local why = sum.end_reason
		if sum.safety and sum.safety ~= why then
			why = why .. " (" .. tostring(sum.safety) .. ")"
		end
		return false, ("%s ended: %s"):format(sum.name, why)
	end
	return true
end

-- An abnormal end means the test could not be done: the verdict is
-- "error", not a failed cell.
local function abort(cell, why)
	cell:idle()
	return false, why, "error"
end

-- The discharge test: one discharge. A timeout ends it normally, but what
-- it measured is not the capacity, and the verdict says so.
local function discharge_test(cell, p, ctx)
	cell:label { cycle = 1, cycle_kind = "measurement" }
	local d = discharge_step(cell, p, ctx, "DISCHARGE", p.lowVoltageCutoff)
	local fine, why = check(d)
	if not fine then
		return abort(cell, why)
	end
	cell:idle()
	if d.end_reason == "timeout" then
		local v = d.end_sample and d.end_sample.voltage or 0
		return true, ("timeout after %.0f s at %.3f V, before %.3f V: the capacity is incomplete")
			:format(d.duration, v, p.lowVoltageCutoff)
	end
	return true, "completed"
end

-- test_type: "cycle" or "discharge"; ctx.deadline (batlab.now() time)
-- ends discharges. Returns ok, message (the verdict).
function M.run(cell, p, ctx, test_type)
	ctx = ctx or {}
	local ok, err = cell:limits{
		vmax = p.highVoltageCutoff, vmin = p.lowVoltageCutoff,
		imax_chg = p.chargeCurrentSafetyCutoff, imax_dchg = p.dischargeCurrentSafetyCutoff,
		tmax_chg_c = p.chargeTemperatureCutoff, tmax_dchg_c = p.dischargeTemperatureCutoff,
	}
	if not ok then
		return false, "could not set the limits: " .. tostring(err), "error"
	end
	-- Below ZERO_AMP_THRESH (0.25 A from the factory) the device reads 0 A
	-- and counts no charge: a C/10 test of a 2.5 Ah cell would measure
	-- half its capacity. Small currents (and the constant-voltage taper)
	-- get the threshold lowered to 0.05 A for the test, put back after.
	local small = p.constantVoltageEnable
	for _, r in ipairs({ p.prechargeRate, p.chargeRate, p.dischargeRate,
		p.trickleEnable and p.trickleChrgRate, p.trickleEnable and p.trickleDischrgRate }) do
		if type(r) == "number" and r > 0 and r < 0.5 then
			small = true
		end
	end
	-- (Once for the whole test: the steps would otherwise each write the
	-- EEPROM twice.)
	local zguard <close> = small and assert(steps.zero_amp_guard(cell)) or nil
	-- Lexcelon's log has a row every reportingPeriod: under a second, the
	-- reports must come that often (0.1 s steps).
	if type(p.reportingPeriod) == "number" and p.reportingPeriod < 1 then
		cell:report_interval(math.max(0.1, math.floor(p.reportingPeriod * 10 + 0.5) / 10))
	end
	local discharge_only = test_type == "discharge"
	local n = (p.numWarmupCycles or 0) + (p.numMeasurementCycles or 0)

	if discharge_only then
		return discharge_test(cell, p, ctx)
	end

	if rate(p.prechargeRate) then
		cell:label { cycle = 0, cycle_kind = "precharge" }
		local fine, why = check(charge_step(cell, p, "PRECHARGE", p.prechargeRate))
		if not fine then
			return abort(cell, why)
		end
		fine, why = check(rest_step(cell, p, "CHARGEREST"))
		if not fine then
			return abort(cell, why)
		end
	end

	for cycle = 1, n do
		cell:label { cycle = cycle, cycle_kind = cycle <= (p.numWarmupCycles or 0) and "warmup" or "measurement" }
		local fine, why = check(discharge_step(cell, p, ctx, "DISCHARGE", p.lowVoltageCutoff))
		if fine then
			fine, why = check(rest_step(cell, p, "DISCHARGEREST"))
		end
		if fine and rate(p.chargeRate) then
			fine, why = check(charge_step(cell, p, "CHARGE", p.chargeRate))
			if fine then
				fine, why = check(rest_step(cell, p, "CHARGEREST"))
			end
		end
		if not fine then
			return abort(cell, why)
		end
	end

	if p.storageDischarge then
		cell:label { cycle = n, cycle_kind = "storage" }
		local fine, why = check(discharge_step(cell, p, ctx, "POSTDISCHARGE", p.storageDischargeVoltage,
			"storage"))
		if not fine then
			return abort(cell, why)
		end
	end
	cell:idle()
	return true, "completed"
end

return M
