-- The seed's read-a-packet habit end to end, through the real program on
-- the virtual Batlab: `dev:read(...)` gives a batlab.Packet whose decoders
-- work in `batlab shell --sim -e` and in a procedure run by `batlab run
-- --sim`; dev:write answers the write's packet, clamped as every host
-- does. The commands docs/lua-api.md and docs/cli.md print are run here
-- exactly as printed.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")

local function shell(code)
	return cli.batlab("shell --sim -e " .. cli.quote(code))
end

-- ---- batlab shell --sim -e --------------------------------------------------------------

local code, out, err = shell('print(dev:read("CELL0", "VOLTAGE"):asvoltage())')
t.is(code, 0, "dev:read(...):asvoltage() in the shell: exit 0 " .. err)
local volts = tonumber(out:match("^([%d.]+)\n$"))
t.ok(volts and volts > 3 and volts < 4.3, "a cell voltage in volts: " .. out)

code, out, err = shell([[
local p = dev:read(batlab.CELL0, batlab.VOLTAGE)
print(p:value(), p.data, p:asvoltage(), p.valid, p.write, p.namespace, p.addr, type(p.timestamp))
print(p)
local tp = dev:read(1, "TEMPERATURE")
print(tp:astemperature_c(), tp:astemperature(dev.R, dev.B))
print(dev:read("UNIT", "VCC"):asvcc(), dev:read(0, "MODE"):asmode(), dev:read(0, "ERROR"):aserr())
print(dev:write(0, "CURRENT_SETPOINT", 600))
print(dev:read_raw(0, "CURRENT_SETPOINT"))
]])
t.is(code, 0, "packets in the shell: exit 0 " .. err)
local lines = {}
for l in out:gmatch("[^\n]+") do
	lines[#lines + 1] = l
end
local f = {}
for w in (lines[1] or ""):gmatch("[^\t]+") do
	f[#f + 1] = w
end
local raw = math.tointeger(tonumber(f[1]))
t.ok(raw ~= nil and raw > 20000 and raw < 32767, "p:value() is the raw voltage: " .. tostring(f[1]))
t.is(f[2], f[1], "p.data is the same")
t.is(f[3], raw and ("%.14g"):format(raw * 4.5 / 32768), "p:asvoltage() decodes it (V = raw * 4.5 / 32768)")
t.is(table.concat({ f[4], f[5], f[6], f[7], f[8] }, " "), "true false 0 7 number",
	"valid, not a write, namespace, address, a timestamp")
t.is(lines[2], ("CELL0 VOLTAGE = %d (%.4f V)"):format(raw or 0, (raw or 0) * 4.5 / 32768),
	"print(p) shows the raw and the decoded value")
local c, fahr = (lines[3] or ""):match("^(%S+)\t(%S+)$")
t.ok(tonumber(c) and math.abs(tonumber(c) - 25) < 5, "astemperature_c(): about 25 degC: " .. tostring(c))
t.ok(tonumber(fahr) and math.abs(tonumber(fahr) - (tonumber(c) * 1.8 + 32)) < 1e-9,
	"astemperature(dev.R, dev.B): the same in degF")
local vcc, mode, errs = (lines[4] or ""):match("^(%S+)\t(%S+)\t(%S+)$")
t.ok(tonumber(vcc) and tonumber(vcc) > 4.5 and tonumber(vcc) < 5.5, "asvcc(): about 5 V: " .. tostring(vcc))
t.is(mode, "MODE_IDLE", "asmode(): the seed's name")
t.is(errs, "ERR_NONE", "aserr(): the seed's ERR_NONE")
t.is(lines[5], "write CELL0 CURRENT_SETPOINT = 575 (4.4922 A)", "dev:write answers the write's packet, clamped to 575")
t.is(lines[6], "575", "the device holds 575 (read_raw)")

-- ---- a procedure under batlab run --sim ---------------------------------------------------

local tmp = cli.tmpdir()
cli.write(tmp .. "/readings.lua", [[
return {
  name = "readings",
  run = function(cell)
    assert(cell:charge(1.0))
    for _ = 1, 5 do assert(cell:wait()) end
    local dev, i = cell.device, cell.channel
    local v = assert(dev:read(i, batlab.VOLTAGE))
    local a = assert(dev:read(i, batlab.CURRENT))
    local sp = assert(dev:read(i, batlab.CURRENT_SETPOINT))
    cell:log("packet V=%.4f raw=%d I=%.3f setpoint=%.4f mode=%s", v:asvoltage(), v:value(), a:ascurrent(),
      sp:assetpoint(), dev:read(i, batlab.MODE):asmode())
    return true, "read"
  end,
}
]])
code, out, err = cli.batlab(("run %s/readings.lua --sim --out %s/r --cell 2=P1"):format(tmp, tmp))
t.is(code, 0, "a procedure reading packets runs: " .. (out .. err):match("[^\n]*"))
local ev = cli.read(tmp .. "/r/events.log") or ""
local pv, praw, pi, psp, pmode = ev:match("packet V=([%d.]+) raw=(%d+) I=([%-%d.]+) setpoint=([%d.]+) mode=(%S+)")
t.ok(pv ~= nil, "the procedure logged its packets' values")
t.is(tonumber(pv), pv and tonumber(("%.4f"):format(tonumber(praw) * 4.5 / 32768)), "asvoltage() of its raw value")
t.ok(pi and math.abs(tonumber(pi) - 1.0) < 0.05, "ascurrent(): the 1 A charge: " .. tostring(pi))
t.ok(psp and tonumber(psp) > 0.9 and tonumber(psp) < 1.5, "assetpoint(): about the 1 A it regulates: " .. tostring(psp))
t.is(pmode, "MODE_CHARGE", "asmode(): charging")

-- ---- the commands the docs print ------------------------------------------------------------

code, out = cli.batlab([[shell --sim -e 'print(dev:read("CELL0", "VOLTAGE"))']])
t.is(code, 0, "docs: print(dev:read(...))")
t.like(out, "^CELL0 VOLTAGE = %d+ %(%d%.%d%d%d%d V%)\n$", "docs: the packet's line")
code, out = cli.batlab([[shell --sim -e 'print(dev:read("CELL0", "VOLTAGE"):asvoltage())']])
t.is(code, 0, "docs: dev:read(...):asvoltage()")
t.like(out, "^%d%.%d+\n$", "docs: volts")
code, out = cli.batlab([[shell --sim -e 'print(dev:read_raw("CELL0", "VOLTAGE"))']])
t.is(code, 0, "docs: dev:read_raw(...)")
t.like(out, "^%d+\n$", "docs: the bare integer")

t.done()
