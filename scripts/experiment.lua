-- experiment.lua - runs an experiment file of PyBaMM-style step strings
-- (docs/characterisation.md, "Experiments"): `batlab run --experiment
-- FILE` runs this script with file=FILE.
-- Run: batlab run --experiment docs/examples/experiment.txt --sim --cell 0=A1
local experiment = require "batlab.experiment"

return {
	name = "experiment",
	description = "The steps of an experiment file (\"Discharge at 1C until 3.0 V\", \"Rest for 1 hour\", "
		.. "...); C-rates on capacity_ah.",
	params = { file = "", capacity_ah = 2.5, hold_current = 0, vmax = 4.2, vmin = 2.5, tmax_c = 55 },
	run = function(cell, p)
		if p.file == "" then
			return false, "no experiment: give --experiment FILE (or --set file=FILE)", "error"
		end
		local f, err = io.open(p.file, "rb")
		if not f then
			return false, "experiment: " .. tostring(err), "error"
		end
		local list = experiment.parse(f:read("a"), p.file)
		f:close()
		cell:limits{ vmax = p.vmax + 0.05, vmin = p.vmin, imax = 4.0, tmax_c = p.tmax_c }
		local sums, ok = experiment.run(cell, list, { capacity_ah = p.capacity_ah,
			hold_current = p.hold_current > 0 and p.hold_current or nil })
		cell:idle()
		local last = sums[#sums]
		if not ok then
			return false, ("step %d (%s) ended %s"):format(#sums, last.name, last.end_reason), "error"
		end
		local out = 0
		for _, s in ipairs(sums) do
			out = out + (s.kind == "discharge" and s.ah or 0)
		end
		cell:record{ experiment_steps = #sums, experiment_discharge_ah = out }
		return true, ("%d steps, %.3f Ah discharged"):format(#sums, out)
	end,
}
