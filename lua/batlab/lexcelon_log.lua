-- batlab.lexcelon_log - Lexcelon's `batlab-log_<playlist>.csv` format.
--
-- The Python library's main log (docs/results.md), so existing analysis
-- keeps working: the settings JSON text as one quoted CSV field, then the
-- column header, then level-1 rows (one per sample) and level-2 rows (one
-- per finished step). Differences from the seed, all in docs/results.md:
--
--   * the header names all 23 columns the rows have (the seed's level-1 rows
--     carried 3 unnamed extras: operating setpoint, software setpoint, duty);
--     every row has 23 fields;
--   * the settings line ends with 22 commas (23 fields) to match;
--   * fields are quoted when they need it (a comma in a cell name);
--   * timestamps come from the run's start epoch plus test time (virtual
--     time under the simulator), always with 6 fractional digits;
--   * level-2 "Avg Impedance" is empty when the step had no measurement
--     (the seed carried the previous step's average over).
--
--   local lex = require "batlab.lexcelon_log"
--   local log = assert(lex.open(dir .. "/batlab-log_My Playlist.csv", json_text,
--                               { start_time = epoch }))
--   log:level1{ name = "A1", serial = 262209, channel = 3, time = 12.5,
--               voltage = 3.71, current = 1.5, temp_c = 24.2, energy_j = 10.1,
--               charge_c = 2.7, state = "DISCHARGE", vcc = 5.01 }
--   log:level2{ name = "A1", serial = 262209, channel = 3, time = 3600,
--               state = "DISCHARGE", charge_c = 9000, energy_j = 33000, ... }
--   log:close()

local batlab = require "batlab"
local csv = require "batlab.csv"
local fsutil = require "batlab.fsutil"

local M = {}

M.COLUMNS = {
	"Cell Name", "Batlab SN", "Channel", "Timestamp (s)", "Voltage (V)",
	"Current (A)", "Temperature (C)", "Impedance (Ohm)", "Energy (J)",
	"Charge (Coulombs)", "Test State", "Test Type", "Charge Capacity (Coulombs)",
	"Energy Capacity (J)", "Avg Impedance (Ohm)", "delta Temperature (C)",
	"Avg Current (A)", "Avg Voltage", "Runtime (s)", "VCC (V)",
	-- The seed wrote these three past its 20-column header, unnamed.
	"Operating Setpoint (raw)", "Setpoint (raw)", "Duty (raw)",
}
M.NCOLS = #M.COLUMNS          -- 23
M.SEED_HEADER_COLS = 20       -- the seed's header, for readers' reference

local Log = {}
Log.__index = Log
Log.__name = "batlab.LexcelonLog"

-- timestamp(epoch [, utc]) -> "YYYY-mm-dd HH:MM:SS.ffffff" (local time,
-- like Python's str(datetime.now()), or UTC).
-- The date part is formatted once per second: rows come every second.
local stamp_key, stamp_prefix

function M.timestamp(epoch, utc)
	local us = math.floor(epoch * 1e6 + 0.5)
	local secs, frac = us // 1000000, us % 1000000
	local key = utc and -secs - 1 or secs
	if key ~= stamp_key then
		stamp_key, stamp_prefix = key, os.date((utc and "!" or "") .. "%Y-%m-%d %H:%M:%S", secs)
	end
	return stamp_prefix .. string.format(".%06d", frac)
end

-- open(path, settings_text [, opts]) -> log | nil, err
--   settings_text  the settings file's text (written as the first header
--                  field); nil writes only the column header (the seed's
--                  per-cell files)
--   opts.start_time  epoch of test time 0 (default: os.time() now)
--   opts.utc         timestamps in UTC instead of local time
--   opts.append      append to an existing file (a new header block first)
--   opts.flush_steps_only  flush at each level-2 row (a step's end) and at
--                    close, not at every row: for virtual runs, whose rows
--                    come far faster than a disk wants them one by one
function M.open(path, settings_text, opts)
	opts = opts or {}
	-- a 64 kB buffer: rows come faster than a 4 kB one empties
	local f, err = batlab.open_file(path, opts.append and "ab" or "wb")
	if not f then
		return nil, err
	end
	local self = setmetatable({
		path = path, f = f, start_time = opts.start_time or os.time(),
		utc = opts.utc and true or false, closed = false, rows = 0,
		lazy = opts.flush_steps_only and true or false,
	}, Log)
	-- Appending to a log that already has its header: rows only.
	if opts.append and opts.no_header then
		return self
	end
	local head = {}
	if settings_text ~= nil then
		-- Always one quoted field, like the seed, then empty fields up to
		-- the header's width.
		head[1] = '"' .. (tostring(settings_text):gsub('"', '""')) .. '"'
			.. string.rep(",", M.NCOLS - 1) .. "\n"
	end
	head[#head + 1] = csv.line(M.COLUMNS)
	local ok, werr = self:_write(table.concat(head))
	if not ok then
		return nil, werr
	end
	return self
end

function Log:_write(text, step_end)
	if self.closed then
		return nil, self.path .. ": log is closed"
	end
	local ok, err = self.f:write(text)
	if not ok then
		return nil, self.path .. ": " .. tostring(err)
	end
	if step_end or not self.lazy then
		ok, err = self.f:flush()
		if not ok then
			return nil, self.path .. ": " .. tostring(err)
		end
	end
	return true
end

function Log:_stamp(row)
	if row.timestamp ~= nil then
		return tostring(row.timestamp)
	end
	local epoch = row.epoch or (self.start_time + (row.time or 0))
	return M.timestamp(epoch, self.utc)
end

local function f4(v)
	return csv.num(v, "%.4f")
end

local function abs4(v)
	return type(v) == "number" and f4(math.abs(v)) or ""
end

local function int(v)
	return csv.num(v, "%d")
end

local function first(a, b, scale)
	if a ~= nil then
		return a
	end
	if type(b) == "number" then
		return b * scale
	end
	return nil
end

-- level1(row) -> true | nil, err. One sample. Fields: name, serial,
-- channel, time (test time, s) | epoch | timestamp (string), voltage,
-- current (written as a magnitude, like the Batlab reports it), temp_c,
-- impedance (only on impedance rows), energy_j (or energy_wh), charge_c
-- (or charge_ah), state (the test state), vcc, op_raw, sp_raw, duty.
-- Rows are formatted by batlab.csv_line (C). In a run the level-1 rows
-- come from src/host/lexlog.c instead (batlab.recording), which follows
-- L1_SPEC field by field: a change here is a change there. Columns as in
-- M.COLUMNS.
local L1_SPEC = "s,s,s,%s,f4,a4,f4,f4,f4,f4,s,-,-,-,-,-,-,-,-,f4,d,d,d"
local L2_SPEC = "s,s,s,%s,-,-,-,-,-,-,-,s,f4,f4,f4,f4,a4,f4,r,-,-,-,-"
-- the specs for each timestamp code, formatted once
local L1 = { s = L1_SPEC:format("s"), L = L1_SPEC:format("L") }
local L2 = { s = L2_SPEC:format("s"), L = L2_SPEC:format("L") }

-- The timestamp: the date-time code for an epoch, or a given text.
function Log:_stamp_arg(row)
	if row.timestamp ~= nil then
		return "s", tostring(row.timestamp)
	end
	local epoch = row.epoch or (self.start_time + (row.time or 0))
	if self.utc then
		return "s", M.timestamp(epoch, true)
	end
	return "L", epoch
end

function Log:level1(row)
	local code, stamp = self:_stamp_arg(row)
	self.rows = self.rows + 1
	return self:_write(batlab.csv_line(L1[code], row.name, row.serial, row.channel, stamp,
		row.voltage, row.current, row.temp_c, row.impedance,
		first(row.energy_j, row.energy_wh, 3600), first(row.charge_c, row.charge_ah, 3600),
		row.state, nil, nil, nil, nil, nil, nil, nil, nil, row.vcc, row.op_raw, row.sp_raw, row.duty))
end

-- add_rows(n): n level-1 rows more, written into self.f by someone else:
-- in a run batlab.recording has batlab.recorder write them in C, from the
-- sample path (the same fields and formats as level1), and counts them here
-- at each step's end and at its close.
function Log:add_rows(n)
	self.rows = self.rows + n
end

-- level2(row) -> true | nil, err. One finished step. Fields: name,
-- serial, channel, time | epoch | timestamp (when the step ended), state
-- (the step's name: written in "Test Type", like the seed), charge_c (or
-- charge_ah), energy_j (or energy_wh), avg_impedance (nil when none was
-- measured in the step), delta_temp, avg_current (magnitude),
-- avg_voltage, runtime (the step's duration, s).
function Log:level2(row)
	local code, stamp = self:_stamp_arg(row)
	self.rows = self.rows + 1
	return self:_write(batlab.csv_line(L2[code], row.name, row.serial, row.channel, stamp,
		nil, nil, nil, nil, nil, nil, nil, row.state,
		first(row.charge_c, row.charge_ah, 3600), first(row.energy_j, row.energy_wh, 3600),
		row.avg_impedance, row.delta_temp, row.avg_current, row.avg_voltage,
		csv.trimmed(row.runtime, 6)), true)
end

-- close() -> true | nil, err. Idempotent. A file the collector closed
-- already (the Lua state closing under a running test) is an error
-- returned, not raised: raising from a test's <close> handler would hide
-- what ended it.
function Log:close()
	if not self.closed and io.type(self.f) == "closed file" then
		self.closed = true
		return nil, self.path .. ": closed before the log was (the program ended under a running test)"
	end
	return fsutil.close_once(self, self.path)
end

Log.__close = function(self)
	self:close()
end

-- read(text) -> header, rows: a reader like the existing tools' (skip
-- every line until one starting with "Cell Name"). header is the array of
-- column names, rows arrays of fields. For tests and analysis.
function M.read(text)
	local rows = csv.parse(text)
	for i, r in ipairs(rows) do
		if r[1] == "Cell Name" then
			local out = {}
			for j = i + 1, #rows do
				out[#out + 1] = rows[j]
			end
			return r, out
		end
	end
	return nil, rows
end

return M
