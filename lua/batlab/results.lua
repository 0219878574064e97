-- batlab.results - one directory per run (docs/results.md).
--
--   run.json          settings, procedure, devices, versions, cells, start,
--                     end, outcome (rewritten atomically at close)
--   cells/<name>.csv  one time series per cell, self-describing columns
--                     (cells/<name>.csv.gz with meta.gzip: the same bytes
--                     gzip-compressed)
--   steps.csv         one row per finished step, all cells
--   summary.json/.csv one summary per cell (verdict, capacity, ...)
--   events.log        timestamped lines
--   batlab-log_<playlist>.csv  Lexcelon's format (run:lexcelon_log)
--
-- Rows are flushed as they are written. Numbers have a fixed format per
-- column and times come from the caller (start epoch + test time), so two
-- runs with the same inputs give the same bytes.
--
-- This module is the writer. The columns are batlab.columns, the summary
-- math batlab.analysis, the JSON batlab.json; their functions are here too
-- under the names callers know (results.summarize, results.json_encode...).
--
--   local results = require "batlab.results"
--   local run = assert(results.open(results.default_dir("batlab-runs", "cap", epoch),
--                                   { start_time = epoch, settings = s, procedure = "cycle-test" }))
--   local cw = run:cell("A1", { serial = 262209, channel = 0 })
--   cw:sample{ time = 1, step_time = 1, cycle = 1, cycle_kind = "measurement", step = 1,
--              step_name = "DISCHARGE", mode_name = "DISCHARGE", voltage = 3.9, current = -2,
--              temp_c = 25, charge_ah = 0.0005, energy_wh = 0.002, vcc = 5.0 }
--   cw:step{ cycle = 1, step = 1, step_name = "DISCHARGE", kind = "discharge", ... }
--   cw:summary{ threshold = s.acceptableImpedanceThreshold }
--   run:close("completed")

local batlab = require "batlab"
local analysis = require "batlab.analysis"
local columns = require "batlab.columns"
local fsutil = require "batlab.fsutil"
local json = require "batlab.json"
local lexcelon_log = require "batlab.lexcelon_log"

local M = {}

M.FORMAT_VERSION = 1

-- The JSON writer (batlab.json), the columns (batlab.columns) and the
-- summary math (batlab.analysis), under the names callers know.
local NULL = json.null
M.null, M.object, M.json_encode = json.null, json.object, json.encode
M.iso_time, M.names_text, M.format_row, M.header = columns.iso_time, columns.names_text,
	columns.format_row, columns.header
M.SAMPLE_COLUMNS, M.STEP_COLUMNS, M.SUMMARY_COLUMNS = columns.SAMPLE_COLUMNS, columns.STEP_COLUMNS,
	columns.SUMMARY_COLUMNS
M.median, M.median_mid, M.step_kind, M.summarize = analysis.median, analysis.median_mid,
	analysis.step_kind, analysis.summarize
M.has_safety_stop, M.VERDICTS = analysis.has_safety_stop, analysis.VERDICTS

local finite, header, format_row = analysis.finite, columns.header, columns.format_row

-- default_dir(base, name, time) -> "<base>/<safe name>-YYYYmmdd-HHMMSS"
-- (UTC, so names do not depend on the time zone). base defaults to
-- "batlab-runs", name to "run", time (epoch seconds) to os.time().
function M.default_dir(base, name, time)
	base = base or "batlab-runs"
	local stamp = os.date("!%Y%m%d-%H%M%S", math.floor(time or os.time()))
	return base .. "/" .. fsutil.safe_name(name or "run") .. "-" .. stamp
end

--------------------------------------------------------------------------
-- Run and cell writers

local Run = {}
Run.__index = Run
Run.__name = "batlab.results.Run"

local Cell = {}
Cell.__index = Cell
Cell.__name = "batlab.results.Cell"

-- Files this module writes: with meta.overwrite these are removed from
-- an existing run directory first (nothing else is touched).
local OWN_FILES = { "run.json", "steps.csv", "summary.json", "summary.csv", "events.log" }

local function remove_own(dir)
	local lfs = require "lfs"
	for _, f in ipairs(OWN_FILES) do
		os.remove(dir .. "/" .. f)
		os.remove(dir .. "/" .. f .. ".tmp")
	end
	for entry in lfs.dir(dir) do
		if entry:find("^batlab%-log_.*%.csv$") then
			os.remove(dir .. "/" .. entry)
		end
	end
	if fsutil.is_dir(dir .. "/cells") then
		for entry in lfs.dir(dir .. "/cells") do
			if entry:find("%.csv$") or entry:find("%.csv%.gz$") then
				os.remove(dir .. "/cells/" .. entry)
			end
		end
	end
end

local CONTROL = { overwrite = true, clock = true, start_time = true, gzip = true }

-- A CSV file with its header line; a ".gz" path is a gzip file whose
-- first member is the header (the recorder appends the rows as another).
local function open_csv(path, columns)
	local f, err
	if path:sub(-3) == ".gz" then
		f, err = batlab.gzopen(path, "w")
	else
		f, err = io.open(path, "wb")
	end
	if not f then
		return nil, err
	end
	f:write(header(columns))
	f:flush()
	return f
end

-- open(dir, meta) -> run | nil, err
--
-- meta: anything for run.json (settings, settings_file, warnings,
-- procedure, devices, versions, ...) plus
--   start_time  epoch of test time 0 (default os.time()); Date Time columns
--               and run.json's start/end are computed from it
--   clock       function() -> test time in s now (default batlab.now()
--               since open); used for events without a time and the end
--   overwrite   reuse an existing non-empty directory (our files in it
--               are replaced)
--   gzip        the cells' time series gzip-compressed: cells/<name>.csv.gz
function M.open(dir, meta)
	meta = meta or {}
	if type(dir) ~= "string" or dir == "" then
		return nil, "results: run directory must be a non-empty string"
	end
	local mode = require("lfs").attributes(dir, "mode")
	if mode ~= nil and mode ~= "directory" then
		return nil, dir .. ": exists and is not a directory"
	end
	if mode == "directory" then
		local empty = fsutil.is_empty_dir(dir)
		if not empty then
			if not meta.overwrite then
				return nil, dir .. ": run directory exists and is not empty (choose another or overwrite it)"
			end
			remove_own(dir)
		end
	end
	local ok, err = fsutil.mkdir_p(dir .. "/cells")
	if not ok then
		return nil, err
	end

	local clock = meta.clock
	if clock == nil then
		local okb, batlab = pcall(require, "batlab")
		if okb and batlab.now then
			local t0 = batlab.now()
			clock = function() return batlab.now() - t0 end
		else
			clock = function() return 0 end
		end
	end

	local self = setmetatable({
		dir = dir, start_time = meta.start_time or os.time(), clock = clock,
		meta = M.object({}), cells = {}, used = {}, logs = {}, closed = false,
		series_ext = meta.gzip and ".csv.gz" or ".csv",
	}, Run)
	for k, v in pairs(meta) do
		if not CONTROL[k] then
			self.meta[k] = v
		end
	end
	local steps, serr = open_csv(dir .. "/steps.csv", M.STEP_COLUMNS)
	if not steps then
		return nil, serr
	end
	self.steps_f = steps
	local ev, eerr = io.open(dir .. "/events.log", "wb")
	if not ev then
		steps:close()
		return nil, eerr
	end
	self.events_f = ev
	local wok, werr = self:_write_run_json()
	if not wok then
		steps:close()
		ev:close()
		return nil, werr
	end
	return self
end

-- JSON null from cjson (a light userdata) as this module's null.
local function from_json(v)
	if v == require("cjson").null then
		return NULL
	elseif type(v) == "table" then
		for k, x in pairs(v) do
			v[k] = from_json(x)
		end
	end
	return v
end

-- What run.json holds that the writer computes, not the caller's metadata.
local GENERATED = { format = true, format_version = true, cells = true, start_epoch = true,
	start = true, ["end"] = true, duration_s = true, outcome = true, files = true }

-- reopen(dir, meta) -> run | nil, err: a run directory that a crashed
-- run left, to go on writing it (`batlab resume`): its metadata from
-- run.json (meta's keys added), steps.csv and events.log appended to, its
-- cells' time series found again by name (run:cell), its Lexcelon logs
-- appended to without a second header.
function M.reopen(dir, meta)
	local text, err = fsutil.read_file(dir .. "/run.json")
	if not text then
		return nil, err
	end
	local ok, doc = pcall(require("cjson").decode, text)
	if not ok or type(doc) ~= "table" or doc.format ~= "batlab-run" then
		return nil, dir .. "/run.json: not a batlab run (" .. tostring(ok and "format" or doc) .. ")"
	end
	doc = from_json(doc)
	local self = setmetatable({
		dir = dir, start_time = doc.start_epoch, clock = meta.clock or function() return 0 end,
		meta = M.object({}), cells = {}, used = {}, logs = {}, closed = false, earlier = {},
	}, Run)
	for k, v in pairs(doc) do
		if not GENERATED[k] then
			self.meta[k] = v
		end
	end
	for k, v in pairs(meta) do
		if not CONTROL[k] then
			self.meta[k] = v
		end
	end
	for _, c in ipairs(type(doc.cells) == "table" and doc.cells or {}) do
		self.earlier[c.name] = c
	end
	self.steps_f, err = io.open(dir .. "/steps.csv", "ab")
	if not self.steps_f then
		return nil, err
	end
	self.events_f, err = io.open(dir .. "/events.log", "ab")
	if not self.events_f then
		self.steps_f:close()
		return nil, err
	end
	return self
end

function Run:path(rel)
	return self.dir .. "/" .. rel
end

function Run:now()
	local ok, t = pcall(self.clock)
	if ok and finite(t) then
		return t
	end
	return 0
end

function Run:_run_json()
	local doc = {}
	for k, v in pairs(self.meta) do
		doc[k] = v
	end
	doc.format = "batlab-run"
	doc.format_version = M.FORMAT_VERSION
	if doc.versions == nil then
		local ok, batlab = pcall(require, "batlab")
		doc.versions = M.object({ batlab = ok and batlab.VERSION or NULL, lua = _VERSION })
	end
	local cells = {}
	for i, c in ipairs(self.cells) do
		local entry = M.object({})
		for k, v in pairs(c.info) do
			entry[k] = v
		end
		entry.name, entry.file = c.name, "cells/" .. c.file
		cells[i] = entry
	end
	doc.cells = cells
	doc.start_epoch = self.start_time
	doc.start = M.iso_time(self.start_time)
	doc["end"] = self.end_time and M.iso_time(self.start_time + self.end_time) or NULL
	doc.duration_s = self.end_time or NULL
	doc.outcome = self.outcome or NULL
	local files = { "run.json", "steps.csv", "summary.json", "summary.csv", "events.log" }
	for _, c in ipairs(self.cells) do
		files[#files + 1] = "cells/" .. c.file
	end
	for _, l in ipairs(self.logs) do
		files[#files + 1] = l.rel
	end
	doc.files = files
	return doc
end

function Run:_write_run_json()
	if self.meta_held then -- adding cells in a batch: once at the end
		self.meta_dirty = true
		return true
	end
	return fsutil.write_atomic(self:path("run.json"), M.json_encode(self:_run_json()))
end

-- hold_meta() ... release_meta() -> true | nil, err: run.json is written
-- once at the release, not for every cell added in between (a run of 256
-- cells rewrote it 256 times, each time with every cell in it).
function Run:hold_meta()
	self.meta_held = true
end

function Run:release_meta()
	self.meta_held = nil
	if self.meta_dirty then
		self.meta_dirty = nil
		return self:_write_run_json()
	end
	return true
end

-- write_meta(tbl) -> true | nil, err: merge tbl into the metadata and
-- rewrite run.json (atomically).
function Run:write_meta(tbl)
	for k, v in pairs(tbl or {}) do
		if not CONTROL[k] then
			self.meta[k] = v
		end
	end
	return self:_write_run_json()
end

-- event(text [, time]) -> true | nil, err. One line per event in
-- events.log: "<date UTC> <test time> s  <text>"; time defaults to the
-- run's clock. Lines after the first of a multi-line text are indented.
function Run:event(text, time)
	if self.closed then
		return nil, self.dir .. ": run is closed"
	end
	time = finite(time) and time or self:now()
	local body = tostring(text):gsub("\r?\n", "\n    ")
	local line = string.format("%s %12.3f s  %s\n", M.iso_time(self.start_time + time), time, body)
	local ok, err = self.events_f:write(line)
	if not ok then
		return nil, err
	end
	self.events_f:flush()
	return true
end

-- cell(name, info) -> cell writer | nil, err. info: serial, channel (and
-- anything else for run.json's cells entry). The file is
-- cells/<safe name>.csv (.csv.gz with open's gzip), made unique within
-- the run; a resumed run's cell goes on in the file run.json names.
function Run:cell(name, info)
	if self.closed then
		return nil, self.dir .. ": run is closed"
	end
	info = info or {}
	local file, f, err
	local earlier = self.earlier and self.earlier[tostring(name)]
	if earlier then -- a resumed run: the rows go on in the same file
		file = earlier.file:gsub("^cells/", "")
		self.used[file:lower()] = true
	else
		file = fsutil.unique_name(fsutil.safe_name(name), self.used, self.series_ext or ".csv")
		f, err = open_csv(self:path("cells/" .. file), M.SAMPLE_COLUMNS)
		if not f then
			return nil, err
		end
	end
	local cw = setmetatable({
		run = self, name = tostring(name), file = file, f = f, info = info,
		record = { name = tostring(name), serial = info.serial, channel = info.channel,
			steps = {}, impedance = { values = {}, charges = {} } },
		closed = false, rows = 0,
	}, Cell)
	self.cells[#self.cells + 1] = cw
	self:_write_run_json()
	return cw
end

-- series() -> path. The cell's time series is written, one row per
-- sample, by a recorder in C (batlab.recorder, through batlab.recording)
-- that appends to this file; the writer keeps only the header it wrote.
function Cell:series()
	fsutil.close_once(self)
	return self.run:path("cells/" .. self.file)
end

-- samples(stats, impedance): what the time series held, for the summary:
-- the recorder's stats (rows, charge_min, charge_max: |Ah|) and the
-- impedance measurements ({ values = {...}, charges = {...} }).
function Cell:samples(stats, impedance)
	self.rows = stats.rows or 0
	self.record.charge_min, self.record.charge_max = stats.charge_min, stats.charge_max
	if impedance then
		self.record.impedance = impedance
	end
end

-- step(summary [, known]) -> true | nil, err. One row of steps.csv for
-- this cell (known: already there, from before a crash); the summary is
-- kept for the cell's summary. temp_rise and kind are
-- filled in when missing.
function Cell:step(st, known)
	if self.run.closed then
		return nil, self.run.dir .. ": run is closed"
	end
	local row = {}
	for k, v in pairs(st) do
		row[k] = v
	end
	row.cell, row.serial, row.channel = self.name, self.info.serial, self.info.channel
	row.kind = M.step_kind(st)
	if not finite(row.temp_rise) and finite(row.temp_end) and finite(row.temp_start) then
		row.temp_rise = row.temp_end - row.temp_start
	end
	if not known then -- known: a step of a resumed run, written before the crash
		local ok, err = self.run.steps_f:write(format_row(M.STEP_COLUMNS, row, self.run))
		if not ok then
			return nil, err
		end
		self.run.steps_f:flush()
	end
	self.record.steps[#self.record.steps + 1] = row
	return true
end

-- event(text [, time]): a run event prefixed with "[cell name]".
function Cell:event(text, time)
	return self.run:event("[" .. self.name .. "] " .. tostring(text), time)
end

local SUMMARY_CONTROL = { verdict = true, reason = true, error = true, complete = true, threshold = true }

-- summary(tbl) -> summary table. Computes the cell's summary from its
-- steps and impedance samples (results.summarize), with tbl's verdict,
-- reason, error, complete, threshold (ohm; default the run's
-- settings.acceptableImpedanceThreshold); other fields of tbl are added
-- as they are. summary.json and summary.csv are rewritten at once.
function Cell:summary(tbl)
	tbl = tbl or {}
	local opts = {}
	for k in pairs(SUMMARY_CONTROL) do
		opts[k] = tbl[k]
	end
	if opts.threshold == nil then
		local s = self.run.meta.settings
		opts.threshold = type(s) == "table" and s.acceptableImpedanceThreshold or nil
	end
	local sum = M.summarize(self.record, opts)
	for k, v in pairs(tbl) do
		if not SUMMARY_CONTROL[k] then
			sum[k] = v
		end
	end
	self.summary_data = sum
	self.run:_write_summaries()
	return sum
end

function Cell:close()
	return fsutil.close_once(self)
end

-- The fields every cell has in summary.json (null when unknown).
M.SUMMARY_FIELDS = {
	"name", "serial", "channel", "verdict", "reason", "cycles", "capacity_ah", "capacity_c",
	"capacity_min_ah", "capacity_max_ah", "capacity_cycles", "energy_wh", "coulombic_efficiency",
	"avg_voltage", "temp_rise_c", "impedance_ohm", "impedance_samples", "impedance_threshold",
	"impedance_pass", "cycles_completed", "safety_stops", "safety_stop_count", "steps",
	"capacity_complete", "capacity_note", "coulombic_efficiency_note",
}
local CYCLE_FIELDS = { "cycle", "kind", "charge_ah", "discharge_ah", "charge_wh", "discharge_wh",
	"coulombic_efficiency", "energy_efficiency", "safety_stop" }

local function with_nulls(t, fields)
	local out = M.object({})
	for k, v in pairs(t) do
		out[k] = v
	end
	for _, k in ipairs(fields) do
		if out[k] == nil then
			out[k] = NULL
		end
	end
	return out
end

-- A cell's entry in summary.json (encoded as it sits there: depth 2) and
-- its row of summary.csv.
local function summary_entries(run, cw, sum)
	local doc = with_nulls(sum, M.SUMMARY_FIELDS)
	local cyc = {}
	for i, c in ipairs(sum.cycles or {}) do
		cyc[i] = with_nulls(c, CYCLE_FIELDS)
	end
	doc.cycles = cyc
	doc.file = "cells/" .. cw.file
	local row = {}
	for k, v in pairs(sum) do
		row[k] = v
	end
	if row.impedance_pass ~= nil then
		row.impedance_pass = row.impedance_pass and "true" or "false"
	end
	return json.encode_at(doc, 2), format_row(M.SUMMARY_COLUMNS, row, run)
end

function Run:_write_summaries(final_reason)
	local cells, rows = {}, { header(M.SUMMARY_COLUMNS) }
	for _, cw in ipairs(self.cells) do
		local sum = cw.summary_data
		if not sum and final_reason then
			sum = M.summarize(cw.record, { complete = false, reason = final_reason,
				threshold = type(self.meta.settings) == "table" and self.meta.settings.acceptableImpedanceThreshold or nil })
			cw.summary_data = sum
		end
		if sum and cw.summary_of ~= sum then
			-- a cell's entries are made once per summary: a lab of many
			-- cells rewrites the files at every cell's end
			cw.summary_of = sum
			cw.summary_json, cw.summary_row = summary_entries(self, cw, sum)
		end
		if sum then
			cells[#cells + 1] = json.raw(cw.summary_json)
			rows[#rows + 1] = cw.summary_row
		end
	end
	local doc = { format = "batlab-summary", format_version = M.FORMAT_VERSION, cells = cells }
	local ok1, e1 = fsutil.write_atomic(self:path("summary.json"), M.json_encode(doc))
	local ok2, e2 = fsutil.write_atomic(self:path("summary.csv"), table.concat(rows))
	if not ok1 then
		return nil, e1
	end
	if not ok2 then
		return nil, e2
	end
	return true
end

-- lexcelon_log(playlist, settings_text [, opts]) -> log | nil, err.
-- Opens batlab-log_<playlist>.csv in the run directory (opts.cell adds
-- "_<cell>": the per-cell file, header only when settings_text is nil),
-- timestamps from the run's start; closed by run:close.
function Run:lexcelon_log(playlist, settings_text, opts)
	opts = opts or {}
	local base = "batlab-log_" .. (playlist or "DefaultPlaylist")
	if opts.cell then
		base = base .. "_" .. opts.cell
	end
	local file = fsutil.unique_name(fsutil.safe_name(base, 180), self.used, ".csv")
	local again = self.earlier ~= nil and fsutil.exists(self:path(file)) -- resumed: rows only
	local log, err = lexcelon_log.open(self:path(file), settings_text,
		{ start_time = self.start_time, utc = opts.utc, flush_steps_only = opts.flush_steps_only,
			append = again, no_header = again })
	if not log then
		return nil, err
	end
	self.logs[#self.logs + 1] = { log = log, rel = file }
	self:_write_run_json()
	return log
end

-- close([outcome]) -> true | nil, err. outcome: a string ("completed",
-- "failed", "interrupted", "error") or { status = ..., message = ... }.
-- Writes every cell's summary (cells without one: "incomplete"), closes
-- every file, rewrites run.json with the end time and outcome. Safe to
-- call twice (the second call does nothing) and after errors.
function Run:close(outcome)
	if self.closed then
		return true
	end
	self.closed = true
	local errs = {}
	local function try(ok, err)
		if not ok and err then
			errs[#errs + 1] = tostring(err)
		end
	end
	if type(outcome) == "table" then
		local o = M.object({})
		for k, v in pairs(outcome) do
			o[k] = v
		end
		o.status = o.status or "completed"
		self.outcome = o
	else
		self.outcome = M.object({ status = outcome ~= nil and tostring(outcome) or "completed" })
	end
	self.end_time = self:now()
	local reason = "no result for this cell when the run ended (" .. self.outcome.status .. ")"
	if self.outcome.message then
		reason = reason .. ": " .. tostring(self.outcome.message)
	end
	try(pcall(function()
		local ok, err = self:_write_summaries(reason)
		if not ok then
			error(err, 0)
		end
	end))
	for _, cw in ipairs(self.cells) do
		try(cw:close())
	end
	for _, l in ipairs(self.logs) do
		try(l.log:close())
	end
	try(self.steps_f:close())
	try(self.events_f:close())
	self.meta_held = nil
	try(self:_write_run_json())
	if #errs > 0 then
		return nil, table.concat(errs, "\n")
	end
	return true
end

Run.__close = function(self, err)
	if not self.closed then
		self:close(err ~= nil and { status = "error", message = tostring(err) } or nil)
	end
end

return M
