-- A procedure of a user's own for `make check-report`: two cycles of
-- charge, rest, discharge with an impedance check, on cells whose names
-- the page must escape. Not a stock script: it shows a report works for
-- whatever steps a procedure marks.
local steps = require "batlab.steps"

return {
	name = "report-check",
	params = { charge_a = 1.5, discharge_a = 2.0, vmax = 4.1, vmin = 3.2, cycles = 2 },
	run = function(cell, p)
		cell:limits{ vmax = p.vmax + 0.05, vmin = p.vmin - 0.2, imax = 4.0, tmax_c = 55 }
		local last
		for c = 1, p.cycles do
			cell:label{ cycle = c, cycle_kind = "measurement" }
			steps.charge(cell, { current = p.charge_a, until_v = p.vmax })
			steps.rest(cell, 120)
			cell:impedance()
			last = steps.discharge(cell, { current = p.discharge_a, until_v = p.vmin })
			steps.rest(cell, 120)
		end
		return true, ("last discharge %.3f Ah"):format(last.ah)
	end,
}
