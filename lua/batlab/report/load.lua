-- batlab.report.load - what a report needs of a run directory
-- (docs/results.md): run.json, summary.json, steps.csv, events.log and
-- each cell's time series, read once and downsampled while read, so a
-- 500-cycle run takes bounded memory. Nothing is written.
--
--   local load = require "batlab.report.load"
--   local run, err = load.run("batlab-runs/x-20240101-120000")
--
-- A directory that is not a run (no run.json, run.json not JSON, a cell's
-- time series missing) is an error; a run that did not finish (no
-- summary.json yet, a last row cut short) is read as far as it goes, with
-- notes saying what was missing.

local cjson = require "cjson"
local csv = require "batlab.csv"
local ds = require "batlab.report.downsample"
local lfs = require "lfs"

local M = {}

-- Points kept per series while reading, before the plot's own cut.
local REDUCE_CAP = 6000
-- Lines of events.log shown in full.
M.EVENTS_MAX = 4000

local decoder = cjson.new()

-- v unless it is JSON null.
local function val(v)
	if v == cjson.null then
		return nil
	end
	return v
end
M.val = val

local fsutil = require "batlab.fsutil"
local read_file = fsutil.read_file

local function read_json(dir, name)
	local text = read_file(dir .. "/" .. name)
	if not text then
		return nil, "missing"
	end
	local ok, v = pcall(decoder.decode, text)
	if not ok or type(v) ~= "table" then
		return nil, "not valid JSON (" .. tostring(v):gsub("^.-: ", "") .. ")"
	end
	return v
end

-- steps.csv -> rows per cell name, each a table by column name.
local function read_steps(dir)
	local text = read_file(dir .. "/steps.csv")
	local by_cell = {}
	if not text then
		return by_cell, false
	end
	local rows = csv.parse(text)
	local head = rows[1] or {}
	for r = 2, #rows do
		local row = {}
		for i, name in ipairs(head) do
			row[name] = rows[r][i]
		end
		local cell = row.Cell or ""
		by_cell[cell] = by_cell[cell] or {}
		table.insert(by_cell[cell], row)
	end
	return by_cell, true
end

-- The line pattern of a time-series header: a capture per wanted column.
local WANT = { time = "Test Time / s", step = "Step", v = "Voltage / V", i = "Current / A",
	temp = "Temperature / degC", q = "Charge / Ah", z = "Impedance / Ohm" }
local ORDER = { "time", "step", "v", "i", "temp", "q", "z" }

local function line_reader(header)
	local head = csv.parse(header)[1] or {}
	local at, parts, caps = {}, {}, {}
	for i, name in ipairs(head) do
		at[name] = i
	end
	for _, k in ipairs({ "time", "v" }) do
		if not at[WANT[k]] then
			return nil, ("no '%s' column"):format(WANT[k])
		end
	end
	for i, name in ipairs(head) do
		local key
		for _, k in ipairs(ORDER) do
			if WANT[k] == name then
				key = k
			end
		end
		parts[i] = key and "([^,]*)" or "[^,]*"
		if key then
			caps[#caps + 1] = key
		end
	end
	local pat = "^" .. table.concat(parts, ",") .. "\r?$"
	-- fields(line) -> the wanted fields by key (nil for a row cut short)
	return function(line, out)
		if line:find('"', 1, true) then
			local f = csv.parse(line)[1]
			if not f or #f ~= #head then
				return nil
			end
			for _, k in ipairs(caps) do
				out[k] = f[at[WANT[k]]]
			end
			return out
		end
		local c = { line:match(pat) }
		if #c ~= #caps then
			return nil
		end
		for j, k in ipairs(caps) do
			out[k] = c[j]
		end
		return out
	end
end

local function num(s)
	return s and s ~= "" and tonumber(s) or nil
end

-- A time series read row by row, downsampled as it goes: ts:add(r) with
-- r's fields (strings or numbers) time, step, v, i, temp, q, z; a row
-- without a time is counted as skipped. want_steps: { [step number] =
-- true } of the discharges whose V-versus-Ah curve is kept.
function M.new_series(want_steps)
	local ts = { rows = 0, skipped = 0, v = ds.reducer(REDUCE_CAP), i = ds.reducer(REDUCE_CAP),
		temp = ds.reducer(REDUCE_CAP), zt = {}, z = {}, curves = {} }
	function ts.add(r)
		local t = r and num(r.time)
		if not t then
			ts.skipped = ts.skipped + 1
			return
		end
		ts.rows = ts.rows + 1
		ts.t_first = ts.t_first or t
		ts.t_last = t
		ts.v:add(t, num(r.v))
		ts.i:add(t, num(r.i))
		ts.temp:add(t, num(r.temp))
		local z = num(r.z)
		if z then
			ts.zt[#ts.zt + 1], ts.z[#ts.z + 1] = t, z
		end
		local step = want_steps and num(r.step)
		if step and want_steps[step] then
			local c = ts.curves[step] or { q = {}, v = {} }
			ts.curves[step] = c
			local q, v = num(r.q), num(r.v)
			if q and v then
				c.q[#c.q + 1], c.v[#c.v + 1] = math.abs(q), v
			end
		end
	end
	return ts
end

-- Reads one cell's time series (a CSV file, or .csv.gz inflated while
-- read). -> ts | nil, err
function M.series(path, want_steps)
	local f = fsutil.open_read(path)
	if not f then
		return nil, "missing"
	end
	local fields, herr = line_reader(f:read("l") or "")
	if not fields then
		f:close()
		return nil, herr
	end
	local ts = M.new_series(want_steps)
	local row = {}
	while true do
		-- (read, not lines(): a damaged .gz is nil, message here, and
		-- the rows before the damage are drawn, with a note)
		local line, rerr = f:read("l")
		if not line then
			ts.read_error = rerr
			break
		end
		if line ~= "" then
			ts.add(fields(line, row))
		end
	end
	f:close()
	return ts
end

-- The discharge steps of a cell whose curves are drawn: every one when
-- there are few, else the first, the last and some evenly in between.
function M.pick_discharges(steps, most)
	local all = {}
	for _, s in ipairs(steps) do
		if s["Step Kind"] == "discharge" and num(s.Step) then
			all[#all + 1] = s
		end
	end
	local pick = {}
	if #all <= most then
		pick = all
	else
		for k = 0, most - 1 do
			pick[#pick + 1] = all[1 + math.floor(k * (#all - 1) / (most - 1) + 0.5)]
		end
	end
	local want = {}
	for _, s in ipairs(pick) do
		want[num(s.Step)] = s
	end
	return want, pick
end

local function load_cell(dir, info, run)
	local name = tostring(val(info.name) or "?")
	local cell = { name = name, info = info, steps = run.steps[name] or {} }
	for _, s in ipairs(run.summary_cells) do
		if s.name == name then
			cell.summary = s
		end
	end
	local file = val(info.file)
	if type(file) ~= "string" then
		return nil, ("run.json: cell '%s' has no time-series file"):format(name)
	end
	local want
	want, cell.discharges = M.pick_discharges(cell.steps, 8)
	local ts, err = M.series(dir .. "/" .. file, want)
	if not ts then
		return nil, ("%s: %s (listed in run.json for cell '%s')"):format(file, err, name)
	end
	cell.file, cell.ts = file, ts
	if ts.skipped > 0 then
		run.notes[#run.notes + 1] = ("%s: %d row(s) not readable (cut short?), skipped"):format(file, ts.skipped)
	end
	if ts.read_error then
		run.notes[#run.notes + 1] = ("%s: read to row %d only: %s"):format(file, ts.rows, ts.read_error)
	end
	return cell
end

local function read_events(dir, run)
	local text = read_file(dir .. "/events.log")
	run.events, run.events_more = {}, 0
	if not text then
		run.notes[#run.notes + 1] = "events.log: missing"
		return
	end
	for line in text:gmatch("[^\n]+") do
		if #run.events < M.EVENTS_MAX then
			run.events[#run.events + 1] = line
		else
			run.events_more = run.events_more + 1
		end
	end
end

-- run(dir) -> the run: { dir, meta (run.json), summary_cells, cells =
-- { {name, info, summary, steps, discharges, ts}, ... }, events, notes }
-- | nil, message naming the file and what is wrong with it.
function M.run(dir)
	if lfs.attributes(dir, "mode") ~= "directory" then
		return nil, ("%s: no such directory"):format(dir)
	end
	local meta, err = read_json(dir, "run.json")
	if not meta then
		return nil, ("%s/run.json: %s (not a batlab run directory?)"):format(dir, err)
	end
	if meta.format ~= "batlab-run" or type(val(meta.cells)) ~= "table" then
		return nil, ("%s/run.json: not a batlab run (format '%s', cells %s)"):format(dir,
			tostring(val(meta.format)), type(val(meta.cells)) == "table" and "listed" or "missing")
	end
	local run = { dir = dir, meta = meta, notes = {}, cells = {} }
	local summary, serr = read_json(dir, "summary.json")
	if not summary then
		run.notes[#run.notes + 1] = "summary.json: " .. serr .. " (the run did not finish?)"
	end
	run.summary_cells = summary and type(val(summary.cells)) == "table" and summary.cells or {}
	local have_steps
	run.steps, have_steps = read_steps(dir)
	if not have_steps then
		run.notes[#run.notes + 1] = "steps.csv: missing"
	end
	for _, info in ipairs(meta.cells) do
		local cell, cerr = load_cell(dir, info, run)
		if not cell then
			return nil, dir .. "/" .. cerr
		end
		run.cells[#run.cells + 1] = cell
	end
	read_events(dir, run)
	return run
end

return M
