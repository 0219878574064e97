-- Results to PostgreSQL (docs/database.md), against a real server of our
-- own (labservers.lua): `batlab db init`, virtual runs with --db whose
-- every sample, step, event and summary must be in the database exactly
-- as in the files, a server stopped and started again mid-run, a server
-- that is not there at all (then `batlab db push`), and `batlab runs`.
-- Skipped, saying why, where PostgreSQL cannot be started.
local dir = arg[0]:match("^(.-)[^/]*$")
local t = dofile(dir .. "tap.lua")
local cli = dofile(dir .. "cli.lua")
local lab = dofile(dir .. "labservers.lua")
local csv = require "batlab.csv"
local batlab = require "batlab"

local pg = lab.or_skip(lab.postgres())
local tmp = cli.tmpdir()
local URL = pg.url
local q = cli.quote
local query = function(sql) return pg:rows(sql) end

local function csv_rows(path)
	local rows = csv.parse(cli.read(path) or "")
	table.remove(rows, 1) -- the header
	if rows[#rows] and #rows[#rows] <= 1 then
		rows[#rows] = nil
	end
	return rows
end

-- A short procedure: a rest, a charge, a discharge, in one cycle; with
-- `sync` set it stops between steps until the test says go (FIFOs), so
-- the test can stop and start the server at known points of the run.
cli.write(tmp .. "/short.lua", [[
local steps = require "batlab.steps"
local function hold(p, what)
  if p.sync == "" then return end
  local f = assert(io.open(p.sync .. "/to-test", "w")); f:write(what, "\n"); f:close()
  local g = assert(io.open(p.sync .. "/to-proc", "r")); g:read("l"); g:close()
end
return {
  name = "short",
  params = { sync = "" },
  run = function(cell, p)
    cell:label{ cycle = 1, cycle_kind = "cycle" }
    steps.rest(cell, 120)
    hold(p, "stop")
    steps.charge(cell, { current = 1.0, max_time = 1800 })
    hold(p, "start")
    steps.discharge(cell, { current = 1.0, max_time = 900 })
    return true, "done"
  end,
}
]])

-- ---- db init ----------------------------------------------------------------

local code, out, err = cli.batlab("db init --db " .. q(URL))
t.is(code, 0, "db init: exit 0 " .. err)
t.like(out, "schema version 0 %-> 4", "db init: creates version 4")
code, out = cli.batlab("db init", "BATLAB_DB=" .. q(URL))
t.is(code, 0, "db init again (BATLAB_DB): exit 0")
t.like(out, "at version 4 already", "db init again: nothing to do")
t.is_deeply(query("SELECT version FROM batlab.schema_version ORDER BY version"),
	{ { "1" }, { "2" }, { "3" }, { "4" } }, "schema_version holds 1 to 4")

-- ---- a run with --db: every row as in the files ------------------------------------

local function check_cell(run_dir, run_id, cell, label, min_rows)
	local file = csv_rows(run_dir .. "/cells/" .. cell .. ".csv")
	local db = query(("SELECT t_s, step_time_s, cycle, cycle_kind, step, step_name, mode, voltage, current,"
		.. " temp_c, charge_ah, energy_wh, vcc, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
		.. " FROM batlab.samples WHERE run_id = '%s' AND cell = '%s' ORDER BY seq"):format(run_id, cell))
	t.ok(#file >= (min_rows or 100), label .. ": the CSV has rows (" .. #file .. ")")
	t.is(#db, #file, label .. ": as many samples in the database as rows in the CSV")
	local cols = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 15 } -- CSV columns, in the query's order
	local bad
	for i = 1, math.min(#db, #file) do
		for k, c in ipairs(cols) do
			local a, b = db[i][k], file[i][c]
			if a ~= b and tonumber(a) ~= tonumber(b) then
				bad = bad or ("row %d column %d: database %s, CSV %s"):format(i, c, a, b)
			end
		end
	end
	t.ok(not bad, label .. ": every sample equal to its CSV row " .. (bad or ""))
end

local r1 = tmp .. "/r1"
code, out, err = cli.batlab(("run %s --sim --cell 0=A1 --cell 1=B2 --out %s --db %s --quiet --no-report")
	:format(q(tmp .. "/short.lua"), r1, q(URL)))
t.is(code, 0, "run --db: exit 0 " .. err)
t.is(err, "", "run --db: nothing on stderr")
local runs = query("SELECT run_id, host, procedure, virtual_time, run_dir FROM batlab.runs")
t.is(#runs, 1, "one run in batlab.runs")
local run_id = runs[1][1]
t.is(runs[1][3], "short", "the run's procedure")
t.is(runs[1][4], "t", "the run is virtual")
t.like(runs[1][5], "/r1$", "the run's directory")
t.is_deeply(query("SELECT cell, serial, channel FROM batlab.cells ORDER BY cell"),
	{ { "A1", "1000", "0" }, { "B2", "1000", "1" } }, "batlab.cells: both cells, serial, channel")
check_cell(r1, run_id, "A1", "A1")
check_cell(r1, run_id, "B2", "B2")
local steps = csv_rows(r1 .. "/steps.csv")
local dbsteps = query("SELECT cell, step, step_name, charge_ah, end_reason FROM batlab.steps ORDER BY cell, step")
t.is(#dbsteps, #steps, "batlab.steps: as many as steps.csv (" .. #steps .. ")")
local want = {}
for _, s in ipairs(steps) do
	want[#want + 1] = { s[1], s[6], s[7], tonumber(s[13]), s[11] }
end
table.sort(want, function(a, b) return a[1] < b[1] or (a[1] == b[1] and tonumber(a[2]) < tonumber(b[2])) end)
for _, r in ipairs(dbsteps) do
	r[4] = tonumber(r[4])
end
t.is_deeply(dbsteps, want, "batlab.steps: cell, step, name, Ah, end reason as steps.csv")
local cyc = query("SELECT cell, cycle, round(charge_ah::numeric, 6), round(discharge_ah::numeric, 6)"
	.. " FROM batlab.cycles ORDER BY cell")
t.is(#cyc, 2, "batlab.cycles: one cycle per cell")
t.ok(tonumber(cyc[1][3]) > 0.4 and tonumber(cyc[1][4]) > 0.2, "batlab.cycles: charge and discharge Ah")
local sums = query("SELECT cell, verdict, summary->>'name' FROM batlab.summaries ORDER BY cell")
t.is_deeply(sums, { { "A1", "pass", "A1" }, { "B2", "pass", "B2" } }, "batlab.summaries: verdicts, JSON")
local ev = query("SELECT count(*), count(*) FILTER (WHERE message LIKE 'DISCHARGE ended:%') FROM batlab.events")
t.ok(tonumber(ev[1][1]) >= 6, "batlab.events: the cells' events (" .. ev[1][1] .. ")")
t.is(ev[1][2], "2", "batlab.events: each cell's discharge ended")
t.is(query("SELECT outcome FROM batlab.run_ends")[1][1], "completed", "batlab.run_ends: completed")
local spool = cli.read(r1 .. "/db-spool.sql")
t.is(tonumber(cli.read(r1 .. "/db-spool.sent")), #spool, "db-spool.sent: the whole spool acknowledged")

-- ---- in real time: rows gathered a little before each batch --------------------

cli.write(tmp .. "/rest.lua", [[
local steps = require "batlab.steps"
return { name = "rest", run = function(cell) steps.rest(cell, 3); return true, "done" end }
]])
local rt = tmp .. "/rt"
code, out, err = cli.batlab(("run %s --sim --speed 1 --cell 0=E5 --cell 1=F6 --out %s --db %s --quiet --no-report")
	:format(q(tmp .. "/rest.lua"), rt, q(URL)))
t.is(code, 0, "real time --db: exit 0 " .. err)
local rt_id = query("SELECT run_id FROM batlab.runs WHERE run_dir LIKE '%/rt'")[1][1]
check_cell(rt, rt_id, "E5", "real time E5", 3)
check_cell(rt, rt_id, "F6", "real time F6", 3)

-- ---- the server stops mid-run and comes back -------------------------------------

-- checksum: rows, and sums of the values (weighted by the row's place,
-- so an order or a value changed shows) as integers of the CSV's last digit
local function checksum_csv(path)
	local n, sv, si, sq = 0, 0, 0, 0
	for i, r in ipairs(csv_rows(path)) do
		n = n + 1
		sv = sv + i * math.tointeger(math.floor(tonumber(r[8]) * 1e4 + 0.5))
		si = si + i * math.tointeger(math.floor(tonumber(r[9]) * 1e4 + 0.5))
		sq = sq + i * math.tointeger(math.floor(tonumber(r[11]) * 1e6 + 0.5))
	end
	return ("%d %d %d %d"):format(n, sv, si, sq)
end

local function checksum_db(run, cell)
	local r = query(("SELECT count(*), sum(seq * round(voltage * 1e4)), sum(seq * round(current * 1e4)),"
		.. " sum(seq * round(charge_ah * 1e6)) FROM batlab.samples WHERE run_id = '%s' AND cell = '%s'")
		:format(run, cell))[1]
	return ("%s %s %s %s"):format(r[1], r[2], r[3], r[4])
end

local sync = tmp .. "/sync"
assert(os.execute(("mkdir %s && mkfifo %s/to-test %s/to-proc"):format(sync, sync, sync)))
local r2 = tmp .. "/r2"
local bg = ("(%s run %s --sim --cell 0=C3 --out %s --db %s --set sync=%s --quiet --no-report"
	.. " </dev/null >%s/out 2>%s/err; echo $? >%s/rc) &"):format(q(cli.bin), q(tmp .. "/short.lua"), r2,
	q(URL), sync, tmp, tmp, tmp)
assert(os.execute(bg))
local function heard()
	local _, line = lab.sh("timeout 120 head -n 1 " .. sync .. "/to-test")
	return line:match("^(%S*)")
end
local function go()
	return lab.sh(("timeout 120 sh -c 'echo go > %s/to-proc'"):format(sync))
end
t.is(heard(), "stop", "mid-run: the procedure waits after its first step")
t.ok(pg:stop(), "mid-run: the server stopped")
go()
t.is(heard(), "start", "mid-run: the charge ran with the server away")
t.ok(pg:start(), "mid-run: the server started again")
go()
lab.sh(("timeout 120 sh -c 'while [ ! -s %s/rc ]; do sleep 0.1; done'"):format(tmp))
t.is(cli.read(tmp .. "/rc"), "0\n", "mid-run: the run completed (exit 0)")
t.like(cli.read(tmp .. "/err"), "database.*rows wait in [^\n]*/r2/db%-spool.sql", "mid-run: the lost connection was said")
local id2 = query("SELECT run_id FROM batlab.runs WHERE run_dir LIKE '%/r2'")[1][1]
t.is(checksum_db(id2, "C3"), checksum_csv(r2 .. "/cells/C3.csv"),
	"mid-run: sample count and checksum equal to the CSV's")
t.is(query(("SELECT count(*) FROM batlab.steps WHERE run_id = '%s'"):format(id2))[1][1], "3",
	"mid-run: all three steps")

-- ---- no server at the start: the spool, then db push ------------------------------

local r3 = tmp .. "/r3"
code, out, err = cli.batlab(("run %s --sim --cell 0=D4 --out %s --quiet --no-report"):format(q(tmp .. "/short.lua"), r3),
	"BATLAB_DB=postgresql://batlab@127.0.0.1:1/postgres BATLAB_DB_WAIT=1")
t.is(code, 0, "no server: the run still passes")
t.like(err, "not sent .*batlab db push " .. r3:gsub("%p", "%%%0"), "no server: says how to send the rows later")
t.is(query("SELECT count(*) FROM batlab.runs WHERE run_dir LIKE '%/r3'")[1][1], "0", "no server: nothing arrived")
code, out, err = cli.batlab(("db push %s --db %s"):format(r3, q(URL)))
t.is(code, 0, "db push: exit 0 " .. err)
t.like(out, "db push: %d+ batch", "db push: says what it sent")
local id3 = query("SELECT run_id FROM batlab.runs WHERE run_dir LIKE '%/r3'")[1][1]
t.is(checksum_db(id3, "D4"), checksum_csv(r3 .. "/cells/D4.csv"), "db push: samples equal to the CSV's")
-- pushing again, even from the start of the spool, doubles nothing
os.remove(r3 .. "/db-spool.sent")
code, out = cli.batlab(("db push %s --db %s"):format(r3, q(URL)))
t.is(code, 0, "db push again from the start: exit 0")
t.is(checksum_db(id3, "D4"), checksum_csv(r3 .. "/cells/D4.csv"), "db push again: no row twice")
t.is(query(("SELECT count(*) FROM batlab.events WHERE run_id = '%s'"):format(id3))[1][1],
	tostring(#query(("SELECT 1 FROM batlab.events WHERE run_id = '%s'"):format(id3))), "events once")

-- ---- rows sent twice: a batch some of whose rows are there already ----------------

-- The spool: its format's header, then a row a line in COPY text format,
-- or a sample as \1, its table, a tab and a tuple in COPY's binary format.
local spool3 = cli.read(r3 .. "/db-spool.sql")
t.is(spool3:match("^[^\n]*"), "# batlab db-spool 3: TABLE<TAB>COPY text|bin",
	"the spool's first line: its format")
t.ok(spool3:find("\nruns\t", 1, true), "the run's row: a line of COPY text")
-- a sample: 17 fields, first its cell's number in the run (batlab.series(run_id,
-- cell) in the database: MD5, computed alike on both sides), then its own
-- number, each a bigint of 8 bytes
local d4 = query(("SELECT batlab.series('%s', 'D4')"):format(id3))[1][1]
local function sample_head(seq)
	return "\1sample_data\t" .. string.pack(">i2 i4 i8 i4 i8", 17, 8, math.tointeger(tonumber(d4)), 8, seq)
end
t.ok(spool3:find(sample_head(1), 1, true), "D4's first sample in the spool: the table, 17 fields, its number and 1")
t.is(batlab.db_spool_scan(r3 .. "/db-spool.sql")[math.tointeger(tonumber(d4))], #csv_rows(r3 .. "/cells/D4.csv"),
	"batlab.db_spool_scan: D4's last sample number is its CSV's row count")
t.is(query(("SELECT count(*) FROM batlab.sample_data WHERE series = %s"):format(d4))[1][1],
	query(("SELECT count(*) FROM batlab.samples WHERE run_id = '%s' AND cell = 'D4'"):format(id3))[1][1],
	"the samples view joins the cell's number back to the run and the cell")
-- The acknowledgement of rows that landed is lost (db-spool.sent goes back
-- to D4's 100th sample) and the rows after the 200th never landed: the next
-- batch holds rows the table has and rows it lacks, its COPY fails on the
-- first, and it goes again through the temporary table.
local function offset_of(spool, seq)
	local at = spool:find(sample_head(seq), 1, true)
	return at and at - 1 or nil -- counted from 0
end
local off100 = offset_of(spool3, 100)
pg:psql(("DELETE FROM batlab.sample_data WHERE series IN (SELECT batlab.series(run_id, cell) FROM batlab.cells"
	.. " WHERE run_id = '%s') AND seq > 200"):format(id3))
cli.write(r3 .. "/db-spool.sent", ("%020d\n"):format(off100))
t.is(query(("SELECT count(*) FROM batlab.samples WHERE run_id = '%s'"):format(id3))[1][1], "200",
	"rows sent twice: 200 samples left in the database")
code, out, err = cli.batlab(("db push %s --db %s"):format(r3, q(URL)))
t.is(code, 0, "rows sent twice: db push exit 0 " .. err)
t.is(checksum_db(id3, "D4"), checksum_csv(r3 .. "/cells/D4.csv"), "rows sent twice: samples equal to the CSV's, once")
t.is(tonumber(cli.read(r3 .. "/db-spool.sent")), #spool3, "rows sent twice: the whole spool acknowledged")

-- The sink itself, on the spool of a run already in the database, from
-- its start: every batch goes through the temporary table; one new row
-- lands, no other twice.
cli.write(tmp .. "/append.lua", [[
local batlab = require "batlab"
local db = assert(batlab.db_open(arg[1], arg[2]))
assert(db:row("events", { "test:append", 1, nil, { ts = 946684800.5 }, 0.5, "a\tb\\c\nd\re '\"" }, 6))
local left, why = db:close(10)
io.write(left, why and " " .. why or "", "\n")
]])
os.remove(r1 .. "/db-spool.sent")
code, out, err = cli.batlab(("lua %s %s %s"):format(q(tmp .. "/append.lua"), q(URL), r1))
t.is(code .. out, "00\n", "the sink from the start of a sent spool: all sent " .. err)
check_cell(r1, run_id, "A1", "sent again by the sink: A1")
t.is(query(("SELECT count(*) FROM batlab.events WHERE run_id = '%s'"):format(run_id))[1][1],
	tostring(ev[1][1]), "sent again by the sink: the events once")
t.is_deeply(query("SELECT message = E'a\\tb\\\\c\\nd\\re ''\"', at, t_s FROM batlab.events WHERE run_id = 'test:append'")[1],
	{ "t", "2000-01-01 00:00:00.5+00", "0.5" }, "a text with a tab, a backslash, newline, CR, quotes: as given")

-- ---- db push of a directory without a spool: a usage error naming it ----------------

local plain = tmp .. "/plain"
code, _, err = cli.batlab(("run %s --sim --cell 0=P --out %s --quiet --no-report"):format(q(tmp .. "/short.lua"), plain))
t.is(code, 0, "a run without --db " .. err)
for _, d in ipairs { plain, tmp, tmp .. "/nowhere" } do
	code, out, err = cli.batlab(("db push %s --db %s"):format(d, q(URL)))
	t.ok(code == 2 and err:find("db push: " .. d .. ": no database spool (db-spool.sql): not a run directory,"
		.. " or a run made without --db", 1, true), ("db push %s: exit 2, naming the directory (%d %s)")
		:format(d:sub(#tmp + 1), code, err))
end

-- ---- a spool of batlab before COPY (INSERT values) ----------------------------

local old = tmp .. "/old"
assert(os.execute("mkdir " .. old))
local sample = "samples\t(E'old:run:1',E'Z9',%d,to_timestamp(946684800.%03d),0.%03d,0.000,0,E'other',0,E'',"
	.. "E'IDLE',3.76%02d,0.0000,25.03,0.000000,0.000000,5.000,0)\n"
cli.write(old .. "/db-spool.sql", "runs\t(E'old:run:1',E'h',E'run',E'short',NULL,to_timestamp(946684800.000),"
	.. "true,E'/x',E'0.0.9',NULL)\n" .. sample:format(1, 4, 4, 1) .. sample:format(2, 8, 8, 2))
code, out, err = cli.batlab(("db push %s --db %s"):format(old, q(URL)))
t.is(code, 0, "db push of an INSERT spool: exit 0 " .. err)
os.remove(old .. "/db-spool.sent")
code = cli.batlab(("db push %s --db %s"):format(old, q(URL)))
t.is(code, 0, "db push of an INSERT spool again: exit 0")
t.is_deeply(query("SELECT seq, voltage, at FROM batlab.samples WHERE run_id = 'old:run:1' ORDER BY seq"),
	{ { "1", "3.7601", "2000-01-01 00:00:00.004+00" }, { "2", "3.7602", "2000-01-01 00:00:00.008+00" } },
	"db push of an INSERT spool: its rows, once")
-- a COPY spool of a batlab before schema version 4: its samples name the
-- run and the cell (rows of batlab.samples, a view now)
local old2 = tmp .. "/old2"
assert(os.execute("mkdir " .. old2))
local sample2 = "samples\told:run:2\tZ8\t%d\t2000-01-01T00:00:0%d.000Z\t%d.000\t0.000\t0\tother\t0\t\tIDLE\t"
	.. "3.76%02d\t0.0000\t25.03\t0.000000\t0.000000\t5.000\t0\n"
cli.write(old2 .. "/db-spool.sql", "# batlab db-spool 2: TABLE<TAB>COPY text row\n"
	.. "cells\told:run:2\tZ8\t1000\t0\t1\n" .. sample2:format(1, 1, 1, 1) .. sample2:format(2, 2, 2, 2))
for k = 1, 2 do
	os.remove(old2 .. "/db-spool.sent")
	code, out, err = cli.batlab(("db push %s --db %s"):format(old2, q(URL)))
	t.is(code, 0, ("db push of a version-3 COPY spool (%d): exit 0 %s"):format(k, err))
end
t.is_deeply(query("SELECT seq, voltage, at, t_s FROM batlab.samples WHERE run_id = 'old:run:2' ORDER BY seq"),
	{ { "1", "3.7601", "2000-01-01 00:00:01+00", "1" }, { "2", "3.7602", "2000-01-01 00:00:02+00", "2" } },
	"db push of a version-3 COPY spool: its samples, once each, in batlab.sample_data")
code, out, err = cli.batlab(("lua %s %s %s"):format(q(tmp .. "/append.lua"), q(URL), old))
local refused = code ~= 0 and err:find("db%-spool.sql: written by an older batlab") ~= nil
t.ok(refused, "the sink does not add to an INSERT spool " .. (refused and "" or err))
cli.write(old .. "/db-spool.sql", "hello\n")
code, _, err = cli.batlab(("db push %s --db %s"):format(old, q(URL)))
t.ok(code ~= 0, "db push of a file that is not a spool: fails")
t.like(err, "not a batlab database spool", "db push of a file that is not a spool: says so")

-- ---- batlab runs ---------------------------------------------------------------

code, out = cli.batlab("runs --db " .. q(URL))
t.is(code, 0, "runs: exit 0")
local n = 0
for _ in out:gmatch("\n[^\n]*short[^\n]*completed") do
	n = n + 1
end
t.is(n, 3, "runs: the three runs, completed")
code, out = cli.batlab("runs --cell C3 --db " .. q(URL))
t.like(out, "C3", "runs --cell C3: the run that tested C3")
t.ok(not out:find("A1,B2", 1, true), "runs --cell C3: not the others")
code, out = cli.batlab("runs --since 2100-01-01 --db " .. q(URL))
t.is(select(2, out:gsub("\n", "")), 1, "runs --since a later date: the header only")

-- ---- the documentation's commands, SQL and dashboard --------------------------------

local doc = cli.read(dir .. "../../docs/lab.md")
local block = doc:match("<!%-%- test_lab_db runs these[^\n]*\n```sh\n(.-)```")
t.ok(block, "docs/lab.md: the block of commands")
local cmds = 0
local docdir = tmp .. "/doc"
assert(os.execute("mkdir " .. docdir))
for line in (block or ""):gmatch("[^\n]+") do
	local args = line:match("^batlab (.*)$")
	if args then
		cmds = cmds + 1
		local ok, outd = lab.sh(("cd %s && BATLAB_DB=%s %s %s"):format(docdir, q(URL), q(cli.abs_bin), args))
		t.ok(ok, "docs/lab.md: " .. line .. " " .. (ok and "" or outd))
		if args:match("^runs") then
			t.like(outd, "dry%-run:%d+ +[%d-]+ [%d:]+ +%S+ +capacity +completed +A1,B2", "docs/lab.md: the dry run listed")
		elseif args:match("^report") then
			local page = cli.read(docdir .. "/dry-run.html") or ""
			t.ok(page:find("<th>Read from</th><td>the database: run [^<]*:dry%-run:")
				and page:find("<h3[^>]*>Cell B2", 1) ~= nil, "docs/lab.md: the dry run's report from the database")
		end
	end
end
t.is(cmds, 5, "docs/lab.md: five commands run")
local sql = cli.read(dir .. "../../docs/database.md"):match("\n    (SELECT s%.cell.-;)")
t.ok(sql and pg:psql((sql:gsub("\n    ", "\n"))), "docs/database.md: the example query runs")
local grants = doc:match("`(GRANT%s+USAGE.-)`")
local gok, gout = pg:psql("CREATE ROLE grafana; " .. (grants or "x"):gsub("%s+", " "))
t.ok(grants and gok, "docs/lab.md: the grants for Grafana run " .. gout)
local dash = require("cjson").decode(cli.read(dir .. "../../docs/grafana-batlab.json"))
local var = dash.templating.list[1].query
t.ok(pg:psql(var), "grafana: the run variable's query runs")
for _, p in ipairs(dash.panels) do
	local text = p.targets[1].rawSql:gsub("%$run", id3):gsub("%$__timeFilter%(([%w_.]+)%)", "%1 IS NOT NULL")
	local ok, res = pg:psql(text)
	t.ok(ok and res ~= "", "grafana: panel '" .. p.title .. "' reads rows " .. (ok and "" or res))
end

-- ---- bad input ----------------------------------------------------------------

code, _, err = cli.batlab("runs --since yesterday-ish --db " .. q(URL))
t.is(code, 2, "runs --since with a bad date: exit 2")
code, _, err = cli.batlab("db frobnicate --db " .. q(URL))
t.is(code, 2, "db with an unknown action: exit 2")
code, _, err = cli.batlab(("run %s --sim --cell 0=F6 --out %s/r9 --db mysql://x/y --quiet"):format(q(tmp .. "/short.lua"), tmp))
t.is(code, 2, "run --db with a URL that is not PostgreSQL's: exit 2")
t.like(err, "%-%-db: the database is given as a postgresql:// URL", "run --db mysql://: says what it wants")
code, _, err = cli.batlab("db init --db 'postgresql://x@h/d?nosuchoption=1'")
t.is(code, 2, "db init with a URL libpq cannot read: exit 2")
t.like(err, "the database URL: ", "db init with a bad URL: libpq's reason")
code, _, err = cli.batlab("db init", "BATLAB_DB= BATLAB_CONFIG=" .. tmp .. "/none.conf")
t.is(code, 2, "db init without a database: exit 2")
t.like(err, "none.conf", "db init without a database: names the configuration file")

pg:destroy()
os.execute("rm -rf " .. q(tmp))
t.done()
