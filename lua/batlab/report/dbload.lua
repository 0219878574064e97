-- batlab.report.dbload - what a report needs of a run, read from the
-- lab's PostgreSQL database (docs/database.md) instead of its directory:
-- the same in-memory run as batlab.report.load builds, so the same code
-- draws the same page. The samples are read through a cursor, a batch
-- at a time, and downsampled as they come: bounded memory, as from files.
--
--   local dbload = require "batlab.report.dbload"
--   local run, err, code = dbload.run(url, "bench3:capacity-20260301-101500:1772359300")
--
-- RUN is a run id (`batlab runs` lists them) or the name of its results
-- directory when one run has it. Errors: nil, message, "usage" (no such
-- run, several) or "server" (cannot connect, a query refused).

local batlab = require "batlab"
local cjson = require "cjson"
local columns = require "batlab.columns"
local load = require "batlab.report.load"

local M = {}

-- Rows fetched from the samples' cursor at a time.
local FETCH = 5000

local decoder = cjson.new()

-- The columns schema version 2 added are read through to_jsonb(row),
-- which gives NULL where a version-1 database has no such column.
local RUN_SQL = [[
SELECT r.run_id, r.host, r.procedure, r.script, extract(epoch FROM r.started_at), r.virtual_time,
  r.run_dir, to_jsonb(r) ->> 'run_json', e.outcome, extract(epoch FROM e.ended_at - r.started_at)
FROM batlab.runs r LEFT JOIN batlab.run_ends e ON e.run_id = r.run_id
WHERE r.run_id = $1 OR substring(r.run_dir FROM '([^/]+)/*$') = $1
ORDER BY r.started_at, r.run_id]]

local CELLS_SQL = [[
SELECT cell, serial, channel FROM batlab.cells WHERE run_id = $1
ORDER BY to_jsonb(cells) ->> 'ordinal' IS NULL, (to_jsonb(cells) ->> 'ordinal')::integer, serial, channel, cell]]

local STEPS_SQL = [[
SELECT cell, cycle, cycle_kind, step, step_name, kind, start_s, duration_s, end_reason, charge_ah,
  energy_wh, avg_v, avg_i, temp_start, temp_end, temp_end - temp_start, impedance_ohm
FROM batlab.steps WHERE run_id = $1 ORDER BY start_s, cell, step]]
-- the query's columns, by steps.csv's keys (batlab.columns)
local STEP_KEYS = { "cell", "cycle", "cycle_kind", "step", "step_name", "kind", "start", "duration",
	"end_reason", "charge_ah", "energy_wh", "avg_v", "avg_i", "temp_start", "temp_end", "temp_rise",
	"impedance" }

local SAMPLES_SQL = [[
DECLARE samples NO SCROLL CURSOR FOR SELECT t_s, step, voltage, current, temp_c, charge_ah
FROM batlab.samples WHERE run_id = $1 AND cell = $2 ORDER BY seq]]

local function json(text)
	if not text then
		return nil
	end
	local ok, v = pcall(decoder.decode, text)
	return ok and type(v) == "table" and v or nil
end

-- A steps row as steps.csv has it: its column names, its decimals.
local function step_row(r, cell)
	local by = {}
	for i, k in ipairs(STEP_KEYS) do
		by[k] = r[i]
	end
	local row = {}
	for _, col in ipairs(columns.STEP_COLUMNS) do
		local name, key, fmt = col[1], col[2], col[3]
		local v = by[key]
		if key == "serial" or key == "channel" then
			v = cell and tostring(cell[key]) or ""
		elseif v and fmt == "%d" then
			v = ("%d"):format(math.tointeger(tonumber(v)) or 0)
		elseif v and type(fmt) == "string" and fmt ~= "s" then
			v = fmt:format(tonumber(v))
		end
		row[name] = v or ""
	end
	return row
end

-- The run's row -> run.meta as run.json would have it at the end.
local function meta_of(r)
	local meta = json(r[8]) or { procedure = r[3], script = r[4], virtual_time = r[6] == "t" }
	meta.format = "batlab-run"
	meta.start_epoch = tonumber(r[5])
	meta.start = columns.iso_time(meta.start_epoch)
	meta.duration_s = tonumber(r[10])
	meta.outcome = r[9] and { status = r[9] } or nil
	meta.cells = {}
	return meta
end

local function find_run(c, id)
	local rows, err = c:query(RUN_SQL, { id })
	if not rows then
		return nil, err, "server"
	elseif #rows == 0 then
		return nil, ("no run '%s' in the database (see 'batlab runs')"):format(id), "usage"
	elseif #rows > 1 then
		local ids = {}
		for _, r in ipairs(rows) do
			ids[#ids + 1] = r[1]
		end
		return nil, ("'%s' names %d runs: %s; give the run id"):format(id, #rows, table.concat(ids, ", ")),
			"usage"
	end
	return rows[1]
end

-- The run, its cells (in run.json's order), steps and summaries.
local function read_run(c, id)
	local r, err, code = find_run(c, id)
	if not r then
		return nil, err, code
	end
	local run_id = r[1]
	local run = { dir = r[7] or run_id, run_id = run_id, meta = meta_of(r), notes = {}, cells = {},
		steps = {}, summary_cells = {}, source = ("the database: run %s, host %s"):format(run_id, r[2]) }
	local q = {}
	for _, k in ipairs({ "cells", "steps", "summaries" }) do
		local sql = k == "cells" and CELLS_SQL or k == "steps" and STEPS_SQL
			or "SELECT summary FROM batlab.summaries WHERE run_id = $1 ORDER BY cell"
		q[k], err = c:query(sql, { run_id })
		if not q[k] then
			return nil, err, "server"
		end
	end
	local by_name = {}
	for _, cr in ipairs(q.cells) do
		local info = { name = cr[1], serial = math.tointeger(tonumber(cr[2])), channel = math.tointeger(tonumber(cr[3])) }
		by_name[cr[1]] = info
		run.meta.cells[#run.meta.cells + 1] = info
	end
	for _, sr in ipairs(q.steps) do
		local row = step_row(sr, by_name[sr[1]])
		run.steps[row.Cell] = run.steps[row.Cell] or {}
		table.insert(run.steps[row.Cell], row)
	end
	for _, s in ipairs(q.summaries) do
		run.summary_cells[#run.summary_cells + 1] = json(s[1])
	end
	if #q.summaries == 0 then
		run.notes[#run.notes + 1] = "the database has no summaries for this run (it did not finish?)"
	end
	return run
end

-- One cell's time series from batlab.samples, through a cursor.
local function read_series(c, run, cell, want)
	local ts = load.new_series(want)
	local ok, err = c:query("BEGIN")
	ok, err = ok and c:query(SAMPLES_SQL, { run.run_id, cell.name })
	while ok do
		local rows
		rows, err = c:query(("FETCH %d FROM samples"):format(FETCH))
		ok = rows
		for _, r in ipairs(rows or {}) do
			ts.add({ time = r[1], step = r[2], v = r[3], i = r[4], temp = r[5], q = r[6] })
		end
		if rows and #rows < FETCH then
			break
		end
	end
	c:query(ok and "COMMIT" or "ROLLBACK")
	if not ok then
		return nil, err
	end
	return ts
end

-- The impedances the database keeps: one per step (the median of its
-- measurements), drawn at the step's middle.
local function step_impedances(cell, run)
	local ts = cell.ts
	for _, s in ipairs(cell.steps) do
		local z, t0, d = tonumber(s["Impedance / Ohm"]), tonumber(s["Start / s"]), tonumber(s["Duration / s"])
		if z and t0 then
			ts.zt[#ts.zt + 1], ts.z[#ts.z + 1] = t0 + (d or 0) / 2, z
		end
	end
	if #ts.z > 0 and not run.z_noted then
		run.z_noted = true
		run.notes[#run.notes + 1] = "impedance: one point per step (the median of its measurements, batlab.steps)"
	end
end

local function read_cells(c, run)
	for _, info in ipairs(run.meta.cells) do
		local cell = { name = info.name, info = info, steps = run.steps[info.name] or {}, file = "batlab.samples" }
		for _, s in ipairs(run.summary_cells) do
			if s.name == info.name then
				cell.summary = s
			end
		end
		local want
		want, cell.discharges = load.pick_discharges(cell.steps, 8)
		local ts, err = read_series(c, run, cell, want)
		if not ts then
			return nil, err
		end
		cell.ts = ts
		step_impedances(cell, run)
		run.cells[#run.cells + 1] = cell
	end
	return true
end

-- events.log's lines again: "<date> <t> s  [CELL] text".
local function read_events(c, run)
	local rows, err = c:query(("SELECT t_s, cell, message, count(*) OVER () FROM batlab.events WHERE run_id = $1"
		.. " ORDER BY seq LIMIT %d"):format(load.EVENTS_MAX), { run.run_id })
	if not rows then
		return nil, err
	end
	local iso = columns.iso_time
	run.events, run.events_more = {}, rows[1] and (tonumber(rows[1][4]) - #rows) or 0
	for _, r in ipairs(rows) do
		local t = tonumber(r[1]) or 0
		run.events[#run.events + 1] = ("%s %12.3f s  %s%s"):format(iso(run.meta.start_epoch + t), t,
			r[2] and ("[" .. r[2] .. "] ") or "", r[3] or "")
	end
	if #rows == 0 then
		run.notes[#run.notes + 1] = "the database has no events for this run"
	end
	return true
end

-- run(url, id) -> the run as batlab.report.load.run gives it, with
-- run.source saying where it came from | nil, message, "usage"|"server".
function M.run(url, id)
	local c, err = batlab.db_connect(url)
	if not c then
		return nil, err, "server"
	end
	local run, code
	run, err, code = read_run(c, id)
	if run then
		local ok
		ok, err = read_cells(c, run)
		if ok then
			ok, err = read_events(c, run)
		end
		if not ok then
			run, code = nil, "server"
		end
	end
	c:close()
	return run, err, code
end

return M
