-- cycle-life-rpt.lua - cycling to end of life: CCCV charge, rest, CC
-- discharge, rest, again; every rpt_every cycles (and the first) a
-- reference performance test: a slower discharge for the capacity and a
-- 10 s pulse at full for the DC resistance. Stops at end of life (the
-- capacity below eol of the first reference capacity) or after `cycles`.
-- Run: batlab run scripts/cycle-life-rpt.lua --sim --cell 0=A1 --set cycles=3
-- docs/characterisation.md explains the records.
local ch = require "batlab.characterise"
local more = require "batlab.steps_more"
local C = require "batlab.conditions"

-- The reference test at full: rest, a 1C pulse, rest; its resistance.
local function rpt_pulse(cell, p, k)
	local _, v0 = ch.rest_v(cell, p.rest_s, "RPT REST " .. k)
	local r, series = ch.pulse(cell, -p.capacity_ah, 10, "RPT PULSE " .. k, 1)
	local _, v1 = ch.rest_v(cell, p.rest_s, "RPT RELAX " .. k)
	return ch.ok(r) and ch.pulse_r(series, v0, v1, r.duration, { 10 })[10] or nil
end

return {
	name = "cycle-life-rpt",
	description = "Cycle life: CCCV charge / CC discharge cycles with a reference test (capacity at "
		.. "rpt_c_rate and 10 s DCIR) every rpt_every cycles; capacity retention and end of life.",
	params = { capacity_ah = 2.5, charge_a = 1.25, discharge_a = 2.5, rpt_c_rate = 0.5, cycles = 500,
		rpt_every = 50, eol = 0.8, rest_s = 600, vmax = 4.2, vmin = 2.8 },
	run = function(cell, p)
		cell:limits{ vmax = p.vmax + 0.05, vmin = p.vmin - 0.1, imax = 4.0, tmax_c = 55 }
		local caps, rpts, first, eol_cycle, moved = {}, {}, nil, nil, 0
		local dead = C.predicate(function() return eol_cycle ~= nil end, "end of life")
		local g = more.group(cell, { name = "CYCLES", n = p.cycles, ["until"] = dead }, function(k)
			local rpt = k == 1 or k % p.rpt_every == 0
			cell:label{ cycle = k, cycle_kind = "other" }
			local c = ch.full(cell, p)
			if not ch.ok(c) then
				return c
			end
			local z = rpt and rpt_pulse(cell, p, k) or nil
			local rest = more.rest(cell, p.rest_s, { name = "REST" })
			-- the capacity discharge alone is the cycle's measurement (the
			-- summary's capacity, docs/results.md)
			cell:label{ cycle_kind = rpt and "measurement" or "other" }
			local before = moved + c.ah + (z and 10 * p.capacity_ah / 3600 or 0)
			local i = rpt and p.capacity_ah * p.rpt_c_rate or p.discharge_a
			local d = more.discharge(cell, { current = i, stop = { v_below = p.vmin }, name = "DISCHARGE" })
			if not ch.ok(d) then
				return d
			end
			caps[k], moved = d.ah, before + d.ah
			if rpt then
				first = first or d.ah
				rpts[#rpts + 1] = { cycle = k, capacity_ah = d.ah, retention = d.ah / first, dcir_ohm = z,
					throughput_ah = before }
				if d.ah < p.eol * first then
					eol_cycle = k
				end
			end
			return { c, rest, d, more.rest(cell, p.rest_s, { name = "REST" }) }
		end)
		local last = rpts[#rpts]
		cell:record{ cycle_capacity_ah = caps, rpt = rpts, cycles_done = g.iterations, eol_cycle = eol_cycle,
			retention = last and last.retention, throughput_ah = g.ah }
		cell:idle()
		if not g.ok then
			return false, ("cycle %d: %s"):format(g.iterations, g.end_reason), "error"
		end
		return true, ("%d cycles, retention %.1f %%%s"):format(g.iterations, (last and last.retention or 0) * 100,
			eol_cycle and (", end of life at cycle " .. eol_cycle) or "")
	end,
}
