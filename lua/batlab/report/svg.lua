-- batlab.report.svg - line plots as SVG text, for any command that draws.
--
-- One function, plot{...}, draws x/y series on one or two y axes, with
-- shaded x ranges (steps), a legend, axis labels with units and ticks at
-- round numbers. The result is one standalone <svg> element (well-formed
-- XML, no scripts, no external references), so it goes into an HTML page
-- as it is or into a file of its own.
--
--   local svg = require "batlab.report.svg"
--   local text = svg.plot{
--     id = "v", title = "Voltage",
--     x = { label = "Test time", unit = "h" },
--     y = { label = "Voltage", unit = "V" },
--     y2 = { label = "Current", unit = "A" },            -- optional
--     series = { { name = "A1", x = xs, y = ys },        -- axis 1, a line
--                { name = "I", x = xs, y = is, axis = 2, points = true } },
--     bands = { { x0 = 0, x1 = 1.2, label = "CHARGE", kind = "charge" } },
--   }
--
-- Every group has a class (frame, grid, bands, axis, series, legend), so a
-- style sheet can hide or restyle parts: the browser check hides all but
-- the series to see that each plot drew its data.

local M = {}

-- Colours that stay apart on screen, on paper and in grey print.
M.PALETTE = { "#1f5fa8", "#c8402a", "#2e8b3e", "#8a4fb0", "#d08a00", "#1b9aa0",
	"#7a5230", "#c2408a", "#4d4d4d", "#6f8f1f" }

local BAND_FILL = { charge = "#f6d9d2", discharge = "#d6e4f3", rest = "#ececec",
	storage = "#efe6d0", impedance = "#e7dcef", other = "#f1f1e4" }

-- escape(s) -> s as XML text or attribute value: markup characters as
-- entities, control characters (not allowed in XML) as U+FFFD, bytes that
-- are not UTF-8 read as Latin-1.
function M.escape(s)
	s = tostring(s)
	if not utf8.len(s) then
		s = s:gsub("[\128-\255]", function(c) return utf8.char(c:byte()) end)
	end
	s = s:gsub("[%z\1-\8\11\12\14-\31\127]", "\239\191\189")
	return (s:gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
		['"'] = "&quot;", ["'"] = "&#39;" }))
end
local esc = M.escape

-- A number as SVG text: one decimal is a tenth of a pixel.
local function px(v)
	local s = ("%.1f"):format(v)
	return (s:gsub("%.0$", ""))
end

-- ticks(lo, hi [, n]) -> list of round values (1, 2, 5 x 10^k steps)
-- covering [lo, hi] with about n of them, the step, and the rounded range.
function M.ticks(lo, hi, n, integer)
	n = n or 6
	if not (hi > lo) then
		hi = lo + 1
	end
	local raw = (hi - lo) / n
	local mag = 10 ^ math.floor(math.log(raw, 10))
	local step = mag
	for _, m in ipairs({ 1, 2, 2.5, 5, 10 }) do
		if m * mag >= raw then
			step = m * mag
			break
		end
	end
	if integer then -- counts (cycles): whole steps
		step = math.max(1, math.floor(step + 0.5))
	end
	local first = math.floor(lo / step + 1e-9) * step
	local last = math.ceil(hi / step - 1e-9) * step
	local out = {}
	for i = 0, math.floor((last - first) / step + 0.5) do
		out[#out + 1] = first + i * step
	end
	return out, step, first, last
end

-- label(v, step) -> the tick text, with as many decimals as the step needs.
function M.tick_label(v, step)
	local d = 0
	while d < 6 and math.abs(step * 10 ^ d - math.floor(step * 10 ^ d + 0.5)) > 1e-6 do
		d = d + 1
	end
	local s = ("%." .. d .. "f"):format(v)
	if s:match("^%-0%.?0*$") then
		s = s:sub(2)
	end
	return s
end

-- time_unit(seconds) -> divisor, unit name: hours for long runs, minutes
-- for shorter ones, seconds for a few minutes.
function M.time_unit(span)
	if span >= 3 * 3600 then
		return 3600, "h"
	elseif span >= 180 then
		return 60, "min"
	end
	return 1, "s"
end

local function finite(v)
	return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge
end

-- The data range of the series on one axis: lo, hi (nil when empty).
local function range(series, axis, key)
	local lo, hi
	for _, s in ipairs(series) do
		if (s.axis or 1) == axis or key == "x" then
			for _, v in ipairs(s[key]) do
				if finite(v) then
					lo = (lo == nil or v < lo) and v or lo
					hi = (hi == nil or v > hi) and v or hi
				end
			end
		end
	end
	return lo, hi
end

-- An axis's scale: the ticks and a function from value to pixel.
local function scale(spec, lo, hi, p0, p1)
	lo = spec.min or lo or 0
	hi = spec.max or hi or 1
	if hi <= lo then
		local pad = math.abs(lo) * 0.05 + 0.5
		lo, hi = lo - pad, hi + pad
	elseif not (spec.min or spec.max or spec.tight) then
		local pad = (hi - lo) * 0.04
		lo, hi = lo - pad, hi + pad
	end
	local ticks, step, first, last = M.ticks(lo, hi, spec.ticks or 6, spec.integer)
	if not spec.min then
		lo = first
	end
	if not spec.max then
		hi = last
	end
	local k = (p1 - p0) / (hi - lo)
	return { ticks = ticks, step = step, lo = lo, hi = hi,
		at = function(v) return p0 + (v - lo) * k end }
end

local function axis_title(spec)
	return spec.unit and (spec.label .. " / " .. spec.unit) or spec.label
end

-- The legend's rows: entries laid out left to right, wrapping.
local function legend_layout(series, x0, width)
	local rows, x, row = {}, x0, 1
	for i, s in ipairs(series) do
		if not s.nolegend then
			local w = 26 + 6.4 * (utf8.len(s.name) or #s.name)
			if x > x0 and x + w > x0 + width then
				x, row = x0, row + 1
			end
			rows[#rows + 1] = { i = i, x = x, row = row }
			x = x + w + 10
		end
	end
	return rows, #rows > 0 and row or 0
end

local function path_data(s, sx, sy)
	local out, pen = {}, "M"
	local xs, ys = s.x, s.y
	for i = 1, #xs do
		local x, y = xs[i], ys[i]
		if finite(x) and finite(y) then
			out[#out + 1] = pen .. px(sx(x)) .. " " .. px(sy(y))
			pen = "L"
		else
			pen = "M" -- a gap: no value here
		end
	end
	return table.concat(out)
end

local function draw_series(out, s, i, sx, sy)
	local color = s.color or M.PALETTE[(i - 1) % #M.PALETTE + 1]
	out[#out + 1] = ('<g class="series" data-name="%s" data-points="%d"><title>%s</title>')
		:format(esc(s.name), #s.x, esc(s.title or s.name))
	if not s.points_only then
		out[#out + 1] = ('<path d="%s" fill="none" stroke="%s" stroke-width="%s"%s/>'):format(
			path_data(s, sx, sy), color, s.width or 1.5,
			s.dash and (' stroke-dasharray="%s"'):format(s.dash) or "")
	end
	if s.points or s.points_only then
		for j = 1, #s.x do
			if finite(s.x[j]) and finite(s.y[j]) then
				out[#out + 1] = ('<circle cx="%s" cy="%s" r="2.5" fill="%s"/>'):format(
					px(sx(s.x[j])), px(sy(s.y[j])), color)
			end
		end
	end
	out[#out + 1] = "</g>"
end

local function draw_bands(out, bands, sx, top, bottom, left, right)
	if not bands or #bands == 0 then
		return
	end
	out[#out + 1] = '<g class="bands">'
	for _, b in ipairs(bands) do
		local x0, x1 = math.max(sx(b.x0), left), math.min(sx(b.x1), right)
		if x1 > x0 then
			out[#out + 1] = ('<rect x="%s" y="%s" width="%s" height="%s" fill="%s"><title>%s</title></rect>')
				:format(px(x0), px(top), px(x1 - x0), px(bottom - top),
					BAND_FILL[b.kind] or BAND_FILL.other, esc(b.title or b.label or ""))
			if b.label and x1 - x0 >= 7 * #b.label + 4 then
				out[#out + 1] = ('<text x="%s" y="%s" class="band-label">%s</text>'):format(
					px(x0 + 2), px(top + 10), esc(b.label))
			end
		end
	end
	out[#out + 1] = "</g>"
end

local function draw_axes(out, o, g)
	out[#out + 1] = '<g class="grid" stroke="#d9d9d9" stroke-width="0.5">'
	for _, v in ipairs(g.xs.ticks) do
		out[#out + 1] = ('<line x1="%s" y1="%s" x2="%s" y2="%s"/>'):format(
			px(g.xs.at(v)), g.top, px(g.xs.at(v)), g.bottom)
	end
	for _, v in ipairs(g.ys.ticks) do
		out[#out + 1] = ('<line x1="%s" y1="%s" x2="%s" y2="%s"/>'):format(
			g.left, px(g.ys.at(v)), g.right, px(g.ys.at(v)))
	end
	out[#out + 1] = "</g>"
	out[#out + 1] = '<g class="axis">'
	for _, v in ipairs(g.xs.ticks) do
		out[#out + 1] = ('<text x="%s" y="%s" text-anchor="middle">%s</text>'):format(
			px(g.xs.at(v)), g.bottom + 14, M.tick_label(v, g.xs.step))
	end
	for _, v in ipairs(g.ys.ticks) do
		out[#out + 1] = ('<text x="%s" y="%s" text-anchor="end">%s</text>'):format(
			g.left - 5, px(g.ys.at(v) + 3.5), M.tick_label(v, g.ys.step))
	end
	if g.y2s then
		for _, v in ipairs(g.y2s.ticks) do
			out[#out + 1] = ('<text x="%s" y="%s">%s</text>'):format(
				g.right + 5, px(g.y2s.at(v) + 3.5), M.tick_label(v, g.y2s.step))
		end
		out[#out + 1] = ('<text class="axis-title" transform="translate(%s %s) rotate(90)" text-anchor="middle">%s</text>')
			:format(g.width - 12, px((g.top + g.bottom) / 2), esc(axis_title(o.y2)))
	end
	out[#out + 1] = ('<text class="axis-title" x="%s" y="%s" text-anchor="middle">%s</text>'):format(
		px((g.left + g.right) / 2), g.bottom + 32, esc(axis_title(o.x)))
	out[#out + 1] = ('<text class="axis-title" transform="translate(14 %s) rotate(-90)" text-anchor="middle">%s</text>')
		:format(px((g.top + g.bottom) / 2), esc(axis_title(o.y)))
	out[#out + 1] = "</g>"
end

local function draw_legend(out, o, rows, top)
	out[#out + 1] = '<g class="legend">'
	for _, r in ipairs(rows) do
		local s = o.series[r.i]
		local color = s.color or M.PALETTE[(r.i - 1) % #M.PALETTE + 1]
		local y = top + (r.row - 1) * 16
		out[#out + 1] = ('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="3"%s/>'):format(
			px(r.x), y - 4, px(r.x + 20), y - 4, color,
			s.dash and (' stroke-dasharray="%s"'):format(s.dash) or "")
		out[#out + 1] = ('<text x="%s" y="%s">%s</text>'):format(px(r.x + 24), y, esc(s.name))
	end
	out[#out + 1] = "</g>"
end

-- plot(o) -> the SVG text of one plot (see the top of this file). A
-- series with nolegend = true is drawn but not named in the legend.
function M.plot(o)
	local width, height = o.width or 760, o.height or 280
	local has2 = false
	for _, s in ipairs(o.series) do
		has2 = has2 or s.axis == 2
	end
	local left, right = 64, width - (has2 and o.y2 and 64 or 20)
	local rows, nrows = legend_layout(o.series, left, right - left)
	local top = 24 + nrows * 16
	local bottom = height - 44
	local g = { left = left, right = right, top = top, bottom = bottom, width = width }
	local xlo, xhi = range(o.series, 1, "x")
	g.xs = scale(o.x, xlo, xhi, left, right)
	-- x: the data's own range (time from 0), y: a little room around it
	local ylo, yhi = range(o.series, 1, "y")
	g.ys = scale(o.y, ylo, yhi, bottom, top)
	if has2 and o.y2 then
		local lo2, hi2 = range(o.series, 2, "y")
		g.y2s = scale(o.y2, lo2, hi2, bottom, top)
	end
	local out = {}
	out[#out + 1] = ('<svg xmlns="http://www.w3.org/2000/svg" class="plot" id="%s" width="%d" height="%d" '
		.. 'viewBox="0 0 %d %d" font-family="sans-serif" font-size="11" role="img" aria-label="%s">')
		:format(esc(o.id or "plot"), width, height, width, height, esc(o.title or ""))
	out[#out + 1] = ("<title>%s</title>"):format(esc(o.title or ""))
	out[#out + 1] = ('<text class="plot-title" x="%d" y="14" font-weight="bold">%s</text>'):format(left, esc(o.title or ""))
	out[#out + 1] = ('<rect class="frame" x="%d" y="%d" width="%d" height="%d" fill="#ffffff" stroke="#888888"/>')
		:format(left, top, right - left, bottom - top)
	draw_bands(out, o.bands, g.xs.at, top, bottom, left, right)
	draw_axes(out, o, g)
	out[#out + 1] = ('<svg class="data" x="%d" y="%d" width="%d" height="%d" viewBox="%d %d %d %d" overflow="hidden">')
		:format(left, top, right - left, bottom - top, left, top, right - left, bottom - top)
	for i, s in ipairs(o.series) do
		draw_series(out, s, i, g.xs.at, (s.axis == 2 and g.y2s or g.ys).at)
	end
	out[#out + 1] = "</svg>"
	draw_legend(out, o, rows, 38)
	out[#out + 1] = "</svg>"
	return table.concat(out, "\n")
end

return M
