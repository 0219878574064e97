-- batlab.characterise - the measurements the characterisation scripts
-- (scripts/dcir.lua, hppc.lua, gitt.lua, pocv.lua, cycle-life-rpt.lua) share:
-- bringing a cell to a state of charge, the rest voltage, a current pulse
-- sampled finely, its resistance at given times, statistics.
-- docs/characterisation.md says how each is computed.

local batlab = require "batlab"
local more = require "batlab.steps_more"
local steps = require "batlab.steps"

local M = {}

-- mean(list) and the standard uncertainty of that mean (s/sqrt(n); nil
-- for one value).
function M.mean_u(list)
	local n, s = #list, 0
	if n == 0 then
		return nil
	end
	for _, x in ipairs(list) do
		s = s + x
	end
	local m = s / n
	if n < 2 then
		return m, nil
	end
	local ss = 0
	for _, x in ipairs(list) do
		ss = ss + (x - m) ^ 2
	end
	return m, math.sqrt(ss / (n - 1) / n)
end

-- The value of series {t, v} at time t, linearly between samples.
-- `from` (optional, a table kept across calls at times that only grow)
-- remembers where the last one found t: the samples before are not gone
-- through again, and the sample found is the same (the first at or after t).
function M.interp(series, t, from)
	local k0 = 2
	if from and from.t and t >= from.t then
		k0 = from.k
	end
	for k = k0, #series do
		local a, b = series[k - 1], series[k]
		if t <= b[1] then
			if from then
				from.k, from.t = k, t
			end
			if b[1] == a[1] then
				return b[2]
			end
			return a[2] + (b[2] - a[2]) * (t - a[1]) / (b[1] - a[1])
		end
	end
	if from then
		from.k, from.t = math.max(#series + 1, k0), t
	end
	return series[#series] and series[#series][2]
end

-- full(cell, p): charge to p.vmax (CC then CV to C/20) in one step.
function M.full(cell, p)
	return more.cccv(cell, { current = p.charge_a, v = p.vmax, until_i = p.capacity_ah / 20,
		max_time = 6 * 3600, name = "FULL" })
end

-- rest_v(cell, seconds, name) -> the rest's summary, the mean voltage of
-- its last 5 reports (the noise averaged out). The step keeps them (tail):
-- a rest with no per-report function is watched in C (batlab.step_watch).
function M.rest_v(cell, seconds, name)
	local r = more.rest(cell, seconds, { name = name, tail = 5 })
	return r, (M.mean_u(r.tail or {}))
end

-- pulse(cell, amps, seconds, name, interval) -> summary, series: a current
-- pulse (+ charge, - discharge) of `seconds`, reported every `interval` s
-- (default 0.1: the device's finest), series = { {step_time, V, I}, ... }.
-- The step captures them (a batlab.series): it is watched in C.
function M.pulse(cell, amps, seconds, name, interval)
	local cap = batlab.series { "step_time", "voltage", "current" }
	cell:report_interval(interval or 0.1)
	local o = { current = math.abs(amps), max_time = seconds, name = name, capture = cap }
	local r = amps > 0 and more.charge(cell, o) or more.discharge(cell, o)
	cell:report_interval(1)
	return r, cap:rows()
end

-- The resistance of a pulse at times `at` (s into the pulse): (OCV(t) -
-- V(t)) / I, with OCV(t) moving linearly from v0 (the rest before) to v1
-- (the rest after: the charge the pulse moved) over the pulse's length.
-- Returns { [t] = ohms }.
function M.pulse_r(series, v0, v1, length, at)
	local out = {}
	local vs, is = {}, {}
	for k, p in ipairs(series) do
		vs[k], is[k] = { p[1], p[2] }, { p[1], p[3] }
	end
	for _, t in ipairs(at) do
		if t <= length and #series > 1 and series[1][1] <= t then
			local ocv = v0 + (v1 - v0) * t / length
			local i = M.interp(is, t)
			if math.abs(i) > 0.01 then
				out[t] = (M.interp(vs, t) - ocv) / i
			end
		end
	end
	return out
end

-- ok(summary) as batlab.steps.
M.ok = steps.ok

return M
