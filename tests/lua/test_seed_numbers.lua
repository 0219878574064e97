-- The seed's numbers: batlab.Encoder and the batlab.Packet decoders give
-- what Lexcelon's Python library (batlab 0.5.x, its encoder and packet
-- classes) gives for the same input. Each conversion is written out below
-- as the seed computes it (Python's int() truncates toward zero, 2**15 is
-- 32768, the order of the operations is the seed's, so the floating-point
-- results are the same bits) and compared on a table of inputs: 0,
-- negatives, the registers' full scales, and values on and around the
-- rounding boundaries. The documented differences are checked at the end.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local batlab = require "batlab"
local E = batlab.Encoder

-- Python's int() of a float.
local function int(x)
	return math.tointeger(x >= 0 and math.floor(x) or math.ceil(x))
end

local seed_enc = {
	asvoltage = function(v) return int(v * 32768 / 4.5) end,
	ascurrent = function(v) return int(v * (32768 - 1) / 4.096) end,
	asvcc = function(v) return int((32768 * 4.096) / v) end,
	asfreq = function(v) return int(v / (10000.0 / 256.0)) end,
	asioff = function(v) return int(v * 128.0) end,
	assetpoint = function(v) return int(v * 128) end,
	asmagdiv = function(v) return int(1 - math.log(v, 2)) end,
}

-- The seed's thermistor encoder (degC in; degF converts first).
local function seed_temp(c, rdiv, b)
	local inv = 1 / (c + 273.15)
	local r = math.exp((inv - (1 / (25 + 273.15))) * b) * 10000
	if r > 0 and rdiv > 0 then
		return int(32768 / (((1 / r) * rdiv) + 1))
	end
	return -100
end

-- The seed's charge encoder, as its formula reads (it raised instead: a
-- float & int), multiplier 6.
local function seed_charge(c)
	return int(c * 9.765625 / 4.096 / 6 * 32768)
end

local enc_inputs = {
	asvoltage = { 0, 2.8, 4.2, 3.7, 1.8, 4.5, 4.5 * 12345 / 32768, 4.5 * 12345.5 / 32768, 1.373291015625e-4,
		1e-9, 10, -0.01, -0.0001, -4.5, -1.373291015625e-4, 2.5, 3.0000001 },
	ascurrent = { 0, 4.0, 1.0, 0.1, 0.25, 0.05, 3.0, 4.096, 1.25e-4, 1 / 8000, 2.345, 5, -1, -4.096, -0.05 },
	asvcc = { 5.0, 4.25, 4.096, 1, 134217.728, 1e6, 3.3, -5, 0.001 },
	asfreq = { 0, 39.0625, 39.06, 78.125, 1000, 156.25, 9999.99, -39.0625, -40, 0.5 },
	asioff = { 0, 0.125, 1.1, 0.0078125, 0.0078, -1, -0.01, 4.49 },
	assetpoint = { 0, 1.1, 2.0, 4.49, 4.5, 5.0, 0.0078125, 0.00781, 0.0079, -1, -0.001, 600 / 128 },
	asmagdiv = { 2, 1, 0.5, 0.3, 0.25, 0.1, 1e-3, 4, 3, 2 ^ -7, 0.0078, 1e6 },
}
for _, name in ipairs { "asvoltage", "ascurrent", "asvcc", "asfreq", "asioff", "assetpoint", "asmagdiv" } do
	for _, v in ipairs(enc_inputs[name]) do
		local got = E(v)[name](E(v))
		t.is(got, seed_enc[name](v), ("Encoder(%.17g):%s() is the seed's"):format(v, name))
	end
end

-- The issue's examples, spelled out.
t.is(E(4.0):ascurrent(), 31999, "Encoder(4.0):ascurrent() = 31999 (32767 scale, truncated)")
t.is(E(2.8):asvoltage(), 20388, "Encoder(2.8):asvoltage() = 20388")
t.is(E(1000):asfreq(), 25, "Encoder(1000):asfreq() = 25")
t.is(E(1.1):assetpoint(), 140, "Encoder(1.1):assetpoint() = 140")
t.is(E(0.3):asmagdiv(), 2, "Encoder(0.3):asmagdiv() = 2")
t.is(E(-0.01):asvoltage(), -72, "Encoder(-0.01):asvoltage() = -72 (negative, not wrapped)")
t.is(E(10):asvoltage(), 72817, "Encoder(10):asvoltage() = 72817 (no clamp, as the seed)")

-- Temperatures: degC, degF, the cell's R and B, and the seed's -100 for a
-- divider resistance that is not positive.
local temp_cases = {
	{ 0, 1500, 3380 }, { 25, 1500, 3380 }, { 45, 1500, 3380 }, { 65, 1500, 3380 }, { 80, 1500, 3380 },
	{ -20, 1500, 3380 }, { -40, 1500, 3380 }, { 100, 1500, 3380 }, { 150, 1500, 3380 },
	{ 24.999, 1500, 3380 }, { 25, 1400, 3300 }, { 45, 1650, 3435 }, { 25, 10000, 3380 },
	{ 25, 0, 3380 }, { 25, -5, 3380 }, { 40, 1500, -3380 }, { 1e-9, 1500, 3380 },
}
for _, c in ipairs(temp_cases) do
	local deg, r, b = c[1], c[2], c[3]
	t.is(E(deg):c_astemperature(r, b), seed_temp(deg, r, b),
		("Encoder(%g):c_astemperature(%g, %g) is the seed's"):format(deg, r, b))
	local f = deg * 1.8 + 32
	t.is(E(f):astemperature(r, b), seed_temp((f - 32) / 1.8, r, b),
		("Encoder(%g):astemperature(%g, %g) (degF) is the seed's"):format(f, r, b))
end
t.is(E(45):c_astemperature(), seed_temp(45, 1500, 3380), "R and B default to the nominal 1500 and 3380")

-- Charge: the counter's halves from the seed's formula.
for _, c in ipairs { 0, 7.68e-5, 1, 3600, 1234.5, 99999.9, 1e5, 329853.4 } do
	local n = seed_charge(c)
	t.is(E(c):aschargel(), n & 0xFFFF, ("Encoder(%g):aschargel() is the seed formula's low half"):format(c))
	t.is(E(c):aschargeh(), n >> 16, ("Encoder(%g):aschargeh() is the seed formula's high half"):format(c))
end
t.is((E(3600):aschargeh() << 16) | E(3600):aschargel(), 46875000, "1 Ah = 46,875,000 counts")
t.is((E(3600):aschargeh(1) << 16) | E(3600):aschargel(1), 281250000, "multiplier 1: the hi-res channel")
t.raises(function() E(-5):aschargel() end, "does not fit the charge counter", "a negative charge raises")

-- Where the seed's arithmetic raises, so does this.
t.raises(function() E(0):asvcc() end, "a VCC of 0 V has no raw value", "asvcc(0) raises (the seed: ZeroDivisionError)")
t.raises(function() E(0):asmagdiv() end, "has no raw value", "asmagdiv(0) raises (the seed: math domain error)")
t.raises(function() E(-1):asmagdiv() end, "has no raw value", "asmagdiv(-1) raises")
t.raises(function() E(-273.15):c_astemperature() end, "absolute zero", "c_astemperature(-273.15) raises")

---------------------------------------------------------------------------
-- Decoders

local function sext(d)
	if d & 0x8000 ~= 0 then
		d = -0x10000 + d
	end
	return d
end

local seed_dec = {
	asvoltage = function(d) return sext(d) * 4.5 / 32768 end,
	ascurrent = function(d) return sext(d) * 4.096 / 32768 end,
	asvcc = function(d) return 32768 * 4.096 / d end,
	asfreq = function(d) return d * (10000.0 / 256.0) end,
	asioff = function(d) return d / 128.0 end,
	assetpoint = function(d) return d / 128.0 end,
	asmagdiv = function(d) return 2.0 / (2 ^ d) end,
}
local dec_regs = {
	asvoltage = { 0, "VOLTAGE" }, ascurrent = { 0, "CURRENT" }, asvcc = { "UNIT", "VCC" },
	asfreq = { "UNIT", "SINE_FREQ" }, asioff = { "UNIT", "SINE_OFFSET" },
	assetpoint = { 0, "CURRENT_SETPOINT" }, asmagdiv = { "UNIT", "SINE_MAGDIV" },
}
local dec_inputs = {
	asvoltage = { 0, 1, 20388, 20389, 30583, 32767, 32768, 32769, 65463, 65535 },
	ascurrent = { 0, 1, 8000, 31999, 32000, 32767, 32768, 0xFFF0, 65535 },
	asvcc = { 1, 26844, 31581, 32768, 65535 },
	asfreq = { 0, 1, 4, 25, 26, 65535 },
	asioff = { 0, 1, 16, 128, 65535 },
	assetpoint = { 0, 1, 140, 141, 256, 575, 640, 65535 },
	asmagdiv = { 0, 1, 2, 3, 7, 8, 9, 10, 15, 16 },
}
for _, name in ipairs { "asvoltage", "ascurrent", "asvcc", "asfreq", "asioff", "assetpoint", "asmagdiv" } do
	local ns, reg = dec_regs[name][1], dec_regs[name][2]
	for _, raw in ipairs(dec_inputs[name]) do
		local p = batlab.Packet { namespace = ns, addr = reg, value = raw }
		t.is(p[name](p), seed_dec[name](raw), ("Packet(%s = %d):%s() is the seed's"):format(reg, raw, name))
	end
end

-- Temperature decoders, with the seed's Rlist/Blist indexed by the cell.
local function seed_temp_c(d, rdiv, b)
	local r = rdiv / ((32768 / d) - 1)
	local tinv = (1 / (25 + 273.15)) + (math.log(r / 10000) / b)
	return (1 / tinv) - 273.15
end
local rlist, blist = { 1500, 1450, 1650, 10000 }, { 3380, 3300, 3435, 3950 }
for cell = 0, 3 do
	for _, raw in ipairs { 1, 100, 17460, 20826, 25092, 28494, 31114, 32767 } do
		local p = batlab.Packet { namespace = cell, addr = "TEMPERATURE", value = raw }
		local c = seed_temp_c(raw, rlist[cell + 1], blist[cell + 1])
		t.is(p:astemperature_c(rlist, blist), c, ("cell %d TEMPERATURE %d: astemperature_c is the seed's"):format(cell, raw))
		t.is(p:astemperature(rlist, blist), (c * 1.8) + 32, ("cell %d TEMPERATURE %d: astemperature is the seed's"):format(cell, raw))
	end
end

-- The seed's string forms.
local function pk(reg, raw)
	return batlab.Packet { namespace = 0, addr = reg, value = raw }
end
for mode = 0, 6 do
	t.is(pk("MODE", mode):asmode(), batlab.MODE_LIST[mode], "asmode " .. mode .. " is MODE_LIST[" .. mode .. "]")
end
t.is(pk("MODE", 7):asmode(), "MODE_UNKNOWN: 7", "asmode of an unknown mode: 'MODE_UNKNOWN: 7'")
t.is(pk("ERROR", 0):aserr(), "ERR_NONE", "aserr 0: ERR_NONE")
for bit = 0, 8 do -- the flags the seed's ERR_LIST names, alone and with a higher one
	local v = 1 << bit
	t.is(pk("ERROR", v):aserr(), batlab.ERR_LIST[bit], "aserr of bit " .. bit .. " is ERR_LIST[" .. bit .. "]")
	t.is(pk("ERROR", v | 0x800):aserr(), batlab.ERR_LIST[bit], "the lowest flag wins: bit " .. bit .. " | LOW_VCC")
end
t.is(pk("ERROR", 0x800):aserr(), "ERR_LOW_VCC", "aserr 0x800: ERR_LOW_VCC (ERR_LIST[11])")

-- Documented differences (docs/lua-api.md, the seed table).
t.is(batlab.Packet { namespace = "UNIT", addr = "VCC", value = 0 }:asvcc(), 0.0, "asvcc of raw 0 (no measurement yet) is 0 V; the seed raised")
t.fails(function() return pk("TEMPERATURE", 0):astemperature_c() end, "not a thermistor reading", "EPROTO",
	"a temperature of raw 0 fails (nil, message, code); the seed gave NaN")
t.fails(function() return pk("TEMPERATURE", 32768):astemperature() end, "not a thermistor reading", "EPROTO",
	"a temperature of raw 32768 fails; the seed gave NaN")

t.done()
