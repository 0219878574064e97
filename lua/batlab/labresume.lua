-- batlab.labresume - a resumed run's sinks (batlab resume, docs/reliability.md):
-- where they are and what the database has still to get.
--
-- Which database and broker: those the run used (its journal's "lab"
-- entry: its run id and the URLs, a database password never written
-- down), unless `batlab resume --db URL / --mqtt URL` names others. A
-- password the run's URL had comes back from BATLAB_DB or the lab
-- configuration file when they name the same database (else libpq's
-- ~/.pgpass or PGPASSWORD must have it).
--
-- What the database has still to get: the crash may have cut the spool
-- (db-spool.sql, written through a buffer) shorter than the files, which
-- were flushed at every row. So the spool is read through once: each
-- cell's last sample number and the last event number in it. The rows it
-- lacks are sent again from the files: the run and its cells, every step
-- the journal has, the events of events.log after the last one spooled,
-- and each cell's CSV rows after its last spooled sample. Rows sent twice
-- land once (every table's key), so none of this can double a row.
local batlab = require "batlab"
local csv = require "batlab.csv"
local fsutil = require "batlab.fsutil"

local M = {}

-- (?password=... in a URL, password=... in a key=value string, and
-- user:password@ in a URL)
local function redact_query(url)
	local removed = false
	local out = url:gsub("([?&])password=[^&]*&?", function(sep)
		removed = true
		return sep
	end):gsub("[?&]$", "")
	return out, removed
end

-- redact(url) -> the database URL without its password, whether it had one.
function M.redact(url)
	local removed = false
	local out = url:gsub("^(postgres%a*://[^@/?]-):[^@/?]*@", function(pre)
		removed = true
		return pre .. "@"
	end)
	local q
	out, q = redact_query(out)
	removed = removed or q
	out = out:gsub("%f[%w]password%s*=%s*'[^']*'%s*", function()
		removed = true
		return ""
	end):gsub("%f[%w]password%s*=%s*[^%s']+%s*", function()
		removed = true
		return ""
	end)
	return out, removed
end

-- recorded_argv(argv) -> argv with --db's URL redacted (the journal's copy).
function M.recorded_argv(argv)
	local out = {}
	for i, a in ipairs(argv or {}) do
		if argv[i - 1] == "--db" then
			a = M.redact(a)
		elseif a:find("^%-%-db=") then
			a = "--db=" .. M.redact(a:sub(6))
		end
		out[i] = a
	end
	return out
end

-- urls(R, conf) -> db, mqtt, warning: where a resumed run's sinks go.
-- A database other than the run's gets the whole spool: what the run's
-- had acknowledged (db-spool.sent) is forgotten.
function M.urls(R, conf)
	local rec, given = R.resume.lab or {}, R.lab_given or {}
	local db, mqtt, warn = given.db or rec.db, given.mqtt or rec.mqtt, nil
	if given.db and M.redact(given.db) ~= rec.db then
		os.remove(R.dir .. "/db-spool.sent")
	end
	if not given.db and rec.db_password then
		local again = os.getenv("BATLAB_DB") or conf.db
		if again and M.redact(again) == rec.db then
			db = again
		else
			warn = "the run's database URL had a password, which the run did not write down: give the URL "
				.. "again ('batlab resume RUN_DIR --db URL') or put the password in ~/.pgpass"
		end
	end
	return db, mqtt, warn
end

-- A text value as bl_copy_text writes it into the spool (host/db.c: the
-- rows are COPY text).
local function copy_text(s)
	return (s:gsub("[%z\1-\31\\]", function(c)
		if c == "\\" then
			return "\\\\"
		elseif c == "\n" then
			return "\\n"
		elseif c == "\t" then
			return "\\t"
		end
		return ("\\x%02x"):format(c:byte())
	end))
end

-- What the spool has of the run: { samples = { [cell] = last seq }, events = last seq }.
-- A sample is a row of sample_data, its cell's number first (spooled in
-- COPY's binary format; batlab.db_spool_scan reads those); a spool of a
-- batlab before schema version 4 has rows of samples, naming the run and
-- the cell: read too.
local function scan(path, run_id, cells)
	local seen = { samples = {}, events = 0 }
	local sp = copy_text(run_id) .. "\t"
	local lits, series = {}, {}
	for _, c in ipairs(cells) do
		lits[#lits + 1] = { copy_text(c.name) .. "\t", c.name }
		series[batlab.db_series(run_id, c.name)] = c.name
	end
	local last = batlab.db_spool_scan(path, function(tbl, line)
		if line:sub(1, #sp) ~= sp then
			return
		end
		if tbl == "samples" then
			for _, l in ipairs(lits) do
				if line:sub(#sp + 1, #sp + #l[1]) == l[1] then
					local seq = tonumber(line:match("^(%d+)\t", #sp + #l[1] + 1))
					seen.samples[l[2]] = math.max(seen.samples[l[2]] or 0, seq or 0)
					break
				end
			end
		elseif tbl == "events" then
			seen.events = math.max(seen.events, tonumber(line:match("^(%d+)\t", #sp + 1)) or 0)
		end
	end)
	for s, seq in pairs(last or {}) do
		local name = series[s]
		if name then
			seen.samples[name] = math.max(seen.samples[name] or 0, seq)
		end
	end
	return seen
end

-- The ERROR bits of a row's Errors field ("A|B", "0x1000" for a bit
-- without a name, "" for none).
local ERR_BITS = {}
for b, name in pairs(batlab.ERR_LIST) do
	if name ~= "" then
		ERR_BITS[name:gsub("^ERR_", "")] = 1 << b
	end
end

local function error_bits(text)
	local bits = 0
	for name in (text or ""):gmatch("[^|]+") do
		bits = bits | (ERR_BITS[name] or tonumber(name) or 0)
	end
	return bits
end

-- A row of the cell's CSV as the sample_data row dbfeed.c made of it
-- (the same numbers, to the CSV's decimals).
local function sample_row(lab, series, seq, r, col)
	local function num(k)
		return tonumber(r[col[k]] or "")
	end
	local t = num("Test Time / s")
	return { series, seq, t and { ts = lab.epoch + t }, t, num("Step Time / s"), num("Cycle"),
		r[col["Cycle Kind"]], num("Step"), r[col["Step Name"]], r[col["Mode"]], num("Voltage / V"),
		num("Current / A"), num("Temperature / degC"), num("Charge / Ah"), num("Energy / Wh"), num("VCC / V"),
		error_bits(r[col["Errors"]]) }
end

-- The CSV rows after row `from` (up to `to`) into the spool.
local function resend_rows(lab, name, path, from, to)
	local f = path and fsutil.open_read(path)
	if not f then
		return
	end
	local col, i, series = nil, -1, batlab.db_series(lab.run_id, name)
	for line in f:lines() do
		i = i + 1
		if i == 0 then
			col = {}
			for k, h in ipairs(csv.parse(line .. "\n")[1] or {}) do
				col[h] = k
			end
		elseif i > to then
			break
		elseif i > from then
			lab.db:row("sample_data", sample_row(lab, series, i, csv.parse(line .. "\n")[1], col), 17)
		end
	end
	f:close()
end

-- catch_up(lab, R): the rows the spool lacks (above), and where each
-- resumed cell's samples go on (lab.rows_before[name]).
function M.catch_up(lab, R)
	local J, dir = R.resume, R.run.dir
	local seen = scan(dir .. "/db-spool.sql", lab.run_id, J.cells)
	lab:_run_row()
	lab.cell_names, lab.ncells, lab.rows_before = {}, #J.cells, {}
	for i, c in ipairs(J.cells) do
		lab.cell_names[c.name] = true
		lab.db:row("cells", { lab.run_id, c.name, c.serial, c.channel, i }, 5)
		for _, e in ipairs(c.done) do
			if e.row then
				lab:step(c.name, e.row)
			end
		end
		-- (more spooled than written: a recording policy keeps fewer rows
		-- than samples, or the crash fell between a sample's two writes;
		-- the numbers go on after the database's)
		local have, rows = seen.samples[c.name] or 0, c.rows or 0
		if have < rows then
			resend_rows(lab, c.name, c.file, have, rows)
		end
		lab.rows_before[c.name] = math.max(have, rows)
	end
	lab.skip_events = seen.events
	lab:_log_events()
end

return M
