-- `make check-report`: reports of virtual runs rendered by a real browser.
--
--   batlab lua tests/report/check_report.lua BATLAB PNGBOX OUTDIR [SCREENSHOT.png]
--
-- Three reports: the stock cycle test (4 cells, warm-up and measurement
-- cycles), a procedure of our own (tests/report/custom-procedure.lua, a
-- cell name with <&" in it) and a comparison of two cycle tests. Each is
-- checked by xmllint (well-formed XML), then by headless chromium:
--
--   * a copy with a probe script (only in the copy) reports every plot's
--     box, errors (script errors, resources that failed, console.error)
--     and the page's height; chromium's own console lines count as errors;
--   * every plot the run's data calls for is there (worked out here from
--     the run's files, not from the report code);
--   * a screenshot of the copy with all but the data hidden (no frame,
--     grid, axes, labels, legend, shading) has at least MIN_PIXELS
--     non-white pixels inside every plot's data area (tools/pngbox.c);
--   * the report itself renders to PNG and prints to a PDF.
-- TAP output; exit 1 on any failure.
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "../lua/cli.lua")
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "../lua/tap.lua")
local csv = require "batlab.csv"
local cjson = require "cjson"

local BATLAB, PNGBOX, OUT, SHOT = arg[1], arg[2], arg[3], arg[4]
local HERE = arg[0]:match("^(.-)[^/]*$")
local MIN_PIXELS = 300
local WIDTH = 1000

local function sh(cmd)
	local ok, how, code = os.execute(cmd)
	return ok and 0 or (how == "exit" and code or 128 + code)
end

-- chromium(args, stderr_file) -> the shell command of one headless run.
local function chromium(args, stderr_file)
	return ("chromium --headless --no-sandbox --disable-gpu --hide-scrollbars "
		.. "--force-device-scale-factor=1 --host-resolver-rules='MAP * ~NOTFOUND' "
		.. "--enable-logging=stderr --v=0 %s 2>%s"):format(args, cli.quote(stderr_file))
end

-- Each chromium run spends most of its seconds waiting, not computing:
-- the runs of one stage go together, so the check stays near a minute.
local function together(cmds)
	local parts = {}
	for i, c in ipairs(cmds) do
		parts[i] = "( " .. c .. " ) &"
	end
	sh(table.concat(parts, " ") .. " wait")
end

-- Console lines chromium logged for the page (its own D-Bus and GPU chatter
-- is not the page's).
local function console_lines(file)
	local out = {}
	for line in (cli.read(file) or ""):gmatch("[^\n]+") do
		if line:find("CONSOLE", 1, true) then
			out[#out + 1] = line
		end
	end
	return out
end

local PROBE = [[
<script>
(function () {
  var errors = [];
  window.addEventListener("error", function (e) {
    var t = e.target || {};
    errors.push("error: " + (e.message || t.src || t.href || "a resource failed"));
  }, true);
  var ce = console.error;
  console.error = function () { errors.push("console.error: " + Array.prototype.join.call(arguments, " ")); };
  window.addEventListener("load", function () {
    var plots = [];
    document.querySelectorAll("svg.plot").forEach(function (s) {
      /* the data area: the inner svg's own x, y, width, height, scaled
         as the page scaled the plot */
      var d = s.querySelector("svg.data"), r = s.getBoundingClientRect();
      var k = r.width / s.viewBox.baseVal.width;
      plots.push({ id: s.id, title: s.getAttribute("aria-label"),
        series: s.querySelectorAll("g.series").length,
        x: Math.round(r.left + window.scrollX + d.x.baseVal.value * k),
        y: Math.round(r.top + window.scrollY + d.y.baseVal.value * k),
        w: Math.round(d.width.baseVal.value * k), h: Math.round(d.height.baseVal.value * k) });
    });
    document.documentElement.setAttribute("data-probe", JSON.stringify({
      errors: errors, height: document.documentElement.scrollHeight, plots: plots }));
  });
})();
</script>
<style>
svg.plot .grid, svg.plot .bands, svg.plot .frame, svg.plot .axis, svg.plot .legend,
svg.plot .plot-title { visibility: hidden; }
</style>
]]

-- The copy of a report with the probe in it, and the command dumping it.
local function probe_copy(report, base)
	local copy = base .. "-probe.html"
	local text = assert(cli.read(report))
	cli.write(copy, (text:gsub("<head>", function() return "<head>" .. PROBE end, 1)))
	return copy, chromium(("--window-size=%d,1000 --virtual-time-budget=3000 --dump-dom file://%s > %s"):format(WIDTH, cli.quote(copy),
		cli.quote(base .. "-dom.html")), base .. "-dom.err")
end

-- probe(base) -> the probe's findings { errors, height, plots } | nil, why
local function probe(base)
	local attr = (cli.read(base .. "-dom.html") or ""):match('data%-probe="([^"]*)"')
	if not attr then
		return nil, "no probe result in the dumped page"
	end
	attr = attr:gsub("&quot;", '"'):gsub("&lt;", "<"):gsub("&gt;", ">"):gsub("&#39;", "'"):gsub("&amp;", "&")
	local p = cjson.decode(attr)
	for _, line in ipairs(console_lines(base .. "-dom.err")) do
		p.errors[#p.errors + 1] = line
	end
	return p
end

-- What the run's files call for: plot titles (with how many of each).
local function has_value(path, column)
	local f = io.open(path)
	if not f then
		return false, 0
	end
	local head = csv.parse(f:read("l"))[1]
	local at
	for i, h in ipairs(head) do
		at = h == column and i or at
	end
	local found, rows = false, 0
	for line in f:lines() do
		rows = rows + 1
		local fields = csv.parse(line)[1] or {}
		found = found or (at and (fields[at] or "") ~= "")
	end
	f:close()
	return found, rows
end

local function expected_run(dir, want)
	local run = cjson.decode(cli.read(dir .. "/run.json"))
	local steps = csv.parse(cli.read(dir .. "/steps.csv") or "")
	local discharges = {}
	for r = 2, #steps do
		if steps[r][8] == "discharge" then
			discharges[steps[r][1]] = true
		end
	end
	local names = {}
	for _, c in ipairs(run.cells) do
		local path = dir .. "/" .. c.file
		local _, rows = has_value(path, "Voltage / V")
		local function add(title)
			want[title] = (want[title] or 0) + 1
		end
		if rows > 0 then
			add(c.name .. ": voltage and current")
		end
		if has_value(path, "Temperature / degC") then
			add(c.name .. ": temperature")
		end
		if has_value(path, "Impedance / Ohm") then
			add(c.name .. ": impedance")
		end
		if discharges[c.name] then
			add(c.name .. ": discharge curves")
			add(c.name .. ": capacity and coulombic efficiency per cycle")
		end
		names[#names + 1] = c.name
	end
	return names
end

local function expected(dirs, compare)
	local want, names = {}, {}
	for _, d in ipairs(dirs) do
		for _, n in ipairs(expected_run(d, want)) do
			names[n] = true
		end
	end
	if compare then -- the compare page has no per-cell sections
		want = {}
		want["Discharge capacity per cycle"] = 1
		want["Discharge curves (first solid, last dashed)"] = 1
		for n in pairs(names) do
			want[n .. ": voltage, run by run"] = 1
			want["Discharge capacity per cycle"] = want["Discharge capacity per cycle"] + 1
			want["Discharge curves (first solid, last dashed)"] = want["Discharge curves (first solid, last dashed)"] + 1
		end
	elseif #expected_run(dirs[1], {}) > 1 then
		want["Discharge capacity per cycle"] = 1
		want["Discharge curves (first solid, last dashed)"] = 1
	end
	return want
end

local function check_plots(name, p, want, base)
	local have = {}
	for _, pl in ipairs(p.plots) do
		have[pl.title] = (have[pl.title] or 0) + 1
	end
	for title, n in pairs(want) do
		t.ok((have[title] or 0) == n, ("%s: plot '%s' there (%d of %d)"):format(name, title, have[title] or 0, n))
	end
	local boxes = {}
	for i, pl in ipairs(p.plots) do
		t.ok(pl.series > 0 and pl.w > 300 and pl.h > 80, ("%s: %s has %d series in a %dx%d data area"):format(
			name, pl.id, pl.series, pl.w, pl.h))
		boxes[i] = cli.quote(("%s=%d,%d,%d,%d"):format(pl.id, pl.x, pl.y, pl.w, pl.h))
	end
	local code = sh(("%s --min %d %s %s > %s"):format(PNGBOX, MIN_PIXELS, cli.quote(base .. "-data.png"),
		table.concat(boxes, " "), cli.quote(base .. "-pixels.txt")))
	t.ok(code == 0, ("%s: every plot drew its data (>= %d non-white pixels in each data area; %s)"):format(
		name, MIN_PIXELS, base .. "-pixels.txt"))
end

-- The checks of one report that need no browser; the probe's command.
local function static_checks(c)
	c.base = OUT .. "/" .. c.name
	t.ok(sh("xmllint --noout " .. cli.quote(c.report)) == 0, c.name .. ": xmllint finds the page well-formed")
	local text = cli.read(c.report) or ""
	t.ok(not text:find("<script", 1, true) and not text:find("src=", 1, true) and not text:find("url(", 1, true)
		and not text:find("<link", 1, true), c.name .. ": no script, no external resource")
	local cmd
	c.copy, cmd = probe_copy(c.report, c.base)
	return cmd
end

-- The renders of one report after the probe: commands to run together.
local function render_commands(c, cmds)
	local p, err = probe(c.base)
	t.ok(p, c.name .. ": the probe ran in chromium " .. (err or ""))
	c.probe = p
	if not p then
		return
	end
	local size = ("--window-size=%d,%d"):format(WIDTH, p.height)
	cmds[#cmds + 1] = chromium(("%s --screenshot=%s file://%s"):format(size, cli.quote(c.base .. "-data.png"),
		cli.quote(c.copy)), c.base .. "-data.err")
	cmds[#cmds + 1] = chromium(("%s --screenshot=%s file://%s"):format(size, cli.quote(c.base .. ".png"),
		cli.quote(c.report)), c.base .. "-png.err")
	cmds[#cmds + 1] = chromium(("--no-pdf-header-footer --print-to-pdf=%s file://%s"):format(
		cli.quote(c.base .. ".pdf"), cli.quote(c.report)), c.base .. "-pdf.err")
end

local function verdicts(c)
	local p = c.probe
	if not p then
		return
	end
	t.is(#p.errors, 0, c.name .. ": no console or load error " .. table.concat(p.errors, "; "))
	check_plots(c.name, p, expected(c.dirs, c.compare), c.base)
	local png, pdf = c.base .. ".png", c.base .. ".pdf"
	t.ok(sh(("%s --min 5000 %s page=0,0,%d,%d > /dev/null"):format(PNGBOX, cli.quote(png), WIDTH, p.height)) == 0,
		c.name .. ": the report renders to PNG, " .. png)
	local head = (cli.read(pdf) or ""):sub(1, 5)
	t.ok(head == "%PDF-" and #cli.read(pdf) > 20000, c.name .. ": the report prints to PDF, " .. pdf)
end

local function run(args, out)
	local code, o, e = cli.batlab(args .. " --out " .. cli.quote(out))
	t.is(code, 0, ("`batlab %s` exits 0 %s"):format(args, e:match("[^\n]*") or ""))
	t.like(o, "report: ", "the run says where its report is")
	return out
end

local cyc = run("cycletest --sim --set numWarmupCycles=1 --set numMeasurementCycles=2 A1 B2 C3 D4",
	OUT .. "/run-cycle")
local cyc2 = run("cycletest --sim --set numMeasurementCycles=2 --set dischargeRate=1.0 A1 B2",
	OUT .. "/run-cycle-slow")
local custom = run(("run %s --sim --cell '0=<cell A&\"1\">' --cell 1=B2"):format(cli.quote(HERE .. "custom-procedure.lua")),
	OUT .. "/run-custom")
local compare = OUT .. "/compare.html"
local code = cli.batlab(("report --compare %s %s --out %s"):format(cli.quote(cyc), cli.quote(cyc2), cli.quote(compare)))
t.is(code, 0, "batlab report --compare exits 0")

local checks = {
	{ name = "cycle", report = cyc .. "/report.html", dirs = { cyc } },
	{ name = "custom", report = custom .. "/report.html", dirs = { custom } },
	{ name = "compare", report = compare, dirs = { cyc, cyc2 }, compare = true },
}
local cmds = {}
for _, c in ipairs(checks) do
	cmds[#cmds + 1] = static_checks(c)
end
together(cmds)
cmds = {}
for _, c in ipairs(checks) do
	render_commands(c, cmds)
end
if SHOT then
	-- for the docs: the top of the custom procedure's report, its first plots
	cmds[#cmds + 1] = chromium(("--window-size=%d,1500 --screenshot=%s file://%s"):format(WIDTH, cli.quote(SHOT),
		cli.quote(custom .. "/report.html")), OUT .. "/shot.err")
end
together(cmds)
for _, c in ipairs(checks) do
	verdicts(c)
end
if SHOT then
	t.ok(sh(("%s --min 5000 %s page=0,0,%d,1500 > /dev/null"):format(PNGBOX, cli.quote(SHOT), WIDTH)) == 0,
		"the screenshot for the docs: " .. SHOT)
end
t.done()
