-- impedance-survey.lua - impedance against state of charge: from full,
-- discharge a tenth of the capacity at a time, rest, measure the impedance.
-- Run: batlab run scripts/impedance-survey.lua --sim --cell 0=A1
local steps = require "batlab.steps"

return {
	name = "impedance-survey",
	params = { capacity_ah = 2.5, points = 8, current = 1.0, rest_s = 300, vmax = 4.2, vmin = 2.8 },
	run = function(cell, p)
		cell:limits{ vmax = p.vmax + 0.05, vmin = p.vmin, imax = 4.0, tmax_c = 50 }
		local full = steps.charge(cell, { current = p.current, until_v = p.vmax, cv = { until_i = 0.1 } })
		if not steps.ok(full) then
			return false, "charge: " .. full.end_reason, "error"
		end
		local out = {}
		for k = 1, p.points do
			steps.rest(cell, p.rest_s)
			local z = cell:impedance()
			out[#out + 1] = ("%d%%:%.4f"):format(100 - (k - 1) * 10, z or 0)
			cell:record{ ["z_" .. k] = z }
			local d = steps.discharge(cell, { current = p.current, max_ah = p.capacity_ah / 10, until_v = p.vmin })
			if d.end_reason ~= "charge" then
				break -- reached the floor: the survey is done
			end
		end
		cell:idle()
		return true, "impedance by SOC " .. table.concat(out, " ")
	end,
}
