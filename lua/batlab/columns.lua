-- batlab.columns - the columns of a run directory's CSV files
-- (docs/results.md): the per-cell time series, steps.csv and summary.csv,
-- and how a row becomes one CSV line.
--
-- Each column: header, field, format ("%.4f", "%d", "s" text, or a
-- function(row, run) -> CSV text). Rows are formatted by batlab.csv_line
-- (C): they are written once per cell per report.

local batlab = require "batlab"
local csv = require "batlab.csv"

local M = {}

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

-- names_text(v) -> ERROR bits as names joined by "|": a number is named
-- with batlab.error_names, an array joined, a string kept, nil/false "".
local function names_text(v)
	if type(v) == "table" then
		return table.concat(v, "|")
	elseif type(v) == "number" then
		return table.concat(batlab.error_names(v), "|")
	elseif v == nil or v == false then
		return ""
	end
	return tostring(v)
end
M.names_text = names_text

-- The time series' columns, in the order src/host/recorder.c writes each
-- row (in C, from every sample); here only their header.
M.SAMPLE_COLUMNS = {
	{ "Test Time / s" }, { "Step Time / s" }, { "Cycle" }, { "Cycle Kind" }, { "Step" },
	{ "Step Name" }, { "Mode" }, { "Voltage / V" }, { "Current / A" }, { "Temperature / degC" },
	{ "Charge / Ah" }, { "Energy / Wh" }, { "Impedance / Ohm" }, { "VCC / V" }, { "Date Time" },
	{ "Errors" },
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
	{ "Capacity Complete", "capacity_complete", "s" },
	{ "Capacity Note", "capacity_note", "s" },
	{ "Coulombic Efficiency Note", "coulombic_efficiency_note", "s" },
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

return M
