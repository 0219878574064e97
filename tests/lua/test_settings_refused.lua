-- Settings and names that pass a quick look but misbehave hours later are
-- refused before anything starts (exit 2, naming file, key, value and
-- range), or warned about: docs/settings.md "Errors, warnings, notes".
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local lfs = require "lfs"
local settings = require "batlab.settings"

local BATLAB = os.getenv("BATLAB") or "./batlab"
local tmp = cli.tmpdir()
local write, read = cli.write, cli.read

-- batlab ARGS -> exit code, stderr
local function batlab_cmd(args)
	local code, _, err = cli.batlab(args)
	return code, err
end

local function refused(json, pattern, what, mode)
	local path = tmp .. "/s.json"
	write(path, json)
	local code, err = batlab_cmd(("%s --settings %s --sim --out %s/r A1"):format(mode or "cycletest", path, tmp))
	t.is(code, 2, what .. ": exit 2")
	t.like(err, pattern, what .. ": the message")
	t.ok(not lfs.attributes(tmp .. "/r"), what .. ": nothing started")
end

local F = tmp:gsub("%p", "%%%0") .. "/s%.json"

-- ---- values -------------------------------------------------------------------------------
refused('{"dischargeRate": 0}', F .. ": key 'dischargeRate' = 0 must be above 0%.0 A, up to 4%.0 A %(at 0 A the cell never reaches lowVoltageCutoff",
	"dischargeRate 0")
refused('{"dischargeRate": 0}', "dischargeRate' = 0 must be above 0%.0 A", "dischargeRate 0 (discharge test)", "dischargetest")
refused('{"restPeriod": 1e300}', F .. ": key 'restPeriod' = 1e%+300 is outside 0%.0%.%.604800%.0 s %(7 days", "restPeriod 1e300")
refused('{"pulseEnable": true, "pulseChrgOffTime": 1e9}', "key 'pulseChrgOffTime' = 1000000000 is outside 0%.0%.%.86400%.0 s",
	"a pulse time of 31 years")
refused('{"trickleEnable": true, "trickleChrgRate": 0}', "key 'trickleChrgRate' = 0 A must be above 0 A when trickleEnable is on",
	"trickle charge at 0 A")
refused('{"trickleEnable": true, "trickleDischrgRate": 0}', "key 'trickleDischrgRate' = 0 A must be above 0 A", "trickle discharge at 0 A")
refused('{"numWarmupCycles": 0, "numMeasurementCycles": 0}',
	"key 'numWarmupCycles' = 0 and key 'numMeasurementCycles' = 0: a cycle test would run no cycle", "no cycles")

-- A charge rate of 0 is how Lexcelon's cr123a.json tests primary cells: allowed, with a warning.
local s, w = settings.parse('{"chargeRate": 0, "prechargeRate": 0}', "p.json")
t.ok(s ~= nil, "chargeRate 0 and prechargeRate 0 load")
t.like(table.concat(w or {}, "\n"), "p%.json: key 'chargeRate' = 0 A: every charge step is skipped", "chargeRate 0 warns")
t.like(table.concat(w or {}, "\n"), "p%.json: key 'prechargeRate' = 0 A: the precharge is skipped", "prechargeRate 0 warns")
s = settings.parse('{"trickleChrgRate": 0, "trickleDischrgRate": 0}', "p.json")
t.ok(s ~= nil, "trickle rates of 0 with trickle off load")

-- ---- the JSON text ------------------------------------------------------------------------
refused('{\n  "chargeRate": 1.0,\n  "restPeriod": 10,\n  "chargeRate": 2.0\n}',
	F .. ":4: key 'chargeRate' is given twice in one object %(first on line 2%)", "a key given twice")
refused('{"batlabSettings": {\n"enableTrickle": true,\n"enableTrickle": false}}',
	F .. ":3: key 'enableTrickle' is given twice", "a key given twice inside batlabSettings")
s = settings.parse('{"a": {"x": 1}, "b": {"x": 1}, "cellNames": ["x", "y"]}', "p.json")
t.ok(s ~= nil, "the same key in two objects is fine")
refused('{"chargeRate": 1.0}\n\0{"chargeRate": 3}', F .. ":2: a NUL byte %(column 1%)", "text after a NUL byte")
write(tmp .. "/s.json", '{"chargeRate": 1.0' .. string.rep(" ", 1024 * 1024) .. "}")
local code, err = batlab_cmd(("cycletest --settings %s/s.json --sim A1"):format(tmp))
t.is(code, 2, "a settings file over 1 MB: exit 2")
t.like(err, F .. ": the file is 1048595 bytes: a settings file is at most 1048576 bytes", "and its size")

-- ---- cell names ---------------------------------------------------------------------------
local long = string.rep("x", 65)
refused('{"cellNames": ["A1", "' .. long .. '"]}', "key 'cellNames' = %[%.%.%.%] item 2: cell name \"x+\" is 65 characters long: at most 64",
	"a long name in cellNames")
refused('{"cellNames": ["a\\u0007b"]}', "item 1: cell name \"a\\x07b\" holds a control character %(byte 7%)", "a control character in cellNames")
t.ok(settings.parse('{"cellNames": ["' .. string.rep("\u{e9}", 64) .. '"]}', "p.json") ~= nil, "64 characters (not bytes) are fine")
code, err = batlab_cmd("cycletest --sim " .. long)
t.is(code, 2, "a long NAME: exit 2")
t.like(err, "cell name \"x+\" is 65 characters long: at most 64", "a long NAME: the message")
code, err = batlab_cmd("cycletest --sim --cell \"0=$(printf 'a\\tb')\"")
t.is(code, 2, "--cell with a TAB: exit 2")
t.like(err, "%-%-cell: cell name \"a\\tb\" holds a control character %(byte 9%)", "--cell with a TAB: the message")
write(tmp .. "/names.txt", "# cells\nA1\nbad\1name\n")
code, err = batlab_cmd(("cycletest --sim --cells-from %s/names.txt"):format(tmp))
t.is(code, 2, "--cells-from with a control character: exit 2")
t.like(err, "names%.txt:3: cell name \"bad\\x01name\" holds a control character", "--cells-from: file, line and name")

-- ---- --timeout ----------------------------------------------------------------------------
code, err = batlab_cmd("dischargetest --sim --timeout 0 A1")
t.is(code, 2, "dischargetest --timeout 0: exit 2")
t.like(err, "%-%-timeout: must be more than 0 seconds", "--timeout 0: the message")
code, err = batlab_cmd("dischargetest --sim --timeout 1e999 A1")
t.is(code, 2, "dischargetest --timeout 1e999: exit 2")

os.execute("rm -rf " .. tmp)
t.done()
