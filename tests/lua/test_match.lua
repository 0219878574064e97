-- Grading and pack matching: batlab.match finds the grouping of least cost
-- (capacity spread between series groups and within parallel groups,
-- group resistance spread) on small cases, checked here by an independent
-- brute force over every labelling of the cells; the heuristic for large
-- cases returns a valid grouping no worse than dealing out the sorted
-- cells; scripts/grade.lua bins by a rules file (a bad file names its line
-- and word); `batlab match RUN_DIR...` end to end on graded runs of the
-- virtual Batlab, its CSV and its errors (exit 2).
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local match = require "batlab.match"
local rules_mod = require "batlab.grade_rules"
local cjson = require "cjson"
local csv = require "batlab.csv"

-- A deterministic stream of numbers in [0, 1).
local seed = 12345
local function rnd()
	seed = (seed * 1103515245 + 12345) % 2147483648
	return seed / 2147483648
end

-- Every way to give each cell a label 0 (left out) .. s, s groups of p.
local function brute(cells, s, p)
	local best, label = math.huge, {}
	local function go(k, counts)
		if k > #cells then
			for g = 1, s do
				if counts[g] ~= p then
					return
				end
			end
			local groups = {}
			for g = 1, s do
				groups[g] = {}
			end
			for i, l in ipairs(label) do
				if l > 0 then
					table.insert(groups[l], cells[i])
				end
			end
			best = math.min(best, (match.cost(groups)))
			return
		end
		for l = 0, s do
			if l == 0 or counts[l] < p then
				label[k] = l
				if l > 0 then
					counts[l] = counts[l] + 1
				end
				go(k + 1, counts)
				if l > 0 then
					counts[l] = counts[l] - 1
				end
			end
		end
	end
	local counts = {}
	for g = 1, s do
		counts[g] = 0
	end
	go(1, counts)
	return best
end

local function random_cells(n, with_z)
	local cells = {}
	for k = 1, n do
		cells[k] = { name = "c" .. k, capacity_ah = 2.0 + 0.5 * rnd(), impedance_ohm = with_z and 0.04 + 0.03 * rnd() or nil }
	end
	return cells
end

for _, case in ipairs { { 4, 2, 2, false }, { 6, 3, 2, true }, { 7, 2, 3, true }, { 8, 2, 3, false }, { 8, 4, 2, true },
	{ 9, 3, 3, false } } do
	local n, s, p, z = table.unpack(case)
	local cells = random_cells(n, z)
	local groups, cost, how = match.group(cells, s, p)
	local want = brute(cells, s, p)
	t.is(how, "exact", ("%d cells into %dS%dP: an exact search"):format(n, s, p))
	t.ok(math.abs(cost - want) < 1e-9, ("the least cost %.6f (brute force %.6f)"):format(cost, want))
	local seen, k = {}, 0
	for _, g in ipairs(groups) do
		t.is(#g, p, "a group of " .. p)
		for _, c in ipairs(g) do
			k = k + (seen[c] and 0 or 1)
			seen[c] = true
		end
	end
	t.is(k, s * p, "every cell at most once")
end

-- a large case: the heuristic
local cells = random_cells(40, true)
local groups, cost, how = match.group(cells, 6, 5)
t.is(how, "heuristic", "40 cells into 6S5P: the heuristic")
local seen, k = {}, 0
for _, g in ipairs(groups) do
	for _, c in ipairs(g) do
		k = k + (seen[c] and 0 or 1)
		seen[c] = true
	end
end
t.is(k, 30, "30 distinct cells")
local sorted = { table.unpack(cells) }
table.sort(sorted, function(a, b) return a.capacity_ah < b.capacity_ah end)
local dealt = {}
for g = 1, 6 do
	dealt[g] = {}
	for j = 0, 4 do
		dealt[g][j + 1] = sorted[1 + g - 1 + 6 * j]
	end
end
t.ok(cost <= match.cost(dealt), ("no worse than dealing out the 30 smallest (%.4f <= %.4f)"):format(cost,
	match.cost(dealt)))

-- ---- grading rules --------------------------------------------------------------------
local r = rules_mod.parse("# bins\nA capacity_ah >= 2.4 and impedance_ohm <= 0.05\nB capacity_ah >= 2.2\n", "r.txt")
t.is(rules_mod.grade(r, { capacity_ah = 2.45, impedance_ohm = 0.045 }), "A", "the first rule that holds")
t.is(rules_mod.grade(r, { capacity_ah = 2.45, impedance_ohm = 0.06 }), "B", "the next when one condition fails")
t.is(rules_mod.grade(r, { capacity_ah = 2.1 }), "reject", "none: reject")
local ok, err = pcall(rules_mod.parse, "A capacity_ah >= 2.4\nB capacty_ah >= 2\n", "bins.txt")
t.ok(not ok and err:find("bins.txt:2: unknown key 'capacty_ah'", 1, true), tostring(err))
ok, err = pcall(rules_mod.parse, "A capacity_ah => 2.4\n", "bins.txt")
t.ok(not ok and err:find("bins.txt:1: unknown operator '=>'", 1, true), tostring(err))

-- ---- end to end ------------------------------------------------------------------------
local tmp = cli.tmpdir()
cli.write(tmp .. "/bins.txt", "A capacity_ah >= 2.35 and impedance_ohm <= 0.06\nB capacity_ah >= 2.2\n")
local layouts = {
	{ 2.50, 2.30, 2.42, 2.05 }, { 2.45, 2.38, 2.33, 2.48 },
}
local dirs = {}
for n, caps in ipairs(layouts) do
	local cl = {}
	for j, c in ipairs(caps) do
		cl[j] = ('{ "profile": "nmc18650", "capacity_ah": %.2f, "r0_ohm": %.3f }'):format(c, 0.03 + 0.01 * j)
	end
	cli.write(("%s/l%d.json"):format(tmp, n), ('{ "devices": [ { "serial": 1000, "cells": [ %s ] } ] }')
		:format(table.concat(cl, ", ")))
	dirs[n] = ("%s/run%d"):format(tmp, n)
	local code = cli.batlab(("run scripts/grade.lua --sim=%s/l%d.json --quiet --no-report --out %s --set rules=%s/bins.txt "
		.. "R%dA R%dB R%dC R%dD"):format(tmp, n, dirs[n], tmp, n, n, n, n))
	t.ok(code == 0 or code == 1, "graded run " .. n)
end
local s1 = cjson.decode(cli.read(dirs[1] .. "/summary.json"))
t.is(s1.cells[4].records.grade, "reject", "the 2.05 Ah cell is rejected by the rules")
t.is(s1.cells[1].records.grade, "A", "a 2.5 Ah cell with 40 mOhm is an A")

local code, out, e = cli.batlab(("match %s %s --series 2 --parallel 3 --out %s/pack.csv"):format(dirs[1], dirs[2], tmp))
t.is(code, 0, "match exits 0 " .. e)
t.like(out, "S1 +[%d.]+ Ah: ", "prints the groups")
t.like(out, "spread between series groups [%d.]+ Ah", "and the spreads")
local rows = csv.parse(cli.read(tmp .. "/pack.csv"))
t.is(#rows, 7, "the CSV: a header and six cells")
local pool = {}
for _, d in ipairs(dirs) do
	for _, c in ipairs(cjson.decode(cli.read(d .. "/summary.json")).cells) do
		if c.verdict == "pass" then
			pool[#pool + 1] = { name = c.name, capacity_ah = c.records.capacity_ah, impedance_ohm = c.records.impedance_ohm }
		end
	end
end
local by = {}
for _, c in ipairs(pool) do
	by[c.name] = c
end
local got = { {}, {} }
for i = 2, #rows do
	local c = by[rows[i][2]]
	t.ok(c ~= nil, rows[i][2] .. " is a passed cell")
	table.insert(got[tonumber(rows[i][1])], c)
end
t.ok(math.abs(match.cost(got) - brute(pool, 2, 3)) < 1e-6, "the written grouping is the brute-force optimum")
code, _, e = cli.batlab(("match %s --series 3 --parallel 2"):format(dirs[1]))
t.is(code, 2, "too few passed cells: exit 2")
t.like(e, "3 passed cells with a capacity, 6 needed for 3S2P", "saying how many")
code, _, e = cli.batlab(("match %s --series x --parallel 2"):format(dirs[1]))
t.is(code, 2, "a bad --series: exit 2")
cli.write(tmp .. "/bad.txt", "A capacity_ah >= 2.3\nB volts >= 3\n")
code, out, e = cli.batlab(("run scripts/grade.lua --sim --quiet --no-report --out %s/bad --set rules=%s/bad.txt A")
	:format(tmp, tmp))
t.ok(code == 2 and e:find("bad.txt:2: unknown key 'volts'", 1, true),
	"a bad rules file: exit 2 before the run, naming the line")

t.done()
