-- grade.lua - sort cells into bins for pack building by capacity and
-- impedance: one charge/discharge cycle, then a grade per cell.
-- Run: batlab run scripts/grade.lua --sim --cells-from cells.txt
-- With --set rules=FILE the bins come from FILE (batlab.grade_rules,
-- docs/characterisation.md "Grading") instead of min_ah and max_ohm.
local steps = require "batlab.steps"
local grade_rules = require "batlab.grade_rules"

return {
	name = "grade",
	params = { current = 2.0, vmax = 4.2, vmin = 2.8, min_ah = 2.0, max_ohm = 0.08, rules = "" },
	-- A rules file that cannot be read or parsed stops the run before it
	-- starts (exit 2), not each cell after its cycle.
	check = function(p)
		if p.rules ~= "" then
			local f, err = io.open(p.rules, "rb")
			if not f then
				return "rules: " .. tostring(err)
			end
			local text = f:read("a")
			f:close()
			grade_rules.parse(text, p.rules)
		end
	end,
	run = function(cell, p)
		local rules
		if p.rules ~= "" then
			local f = assert(io.open(p.rules, "rb"))
			rules = grade_rules.parse(f:read("a"), p.rules)
			f:close()
		end
		cell:limits{ vmax = p.vmax + 0.05, vmin = p.vmin, imax = 4.0, tmax_c = 55 }
		local c = steps.charge(cell, { current = p.current, until_v = p.vmax, cv = { until_i = 0.1 } })
		if not steps.ok(c) then
			return false, "charge ended: " .. c.end_reason, "error"
		end
		steps.rest(cell, 600)
		local z = cell:impedance()
		local d = steps.discharge(cell, { current = p.current, until_v = p.vmin })
		if not steps.ok(d) then
			return false, "discharge ended: " .. d.end_reason, "error"
		end
		cell:idle()
		local grade = (d.ah < p.min_ah or (z or 1) > p.max_ohm) and "reject"
			or d.ah >= p.min_ah * 1.1 and "A" or "B"
		if rules then
			grade = grade_rules.grade(rules, { capacity_ah = d.ah, energy_wh = d.wh, impedance_ohm = z,
				temp_rise_c = d.temp_rise })
		end
		cell:record{ capacity_ah = d.ah, impedance_ohm = z, grade = grade }
		return grade ~= "reject", ("grade %s: %.3f Ah, %.4f ohm"):format(grade, d.ah, z or 0)
	end,
}
