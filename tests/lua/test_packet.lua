-- batlab.Packet: fields, decoders (checked against PROTOCOL.md §5), the
-- display line, invalid packets, and argument errors.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local batlab = require "batlab"
local Packet = batlab.Packet

local function pkt(ns, addr, value, extra)
	local spec = { namespace = ns, addr = addr, value = value }
	for k, v in pairs(extra or {}) do
		spec[k] = v
	end
	return Packet(spec)
end

-- Fields.
local p = Packet { namespace = "CELL2", addr = "VOLTAGE", value = 30583, timestamp = 12.5 }
t.is(getmetatable(p).__name, "batlab.Packet", "metatable is batlab.Packet")
t.is(p.namespace, 2, "namespace")
t.is(p.addr, 7, "addr")
t.is(p:value(), 30583, "value() (the seed's method)")
t.is(p.data, 30583, "data (the seed's field)")
t.is(p.raw, 30583, "raw")
t.is(math.type(p:value()), "integer", "value() is an integer")
t.is(p.type, "RESPONSE", "type (the seed's: a command response)")
t.is(p.valid, true, "valid")
t.is(p.write, false, "write defaults to false")
t.is(p.timestamp, 12.5, "timestamp")
t.is(p.R, 1500, "R defaults to the nominal 1500")
t.is(p.B, 3380, "B defaults to the nominal 3380")
t.is(p.name, "VOLTAGE", "name")
t.is(p.code, nil, "a valid packet has no error code")
t.is(p.nosuchfield, nil, "an unknown field is nil")
t.is(Packet { namespace = 0, addr = 0, value = 0 }.timestamp, nil, "no timestamp by default")
t.is(pkt(0, 0x1F, 257).name, nil, "an address past the table has no name")
t.is(pkt(4, 6, -1).data, 65535, "a negative value is stored as its 16-bit two's complement")

-- Voltage (V = int16 * 4.5 / 32768).
t.near(pkt(0, "VOLTAGE", 30583):asvoltage(), 4.2, 1e-4, "30583 -> 4.2 V")
t.near(pkt(0, "VOLTAGE", 30584):asvoltage(), 4.2, 1e-4, "30584 -> 4.2 V (firmware default limit)")
t.near(pkt(0, "VOLTAGE_LIMIT_DCHG", 20389):asvoltage(), 2.8, 1e-4, "20389 -> 2.8 V")
t.near(pkt(0, "VOLTAGE", 13107):asvoltage(), 1.80, 1e-4, "13107 -> 1.80 V")
t.near(pkt(0, "VOLTAGE", 65536 - 73):asvoltage(), -0.010, 1e-4, "-73 -> -0.010 V (signed)")

-- Current (A = int16 * 4.096 / 32768 = raw / 8000).
t.near(pkt(1, "CURRENT", 32000):ascurrent(), 4.0, 1e-9, "32000 -> 4.0 A")
t.near(pkt(1, "CURRENT", 8000):ascurrent(), 1.0, 1e-9, "8000 -> 1.0 A")
t.near(pkt(1, "CURRENT", 0xFFF0):ascurrent(), -0.002, 1e-9, "0xFFF0 -> -0.002 A (signed)")

-- Setpoint and sine offset (A = raw / 128).
t.is(pkt(0, "CURRENT_SETPOINT", 256):assetpoint(), 2.0, "setpoint 256 -> 2.0 A")
t.is(pkt(0, "CURRENT_SETPOINT", 640):assetpoint(), 5.0, "setpoint 640 -> 5.0 A")
t.is(pkt(4, "SINE_OFFSET", 16):asioff(), 0.125, "sine offset 16 -> 0.125 A")

-- VCC (V = 134217.728 / raw).
t.near(pkt(4, "VCC", 26844):asvcc(), 5.00, 1e-3, "VCC 26844 -> 5.00 V")
t.near(pkt(4, "VCC", 31581):asvcc(), 4.25, 1e-3, "VCC 31581 -> 4.25 V")

-- Sine frequency and magnitude.
t.is(pkt(4, "SINE_FREQ", 1):asfreq(), 39.0625, "SINE_FREQ 1 -> 39.0625 Hz")
t.is(pkt(4, "SINE_FREQ", 4):asfreq(), 156.25, "SINE_FREQ 4 -> 156.25 Hz")
t.is(pkt(4, "SINE_MAGDIV", 2):asmagdiv(), 0.5, "SINE_MAGDIV 2 -> 0.5 App")
t.is(pkt(4, "SINE_MAGDIV", 0):asmagdiv(), 2.0, "SINE_MAGDIV 0 -> 2.0 App")
t.is(pkt(4, "SINE_MAGDIV", 8):asmagdiv(), 2 / 256, "SINE_MAGDIV 8 -> 2/2^8 App (the seed's; the firmware makes no sine)")
t.is(pkt(4, "SINE_MAGDIV", 9):asmagdiv(), 2 / 512, "SINE_MAGDIV 9 -> 2/2^9 App (the seed's)")

-- Temperature (R = 1500, B = 3380), PROTOCOL §5 table.
local temps = { [0] = 31114, [10] = 30277, [20] = 29163, [25] = 28494, [30] = 27750, [40] = 26044,
	[45] = 25092, [50] = 24084, [60] = 21940, [65] = 20826, [80] = 17460 }
for c, raw in pairs(temps) do
	t.near(pkt(0, "TEMPERATURE", raw):astemperature_c(), c, 0.02, ("%d -> %d degC"):format(raw, c))
end
t.near(pkt(0, "TEMPERATURE", 28494):astemperature(), 77.0, 0.01, "28494 -> 77 degF")
t.near(pkt(0, "TEMPERATURE", 25092):astemperature(), 113.0, 0.01, "25092 -> 113 degF")
t.near(pkt(0, "TEMP_LIMIT_DCHG", 20826):astemperature(), 149.0, 0.01, "20826 -> 149 degF")

-- Temperature with R and B: numbers, or lists by cell like the seed.
local tp = pkt(2, "TEMPERATURE", 28494)
local r_list, b_list = { 1500, 1500, 1400, 1500 }, { 3380, 3380, 3300, 3380 }
t.near(tp:astemperature_c(1400, 3300), 26.8695, 1e-3, "astemperature_c(R, B) numbers")
t.near(tp:astemperature_c(r_list, b_list), 26.8695, 1e-3, "lists are indexed by cell + 1 (cell 2 -> [3])")
t.near(tp:astemperature(r_list, b_list), 26.8695 * 1.8 + 32, 2e-3, "astemperature (degF) with lists")
t.near(tp:astemperature_c(nil, 3380), 25.0, 0.01, "nil R uses the packet's own")
local calibrated = pkt(2, "TEMPERATURE", 28494, { R = 1400, B = 3300 })
t.near(calibrated:astemperature_c(), 26.8695, 1e-3, "the packet's R and B (constructor)")
calibrated.R, calibrated.B = 1500, 3380
t.near(calibrated:astemperature_c(), 25.0, 0.01, "R and B can be set")
t.is(calibrated.R, 1500, "R reads back")
t.raises(function() tp:astemperature_c({ 1500 }, b_list) end,
	"bad argument #1 to 'astemperature_c' %(the R list has no number for cell 2 %(index 3%)%)",
	"a short R list raises")
t.raises(function() tp:astemperature("x") end, "number or list of numbers expected, got string",
	"a string R raises")
t.raises(function() tp:astemperature_c(-1) end, "R must be a positive number", "a negative R raises")
t.raises(function() tp:astemperature_c(1500, 0) end, "B must be a positive number", "a zero B raises")
t.fails(function() return pkt(0, "TEMPERATURE", 0):astemperature_c() end,
	"CELL0 TEMPERATURE: raw 0 is not a thermistor reading", "EPROTO", "raw 0 has no temperature")
t.fails(function() return pkt(0, "TEMPERATURE", 40000):astemperature() end,
	"raw 40000 is not a thermistor reading", "EPROTO", "raw >= 32768 has no temperature")

-- Mode, error, status, settings names (ERR_LIST: the seed's flag names).
t.is(pkt(0, "MODE", batlab.MODE_CHARGE):asmode(), "MODE_CHARGE", "asmode gives the constant's name")
t.is(batlab[pkt(0, "MODE", 6):asmode()], 6, "batlab[p:asmode()] == p:value()")
t.is(pkt(0, "MODE", 9):asmode(), "MODE_UNKNOWN: 9", "an unknown mode")
t.is(pkt(0, "ERROR", 0):aserr(), "ERR_NONE", "aserr of 0 is ERR_NONE (the seed's)")
t.is(pkt(0, "ERROR", 0x0903):aserr(), "ERR_VOLTAGE_LIMIT_CHG", "aserr names the lowest flag (the seed's)")
t.is(pkt(0, "ERROR", 0x0900):aserr(), "ERR_NO_PSU", "aserr of NO_PSU|LOW_VCC")
t.is(pkt(0, "ERROR", 0x0800):aserr(), "ERR_LOW_VCC", "aserr of LOW_VCC")
t.is(pkt(0, "ERROR", 0x0200):aserr(), "ERR_HW_CURRENT_LIMIT", "aserr 0x200 (a flag the seed did not name)")
t.is(pkt(0, "ERROR", 0x1000):aserr(), "ERR_0x1000", "aserr of an unnamed flag")
t.is_deeply(pkt(0, "ERROR", 0):aserr_list(), {}, "aserr_list of 0 is empty")
t.is_deeply(pkt(0, "ERROR", 0x0903):aserr_list(),
	{ "ERR_VOLTAGE_LIMIT_CHG", "ERR_VOLTAGE_LIMIT_DCHG", "ERR_NO_PSU", "ERR_LOW_VCC" },
	"aserr_list lists every flag set, low bit first")
t.is_deeply(pkt(0, "ERROR", 0x0200):aserr_list(), { "ERR_HW_CURRENT_LIMIT" }, "aserr_list 0x200")
for bit = 0, #batlab.ERR_LIST do -- indexed by bit number, as the seed's list
	local name = batlab.ERR_LIST[bit]
	if name ~= "" then
		t.is(pkt(0, "ERROR", batlab[name]):aserr(), name, "aserr of " .. name)
	end
end
t.is_deeply(pkt(0, "STATUS", 0x0880):asstatus(), { "STAT_NO_CELL", "STAT_LOW_VCC" }, "asstatus")
t.is_deeply(pkt(0, "STATUS", 0x0200):asstatus(), { "STAT_NOT_INITIALIZED" }, "asstatus 0x200")
t.is_deeply(pkt(4, "SETTINGS", 0x0014):assettings(), { "SET_WATCHDOG_TIMER", "SET_CH0_HI_RES" }, "assettings")

-- The display line.
t.is(pkt(2, "VOLTAGE", 30583):display(), "CELL2 VOLTAGE = 30583 (4.1999 V)", "display voltage")
t.is(tostring(pkt(2, "VOLTAGE", 30584)), "CELL2 VOLTAGE = 30584 (4.2001 V)", "tostring is display")
t.is(pkt(0, "CURRENT", 8000):display(), "CELL0 CURRENT = 8000 (1.0000 A)", "display current")
t.is(pkt(0, "TEMPERATURE", 28494):display(), "CELL0 TEMPERATURE = 28494 (25.00 degC)", "display temperature")
t.is(pkt(0, "MODE", 3):display(), "CELL0 MODE = 3 (CHARGE)", "display mode")
t.is(pkt(1, "ERROR", 0x0903):display(),
	"CELL1 ERROR = 2307 (VOLTAGE_LIMIT_CHG|VOLTAGE_LIMIT_DCHG|NO_PSU|LOW_VCC)", "display error bits")
t.is(pkt(1, "ERROR", 0):display(), "CELL1 ERROR = 0 (none)", "display no error")
t.is(pkt(4, "VCC", 26844):display(), "UNIT VCC = 26844 (5.000 V)", "display VCC")
t.is(pkt(4, "FIRMWARE_VER", 7):display(), "UNIT FIRMWARE_VER = 7", "display a raw count")
t.is(pkt(0, "REPORT_INTERVAL", 9):display(), "CELL0 REPORT_INTERVAL = 9 (1.0 s)", "display interval")
t.is(pkt(0, "REPORT_INTERVAL", 0):display(), "CELL0 REPORT_INTERVAL = 0 (off)", "display interval off")
t.is(pkt(0, "CURRENT_CALIB_OFF", 0xFFFE):display(), "CELL0 CURRENT_CALIB_OFF = 65534 (-2)", "display int16")
t.is(pkt("COMMS", "LED0", 8):display(), "COMMS LED0 = 8 (SINE)", "display LED")
t.is(pkt("UNIT", "LOCK", 1):display(), "UNIT LOCK = 1 (LOCKED)", "display lock")
t.is(pkt(1, 0x1F, 257):display(), "CELL1 0x1F = 257", "display an unknown address")
t.is(pkt(1, "VOLTAGE_LIMIT_CHG", 30584, { write = true }):display(),
	"write CELL1 VOLTAGE_LIMIT_CHG = 30584 (4.2001 V)", "display a write")

-- Equality.
t.ok(pkt(0, 7, 100) == pkt("cell0", "voltage", 100), "packets with the same contents are equal")
t.ok(pkt(0, 7, 100) ~= pkt(1, 7, 100), "packets of different cells differ")

-- Invalid packets: every decoder returns nil, message, code.
local bad = Packet { namespace = 1, addr = "VOLTAGE" }
t.is(bad.valid, false, "no value: invalid")
t.fails(function() return bad:value() end, "^CELL1 VOLTAGE: no valid value", "EPROTO", "invalid: value() fails")
t.ok(bad.data ~= bad.data, "invalid: data is NaN (the seed's)")
t.is(bad.code, "EPROTO", "invalid: code")
t.is(bad:display(), "CELL1 VOLTAGE = invalid (protocol error)", "display an invalid packet")
for _, m in ipairs { "asvoltage", "ascurrent", "asvcc", "asfreq", "asioff", "assetpoint", "asmagdiv",
	"asmode", "aserr", "aserr_list", "value", "asstatus", "assettings", "astemperature", "astemperature_c" } do
	t.fails(function() return bad[m](bad) end, "^CELL1 VOLTAGE: no valid value", "EPROTO",
		"invalid packet: " .. m .. " fails")
end
local flagged = Packet { namespace = 0, addr = 7, value = 257, valid = false }
t.is(flagged.valid, false, "valid=false with a value is invalid")
t.is(flagged.raw, 257, "raw keeps the raw value of an invalid packet")
t.ok(flagged.data ~= flagged.data, "data is NaN")

-- Argument errors.
t.raises(function() Packet() end, "bad argument #1 to 'Packet' %(table expected, got no value%)", "Packet() raises")
t.raises(function() Packet { addr = 1, value = 1 } end, "field 'namespace': missing", "missing namespace")
t.raises(function() Packet { namespace = 0, value = 1 } end, "field 'addr': missing", "missing addr")
t.raises(function() Packet { namespace = "CELL7", addr = 1, value = 1 } end,
	"field 'namespace': unknown namespace 'CELL7'", "bad namespace")
t.raises(function() Packet { namespace = "UNIT", addr = "VOLTAGE", value = 1 } end,
	"field 'addr': unknown register 'VOLTAGE' in namespace UNIT", "register of another namespace")
t.raises(function() Packet { namespace = 0, addr = 1, value = 70000 } end,
	"field 'value': register value 70000 out of range", "value out of range")
t.raises(function() Packet { namespace = 0, addr = 1, value = 1.5 } end,
	"field 'value': register value must be an integer", "fractional value")
t.raises(function() Packet { namespace = 0, addr = 1, value = "12" } end,
	"field 'value': integer expected, got string", "string value")
t.raises(function() Packet { namespace = 0, addr = 1, value = 1, write = 1 } end,
	"field 'write': boolean expected", "non-boolean write")
t.raises(function() Packet { namespace = 0, addr = 1, valid = true } end,
	"field 'value': missing", "valid without a value")
t.raises(function() Packet { namespace = 0, addr = 1, value = 1, R = -5 } end,
	"field 'R': positive number expected", "negative R")
t.raises(function() Packet { namespace = 0, addr = 1, value = 1, timestamp = "now" } end,
	"field 'timestamp': number expected", "string timestamp")
t.raises(function() p.value = 3 end, "batlab.Packet: field 'value' cannot be set", "value is read-only")
t.raises(function() p.R = 0 end, "R must be a positive number", "R must be positive")
t.raises(function() p.asvoltage(42) end, "bad argument #1 to 'asvoltage' %(batlab.Packet expected, got number%)",
	"a method on a non-packet raises with the class name")
t.raises(function() p.asvoltage(batlab.Encoder(1)) end, "batlab.Packet expected, got batlab.Encoder",
	"a method on an Encoder raises")
p.timestamp = 99
t.is(p.timestamp, 99, "timestamp can be set")
p.timestamp = nil
t.is(p.timestamp, nil, "timestamp can be cleared")

-- Charge (PROTOCOL §5: 1 Ah = 3600 C = 46,875,000 counts, x 7.68e-5 C).
t.near(batlab.ascharge(46875000), 3600.0, 1e-6, "46,875,000 counts -> 3600 C")
t.near(batlab.ascharge_ah(46875000), 1.0, 1e-12, "46,875,000 counts -> 1 Ah")
t.near(batlab.ascharge(1), 7.68e-5, 1e-15, "one count -> 7.68e-5 C")
t.near(batlab.ascharge(1, 1), 1.28e-5, 1e-15, "one hi-res count -> 1.28e-5 C")
t.near(batlab.ascharge_ah(46875000, 1), 1 / 6, 1e-12, "hi-res multiplier 1")
t.is(batlab.ascharge(0), 0.0, "0 counts -> 0 C")
t.near(batlab.ascharge(0xFFFFFFFF), 0xFFFFFFFF * 7.68e-5, 1e-3, "the full 32-bit counter")
t.raises(function() batlab.ascharge(-1) end, "charge counter must be 0..4294967295", "negative counter raises")
t.raises(function() batlab.ascharge(0x100000000) end, "charge counter must be", "33-bit counter raises")
t.raises(function() batlab.ascharge(1, 0) end, "charge multiplier must be 6 %(normal%) or 1", "multiplier 0 raises")
t.raises(function() batlab.ascharge("x") end, "number expected, got string", "string counter raises")

t.done()
