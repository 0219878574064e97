-- batlab report without a browser (make check-report renders it in one):
-- the page a virtual run writes at its end and `batlab report` writes, its
-- structure (header, summary with failed cells first, plots per cell,
-- overlays, events), user text escaped, the downsampling, a 500-cycle
-- run's size, --compare, and the errors for what is not a run.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local ds = require "batlab.report.downsample"
local svg = require "batlab.report.svg"

local tmp = cli.tmpdir()
local q = cli.quote

local function count(text, pat)
	local n = 0
	for _ in text:gmatch(pat) do
		n = n + 1
	end
	return n
end

-- ---- a run writes its report ------------------------------------------------
local run1 = tmp .. "/run1"
local code, out, err = cli.batlab(("run capacity --sim --out %s --cell '0=<b>&\"x' --cell 1=B2"):format(q(run1)))
t.is(code, 0, "a capacity run exits 0 " .. err)
t.like(out, "report: " .. run1:gsub("%p", "%%%0") .. "/report.html", "the run prints where its report is")
local page = cli.read(run1 .. "/report.html") or ""
t.ok(#page > 50000, ("report.html written (%d bytes)"):format(#page))
t.like(page, "^<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\"", "an XHTML page")
t.ok(not page:find("<script", 1, true) and not page:find("src=", 1, true) and not page:find("href=", 1, true)
	and not page:find("url(", 1, true) and not page:find("@import", 1, true), "no script, nothing loaded from elsewhere")
t.like(page, "@media print", "a print style sheet")
t.like(page, "@page { size: A4", "A4 pages")
t.like(page, "break%-inside: avoid", "plots not cut across pages")
-- the header
for _, want in ipairs({ "<th>Procedure</th><td>capacity</td>", "<th>Start</th><td>2000%-01%-01T00:00:00.000Z</td>",
	"<th>Outcome</th><td>completed</td>", "serial 1000 on sim0, firmware 7", "<th>Duration</th><td>%d+:%d%d:%d%d" }) do
	t.like(page, want, "header: " .. want)
end
-- user text escaped, never markup
t.ok(not page:find("<b>&", 1, true), "the cell name <b>&\"x is not markup")
t.ok(count(page, "&lt;b&gt;&amp;&quot;x") >= 5, "the cell name is escaped wherever it appears")
-- plots: per cell, overlays; each series with a <title>
for _, id in ipairs({ "cell1%-vi", "cell1%-temp", "cell1%-cycles", "cell1%-curves", "cell2%-vi",
	"overlay%-capacity", "overlay%-curves" }) do
	t.like(page, '<svg xmlns="http://www.w3.org/2000/svg" class="plot" id="' .. id .. '"', "plot " .. id)
end
t.ok(not page:find('id="cell1%-z"'), "no impedance plot for a run without impedance measurements")
t.ok(count(page, '<g class="series"[^>]*><title>[^<]+</title>') >= 10, "every series has a <title> tooltip")
for _, label in ipairs({ "Voltage / V", "Current / A", "Test time / min", "Temperature / °C", "Discharged / Ah",
	"Discharge capacity / Ah" }) do
	t.like(page, ">" .. label .. "<", "an axis labelled " .. label)
end
t.like(page, 'class="band%-label">DISCHARGE<', "steps shaded and labelled")
t.like(page, "<pre class=\"events\">[^<]*started 2 cell%(s%)", "the events log")
-- every drawn series is cut to what a plot shows
local most = 0
for n in page:gmatch('data%-points="(%d+)"') do
	most = math.max(most, tonumber(n))
end
t.ok(most > 100 and most <= 2000, ("no series of more than 2000 points (%d)"):format(most))

-- --no-report
local run2 = tmp .. "/run2"
code, out = cli.batlab(("run capacity --sim --no-report --out %s --set discharge_a=1.0 --cell 0=F1 --cell 1=P2"):format(q(run2)))
t.is(code, 0, "--no-report: the run exits 0")
t.ok(not cli.read(run2 .. "/report.html") and not out:find("report:"), "--no-report: no report.html")

-- ---- batlab report ----------------------------------------------------------------
-- failed cells first: a run whose summary says B2 failed
local sum = cli.read(run1 .. "/summary.json")
cli.write(run1 .. "/summary.json", (sum:gsub('"name": "B2",(.-)"verdict": "pass"', '"name": "B2",%1"verdict": "fail"')))
code, out = cli.batlab(("report %s --out %s"):format(q(run1), q(tmp .. "/again.html")))
t.is(code, 0, "batlab report RUN_DIR --out FILE exits 0")
t.is(out, "report: " .. tmp .. "/again.html\n", "and says where it wrote")
local again = cli.read(tmp .. "/again.html") or ""
local table_at = again:find("<h2>Summary</h2>", 1, true) or 1
local fail_at, pass_at = again:find("<td>B2</td>", table_at, true), again:find("<td>&lt;b&gt;", table_at, true)
t.ok(fail_at and pass_at and fail_at < pass_at, "the failed cell comes first in the summary")
t.like(again, 'verdict%-fail">FAIL<', "its verdict marked")
t.like(again, '<section class="cell" id="cell1">\n<h3 class="cell%-head">Cell B2', "and its section first")

-- the same run gives the same bytes
cli.batlab(("report %s --out %s"):format(q(run1), q(tmp .. "/again2.html")))
t.is(cli.read(tmp .. "/again2.html"), again, "deterministic: the same run, the same page")

-- --compare
code, out = cli.batlab(("report --compare %s %s --out %s"):format(q(run1), q(run2), q(tmp .. "/cmp.html")))
t.is(code, 0, "report --compare exits 0")
local cmp = cli.read(tmp .. "/cmp.html") or ""
t.like(cmp, 'id="compare%-all%-capacity"', "compare: capacity of every cell of every run on one axis")
t.like(cmp, 'id="compare%-all%-curves"', "compare: discharge curves on one axis")
t.like(cmp, 'data%-name="run1: B2"', "compare: series named run: cell")
t.like(cmp, 'data%-name="run2: F1"', "compare: the second run's cells")
t.like(cmp, "<th>Run</th>", "compare: one summary table with the run")

-- ---- errors: exit 2 naming what is wrong --------------------------------------------
local function fails(args, pattern, what)
	local c, o, e = cli.batlab("report " .. args)
	t.is(c, 2, what .. ": exit 2")
	t.like(e, pattern, what .. ": " .. e:gsub("\n", ""))
	t.is(o, "", what .. ": nothing on stdout")
end
fails("", "which run%?", "no directory")
fails(q(tmp .. "/nothere"), "nothere: no such directory", "a missing directory")
fails(q(tmp), "run%.json: missing %(not a batlab run directory%?%)", "a directory that is not a run")
fails("--compare " .. q(run1), "%-%-compare needs two run directories", "--compare with one run")
fails(q(run1) .. " " .. q(run2), "one run directory at a time", "two runs without --compare")
fails("--bogus " .. q(run1), "unknown option '%-%-bogus'", "an unknown option")
local bad = tmp .. "/bad"
assert(os.execute("mkdir -p " .. q(bad .. "/cells")))
cli.write(bad .. "/run.json", "{ not json")
fails(q(bad), "bad/run%.json: not valid JSON", "a run.json that is not JSON")
cli.write(bad .. "/run.json", '{"format": "batlab-run", "format_version": 1, "cells": [{"name": "A1", "file": "cells/A1.csv"}]}')
fails(q(bad), "cells/A1%.csv: missing %(listed in run%.json for cell 'A1'%)", "a cell's time series missing")
-- a run cut short: no summary.json, a last row half written: still a report, with notes
cli.write(bad .. "/cells/A1.csv", "Test Time / s,Voltage / V,Current / A\n0.0,3.7,0.0\n1.0,3.8,1.0\n2.0,3.9,1.0\n3.0,3.")
code, out = cli.batlab("report " .. q(bad))
t.is(code, 0, "a run cut short still gets a report")
local cut = cli.read(bad .. "/report.html") or ""
t.like(cut, "summary%.json: missing %(the run did not finish%?%)", "which says summary.json is missing")
t.like(cut, "not closed %(the run did not finish", "and that the run was not closed")
t.like(cut, 'id="cell1%-vi"', "and draws what there is")

-- ---- the pieces ---------------------------------------------------------------------
-- downsampling: bounded, keeps the ends and the extremes
local xs, ys = {}, {}
for i = 1, 200000 do
	xs[i], ys[i] = i, math.sin(i / 5000)
end
ys[123457] = 9 -- a spike
local r = ds.reducer(1000)
for i = 1, #xs do
	r:add(xs[i], ys[i])
end
local rx, ry = r:points()
t.ok(#rx <= 2000 and #rx >= 500, ("the reducer keeps at most 2 x cap points (%d)"):format(#rx))
local lx, ly = ds.lttb(rx, ry, 300)
t.is(#lx, 300, "lttb gives the points asked for")
t.ok(lx[1] == 1 and lx[#lx] == 200000, "lttb keeps the first and the last point")
local spike = false
for i = 1, #ly do
	spike = spike or ly[i] == 9
end
t.ok(spike, "the spike survives both stages")
local sorted = true
for i = 2, #lx do
	sorted = sorted and lx[i] > lx[i - 1]
end
t.ok(sorted, "points stay in order")
t.is(#ds.lttb({ 1, 2 }, { 3, 4 }, 300), 2, "a short series comes back as it is")

-- svg: escaping, ticks
t.is(svg.escape('<a b="c">&\'\1'), "&lt;a b=&quot;c&quot;&gt;&amp;&#39;\239\191\189", "escape: markup and control characters")
t.is(svg.escape("caf\233"), "café", "escape: Latin-1 bytes become UTF-8")
local ticks, step = svg.ticks(0, 172, 6)
for i, v in ipairs(ticks) do
	ticks[i] = svg.tick_label(v, step)
end
t.is(table.concat(ticks, " "), "0 50 100 150 200", "ticks at round numbers")
ticks, step = svg.ticks(2.71, 4.18, 6)
for i, v in ipairs(ticks) do
	ticks[i] = svg.tick_label(v, step)
end
t.is(table.concat(ticks, " "), "2.50 2.75 3.00 3.25 3.50 3.75 4.00 4.25", "ticks of a voltage axis")
t.is(svg.tick_label(0.30000000000000004, 0.1), "0.3", "tick labels without noise")

-- a 500-cycle run: a page under 10 MB, whatever the samples
local big = tmp .. "/big"
assert(os.execute("mkdir -p " .. q(big .. "/cells")))
cli.write(big .. "/run.json", '{"format": "batlab-run", "format_version": 1, "start": "2000-01-01T00:00:00.000Z",'
	.. '"cells": [{"name": "A1", "file": "cells/A1.csv"}, {"name": "B2", "file": "cells/B2.csv"}]}')
local steps = { "Cell,Serial,Channel,Cycle,Cycle Kind,Step,Step Name,Step Kind,Start / s,Duration / s,End Reason,Charge / Ah" }
local cycles = {}
for _, cell in ipairs({ "A1", "B2" }) do
	local f = assert(io.open(big .. "/cells/" .. cell .. ".csv", "w"))
	f:write("Test Time / s,Cycle,Step,Step Name,Voltage / V,Current / A,Temperature / degC,Charge / Ah,Impedance / Ohm\n")
	local tt, cy = 0, {}
	for c = 1, 500 do
		for k, kind in ipairs({ "charge", "discharge" }) do
			local step = 2 * (c - 1) + k
			steps[#steps + 1] = ("%s,1,0,%d,measurement,%d,%s,%s,%d,400,voltage,%.3f"):format(cell, c, step,
				kind:upper(), kind, tt, 2.2 - c * 0.001)
			for s = 0, 399, 4 do -- a row every 4 s: 200 rows a cycle, 100000 in all
				f:write(("%d,%d,%d,%s,%.4f,%.1f,25.0,%.4f,%s\n"):format(tt + s, c, step, kind:upper(),
					3.6 + (kind == "charge" and s or 400 - s) / 1000, kind == "charge" and 2 or -2, s / 400 * 2.2,
					s == 200 and "0.045" or ""))
			end
			tt = tt + 400
		end
		cy[c] = ('{"cycle": %d, "kind": "measurement", "charge_ah": 2.2, "discharge_ah": %.4f, "coulombic_efficiency": 0.99}')
			:format(c, 2.2 - c * 0.001)
	end
	f:close()
	cycles[#cycles + 1] = ('{"name": "%s", "verdict": "pass", "cycles": [%s]}'):format(cell, table.concat(cy, ","))
end
cli.write(big .. "/steps.csv", table.concat(steps, "\n") .. "\n")
cli.write(big .. "/summary.json", '{"format": "batlab-summary", "cells": [' .. table.concat(cycles, ",") .. "]}")
code = cli.batlab("report " .. q(big))
local bigpage = cli.read(big .. "/report.html") or ""
t.is(code, 0, "a 500-cycle run's report")
t.ok(#bigpage > 100000 and #bigpage < 10e6, ("is under 10 MB (%.2f MB)"):format(#bigpage / 1e6))
t.ok(count(bigpage, 'data%-points="500"') >= 2, "capacity per cycle: all 500 cycles")
t.like(bigpage, 'id="cell1%-z"', "impedance over time drawn")

os.execute("rm -rf " .. q(tmp))
t.done()
