-- batlab.report - `batlab report`: a run directory (or several) as one
-- self-contained HTML page with plots (docs/results.md "The report").
--
--   local report = require "batlab.report"
--   local path, err = report.write_run("batlab-runs/x-20240101-120000")   -- its report.html
--   local path, err = report.write_compare({ dir1, dir2 }, "compare.html")
--   local path, err = report.write_db(url, run_id, out)   -- from the lab's database
--   local code = report.main(argv)   -- the command line
--
-- The pieces: load (reading the run; dbload from the database), downsample, svg (the plotting, for
-- any command), figures (which plots), sections (the text around them),
-- html (the page). Nothing here writes to a run directory except the
-- report file itself; the same run gives the same bytes.

local figures = require "batlab.report.figures"
local html = require "batlab.report.html"
local load = require "batlab.report.load"
local sections = require "batlab.report.sections"

local M = {}

M.EXIT_OK, M.EXIT_FAILED, M.EXIT_USAGE = 0, 1, 2

M.USAGE = [[
usage: batlab report RUN_DIR [--out FILE]
       batlab report --compare RUN_DIR RUN_DIR... [--out FILE]
       batlab report --db [URL] RUN [--out FILE]

Write a run's results as one HTML page with plots (voltage, current,
temperature, capacity and coulombic efficiency per cycle, discharge
curves, impedance; overlays of the cells), the summary table and the
events log. The file needs nothing else: no network, no other files.
Every run writes one at its end (RUN_DIR/report.html) unless told not
to (see 'batlab run --help').

Options:
  --out FILE     where to write (default RUN_DIR/report.html; with
                 --compare, report-compare.html in the current directory)
  --compare      the runs side by side: the same cells on shared axes
  --db [URL]     read the run from the lab's PostgreSQL database, from
                 any host (docs/database.md): RUN is its run id ('batlab
                 runs' lists them) or its results directory's name. The
                 URL (postgresql://... or key=value) is optional: else
                 $BATLAB_DB, else the lab configuration file. Written to
                 --out, default report-RUN_ID.html here
  -h, --help     this text
]]

local function basename(dir)
	return (dir:gsub("/+$", ""):match("([^/]+)$") or dir)
end

-- The page, replaced atomically (a reader sees the old one or the new).
local function write_file(path, text)
	local ok, err = require("batlab.fsutil").write_atomic(path, text)
	if not ok then
		return nil, err
	end
	return path
end

-- The overlays of several cells: capacity per cycle, discharge curves.
local function overlays(entries, prefix)
	local out = {}
	for _, f in ipairs({ { figures.overlay_capacity, "capacity" }, { figures.overlay_curves, "curves" } }) do
		local s = f[1](entries, prefix .. "-" .. f[2])
		if s then
			out[#out + 1] = html.figure(s)
		end
	end
	return table.concat(out, "\n")
end

-- page_run(run) -> the HTML text of one run's report.
function M.page_run(run)
	local title = ("batlab report: %s"):format(basename(run.dir))
	local parts = { html.h(1, title), html.h(2, "Run"), sections.header(run), sections.settings(run),
		html.h(2, "Summary"), sections.summary(run) }
	if #run.cells > 1 then
		local entries = {}
		for _, c in ipairs(run.cells) do
			entries[#entries + 1] = { name = c.name, cell = c }
		end
		parts[#parts + 1] = html.h(2, "All cells")
		parts[#parts + 1] = overlays(entries, "overlay")
	end
	parts[#parts + 1] = html.h(2, "Cells")
	for i, c in ipairs(sections.sorted(run.cells)) do
		parts[#parts + 1] = sections.cell(c, i)
	end
	parts[#parts + 1] = html.h(2, "Events")
	parts[#parts + 1] = sections.events(run)
	return html.page(title, parts)
end

-- Runs labelled by their directory names (numbered when two are alike).
local function labels(runs)
	local seen, out = {}, {}
	for i, r in ipairs(runs) do
		local l = basename(r.dir)
		out[i] = seen[l] and ("%s (%d)"):format(l, i) or l
		seen[l] = true
	end
	return out
end

-- The same cell names across runs: { name, entries = { {name, cell} } }.
local function by_cell_name(runs, label)
	local order, groups = {}, {}
	for i, r in ipairs(runs) do
		for _, c in ipairs(r.cells) do
			if not groups[c.name] then
				groups[c.name] = {}
				order[#order + 1] = c.name
			end
			table.insert(groups[c.name], { name = label[i], cell = c })
		end
	end
	local out = {}
	for _, name in ipairs(order) do
		out[#out + 1] = { name = name, entries = groups[name] }
	end
	return out
end

-- page_compare(runs) -> the HTML text comparing runs.
function M.page_compare(runs)
	local label = labels(runs)
	local title = "batlab comparison: " .. table.concat(label, " vs ")
	local parts = { html.h(1, title), html.h(2, "Runs") }
	local all, rows = {}, {}
	for i, r in ipairs(runs) do
		parts[#parts + 1] = html.h(3, label[i])
		parts[#parts + 1] = sections.header(r)
		for _, c in ipairs(r.cells) do
			all[#all + 1] = { name = label[i] .. ": " .. c.name, cell = c }
		end
		for _, row in ipairs(sections.summary_rows(r.cells, label[i])) do
			rows[#rows + 1] = row
		end
	end
	local head = { "Run" }
	for _, h in ipairs(sections.SUMMARY_HEAD) do
		head[#head + 1] = h
	end
	parts[#parts + 1] = html.h(2, "Summary")
	parts[#parts + 1] = html.table(head, rows, { num = sections.summary_formats(1) })
	parts[#parts + 1] = html.h(2, "Every cell of every run")
	parts[#parts + 1] = overlays(all, "compare-all")
	parts[#parts + 1] = html.h(2, "Cell by cell")
	for i, g in ipairs(by_cell_name(runs, label)) do
		parts[#parts + 1] = html.h(3, "Cell " .. g.name)
		local v = figures.overlay_voltage(g.entries, ("compare%d-v"):format(i), g.name .. ": voltage, run by run")
		parts[#parts + 1] = v and html.figure(v) or ""
		parts[#parts + 1] = overlays(g.entries, ("compare%d"):format(i))
	end
	return html.page(title, parts)
end

-- write_run(dir [, out]) -> path | nil, message
function M.write_run(dir, out)
	local run, err = load.run(dir)
	if not run then
		return nil, err
	end
	return write_file(out or (dir .. "/report.html"), M.page_run(run))
end

-- write_compare(dirs, out) -> path | nil, message
function M.write_compare(dirs, out)
	local runs = {}
	for _, d in ipairs(dirs) do
		local run, err = load.run(d)
		if not run then
			return nil, err
		end
		runs[#runs + 1] = run
	end
	return write_file(out or "report-compare.html", M.page_compare(runs))
end

-- write_db(url, id [, out]) -> path | nil, message, exit code
function M.write_db(url, id, out)
	local run, err, code = require("batlab.report.dbload").run(url, id)
	if not run then
		return nil, err, code == "usage" and M.EXIT_USAGE or M.EXIT_FAILED
	end
	out = out or ("report-%s.html"):format((run.run_id:gsub("[^%w._-]", "-")))
	local path, werr = write_file(out, M.page_run(run))
	return path, werr, M.EXIT_USAGE
end

-- What follows --db is its URL when it looks like one (a run id or a
-- directory's name never does).
local function is_url(a)
	return a ~= nil and (a:find("^postgres%a*://") ~= nil or a:find("=", 1, true) ~= nil)
end

-- parse(argv) -> { dirs, out, compare, db, help } | nil, message
function M.parse(argv)
	local o, i = { dirs = {} }, 1
	while i <= #argv do
		local a = argv[i]
		local key, v = a:match("^(%-%-[%w-]+)=(.*)$")
		key = key or a
		if key == "-h" or key == "--help" then
			o.help = true
		elseif key == "--compare" then
			o.compare = true
		elseif key == "--db" then
			o.db = v or true
			if not v and is_url(argv[i + 1]) then
				i = i + 1
				o.db = argv[i]
			end
		elseif key == "--out" then
			if not v then
				i = i + 1
				v = argv[i]
			end
			if not v or v == "" then
				return nil, "--out needs a file name"
			end
			o.out = v
		elseif a:sub(1, 1) == "-" and a ~= "-" then
			return nil, ("unknown option '%s' (see 'batlab report --help')"):format(a)
		else
			o.dirs[#o.dirs + 1] = a
		end
		i = i + 1
	end
	if o.help then
		return o
	end
	if o.db and (o.compare or #o.dirs ~= 1) then
		return nil, o.compare and "--db reads one run (--compare reads run directories)"
			or "--db: which run? give one run id ('batlab runs' lists them)"
	elseif #o.dirs == 0 then
		return nil, "which run? give a run directory (batlab-runs/NAME-DATE)"
	elseif o.compare and #o.dirs < 2 then
		return nil, "--compare needs two run directories or more"
	elseif not o.compare and #o.dirs > 1 then
		return nil, "one run directory at a time (or --compare to put several side by side)"
	end
	return o
end

-- main(argv) -> exit code; messages on stderr, the report's path on stdout.
function M.main(argv)
	local o, err = M.parse(argv)
	if not o then
		io.stderr:write("batlab: report: ", err, "\n")
		return M.EXIT_USAGE
	end
	if o.help then
		io.stdout:write(M.USAGE)
		return M.EXIT_OK
	end
	local path, code
	if o.db then
		local url, uerr = require("batlab.labcli").url(o.db ~= true and o.db or nil)
		if not url then
			io.stderr:write("batlab: report: ", uerr, "\n")
			return M.EXIT_USAGE
		end
		path, err, code = M.write_db(url, o.dirs[1], o.out)
	elseif o.compare then
		path, err = M.write_compare(o.dirs, o.out)
	else
		path, err = M.write_run(o.dirs[1], o.out)
	end
	if not path then
		io.stderr:write("batlab: report: ", err, "\n")
		return code or M.EXIT_USAGE
	end
	io.stdout:write(("report: %s\n"):format(path))
	return M.EXIT_OK
end

return M
