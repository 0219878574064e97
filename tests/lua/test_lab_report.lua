-- `batlab report --db` and the run's own events in the database
-- (docs/database.md), against a real PostgreSQL of our own
-- (labservers.lua): a virtual run with --db, its report rendered from the
-- directory and from the database, compared (cells, the summary table's
-- numbers, every plot's data, the events); the run-level lines of
-- events.log in batlab.events, an interrupted run's too; the upgrade of a
-- version-1 database; bad input. Skipped, saying why, where PostgreSQL
-- cannot be started.
local dir = arg[0]:match("^(.-)[^/]*$")
local t = dofile(dir .. "tap.lua")
local cli = dofile(dir .. "cli.lua")
local lab = dofile(dir .. "labservers.lua")
local cjson = require "cjson"

local pg = lab.or_skip(lab.postgres())
local tmp = cli.tmpdir()
local URL = pg.url
local q = cli.quote
local query = function(sql) return pg:rows(sql) end

-- ---- db init: version 4, and a version-1 database brought to it ------------------

local code, out, err = cli.batlab("db init --db " .. q(URL))
t.is(code, 0, "db init: exit 0 " .. err)
t.like(out, "schema version 0 %-> 4", "db init: creates version 4")
-- what version 1 had: no run_json, no ordinal, a B-tree on samples.at, a
-- table of samples naming their run and cell (the statements of
-- migrations 2 to 4 undone), with two samples of a cell in it
assert(pg:psql("DROP VIEW batlab.samples; DROP INDEX batlab.cells_series; DROP TABLE batlab.sample_data;"
	.. " DROP FUNCTION batlab.series;"
	.. " CREATE TABLE batlab.samples (run_id text, cell text, seq bigint, at timestamptz,"
	.. " t_s double precision, step_time_s double precision, cycle integer, cycle_kind text,"
	.. " step integer, step_name text, mode text, voltage double precision, current double precision,"
	.. " temp_c double precision, charge_ah double precision, energy_wh double precision,"
	.. " vcc double precision, errors integer, PRIMARY KEY (run_id, cell, seq));"
	.. " INSERT INTO batlab.samples VALUES ('v1:run:1', 'Q7', 1, '2000-01-01', 0.5, 0.5, 0, 'other', 0, '',"
	.. " 'IDLE', 3.7601, 0, 25, 0, 0, 5, 0), ('v1:run:1', 'Q7', 2, '2000-01-01', 1.5, 1.5, 0, 'other', 0, '',"
	.. " 'IDLE', 3.7602, 0, 25, 0, 0, 5, 0);"
	.. " ALTER TABLE batlab.runs DROP COLUMN run_json; ALTER TABLE batlab.cells DROP COLUMN ordinal;"
	.. " DROP INDEX batlab.events_run_time;"
	.. " CREATE INDEX samples_at ON batlab.samples (at); DELETE FROM batlab.schema_version WHERE version >= 2"))
code, out = cli.batlab("db init --db " .. q(URL))
t.is(code, 0, "db init on a version-1 database: exit 0")
t.like(out, "schema version 1 %-> 4", "db init: version 1 -> 4")
t.is(query("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'batlab'"
	.. " AND column_name IN ('run_json', 'ordinal')")[1][1], "2", "version 2: runs.run_json, cells.ordinal")
t.is_deeply(query("SELECT indexdef LIKE '%USING brin (at)' FROM pg_indexes WHERE schemaname = 'batlab'"
	.. " AND indexname = 'sample_data_at'"), { { "t" } }, "version 4: sample_data.at indexed by BRIN")
t.is_deeply(query("SELECT run_id, cell, seq, t_s, voltage FROM batlab.samples ORDER BY seq"),
	{ { "v1:run:1", "Q7", "1", "0.5", "3.7601" }, { "v1:run:1", "Q7", "2", "1.5", "3.7602" } },
	"version 4: the samples there moved into batlab.sample_data, the view shows them as before")
t.is(query("SELECT series = batlab.series('v1:run:1', 'Q7') FROM batlab.sample_data LIMIT 1")[1][1], "t",
	"version 4: each keyed by its cell's number, batlab.series(run_id, cell)")
assert(pg:psql("DELETE FROM batlab.sample_data; DELETE FROM batlab.cells"))

-- ---- a run with --db, its report from the directory and from the database ----------

-- Two cycles, an impedance measured in each, so every kind of plot is drawn.
cli.write(tmp .. "/two.lua", [[
local steps = require "batlab.steps"
return {
  name = "two-cycles",
  run = function(cell)
    cell:limits{ vmax = 4.25, vmin = 2.8, imax = 4.0, tmax_c = 50 }
    for k = 1, 2 do
      cell:label{ cycle = k, cycle_kind = "measurement" }
      steps.charge(cell, { current = 2.0, until_v = 4.2, cv = { until_i = 0.3 }, impedance_every = 900 })
      steps.rest(cell, 60)
      steps.discharge(cell, { current = 2.0, until_v = 3.0, impedance_every = 900 })
    end
    return true, "two cycles"
  end,
}
]])
local r1 = tmp .. "/r1"
code, _, err = cli.batlab(("run %s --sim --cell 0=A1 --cell 1=B2 --cell 2=C3 --out %s --db %s --quiet")
	:format(q(tmp .. "/two.lua"), r1, q(URL)))
t.is(code, 0, "run --db: exit 0 " .. err)
local run_id = query("SELECT run_id FROM batlab.runs")[1][1]
t.like(run_id, ":r1:%d+$", "the run's id")

code, out, err = cli.batlab(("report --db %s %s --out %s/db.html"):format(q(URL), q(run_id), tmp))
t.is(code, 0, "report --db URL RUN_ID: exit 0 " .. err)
t.is(out, ("report: %s/db.html\n"):format(tmp), "report --db: says where")
local from_dir, from_db = cli.read(r1 .. "/report.html"), cli.read(tmp .. "/db.html") or ""

-- The parts of a page: the header's rows, the summary table, each
-- figure by its id (its data), the events.
local function parts(html)
	local p = { head = {}, figures = {}, fig_ids = {} }
	for th, td in html:match('<table class="meta">(.-)</table>'):gmatch("<th>(.-)</th><td>(.-)</td>") do
		p.head[th] = td
	end
	p.summary = html:match("<h2[^>]*>Summary</h2>%s*(<table.-</table>)")
	for fig in html:gmatch("<figure>.-</figure>") do
		local id = fig:match('id="([^"]+)"') or "?"
		p.figures[id] = fig
		p.fig_ids[#p.fig_ids + 1] = id
	end
	p.events = html:match('<pre class="events">(.-)</pre>')
	p.cell_lines = {}
	for line in html:gmatch("<p>([^<]-: %d+ samples, %d+ steps%.[^<]*)</p>") do
		p.cell_lines[#p.cell_lines + 1] = line
	end
	return p
end
local a, b = parts(from_dir), parts(from_db)
t.ok(a.summary and a.summary:find("A1", 1, true), "the directory's report has its summary table")
t.is(b.summary, a.summary, "from the database: the same summary table (cells, verdicts, Ah, Wh, Ω, cycles)")
local sum = cjson.decode(cli.read(r1 .. "/summary.json"))
for _, c in ipairs(sum.cells) do
	local cap, z = tonumber(c.capacity_ah) or 0, tonumber(c.impedance_ohm) or 0
	t.ok(cap > 2 and b.summary:find(("%.4f"):format(cap), 1, true),
		("from the database: %s's capacity %.4f Ah as summary.json"):format(c.name, cap))
	t.ok(z > 0 and b.summary:find(("%.5f"):format(z), 1, true),
		("from the database: %s's impedance %.5f ohm as summary.json"):format(c.name, z))
end
t.is_deeply(b.fig_ids, a.fig_ids, "from the database: the same plots, in the same order ("
	.. #a.fig_ids .. ")")
local want_ids = { "overlay-capacity", "overlay-curves", "cell1-vi", "cell1-temp", "cell1-cycles",
	"cell1-curves", "cell1-z" }
for _, id in ipairs(want_ids) do
	t.ok(a.figures[id] and b.figures[id], "both reports draw " .. id)
end
local same, differ = 0, {}
for id, fig in pairs(a.figures) do
	if b.figures[id] == fig then
		same = same + 1
	elseif not id:match("%-z$") then
		differ[#differ + 1] = id
	end
end
t.is(#differ, 0, "from the database: every plot but impedance drawn from the same numbers "
	.. table.concat(differ, " "))
t.is(same, #a.fig_ids - 3, "plots identical: all but the three cells' impedance (" .. same .. ")")
-- impedance: the database keeps one per step (its median)
t.ok(b.figures["cell1-z"] and b.figures["cell1-z"]:find("<path", 1, true), "from the database: impedance drawn")
local zsteps = query(("SELECT count(*) FROM batlab.steps WHERE run_id = '%s' AND cell = 'A1'"
	.. " AND impedance_ohm IS NOT NULL"):format(run_id))[1][1]
t.is(zsteps, "4", "batlab.steps: A1's impedances, one per charge and discharge")
t.like(b.head.Warnings, "impedance: one point per step", "from the database: says impedance is per step")
t.is(a.events, b.events, "from the database: the same events, line for line")
t.like(a.events or "", "started 3 cell%(s%)", "the events hold the run's own lines")
for _, k in ipairs({ "Procedure", "Devices", "Cells", "Start", "Duration", "Outcome", "Run directory" }) do
	t.is(b.head[k], a.head[k], "from the database: the header's " .. k)
end
t.like(b.head["Read from"] or "", "the database: run " .. run_id:gsub("%p", "%%%0"), "from the database: says so")
t.is(a.head["Read from"], nil, "from the directory: no 'Read from'")
t.is(#a.cell_lines, 3, "from the directory: a line per cell")
t.is_deeply(b.cell_lines, { ((a.cell_lines[1] or ""):gsub("^cells/A1%.csv", "batlab.samples")),
	((a.cell_lines[2] or ""):gsub("^cells/B2%.csv", "batlab.samples")),
	((a.cell_lines[3] or ""):gsub("^cells/C3%.csv", "batlab.samples")) },
	"from the database: each cell's sample and step counts")

-- RUN as the results directory's name; the URL from BATLAB_DB; the default file
code, out, err = cli.batlab(("report --db r1 --out %s/db2.html"):format(tmp), "BATLAB_DB=" .. q(URL))
t.is(code, 0, "report --db r1 (BATLAB_DB): exit 0 " .. err)
t.is(cli.read(tmp .. "/db2.html"), from_db, "report --db by the directory's name: the same page")
local ok
ok, out = lab.sh(("cd %s && %s report --db %s r1"):format(q(tmp), q(cli.abs_bin), q(URL)))
local default = "report-" .. run_id:gsub("[^%w._-]", "-") .. ".html"
t.is(out, "report: " .. default .. "\n", "report --db without --out: report-RUN_ID.html here")
t.ok(ok and cli.read(tmp .. "/" .. default) == from_db, "report --db without --out: the same page")

-- ---- the run's own events in batlab.events -------------------------------------

local function log_lines(path)
	local out = {}
	for line in (cli.read(path) or ""):gmatch("[^\n]+") do
		out[#out + 1] = line
	end
	return out
end
local function db_events(id)
	local out = {}
	for _, r in ipairs(query(("SELECT t_s, cell, message FROM batlab.events WHERE run_id = '%s' ORDER BY seq")
		:format(id))) do
		out[#out + 1] = { tonumber(r[1]), r[2] ~= "" and r[2] or nil, r[3] }
	end
	return out
end
local lines, evs = log_lines(r1 .. "/events.log"), db_events(run_id)
t.is(#evs, #lines, "batlab.events: every line of events.log (" .. #lines .. ")")
local bad
for i, line in ipairs(lines) do
	local tt, body = line:match("^%S+ +([%d.]+) s  (.*)$")
	local e = evs[i] or {}
	local text = e[2] and ("[" .. e[2] .. "] " .. e[3]) or e[3]
	if tonumber(tt) ~= e[1] or body ~= text then
		bad = bad or ("line %d: %s | database %s %s"):format(i, line, tostring(e[1]), tostring(text))
	end
end
t.ok(not bad, "batlab.events: each line's time, cell and text, in order " .. (bad or ""))
local runlevel = query(("SELECT message FROM batlab.events WHERE run_id = '%s' AND cell IS NULL ORDER BY seq")
	:format(run_id))
t.is(runlevel[1] and runlevel[1][1], "Batlab 1000 on sim0 connected", "run-level: the device connected")
t.ok(#runlevel >= 5, "run-level: connected, started, a verdict per cell (" .. #runlevel .. ")")
t.like(runlevel[#runlevel][1], "^verdict: C3 PASS", "run-level: the last, C3's verdict")

-- An interrupted run: the procedure holds (a FIFO) while the test sends
-- SIGINT, so the interruption lands at a known point.
local sync = tmp .. "/sync"
assert(os.execute(("mkdir %s && mkfifo %s/to-test %s/to-proc"):format(sync, sync, sync)))
cli.write(tmp .. "/hold.lua", [[
local steps = require "batlab.steps"
return {
  name = "hold",
  params = { sync = "" },
  run = function(cell, p)
    steps.rest(cell, 30)
    local f = assert(io.open(p.sync .. "/to-test", "w")); f:write("held\n"); f:close()
    local g = assert(io.open(p.sync .. "/to-proc", "r")); g:read("l"); g:close()
    steps.rest(cell, 3600)
    return true
  end,
}
]])
local r2 = tmp .. "/r2"
assert(os.execute(("(%s run %s --sim --cell 0=D4 --out %s --db %s --set sync=%s --quiet --no-report"
	.. " </dev/null >%s/out 2>%s/err & echo $! >%s/pid; wait $!; echo $? >%s/rc) &"):format(q(cli.abs_bin),
	q(tmp .. "/hold.lua"), r2, q(URL), sync, tmp, tmp, tmp, tmp)))
local _, heard = lab.sh("timeout 120 head -n 1 " .. sync .. "/to-test")
t.is(heard, "held\n", "interrupted run: the procedure holds")
local pid = tonumber(cli.read(tmp .. "/pid"))
t.ok(pid and os.execute("kill -INT " .. math.tointeger(pid)), "interrupted run: SIGINT sent")
lab.sh(("timeout 120 sh -c 'echo go > %s/to-proc'"):format(sync))
lab.sh(("timeout 120 sh -c 'while [ ! -s %s/rc ]; do sleep 0.1; done'"):format(tmp))
t.isnt(cli.read(tmp .. "/rc"), "0\n", "interrupted run: not exit 0")
local id2 = query("SELECT run_id FROM batlab.runs WHERE run_dir LIKE '%/r2'")[1][1]
t.is(query(("SELECT outcome FROM batlab.run_ends WHERE run_id = '%s'"):format(id2))[1][1], "interrupted",
	"interrupted run: batlab.run_ends says interrupted")
local said = query(("SELECT message FROM batlab.events WHERE run_id = '%s' AND cell IS NULL"
	.. " AND message LIKE 'interrupted:%%'"):format(id2))
t.is(#said, 1, "interrupted run: its interruption is in batlab.events, as a run-level line")
t.is(#db_events(id2), #log_lines(r2 .. "/events.log"), "interrupted run: every line of events.log")

-- ---- bad input ------------------------------------------------------------------

code, out, err = cli.batlab("report --db " .. q(URL) .. " nosuchhost:nosuchrun:1")
t.is(code, 2, "report --db, an unknown run: exit 2")
t.like(err, "no run 'nosuchhost:nosuchrun:1' in the database", "an unknown run: says which")
t.is(out, "", "an unknown run: no report")
code, _, err = cli.batlab("report --db postgresql://batlab@127.0.0.1:1/postgres " .. q(run_id))
t.is(code, 1, "report --db, no server there: exit 1")
t.like(err, "^batlab: report: cannot connect to the database", "no server: says so")
t.ok(not err:find("traceback", 1, true), "no server: no traceback")
code, _, err = cli.batlab("report --db 'postgresql://x@h/d?nosuchoption=1' r1")
t.is(code, 2, "report --db with a URL libpq cannot read: exit 2")
t.like(err, "the database URL: ", "a bad URL: libpq's reason")
code, _, err = cli.batlab("report --db r1", "BATLAB_DB= BATLAB_CONFIG=" .. tmp .. "/none.conf")
t.is(code, 2, "report --db without a database: exit 2")
t.like(err, "none.conf", "report --db without a database: names the configuration file")
code, _, err = cli.batlab("report --db " .. q(URL) .. " --compare r1 r2")
t.is(code, 2, "report --db --compare: exit 2")
code, _, err = cli.batlab("report --db " .. q(URL))
t.is(code, 2, "report --db without a run: exit 2")
t.like(err, "which run", "report --db without a run: asks which")
-- two runs with one directory name: the name is not enough
local r3 = tmp .. "/again/r1"
assert(os.execute("mkdir " .. tmp .. "/again"))
code = cli.batlab(("run %s --sim --cell 0=E5 --out %s --db %s --quiet --no-report"):format(q(tmp .. "/two.lua"),
	r3, q(URL)))
t.is(code, 0, "a second run in a directory named r1")
code, _, err = cli.batlab("report --db " .. q(URL) .. " r1")
t.is(code, 2, "report --db by a name two runs have: exit 2")
t.like(err, "'r1' names 2 runs: .*give the run id", "a name two runs have: lists them")

pg:destroy()
os.execute("rm -rf " .. q(tmp))
t.done()
