-- The lab's sinks across a crash, and servers whose names are looked up
-- (docs/reliability.md, docs/lab.md), against a real PostgreSQL and
-- Mosquitto of our own (labservers.lua):
--
-- * a run with --db and --mqtt on a virtual Batlab served over a pty
--   (`batlab sim --pty`: a run on the in-process one cannot be resumed),
--   killed (SIGKILL) in its discharge, then `batlab resume`, killed again,
--   and resumed to its end: the database
--   ends with every CSV row once (count, values, numbers 1..N), each step,
--   event and cell once; the broker gets the resumed cells' statuses and
--   samples. The database is down until the resume and the crash's lost
--   spool buffer is made certain (its last rows cut), so the resume must
--   send what only the files kept; the second resume goes on from what
--   the server acknowledged. The run's URL had a password: never written
--   to the run, it comes back from BATLAB_DB (the first resume, without
--   it, says so).
-- * a --db and --mqtt host name that does not resolve: the run completes
--   in virtual time, its rows spooled, a warning naming the host; and
--   `localhost` (a name, looked up off the loop) reaches both servers.
-- Skipped, saying why, where the servers cannot be started.
local dir = arg[0]:match("^(.-)[^/]*$")
local t = dofile(dir .. "tap.lua")
local cli = dofile(dir .. "cli.lua")
local lab = dofile(dir .. "labservers.lua")
local csv = require "batlab.csv"
local cjson = require "cjson"

local pg = lab.or_skip(lab.postgres())
local mq = lab.or_skip(lab.mosquitto())
local tmp = cli.tmpdir()
local q, bin = cli.quote, cli.abs_bin
local query = function(sql) return pg:rows(sql) end
-- (the server trusts every local user: the password is only carried)
local URL_PW = pg.url:gsub("//batlab@", "//batlab:sekret@")

local code, _, err = cli.batlab("db init --db " .. q(pg.url))
t.is(code, 0, "db init " .. err)

cli.write(tmp .. "/short.lua", [[
local steps = require "batlab.steps"
return {
  name = "short",
  run = function(cell)
    cell:label{ cycle = 1, cycle_kind = "cycle" }
    steps.rest(cell, 2)
    steps.discharge(cell, { current = 1.0, max_time = 8 })
    return true, "done"
  end,
}
]])

local function csv_rows(path)
	local rows = csv.parse(cli.read(path) or "")
	table.remove(rows, 1)
	if rows[#rows] and #rows[#rows] <= 1 then
		rows[#rows] = nil
	end
	return rows
end

-- Every CSV row is the sample of the same number, value for value (in
-- the database `rows` reads, the run's by default).
local function same_rows(run_dir, run_id, cell, rows)
	local file = csv_rows(run_dir .. "/cells/" .. cell .. ".csv")
	local db = (rows or query)(("SELECT seq, t_s, step_time_s, cycle, step, step_name, mode, voltage, current, charge_ah,"
		.. " energy_wh, vcc FROM batlab.samples WHERE run_id = '%s' AND cell = '%s' ORDER BY seq")
		:format(run_id, cell))
	local cols = { 1, 2, 3, 5, 6, 7, 8, 9, 11, 12, 14 }
	local bad = #db ~= #file and ("%d samples, %d rows"):format(#db, #file) or nil
	for i = 1, math.min(#db, #file) do
		if tonumber(db[i][1]) ~= i then
			bad = bad or ("sample %d has number %s"):format(i, db[i][1])
		end
		for k, c in ipairs(cols) do
			local a, b = db[i][k + 1], file[i][c]
			if a ~= b and tonumber(a) ~= tonumber(b) then
				bad = bad or ("row %d column %d: database %s, CSV %s"):format(i, c, a, b)
			end
		end
	end
	return bad, #file
end

-- The spool's whole rows, { start, stop, binary } (positions in s): after
-- its header, lines of COPY text, and binary rows (\1, the table, a tab,
-- a 16-bit field count, then each field's 32-bit length, -1 for NULL, and
-- its bytes).
local function spool_rows(s)
	local rows, at = {}, (s:find("\n", 1, true) or #s) + 1
	while at <= #s do
		local stop
		if s:byte(at) == 1 then
			local tab = s:find("\t", at, true)
			local p, nf = tab and tab + 1, 0
			if p and p + 1 <= #s then
				nf, p = string.unpack(">i2", s, p)
				for _ = 1, nf do
					if p + 3 > #s then
						p = #s + 2
						break
					end
					local len
					len, p = string.unpack(">i4", s, p)
					p = p + math.max(len, 0)
				end
			end
			stop = p and p - 1 <= #s and p - 1 or nil
		else
			stop = s:find("\n", at, true)
		end
		if not stop then
			break
		end
		rows[#rows + 1] = { start = at, stop = stop, binary = s:byte(at) == 1 }
		at = stop + 1
	end
	return rows
end

local function subscribe(file)
	local done = lab.subscribe(mq, file, "batlab/#")
	return function() return done() or "" end
end

local function messages(text, kind)
	local out = {}
	for topic, payload in text:gmatch("(batlab/[^ \n]+) ([^\n]*)") do
		if topic:match("/(%a+)$") == kind then
			out[#out + 1] = cjson.decode(payload)
		end
	end
	return out
end

-- ---- a run killed and resumed -----------------------------------------------------

local sim = assert(io.popen(("sh -c 'echo $$; exec %s sim --pty --speed 10 --devices 1'"):format(q(bin))))
local sim_pid, port = sim:read("l"), sim:read("l")
t.ok(port and port:match("^/dev/pts/"), "batlab sim --pty serves a virtual Batlab")
local r1 = tmp .. "/r1"
pg:stop()
code, _, err = cli.batlab(("run %s --port %s --out %s --db %s --mqtt %s --cell 0=A --cell 1=B --quiet --no-report")
	:format(q(tmp .. "/short.lua"), port, r1, q(URL_PW), mq.url),
	"BATLAB_DB_WAIT=1 BATLAB_JOURNAL_SIGNAL='KILL after at A 2 4'")
t.is(code, 137, "the run is killed in its discharge (SIGKILL)")
local journal = cli.read(r1 .. "/journal.jsonl") or ""
local entry = cjson.decode(journal:match('[^\n]*"ev":"lab"[^\n]*') or "{}")
t.is(entry.db, pg.url, "the journal has the run's database, its URL without the password")
t.is(entry.mqtt, mq.url, "and its broker")
t.ok(not journal:find("sekret") and not (cli.read(r1 .. "/run.json") or ""):find("sekret"),
	"the password is nowhere in the journal (its command line too) or run.json")
-- What a crash loses of the spool, for certain: its last rows, the last
-- one cut short (what a kill between two of its buffer's writes leaves):
-- 5 bytes of a binary sample that follows another, so that no newline
-- byte comes after the last whole row (which a cut back to the last
-- newline, as for a file of lines, would lose).
local spool = cli.read(r1 .. "/db-spool.sql")
local rows1, torn = spool_rows(spool), nil
for i = 2, #rows1 do
	if rows1[i].stop < #spool - 3000 and rows1[i].binary and rows1[i - 1].binary then
		torn = i
	end
end
local whole = torn and rows1[torn].start - 1 or 0
t.ok(torn and spool:byte(whole) ~= 10, "the crash's spool: its last whole row a binary sample, not ending in a newline byte")
spool = spool:sub(1, whole + 5)
cli.write(r1 .. "/db-spool.sql", spool)
local rows_a = #csv_rows(r1 .. "/cells/A.csv")
t.ok(rows_a > 20, "A's rows before the crash: " .. rows_a)

code, _, err = cli.batlab(("resume %s --db"):format(r1))
t.ok(code == 2 and err:find("resume: --db needs a URL", 1, true), "resume --db without its URL: exit 2, said")

pg:start()
local done = subscribe(tmp .. "/sub.txt")
-- A first resume, without the password, killed again in the discharge it
-- went on with: the server up, what it sent is acknowledged.
code, _, err = cli.batlab(("resume %s --quiet"):format(r1),
	"BATLAB_DB_WAIT=20 BATLAB_JOURNAL_SIGNAL='KILL after at A 2 2'")
t.is(code, 137, "a first resume is killed too")
t.like(err, "warning: the run's database URL had a password, which the run did not write down",
	"without BATLAB_DB, the resume says the password is not known (and connects without it)")
t.ok(tonumber(cli.read(r1 .. "/db-spool.sent") or "") > 0, "it had sent rows")
local spool2 = cli.read(r1 .. "/db-spool.sql") or ""
local starts = {}
for _, r in ipairs(spool_rows(spool2)) do
	starts[r.start] = true
end
t.ok(spool2:sub(1, whole) == spool:sub(1, whole) and starts[whole + 1],
	"the resume kept every whole row of the crash's spool, dropped its torn row and appended after them")
code, _, err = cli.batlab(("resume %s --quiet"):format(r1), "BATLAB_DB=" .. q(URL_PW) .. " BATLAB_DB_WAIT=20")
t.is(code, 0, "the second resume completes the run " .. err)
t.is(err, "", "resume: nothing on stderr (the password came back from BATLAB_DB)")
local got = done()
os.execute("kill " .. sim_pid)
sim:close()

local ids = query("SELECT run_id FROM batlab.runs")
t.is(#ids, 1, "one run in the database")
local run_id = ids[1] and ids[1][1] or "?"
for _, cell in ipairs { "A", "B" } do
	local bad, n = same_rows(r1, run_id, cell)
	t.ok(not bad and n > rows_a, ("%s: the database's samples are the CSV's %d rows, numbered 1..%d, once %s")
		:format(cell, n, n, bad or ""))
end
t.is_deeply(query(("SELECT cell, ordinal FROM batlab.cells WHERE run_id = '%s' ORDER BY cell"):format(run_id)),
	{ { "A", "1" }, { "B", "2" } }, "batlab.cells: both cells, once, in their order")
t.is(query("SELECT count(*) FROM batlab.steps")[1][1], tostring(#csv_rows(r1 .. "/steps.csv")),
	"batlab.steps: each step of steps.csv once")
local entries = select(2, (cli.read(r1 .. "/events.log") or ""):gsub("\n%S", ""))
	+ ((cli.read(r1 .. "/events.log") or ""):find("^%S") and 1 or 0)
local ev = query("SELECT count(*), max(seq), count(*) FILTER (WHERE message LIKE 'resumed after a crash%') FROM batlab.events")
t.ok(tonumber(ev[1][1]) == entries and tonumber(ev[1][2]) == entries,
	("batlab.events: each of events.log's %d entries once (%s rows)"):format(entries, ev[1][1]))
t.is(ev[1][3], "2", "batlab.events: the resumes' gaps")
t.is(query("SELECT outcome FROM batlab.run_ends")[1][1], "completed", "batlab.run_ends: completed")
t.is(tonumber(cli.read(r1 .. "/db-spool.sent")), #cli.read(r1 .. "/db-spool.sql"), "the whole spool acknowledged")

local meta = cjson.decode(cli.read(r1 .. "/run.json") or "{}")
local gap = meta.resumes and meta.resumes[1] and meta.resumes[1].gap_from_s or math.huge
local late, status, by_time, bad = 0, {}, {}, nil
for _, cell in ipairs { "A", "B" } do
	for _, r in ipairs(csv_rows(r1 .. "/cells/" .. cell .. ".csv")) do
		by_time[cell .. " " .. r[1]] = r
	end
end
for _, s in ipairs(messages(got, "sample")) do
	local r = by_time[("%s %.3f"):format(s.cell, s.time)]
	if s.time > gap then
		late = late + 1
		if not r or tonumber(r[11]) ~= s.charge_ah or tonumber(r[12]) ~= s.energy_wh or tonumber(r[8]) ~= s.voltage then
			bad = bad or ("%s at %.3f s: %s"):format(s.cell, s.time, r and "differs from its CSV row" or "no row")
		end
	end
end
for _, s in ipairs(messages(got, "status")) do
	status[s.cell] = (status[s.cell] or "") .. s.state .. (s.step and (":" .. s.step) or "") .. " "
end
t.ok(late > 20, ("MQTT: samples after the crash (%d)"):format(late))
t.ok(not bad, "MQTT: each equal to its CSV row (V, the resumed step's Ah and Wh carried over) " .. (bad or ""))
t.like(status.A or "", "running:1%.?0? running:2%.?0? .*done", "MQTT: A's status goes on at its discharge, then done")
t.like(status.B or "", "running:1%.?0? running:2%.?0? .*done", "MQTT: B's status too")

-- ---- resumed with --db naming another database -------------------------------------

-- The other database gets the whole run, each row once (the spool from
-- its start: what the first acknowledged is nothing to the other); the
-- first keeps what it had.
assert(pg:psql("CREATE DATABASE other"))
local other = setmetatable({ url = pg.url:gsub("/postgres$", "/other"), gone = true }, getmetatable(pg))
code, _, err = cli.batlab("db init --db " .. q(other.url))
t.is(code, 0, "db init of another database " .. err)
sim = assert(io.popen(("sh -c 'echo $$; exec %s sim --pty --speed 10 --devices 1'"):format(q(bin))))
sim_pid, port = sim:read("l"), sim:read("l")
local r4 = tmp .. "/r4"
code, _, err = cli.batlab(("run %s --port %s --out %s --db %s --cell 0=K --quiet --no-report")
	:format(q(tmp .. "/short.lua"), port, r4, q(pg.url)), "BATLAB_JOURNAL_SIGNAL='KILL after at K 2 4'")
t.is(code, 137, "another database: the run is killed in its discharge")
local id4 = query("SELECT run_id FROM batlab.runs WHERE run_dir LIKE '%/r4'")[1][1]
local first = query(("SELECT count(*) FROM batlab.samples WHERE run_id = '%s'"):format(id4))[1][1]
t.ok(tonumber(first) > 0 and tonumber(cli.read(r4 .. "/db-spool.sent") or "") > 0,
	"the run's database had rows of it, acknowledged (" .. first .. ")")
code, _, err = cli.batlab(("resume %s --db %s --quiet"):format(r4, q(other.url)))
os.execute("kill " .. sim_pid)
sim:close()
t.is(code, 0, "resume --db ANOTHER: completes " .. err)
local bad4 = same_rows(r4, id4, "K", function(sql) return other:rows(sql) end)
t.ok(not bad4, "the other database has every CSV row of the run, once, numbered 1..N " .. (bad4 or ""))
t.is_deeply(other:rows(("SELECT (SELECT count(*) FROM batlab.runs WHERE run_id = '%s'),"
	.. " (SELECT count(*) FROM batlab.cells WHERE run_id = '%s'), (SELECT outcome FROM batlab.run_ends),"
	.. " (SELECT count(*) = max(seq) FROM batlab.events)"):format(id4, id4)), { { "1", "1", "completed", "t" } },
	"and the run, its cell, its end and its events, each once")
t.is(query(("SELECT count(*) FROM batlab.samples WHERE run_id = '%s'"):format(id4))[1][1], first,
	"the run's first database keeps what it had, nothing more")

-- ---- host names ----------------------------------------------------------------

local r2 = tmp .. "/r2"
code, _, err = cli.batlab(("run %s --sim --cell 0=N --out %s --db %s --mqtt %s --quiet --no-report")
	:format(q(tmp .. "/short.lua"), r2, "postgresql://batlab@nonexistent.invalid/batlab", "mqtt://nonexistent.invalid"),
	"BATLAB_DB_WAIT=1")
t.is(code, 0, "a host that does not resolve: the run completes")
local rows_n = #csv_rows(r2 .. "/cells/N.csv")
t.ok(rows_n > 5, "its rows are in the CSV (" .. rows_n .. ")")
t.is(select(2, (cli.read(r2 .. "/db-spool.sql") or ""):gsub("\1sample_data\t\0\17", "")), rows_n,
	"and in the spool, every one")
t.like(err, "database: cannot resolve the host name 'nonexistent.invalid'", "the database's warning names the host")
t.like(err, "MQTT broker: cannot resolve the host name 'nonexistent.invalid'", "the broker's warning names it")
t.like(err, "batlab db push", "the rows are said to wait for 'batlab db push'")

local r3 = tmp .. "/r3"
done = subscribe(tmp .. "/sub3.txt")
code, _, err = cli.batlab(("run %s --sim --cell 0=L --out %s --db %s --mqtt mqtt://localhost:%d --quiet --no-report")
	:format(q(tmp .. "/short.lua"), r3, q(pg.url:gsub("127%.0%.0%.1", "localhost")), mq.port))
t.is(code, 0, "localhost: exit 0 " .. err)
t.is(err, "", "localhost: nothing on stderr")
local id3 = query("SELECT run_id FROM batlab.runs WHERE run_dir LIKE '%/r3'")
local bad3 = "no run in the database"
if id3[1] then
	bad3 = same_rows(r3, id3[1][1], "L")
end
t.ok(not bad3, "localhost: the database has every row " .. (bad3 or ""))
local st3 = messages(done(), "status")
t.is(st3[#st3] and st3[#st3].cell .. " " .. st3[#st3].state, "L done", "localhost: the broker has the cell's last status " .. cjson.encode(st3))

pg:destroy()
mq:destroy()
os.execute("rm -rf " .. q(tmp))
t.done()
