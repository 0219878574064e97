-- An impedance measurement the device stops (a cell over its temperature
-- limit) fails with the ERROR bits named, leaves the channel STOPPED with
-- ERROR readable, and never reports a number: from Lua, from a
-- procedure's cell:impedance() in a run, and from `batlab impedance`.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local batlab = require "batlab"
local lfs = require "lfs"

local BATLAB = cli.bin
local tmp = cli.tmpdir()
local write, read = cli.write, cli.read

local hot = tmp .. "/hot.json"
write(hot, [[{"devices":[{"cells":[{"temp_c":80},{},{},{}]}]}]])

local pool = assert(batlab.open { sim = hot })
local dev = pool:active()
local z, err, code = dev:channel(0):impedance()
t.is(z, nil, "a hot cell: no impedance")
t.like(tostring(err), "impedance: the device stopped the channel: TEMP_LIMIT_DCHG", "the error bits named")
t.is(code, "ESTATE", "a code")
t.is(dev:read_raw(0, batlab.MODE), batlab.MODE_STOPPED or 6, "the channel stays STOPPED")
t.is(dev:read_raw(0, batlab.ERROR), 32, "its ERROR stays readable (TEMP_LIMIT_DCHG)")
local z1 = dev:channel(1):impedance()
t.ok(type(z1) == "number" and z1 > 0.01, "a cool cell measures as before")
pool:close()

-- the command line: a failure, not 0 ohm and exit 0
local out = tmp .. "/out"
local _, how, rc = os.execute(("%s impedance --sim=%s 0 > %s 2>&1"):format(BATLAB, hot, out))
t.ok(how == "exit" and rc ~= 0, "batlab impedance on a hot cell fails (exit " .. tostring(rc) .. ")")
t.ok(not (read(out) or ""):find("ohm"), "and prints no ohms")
t.like(read(out) or "", "CELL0: impedance: the device stopped the channel: TEMP_LIMIT_DCHG",
	"but the error bits that stopped it")

-- a procedure's cell:impedance()
local proc = tmp .. "/z.lua"
write(proc, [[
return { run = function(cell)
	local z, err = cell:impedance()
	cell:log("Z " .. tostring(z) .. " " .. tostring(err))
	if not z then return false, err, "error" end
	return true, "measured"
end }
]])
local _, how2, rc2 = os.execute(("%s run %s --sim=%s --quiet --out %s/r --cell 0=H --cell 1=C > %s 2>&1")
	:format(BATLAB, proc, hot, tmp, out))
t.is(how2 == "exit" and rc2, 1, "the run exits 1")
local events = read(tmp .. "/r/events.log") or ""
t.like(events, "%[H%] Z nil .-the device stopped the channel: TEMP_LIMIT_DCHG", "the hot cell: no number")
t.like(events, "verdict: H ERROR", "its verdict is error")
t.like(events, "verdict: C PASS", "the cool cell passes")

os.execute("rm -rf " .. tmp)
t.done()
