-- The arguments every utility command shares, as a user types them: a
-- channel as 0 or CELL0 in every command that takes one, a --port that
-- does not exist, and --connect-timeout (not --timeout, which is the
-- discharge timeout of run and dischargetest).
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")

local function batlab(args)
	return cli.runner("")(args)
end

local out, err, code

-- ---- a channel: 0 and CELL0 alike, in every command ----------------------

-- Each command with a channel, as "0" and as "CELLn"/"celln": the same
-- output (virtual time and a fixed seed make it repeatable).
local with_cell = {
	{ "measure %s", "CELL2: " },
	{ "setpoints %s", "CELL2: setpoint" },
	{ "impedance %s", "CELL2: 0.0" },
	{ "charge %s 1", "CELL2: charging at 1.0000 A" },
	{ "discharge %s 1 --for 5", "CELL2: discharged 5.0 s" },
	{ "sinewave %s", "CELL2: sine at" },
	{ "stop %s", "CELL2: STOPPED" },
	{ "reset %s", "CELL2: IDLE" },
}
for _, c in ipairs(with_cell) do
	local by_number = { batlab(c[1]:format("2") .. " --sim") }
	t.is(by_number[3], 0, c[1]:format("2") .. ": exit 0")
	t.like(by_number[1], c[2], c[1]:format("2") .. ": output")
	for _, spelling in ipairs({ "CELL2", "cell2" }) do
		out, err, code = batlab(c[1]:format(spelling) .. " --sim")
		t.is(code, 0, c[1]:format(spelling) .. ": exit 0")
		t.is(out, by_number[1], c[1]:format(spelling) .. ": the same output as with 2")
	end
end

-- read and write name a channel's namespace the same way, with the same
-- messages for a wrong one
out, err, code = batlab("read --sim cell1 mode")
t.is(out, "CELL1 MODE = 2 (IDLE)\n", "read cell1 mode")
local wrong = {
	{ "measure CELL4 --sim", "batlab: measure: channel out of range: CELL4 (cells are 0..3)\n" },
	{ "impedance cell9 --sim", "batlab: impedance: channel out of range: cell9 (cells are 0..3)\n" },
	{ "read CELL7 VOLTAGE --sim", "batlab: read: channel out of range: CELL7 (cells are 0..3)\n" },
	{ "write CELL7 MODE idle --sim", "batlab: write: channel out of range: CELL7 (cells are 0..3)\n" },
	{ "stop CELLx --sim", "batlab: stop: 'CELLx' is not a cell (0..3, CELL0..CELL3 or all)\n" },
	{ "sinewave CELL --sim", "batlab: sinewave: 'CELL' is not a cell (0..3, CELL0..CELL3)\n" },
	{ "charge cell+1 1 --sim", "batlab: charge: 'cell+1' is not a cell (0..3, CELL0..CELL3 or all)\n" },
}
for _, w in ipairs(wrong) do
	out, err, code = batlab(w[1])
	t.is(code, 2, w[1] .. ": exit 2")
	t.is(err, w[2], w[1] .. ": the message")
	t.is(out, "", w[1] .. ": nothing on standard output")
end

-- ---- --connect-timeout: the utility commands' connect timeout ----------

out, err, code = batlab("measure 0 --sim --connect-timeout 5")
t.is(code, 0, "--connect-timeout 5: exit 0")
t.like(out, "^VCC: ", "--connect-timeout 5: the measurement")
out, err, code = batlab("info --sim --connect-timeout=2.5s")
t.is(code, 0, "--connect-timeout=2.5s: exit 0")
out, err, code = batlab("list --sim --connect-timeout 0")
t.is(code, 2, "--connect-timeout 0: exit 2")
t.is(err, "batlab: list: --connect-timeout must be more than 0 s, not '0'\n", "--connect-timeout 0: the message")
out, err, code = batlab("measure --sim --timeout 5")
t.is(code, 2, "--timeout on a utility command: exit 2 (it is the discharge timeout of run)")
t.is(err, "batlab: measure: unknown option '--timeout' (the time devices may take to connect is --connect-timeout S)\n",
	"--timeout: pointing at --connect-timeout")
out = batlab("stop --help")
t.like(out, "\n  %-%-connect%-timeout S\n +give devices S seconds to connect", "--help lists --connect-timeout")
t.ok(not out:find("--timeout", 1, true), "--help no longer lists --timeout")

-- ---- --port naming a port that is not there: exit 2, every command ------

local missing = "/nonexistent/ttyACM9"
local hint = "(is it plugged in? 'batlab list' shows the Batlabs found)"
for _, c in ipairs({ "info", "measure 0", "setpoints", "read UNIT VCC", "write CELL0 MODE idle",
	"impedance 0", "charge 0 1", "discharge 0 1", "sinewave 0", "stop", "reset", "lowcurrent 0.05",
	"calibration backup /nonexistent/cal.txt", "run scripts/cycle-test.lua", "cycletest",
	"dischargetest", "shell -e 'print(1)'" }) do
	local name = c:match("^calibration %S+") or c:match("^%S+")
	out, err, code = batlab(c .. " --port " .. missing)
	t.is(code, 2, c .. " --port MISSING: exit 2")
	t.is(err, ("batlab: %s: %s: no such port %s\n"):format(name, missing, hint), c .. " --port MISSING: the message")
end
out, err, code = batlab("list --port " .. missing)
t.is(code, 2, "list --port MISSING: exit 2 (not a list with one port that failed)")
t.is(err, "batlab: list: " .. missing .. ": no such port (is it plugged in?)\n", "list --port MISSING: the message")
t.is(out, "", "list --port MISSING: no table")
out, err, code = batlab("measure --port sim1")
t.is(code, 2, "a virtual unit's name without --sim: exit 2")
t.is(err, "batlab: measure: sim1: no such port (a virtual unit's name needs --sim)\n", "saying what is missing")
-- a port that exists but is no Batlab is still a device error
out, err, code = batlab("info --port /dev/null")
t.is(code, 3, "a port that is there but not a serial port: exit 3")
t.like(err, "^batlab: /dev/null: not a serial port", "saying so")

t.done()
