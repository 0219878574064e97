-- batlab.cycle_analysis - what a run's rows add up to, after the run
-- (docs/characterisation.md, "Analysis"): per-cycle statistics from
-- steps.csv and the time series, throughput and equivalent full cycles,
-- dQ/dV and dV/dQ of every long enough charge and discharge, and the
-- resistance at every current step in the data. Pure computations on
-- rows already read; batlab.analyze reads and writes the files.
--
-- A time-series row here: { t, cycle, step, mode, v, i, temp, q } (q: the
-- step's charge in Ah, signed like i). A steps row: { cycle, step, name,
-- kind, duration, ah, wh, avg_v }.

local M = {}

-- The per-cycle statistics of one cell. capacity_ah: the nominal (for
-- equivalent full cycles; default the largest discharge of a cycle).
function M.cycles(step_rows, series, capacity_ah)
	local by, order = {}, {}
	local function cyc(n)
		if not by[n] then
			by[n] = { cycle = n, chg_ah = 0, chg_wh = 0, dis_ah = 0, dis_wh = 0, cv_s = 0, cv_ah = 0 }
			order[#order + 1] = n
		end
		return by[n]
	end
	for _, r in ipairs(step_rows) do
		local c = cyc(r.cycle)
		c.steps = true
		if r.kind == "charge" then
			c.chg_ah, c.chg_wh = c.chg_ah + r.ah, c.chg_wh + r.wh
		elseif r.kind == "discharge" then
			c.dis_ah, c.dis_wh = c.dis_ah + r.ah, c.dis_wh + r.wh
		end
	end
	M.cv_and_heat(series, cyc)
	-- rows before the first step (limits written, nothing driven) make no cycle
	local kept = {}
	for _, n in ipairs(order) do
		if by[n].steps then
			kept[#kept + 1] = n
		end
	end
	order = kept
	table.sort(order)
	if not capacity_ah then
		local most = 0
		for _, n in ipairs(order) do
			most = math.max(most, by[n].dis_ah)
		end
		capacity_ah = most > 0 and most or nil
	end
	local out, thr, dis_total = {}, 0, 0
	for _, n in ipairs(order) do
		local c = by[n]
		c.ce = c.chg_ah > 0 and c.dis_ah / c.chg_ah or nil
		c.ee = c.chg_wh > 0 and c.dis_wh / c.chg_wh or nil
		c.chg_avg_v = c.chg_ah > 0 and c.chg_wh / c.chg_ah or nil
		c.dis_avg_v = c.dis_ah > 0 and c.dis_wh / c.dis_ah or nil
		thr, dis_total = thr + c.chg_ah + c.dis_ah, dis_total + c.dis_ah
		c.throughput_ah = thr
		c.efc = capacity_ah and dis_total / capacity_ah or nil
		out[#out + 1] = c
	end
	return out
end

-- The constant-voltage part of each cycle's charge (time and charge while
-- the voltage is within 10 mV of the cycle's highest charging voltage and
-- the current below 90 % of its highest charging current) and the
-- temperature rise (highest minus the cycle's first reading).
function M.cv_and_heat(series, cyc)
	local top = {}
	for _, s in ipairs(series) do
		if s.mode == "CHARGE" then
			local tp = top[s.cycle] or { v = 0, i = 0 }
			tp.v, tp.i = math.max(tp.v, s.v), math.max(tp.i, s.i)
			top[s.cycle] = tp
		end
	end
	local prev
	for _, s in ipairs(series) do
		local c = cyc(s.cycle)
		if s.temp then
			c.temp_first = c.temp_first or s.temp
			c.temp_rise = math.max(c.temp_rise or 0, s.temp - c.temp_first)
		end
		local tp = top[s.cycle]
		if prev and prev.step == s.step and s.mode == "CHARGE" and tp and s.v >= tp.v - 0.010 and s.i < 0.9 * tp.i then
			c.cv_s = c.cv_s + (s.t - prev.t)
			c.cv_ah = c.cv_ah + math.abs(s.q - prev.q)
		end
		prev = s
	end
end

-- A centred moving average over n points (n odd; 1: none).
local function smooth(ys, n)
	if n <= 1 then
		return ys
	end
	local h, out = n // 2, {}
	for k = 1, #ys do
		local s, m = 0, 0
		for j = math.max(1, k - h), math.min(#ys, k + h) do
			s, m = s + ys[j], m + 1
		end
		out[k] = s / m
	end
	return out
end
M.smooth = smooth

-- dQ/dV of one step's rows: the charge of each report interval goes to the
-- voltage bin (bin_v wide) of the interval's mean voltage; per bin, Ah/V,
-- then a moving average over `n` bins. Returns { {v, dqdv}, ... } in
-- increasing voltage, and the peak { v, dqdv }.
function M.dqdv(rows, bin_v, n)
	local bins, lo, hi = {}, math.huge, -math.huge
	for k = 2, #rows do
		local a, b = rows[k - 1], rows[k]
		local key = math.floor((a.v + b.v) / 2 / bin_v)
		bins[key] = (bins[key] or 0) + math.abs(b.q - a.q)
		lo, hi = math.min(lo, key), math.max(hi, key)
	end
	if lo > hi then
		return {}, nil
	end
	local vs, ys = {}, {}
	for key = lo, hi do
		vs[#vs + 1] = (key + 0.5) * bin_v
		ys[#ys + 1] = (bins[key] or 0) / bin_v
	end
	ys = smooth(ys, n)
	local out, peak = {}, nil
	for k = 1, #vs do
		out[k] = { vs[k], ys[k] }
		-- the edges (where the step began and ended) are no peak
		if k > n and k <= #vs - n and (not peak or ys[k] > peak[2]) then
			peak = out[k]
		end
	end
	return out, peak
end

-- dV/dQ of one step's rows: the voltage change per charge bin (bin_ah
-- wide), smoothed over n bins. Returns { {q, dvdq}, ... }.
function M.dvdq(rows, bin_ah, n)
	local out, start = {}, rows[1]
	if not start then
		return out
	end
	local vs, qs = {}, {}
	local acc, nb = 0, 0
	for k = 2, #rows do
		local a, b = rows[k - 1], rows[k]
		acc = acc + math.abs(b.q - a.q)
		if acc >= (nb + 1) * bin_ah then
			nb = nb + 1
			qs[nb], vs[nb] = acc, b.v
		end
	end
	local ys = {}
	for k = 2, nb do
		ys[k - 1] = math.abs(vs[k] - vs[k - 1]) / (qs[k] - qs[k - 1])
	end
	ys = smooth(ys, n)
	for k = 1, #ys do
		out[k] = { qs[k + 1], ys[k] }
	end
	return out
end

-- The resistance at every current step: consecutive reports at most
-- max_dt apart whose current differs by at least min_di A give |dV/dI|.
-- Returns { {t, dt, i_from, i_to, v_from, v_to, ohms}, ... }.
function M.resistances(series, min_di, max_dt)
	local out = {}
	for k = 2, #series do
		local a, b = series[k - 1], series[k]
		local di = b.i - a.i
		if math.abs(di) >= min_di and b.t - a.t <= max_dt then
			out[#out + 1] = { t = b.t, dt = b.t - a.t, i_from = a.i, i_to = b.i, v_from = a.v, v_to = b.v,
				ohms = math.abs((b.v - a.v) / di) }
		end
	end
	return out
end

function M.median(xs)
	local v = {}
	for k, x in ipairs(xs) do
		v[k] = x
	end
	table.sort(v)
	if #v == 0 then
		return nil
	end
	return #v % 2 == 1 and v[(#v + 1) // 2] or (v[#v // 2] + v[#v // 2 + 1]) / 2
end

return M
