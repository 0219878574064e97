-- batlab.seed: the seed library's interface (batlab.Settings, batlab.Logger,
-- ch:start_test and friends) on the virtual Batlab in virtual time.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local batlab = require "batlab"
local seed = require "batlab.seed"
local fsutil = require "batlab.fsutil"
local lex = require "batlab.lexcelon_log"

local TMP = assert(fsutil.tmpdir("test-seed"))

-- ---- installed ---------------------------------------------------------------------

t.ok(type(seed.channel_methods.start_test) == "function", "the seed's channel methods")
t.ok(not pcall(batlab.extend_channel, { wait = function() end }), "extend_channel never replaces the class's own")
t.is(batlab.Settings, seed.Settings, "batlab.Settings")
t.is(batlab.Logger, seed.Logger, "batlab.Logger")
t.is(batlab.TT_CYCLE, 1, "batlab.TT_CYCLE is 1, as the seed's")
t.is(batlab.TT_DISCHARGE, 0, "batlab.TT_DISCHARGE is 0, as the seed's")
local TS = { IDLE = 0, CHARGE = 1, PRECHARGE = 2, DISCHARGE = 3, CHARGEREST = 4, DISCHARGEREST = 5, POSTDISCHARGE = 6 }
for name, code in pairs(TS) do
	t.is(batlab["TS_" .. name], code, "batlab.TS_" .. name .. " as the seed's")
	t.is(batlab.l_test_state[code], name, "batlab.l_test_state[" .. code .. "] (indexed from 0, as the seed's)")
end
t.is(require "batlab.seed", seed, "required twice: the same module")

-- Events would be printed among the TAP lines.
batlab.logger.echo = false
batlab.logger.dir = TMP

-- ---- Logger ----------------------------------------------------------------------------

local lg = batlab.Logger { dir = TMP }
t.is(getmetatable(lg).__name, "batlab.Logger", "Logger object")
t.ok(lg:log("a,b,c", "lines.csv"), "log(line, file)")
t.ok(lg:log("d", "lines.csv"), "log again")
t.ok(lg:log("abs", TMP .. "/abs.txt"), "log to an absolute path")
t.is(fsutil.read_file(TMP .. "/lines.csv"), "a,b,c\nd\n", "lines appended, one per call, in a relative file under dir")
t.is(fsutil.read_file(TMP .. "/abs.txt"), "abs\n", "absolute path as given")
t.fails(function() return lg:log("x", TMP .. "/no/such/dir/f") end, "No such file", nil, "an unwritable file fails")
t.raises(function() lg:log("x") end, "file name expected", "log without a file raises")
t.is(lg:logfile("My Playlist"), TMP .. "/batlab-log_My Playlist.csv", "stock log name")
t.is(lg:logfile("P", "A1"), TMP .. "/batlab-log_P_A1.csv", "per-cell log name")
t.is(lg:logfile("a/b"), TMP .. "/batlab-log_a_b.csv", "playlist made safe as a file name")
t.is(batlab.Logger():logfile("X"), "batlab-log_X.csv", "default: the current directory")

-- ---- refusals before any settings ------------------------------------------------------

local pool = assert(batlab.open { sim = true, seed = 5 })
local dev = pool:active()
local ch0, ch1, ch2, ch3 = dev:channel(0), dev:channel(1), dev:channel(2), dev:channel(3)

t.is(ch0.index, 0, "ch.index still works")
t.is(ch0.device, dev, "ch.device still works")
t.is(tostring(ch0), "batlab.Channel 0 of Batlab 1000", "tostring still works")
t.is(type(ch0.wait), "function", "C methods still found")
t.is(ch0.nonesuch, nil, "unknown keys are nil")
t.is(ch0.state, "IDLE", "state: IDLE before any test")
t.is(ch0:is_testing(), false, "is_testing: false")
t.is(ch0:runtime(), 0, "runtime: 0 before any test")
t.is(ch0:cycle_number(), 0, "cycle_number: 0")
t.is(ch0:test_info(), nil, "test_info: nil before any test")
t.is(ch0:end_test(), false, "end_test with no test: false")
t.is(ch0.bat, dev, "ch.bat: the seed's name of its Batlab")
t.is(ch2.slot, 2, "ch.slot: the seed's name of its cell")
t.is(ch0.name, nil, "ch.name: nil before any test")
t.is(ch0.test_type, batlab.TT_CYCLE, "ch.test_type: TT_CYCLE before any test (the seed's default)")
t.is(ch0.test_state, batlab.TS_IDLE, "ch.test_state: TS_IDLE")
t.is(ch0.settings, nil, "ch.settings: nil, nothing loaded")
t.is(dev.settings, nil, "dev.settings: nil, nothing loaded")
t.is(dev.logger, batlab.logger, "dev.logger: the logger tests write through")
t.is_deeply(pool:get_ports(), { "sim0" }, "pool:get_ports(): the Batlabs' ports")
t.is(pool:active_exists(), true, "pool:active_exists()")
t.fails(function() return ch0:log_lvl2("DISCHARGE") end, "no test with a log runs", "ESTATE",
	"log_lvl2 with no test running fails")
t.raises(function() ch0:log_lvl2() end, "step name expected", "log_lvl2 without a step name raises")

t.is(batlab.loaded_settings(), nil, "no settings loaded at start")
t.fails(function() return ch0:start_test("A", "cycle") end, "no settings loaded", "ESTATE",
	"start_test refuses without loaded settings")

-- ---- Settings ----------------------------------------------------------------------------

local FIXTURE = TMP .. "/seed.json"
do
	local f = assert(io.open(FIXTURE, "w"))
	f:write([[
{
    "cellPlaylistName": "Seed Test",
    "numWarmupCycles": 0,
    "numMeasurementCycles": 1,
    "restPeriod": 30,
    "reportingPeriod": 1,
    "impedanceReportingPeriod": 0,
    "storageDischarge": 0
}
]])
	f:close()
end

local st = batlab.Settings()
t.is(getmetatable(st).__name, "batlab.Settings", "Settings object")
t.is(st.restPeriod, 60, "defaults before load")
t.is(batlab.loaded_settings(), nil, "constructing does not load")
local bad = batlab.Settings()
t.fails(function() return bad:load(TMP .. "/missing.json") end, "missing%.json", nil, "a missing file fails")
t.is(batlab.loaded_settings(), nil, "a failed load loads nothing")
local ok, warnings = st:load(FIXTURE)
t.ok(ok, "load(file)")
t.is(type(warnings), "table", "load returns the warnings")
t.is(batlab.loaded_settings(), st, "a load makes the object the loaded settings")
t.is(st.restPeriod, 30, "settings read as fields")
t.is(st.numMeasurementCycles, 1, "numMeasurementCycles")
t.is(st.cellPlaylistName, "Seed Test", "cellPlaylistName")
t.is(st.logfile, "batlab-log_Seed Test.csv", "the seed's logfile field")
t.like(st.text, '"restPeriod": 30', "the file's text kept for the log header")
t.is(dev.settings, st, "dev.settings: the loaded settings")
t.is(ch0.settings.restPeriod, 30, "ch.settings: the loaded settings' values before a test")
-- view prints (like the seed) and returns the text; the print is caught
-- here to keep the TAP stream clean.
local printed
local real_print = print
_G.print = function(s) printed = s end
local shown = st:view()
_G.print = real_print
t.is(printed .. "\n", shown, "view prints the text it returns")
t.like(shown, "restPeriod%s+30", "view shows the values")
t.like(shown, "Settings from .-seed%.json", "view names the file")

-- ---- a cycle test in the background --------------------------------------------------------

t.raises(function() ch0:start_test("A", "charge") end, "cycle", "an unknown test type raises")
t.raises(function() ch0:start_test(nil, "cycle") end, "cell name expected", "a missing cell name raises")
t.raises(function() ch0:start_test("A", "cycle", -1) end, "timeout", "a negative timeout raises")

t.is(ch0:start_test("CELL_A", batlab.TT_CYCLE), true, "start_test with batlab.TT_CYCLE (1)")
t.is(ch0:is_testing(), true, "is_testing: true at once")
t.is(ch0.state, "PRECHARGE", "state: PRECHARGE")
t.is(ch0.test_state, batlab.TS_PRECHARGE, "test_state: TS_PRECHARGE")
t.is(ch0.test_type, batlab.TT_CYCLE, "test_type: TT_CYCLE")
t.is(ch0:test_info().test_type, "cycle", "a cycle test")
t.is(ch0.name, "CELL_A", "ch.name: the cell's")
t.fails(function() return ch0:start_test("CELL_B", "cycle") end, "is running", "EBUSY",
	"a second test on a busy channel is refused")

-- Loading other settings while the test runs changes nothing for it.
local other = batlab.Settings()
assert(other:parse('{"restPeriod": 600, "cellPlaylistName": "Other"}', "other.json"))
batlab.use_settings(other)

local seen, seen_ts, cycles, runtimes = {}, {}, {}, {}
local watcher = batlab.spawn(function()
	while ch0:is_testing() do
		if seen[#seen] ~= ch0.state then
			seen[#seen + 1] = ch0.state
			seen_ts[#seen_ts + 1] = ch0.test_state
		end
		cycles[#cycles + 1] = ch0:cycle_number()
		runtimes[#runtimes + 1] = ch0:runtime()
		batlab.sleep(5)
	end
	seen[#seen + 1] = ch0.state
end)
t.ok(batlab.run(), "batlab.run drives the test to its end")
t.is(watcher.status, "done", "the watcher saw it end")
t.is(table.concat(seen, " "), "PRECHARGE CHARGEREST DISCHARGE DISCHARGEREST CHARGE CHARGEREST IDLE",
	"states seen: the seed's sequence, then IDLE")
t.is(table.concat(seen_ts, " "), "2 4 3 5 1 4", "test_state: the seed's TS_ codes of those states")
t.is(ch0.test_state, batlab.TS_IDLE, "test_state: TS_IDLE after")
t.is(ch0.settings.restPeriod, 30, "ch.settings: what the test ran with (not what was loaded since)")
t.is(cycles[1], 0, "cycle_number 0 during the precharge")
t.is(cycles[#cycles], 1, "cycle_number 1 in the measurement cycle")
t.is(ch0:cycle_number(), 1, "cycle_number kept after the end")
local grows = #runtimes > 100
for i = 2, #runtimes do
	grows = grows and runtimes[i] > runtimes[i - 1]
end
t.ok(grows, ("runtime grows (%d readings)"):format(#runtimes))
t.is(ch0:is_testing(), false, "is_testing: false after")
t.is(ch0.state, "IDLE", "state: IDLE after")
local info = ch0:test_info()
t.is(info.ok, true, "the test passed: " .. tostring(info.message))
t.is(info.message, "completed", "completed")
t.is(info.name, "CELL_A", "test_info name")
t.is(info.test_type, "cycle", "test_info test_type")
t.is(info.status, "done", "the task is done")
t.is(info.events[#info.events], "Test Completed", "the seed's message as the last event")
t.ok(info.runtime > 3600 and info.runtime == ch0:runtime(), ("runtime frozen at the end (%.0f s)"):format(info.runtime))
local rt = ch0:runtime()
batlab.sleep(10)
t.is(ch0:runtime(), rt, "runtime stays once ended")
t.ok(math.abs(ch0:state_runtime() - 10) < 1, "state_runtime counts the IDLE time")

local LOG = TMP .. "/batlab-log_Seed Test.csv"
t.is(info.logfile, LOG, "the log file in the logger's dir, named after the test's playlist")

local function read_log()
	local text = assert(fsutil.read_file(LOG))
	local header, rows = lex.read(text)
	local heads = 0
	for line in text:gmatch("[^\n]+") do
		if line:find("^Cell Name,") then
			heads = heads + 1
		end
	end
	return text, header, rows, heads
end

local text, header, rows, heads = read_log()
t.ok(text:sub(1, 1) == '"' and text:find('""cellPlaylistName"": ""Seed Test""', 1, true),
	"the header starts with the settings file's text")
t.is_deeply(header, lex.COLUMNS, "the Lexcelon column header")
t.is(heads, 1, "one column header")
local l1, l2, names, bad_width = 0, {}, true, 0
for _, r in ipairs(rows) do
	if #r ~= lex.NCOLS then
		bad_width = bad_width + 1
	end
	names = names and r[1] == "CELL_A" and r[2] == "1000" and r[3] == "0"
	if r[12] ~= "" then
		l2[#l2 + 1] = r[12]
	else
		l1 = l1 + 1
	end
end
t.is(bad_width, 0, "every row has 23 fields")
t.ok(names, "rows name the cell, the serial and the channel")
t.ok(l1 > 1000, ("level-1 rows, one per sample (%d)"):format(l1))
t.is(table.concat(l2, " "), "PRECHARGE CHARGEREST DISCHARGE DISCHARGEREST CHARGE CHARGEREST",
	"level-2 rows, one per step, the step name in Test Type")
local l1_states = {}
for _, r in ipairs(rows) do
	if r[11] ~= "" and l1_states[#l1_states] ~= r[11] then
		l1_states[#l1_states + 1] = r[11]
	end
end
t.is(table.concat(l1_states, " "), "PRECHARGE CHARGEREST DISCHARGE DISCHARGEREST CHARGE CHARGEREST",
	"level-1 rows carry the test state")
local nrows = #rows

-- ---- a discharge test with a timeout, same log -------------------------------------------

batlab.use_settings(st)
t.is(ch1:start_test("CELL_B", batlab.TT_DISCHARGE, 600), true, "start_test TT_DISCHARGE with a timeout")
t.is(ch1.state, "DISCHARGE", "state: DISCHARGE")
t.is(ch1.test_type, batlab.TT_DISCHARGE, "test_type: TT_DISCHARGE")
t.is(ch1:test_info().test_type, "discharge", "batlab.TT_DISCHARGE (0) runs a discharge test")
t.is(ch1.test_state, batlab.TS_DISCHARGE, "test_state: TS_DISCHARGE")
t.ok(batlab.run(), "run to its end")
info = ch1:test_info()
t.is(info.ok, true, "the discharge test passed: " .. tostring(info.message))
t.ok(math.abs(ch1:runtime() - 600) < 3, ("ended by the timeout (%.1f s)"):format(ch1:runtime()))
t.is(ch1:cycle_number(), 0, "a discharge test has no cycles (the seed's count)")
t.is(ch1.state, "IDLE", "IDLE after")
text, header, rows, heads = read_log()
t.is(heads, 1, "the file written again keeps one header")
local b1, b2 = 0, 0
for i = nrows + 1, #rows do
	local r = rows[i]
	if r[1] == "CELL_B" and r[3] == "1" then
		if r[12] == "DISCHARGE" then
			b2 = b2 + 1
		elseif r[11] == "DISCHARGE" then
			b1 = b1 + 1
		end
	end
end
t.ok(b1 >= 590 and b2 == 1, ("the new rows appended (%d level-1, %d level-2)"):format(b1, b2))

-- ---- individualCellLogs: level-1 rows in the cell's own file ------------------------------

local per = batlab.Settings()
assert(per:parse('{"cellPlaylistName": "Per Cell", "individualCellLogs": true}', "per.json"))
batlab.use_settings(per)
t.is(ch1:start_test("CELL_P", "discharge", 20), true, "a test with individualCellLogs")
t.ok(batlab.run(), "runs")
local own = assert(fsutil.read_file(TMP .. "/batlab-log_Per Cell_CELL_P.csv"))
local own_header, own_rows = lex.read(own)
t.is_deeply(own_header, lex.COLUMNS, "the cell's file starts with the column header")
t.ok(own:sub(1, 9) == "Cell Name" and #own_rows >= 19, ("no settings line, level-1 rows (%d)"):format(#own_rows))
local _, main_rows = lex.read(assert(fsutil.read_file(TMP .. "/batlab-log_Per Cell.csv")))
t.ok(#main_rows == 1 and main_rows[1][12] == "DISCHARGE", "the main file gets the level-2 row")
batlab.use_settings(st)

-- ---- end_test in the middle -------------------------------------------------------------

t.is(ch2:start_test("CELL_C", 1), true, "start_test(name, 1) on channel 2")
batlab.sleep(600)
t.is(ch2:test_info().test_type, "cycle", "test type 1 is a cycle test (the seed's TT_CYCLE)")
t.is(ch2.state, "PRECHARGE", "precharging after 10 minutes")
t.is(dev:read(2, batlab.MODE):asmode(), "MODE_CHARGE", "the channel charges (dev:read(...):asmode())")
t.is(ch2:log_lvl2("MANUAL"), true, "log_lvl2 during the test")
t.ok(pool:sim_current(dev, 2) > 1.5, ("current flows (%.3f A)"):format(pool:sim_current(dev, 2)))
local task = ch2:test_info()
t.is(ch2:end_test(), true, "end_test")
t.is(ch2:is_testing(), false, "is_testing: false at once")
t.is(ch2.state, "IDLE", "state: IDLE")
batlab.sleep(5)
t.ok(math.abs(pool:sim_current(dev, 2)) < 0.01, ("no current (%.4f A)"):format(pool:sim_current(dev, 2)))
local mode = dev:read_raw(2, batlab.MODE)
t.ok(mode == batlab.MODE_STOPPED or mode == batlab.MODE_IDLE, "MODE STOPPED or IDLE: " .. tostring(batlab.mode_name(mode)))
info = ch2:test_info()
t.is(info.status, "cancelled", "the task was cancelled")
t.is(info.verdict, "incomplete", "verdict incomplete")
t.is(info.message, "ended by end_test", "why")
t.ok(task.runtime <= info.runtime and math.abs(info.runtime - 600) < 1, "runtime frozen at the end")
t.is(ch2:end_test(), false, "end_test again: nothing to end")
t.ok(batlab.run(), "nothing left running")

do -- the row log_lvl2 wrote
	local _, lrows = lex.read(assert(fsutil.read_file(LOG)))
	local row
	for _, r in ipairs(lrows) do
		if r[1] == "CELL_C" and r[12] == "MANUAL" then
			row = r
		end
	end
	t.ok(row ~= nil, "log_lvl2 wrote a level-2 row, the step name in Test Type")
	row = row or {}
	t.is(row[3], "2", "of channel 2")
	t.is(row[11], "", "no Test State (a level-2 row)")
	local amps = ch2:test_info() and ch2.settings.prechargeRate
	t.near(tonumber(row[13]), amps * 600, amps * 600 * 0.02, "its charge: the precharge's 10 minutes (C)")
	t.near(tonumber(row[19]), 600, 2, "its runtime: since the start")
	t.near(tonumber(row[17]), amps, 0.02, "its average current")
end

-- A channel that ended can test again.
t.is(ch2:start_test("CELL_C2", "discharge", 30), true, "a new test after end_test")
t.ok(batlab.run(), "runs")
t.is(ch2:test_info().ok, true, "and completes")

-- ---- an empty slot --------------------------------------------------------------------------

pool:sim_fault(dev, "cell_remove", { slot = 3 })
batlab.sleep(2)
t.fails(function() return ch3:start_test("CELL_D", "cycle") end, "no cell", "ENOENT",
	"start_test refuses an empty slot")
t.is(ch3:is_testing(), false, "nothing runs there")
t.is(ch3.state, "IDLE", "still IDLE")
t.is(ch3:test_info(), nil, "no test recorded")

-- ---- a test still running when the pool closes ----------------------------------------------

t.is(ch0:start_test("CELL_E", "cycle"), true, "start")
batlab.sleep(60)
pool:close()
t.is(ch0:is_testing(), false, "closing the pool ends the test")
t.is(ch0.state, "IDLE", "IDLE")
t.is(ch0:test_info().message, "cancelled", "why")

batlab.use_settings(nil)
t.is(batlab.loaded_settings(), nil, "use_settings(nil) clears")
t.raises(function() batlab.use_settings(42) end, "batlab.Settings", "use_settings checks its argument")

fsutil.rm_rf(TMP)
t.done()
