-- `batlab run ... --port P1 --port P2 NAME...`: cells spread over the
-- Batlabs on the given ports, in serial-number order (here two virtual
-- units served on ptys by one `batlab sim --pty --devices 2`).
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local cjson = require "cjson"

local tmp = cli.tmpdir()
local q = cli.quote
cli.write(tmp .. "/two.lua", [[
return { name = "two", run = function(cell)
  local s = assert(cell:wait())
  return true, ("serial %d ch %d"):format(cell.device.sn, cell.channel)
end }
]])
cli.write(tmp .. "/two.sh", ([[
cd %s || exit 9
mkfifo fifo || exit 9
%s sim --pty --devices 2 --speed 20 > fifo 2>/dev/null & spid=$!
exec 3< fifo
IFS= read -r p1 <&3
IFS= read -r p2 <&3
timeout 60 %s run two.lua --port "$p1" --port "$p2" --out r --no-report A B C D E F G H
echo "exit=$?"
timeout 20 %s run two.lua --sim --port sim0 --port sim1 --out r2 A
echo "sim-exit=$?"
kill $spid; wait $spid
]]):format(q(tmp), q(cli.abs_bin), q(cli.abs_bin), q(cli.abs_bin)))
local p = assert(io.popen("sh " .. q(tmp .. "/two.sh") .. " 2>&1"))
local out = p:read("a")
p:close()
t.like(out, "exit=0", "a run over two ports passes")
for i, name in ipairs { "A", "B", "C", "D", "E", "F", "G", "H" } do
	t.like(out, name .. "%s+PASS%s+serial " .. (i <= 4 and 1000 or 1001) .. " ch " .. (i - 1) % 4,
		name .. " on Batlab " .. (i <= 4 and 1000 or 1001) .. " channel " .. (i - 1) % 4)
	local rows = select(2, (cli.read(tmp .. "/r/cells/" .. name .. ".csv") or ""):gsub("\n", "")) - 1
	t.ok(rows >= 1, name .. ": its time series has rows (" .. rows .. ")")
end
local run = cjson.decode(cli.read(tmp .. "/r/run.json") or "{}")
t.is(type(run.devices) == "table" and #run.devices or 0, 2, "run.json lists both Batlabs")
t.like(out, "sim%-exit=2", "--port twice with --sim: exit 2")
t.like(out, "with %-%-sim, %-%-port names one virtual unit", "and why")

os.execute("rm -rf " .. q(tmp))
t.done()
