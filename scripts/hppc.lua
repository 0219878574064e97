-- hppc.lua - hybrid pulse power characterisation: from full, at every
-- tenth of the capacity, rest, a 10 s discharge pulse, 40 s rest, a 10 s
-- charge pulse; then discharge the next tenth. Records the discharge and
-- charge pulse resistance, the OCV and the available power at each state
-- of charge.
-- Run: batlab run scripts/hppc.lua --sim --cell 0=A1
-- docs/characterisation.md explains the method and the records.
local ch = require "batlab.characterise"
local more = require "batlab.steps_more"

-- One SoC point: rest, pulses; returns the point's figures or nil, why.
local function point(cell, p, k)
	local _, v0 = ch.rest_v(cell, p.rest_s, ("REST %d"):format(k))
	local d, ds = ch.pulse(cell, -p.discharge_a, p.pulse_s, ("DCH PULSE %d"):format(k), 1)
	if not ch.ok(d) or d.end_reason ~= "time" then
		return nil, "discharge pulse: " .. d.end_reason
	end
	local rd = ch.pulse_r(ds, v0, v0, d.duration, { p.pulse_s })[p.pulse_s]
	local _, v1 = ch.rest_v(cell, p.between_s, ("PULSE REST %d"):format(k))
	-- near full a charge pulse would reach the charge limit (the device
	-- would stop the channel): skipped when the discharge pulse's
	-- resistance says it would come within 20 mV of vmax
	local rc
	if rd and v1 + p.charge_a * rd * 1.2 < p.vmax - 0.02 then
		local c, cs = ch.pulse(cell, p.charge_a, p.pulse_s, ("CHG PULSE %d"):format(k), 1)
		if not ch.ok(c) or c.end_reason ~= "time" then
			return nil, "charge pulse: " .. c.end_reason
		end
		rc = ch.pulse_r(cs, v1, v1, c.duration, { p.pulse_s })[p.pulse_s]
	end
	return { ocv = v0, r_dis = rd, r_chg = rc,
		-- the power at the voltage limits through the pulse resistance
		p_dis = rd and p.vmin * (v0 - p.vmin) / rd, p_chg = rc and p.vmax * (p.vmax - v0) / rc }
end

return {
	name = "hppc",
	description = "Hybrid pulse power characterisation at every 10 % of charge from full: "
		.. "pulse resistance (discharge and charge), OCV and available power versus SoC.",
	params = { capacity_ah = 2.5, charge_a = 1.25, discharge_a = 2.5, pulse_charge_ratio = 0.75,
		pulse_s = 10, between_s = 40, rest_s = 3600, step_soc = 0.1, vmax = 4.2, vmin = 2.8 },
	run = function(cell, p)
		cell:limits{ vmax = p.vmax + 0.05, vmin = p.vmin - 0.1, imax = 4.0, tmax_c = 55 }
		p.charge_a = p.charge_a or p.discharge_a * p.pulse_charge_ratio
		local full = ch.full(cell, p)
		if not ch.ok(full) then
			return false, "charge: " .. full.end_reason, "error"
		end
		local out, out_ah, rec = {}, 0, {}
		p.charge_a = p.discharge_a * p.pulse_charge_ratio
		for k = 1, math.floor(1 / p.step_soc + 0.5) do
			local soc = 1 - out_ah / p.capacity_ah
			local pt, why = point(cell, p, k)
			if not pt then
				return false, why, "error"
			end
			rec["hppc_" .. k] = { soc = soc, ocv_v = pt.ocv, r_dis_ohm = pt.r_dis, r_chg_ohm = pt.r_chg,
				p_dis_w = pt.p_dis, p_chg_w = pt.p_chg }
			out[#out + 1] = ("%.0f%% %s/%s mOhm"):format(soc * 100, pt.r_dis and ("%.1f"):format(pt.r_dis * 1000)
				or "-", pt.r_chg and ("%.1f"):format(pt.r_chg * 1000) or "-")
			-- the pulses' net charge counts too
			local d = more.discharge(cell, { current = p.capacity_ah, max_ah = p.capacity_ah * p.step_soc,
				stop = { v_below = p.vmin }, name = ("SOC STEP %d"):format(k) })
			out_ah = out_ah + d.ah + p.pulse_s * (p.discharge_a - (pt.r_chg and p.charge_a or 0)) / 3600
			if d.end_reason ~= "charge" then
				break
			end
		end
		cell:record(rec)
		cell:idle()
		return true, "HPPC R dis/chg: " .. table.concat(out, ", ")
	end,
}
