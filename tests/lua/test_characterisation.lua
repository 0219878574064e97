-- The characterisation scripts (scripts/dcir.lua, hppc.lua, gitt.lua,
-- pocv.lua, cycle-life-rpt.lua) through the real program on the virtual
-- Batlab, against the virtual cell's own parameters (`batlab sim
-- --describe`: R0, R1, C1, the OCV table, capacity, fade): DCIR at 1, 10
-- and 30 s within 5 % of R0 + R1(1 - e^(-t/R1C1)); HPPC resistance versus
-- SoC within 5 % of the model's (with its low-SoC factor); GITT OCV within
-- 10 mV and pOCV within 15 mV of the OCV table; the pOCV capacity within
-- 1 %; cycle-life's fade per Ah within 10 % of the model's, and its end of
-- life. Also what steps.csv says of the new steps (named condition ends).
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local cjson = require "cjson"
local csv = require "batlab.csv"

local tmp = cli.tmpdir()
local code, out = cli.batlab("sim --describe")
t.is(code, 0, "sim --describe")
local cellp = cjson.decode(out).devices[1].cells[1]
local R0, R1, TAU, CAP = cellp.r0_ohm, cellp.r1_ohm, cellp.r1_ohm * cellp.c1_farad, cellp.capacity_ah

-- The model's OCV at soc (linear in its table) and resistance factor at
-- low SoC (docs/simulator.md).
local function ocv(soc)
	local tb = cellp.ocv
	for k = 2, #tb do
		if soc <= tb[k][1] then
			return tb[k - 1][2] + (tb[k][2] - tb[k - 1][2]) * (soc - tb[k - 1][1]) / (tb[k][1] - tb[k - 1][1])
		end
	end
	return tb[#tb][2]
end
local function r_at(t_s, soc)
	return (R0 + R1 * (1 - math.exp(-t_s / TAU))) * (1 + 2 * math.exp(-soc / 0.08))
end

local function run(script, extra)
	local dir = tmp .. "/" .. script:gsub("[^%w]", "_")
	local c, o, e = cli.batlab(("run scripts/%s.lua --quiet --out %s %s"):format(script, dir, extra or "--sim --cell 0=A1"))
	t.is(c, 0, script .. " runs" .. (c == 0 and "" or (": " .. o .. e):gsub("\n", " ")))
	local s = cjson.decode(assert(cli.read(dir .. "/summary.json")))
	return s.cells[1], dir
end

local function step_rows(dir)
	local rows = csv.parse(assert(cli.read(dir .. "/steps.csv")))
	local head, res = rows[1], {}
	for i = 2, #rows do
		local r = {}
		for j, n in ipairs(head) do
			r[n] = rows[i][j]
		end
		res[#res + 1] = r
	end
	return res
end

local function within(got, want, rel, what)
	t.ok(got and math.abs(got - want) <= rel * want, ("%s: %.5f, model %.5f (within %g %%)"):format(what,
		got or -1, want, rel * 100))
end

-- ---- dcir ---------------------------------------------------------------------------
local c = run("dcir")
t.is(c.verdict, "pass", "dcir passes")
for _, ts in ipairs { 1, 10, 30 } do
	within(c.records["dcir_" .. ts .. "s_ohm"], r_at(ts, 0.5), 0.05, ("DCIR at %d s"):format(ts))
	t.ok(c.records["dcir_" .. ts .. "s_u_ohm"] < 0.002, "with its uncertainty")
end
within(c.records.dcir_iec_ohm, R0 + R1 * 0.05, 0.05, "IEC two-level (about R0)")

-- ---- hppc ---------------------------------------------------------------------------
c = run("hppc")
local n = 0
for k = 1, 10 do
	local p = c.records["hppc_" .. k]
	if p and p.soc >= 0.15 then
		n = n + 1
		within(p.r_dis_ohm, r_at(10, p.soc), 0.05, ("HPPC discharge R at SoC %.2f"):format(p.soc))
		if p.r_chg_ohm then
			within(p.r_chg_ohm, r_at(10, p.soc), 0.05, ("HPPC charge R at SoC %.2f"):format(p.soc))
			t.ok(p.p_chg_w > 0 and p.p_dis_w > 0, "available power both ways")
		end
	end
end
t.ok(n >= 8, n .. " SoC points from full to 20 %")

-- ---- gitt ---------------------------------------------------------------------------
local dir
c, dir = run("gitt")
n = 0
for _, p in ipairs(c.records.gitt) do
	if p.soc >= 0.05 then
		n = n + 1
		t.ok(math.abs(p.ocv_v - ocv(p.soc)) < 0.010, ("GITT OCV at SoC %.3f: %.4f V, model %.4f V"):format(p.soc,
			p.ocv_v, ocv(p.soc)))
	end
end
t.ok(n >= 25, n .. " GITT points")
local rows = step_rows(dir)
local relax, full
for _, r in ipairs(rows) do
	relax = relax or (r["Step Name"] == "RELAX 1" and r)
	full = full or (r["Step Name"] == "FULL" and r)
end
t.is(relax and relax["End Reason"], "relaxed", "steps.csv: a rest ended by its named dV/dt condition")
t.is(full and full["End Reason"], "current", "steps.csv: the one-step CCCV ended on its current")

-- ---- pocv ---------------------------------------------------------------------------
c = run("pocv")
within(c.records.pocv_discharge_ah, CAP, 0.01, "pOCV discharge capacity at C/20")
n = 0
for _, p in ipairs(c.records.pocv) do
	if p.soc >= 0.1 then
		n = n + 1
		t.ok(math.abs(p.ocv - ocv(p.soc)) < 0.015, ("pOCV at SoC %.2f: %.4f V, model %.4f V"):format(p.soc, p.ocv,
			ocv(p.soc)))
	end
end
t.is(n, 19, "pOCV table every 5 % from 10 %")

-- ---- cycle-life ---------------------------------------------------------------------
cli.write(tmp .. "/fade.json", [[{ "devices": [ { "serial": 1000,
  "cells": [ { "profile": "nmc18650", "soc": 0.5, "fade_per_ah": 0.01 }, null, null, null ] } ] }]])
c = run("cycle-life-rpt", "--sim=" .. tmp .. "/fade.json --cell 0=A1 --set rpt_every=2")
local rpt = c.records.rpt
t.ok(#rpt >= 3, #rpt .. " reference tests")
local a, b = rpt[2], rpt[#rpt]
within((a.capacity_ah - b.capacity_ah) / (b.throughput_ah - a.throughput_ah), 0.01 * CAP, 0.10,
	"capacity lost per Ah moved (fade_per_ah x capacity)")
t.ok(b.retention < 0.8 and rpt[#rpt - 1].retention >= 0.8, "ends at the first reference test below 80 %")
t.is(c.records.eol_cycle, b.cycle, "end of life recorded at that cycle")
within(rpt[1].dcir_ohm, r_at(10, 1), 0.05, "the reference DCIR at full")

t.done()
