-- batlab analyze RUN_DIR through the real program, on runs of the virtual
-- Batlab: per-cycle statistics agree with steps.csv and with the cell
-- (coulombic and energy efficiency, average voltages, CV time and charge,
-- throughput, equivalent full cycles); the dQ/dV peak of a C/20 discharge
-- and charge lies on the model's flattest OCV segment (shifted by the
-- resistive drop) within 10 mV; the resistance at every current step of a
-- DCIR run is the model's R0 + R1(1 - e^(-dt/R1C1)) within 5 %; bad
-- arguments exit 2.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local cjson = require "cjson"
local csv = require "batlab.csv"

local tmp = cli.tmpdir()
local _, out = cli.batlab("sim --describe")
local cellp = cjson.decode(out).devices[1].cells[1]
local R0, R1, TAU = cellp.r0_ohm, cellp.r1_ohm, cellp.r1_ohm * cellp.c1_farad

local function table_of(path)
	local rows = csv.parse(assert(cli.read(path), path))
	local head, res = rows[1], {}
	for i = 2, #rows do
		local r = {}
		for j, n in ipairs(head) do
			r[n] = tonumber(rows[i][j]) or rows[i][j]
		end
		res[#res + 1] = r
	end
	return res
end

local function run_and_analyze(script, sets, extra)
	local dir = tmp .. "/" .. script:gsub("[^%w]", "_")
	local code = cli.batlab(("run scripts/%s.lua --sim --quiet --no-report --out %s --cell 0=A1 %s"):format(script,
		dir, sets or ""))
	t.is(code, 0, script .. " ran")
	local c, o, e = cli.batlab(("analyze %s %s"):format(dir, extra or ""))
	t.is(c, 0, "analyze " .. script .. " " .. e)
	t.like(o, "^analysis: " .. dir:gsub("%p", "%%%0") .. "/analysis %(", "says where it wrote")
	return dir, cjson.decode(assert(cli.read(dir .. "/analysis/analysis.json"))).cells.A1
end

-- ---- per-cycle statistics ------------------------------------------------------------
local dir, a = run_and_analyze("cycle-life-rpt", "--set cycles=3 --set rpt_every=2")
local cyc = table_of(dir .. "/analysis/cycles.csv")
t.is(#cyc, 3, "a row per cycle")
local steps = table_of(dir .. "/steps.csv")
local chg, dis = 0, 0
for _, s in ipairs(steps) do
	if s.Cycle == 2 and s["Step Kind"] == "charge" then
		chg = chg + s["Charge / Ah"]
	elseif s.Cycle == 2 and s["Step Kind"] == "discharge" then
		dis = dis + s["Charge / Ah"]
	end
end
local c2 = cyc[2]
t.is(c2.cycle, 2, "in cycle order from cycle 1")
t.ok(math.abs(c2.chg_ah - chg) < 1e-5 and math.abs(c2.dis_ah - dis) < 1e-5, "cycle 2's Ah are its steps' sums")
t.ok(c2.ce > 0.98 and c2.ce <= 1.0, ("coulombic efficiency %.4f (cell: %.3f)"):format(c2.ce, cellp.coulombic_eff))
t.ok(c2.ee < c2.ce and c2.ee > 0.85, ("energy efficiency %.4f below it"):format(c2.ee))
t.ok(c2.dis_avg_v < c2.chg_avg_v, "discharge average voltage below the charge's")
t.ok(c2.cv_s > 300 and c2.cv_ah > 0.02 and c2.cv_ah < c2.chg_ah, ("CV %.0f s, %.3f Ah"):format(c2.cv_s, c2.cv_ah))
t.ok(c2.temp_rise > 1, ("temperature rise %.2f K"):format(c2.temp_rise))
t.ok(cyc[3].throughput_ah > cyc[2].throughput_ah and math.abs(cyc[3].throughput_ah - a.throughput_ah) < 1e-5,
	"throughput accumulates")
local most = math.max(cyc[1].dis_ah, cyc[2].dis_ah, cyc[3].dis_ah)
t.ok(math.abs(a.efc - (cyc[1].dis_ah + cyc[2].dis_ah + cyc[3].dis_ah) / most) < 1e-4, ("%.3f equivalent full cycles"):format(a.efc))

-- ---- dQ/dV ---------------------------------------------------------------------------
-- the model's flattest OCV segment between 10 and 90 % SoC
local flat, slope = nil, math.huge
for k = 2, #cellp.ocv do
	local p, q = cellp.ocv[k - 1], cellp.ocv[k]
	if p[1] >= 0.1 and q[1] <= 0.9 and (q[2] - p[2]) / (q[1] - p[1]) < slope then
		flat, slope = { p[2], q[2] }, (q[2] - p[2]) / (q[1] - p[1])
	end
end
dir, a = run_and_analyze("pocv", "", "--bin-mv 5 --smooth 5")
local ir = cellp.capacity_ah * 0.05 * (R0 + R1)
local seen = 0
for _, p in ipairs(a.dqdv_peaks) do
	local shift = p.kind == "discharge" and -ir or ir
	if p.name == "SLOW DISCHARGE" or p.name == "SLOW CHARGE" then
		seen = seen + 1
		t.ok(p.v >= flat[1] + shift - 0.010 and p.v <= flat[2] + shift + 0.010,
			("%s dQ/dV peak at %.4f V: the plateau %.3f-%.3f V %+.4f V"):format(p.name, p.v, flat[1], flat[2], shift))
	end
end
t.is(seen, 2, "a peak for each slow step")
local dq = table_of(dir .. "/analysis/dqdv.csv")
t.ok(#dq > 100 and dq[1]["dQ/dV / Ah/V"] ~= nil, #dq .. " dQ/dV points")
t.ok(#table_of(dir .. "/analysis/dvdq.csv") > 100, "and dV/dQ points")
local j = cjson.decode(cli.read(dir .. "/analysis/analysis.json"))
t.ok(j.params.bin_mv == 5 and j.params.smooth_bins == 5, "the smoothing parameters recorded")

-- ---- resistance at current steps -----------------------------------------------------
dir, a = run_and_analyze("dcir")
local res = table_of(dir .. "/analysis/resistance.csv")
local from_rest = 0
for _, r in ipairs(res) do
	if r["Current From / A"] == 0 and math.abs(r["Current To / A"]) > 1 then
		from_rest = from_rest + 1
		local dt = r["Interval / s"]
		local want = R0 + R1 * (1 - math.exp(-dt / TAU))
		t.ok(math.abs(r["Resistance / Ohm"] - want) < 0.05 * want, ("step from rest: %.5f ohm, model %.5f at %.2f s")
			:format(r["Resistance / Ohm"], want, dt))
	end
end
t.is(from_rest, 3, "the three pulses from rest found")

-- ---- bad arguments -------------------------------------------------------------------
local code, _, err = cli.batlab("analyze " .. tmp .. "/nothing")
t.is(code, 2, "not a run directory: exit 2")
t.like(err, "no summary.json", "saying why")
code, _, err = cli.batlab("analyze " .. dir .. " --smooth 4")
t.is(code, 2, "an even smoothing width: exit 2")
t.like(err, "odd", err)
code = cli.batlab("analyze")
t.is(code, 2, "no RUN_DIR: exit 2")

t.done()
