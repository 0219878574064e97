-- batlab.resume - `batlab resume RUN_DIR`: go on with a run whose host
-- died (kill -9, a reboot, a power cut) from its journal (batlab.journal).
--
-- The run's command line is read back from the journal and parsed again
-- (the procedure and the settings file must be unchanged); the same
-- Batlabs are opened (by their ports, or --port) and each cell is checked
-- on its channel (serial number, a cell there, its voltage near what the
-- journal last saw). Cells whose procedure had ended keep their result;
-- the others run their procedure again under batlab.replay, which skips
-- what they had finished and starts the step the crash cut short again
-- from its start, carrying over its charge (from the device's own
-- counter when it still holds it), energy and time. Every file of the run
-- is appended to; the gap is an event, a journal entry and a line of
-- run.json's "resumes".
local batlab = require "batlab"
local csv = require "batlab.csv"
local fsutil = require "batlab.fsutil"
local journal = require "batlab.journal"
local placement = require "batlab.placement"
local replay = require "batlab.replay"
local results = require "batlab.results"
local lfs = require "lfs"

local M = {}

-- How far a cell's voltage may be from the journal's last reading before
-- it is taken for another cell: after a rest, and (RELAX_MAX) after a
-- charge or discharge, which went on until the watchdog stopped it and
-- from which the cell then relaxed.
M.VOLTAGE_TOLERANCE = 0.5
M.RELAX_MAX = 1.0

M.USAGE = [[
usage: batlab resume RUN_DIR [--port PATH] [--db URL] [--mqtt URL] [--quiet] [--json]

Go on with a run whose host died (kill -9, a crash, a reboot, a power
cut), or that was interrupted (Ctrl-C), from the journal in its directory. The same Batlabs are opened
(--port: the one on PATH instead of the port the run used), each cell is
checked on its channel (the Batlab's serial number, a cell there, its
voltage within 0.5 V of the journal's last reading), and each cell's
procedure goes on from the start of the step it was in (stock tests:
from the current cycle phase), carrying over that step's charge, energy
and time. The run's files are appended to; the gap is recorded.

A run on the in-process virtual Batlab cannot be resumed: its devices
ended with it. For a dry run that can, serve the virtual Batlab on a
pseudo-terminal with 'batlab sim' (docs/cli.md, "resume").

A run that sent its rows to a database (--db) or its telemetry to an MQTT
broker (--mqtt) goes on sending to the same ones: the database gets what
the crash kept from it and every row after, each once. --db URL and
--mqtt URL send to others instead (or start sending); a database password
the run's URL had is not kept in the run: it comes from BATLAB_DB or the
lab configuration file when they name the same database, or ~/.pgpass.
]]

-- ---- the journal, per cell ------------------------------------------------

local function cell_of(J, e)
	local c = J.by_name[e.cell]
	if not c then
		c = { name = e.cell, done = {}, zs = {}, allz = {} }
		J.by_name[e.cell] = c
	end
	return c
end

-- What each kind of entry tells of its cell.
local ON = {
	cell = function(c, e, J)
		c.serial, c.channel = e.serial, e.channel
		J.cells[#J.cells + 1] = c
	end,
	begin = function(c, e)
		c.open, c.at = e, nil
	end,
	started = function(c, e)
		if c.open and c.open.step == e.step then
			c.open.started = true
		end
	end,
	at = function(c, e)
		c.at, c.v = e, e.v
		if e.mode == "CHARGE" or e.mode == "DISCHARGE" then
			c.driven = e.mode
		end
		c.qmin = math.min(c.qmin or e.qmin or math.huge, e.qmin or math.huge)
		c.qmax = math.max(c.qmax or e.qmax or -math.huge, e.qmax or -math.huge)
	end,
	["end"] = function(c, e)
		c.done[#c.done + 1] = e
		local kind = e.sum and e.sum.kind
		if kind == "charge" or kind == "discharge" then
			c.driven = kind:upper()
		end
		c.open, c.at, c.state, c.v = nil, nil, e.state, e.v or c.v
	end,
	z = function(c, e)
		c.allz[#c.allz + 1] = e
		if not e.in_step then
			c.zs[#c.zs + 1] = e.ohms
		end
	end,
	done = function(c, e)
		c.finished = e
	end,
}

-- load(dir) -> J | nil, err: the run entry, the cells in the order they
-- started, the time of the last entry, whether the run had closed.
local function load(dir)
	local entries, err = journal.read(dir)
	if not entries then
		return nil, ("%s: no journal to resume from (%s)"):format(dir, tostring(err))
	end
	local J = { cells = {}, by_name = {}, last_t = 0, resumes = 0 }
	for _, e in ipairs(entries) do
		if e.ev == "run" then
			J.run = e
		elseif e.ev == "closed" then
			J.closed = e.outcome or "closed"
		elseif e.ev == "lab" then
			J.lab = e -- (batlab.labsink: its sinks)
		elseif e.ev == "resume" then
			J.resumes, J.closed = J.resumes + 1, nil
		elseif ON[e.ev] and e.cell then
			ON[e.ev](cell_of(J, e), e, J)
		end
		if type(e.t) == "number" and e.t > J.last_t then
			J.last_t = e.t
		end
	end
	if not J.run then
		return nil, dir .. "/" .. journal.FILE .. ": the run's first entry is missing"
	end
	return J
end

-- ---- the command line ---------------------------------------------------------

-- The run's own arguments with --out set to its directory (an --out it
-- had is dropped) and the options of this command added.
local function run_argv(J, dir, extra)
	local out, skip = {}, false
	for _, a in ipairs(J.run.argv or {}) do
		if skip then
			skip = false
		elseif a == "--out" then
			skip = true
		elseif not a:find("^%-%-out=") then
			out[#out + 1] = a
		end
	end
	out[#out + 1] = "--out"
	out[#out + 1] = dir
	for _, a in ipairs(extra) do
		out[#out + 1] = a
	end
	return out
end

local function absolute(path)
	return path:sub(1, 1) == "/" and path or (lfs.currentdir() .. "/" .. path)
end

-- What would make resuming wrong: nil | message.
local function refusal(J, dir)
	if J.closed and J.closed ~= "interrupted" then
		return ("%s: the run ended (%s): there is nothing to resume"):format(dir, tostring(J.closed))
	elseif J.run.sim then
		return ("%s: the run was on the in-process virtual Batlab, which ended with it: it cannot be "
			.. "resumed (a dry run that can be resumed uses 'batlab sim --pty' and --port)"):format(dir)
	end
	return nil
end

-- The same procedure and settings as when the run started: nil | message.
local function changed(J, R)
	local now = journal.digest_file(R.script)
	if now ~= J.run.script_hash then
		return ("%s changed since the run started: resuming would not run the same test"):format(R.script)
	end
	local sf = J.run.settings_file
	if sf and journal.digest_file(sf) ~= J.run.settings_hash then
		return ("%s changed since the run started: resuming would not run the same test"):format(sf)
	end
	return nil
end

-- prepare(argv, dev, prepare_run, err) -> R | nil, exit code: the run as
-- its command line said, with R.resume (the journal) and R.dir.
function M.prepare(argv, dev, prepare_run, err)
	local dir, extra, given, want = nil, {}, {}, nil
	for _, a in ipairs(argv) do
		local opt, val = a:match("^%-%-(%a+)=(.*)$")
		if want then
			given[want], want = a, nil
		elseif opt == "db" or opt == "mqtt" then
			given[opt] = val
		elseif a == "--db" or a == "--mqtt" then
			want = a:sub(3)
		elseif a == "-h" or a == "--help" then
			io.stdout:write(M.USAGE)
			return nil, batlab.EXIT_OK
		elseif a == "--quiet" or a == "--json" then
			extra[#extra + 1] = a
		elseif a:sub(1, 1) == "-" or dir then
			err(("resume: unknown argument '%s' (see 'batlab resume --help')"):format(a))
			return nil, batlab.EXIT_USAGE
		else
			dir = a
		end
	end
	if want then
		err(("resume: --%s needs a URL"):format(want))
		return nil, batlab.EXIT_USAGE
	elseif not dir then
		err("resume: which run? (batlab resume RUN_DIR)")
		return nil, batlab.EXIT_USAGE
	end
	if dev.sim then
		err("resume: --sim starts new virtual Batlabs; a run goes on on its own devices")
		return nil, batlab.EXIT_USAGE
	end
	dir = absolute(dir)
	local J, lerr = load(dir)
	local why = J and refusal(J, dir) or lerr
	if why then
		err(why)
		return nil, batlab.EXIT_USAGE
	end
	-- The run's relative paths (procedure, settings) are the run's.
	lfs.chdir(J.run.cwd or ".")
	local d = J.run.dev or {}
	d.port, d.serial = dev.port or d.port, dev.serial or d.serial
	local R, code = prepare_run(J.run.mode, run_argv(J, dir, extra), d)
	if not R then
		return nil, code
	end
	why = changed(J, R)
	if why then
		err(why)
		return nil, batlab.EXIT_USAGE
	end
	R.resume, R.dir, R.lab_given = J, dir, given
	return R
end

-- ---- the files ----------------------------------------------------------------

-- A compressed time series (cells/<name>.csv.gz): what a crash left of
-- it is read (every row flushed before the crash; its last gzip member
-- has no end), cut back to its last whole line and written again as a
-- complete gzip file, so the recorder's next member follows a whole one
-- (after a member cut short, no reader would reach it). Always written
-- again, as the end of a member cannot be checked without reading it
-- all: resuming costs one recompression of the series.
local function tidy_gz(path)
	local zin = batlab.gzopen(path, "r")
	if not zin then
		return 0
	end
	local tmp = path .. ".tmp"
	local out = assert(batlab.gzopen(tmp, "w"))
	local lines, held, tail = 0, "", ""
	while true do
		local chunk, err = zin:read(1 << 20)
		if not chunk then
			assert(not err, err)
			break
		end
		local text = held .. chunk
		local cut = text:match(".*()\n")  -- where the last "\n" is
		if cut then
			local whole = text:sub(1, cut)
			assert(out:write(whole))
			lines = lines + select(2, whole:gsub("\n", ""))
			tail = (tail .. whole):sub(-4096)
			held = text:sub(cut + 1)
		else
			held = text
		end
	end
	zin:close()
	assert(out:close())
	assert(os.rename(tmp, path))
	return lines, tail:match("([^\n]*)\n$")
end

-- A file a crash may have cut in the middle of a line: cut back to its
-- last whole line. Returns its number of lines and the last line.
local function tidy(path)
	if path:sub(-3) == ".gz" then
		return tidy_gz(path)
	end
	local f = io.open(path, "rb")
	if not f then
		return 0
	end
	local lines, tail = 0, ""
	while true do
		local chunk = f:read(1 << 20)
		if not chunk then
			break
		end
		lines = lines + select(2, chunk:gsub("\n", ""))
		tail = (tail .. chunk):sub(-4096)
	end
	f:close()
	if tail ~= "" and tail:sub(-1) ~= "\n" then
		local text = fsutil.read_file(path)
		assert(fsutil.write_atomic(path, text:match("^(.*\n)") or ""))
	end
	return lines, tail:match("([^\n]*)\n[^\n]*$")
end

-- (what resume does to each file of the run, for tests/lua/test_gzip.lua)
M.tidy_file = tidy
M.recorded_argv = require("batlab.labresume").recorded_argv

-- The cells' files as run.json names them.
local function cell_files(dir)
	local text = fsutil.read_file(dir .. "/run.json")
	local ok, doc = pcall(require("cjson").decode, text or "")
	local files = {}
	for _, c in ipairs(ok and type(doc) == "table" and type(doc.cells) == "table" and doc.cells or {}) do
		files[c.name] = c.file
	end
	return files
end

-- The steps steps.csv has a row of: { ["cell\0step"] = true }. A crash
-- between a step's "end" in the journal and its row leaves one out.
local function written_steps(path)
	local rows = csv.parse(fsutil.read_file(path) or "")
	local col = {}
	for i, name in ipairs(rows[1] or {}) do
		col[name] = i
	end
	local out = {}
	for i = 2, #rows do
		local r = rows[i]
		if col.Cell and col.Step and r[col.Cell] and r[col.Step] then
			out[r[col.Cell] .. "\0" .. r[col.Step]] = true
		end
	end
	return out
end

local function tidy_all(R)
	local dir = R.dir
	local files = cell_files(dir)
	tidy(dir .. "/" .. journal.FILE) -- the next entry must start a line
	tidy(dir .. "/steps.csv")
	local written = written_steps(dir .. "/steps.csv")
	for _, c in ipairs(R.resume.cells) do
		-- (the name as the file has it: text a spreadsheet would run is escaped)
		local shown = csv.parse(csv.field(c.name) .. "\n")[1][1]
		for _, e in ipairs(c.done) do
			e.missing = type(e.step) == "number" and not written[shown .. "\0" .. ("%d"):format(e.step)]
		end
	end
	tidy(dir .. "/events.log")
	-- (not db-spool.sql: its binary rows hold any byte, newlines too; the
	-- sink cuts its torn last row itself when it opens it, dbsink.c)
	for entry in lfs.dir(dir) do
		if entry:find("^batlab%-log_.*%.csv$") then
			tidy(dir .. "/" .. entry)
		end
	end
	for _, c in ipairs(R.resume.cells) do
		c.file = dir .. "/" .. (files[c.name] or "cells/" .. fsutil.safe_name(c.name) .. ".csv")
		local lines, last = tidy(c.file)
		c.rows = math.max(lines - 1, 0)
		c.last_row_t = last and tonumber(last:match("^([^,]+)"))
	end
end

-- ---- the cells -------------------------------------------------------------------

-- What the interrupted step carries over: from the journal's last entry
-- of it, and for a charge or discharge from the device's counter, which
-- went on counting until the watchdog stopped the channel.
local function carry_of(c, ch, t)
	local o, at = c.open, c.at
	-- (the step's kind first: its first samples can be the step before's)
	local mode = (o.kind == "rest" and "IDLE") or (o.kind == "charge" and "CHARGE")
		or (o.kind == "discharge" and "DISCHARGE") or (at and at.mode) or c.mode_now
	local k = { step = o.step, start = o.start or o.t, ah = at and at.ah or 0, wh = at and at.wh or 0,
		time = at and at.step_time or 0, current = at and at.i,
		sign = mode == "DISCHARGE" and -1 or mode == "CHARGE" and 1 or 0 }
	if k.sign == 0 then -- a rest rested on while the host was gone
		k.time = math.max(t - k.start, k.time)
		return k
	end
	local before = o.carry_ah or 0
	if not o.started and not o.cleared then
		-- The crash came before the journal knew the device had started
		-- the step, and nothing cleared the counter before the step
		-- began (a journal of an older batlab, or a step that began while
		-- the step before still drove the channel): what the counter
		-- holds may be the step before's, so it is not counted.
		k.ah, k.wh, k.time = before, o.carry_wh or 0, o.carry_time or 0
		k.note = "the crash came as it started, after a step that still drove the channel: "
			.. "the device's counter is not counted"
		return k
	end
	if not o.started then
		-- "begin" without "started": the device may or may not have started
		-- the current before the crash. The counter was cleared before
		-- "begin" (batlab.journal clear_for_step), so whatever it holds,
		-- 0 or the charge that flowed until the watchdog stopped it, is
		-- this step's; ERROR too.
		k.ah, k.wh, k.time = before, o.carry_wh or 0, o.carry_time or 0
	end
	-- The device may have ended the step itself: its error bits say how.
	local errs = c.stop_errors or {}
	if #errs > 0 then
		local expected = k.sign > 0 and "VOLTAGE_LIMIT_CHG" or "VOLTAGE_LIMIT_DCHG"
		k.ended = (#errs == 1 and errs[1] == expected) and "voltage" or "safety"
		k.errors, k.v = k.ended == "safety" and errs or nil, c.v_now
	end
	local coulombs = ch.dev:charge(ch.index)
	local q = type(coulombs) == "number" and coulombs / 3600 or nil
	if q and q + 1e-9 >= k.ah - before then
		k.wh = k.wh + (q - (k.ah - before)) * (at and at.v or c.v or 0)
		k.ah = before + q
		k.note = o.started and "charge to the stop from the device's counter"
			or "the crash came as the step started: its charge from the device's counter"
	else
		k.note = "the device's counter was cleared: the charge after the last journal entry is not counted"
	end
	return k
end

-- Whether the cell on the channel is the journal's: nil | why not.
local function check_cell(c, ch)
	if not ch then
		return ("Batlab %d channel %d is not connected"):format(c.serial or -1, c.channel or -1)
	end
	local s, err, code = ch.ch:wait(10)
	if s and (s.mode_name == "CHARGE" or s.mode_name == "DISCHARGE") then
		-- still driven (the watchdog has not stopped it yet): stopped, so
		-- that the counter stays where the step left it
		c.mode_now = s.mode_name
		ch.ch:stop()
		s, err, code = ch.ch:wait(10)
	end
	if code == "EINTR" then
		return nil, true -- Ctrl-C: nothing is wrong with the cell
	elseif not s then
		return "no report from its channel: " .. tostring(err)
	end
	if s.mode_name == "NO_CELL" then
		return "there is no cell on its channel"
	end
	c.v_now = s.voltage
	if s.mode_name == "STOPPED" and c.mode_now == nil then -- stopped before we came
		c.stop_errors = s.error_names
	end
	-- After a current: the current went on until the watchdog stopped it,
	-- then the cell relaxed back, either way by up to a volt at high rates.
	local tol = c.driven and M.RELAX_MAX or M.VOLTAGE_TOLERANCE
	if c.v and math.abs(s.voltage - c.v) > tol then
		return ("its channel reads %.3f V where the journal last saw %.3f V%s: another cell?"):format(s.voltage,
			c.v, c.driven and (" at the end of a " .. c.driven:lower()) or "")
	end
	return nil
end

local function restore_impedance(rec_imp, c)
	for _, z in ipairs(c.allz) do
		rec_imp.values[#rec_imp.values + 1] = z.ohms
		rec_imp.charges[#rec_imp.charges + 1] = z.q
	end
end

-- A cell that does not run again (its procedure had ended, or it cannot
-- go on): its steps and result as the journal has them.
local function settled(R, c, why)
	local cw = assert(R.run:cell(c.name, { serial = c.serial, channel = c.channel }))
	for _, e in ipairs(c.done) do
		cw:step(e.row, not e.missing)
	end
	local f = c.finished or {}
	local x = { name = c.name, cw = cw, cell = { records = f.records or {} },
		rec = { impedance = { values = {}, charges = {} } }, interrupted = why,
		stats = { rows = c.rows, charge_min = c.qmin, charge_max = c.qmax },
		result = f.result and { f.result[1], f.result[2], f.result[3] }, failure = f.failure }
	restore_impedance(x.rec.impedance, c)
	if why then
		cw:event("not resumed: " .. why)
		R.journal:write({ ev = "done", cell = c.name, failure = "interrupted: " .. why }, true)
	end
	R.cells[#R.cells + 1] = x
end

-- The cells: settled ones into R.cells, the others into R.plan; cells
-- that never had a channel wait in R.queue as before. false: a signal
-- (Ctrl-C) came while a cell was being checked.
local function place(R, t)
	local by_key = {}
	for _, e in ipairs(placement.all_channels(R.pool)) do
		by_key[("%d:%d"):format(e.dev.sn, e.index)] = e
	end
	R.plan, R.queue = {}, {}
	local seen = {}
	for _, c in ipairs(R.resume.cells) do
		seen[c.name] = true
		local ch = by_key[("%d:%d"):format(c.serial or -1, c.channel or -1)]
		local why, interrupted
		if not c.finished then
			why, interrupted = check_cell(c, ch)
		end
		if interrupted then
			return false
		elseif c.finished or why then
			settled(R, c, why)
		else
			c.carry = c.open and carry_of(c, ch, t)
			R.plan[#R.plan + 1] = { ch = ch, name = c.name, replay = c }
		end
	end
	local _, left = placement.assign(R.o, placement.all_channels(R.pool), R.settings)
	for _, name in ipairs(type(left) == "table" and left or {}) do
		if not seen[name] then
			R.queue[#R.queue + 1] = name
		end
	end
	return true
end

-- attach(R, c, a): a resumed cell (runner's new_cell) gets its replay.
function M.attach(R, c, a)
	local j = a.replay
	restore_impedance(c.rec.impedance, j)
	c.earlier = { rows = j.rows, charge_min = j.qmin, charge_max = j.qmax }
	c.cell.replay = replay.new {
		done = (function()
			local list = {}
			for i, e in ipairs(j.done) do
				list[i] = { row = e.row, sum = e.sum, v = e.v, missing = e.missing }
			end
			return list
		end)(),
		open = j.open and { step = j.open.step, name = j.open.name, resumable = j.open.resumable,
			carry = j.carry },
		zs = j.zs, state = j.state,
		on_interrupt = function(why)
			c.interrupted = why
			c.cw:event("not resumed: " .. why)
		end,
		on_live = function(msg)
			c.cw:event("resumed: " .. msg)
		end,
	}
end

-- stats(c, st) -> the time series' stats across the crash.
function M.stats(c, st)
	local e = c.earlier
	if not e then
		return st
	end
	local out = { rows = (st.rows or 0) + (e.rows or 0) }
	local lo = { st.charge_min, e.charge_min }
	local hi = { st.charge_max, e.charge_max }
	for _, v in pairs(lo) do
		out.charge_min = math.min(out.charge_min or v, v)
	end
	for _, v in pairs(hi) do
		out.charge_max = math.max(out.charge_max or v, v)
	end
	return out
end

-- A run whose journal was not closed: the host was killed (kill -9, a
-- crash, a power cut), or a signal came while it could not yet, or no
-- longer, take it (before its devices were open, or as it closed the run).
local UNCLOSED = "a crash (the run was not closed: the host was killed, lost its power, or was "
	.. "interrupted before it could close the run)"

-- open(R, parts) -> true | nil, code: devices, files, cells.
function M.open(R, P)
	local J, o = R.resume, R.o
	local ok, code = P.open_pool(R, { port = o.port, serial = o.serial })
	if not ok then
		return nil, code
	end
	-- Test time goes on from the run's start on the wall clock.
	local t = math.max(os.time() - J.run.epoch, J.last_t + 1)
	R.epoch, R.t0, R.resumed_at = J.run.epoch, batlab.now() - t, t
	R.deadline = o.timeout and R.t0 + o.timeout or nil
	tidy_all(R)
	local run, rerr = results.reopen(R.dir, { clock = function() return batlab.now() - R.t0 end })
	local j, jerr
	if run then
		j, jerr = journal.open(R.dir, journal.wants_sync(o))
	end
	if not j then
		P.err(rerr or jerr)
		R.pool:close()
		return nil, batlab.EXIT_USAGE
	end
	R.run, R.journal = run, j
	-- the run's database and broker, caught up with what the crash cut
	local lab, lerr = require("batlab.labsink").open(R)
	if lerr then -- (nothing written yet: the run stays as the crash left it)
		P.err(lerr)
		R.pool:close()
		return nil, batlab.EXIT_USAGE
	end
	R.lab = lab
	local gap = ("resumed after %s: the journal's last entry was at %.1f s; going on at %.1f s "
		.. "(a gap of %.1f s)"):format(J.closed and "an interruption (Ctrl-C)" or UNCLOSED, J.last_t, t,
		t - J.last_t)
	run:event(gap, t)
	j:write({ ev = "resume", t = t, gap_from = J.last_t }, true)
	local resumes = type(run.meta.resumes) == "table" and run.meta.resumes or {}
	resumes[#resumes + 1] = { at_s = t, gap_from_s = J.last_t, gap_s = t - J.last_t }
	run:write_meta({ resumes = resumes })
	local s = R.settings
	P.open_lexcelon(R, run, (s and s.cellPlaylistName) or R.proc.name or "run")
	for _, c in ipairs(J.cells) do
		if c.last_row_t then
			run:event(("[%s] rows stop at %.3f s and go on from %.1f s"):format(c.name, c.last_row_t, t), t)
		end
	end
	if place(R, t) == false then
		-- The cells were not checked: nothing is settled, nothing runs; the
		-- run stays one to resume, closed "interrupted".
		run:event("interrupted while the cells were checked: nothing went on", t)
		j:write({ ev = "closed", outcome = "interrupted" })
		j:close()
		run:close("interrupted")
		R.pool:close()
		return nil, batlab.EXIT_INTERRUPTED
	end
	P.opened(R)
	return true
end

return M
