-- batlab.results - one directory per run (DESIGN §5, docs/results.md).
--
--   run.json          settings, procedure, devices, versions, cells, start,
--                     end, outcome (rewritten atomically at close)
--   cells/<name>.csv  one time series per cell, self-describing columns
--   steps.csv         one row per finished step, all cells
--   summary.json/.csv one summary per cell (verdict, capacity, ...)
--   events.log        timestamped lines
--   batlab-log_<playlist>.csv  Lexcelon's format (run:lexcelon_log)
--
-- Rows are flushed as they are written. Numbers have a fixed format per
-- column and times come from the caller (start epoch + test time), so two
-- runs with the same inputs give the same bytes.
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
local csv = require "batlab.csv"
local fsutil = require "batlab.fsutil"
local lexcelon_log = require "batlab.lexcelon_log"

local M = {}

M.FORMAT_VERSION = 1

--------------------------------------------------------------------------
-- Deterministic JSON: sorted keys, 2-space indent, integers as integers,
-- floats with %.10g, NaN/inf as null. Empty tables are [] unless made with
-- results.object().

local NULL = setmetatable({}, { __name = "batlab.results.null", __tostring = function() return "null" end })
M.null = NULL

local OBJECT_MT = { __jsontype = "object" }
function M.object(t)
	return setmetatable(t or {}, OBJECT_MT)
end

local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
	["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function json_string(s)
	if not utf8.len(s) then
		-- Not UTF-8: read the bytes as Latin-1 so the output is valid JSON.
		s = s:gsub("[\128-\255]", function(c)
			return utf8.char(c:byte())
		end)
	end
	return '"' .. s:gsub('[%c"\\]', function(c)
		return ESC[c] or string.format("\\u%04x", c:byte())
	end) .. '"'
end

local function json_number(v)
	if math.type(v) == "integer" then
		return string.format("%d", v)
	end
	if v ~= v or v == math.huge or v == -math.huge then
		return "null"
	end
	if v == math.floor(v) and math.abs(v) < 1e15 then
		return string.format("%.1f", v)
	end
	return string.format("%.10g", v)
end

local function is_array(t)
	local n = #t
	if getmetatable(t) == OBJECT_MT then
		return false
	end
	if n == 0 then
		return next(t) == nil
	end
	local count = 0
	for _ in pairs(t) do
		count = count + 1
	end
	return count == n
end

local function encode(v, indent, out, depth)
	local tv = type(v)
	if v == nil or v == NULL then
		out[#out + 1] = "null"
	elseif tv == "boolean" then
		out[#out + 1] = v and "true" or "false"
	elseif tv == "number" then
		out[#out + 1] = json_number(v)
	elseif tv == "string" then
		out[#out + 1] = json_string(v)
	elseif tv == "table" then
		if depth > 64 then
			error("results.json_encode: nested too deeply (a cycle?)", 0)
		end
		local pad = "\n" .. string.rep("  ", depth + 1)
		local close = "\n" .. string.rep("  ", depth)
		if is_array(v) then
			if #v == 0 then
				out[#out + 1] = "[]"
				return
			end
			out[#out + 1] = "["
			for i = 1, #v do
				out[#out + 1] = (i > 1 and "," or "") .. pad
				encode(v[i], indent, out, depth + 1)
			end
			out[#out + 1] = close .. "]"
		else
			local keys = {}
			for k in pairs(v) do
				keys[#keys + 1] = tostring(k)
			end
			table.sort(keys)
			if #keys == 0 then
				out[#out + 1] = "{}"
				return
			end
			out[#out + 1] = "{"
			for i, k in ipairs(keys) do
				local val = v[k]
				if val == nil then
					val = v[tonumber(k)]
				end
				out[#out + 1] = (i > 1 and "," or "") .. pad .. json_string(k) .. ": "
				encode(val, indent, out, depth + 1)
			end
			out[#out + 1] = close .. "}"
		end
	else
		-- functions, userdata (cjson.null included): no data to keep.
		out[#out + 1] = "null"
	end
end

-- json_encode(v) -> text (with a final newline).
function M.json_encode(v)
	local out = {}
	encode(v, "  ", out, 0)
	return table.concat(out) .. "\n"
end

--------------------------------------------------------------------------
-- Times

-- iso_time(epoch) -> "YYYY-mm-ddTHH:MM:SS.sssZ" (UTC, milliseconds).
-- Rows come once a second: the date part is formatted once per second.
local iso_second, iso_prefix = nil, nil

function M.iso_time(epoch)
	if type(epoch) ~= "number" or not csv.is_finite(epoch) then
		return nil
	end
	local ms = math.floor(epoch * 1000 + 0.5)
	local sec = ms // 1000
	if sec ~= iso_second then
		iso_second, iso_prefix = sec, os.date("!%Y-%m-%dT%H:%M:%S", sec)
	end
	return iso_prefix .. string.format(".%03dZ", ms % 1000)
end

-- default_dir(base, name, time) -> "<base>/<safe name>-YYYYmmdd-HHMMSS"
-- (UTC, so names do not depend on the time zone). base defaults to
-- "batlab-runs", name to "run", time (epoch seconds) to os.time().
function M.default_dir(base, name, time)
	base = base or "batlab-runs"
	local stamp = os.date("!%Y%m%d-%H%M%S", math.floor(time or os.time()))
	return base .. "/" .. fsutil.safe_name(name or "run") .. "-" .. stamp
end

--------------------------------------------------------------------------
-- Columns. Each: header, field, format ("%.4f", "%d", "s" text, or a
-- function(row, cell) -> text).

local function names_text(v)
	if type(v) == "table" then
		return table.concat(v, "|")
	elseif type(v) == "number" then
		local ok, batlab = pcall(require, "batlab")
		if ok and batlab.error_names then
			return table.concat(batlab.error_names(v), "|")
		end
		return string.format("0x%x", v)
	elseif v == nil or v == false then
		return ""
	end
	return tostring(v)
end
M.names_text = names_text

local function mode_text(row)
	if row.mode_name ~= nil then
		return tostring(row.mode_name)
	end
	if type(row.mode) == "number" then
		local ok, batlab = pcall(require, "batlab")
		if ok and batlab.mode_name then
			return batlab.mode_name(row.mode) or tostring(row.mode)
		end
	end
	return row.mode ~= nil and tostring(row.mode) or ""
end

M.SAMPLE_COLUMNS = {
	{ "Test Time / s", "time", "%.3f" },
	{ "Step Time / s", "step_time", "%.3f" },
	{ "Cycle", "cycle", "%d" },
	{ "Cycle Kind", "cycle_kind", "s" },
	{ "Step", "step", "%d" },
	{ "Step Name", "step_name", "s" },
	{ "Mode", "mode_name", function(row) return csv.field(mode_text(row)) end },
	{ "Voltage / V", "voltage", "%.4f" },
	{ "Current / A", "current", "%.4f" },
	{ "Temperature / degC", "temp_c", "%.2f" },
	{ "Charge / Ah", "charge_ah", "%.6f" },
	{ "Energy / Wh", "energy_wh", "%.6f" },
	{ "Impedance / Ohm", "impedance", "%.5f" },
	{ "VCC / V", "vcc", "%.3f" },
	{ "Date Time", "time", function(row, run)
		return type(row.time) == "number" and M.iso_time(run.start_time + row.time) or ""
	end },
	{ "Errors", "errors", function(row) return csv.field(names_text(row.errors)) end },
}

M.STEP_COLUMNS = {
	{ "Cell", "cell", "s" },
	{ "Serial", "serial", "s" },
	{ "Channel", "channel", "s" },
	{ "Cycle", "cycle", "%d" },
	{ "Cycle Kind", "cycle_kind", "s" },
	{ "Step", "step", "%d" },
	{ "Step Name", "step_name", "s" },
	{ "Step Kind", "kind", "s" },
	{ "Start / s", "start", "%.3f" },
	{ "Duration / s", "duration", "%.3f" },
	{ "End Reason", "end_reason", "s" },
	{ "Safety Stop", "safety_stop", function(row) return csv.field(names_text(row.safety_stop)) end },
	{ "Charge / Ah", "charge_ah", "%.6f" },
	{ "Energy / Wh", "energy_wh", "%.6f" },
	{ "Avg Voltage / V", "avg_v", "%.4f" },
	{ "Avg Current / A", "avg_i", "%.4f" },
	{ "Temperature Start / degC", "temp_start", "%.2f" },
	{ "Temperature End / degC", "temp_end", "%.2f" },
	{ "Temperature Rise / degC", "temp_rise", "%.2f" },
	{ "Impedance / Ohm", "impedance", "%.5f" },
}

M.SUMMARY_COLUMNS = {
	{ "Cell", "name", "s" },
	{ "Serial", "serial", "s" },
	{ "Channel", "channel", "s" },
	{ "Verdict", "verdict", "s" },
	{ "Reason", "reason", "s" },
	{ "Capacity / Ah", "capacity_ah", "%.6f" },
	{ "Capacity / C", "capacity_c", "%.3f" },
	{ "Capacity Min / Ah", "capacity_min_ah", "%.6f" },
	{ "Capacity Max / Ah", "capacity_max_ah", "%.6f" },
	{ "Capacity Cycles", "capacity_cycles", "%d" },
	{ "Energy / Wh", "energy_wh", "%.6f" },
	{ "Coulombic Efficiency", "coulombic_efficiency", "%.5f" },
	{ "Avg Voltage / V", "avg_voltage", "%.4f" },
	{ "Temperature Rise / degC", "temp_rise_c", "%.2f" },
	{ "Impedance / Ohm", "impedance_ohm", "%.5f" },
	{ "Impedance Samples", "impedance_samples", "%d" },
	{ "Impedance Threshold / Ohm", "impedance_threshold", "%.5f" },
	{ "Impedance Pass", "impedance_pass", "s" },
	{ "Cycles", "cycles_completed", "%d" },
	{ "Safety Stops", "safety_stop_count", "%d" },
}

local function header(columns)
	local h = {}
	for i, c in ipairs(columns) do
		h[i] = csv.field(c[1])
	end
	return csv.line(h)
end

-- The batlab.csv_line field code of a column format ("%.4f" -> "f4").
local function column_code(fmt)
	if type(fmt) == "function" then
		return "r" -- the function returns CSV text
	elseif fmt == "s" then
		return "s"
	elseif fmt == "%d" then
		return "d"
	end
	local n = fmt:match("^%%%.(%d+)f$")
	assert(n, "column format " .. tostring(fmt))
	return "f" .. n
end

-- One CSV line of a row. The formatting itself is batlab.csv_line (C):
-- these rows are written once per cell per report, and field-by-field
-- formatting in Lua cost more than the rest of a run.
local function format_row(columns, row, ctx)
	local spec = columns._spec
	if not spec then
		local codes = {}
		for i, c in ipairs(columns) do
			codes[i] = column_code(c[3])
		end
		spec = table.concat(codes, ",")
		columns._spec = spec
	end
	local vals = {}
	for i, c in ipairs(columns) do
		local fmt = c[3]
		if type(fmt) == "function" then
			vals[i] = fmt(row, ctx)
		else
			vals[i] = row[c[2]]
		end
	end
	return batlab.csv_line(spec, table.unpack(vals, 1, #columns))
end
M.format_row = format_row
M.header = header

--------------------------------------------------------------------------
-- Summary math

local function finite(v)
	return type(v) == "number" and csv.is_finite(v)
end

-- median(values) -> the median of a list of numbers (the mean of the two
-- middle ones for an even count), or nil for an empty list.
function M.median(values)
	local v = {}
	for _, x in ipairs(values) do
		v[#v + 1] = x
	end
	if #v == 0 then
		return nil
	end
	table.sort(v)
	local n = #v
	if n % 2 == 1 then
		return v[(n + 1) // 2]
	end
	return (v[n // 2] + v[n // 2 + 1]) / 2
end

-- median_mid(values, charges [, qmin, qmax]) -> median, count | nil, 0
--
-- The GUI's impedance figure, corrected: the median of the impedance
-- samples taken while the charge counter was in the middle 50 % of its
-- range (qmin + 25 % .. qmax - 25 %). qmin/qmax default to the range of
-- charges itself; the cell writer passes the range over all its samples.
-- Samples that are not finite or not > 0 (a failed measurement) are
-- skipped; without charges every valid sample counts. Nothing left:
-- nil, 0 (the GUI took the median of an empty list).
function M.median_mid(values, charges, qmin, qmax)
	local zs, qs = {}, {}
	for i = 1, #values do
		local z, q = values[i], charges and charges[i]
		if finite(z) and z > 0 and (charges == nil or finite(q)) then
			zs[#zs + 1], qs[#qs + 1] = z, q
		end
	end
	if #zs == 0 then
		return nil, 0
	end
	if charges == nil then
		return M.median(zs), #zs
	end
	local lo, hi = qmin, qmax
	if lo == nil or hi == nil then
		lo, hi = math.huge, -math.huge
		for _, q in ipairs(qs) do
			lo, hi = math.min(lo, q), math.max(hi, q)
		end
	end
	local span = hi - lo
	local a, b = lo + 0.25 * span, hi - 0.25 * span
	-- A tolerance of a part in 1e9 of the span keeps samples on the edges.
	local eps = 1e-9 * math.max(math.abs(span), 1e-12)
	local sel = {}
	for i, q in ipairs(qs) do
		if q >= a - eps and q <= b + eps then
			sel[#sel + 1] = zs[i]
		end
	end
	if #sel == 0 then
		return nil, 0
	end
	return M.median(sel), #sel
end

-- step_kind(step) -> "charge" | "discharge" | "rest" | "storage" |
-- "impedance" | "other": step.kind when given, else from the step name
-- (Lexcelon's state names: PRECHARGE/CHARGE, DISCHARGE, *REST,
-- POSTDISCHARGE), else from the sign of avg_i.
function M.step_kind(step)
	if type(step.kind) == "string" and step.kind ~= "" then
		return step.kind
	end
	local n = type(step.step_name) == "string" and step.step_name:upper() or ""
	if n:find("REST") then
		return "rest"
	elseif n:find("POSTDISCHARGE") or n:find("STORAGE") then
		return "storage"
	elseif n:find("IMPEDANCE") then
		return "impedance"
	elseif n:find("DISCHARGE") then
		return "discharge"
	elseif n:find("CHARGE") then
		return "charge"
	end
	if finite(step.avg_i) then
		if step.avg_i > 1e-3 then
			return "charge"
		elseif step.avg_i < -1e-3 then
			return "discharge"
		end
	end
	return "other"
end

local function has_safety_stop(step)
	local s = step.safety_stop
	if type(s) == "table" then
		return #s > 0
	elseif type(s) == "string" then
		return s ~= ""
	elseif type(s) == "number" then
		return s ~= 0
	end
	return s == true
end
M.has_safety_stop = has_safety_stop

local VERDICTS = { pass = true, fail = true, error = true, incomplete = true }
M.VERDICTS = VERDICTS

-- summarize(record [, opts]) -> summary table.
--
-- record: { name, serial, channel, steps = { step summaries, in order },
--   impedance = { values = {...}, charges = {...} }, charge_min, charge_max }
-- (a cell writer keeps one: cw.record). opts: threshold (ohm; default
-- none), verdict and reason (given: used as they are), error (a message:
-- verdict "error"), complete (false: verdict "incomplete").
-- docs/results.md defines every field.
function M.summarize(record, opts)
	opts = opts or {}
	local steps = record.steps or {}
	local by_cycle, order = {}, {}
	local cycles_list = {}
	-- The charge steps since the last discharge: what filled the cell for
	-- the next one. Not valid once the precharge (cycle < 1, from an
	-- unknown state of charge) is among them.
	local pending = { ah = 0, wh = 0, valid = true, any = false }
	local safety = {}
	local temp_rise

	for _, st in ipairs(steps) do
		local kind = M.step_kind(st)
		local cyc = math.tointeger(st.cycle) or 0
		local c = by_cycle[cyc]
		if not c then
			c = { cycle = cyc, kind = st.cycle_kind, charge_ah = nil, discharge_ah = nil,
				charge_wh = nil, discharge_wh = nil, safety_stop = false, discharge_s = 0,
				discharge_vs = 0 }
			by_cycle[cyc] = c
			order[#order + 1] = cyc
		end
		c.kind = c.kind or st.cycle_kind
		if has_safety_stop(st) then
			c.safety_stop = true
			safety[#safety + 1] = { step = st.step, step_name = st.step_name, cycle = st.cycle,
				errors = names_text(st.safety_stop) }
		end
		local rise = st.temp_rise
		if not finite(rise) and finite(st.temp_end) and finite(st.temp_start) then
			rise = st.temp_end - st.temp_start
		end
		if finite(rise) and (temp_rise == nil or rise > temp_rise) then
			temp_rise = rise + 0.0
		end
		local ah = finite(st.charge_ah) and math.abs(st.charge_ah) + 0.0 or nil
		local wh = finite(st.energy_wh) and math.abs(st.energy_wh) + 0.0 or nil
		if kind == "charge" then
			c.charge_ah = (c.charge_ah or 0) + (ah or 0)
			c.charge_wh = (c.charge_wh or 0) + (wh or 0)
			pending.ah = pending.ah + (ah or 0)
			pending.wh = pending.wh + (wh or 0)
			pending.any = true
			if cyc < 1 then
				pending.valid = false
			end
		elseif kind == "discharge" then
			if c.discharge_ah == nil then
				-- First discharge of this cycle: the charge that filled it.
				if pending.any and pending.valid and pending.ah > 0 then
					c.filled_ah, c.filled_wh = pending.ah, pending.wh
				end
			end
			c.discharge_ah = (c.discharge_ah or 0) + (ah or 0)
			c.discharge_wh = (c.discharge_wh or 0) + (wh or 0)
			if has_safety_stop(st) then
				c.discharge_safety = true
			end
			if finite(st.avg_v) and finite(st.duration) and st.duration > 0 then
				c.discharge_s = c.discharge_s + st.duration
				c.discharge_vs = c.discharge_vs + st.avg_v * st.duration
			end
			pending = { ah = 0, wh = 0, valid = true, any = false }
		end
	end

	local caps, energies, ces = {}, {}, {}
	local vs, vt = 0, 0
	local completed = 0
	table.sort(order)
	for _, cyc in ipairs(order) do
		local c = by_cycle[cyc]
		local ce, ee
		if c.discharge_ah and c.filled_ah and c.filled_ah > 0 then
			ce = c.discharge_ah / c.filled_ah
		end
		if c.discharge_wh and c.filled_wh and c.filled_wh > 0 then
			ee = c.discharge_wh / c.filled_wh
		end
		cycles_list[#cycles_list + 1] = {
			cycle = cyc, kind = c.kind, charge_ah = c.charge_ah, discharge_ah = c.discharge_ah,
			charge_wh = c.charge_wh, discharge_wh = c.discharge_wh,
			coulombic_efficiency = ce, energy_efficiency = ee, safety_stop = c.safety_stop,
		}
		if cyc >= 1 and c.discharge_ah and c.charge_ah and not c.safety_stop then
			completed = completed + 1
		end
		if c.kind == "measurement" and c.discharge_ah and not c.discharge_safety then
			caps[#caps + 1] = c.discharge_ah
			energies[#energies + 1] = c.discharge_wh
			if ce then
				ces[#ces + 1] = ce
			end
			vs, vt = vs + c.discharge_vs, vt + c.discharge_s
		end
	end

	local function mean(list)
		if #list == 0 then
			return nil
		end
		local sum = 0
		for _, x in ipairs(list) do
			sum = sum + x
		end
		return sum / #list
	end

	local z = record.impedance or {}
	local zval, zn = M.median_mid(z.values or {}, z.charges, record.charge_min, record.charge_max)
	local threshold = opts.threshold
	local zpass
	if zval and finite(threshold) then
		zpass = zval <= threshold
	end

	local cap = mean(caps)
	local cap_min, cap_max
	for _, x in ipairs(caps) do
		cap_min = cap_min and math.min(cap_min, x) or x
		cap_max = cap_max and math.max(cap_max, x) or x
	end
	local sum = {
		name = record.name, serial = record.serial, channel = record.channel,
		cycles = cycles_list,
		capacity_ah = cap,
		capacity_c = cap and cap * 3600,
		capacity_min_ah = cap_min,
		capacity_max_ah = cap_max,
		capacity_cycles = #caps,
		energy_wh = mean(energies),
		coulombic_efficiency = mean(ces),
		avg_voltage = vt > 0 and vs / vt or nil,
		temp_rise_c = temp_rise,
		impedance_ohm = zval,
		impedance_samples = zn,
		impedance_threshold = threshold,
		impedance_pass = zpass,
		cycles_completed = completed,
		safety_stops = safety,
		safety_stop_count = #safety,
		steps = #steps,
	}

	-- Verdict
	if opts.verdict ~= nil then
		sum.verdict, sum.reason = tostring(opts.verdict), opts.reason
	elseif opts.error ~= nil then
		sum.verdict, sum.reason = "error", tostring(opts.error)
	elseif opts.complete == false then
		sum.verdict, sum.reason = "incomplete", opts.reason or "the test did not finish"
	elseif #safety > 0 then
		local s = safety[1]
		sum.verdict = "fail"
		sum.reason = string.format("safety stop in step %s (%s): %s", tostring(s.step or "?"),
			tostring(s.step_name or "?"), s.errors)
	elseif zpass == false then
		sum.verdict = "fail"
		sum.reason = string.format("impedance %.4f ohm is above %.4f ohm", zval, threshold)
	else
		sum.verdict = "pass"
		local parts = {}
		if cap then
			parts[#parts + 1] = string.format("capacity %.4f Ah", cap)
		end
		if zval then
			parts[#parts + 1] = threshold and string.format("impedance %.4f ohm <= %.4f ohm", zval, threshold)
				or string.format("impedance %.4f ohm", zval)
		else
			parts[#parts + 1] = "impedance not measured"
		end
		sum.reason = opts.reason or table.concat(parts, ", ")
	end
	return sum
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
			if entry:find("%.csv$") then
				os.remove(dir .. "/cells/" .. entry)
			end
		end
	end
end

local CONTROL = { overwrite = true, clock = true, start_time = true }

local function open_csv(path, columns)
	local f, err = io.open(path, "wb")
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
	return fsutil.write_atomic(self:path("run.json"), M.json_encode(self:_run_json()))
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
-- cells/<safe name>.csv, made unique within the run.
function Run:cell(name, info)
	if self.closed then
		return nil, self.dir .. ": run is closed"
	end
	info = info or {}
	local file = fsutil.unique_name(fsutil.safe_name(name), self.used, ".csv")
	local f, err = open_csv(self:path("cells/" .. file), M.SAMPLE_COLUMNS)
	if not f then
		return nil, err
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

-- sample(row) -> true | nil, err. One row of the cell's time series
-- (fields: docs/results.md). Flushed at once.
-- The time-series row, written once per cell per report: the columns of
-- SAMPLE_COLUMNS in one batlab.csv_line call (same bytes as format_row).
local SAMPLE_SPEC = "f3,f3,d,s,d,s,s,f4,f4,f2,f6,f6,f5,f3,T,s"

local function sample_line(row, run)
	local err = row.errors
	local t = row.time
	return batlab.csv_line(SAMPLE_SPEC, t, row.step_time, row.cycle, row.cycle_kind, row.step,
		row.step_name, mode_text(row), row.voltage, row.current, row.temp_c, row.charge_ah,
		row.energy_wh, row.impedance, row.vcc,
		type(t) == "number" and run.start_time + t or nil,
		(err == nil or (type(err) == "table" and err[1] == nil)) and "" or names_text(err))
end
M._sample_line = sample_line

function Cell:sample(row)
	if self.closed then
		return nil, self.name .. ": cell writer is closed"
	end
	local ok, err = self.f:write(sample_line(row, self.run))
	if not ok then
		return nil, err
	end
	self.f:flush()
	self.rows = self.rows + 1
	local rec = self.record
	if finite(row.charge_ah) then
		local q = math.abs(row.charge_ah)
		rec.charge_min = rec.charge_min and math.min(rec.charge_min, q) or q
		rec.charge_max = rec.charge_max and math.max(rec.charge_max, q) or q
		if finite(row.impedance) then
			rec.impedance.values[#rec.impedance.values + 1] = row.impedance
			rec.impedance.charges[#rec.impedance.charges + 1] = q
		end
	end
	return true
end

-- step(summary) -> true | nil, err. One row of steps.csv for this cell;
-- the summary is kept for the cell's summary. temp_rise and kind are
-- filled in when missing.
function Cell:step(st)
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
	local ok, err = self.run.steps_f:write(format_row(M.STEP_COLUMNS, row, self.run))
	if not ok then
		return nil, err
	end
	self.run.steps_f:flush()
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
	if self.closed then
		return true
	end
	self.closed = true
	local ok, err = self.f:close()
	if not ok then
		return nil, err
	end
	return true
end

-- The fields every cell has in summary.json (null when unknown).
M.SUMMARY_FIELDS = {
	"name", "serial", "channel", "verdict", "reason", "cycles", "capacity_ah", "capacity_c",
	"capacity_min_ah", "capacity_max_ah", "capacity_cycles", "energy_wh", "coulombic_efficiency",
	"avg_voltage", "temp_rise_c", "impedance_ohm", "impedance_samples", "impedance_threshold",
	"impedance_pass", "cycles_completed", "safety_stops", "safety_stop_count", "steps",
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

function Run:_write_summaries(final_reason)
	local cells, rows = {}, { header(M.SUMMARY_COLUMNS) }
	for _, cw in ipairs(self.cells) do
		local sum = cw.summary_data
		if not sum and final_reason then
			sum = M.summarize(cw.record, { complete = false, reason = final_reason,
				threshold = type(self.meta.settings) == "table" and self.meta.settings.acceptableImpedanceThreshold or nil })
			cw.summary_data = sum
		end
		if sum then
			local doc = with_nulls(sum, M.SUMMARY_FIELDS)
			local cyc = {}
			for i, c in ipairs(sum.cycles or {}) do
				cyc[i] = with_nulls(c, CYCLE_FIELDS)
			end
			doc.cycles = cyc
			doc.file = "cells/" .. cw.file
			cells[#cells + 1] = doc
			local row = {}
			for k, v in pairs(sum) do
				row[k] = v
			end
			if row.impedance_pass ~= nil then
				row.impedance_pass = row.impedance_pass and "true" or "false"
			end
			rows[#rows + 1] = format_row(M.SUMMARY_COLUMNS, row, self)
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
	local log, err = lexcelon_log.open(self:path(file), settings_text,
		{ start_time = self.start_time, utc = opts.utc })
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
