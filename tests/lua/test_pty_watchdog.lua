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
-- The server prints its pty path and serves until SIGTERM; the run starts
-- once that line was read.
write(tmp .. "/wd.sh", ([[
cd %s || exit 9
mkfifo fifo || exit 9
%s sim --pty --speed 200 > fifo & spid=$!
exec 3< fifo
IFS= read -r pty <&3
timeout 60 %s run wd.lua --port "$pty" --out wdrun --cell 0=W1
echo "exit=$?"
kill $spid; wait $spid
]]):format(q(tmp), q(bin), q(bin)))
local p = assert(io.popen("sh " .. q(tmp .. "/wd.sh") .. " 2>&1"))
local got = p:read("a")
p:close()
t.like(got, "W1%s+PASS%s+mode " .. batlab.MODE_DISCHARGE, "still discharging after 400 s of model time: " .. got:match("[^\n]*"))
t.like(got, "exit=0", "the run passes")

os.execute("rm -rf " .. q(tmp))
t.done()
