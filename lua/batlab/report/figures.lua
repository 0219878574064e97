-- batlab.report.figures - the plots of a run, from what batlab.report.load
-- read: per cell voltage and current, temperature, capacity and coulombic
-- efficiency per cycle, discharge curves, impedance, dQ/dV; across cells
-- (or runs) the overlays. Each function returns the SVG text, or nil when
-- the run has no data for that plot (a plot is never drawn empty).

local ds = require "batlab.report.downsample"
local load = require "batlab.report.load"
local svg = require "batlab.report.svg"

local M = {}

-- Points per drawn series: enough for a plot 760 px wide (and zoomed in).
M.POINTS = 2000
M.CURVE_POINTS = 600

local val = load.val

local function num(s)
	return s and s ~= "" and tonumber(s) or nil
end

local function scaled(xs, k)
	local out = {}
	for i, x in ipairs(xs) do
		out[i] = x / k
	end
	return out
end

-- A reducer's points, cut to n for drawing, time in the plot's unit.
local function time_series(reducer, k, n)
	local xs, ys = reducer:points()
	xs, ys = ds.lttb(xs, ys, n or M.POINTS)
	return scaled(xs, k), ys
end

-- The shaded steps of a cell: every step, or only charges and discharges
-- when there are so many that rests would be slivers.
local function bands(cell, k)
	local out = {}
	local many = #cell.steps > 120
	for _, s in ipairs(cell.steps) do
		local t0, d = num(s["Start / s"]), num(s["Duration / s"])
		local kind = s["Step Kind"]
		if t0 and d and not (many and kind ~= "charge" and kind ~= "discharge") then
			local name = s["Step Name"] ~= "" and s["Step Name"] or ("step " .. (s.Step or "?"))
			out[#out + 1] = { x0 = t0 / k, x1 = (t0 + d) / k, label = name, kind = kind,
				title = ("step %s %s (cycle %s, %s): %s s, ended on %s"):format(s.Step or "?", name,
					s.Cycle or "?", kind or "?", s["Duration / s"] or "?", s["End Reason"] or "?") }
		end
	end
	return out
end

local function time_axis(cell)
	local k, unit = svg.time_unit((cell.ts.t_last or 0) - math.min(cell.ts.t_first or 0, 0))
	return k, { label = "Test time", unit = unit, tight = true }
end

-- Voltage (left axis) and current (right axis) versus time.
function M.voltage_current(cell, id)
	if cell.ts.v.n == 0 then
		return nil
	end
	local k, xaxis = time_axis(cell)
	local vx, vy = time_series(cell.ts.v, k)
	local series = { { name = "Voltage", x = vx, y = vy, title = cell.name .. ": voltage" } }
	if cell.ts.i.n > 0 then
		local ix, iy = time_series(cell.ts.i, k)
		series[2] = { name = "Current", x = ix, y = iy, axis = 2, width = 1, title = cell.name .. ": current" }
	end
	return svg.plot{ id = id, title = cell.name .. ": voltage and current", x = xaxis,
		y = { label = "Voltage", unit = "V" }, y2 = { label = "Current", unit = "A" },
		series = series, bands = bands(cell, k) }
end

function M.temperature(cell, id)
	if cell.ts.temp.n == 0 then
		return nil
	end
	local k, xaxis = time_axis(cell)
	local tx, ty = time_series(cell.ts.temp, k)
	return svg.plot{ id = id, title = cell.name .. ": temperature", x = xaxis, height = 220,
		y = { label = "Temperature", unit = "°C" },
		series = { { name = "Temperature", x = tx, y = ty, color = svg.PALETTE[3],
			title = cell.name .. ": temperature" } }, bands = bands(cell, k) }
end

-- cycles(cell) -> list of { cycle, kind, charge_ah, discharge_ah, ce }:
-- from summary.json, or added up from steps.csv when it has none.
function M.cycles(cell)
	local out = {}
	local sc = cell.summary and val(cell.summary.cycles)
	if type(sc) == "table" then
		for _, c in ipairs(sc) do
			out[#out + 1] = { cycle = val(c.cycle), kind = val(c.kind), charge_ah = val(c.charge_ah),
				discharge_ah = val(c.discharge_ah), ce = val(c.coulombic_efficiency) }
		end
		return out
	end
	local by = {}
	for _, s in ipairs(cell.steps) do
		local cy, q = num(s.Cycle), num(s["Charge / Ah"])
		local kind = s["Step Kind"]
		if cy and q and (kind == "charge" or kind == "discharge") then
			if not by[cy] then
				by[cy] = { cycle = cy, kind = s["Cycle Kind"] }
				out[#out + 1] = by[cy]
			end
			local key = kind .. "_ah"
			by[cy][key] = (by[cy][key] or 0) + math.abs(q)
		end
	end
	return out
end

-- Discharge capacity (and charge) per cycle on the left, CE in % right.
function M.capacity(cell, id)
	local cx, dq, cq, ce = {}, {}, {}, {}
	local any = false
	for _, c in ipairs(M.cycles(cell)) do
		if c.cycle and (c.discharge_ah or c.charge_ah) then
			cx[#cx + 1] = c.cycle
			dq[#cx], cq[#cx] = c.discharge_ah or 0 / 0, c.charge_ah or 0 / 0
			ce[#cx] = c.ce and c.ce * 100 or 0 / 0
			any = any or c.discharge_ah ~= nil
		end
	end
	if not any then
		return nil
	end
	local few = #cx <= 60
	local series = {
		{ name = "Discharge capacity", x = cx, y = dq, points = few, title = cell.name .. ": discharge Ah per cycle" },
		{ name = "Charge", x = cx, y = cq, points = few, dash = "4 3", width = 1, title = cell.name .. ": charge Ah per cycle" },
	}
	local has_ce = false
	for _, v in ipairs(ce) do
		has_ce = has_ce or v == v
	end
	if has_ce then
		series[3] = { name = "Coulombic efficiency", x = cx, y = ce, axis = 2, points = few, color = svg.PALETTE[3],
			title = cell.name .. ": coulombic efficiency per cycle" }
	end
	return svg.plot{ id = id, title = cell.name .. ": capacity and coulombic efficiency per cycle",
		height = 240, x = { label = "Cycle", ticks = 8, integer = true },
		y = { label = "Charge", unit = "Ah" }, y2 = { label = "Coulombic efficiency", unit = "%" },
		series = series }
end

-- The V-versus-Ah curves of the discharges load picked, as series.
function M.curve_series(cell, prefix)
	local series = {}
	for _, s in ipairs(cell.discharges or {}) do
		local c = cell.ts.curves[num(s.Step)]
		if c and #c.q > 1 then
			local qx, vy = ds.series(c.q, c.v, M.CURVE_POINTS)
			local label = ("cycle %s (%s)"):format(s.Cycle or "?", s["Cycle Kind"] or "?")
			series[#series + 1] = { name = prefix and (prefix .. ", " .. label) or label, x = qx, y = vy,
				title = ("%s: discharge, step %s, cycle %s"):format(cell.name, s.Step or "?", s.Cycle or "?") }
		end
	end
	return series
end

function M.discharge_curves(cell, id)
	local series = M.curve_series(cell)
	if #series == 0 then
		return nil
	end
	return svg.plot{ id = id, title = cell.name .. ": discharge curves", height = 260,
		x = { label = "Discharged", unit = "Ah", tight = true }, y = { label = "Voltage", unit = "V" }, series = series }
end

function M.impedance(cell, id)
	local zt, z = cell.ts.zt, cell.ts.z
	if #z == 0 then
		return nil
	end
	local k, xaxis = time_axis(cell)
	local xs, ys = ds.series(zt, z, M.POINTS)
	return svg.plot{ id = id, title = cell.name .. ": impedance", height = 220, x = xaxis,
		y = { label = "Impedance", unit = "Ω" },
		series = { { name = "Impedance", x = scaled(xs, k), y = ys, points = #xs <= 200, width = 1,
			color = svg.PALETTE[4], title = cell.name .. ": impedance measurements" } } }
end

-- dQ/dV, when the run's analysis wrote it into the cell's summary as
-- dqdv = { voltage = {...}, dqdv = {...} } (Ah/V).
function M.dqdv(cell, id)
	local d = cell.summary and val(cell.summary.dqdv)
	if type(d) ~= "table" or type(val(d.voltage)) ~= "table" or type(val(d.dqdv)) ~= "table" or #d.voltage < 2 then
		return nil
	end
	return svg.plot{ id = id, title = cell.name .. ": dQ/dV", height = 240,
		x = { label = "Voltage", unit = "V" }, y = { label = "dQ/dV", unit = "Ah/V" },
		series = { { name = "dQ/dV", x = d.voltage, y = d.dqdv, title = cell.name .. ": dQ/dV" } } }
end

-- Capacity per cycle of several cells (entries: { name, cell }) on one axis.
function M.overlay_capacity(entries, id, title)
	local series = {}
	for _, e in ipairs(entries) do
		local cx, dq = {}, {}
		for _, c in ipairs(M.cycles(e.cell)) do
			if c.cycle and c.discharge_ah then
				cx[#cx + 1], dq[#cx + 1] = c.cycle, c.discharge_ah
			end
		end
		if #cx > 0 then
			series[#series + 1] = { name = e.name, x = cx, y = dq, points = #cx <= 60,
				title = e.name .. ": discharge Ah per cycle" }
		end
	end
	if #series == 0 then
		return nil
	end
	return svg.plot{ id = id, title = title or "Discharge capacity per cycle", height = 260,
		x = { label = "Cycle", ticks = 8, integer = true }, y = { label = "Discharge capacity", unit = "Ah" }, series = series }
end

-- The first and the last picked discharge of each cell, on one axis.
function M.overlay_curves(entries, id, title)
	local series = {}
	for i, e in ipairs(entries) do
		local cs = M.curve_series(e.cell, e.name)
		local color = svg.PALETTE[(i - 1) % #svg.PALETTE + 1]
		if #cs > 0 then
			cs[1].color = color
			series[#series + 1] = cs[1]
		end
		if #cs > 1 then
			cs[#cs].color, cs[#cs].dash = color, "5 3"
			series[#series + 1] = cs[#cs]
		end
	end
	if #series == 0 then
		return nil
	end
	return svg.plot{ id = id, title = title or "Discharge curves (first solid, last dashed)", height = 300,
		x = { label = "Discharged", unit = "Ah", tight = true }, y = { label = "Voltage", unit = "V" }, series = series }
end

-- Voltage versus time of several cells (the same cell across runs).
function M.overlay_voltage(entries, id, title)
	local series, span = {}, 0
	for _, e in ipairs(entries) do
		span = math.max(span, e.cell.ts.t_last or 0)
	end
	local k, unit = svg.time_unit(span)
	for _, e in ipairs(entries) do
		if e.cell.ts.v.n > 0 then
			local xs, ys = time_series(e.cell.ts.v, k)
			series[#series + 1] = { name = e.name, x = xs, y = ys, width = 1.2, title = e.name .. ": voltage" }
		end
	end
	if #series == 0 then
		return nil
	end
	return svg.plot{ id = id, title = title, x = { label = "Test time", unit = unit, tight = true },
		y = { label = "Voltage", unit = "V" }, series = series }
end

return M
