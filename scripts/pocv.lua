-- pocv.lua - pseudo-OCV: from full, a slow discharge to vmin, a rest, a
-- slow charge back to vmax; the OCV at each state of charge is the mean of
-- the discharge and charge voltages there (the resistive drop cancels).
-- Records the table { soc, v_discharge, v_charge, ocv } and both capacities.
-- Run: batlab run scripts/pocv.lua --sim --cell 0=A1
-- docs/characterisation.md explains the method and the records.
local ch = require "batlab.characterise"
local more = require "batlab.steps_more"
local steps = require "batlab.steps"
local batlab = require "batlab"

-- A slow step recording {charge Ah, V} at every report (captured in C:
-- the step is watched, no Lua runs for the reports in between).
local function slow(cell, fn, opts)
	opts.capture = batlab.series { "charge_ah", "voltage" }
	local sum = fn(cell, opts)
	local curve = opts.capture:rows()
	for _, pt in ipairs(curve) do
		pt[1] = math.abs(pt[1] or 0)
	end
	return sum, curve
end

return {
	name = "pocv",
	description = "Pseudo-OCV at a low rate (default C/20) both ways and an OCV-versus-SoC table "
		.. "every soc_step.",
	params = { capacity_ah = 2.5, c_rate = 0.05, charge_a = 1.25, rest_s = 3600, soc_step = 0.05,
		report_s = 10, vmax = 4.2, vmin = 2.8, start_full = true },
	run = function(cell, p)
		cell:limits{ vmax = p.vmax + 0.05, vmin = p.vmin - 0.1, imax = 4.0, tmax_c = 55 }
		local zguard <close> = assert(steps.zero_amp_guard(cell, 0.05))
		if p.start_full then
			local full = ch.full(cell, p)
			if not ch.ok(full) then
				return false, "charge: " .. full.end_reason, "error"
			end
		end
		ch.rest_v(cell, p.rest_s, "REST TOP")
		local i = p.capacity_ah * p.c_rate
		-- a slow curve needs no report a second (40 h each way at C/20)
		cell:report_interval(p.report_s)
		local d, dc = slow(cell, more.discharge, { current = i, stop = { v_below = p.vmin }, name = "SLOW DISCHARGE" })
		cell:report_interval(1)
		ch.rest_v(cell, p.rest_s, "REST BOTTOM")
		cell:report_interval(p.report_s)
		local c, cc = slow(cell, more.charge, { current = i, stop = { v_above = p.vmax }, name = "SLOW CHARGE" })
		cell:report_interval(1)
		if not (ch.ok(d) and ch.ok(c)) then
			return false, ("slow steps ended %s, %s"):format(d.end_reason, c.end_reason), "error"
		end
		-- each curve on its own capacity: SoC 1 at the top, 0 at the bottom
		local dv, cv = {}, {}
		for k, pt in ipairs(dc) do
			dv[#dc - k + 1] = { 1 - pt[1] / d.ah, pt[2] }
		end
		for k, pt in ipairs(cc) do
			cv[k] = { pt[1] / c.ah, pt[2] }
		end
		local tbl = {}
		local at_d, at_c = {}, {}   -- the SoCs grow: each lookup goes on from the last
		for k = 0, math.floor(1 / p.soc_step + 0.5) do
			local soc = k * p.soc_step
			local a, b = ch.interp(dv, soc, at_d), ch.interp(cv, soc, at_c)
			tbl[#tbl + 1] = { soc = soc, v_discharge = a, v_charge = b, ocv = (a + b) / 2 }
		end
		cell:record{ pocv = tbl, pocv_discharge_ah = d.ah, pocv_charge_ah = c.ah }
		cell:idle()
		return true, ("pOCV: %.3f Ah down, %.3f Ah up, OCV at 50%% %.3f V"):format(d.ah, c.ah,
			ch.interp((function()
				local o = {}
				for k, r in ipairs(tbl) do
					o[k] = { r.soc, r.ocv }
				end
				return o
			end)(), 0.5))
	end,
}
