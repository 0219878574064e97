-- batlab.Encoder: engineering units -> raw register values (PROTOCOL.md §5),
-- rounding to the nearest count, and round trips through Packet decoders.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local batlab = require "batlab"
local E = batlab.Encoder

local e = E(4.2)
t.is(getmetatable(e).__name, "batlab.Encoder", "metatable is batlab.Encoder")
t.is(e.value, 4.2, "value")
t.is(e.data, 4.2, "data (the seed's name)")
t.like(tostring(e), "^batlab%.Encoder%(4%.2", "tostring")

-- Voltage: 4.2 V is 30583.47 counts: nearest is 30583 (the seed truncated
-- too; the firmware's default limit 30584 is the next count up).
t.is(E(4.2):asvoltage(), 30583, "4.2 V -> 30583")
t.is(E(2.8):asvoltage(), 20389, "2.8 V -> 20389 (the firmware's default; the seed gave 20388)")
t.is(E(1.8):asvoltage(), 13107, "1.8 V -> 13107")
t.is(E(0):asvoltage(), 0, "0 V -> 0")
t.is(E(-0.010):asvoltage(), 65536 - 73, "-0.010 V -> -73 as 16 bits")
t.is(E(10):asvoltage(), 32767, "10 V clamps to 32767")
t.is(math.type(E(4.2):asvoltage()), "integer", "encoders return integers")

-- Current: 8000 counts per amp.
t.is(E(4.0):ascurrent(), 32000, "4.0 A -> 32000 (the firmware's default limit)")
t.is(E(1.0):ascurrent(), 8000, "1.0 A -> 8000")
t.is(E(0.1):ascurrent(), 800, "0.1 A -> 800")
t.is(E(-1):ascurrent(), 0, "negative current clamps to 0")
t.is(E(5):ascurrent(), 32767, "5 A clamps to 32767")

-- Setpoint and sine offset: 128 counts per amp.
t.is(E(2.0):assetpoint(), 256, "2.0 A setpoint -> 256")
t.is(E(4.49):assetpoint(), 575, "4.49 A setpoint -> 575 (BL_SETPOINT_MAX)")
t.is(E(0.125):asioff(), 16, "0.125 A sine offset -> 16")

-- VCC.
t.is(E(5.0):asvcc(), 26844, "5.00 V -> 26844")
t.is(E(4.25):asvcc(), 31581, "4.25 V -> 31581")
t.is(E(0):asvcc(), 0, "0 V VCC -> 0")

-- Sine frequency and magnitude.
t.is(E(39.0625):asfreq(), 1, "39.0625 Hz -> 1")
t.is(E(156.25):asfreq(), 4, "156.25 Hz -> 4")
t.is(E(0.5):asmagdiv(), 2, "0.5 App -> 2")
t.is(E(2.0):asmagdiv(), 0, "2 App -> 0")
t.is(E(0):asmagdiv(), 8, "0 App -> 8 (no sine)")

-- Temperature: degF for astemperature (like the seed), degC for c_astemperature.
t.is(E(25):c_astemperature(), 28494, "25 degC -> 28494 (R 1500, B 3380 by default)")
t.is(E(25):c_astemperature(1500, 3380), 28494, "25 degC -> 28494 with R and B")
t.is(E(77):astemperature(1500, 3380), 28494, "77 degF -> 28494")
t.is(E(45):c_astemperature(), 25092, "45 degC -> 25092 (the charge limit default)")
t.is(E(65):c_astemperature(), 20826, "65 degC -> 20826")
t.is(E(0):c_astemperature(), 31114, "0 degC -> 31114")
t.is(E(80):c_astemperature(), 17460, "80 degC -> 17460")
t.is(E(25):c_astemperature(1400, 3300), 28744, "R and B change the raw value")
t.raises(function() E(25):c_astemperature(0) end, "R must be a positive number", "R 0 raises")
t.raises(function() E(25):astemperature(1500, -1) end, "B must be a positive number", "negative B raises")
t.raises(function() E(25):astemperature("x") end, "number expected, got string", "string R raises")

-- Charge: coulombs -> the halves of the 32-bit counter (x 6 by default).
t.is(E(3600):aschargel(), 46875000 & 0xFFFF, "1 Ah low half")
t.is(E(3600):aschargeh(), 46875000 >> 16, "1 Ah high half")
t.is((E(3600):aschargeh() << 16) | E(3600):aschargel(), 46875000, "1 Ah = 46,875,000 counts")
t.is((E(3600):aschargeh(1) << 16) | E(3600):aschargel(1), 281250000, "hi-res: multiplier 1")
t.near(batlab.ascharge((E(1234.5):aschargeh() << 16) | E(1234.5):aschargel()), 1234.5, 7.68e-5,
	"charge round trip within one count")
t.is(E(-5):aschargel(), 0, "negative charge -> 0")
t.raises(function() E(1):aschargel(0) end, "charge multiplier", "multiplier 0 raises")

-- Round trips: decode(encode(x)) is within half a count.
local function roundtrip(x, enc, dec, reg, tol, ...)
	local raw = E(x)[enc](E(x), ...)
	local p = batlab.Packet { namespace = 0, addr = reg, value = raw }
	t.near(p[dec](p, ...), x, tol, ("%s(%s(%g)) round trip"):format(dec, enc, x))
end
roundtrip(3.7, "asvoltage", "asvoltage", "VOLTAGE", 4.5 / 32768 / 2)
roundtrip(-0.5, "asvoltage", "asvoltage", "VOLTAGE", 4.5 / 32768 / 2)
roundtrip(2.345, "ascurrent", "ascurrent", "CURRENT", 1 / 8000 / 2)
roundtrip(1.5, "assetpoint", "assetpoint", "CURRENT_SETPOINT", 1 / 128 / 2)
roundtrip(33.3, "c_astemperature", "astemperature_c", "TEMPERATURE", 0.01)
roundtrip(100.0, "astemperature", "astemperature", "TEMPERATURE", 0.02)
roundtrip(33.3, "c_astemperature", "astemperature_c", "TEMPERATURE", 0.01, 1450, 3400)

-- Argument errors.
t.raises(function() batlab.Encoder() end, "bad argument #1 to 'Encoder' %(number expected, got no value%)", "Encoder() raises")
t.raises(function() E("volts") end, "number expected, got string", "Encoder('volts') raises")
t.raises(function() E(0 / 0) end, "value is NaN", "Encoder(NaN) raises")
t.raises(function() e.asvoltage(batlab.Packet { namespace = 0, addr = 7, value = 1 }) end,
	"batlab.Encoder expected, got batlab.Packet", "an encoder method on a Packet raises")
t.raises(function() e.asvcc({}) end, "batlab.Encoder expected, got table", "an encoder method on a table raises")

t.done()
