-- batlab.match - `batlab match RUN_DIR... --series S --parallel P [--out
-- FILE]`: graded cells from finished runs grouped into a pack of S groups
-- in series, each of P cells in parallel (docs/characterisation.md,
-- "Pack matching"). The grouping minimises
--
--   cost = (largest - smallest group capacity) / mean group capacity
--        + 0.5 x (largest capacity range within a group) / mean cell capacity
--        + 0.5 x (largest - smallest group resistance) / mean group resistance
--
-- (a group's capacity is the sum of its cells', its resistance that of
-- its cells in parallel; the last term only when every cell has an
-- impedance). Exact (every grouping) when that is few enough; otherwise
-- the best window of the cells sorted by capacity, dealt out in a snake
-- order and improved by swaps between groups.

local cjson = require "cjson"
local csv = require "batlab.csv"
local fsutil = require "batlab.fsutil"

local M = {}

local USAGE = [[
usage: batlab match RUN_DIR... --series S --parallel P [--out FILE]

Group the passed cells of finished runs (their capacity_ah and impedance)
into S series groups of P parallel cells, with the least spread of
capacity (and impedance) within and between groups. Prints the groups and
the spreads and writes them as CSV (default match.csv).
]]

M.EXACT_LIMIT = 200000

local function fail(msg)
	io.stderr:write("batlab: match: ", msg, "\n")
	return 2
end

-- cost(groups) with groups = { {cell, ...}, ... }, cells { capacity_ah,
-- impedance_ohm }.
function M.cost(groups)
	local sums, rs, ncell, capsum = {}, {}, 0, 0
	local within, use_r = 0, true
	for g, cells in ipairs(groups) do
		local s, lo, hi, cond = 0, math.huge, -math.huge, 0
		for _, c in ipairs(cells) do
			s = s + c.capacity_ah
			lo, hi = math.min(lo, c.capacity_ah), math.max(hi, c.capacity_ah)
			if c.impedance_ohm and c.impedance_ohm > 0 then
				cond = cond + 1 / c.impedance_ohm
			else
				use_r = false
			end
			ncell, capsum = ncell + 1, capsum + c.capacity_ah
		end
		sums[g], rs[g] = s, cond > 0 and 1 / cond or nil
		within = math.max(within, hi - lo)
	end
	local function spread(xs)
		local lo, hi, tot = math.huge, -math.huge, 0
		for _, x in ipairs(xs) do
			lo, hi, tot = math.min(lo, x), math.max(hi, x), tot + x
		end
		return hi - lo, tot / #xs
	end
	local ds, ms = spread(sums)
	local c = ds / ms + 0.5 * within / (capsum / ncell)
	local dr, mr = 0, nil
	if use_r then
		dr, mr = spread(rs)
		c = c + 0.5 * dr / mr
	end
	return c, { series_spread_ah = ds, within_spread_ah = within, resistance_spread_ohm = use_r and dr or nil }
end

-- How many groupings an exact search would visit (subsets times
-- partitions), as a float.
local function count(n, s, p)
	local function choose(a, b)
		local r = 1
		for k = 1, b do
			r = r * (a - b + k) / k
		end
		return r
	end
	local total, left = choose(n, s * p), s * p
	for _ = 1, s do
		-- the first remaining cell is in this group: choose the rest
		total = total * choose(left - 1, p - 1)
		left = left - p
	end
	return total
end

-- each_combo(arr, k, fn): fn(chosen, rest) for every k-subset of arr
-- (in order), rest the others in order.
local function each_combo(arr, k, fn)
	local chosen, rest = {}, {}
	local function go(i)
		if #chosen == k then
			local r = { table.unpack(rest) }
			for j = i, #arr do
				r[#r + 1] = arr[j]
			end
			fn({ table.unpack(chosen) }, r)
			return
		end
		if #arr - i + 1 < k - #chosen then
			return
		end
		chosen[#chosen + 1] = arr[i]
		go(i + 1)
		chosen[#chosen] = nil
		rest[#rest + 1] = arr[i]
		go(i + 1)
		rest[#rest] = nil
	end
	go(1)
end

-- Every grouping: every subset of s x p cells, every partition of it into
-- groups of p (each group holding the first cell left, so no grouping is
-- visited twice in another order).
local function exact(cells, s, p)
	local best, best_groups = math.huge, nil
	local groups = {}
	local function partition(list)
		if #list == 0 then
			local c = M.cost(groups)
			if c < best - 1e-12 then
				best, best_groups = c, {}
				for k, g in ipairs(groups) do
					best_groups[k] = { table.unpack(g) }
				end
			end
			return
		end
		local first = list[1]
		each_combo({ table.unpack(list, 2) }, p - 1, function(others, rest)
			table.insert(others, 1, first)
			groups[#groups + 1] = others
			partition(rest)
			groups[#groups] = nil
		end)
	end
	each_combo(cells, s * p, function(chosen)
		partition(chosen)
	end)
	return best_groups, best
end
M._exact = exact

-- Sorted by capacity: the window of s x p cells with the smallest range,
-- dealt out snake-wise, then improved by swapping cells between groups.
local function heuristic(cells, s, p)
	local sorted = { table.unpack(cells) }
	table.sort(sorted, function(a, b) return a.capacity_ah < b.capacity_ah end)
	local n, w = s * p, 1
	for k = 1, #sorted - n + 1 do
		if sorted[k + n - 1].capacity_ah - sorted[k].capacity_ah
			< sorted[w + n - 1].capacity_ah - sorted[w].capacity_ah then
			w = k
		end
	end
	local groups = {}
	for g = 1, s do
		groups[g] = {}
	end
	for k = 0, n - 1 do
		local round, pos = k // s, k % s
		local g = round % 2 == 0 and pos + 1 or s - pos
		table.insert(groups[g], sorted[w + k])
	end
	local best = M.cost(groups)
	local improved = true
	while improved do
		improved = false
		for a = 1, s do
			for b = a + 1, s do
				for i = 1, p do
					for j = 1, p do
						groups[a][i], groups[b][j] = groups[b][j], groups[a][i]
						local c = M.cost(groups)
						if c < best - 1e-12 then
							best, improved = c, true
						else
							groups[a][i], groups[b][j] = groups[b][j], groups[a][i]
						end
					end
				end
			end
		end
	end
	return groups, best
end

-- group(cells, s, p) -> groups, cost, how ("exact" or "heuristic").
function M.group(cells, s, p)
	if count(#cells, s, p) <= M.EXACT_LIMIT then
		local g, c = exact(cells, s, p)
		return g, c, "exact"
	end
	local g, c = heuristic(cells, s, p)
	return g, c, "heuristic"
end

-- The passed cells of a run directory with a capacity.
local function cells_of(dir, out)
	local text = fsutil.read_file(dir .. "/summary.json")
	if not text then
		return nil, dir .. ": no summary.json (not a finished run directory)"
	end
	local ok, sum = pcall(cjson.decode, text)
	if not ok or type(sum) ~= "table" or type(sum.cells) ~= "table" then
		return nil, dir .. "/summary.json: not a run summary"
	end
	for _, c in ipairs(sum.cells) do
		local rec = type(c.records) == "table" and c.records or {}
		local cap = tonumber(rec.capacity_ah) or tonumber(c.capacity_ah)
		local z = tonumber(rec.impedance_ohm) or tonumber(c.impedance_ohm)
		if c.verdict == "pass" and cap and rec.grade ~= "reject" then
			out[#out + 1] = { name = c.name, run = dir, capacity_ah = cap, impedance_ohm = z }
		end
	end
	return true
end

local function args_of(argv)
	local o = { dirs = {} }
	local k = 1
	while k <= #argv do
		local a = argv[k]
		if a == "-h" or a == "--help" then
			o.help = true
		elseif a == "--series" or a == "--parallel" then
			local v = tonumber(argv[k + 1])
			if not v or v < 1 or v % 1 ~= 0 then
				return nil, ("%s needs a whole number >= 1, got %s"):format(a, tostring(argv[k + 1]))
			end
			o[a:sub(3)] = v
			k = k + 1
		elseif a == "--out" then
			o.out = argv[k + 1]
			if not o.out then
				return nil, "--out needs a file"
			end
			k = k + 1
		elseif a:sub(1, 1) == "-" then
			return nil, ("unknown option '%s' (see 'batlab match --help')"):format(a)
		else
			o.dirs[#o.dirs + 1] = a
		end
		k = k + 1
	end
	return o
end

local function report(groups, cost, how, o)
	local _, spreads = M.cost(groups)
	local lines = { csv.line { "Series Group", "Cell", "Run", "Capacity / Ah", "Impedance / Ohm", "Group Capacity / Ah" } }
	for g, cells in ipairs(groups) do
		local sum, names = 0, {}
		for _, c in ipairs(cells) do
			sum = sum + c.capacity_ah
			names[#names + 1] = ("%s (%.3f Ah%s)"):format(c.name, c.capacity_ah,
				c.impedance_ohm and (", %.1f mOhm"):format(c.impedance_ohm * 1000) or "")
		end
		for _, c in ipairs(cells) do
			lines[#lines + 1] = csv.line { csv.num(g, "%d"), c.name, c.run, csv.num(c.capacity_ah, "%.4f"),
				c.impedance_ohm and csv.num(c.impedance_ohm, "%.5f") or "", csv.num(sum, "%.4f") }
		end
		io.stdout:write(("S%-3d %.3f Ah: %s\n"):format(g, sum, table.concat(names, ", ")))
	end
	io.stdout:write(("spread between series groups %.4f Ah, within parallel groups %.4f Ah%s; cost %.5f (%s)\n")
		:format(spreads.series_spread_ah, spreads.within_spread_ah, spreads.resistance_spread_ohm
			and (", group resistance %.2f mOhm"):format(spreads.resistance_spread_ohm * 1000) or "", cost, how))
	local ok, err = fsutil.write_atomic(o.out or "match.csv", table.concat(lines))
	if not ok then
		return fail(tostring(err))
	end
	io.stdout:write(("match: %s\n"):format(o.out or "match.csv"))
	return 0
end

-- main(argv) -> exit status.
function M.main(argv)
	local o, err = args_of(argv)
	if not o then
		return fail(err)
	end
	if o.help then
		io.stdout:write(USAGE)
		return 0
	end
	if #o.dirs == 0 or not o.series or not o.parallel then
		io.stderr:write(USAGE)
		return 2
	end
	local cells = {}
	for _, d in ipairs(o.dirs) do
		local ok, cerr = cells_of(d, cells)
		if not ok then
			return fail(cerr)
		end
	end
	if #cells < o.series * o.parallel then
		return fail(("%d passed cells with a capacity, %d needed for %dS%dP"):format(#cells, o.series * o.parallel,
			o.series, o.parallel))
	end
	local groups, cost, how = M.group(cells, o.series, o.parallel)
	return report(groups, cost, how, o)
end

M.USAGE = USAGE
return M
