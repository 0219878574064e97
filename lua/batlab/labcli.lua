-- batlab.labcli - `batlab db init`, `batlab db push RUN_DIR` and `batlab
-- runs`: the lab's PostgreSQL database from the command line
-- (docs/database.md). The URL comes from --db, else $BATLAB_DB, else the
-- lab configuration file (batlab.labconf).
local batlab = require "batlab"
local labconf = require "batlab.labconf"

local M = {}

local USAGE = {
	db = [[
usage: batlab db init [--db URL]
       batlab db push RUN_DIR [--db URL]

init   create the batlab schema in the database, or bring it to this
       version (docs/database.md); safe to run again
push   send a run's rows that did not reach the database (the server was
       away) from RUN_DIR/db-spool.sql; rows already there are not doubled

The URL (postgresql://user@host[:port]/dbname) comes from --db, else
$BATLAB_DB, else the lab configuration file (docs/lab.md).
]],
	runs = [[
usage: batlab runs [--db URL] [--cell NAME] [--since DATE]

The runs in the lab's database, from every host, oldest first: run id,
start, host, procedure, outcome, cells. --cell: only runs that tested
cell NAME; --since: only runs started on or after DATE (YYYY-MM-DD, or
any date PostgreSQL reads).
]],
}

local function err(msg)
	io.stderr:write("batlab: ", msg, "\n")
end

local function parse(cmd, argv)
	local o, pos = {}, {}
	local i = 1
	while i <= #argv do
		local a = argv[i]
		local key, val = a:match("^(%-%-[%w-]+)=(.*)$")
		key = key or a
		if key == "-h" or key == "--help" then
			o.help = true
		elseif key == "--db" or (cmd == "runs" and (key == "--cell" or key == "--since")) then
			if not val then
				i = i + 1
				val = argv[i]
				if not val then
					return nil, key .. " needs a value"
				end
			end
			o[key:sub(3)] = val
		elseif a:sub(1, 1) == "-" and a ~= "-" then
			return nil, ("unknown option '%s' (see 'batlab %s --help')"):format(a, cmd)
		else
			pos[#pos + 1] = a
		end
		i = i + 1
	end
	return o, pos
end

local function url_of(o)
	if o.db and o.db ~= "" then
		return o.db
	end
	local env = os.getenv("BATLAB_DB")
	if env and env ~= "" then
		return env
	end
	local conf, cerr = labconf.read()
	if not conf then
		return nil, cerr
	end
	if conf.db and conf.db ~= "" then
		return conf.db
	end
	return nil, "no database: give --db URL, set BATLAB_DB, or put db = URL in " .. labconf.path()
end

-- url(db) -> the database's URL: db (from --db) if given, else
-- $BATLAB_DB, else the lab configuration file; checked that libpq reads
-- it. nil, why when there is none or it is not a URL.
function M.url(db)
	local url, why = url_of({ db = db })
	if url then
		local ok, cwhy = batlab.db_check(url)
		if not ok then
			return nil, cwhy
		end
	end
	return url, why
end

local function db_cmd(o, pos, url)
	local sub = pos[1]
	if sub == "init" and #pos == 1 then
		local from, to = batlab.db_init(url)
		if not from then
			err("db init: " .. tostring(to))
			return batlab.EXIT_FAILED
		end
		if from == to then
			io.stdout:write(("db init: the schema is at version %d already\n"):format(to))
		else
			io.stdout:write(("db init: schema version %d -> %d\n"):format(from, to))
		end
		return batlab.EXIT_OK
	elseif sub == "push" and #pos == 2 then
		local n, why = batlab.db_push(url, pos[2])
		if not n then
			err("db push: " .. tostring(why))
			return why and why:find("no database spool", 1, true) and batlab.EXIT_USAGE or batlab.EXIT_FAILED
		end
		io.stdout:write(("db push: %d batch(es) sent from %s\n"):format(n, pos[2]))
		return batlab.EXIT_OK
	end
	err("db: expected 'init' or 'push RUN_DIR' (see 'batlab db --help')")
	return batlab.EXIT_USAGE
end

local RUNS_SQL = [[
SELECT r.run_id, to_char(r.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), r.host,
  coalesce(r.procedure, ''), coalesce(e.outcome, 'running'),
  (SELECT string_agg(c.cell, ',' ORDER BY c.cell) FROM batlab.cells c WHERE c.run_id = r.run_id)
FROM batlab.runs r LEFT JOIN batlab.run_ends e ON e.run_id = r.run_id
WHERE ($1::text IS NULL OR EXISTS (SELECT 1 FROM batlab.cells c WHERE c.run_id = r.run_id AND c.cell = $1))
  AND ($2::timestamptz IS NULL OR r.started_at >= $2::timestamptz)
ORDER BY r.started_at, r.run_id]]

local function runs_cmd(o, pos, url)
	if #pos > 0 then
		err(("runs: unexpected argument '%s' (see 'batlab runs --help')"):format(pos[1]))
		return batlab.EXIT_USAGE
	end
	local out, why = batlab.db_query(url, RUNS_SQL, { o.cell, o.since }, 2)
	if not out then
		err("runs: " .. tostring(why))
		return why and why:find("invalid input syntax", 1, true) and batlab.EXIT_USAGE or batlab.EXIT_FAILED
	end
	io.stdout:write(("%-44s %-19s %-12s %-14s %-11s %s\n"):format("RUN", "STARTED (UTC)", "HOST",
		"PROCEDURE", "OUTCOME", "CELLS"))
	for line in out:gmatch("[^\n]+") do
		local f = {}
		for field in (line .. "\t"):gmatch("([^\t]*)\t") do
			f[#f + 1] = field
		end
		io.stdout:write(("%-44s %-19s %-12s %-14s %-11s %s\n"):format(f[1], f[2], f[3], f[4], f[5], f[6] or ""))
	end
	return batlab.EXIT_OK
end

function M.main(cmd, argv)
	local o, pos = parse(cmd, argv)
	if not o then
		err(cmd .. ": " .. pos)
		return batlab.EXIT_USAGE
	end
	if o.help then
		io.stdout:write(USAGE[cmd])
		return batlab.EXIT_OK
	end
	local url, uerr = M.url(o.db)
	if not url then
		err(cmd .. ": " .. uerr)
		return batlab.EXIT_USAGE
	end
	if cmd == "db" then
		return db_cmd(o, pos, url)
	end
	return runs_cmd(o, pos, url)
end

return M
