-- batlab.report.downsample - fewer points to draw, the same picture.
--
-- A 500-cycle run has millions of samples per cell; a plot a few hundred
-- pixels wide shows a few thousand. Two stages, both only for drawing (the
-- CSV files are never touched):
--
--   * a reducer that reads samples one at a time in bounded memory: it
--     keeps, per bucket of consecutive samples, the lowest and the highest
--     point, and doubles the bucket width whenever it holds `cap` buckets,
--     so spikes and dips survive whatever the length of the run;
--   * largest-triangle-three-buckets (Steinarsson, 2013) from there to the
--     number of points the plot gets: per bucket, the point that makes the
--     largest triangle with the point kept before it and the mean of the
--     next bucket, which keeps the shape of the curve.
--
--   local ds = require "batlab.report.downsample"
--   local r = ds.reducer(20000)
--   for each sample: r:add(t, v)
--   local xs, ys = ds.lttb(r:points(), 2000)

local M = {}

local Reducer = {}
Reducer.__index = Reducer

-- reducer(cap) -> a reducer keeping at most 2 * cap points.
function M.reducer(cap)
	return setmetatable({ cap = cap or 20000, width = 1, n = 0,
		-- finished buckets: lowest (lt, lv) and highest (ht, hv) point
		lt = {}, lv = {}, ht = {}, hv = {}, nb = 0,
		-- the bucket being filled
		count = 0 }, Reducer)
end

-- Two neighbouring buckets become one: half as many, twice as wide.
function Reducer:merge()
	local lt, lv, ht, hv = self.lt, self.lv, self.ht, self.hv
	local j = 0
	for i = 1, self.nb, 2 do
		j = j + 1
		local k = i + 1
		if k <= self.nb then
			if lv[k] < lv[i] then
				lt[j], lv[j] = lt[k], lv[k]
			else
				lt[j], lv[j] = lt[i], lv[i]
			end
			if hv[k] > hv[i] then
				ht[j], hv[j] = ht[k], hv[k]
			else
				ht[j], hv[j] = ht[i], hv[i]
			end
		else
			lt[j], lv[j], ht[j], hv[j] = lt[i], lv[i], ht[i], hv[i]
		end
	end
	for i = j + 1, self.nb do
		lt[i], lv[i], ht[i], hv[i] = nil, nil, nil, nil
	end
	self.nb = j
	self.width = self.width * 2
end

function Reducer:close_bucket()
	local nb = self.nb + 1
	self.nb = nb
	self.lt[nb], self.lv[nb], self.ht[nb], self.hv[nb] = self.clt, self.clv, self.cht, self.chv
	self.count = 0
	if nb >= self.cap then
		self:merge()
	end
end

-- add(t, v): one sample, in increasing t. A nil or NaN v is skipped.
function Reducer:add(t, v)
	if v == nil or v ~= v then
		return
	end
	self.n = self.n + 1
	if self.count == 0 then
		self.clt, self.clv, self.cht, self.chv = t, v, t, v
	elseif v < self.clv then
		self.clt, self.clv = t, v
	elseif v > self.chv then
		self.cht, self.chv = t, v
	end
	self.count = self.count + 1
	if self.count >= self.width then
		self:close_bucket()
	end
end

-- points() -> xs, ys: what the reducer kept, in order of t.
function Reducer:points()
	if self.count > 0 then
		self:close_bucket()
	end
	local xs, ys = {}, {}
	for i = 1, self.nb do
		local a, b = self.lt[i], self.ht[i]
		if a == b then
			xs[#xs + 1], ys[#ys + 1] = a, self.lv[i]
		elseif a < b then
			xs[#xs + 1], ys[#ys + 1] = a, self.lv[i]
			xs[#xs + 1], ys[#ys + 1] = b, self.hv[i]
		else
			xs[#xs + 1], ys[#ys + 1] = b, self.hv[i]
			xs[#xs + 1], ys[#ys + 1] = a, self.lv[i]
		end
	end
	return xs, ys
end

-- lttb(xs, ys, n) -> xs, ys with at most n points (n >= 3): the first and
-- the last point, and per bucket in between the one of the largest
-- triangle. Fewer points than n come back as they are.
function M.lttb(xs, ys, n)
	local len = #xs
	if len <= n or n < 3 then
		return xs, ys
	end
	local ox, oy = { xs[1] }, { ys[1] }
	local every = (len - 2) / (n - 2)
	local a = 1
	for i = 0, n - 3 do
		-- the mean of the next bucket (the last point for the last bucket)
		local nstart = math.floor((i + 1) * every) + 2
		local nend = math.min(math.floor((i + 2) * every) + 1, len)
		if nstart > len then
			nstart = len
		end
		local mx, my, cnt = 0, 0, 0
		for j = nstart, nend do
			mx, my, cnt = mx + xs[j], my + ys[j], cnt + 1
		end
		if cnt == 0 then
			mx, my = xs[len], ys[len]
		else
			mx, my = mx / cnt, my / cnt
		end
		-- the point of this bucket making the largest triangle
		local from, to = math.floor(i * every) + 2, math.floor((i + 1) * every) + 1
		local ax, ay = xs[a], ys[a]
		local best, pick = -1, from
		for j = from, to do
			local area = math.abs((ax - mx) * (ys[j] - ay) - (ax - xs[j]) * (my - ay))
			if area > best then
				best, pick = area, j
			end
		end
		ox[#ox + 1], oy[#oy + 1] = xs[pick], ys[pick]
		a = pick
	end
	ox[#ox + 1], oy[#oy + 1] = xs[len], ys[len]
	return ox, oy
end

-- series(xs, ys, n) -> xs, ys: at most n points of a series already in
-- memory (the reducer first when it is long, then lttb).
function M.series(xs, ys, n)
	if #xs > 8 * n then
		local r = M.reducer(4 * n)
		for i = 1, #xs do
			r:add(xs[i], ys[i])
		end
		xs, ys = r:points()
	end
	return M.lttb(xs, ys, n)
end

return M
