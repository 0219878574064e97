-- batlab.seed - the seed library's interface (Lexcelon's Python batlab
-- package) on batlab's engine, for its users' scripts and for the shell:
--
--   local st = batlab.Settings()
--   assert(st:load("default.json"))        -- the settings later tests use
--   local ch = dev:channel(0)
--   assert(ch:start_test("CELL_A", "cycle"))
--   while ch:is_testing() do
--     print(ch.state, ch:cycle_number(), ch:runtime())
--     batlab.sleep(60)                      -- the test runs meanwhile
--   end
--
-- The test itself is lua/batlab/stocktest.lua (what `batlab cycletest`
-- runs), in a background task per channel. This module only adds the
-- seed's way of starting and watching it: a channel state name, a cycle
-- number, a runtime, and the seed's log file `batlab-log_<playlist>.csv`.
--
-- Requiring it installs it (once per Lua state): batlab.Settings,
-- batlab.Logger, batlab.logger, batlab.TT_CYCLE/TT_DISCHARGE,
-- batlab.use_settings, batlab.loaded_settings, and the Channel methods
-- start_test, end_test, is_testing, runtime, state_runtime, cycle_number,
-- test_info, log_lvl2 and the fields ch.state, ch.test_state, ch.test_type,
-- ch.name, ch.bat, ch.slot, ch.settings; the seed's constants (TT_*, TS_*,
-- l_test_state) and the Device fields dev.settings and dev.logger. docs/lua-api.md, "The seed library's
-- interface".
--
-- Heavy modules (settings, stocktest, results, ...) are required on first
-- use: the engine loads this file at every start.

local batlab = require "batlab"

local M = {}

-- The seed's test type constants (its constants.py: TT_DISCHARGE = 0,
-- TT_CYCLE = 1) and test states, with l_test_state indexed by them from 0
-- as the seed's list is.
M.TT_DISCHARGE, M.TT_CYCLE = 0, 1
local TEST_TYPES = { cycle = "cycle", discharge = "discharge", [M.TT_CYCLE] = "cycle",
	[M.TT_DISCHARGE] = "discharge" }
M.l_test_state = { [0] = "IDLE", "CHARGE", "PRECHARGE", "DISCHARGE", "CHARGEREST", "DISCHARGEREST",
	"POSTDISCHARGE" }
local TEST_STATE = {}
for code = 0, #M.l_test_state do
	M["TS_" .. M.l_test_state[code]] = code
	TEST_STATE[M.l_test_state[code]] = code
end

-- Events kept per test for test_info (the oldest are dropped past this).
local MAX_EVENTS = 100

local function deep_copy(v)
	if type(v) ~= "table" then
		return v
	end
	local out = {}
	for k, x in pairs(v) do
		out[k] = deep_copy(x)
	end
	return out
end

---------------------------------------------------------------------------
-- Settings

-- The settings start_test uses: the last Settings object loaded (the
-- seed's `load settings` set the settings every later test used), or what
-- use_settings gave.
local loaded

local seed_settings_mt   -- built on first use, over settings.Settings's
local base_settings_index

local SeedSettings = {}

-- load(file [, overrides]) -> true, warnings | nil, err. file is a path or
-- an open file. On success this object becomes the loaded settings. The
-- text is kept for the log file's header (the seed wrote the file as read).
function SeedSettings:load(file, overrides)
	local text, name
	if io.type(file) == "file" then
		name, text = "settings", file:read("a")
		if not text then
			return nil, "settings: read failed"
		end
	elseif type(file) == "string" then
		local f, err = io.open(file, "rb")
		if not f then
			return nil, err
		end
		name, text = file, f:read("a")
		f:close()
		if not text then
			return nil, file .. ": read failed"
		end
	else
		return nil, "settings: file name must be a string"
	end
	local ok, w = base_settings_index(self, "parse")(self, text, name, overrides)
	if not ok then
		return nil, w
	end
	rawset(self, "text", text)
	loaded = self
	return true, w
end

-- view() -> text. Prints every setting (the seed printed them) and returns
-- the same text.
function SeedSettings:view()
	local text = base_settings_index(self, "view")(self)
	print((text:gsub("\n$", "")))
	return text
end

local function settings_mt()
	if not seed_settings_mt then
		local settings = require "batlab.settings"
		base_settings_index = getmetatable(settings.Settings()).__index
		seed_settings_mt = {
			__name = "batlab.Settings",
			__index = function(self, k)
				local m = SeedSettings[k]
				if m then
					return m
				end
				if k == "logfile" then
					-- The seed's Settings.logfile: the main log's name.
					return "batlab-log_" .. tostring(rawget(self, "settings").cellPlaylistName) .. ".csv"
				end
				return base_settings_index(self, k)
			end,
		}
	end
	return seed_settings_mt
end

-- Settings() -> a seed-style settings object (defaults until loaded): the
-- object of batlab.settings.Settings(), whose load also makes it the
-- settings later tests use, and whose view prints.
function M.Settings()
	local mt = settings_mt()
	return setmetatable(require("batlab.settings").Settings(), mt)
end

-- use_settings(st) -> true: a Settings object (loaded or not) or a plain
-- settings table (batlab.settings.load's result) becomes the loaded
-- settings; nil clears them.
function M.use_settings(st)
	if st ~= nil and (type(st) ~= "table" or (rawget(st, "settings") == nil and st.highVoltageCutoff == nil)) then
		error("bad argument #1 to 'use_settings' (batlab.Settings or a settings table expected, got "
			.. type(st) .. ")", 2)
	end
	loaded = st
	return true
end

-- loaded_settings() -> what start_test would use, or nil.
function M.loaded_settings()
	return loaded
end

-- The plain settings table and the text for the log header.
local function current_settings()
	if loaded == nil then
		return nil
	end
	local s = rawget(loaded, "settings")
	if type(s) == "table" then
		local text = rawget(loaded, "text")
		if not text then
			text = require("cjson").encode(s)
		end
		return s, text
	end
	return loaded, require("cjson").encode(loaded)
end

---------------------------------------------------------------------------
-- Logger

local Logger = {}
Logger.__index = Logger
Logger.__name = "batlab.Logger"

-- Logger([{dir=, echo=}]) -> a logger. dir: where relative file names go
-- (default "."); echo: print test events (default true).
function M.Logger(opts)
	if opts ~= nil and type(opts) ~= "table" then
		error("bad argument #1 to 'Logger' (options table expected, got " .. type(opts) .. ")", 2)
	end
	opts = opts or {}
	return setmetatable({ dir = opts.dir or ".", echo = opts.echo ~= false, open = {} }, Logger)
end

function Logger:path(file)
	if file:sub(1, 1) == "/" or self.dir == nil or self.dir == "." or self.dir == "" then
		return file
	end
	return self.dir .. "/" .. file
end

-- log(line, file) -> true | nil, err: appends the line to the file and
-- closes it (the seed's logger queue, written at once).
function Logger:log(line, file)
	if type(file) ~= "string" or file == "" then
		error("bad argument #2 to 'log' (file name expected, got " .. type(file) .. ")", 2)
	end
	local path = self:path(file)
	local f, err = io.open(path, "ab")
	if not f then
		return nil, err
	end
	local ok, werr = f:write(tostring(line), "\n")
	f:close()
	if not ok then
		return nil, path .. ": " .. tostring(werr)
	end
	return true
end

-- logfile(playlist [, cell]) -> the stock log's path:
-- <dir>/batlab-log_<playlist>.csv, or _<cell>.csv for the per-cell log,
-- made safe as a file name like the results directory's copy.
function Logger:logfile(playlist, cell)
	local base = "batlab-log_" .. tostring(playlist or "DefaultPlaylist")
	if cell ~= nil then
		base = base .. "_" .. tostring(cell)
	end
	return self:path(require("batlab.fsutil").safe_name(base, 180) .. ".csv")
end

-- event(text): a test's message, printed unless echo is off.
function Logger:event(text)
	if self.echo then
		print(text)
	end
end

-- A Lexcelon log shared by every test writing to that path while any is
-- running. The header goes into a new (or empty) file only: a file an
-- earlier session wrote gets rows only, so readers see one header.
function Logger:acquire(path, settings_text)
	local e = self.open[path]
	if e then
		e.refs = e.refs + 1
		return e.log
	end
	local lex = require "batlab.lexcelon_log"
	local lfs = require "lfs"
	local log, err
	local size = lfs.attributes(path, "size")
	if not size or size == 0 then
		log, err = lex.open(path, settings_text, { append = true })
	else
		log, err = lex.open(path, nil, { append = true, no_header = true })
	end
	if not log then
		return nil, err
	end
	self.open[path] = { log = log, refs = 1 }
	return log
end

function Logger:release(path)
	local e = self.open[path]
	if e then
		e.refs = e.refs - 1
		if e.refs <= 0 then
			self.open[path] = nil
			e.log:close()
		end
	end
end

local default_logger = M.Logger()
M.logger = default_logger

local function the_logger()
	local lg = batlab.logger
	if getmetatable(lg) == Logger then
		return lg
	end
	return default_logger
end

---------------------------------------------------------------------------
-- Channel methods

-- Channel -> its test record (the latest test, running or ended). Weak:
-- a channel that is gone takes its record along.
local tests = setmetatable({}, { __mode = "k" })

local function label(ch)
	return ("Batlab %s cell %d"):format(tostring(ch.device.sn), ch.index)
end

local function set_state(rec, name)
	rec.state, rec.state_t0 = name, batlab.now()
end

local function add_event(rec, text)
	local ev = rec.events
	ev[#ev + 1] = text
	if #ev > MAX_EVENTS then
		table.remove(ev, 1)
	end
	rec.logger:event(("%s (%s): %s"):format(rec.label, rec.name, text))
end

-- What the seed's log_lvl2 reports since its previous call (or the start):
-- charge and energy integrated from the samples (magnitudes, like the
-- seed's), average voltage and current, the temperature change, the time.
local Lvl2 = {}
Lvl2.__index = Lvl2

local function new_lvl2(t)
	return setmetatable({ t0 = t, n = 0, vsum = 0, isum = 0, q = 0, e = 0 }, Lvl2)
end

function Lvl2:add(smp)
	local i, v = math.abs(smp.current or 0), smp.voltage or 0
	if self.last_t then
		local dt = smp.time - self.last_t
		self.q, self.e = self.q + i * dt, self.e + i * v * dt
	end
	self.last_t, self.n = smp.time, self.n + 1
	self.vsum, self.isum = self.vsum + v, self.isum + i
	self.temp0, self.temp = self.temp0 or smp.temp_c, smp.temp_c
end

function Lvl2:row(rec, now, step)
	local n = self.n
	return {
		name = rec.name, serial = rec.serial, channel = rec.index, time = now - rec.t0,
		epoch = rec.epoch + (now - rec.t0), state = step, charge_c = self.q, energy_j = self.e,
		delta_temp = self.temp and self.temp0 and self.temp - self.temp0,
		avg_current = n > 0 and self.isum / n or 0, avg_voltage = n > 0 and self.vsum / n or 0,
		runtime = now - self.t0,
	}
end

-- The end of a test however it ends (return, failure, end_test, pool
-- closed): state IDLE, logs released. Runs from a <close> handler too, so
-- it must not wait.
local function finish(rec, why)
	if not rec.active then
		return
	end
	rec.active = false
	rec.t_end = batlab.now()
	if rec.recording then
		rec.recording:close()
		rec.recording = nil
	end
	set_state(rec, "IDLE")
	if not rec.result then
		rec.result = { ok = false, message = why or "ended", verdict = "incomplete" }
	end
	for _, path in ipairs(rec.logs) do
		rec.logger:release(path)
	end
	rec.logs = {}
end

-- What the seed recorded of a test: its state (the step's name) and cycle,
-- and the Lexcelon log rows, from batlab.recording (the one recorder the
-- runner uses too).
local function attach_recording(rec, cell, s)
	local r, err = require("batlab.recording").attach(cell, {
		t0 = rec.t0, epoch = rec.epoch,
		on_sample = function(smp) rec.lvl2:add(smp) end,
		lexcelon = { log1 = rec.log1, log2 = rec.log2, period = s.reportingPeriod or 1,
			serial = rec.serial, channel = rec.index },
		on_error = function(msg)
			if not rec.log_failed then
				rec.log_failed = true
				add_event(rec, "log: " .. tostring(msg))
			end
		end,
		on_label = function(labels)
			if labels.step_name and labels.step_name ~= rec.state then
				set_state(rec, labels.step_name)
			end
			if rec.test_type == "cycle" then -- the seed counts no cycles in a discharge test
				rec.cycle = labels.cycle or rec.cycle
			end
		end,
	})
	if not r then
		add_event(rec, "cannot record: " .. tostring(err))
	end
	rec.recording = r
end

-- The task: open the logs, run the stock test, record its verdict.
local function run_test(rec, ch, s, text)
	local done <close> = setmetatable({}, { __close = function(_, err)
		-- A normal return has set rec.result already; end_test too. The
		-- task is cancelled by now: its channel was made safe, and the
		-- logs close last.
		if not err and not rec.result then
			rec.result = { ok = false, message = "cancelled", verdict = "incomplete" }
			add_event(rec, ("Test cut short in %s after %s (%s); the channel was made safe, the logs closed")
				:format(rec.state, require("batlab.progress").hms(batlab.now() - rec.t0),
					rec.cut_why or "its task was cancelled"))
		end
		finish(rec, err and ("failed: " .. tostring(err):match("^[^\n]*")) or "cancelled")
	end })
	local lg = rec.logger
	local main = lg:logfile(s.cellPlaylistName)
	local log, err = lg:acquire(main, text)
	if log then
		rec.logs[#rec.logs + 1], rec.log2, rec.log1, rec.logfile = main, log, log, main
	else
		add_event(rec, "no log file: " .. tostring(err))
	end
	if log and s.individualCellLogs then
		local own = lg:logfile(s.cellPlaylistName, rec.name)
		local l1, e1 = lg:acquire(own, nil)
		if l1 then
			rec.logs[#rec.logs + 1], rec.log1 = own, l1
		else
			add_event(rec, "no per-cell log file: " .. tostring(e1))
		end
	end
	local cell = require("batlab.cell").new(ch, { name = rec.name, log_sink = function(line)
		add_event(rec, line)
	end })
	-- Steps end on reports: at least one a second, whatever the log period.
	local every = math.max(0.1, math.min(1, s.reportingPeriod or 1))
	cell:report_interval(math.floor(every * 10 + 0.5) / 10)
	attach_recording(rec, cell, s)
	local ok, msg, verdict = require("batlab.stocktest").run(cell, s, { deadline = rec.deadline },
		rec.test_type)
	rec.result = { ok = ok and true or false, message = msg, verdict = ok and "pass" or verdict or "fail" }
	add_event(rec, ok and "Test Completed" or ("Test ended: " .. tostring(msg)))
	return ok, msg, verdict
end

local methods = {}

-- ch:start_test(cellname, test_type [, timeout]) -> true | nil, msg, code.
-- test_type "cycle"/"discharge" or batlab.TT_CYCLE/TT_DISCHARGE; timeout
-- (s): discharges end that long after the start (the seed's discharge
-- timeout). Refused: a test runs on the channel (EBUSY), no settings are
-- loaded (ESTATE), no cell or a backwards one (ENOENT), the MODE read
-- failed (its code).
function methods.start_test(ch, cellname, test_type, timeout)
	if type(cellname) == "number" then
		cellname = tostring(cellname)
	end
	if type(cellname) ~= "string" or cellname == "" then
		error("bad argument #1 to 'start_test' (cell name expected, got " .. type(cellname) .. ")", 2)
	end
	local tt = TEST_TYPES[test_type == nil and "cycle" or test_type]
	if not tt then
		error("bad argument #2 to 'start_test' (\"cycle\", \"discharge\", batlab.TT_CYCLE or batlab.TT_DISCHARGE"
			.. " expected, got " .. tostring(test_type) .. ")", 2)
	end
	if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout or timeout < 0) then
		error("bad argument #3 to 'start_test' (timeout in seconds >= 0 expected, got " .. tostring(timeout) .. ")", 2)
	end
	local prev = tests[ch]
	if prev and prev.active then
		return nil, ("%s: a %s test of %s is running (end_test first)"):format(label(ch), prev.test_type, prev.name),
			"EBUSY"
	end
	local s, text = current_settings()
	if not s then
		return nil, label(ch) .. ": no settings loaded (batlab.Settings():load(FILE) first)", "ESTATE"
	end
	-- Claimed before the MODE read, which may let another task in.
	local now = batlab.now()
	local rec = {
		active = true, name = cellname, test_type = tt, label = label(ch), index = ch.index,
		serial = ch.device.sn, t0 = now, epoch = os.time(), cycle = 0, events = {}, logs = {},
		logger = the_logger(), lvl2 = new_lvl2(now),
		-- A later load must not change a running test (the seed copied too).
		settings = deep_copy(s),
	}
	set_state(rec, tt == "cycle" and (s.prechargeRate or 0) > 0 and "PRECHARGE" or "DISCHARGE")
	tests[ch] = rec
	local mode, err, code = ch.device:read_raw(ch.index, batlab.MODE)
	if tests[ch] ~= rec or not rec.active then
		return nil, label(ch) .. ": test ended before it started", "ESTATE"
	end
	if not mode or mode == batlab.MODE_NO_CELL or mode == batlab.MODE_BACKWARDS then
		tests[ch] = prev
		if not mode then
			return nil, ("%s: cannot read MODE: %s"):format(label(ch), tostring(err)), code
		end
		return nil, ("%s: not started: %s"):format(label(ch),
			mode == batlab.MODE_NO_CELL and "no cell detected" or "the cell is in backwards"), "ENOENT"
	end
	if timeout and timeout > 0 then
		rec.deadline = now + timeout
	end
	rec.task = batlab.spawn_for(ch, run_test, rec, ch, rec.settings, text)
	return true
end

-- ch:end_test() -> true if a test was ended, false if none ran. The task
-- is cancelled: the scheduler makes the channel safe (STOPPED, then IDLE,
-- no current).
function methods.end_test(ch)
	local rec = tests[ch]
	if not rec or not rec.active then
		return false
	end
	if rec.task and rec.task == batlab.current() then
		error("end_test: a test cannot end itself from its own task (return instead)", 2)
	end
	rec.result = { ok = false, message = "ended by end_test", verdict = "incomplete" }
	add_event(rec, "Test ended by end_test")
	if rec.task then
		rec.task:cancel()
	end
	finish(rec)
	return true
end

function methods.is_testing(ch)
	local rec = tests[ch]
	return rec ~= nil and rec.active
end

-- Seconds since the test started; once it ended, how long it ran; 0 when
-- the channel never tested.
function methods.runtime(ch)
	local rec = tests[ch]
	if not rec then
		return 0
	end
	return (rec.active and batlab.now() or rec.t_end) - rec.t0
end

-- Seconds in the current state (IDLE counts from the end of the test).
function methods.state_runtime(ch)
	local rec = tests[ch]
	return rec and batlab.now() - rec.state_t0 or 0
end

-- The cycle the test is in: 0 during the precharge, 1..N during the
-- warm-up and measurement cycles (the seed's count); the last test's once
-- it ended.
function methods.cycle_number(ch)
	local rec = tests[ch]
	return rec and rec.cycle or 0
end

-- test_info() -> a table about the channel's latest test, or nil: name,
-- test_type, state, cycle, runtime, testing, status (the task's), ok,
-- message, verdict (once ended), logfile, events (the latest messages).
function methods.test_info(ch)
	local rec = tests[ch]
	if not rec then
		return nil
	end
	local r = rec.result or {}
	return {
		name = rec.name, test_type = rec.test_type, state = rec.state, cycle = rec.cycle,
		runtime = methods.runtime(ch), testing = rec.active, status = rec.task and rec.task.status,
		ok = r.ok, message = r.message, verdict = r.verdict, logfile = rec.logfile,
		events = deep_copy(rec.events),
	}
end

-- ch:log_lvl2(step) -> true | nil, err, code: the seed's level-2 row now,
-- in the running test's log, with `step` in its Test Type column, and the
-- averages start again. The device's charge counter is not cleared (the
-- seed cleared CHARGEH): the running step's accounting reads it.
function methods.log_lvl2(ch, step)
	if type(step) ~= "string" then
		error("bad argument #1 to 'log_lvl2' (step name expected, e.g. \"DISCHARGE\", got "
			.. type(step) .. ")", 2)
	end
	local rec = tests[ch]
	if not (rec and rec.active and rec.log2) then
		return nil, label(ch) .. ": log_lvl2: no test with a log runs on this channel", "ESTATE"
	end
	local now = batlab.now()
	local ok, err = rec.log2:level2(rec.lvl2:row(rec, now, step))
	rec.lvl2 = new_lvl2(now)
	if not ok then
		return nil, ("%s: log_lvl2: %s"):format(label(ch), tostring(err)), "EIO"
	end
	return true
end

-- end_all(why) -> n: ends the n tests still running (why: "the shell is
-- exiting"), in order - each task cancelled (its channel made safe), its
-- notice printed, its logs closed - before the program closes the Lua
-- state, whose collector would close the log files first. (A pool:close
-- under a test does the same through the scheduler, with the notice.)
function M.end_all(why)
	local running = {}
	for _, rec in pairs(tests) do
		if rec.active and rec.task then
			running[#running + 1] = rec
		end
	end
	table.sort(running, function(a, b)
		return a.serial ~= b.serial and a.serial < b.serial or a.serial == b.serial and a.index < b.index
	end)
	for _, rec in ipairs(running) do
		rec.cut_why = why
		rec.task:cancel()
		finish(rec)
	end
	return #running
end

local function state_of(ch)
	local rec = tests[ch]
	return rec and rec.state or "IDLE"
end

M.channel_methods = methods

---------------------------------------------------------------------------
-- Install

-- What the engine adds to the batlab module, batlab.Channel and
-- batlab.Device when it loads this file (src/lua/engine.c): the seed's
-- names, the channel methods and fields through batlab.extend_channel, the
-- device fields through batlab.extend_device.
M.exports = {
	Settings = M.Settings, Logger = M.Logger, logger = default_logger,
	TT_CYCLE = M.TT_CYCLE, TT_DISCHARGE = M.TT_DISCHARGE, l_test_state = M.l_test_state,
	use_settings = M.use_settings, loaded_settings = M.loaded_settings,
}
for code = 0, #M.l_test_state do
	local name = "TS_" .. M.l_test_state[code]
	M.exports[name] = M[name]
end

-- The seed's Channel attributes, read-only here: bat and slot (its device
-- and cell), and of the latest test: name, test_type (TT_*), test_state
-- (TS_*, TS_IDLE once it ended), settings (the table it runs with; before
-- any test, the loaded settings).
M.channel_fields = {
	state = state_of,
	bat = function(ch) return ch.device end,
	slot = function(ch) return ch.index end,
	name = function(ch) return tests[ch] and tests[ch].name end,
	test_type = function(ch)
		local rec = tests[ch]
		return rec and rec.test_type == "discharge" and M.TT_DISCHARGE or M.TT_CYCLE
	end,
	test_state = function(ch)
		local rec = tests[ch]
		return rec and rec.active and TEST_STATE[rec.state] or M.TS_IDLE
	end,
	settings = function(ch)
		local rec = tests[ch]
		return rec and rec.settings or (current_settings())
	end,
}

-- The seed's Batlab attributes: the settings later tests use (a
-- batlab.Settings, or nil) and the logger.
M.device_fields = {
	settings = function() return loaded end,
	logger = function() return the_logger() end,
}

return M
