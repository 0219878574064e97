-- cycle-life.lua - a cycle-life test: charge and discharge at constant
-- current (1 C each by default) for `cycles` cycles, with a rest after
-- each step; each discharge's capacity against the first one's is the
-- capacity retention, and the cycle where it first falls below `eol`
-- (80 %) is the cell's end of life.
-- Run: batlab run scripts/cycle-life.lua --sim --record every=30 --set cycles=20 A B C D
-- The time series grows with the cycles: --record every=30 keeps a row
-- every 30 s (and every step's first and last) while the steps and the
-- summaries still see every report.
local steps = require "batlab.steps"

return {
	name = "cycle-life",
	description = "Cycle at 1 C / 1 C: capacity retention per cycle and the cycle of end of life "
		.. "(retention below eol); passes when the cell is above eol after the last cycle.",
	params = {
		cycles = 500, capacity_ah = 2.5, charge_c = 1.0, discharge_c = 1.0,
		vmax = 4.2, vmin = 2.8, rest_s = 60, eol = 0.8, stop_at_eol = false,
	},
	run = function(cell, p)
		if p.cycles < 1 or p.capacity_ah <= 0 or not (p.eol > 0 and p.eol < 1) then
			error("cycle-life: cycles >= 1, capacity_ah > 0 and eol within (0, 1) are needed", 0)
		end
		cell:limits{ vmax = p.vmax + 0.05, vmin = p.vmin - 0.2, imax = 4.0, tmax_c = 55 }
		local first, last, eol_cycle, done = nil, nil, nil, 0
		for n = 1, p.cycles do
			cell:label{ cycle = n, cycle_kind = "measurement" }
			local c = steps.charge(cell, { current = p.charge_c * p.capacity_ah, until_v = p.vmax })
			if not steps.ok(c) then
				return false, ("cycle %d: charge ended: %s"):format(n, c.end_reason), "error"
			end
			steps.rest(cell, p.rest_s)
			local d = steps.discharge(cell, { current = p.discharge_c * p.capacity_ah, until_v = p.vmin })
			if not steps.ok(d) then
				return false, ("cycle %d: discharge ended: %s"):format(n, d.end_reason), "error"
			end
			steps.rest(cell, p.rest_s)
			first, last, done = first or d.ah, d.ah, n
			local retention = d.ah / first
			if not eol_cycle and retention < p.eol then
				eol_cycle = n
				cell:log("end of life at cycle %d: %.1f %% of the first capacity (%.4f of %.4f Ah)",
					n, retention * 100, d.ah, first)
				if p.stop_at_eol then
					break
				end
			end
			if n % 50 == 0 then
				cell:log("cycle %d: %.4f Ah, %.1f %% of the first", n, d.ah, retention * 100)
			end
		end
		cell:idle()
		local retention = last / first
		cell:record{ cycles_done = done, first_ah = first, last_ah = last, retention = retention,
			eol_cycle = eol_cycle }
		return retention >= p.eol, ("%d cycles: %.4f Ah, %.1f %% of the first %.4f Ah; end of life %s")
			:format(done, last, retention * 100, first,
				eol_cycle and ("at cycle " .. eol_cycle) or ("not reached (" .. math.floor(p.eol * 100) .. " %)"))
	end,
}
