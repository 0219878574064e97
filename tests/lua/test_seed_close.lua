-- A stock test (ch:start_test) still running when the program ends, or
-- when its pool closes, through the real program: it is ended in order -
-- task cancelled, channel safe, a notice, the logs closed with every row -
-- with no "error in a <close> handler"; when the program ends under it the
-- shell and `batlab lua` exit 1 (a test was cut short) instead of 0.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local lex = require "batlab.lexcelon_log"

local tmp = cli.tmpdir()
cli.write(tmp .. "/s.json", [[{ "cellPlaylistName": "P", "numWarmupCycles": 0, "numMeasurementCycles": 1,
  "restPeriod": 10, "impedanceReportingPeriod": 0 }]])

local START = 'local st = batlab.Settings(); assert(st:load("s.json")); '
	.. 'assert(dev:channel(0):start_test("A", "cycle")); batlab.sleep(30)'

-- The Lexcelon log's rows, and whether its last line is whole.
local function log_rows(path)
	local text = cli.read(path) or ""
	local _, rows = lex.read(text)
	return rows, text:sub(-1) == "\n"
end

local function no_close_error(err, what)
	t.ok(not err:find("<close>") and not err:find("closed file"), what .. ": no error from a close handler")
end

-- ---- the shell exits under a running test -----------------------------------------------

local code, out, err = cli.batlab("shell --sim -e " .. cli.quote(START), "cd " .. cli.quote(tmp) .. " &&")
t.is(code, 1, "shell: a test cut short exits 1")
t.like(out, "Batlab 1000 cell 0 %(A%): Test cut short in PRECHARGE after 0:00:30 %(the shell is exiting%); "
	.. "the channel was made safe, the logs closed", "a clear notice names the cell, the state and the time")
t.like(err, "batlab: shell: 1 test was still running at the end %(started with start_test%) and cut short: its channel was made safe",
	"and stderr says so")
no_close_error(err, "shell")
local rows, whole = log_rows(tmp .. "/batlab-log_P.csv")
t.ok(#rows >= 29 and whole, ("the log has every row up to the end (%d rows), its last line whole"):format(#rows))
t.is(rows[#rows] and rows[#rows][11], "PRECHARGE", "the last row is the precharge's")

-- The same from standard input (the prompt's path without a terminal).
os.remove(tmp .. "/batlab-log_P.csv")
local sh = cli.runner("shell")
out, err, code = sh("--sim", "local dir = " .. string.format("%q", tmp) .. "\n"
	.. 'batlab.logger = batlab.Logger{ dir = dir }\n'
	.. 'st = batlab.Settings(); assert(st:load(dir .. "/s.json"))\n'
	.. 'assert(dev:channel(1):start_test("B", "cycle")); batlab.sleep(20)\n')
t.is(code, 1, "shell reading standard input: exit 1")
t.like(out, "cell 1 %(B%): Test cut short in PRECHARGE", "with the notice")
no_close_error(err, "shell from standard input")
rows = log_rows(tmp .. "/batlab-log_P.csv")
t.ok(#rows >= 19, ("its log has its rows (%d)"):format(#rows))

-- A test that ended before the shell did: exit 0, no notice.
code, out, err = cli.batlab("shell --sim -e " .. cli.quote('local st = batlab.Settings(); assert(st:load("s.json")); '
	.. 'local ch = dev:channel(2); assert(ch:start_test("C", "cycle")); batlab.sleep(30); ch:end_test()'),
	"cd " .. cli.quote(tmp) .. " &&")
t.is(code, 0, "a test ended with end_test before the exit: exit 0 (" .. err .. ")")
t.ok(not out:find("cut short") and not err:find("cut short"), "and no cut-short notice")

-- ---- batlab lua: the program ends, or the pool closes, under a test ------------------------

cli.write(tmp .. "/end.lua", [[
local pool = assert(batlab.open { sim = true })
local dev = pool:active()
local st = batlab.Settings(); assert(st:load("s.json"))
assert(dev:channel(0):start_test("A", "cycle")); batlab.sleep(30)
print("script done")
]])
os.remove(tmp .. "/batlab-log_P.csv")
code, out, err = cli.batlab("lua end.lua", "cd " .. cli.quote(tmp) .. " &&")
t.is(code, 1, "batlab lua: a test running at the end: exit 1")
t.like(out, "script done\n.*Test cut short in PRECHARGE after 0:00:30 %(the program is exiting%)",
	"the notice comes after the script")
no_close_error(err, "batlab lua")
rows, whole = log_rows(tmp .. "/batlab-log_P.csv")
t.ok(#rows >= 29 and whole, ("the log has its rows (%d)"):format(#rows))

cli.write(tmp .. "/close.lua", [[
local pool = assert(batlab.open { sim = true })
local dev = pool:active()
local st = batlab.Settings(); assert(st:load("s.json"))
local ch = dev:channel(3)
assert(ch:start_test("D", "cycle")); batlab.sleep(30)
pool:close()
print("closed", ch:is_testing(), ch:test_info().verdict, ch:test_info().message)
]])
code, out, err = cli.batlab("lua close.lua", "cd " .. cli.quote(tmp) .. " &&")
t.like(out, "Test cut short in PRECHARGE after 0:00:30 %(its task was cancelled%).*\nclosed\tfalse\tincomplete\tcancelled",
	"pool:close ends the test first: a notice, then the channel is not testing, verdict incomplete")
t.is(code, 0, "the script went on and ended normally: exit 0 (" .. err .. ")")
no_close_error(err, "pool:close")

-- ---- in order: the channel is safe once the test is ended ---------------------------------

code, out, err = cli.batlab("shell --sim -e " .. cli.quote(START .. '; local n = require("batlab.seed").end_all("asked")'
	.. '; print("ended", n, dev:read_raw(0, batlab.MODE), dev:channel(0):is_testing())'), "cd " .. cli.quote(tmp) .. " &&")
t.like(out, "Test cut short in PRECHARGE after 0:00:30 %(asked%).*\nended\t1\t2\tfalse",
	"end_all: the channel is IDLE (2) and no longer testing when it returns")
t.is(code, 0, "no test runs at the exit any more: exit 0")

require("batlab.fsutil").rm_rf(tmp)
t.done()
