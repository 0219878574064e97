-- A host run against `batlab sim --pty --speed X` keeps the model's device
-- watchdog fed: the 25.5 s watchdog runs X times faster too, so the 2 s
-- refresh of a real Batlab would trip it at --speed 13 and above. A
-- channel discharging for 2 s of real time at --speed 200 (400 s of model
-- time) must still be discharging.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local lfs = require "lfs"

local bin = cli.abs_bin
local tmp = cli.tmpdir()
local write, read = cli.write, cli.read
local q = cli.quote

write(tmp .. "/wd.lua", [[
return {
  name = "wd",
  run = function(cell)
    cell:discharge(0.5)
    batlab.sleep(2)
    local s = cell:wait()
    return s.mode == batlab.MODE_DISCHARGE, "mode " .. tostring(s.mode)
  end,
}
]])
-- The server prints its pty path and serves until SIGTERM; `cmd` runs
-- once that line was read, with its port in "$pty". -> what it printed.
local function against_pty(name, speed, cmd)
	write(("%s/%s.sh"):format(tmp, name), ([[
cd %s || exit 9
mkfifo %s.fifo || exit 9
%s sim --pty --speed %d > %s.fifo & spid=$!
exec 3< %s.fifo
IFS= read -r pty <&3
%s
echo "exit=$?"
kill $spid; wait $spid
]]):format(q(tmp), name, q(bin), speed, name, name, cmd))
	local p = assert(io.popen("sh " .. q(tmp .. "/" .. name .. ".sh") .. " 2>&1"))
	local out = p:read("a")
	p:close()
	return out
end
local got = against_pty("wd", 200, ("timeout 60 %s run wd.lua --port \"$pty\" --out wdrun --cell 0=W1"):format(q(bin)))
t.like(got, "W1%s+PASS%s+mode " .. batlab.MODE_DISCHARGE, "still discharging after 400 s of model time: " .. got:match("[^\n]*"))
t.like(got, "exit=0", "the run passes")

-- Energy is integrated over the host's time but reported over the
-- device's: at --speed 200 the charge counter runs 200 times faster than
-- the host's clock, and Wh / Ah must still be the cell's voltage.
local last
for line in (read(tmp .. "/wdrun/cells/W1.csv") or ""):gmatch("[^\n]+") do
	last = line
end
local f = {}
for v in (last or ""):gmatch("([^,]*),?") do
	f[#f + 1] = v
end
local v, ah, wh = tonumber(f[8]), tonumber(f[11]), tonumber(f[12])
t.ok(v and ah and wh and math.abs(ah) > 0.01 and math.abs(wh / ah - v) < 0.25,
	("at --speed 200, Wh / Ah %.3f is about the voltage %.3f (%s Ah, %s Wh)"):format(
		(wh or 0) / ((ah and ah ~= 0) and ah or 1), v or 0, tostring(ah), tostring(wh)))

-- At --speed 1 the model's clock is the host's: once two reads of its
-- SYSTEM_TIMER told the host so, the watchdog is refreshed about every
-- 2 s, not at the pace a fast model needs (a fixed 10 ms would cost a lab
-- of 64 ptys 6,400 round trips a second).
write(tmp .. "/slow.lua", [[
return { name = "slow", run = function(cell)
  cell:discharge(0.5)
  batlab.sleep(4)
  return cell:wait().mode == batlab.MODE_DISCHARGE
end }
]])
got = against_pty("slow", 1, ("BATLAB_TRACE=trace.txt timeout 60 %s run slow.lua --port \"$pty\" --out slowrun "
	.. "--cell 0=S1 --quiet"):format(q(bin)))
t.like(got, "exit=0", "the run at --speed 1 passes")
local first, late = nil, 0
for line in (read(tmp .. "/trace.txt") or ""):gmatch("[^\n]+") do
	local at = tonumber(line:match("^(%S+)"))
	first = first or at
	if line:match("W UNIT WATCHDOG_TIMER") and at and at - first > 1.5 then
		late = late + 1
	end
end
t.ok(first ~= nil, "the requests were traced")
t.ok(late >= 1 and late <= 6, ("after the first 1.5 s the watchdog was refreshed %d times in about "
	.. "3 s (every ~2 s of the model's time)"):format(late))

-- A command of the command line paces itself by the model's clock too:
-- `batlab charge --for 2` at --speed 200 charges for 400 s of the model's
-- time (its watchdog fed, its counter read right: 2 A x 400 s = 0.222 Ah).
got = against_pty("cmd", 200, ("timeout 60 %s charge 0 2 --for 2 --port \"$pty\""):format(q(bin)))
t.like(got, "exit=0", "charge --for on a pty at --speed 200 passes")
t.ok(not got:find("the device stopped it", 1, true), "its watchdog was fed")
local ah = tonumber(got:match("([%d.]+) Ah"))
t.ok(ah and math.abs(ah - 0.2222) < 0.05, ("the charge is the model's 400 s at 2 A: %s Ah"):format(tostring(ah)))

os.execute("rm -rf " .. q(tmp))
t.done()
