-- batlab.Encoder (the seed's arithmetic; every conversion is compared with
-- the seed's formula in test_seed_numbers.lua): the object, its argument
-- errors, round trips through the Packet decoders; and batlab.to_raw, the
-- project's own encoding (nearest count, clamped: PROTOCOL.md §5).
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local batlab = require "batlab"
local E = batlab.Encoder

local e = E(4.2)
t.is(getmetatable(e).__name, "batlab.Encoder", "metatable is batlab.Encoder")
t.is(e.value, 4.2, "value")
t.is(e.data, 4.2, "data (the seed's name)")
t.like(tostring(e), "^batlab%.Encoder%(4%.2", "tostring")
t.is(math.type(E(4.2):asvoltage()), "integer", "encoders return integers")
t.is(E(0.125):asioff(), 16, "asioff: 128 counts per amp")
t.is(E(600 / 128):assetpoint(), 600, "assetpoint does not clamp (dev:write does)")

-- Round trips: decode(encode(x)) is within one count (the seed truncates).
local function roundtrip(x, enc, dec, reg, tol, ...)
	local raw = E(x)[enc](E(x), ...)
	local p = batlab.Packet { namespace = 0, addr = reg, value = raw & 0xFFFF }
	t.near(p[dec](p, ...), x, tol, ("%s(%s(%g)) round trip"):format(dec, enc, x))
end
roundtrip(3.7, "asvoltage", "asvoltage", "VOLTAGE", 4.5 / 32768)
roundtrip(-0.5, "asvoltage", "asvoltage", "VOLTAGE", 4.5 / 32768)
roundtrip(2.345, "ascurrent", "ascurrent", "CURRENT", 2 / 8000)
roundtrip(1.5, "assetpoint", "assetpoint", "CURRENT_SETPOINT", 1 / 128)
roundtrip(33.3, "c_astemperature", "astemperature_c", "TEMPERATURE", 0.02)
roundtrip(100.0, "astemperature", "astemperature", "TEMPERATURE", 0.04)
roundtrip(33.3, "c_astemperature", "astemperature_c", "TEMPERATURE", 0.02, 1450, 3400)
t.near(batlab.ascharge((E(1234.5):aschargeh() << 16) | E(1234.5):aschargel()), 1234.5, 7.68e-5,
	"charge round trip within one count")

-- Argument errors.
t.raises(function() batlab.Encoder() end, "bad argument #1 to 'Encoder' %(number expected, got no value%)", "Encoder() raises")
t.raises(function() E("volts") end, "number expected, got string", "Encoder('volts') raises")
t.raises(function() E(0 / 0) end, "value is NaN", "Encoder(NaN) raises")
t.raises(function() E(1e300):asvoltage() end, "has no raw value", "a value past any integer raises")
t.raises(function() E(25):astemperature("x") end, "number expected, got string", "string R raises")
t.raises(function() E(1):aschargel(0) end, "charge multiplier", "multiplier 0 raises")
t.raises(function() e.asvoltage(batlab.Packet { namespace = 0, addr = 7, value = 1 }) end,
	"batlab.Encoder expected, got batlab.Packet", "an encoder method on a Packet raises")
t.raises(function() e.asvcc({}) end, "batlab.Encoder expected, got table", "an encoder method on a table raises")

-- batlab.to_raw(ns, reg, value [, R, B]): what batlab itself writes.
local function raw(reg, v, ...)
	return batlab.to_raw(0, reg, v, ...)
end
t.is(raw("VOLTAGE_LIMIT_DCHG", 2.8), 20389, "to_raw 2.8 V -> 20389 (the firmware's default; the seed 20388)")
t.is(raw("VOLTAGE_LIMIT_CHG", 4.2), 30583, "to_raw 4.2 V -> 30583")
t.is(raw("VOLTAGE_LIMIT_CHG", -0.010), 65536 - 73, "to_raw -0.010 V -> -73 as 16 bits")
t.is(raw("VOLTAGE_LIMIT_CHG", 10), 32767, "to_raw 10 V clamps to 32767")
t.is(raw("CURRENT_LIMIT_CHG", 4.0), 32000, "to_raw 4.0 A -> 32000 (the seed 31999)")
t.is(raw("CURRENT_LIMIT_CHG", -1), 0, "to_raw: a negative current limit clamps to 0")
t.is(raw("CURRENT_SETPOINT", 1.1), 141, "to_raw 1.1 A setpoint -> 141 (the seed 140)")
t.is(raw("TEMP_LIMIT_CHG", 45), 25092, "to_raw 45 degC -> 25092 (the firmware's default)")
t.is(raw("TEMP_LIMIT_CHG", 25, 1400, 3300), 28744, "to_raw with R and B")
t.is(batlab.to_raw("UNIT", "SINE_FREQ", 1000), 26, "to_raw 1000 Hz -> 26 (the seed 25)")
t.is(batlab.to_raw("UNIT", "SINE_MAGDIV", 0.3), 3, "to_raw 0.3 App -> 3 (the seed 2)")
t.is(batlab.to_raw("UNIT", "ZERO_AMP_THRESH", 0.25), 2000, "to_raw ZERO_AMP_THRESH 0.25 A -> 2000")
t.is(batlab.to_raw("CELL1", "MODE", 3), 3, "to_raw of a code is the integer")
t.raises(function() batlab.to_raw(0, "MODE", 2.5) end, "cannot be encoded for MODE", "a fraction for a code raises")
t.raises(function() batlab.to_raw(0, "CHARGEL", 1) end, "cannot be encoded for CHARGEL", "a charge half raises")
t.raises(function() batlab.to_raw(0, "VOLTAGE", 0 / 0) end, "finite number", "NaN raises")
t.raises(function() batlab.to_raw(0, "TEMP_LIMIT_CHG", 45, 0) end, "R must be a positive number", "R 0 raises")
t.raises(function() batlab.to_raw("UNIT", "VOLTAGE", 1) end, "unknown register 'VOLTAGE' in namespace UNIT",
	"a register of another namespace raises")

t.done()
