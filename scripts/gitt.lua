-- gitt.lua - galvanostatic intermittent titration: from full, a discharge
-- pulse, then a rest until the voltage has relaxed (|dV/dt| below a
-- threshold) or a time limit, again and again until the voltage falls to
-- vmin. Records per pulse the state of charge, the relaxed voltage (OCV),
-- the ohmic drop at the pulse's start and the overpotential at its end.
-- Run: batlab run scripts/gitt.lua --sim --cell 0=A1
-- docs/characterisation.md explains the method and the records.
local ch = require "batlab.characterise"
local more = require "batlab.steps_more"
local C = require "batlab.conditions"

return {
	name = "gitt",
	description = "GITT: discharge pulses each followed by a rest until |dV/dt| < relax_vps "
		.. "(or relax_max_s), until the voltage reaches vmin; OCV and overpotentials per pulse.",
	params = { capacity_ah = 2.5, charge_a = 1.25, current = 0.5, pulse_s = 600, relax_vps = 1e-5,
		relax_window_s = 120, relax_max_s = 3600, vmax = 4.2, vmin = 3.0, start_full = true },
	run = function(cell, p)
		cell:limits{ vmax = p.vmax + 0.05, vmin = p.vmin - 0.2, imax = 4.0, tmax_c = 55 }
		if p.start_full then
			local full = ch.full(cell, p)
			if not ch.ok(full) then
				return false, "charge: " .. full.end_reason, "error"
			end
		end
		local _, v_prev = ch.rest_v(cell, p.relax_max_s, "REST")
		local out_ah, points = 0, {}
		local relax = C.dvdt_below(p.relax_vps, p.relax_window_s, "relaxed")
		-- ends once a pulse reaches vmin under load (the relaxed voltage
		-- after it is above vmin again)
		local floor = false
		local until_floor = C.predicate(function() return floor end, "voltage")
		local g = more.group(cell, { name = "GITT", ["until"] = until_floor }, function(k)
			-- no per-report functions: the steps are watched in C, the
			-- relax's dV/dt too (docs/procedures.md)
			local d = more.discharge(cell, { current = p.current, max_time = p.pulse_s, name = "PULSE " .. k,
				stop = { v_below = p.vmin } })
			local first = d.first_sample
			out_ah = out_ah + d.ah
			floor = d.end_condition == "voltage"
			-- the relaxed voltage: the mean of its last 5 reports
			local r = more.rest(cell, p.relax_max_s, { name = "RELAX " .. k, stop = relax, tail = 5 })
			local ocv = ch.mean_u(r.tail or {})
			points[#points + 1] = { soc = 1 - out_ah / p.capacity_ah, ocv_v = ocv, relaxed_by = r.end_condition,
				ir_v = first and v_prev - first.voltage, eta_v = d.end_sample and ocv - d.end_sample.voltage }
			v_prev = ocv
			return { d, r }
		end)
		cell:record{ gitt = points, gitt_pulses = #points, gitt_ah = out_ah }
		cell:idle()
		return g.ok, ("GITT %d pulses, %.3f Ah, ended on %s"):format(#points, out_ah, g.end_reason)
	end,
}
