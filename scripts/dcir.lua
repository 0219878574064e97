-- dcir.lua - DC internal resistance: current pulses from rest, the
-- resistance at several times into each pulse, repeated for its
-- uncertainty, and the IEC 61960-style two-level figure.
-- Run: batlab run scripts/dcir.lua --sim --cell 0=A1
-- docs/characterisation.md explains the method and the records.
local ch = require "batlab.characterise"
local more = require "batlab.steps_more"

local function key(t)
	return ("%g"):format(t):gsub("%.", "p")
end

return {
	name = "dcir",
	description = "DC resistance at 1, 10 and 30 s into discharge pulses from rest, and the "
		.. "IEC 61960 two-level resistance (0.2C for 10 s, then 1C for 1 s).",
	params = { current = 2.0, capacity_ah = 2.5, repeats = 3, pulse_s = 30, rest_s = 300,
		vmax = 4.2, vmin = 2.8 },
	run = function(cell, p)
		cell:limits{ vmax = p.vmax + 0.05, vmin = p.vmin, imax = 4.0, tmax_c = 55 }
		local at = { 1, 10, 30 }
		local rs, rec_first_t = {}, nil
		for _, t in ipairs(at) do
			rs[t] = {}
		end
		for k = 1, p.repeats do
			local _, v0 = ch.rest_v(cell, p.rest_s, "REST " .. k)
			local r, series = ch.pulse(cell, -p.current, p.pulse_s, "PULSE " .. k)
			if not ch.ok(r) then
				return false, "pulse: " .. r.end_reason, "error"
			end
			local _, v1 = ch.rest_v(cell, p.rest_s, "RELAX " .. k)
			for t, ohm in pairs(ch.pulse_r(series, v0, v1, r.duration, at)) do
				rs[t][#rs[t] + 1] = ohm
			end
			-- the first report (0.1 s at the device's finest interval)
			local first = series[1]
			rs.first = rs.first or {}
			rs.first[#rs.first + 1] = (first[2] - v0) / first[3]
			rec_first_t = first[1]
		end
		local rec, shown = { dcir_first_ohm = (ch.mean_u(rs.first)), dcir_first_s = rec_first_t }, {}
		for _, t in ipairs(at) do
			local m, u = ch.mean_u(rs[t])
			if m then
				rec["dcir_" .. key(t) .. "s_ohm"], rec["dcir_" .. key(t) .. "s_u_ohm"] = m, u
				shown[#shown + 1] = ("%gs %.1f mOhm"):format(t, m * 1000)
			end
		end
		-- two levels: 0.2C for 10 s, then 1C for 1 s (the voltages at the
		-- end of each)
		local i1, i2 = 0.2 * p.capacity_ah, p.capacity_ah
		ch.rest_v(cell, p.rest_s, "REST IEC")
		local a = more.discharge(cell, { current = i1, max_time = 10, name = "IEC I1" })
		local b = more.discharge(cell, { current = i2, max_time = 1, name = "IEC I2" })
		if ch.ok(a) and ch.ok(b) then
			local va, vb = a.end_sample, b.end_sample
			rec.dcir_iec_ohm = (va.voltage - vb.voltage) / (math.abs(vb.current) - math.abs(va.current))
			shown[#shown + 1] = ("IEC %.1f mOhm"):format(rec.dcir_iec_ohm * 1000)
		end
		cell:record(rec)
		cell:idle()
		return true, "DCIR " .. table.concat(shown, ", ")
	end,
}
