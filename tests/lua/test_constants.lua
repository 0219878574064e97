-- The batlab module's constants, register metadata and name lookups, which
-- all come from the C tables in src/regs.c (PROTOCOL.md §4).
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local batlab = require "batlab"

t.is(batlab, _G.batlab, "require 'batlab' is the global batlab")
t.like(batlab.VERSION, "^%d+%.%d+%.%d+", "VERSION looks like a version")

-- Namespaces.
local namespaces = { CELL0 = 0, CELL1 = 1, CELL2 = 2, CELL3 = 3, UNIT = 4, BOOTLOADER = 5, COMMS = 0xFF }
for name, v in pairs(namespaces) do
	t.is(batlab[name], v, "namespace " .. name)
end

-- Register addresses, one of each namespace and then some.
local regs = {
	MODE = 0x00, ERROR = 0x01, STATUS = 0x02, CURRENT_SETPOINT = 0x03, REPORT_INTERVAL = 0x04,
	TEMPERATURE = 0x05, CURRENT = 0x06, VOLTAGE = 0x07, CHARGEL = 0x08, CHARGEH = 0x09,
	VOLTAGE_LIMIT_CHG = 0x0A, VOLTAGE_LIMIT_DCHG = 0x0B, CURRENT_LIMIT_CHG = 0x0C,
	CURRENT_LIMIT_DCHG = 0x0D, TEMP_LIMIT_CHG = 0x0E, TEMP_LIMIT_DCHG = 0x0F, DUTY = 0x10,
	TEMP_CALIB_R = 0x16, TEMP_CALIB_B = 0x17, CURR_LOWV_OFF_SCA = 0x1E,
	SERIAL_NUM = 0x00, DEVICE_ID = 0x01, FIRMWARE_VER = 0x02, VCC = 0x03, SINE_FREQ = 0x04,
	SYSTEM_TIMER = 0x05, SETTINGS = 0x06, SINE_OFFSET = 0x07, SINE_MAGDIV = 0x08,
	LED_MESSAGE = 0x09, BOOTLOAD = 0x0A, LOCK = 0x0F, ZERO_AMP_THRESH = 0x10, WATCHDOG_TIMER = 0x11,
	BL_BOOTLOAD = 0x00, BL_ADDR = 0x01, BL_DATA = 0x02,
	LED0 = 0x00, LED3 = 0x03, PSU = 0x04, PSU_VOLTAGE = 0x05, PSU_CUTOFF_HYST = 0x08,
}
for name, v in pairs(regs) do
	t.is(batlab[name], v, "register " .. name)
end

-- Codes.
local codes = {
	MODE_NO_CELL = 0, MODE_BACKWARDS = 1, MODE_IDLE = 2, MODE_CHARGE = 3, MODE_DISCHARGE = 4,
	MODE_IMPEDANCE = 5, MODE_STOPPED = 6,
	ERR_VOLTAGE_LIMIT_CHG = 0x0001, ERR_VOLTAGE_LIMIT_DCHG = 0x0002, ERR_CURRENT_LIMIT_CHG = 0x0004,
	ERR_CURRENT_LIMIT_DCHG = 0x0008, ERR_TEMP_LIMIT_CHG = 0x0010, ERR_TEMP_LIMIT_DCHG = 0x0020,
	ERR_BACKWARDS = 0x0040, ERR_NO_CELL = 0x0080, ERR_NO_PSU = 0x0100,
	ERR_HW_CURRENT_LIMIT = 0x0200, ERR_LOW_VCC = 0x0800,
	STAT_NO_PSU = 0x0100, STAT_NOT_INITIALIZED = 0x0200, STAT_NOT_CALIBRATED = 0x0400,
	STAT_LOW_VCC = 0x0800,
	SET_TRIM_OUTPUT = 0x0001, SET_VCC_COMPENSATION = 0x0002, SET_WATCHDOG_TIMER = 0x0004,
	SET_NO_PSU_DCHG_ENABLE = 0x0008, SET_CH0_HI_RES = 0x0010, SET_CH3_HI_RES = 0x0080,
	SET_SAFETY_DISABLE = 0x4000, SET_DEBUG = 0x8000,
	LED_OFF = 0, LED_BLIP = 1, LED_ON = 4, LED_PWM = 5, LED_SINE = 8,
	LOCK_UNLOCKED = 0, LOCK_LOCKED = 1, WDT_RESET = 255, COMMAND_ERROR = 257,
}
for name, v in pairs(codes) do
	t.is(batlab[name], v, "code " .. name)
end
t.is(math.type(batlab.MODE_CHARGE), "integer", "constants are integers")

-- The seed's lists, indexed like its Python lists (from 0), and maxima.
local modes = { [0] = "MODE_NO_CELL", "MODE_BACKWARDS", "MODE_IDLE", "MODE_CHARGE", "MODE_DISCHARGE",
	"MODE_IMPEDANCE", "MODE_STOPPED" }
t.is_deeply(batlab.MODE_LIST, modes, "MODE_LIST: the seed's, MODE_LIST[code]")
for code = 0, #batlab.MODE_LIST do
	t.is(batlab[batlab.MODE_LIST[code]], code, "batlab[MODE_LIST[" .. code .. "]] is " .. code)
end
t.is_deeply(batlab.ERR_LIST, { [0] = "ERR_VOLTAGE_LIMIT_CHG", "ERR_VOLTAGE_LIMIT_DCHG", "ERR_CURRENT_LIMIT_CHG",
	"ERR_CURRENT_LIMIT_DCHG", "ERR_TEMP_LIMIT_CHG", "ERR_TEMP_LIMIT_DCHG", "ERR_BACKWARDS", "ERR_NO_CELL",
	"ERR_NO_PSU", "ERR_HW_CURRENT_LIMIT", "", "ERR_LOW_VCC" },
	"ERR_LIST: the seed's by bit number, with the firmware's HW_CURRENT_LIMIT at bit 9")
for bit = 0, #batlab.ERR_LIST do
	local name = batlab.ERR_LIST[bit]
	if name ~= "" then
		t.is(batlab[name], 1 << bit, name .. " is bit " .. bit)
	end
end
t.is_deeply(batlab.NAMESPACE_LIST, { 0, 1, 2, 3, 4, 5, 0xFF }, "NAMESPACE_LIST")
t.is(batlab.CELLREG_MAX, 0x1E, "CELLREG_MAX as the seed's")
t.is(batlab.UNITREG_MAX, 0x11, "UNITREG_MAX as the seed's")
t.is(batlab.COMMREGS_MAX, 0x08, "COMMREGS_MAX: 8 (the seed's 5 stops before the firmware's last)")

-- batlab.registers: every register, in table order, also by name.
local regs_t = batlab.registers
t.is(#regs_t, 31 + 18 + 3 + 9, "batlab.registers holds every register (31 cell, 18 unit, 3 bootloader, 9 comms)")
local seen, dup = {}, nil
for i, r in ipairs(regs_t) do
	if seen[r.name] then
		dup = r.name
	end
	seen[r.name] = true
	if batlab[r.name] ~= r.addr then
		t.ok(false, "batlab." .. r.name .. " is its address")
	end
	if regs_t[r.name] ~= r then
		t.ok(false, "registers." .. r.name .. " is registers[" .. i .. "]")
	end
end
t.is(dup, nil, "register names are unique across namespaces (so they can be flat constants)")

local v = regs_t.VOLTAGE
t.is(v.name, "VOLTAGE", "VOLTAGE.name")
t.is(v.namespace, "cell", "VOLTAGE.namespace")
t.is(v.addr, 7, "VOLTAGE.addr")
t.is(v.unit, "V", "VOLTAGE.unit")
t.is(v.kind, "voltage", "VOLTAGE.kind")
t.is_deeply(v.access, { read = true, write = false, eeprom = false, measured = true,
	refused = false, guarded = false }, "VOLTAGE.access")
t.is(v.power_on, 20390, "VOLTAGE.power_on")
t.like(v.doc, "voltage", "VOLTAGE.doc")

local r = regs_t.TEMP_CALIB_R
t.is(r.kind, "ohms", "TEMP_CALIB_R.kind")
t.ok(r.access.eeprom and r.access.write and r.access.read, "TEMP_CALIB_R is EEPROM, read-write")
t.is(r.power_on, 1500, "TEMP_CALIB_R.power_on")
t.is(regs_t.VCC.namespace, "unit", "VCC is a unit register")
t.is(regs_t.VCC.unit, "V", "VCC.unit")
t.is(regs_t.VCC.kind, "vcc", "VCC.kind")
t.ok(regs_t.FIRMWARE_VER.access.refused, "FIRMWARE_VER refuses writes")
t.is(regs_t.BL_DATA.namespace, "bootloader", "BL_DATA is a bootloader register")
t.is(regs_t.PSU.namespace, "comms", "PSU is a comms register")
t.is(regs_t.TEMPERATURE.unit, "degC", "TEMPERATURE.unit")
t.is(regs_t.CURRENT_SETPOINT.kind, "setpoint", "CURRENT_SETPOINT.kind")
t.is(regs_t.WATCHDOG_TIMER.power_on, 255, "WATCHDOG_TIMER.power_on")
for _, reg in ipairs(regs_t) do
	if type(reg.kind) ~= "string" or type(reg.unit) ~= "string" or type(reg.doc) ~= "string"
		or type(reg.power_on) ~= "number" then
		t.ok(false, "register " .. reg.name .. " is fully described")
	end
end

-- batlab.lookup(ns, reg).
local function lookup(...)
	return table.pack(batlab.lookup(...))
end
t.is_deeply(lookup("CELL2", "VOLTAGE"), { 2, 7, n = 2 }, "lookup('CELL2', 'VOLTAGE')")
t.is_deeply(lookup("cell2", "voltage"), { 2, 7, n = 2 }, "lookup is case-insensitive")
t.is_deeply(lookup(batlab.UNIT, "FIRMWARE_VER"), { 4, 2, n = 2 }, "lookup(UNIT, 'FIRMWARE_VER')")
t.is_deeply(lookup("unit", "vcc"), { 4, 3, n = 2 }, "lookup('unit', 'vcc')")
t.is_deeply(lookup("COMMS", "PSU"), { 255, 4, n = 2 }, "lookup('COMMS', 'PSU')")
t.is_deeply(lookup("bootloader", "BL_ADDR"), { 5, 1, n = 2 }, "lookup('bootloader', 'BL_ADDR')")
t.is_deeply(lookup(3, 0x0A), { 3, 10, n = 2 }, "lookup(3, 10)")
t.is_deeply(lookup("0xff", "0x04"), { 255, 4, n = 2 }, "lookup with numbers as text")
t.is_deeply(lookup(0, 0x7F), { 0, 127, n = 2 }, "an address past the table is allowed (the device answers 257)")
t.raises(function() batlab.lookup("CELL9", "VOLTAGE") end,
	"bad argument #1 to 'lookup' %(unknown namespace 'CELL9'", "unknown namespace raises")
t.raises(function() batlab.lookup("UNIT", "VOLTAGE") end,
	"bad argument #2 to 'lookup' %(unknown register 'VOLTAGE' in namespace UNIT%)",
	"a cell register in UNIT raises")
t.raises(function() batlab.lookup("CELL0", "NOPE") end, "unknown register 'NOPE' in namespace CELL0",
	"unknown register raises")
t.raises(function() batlab.lookup(256, 0) end, "namespace 256 out of range", "namespace 256 raises")
t.raises(function() batlab.lookup(0, 128) end, "register address 128 out of range 0..127", "address 128 raises")
t.raises(function() batlab.lookup(0, 1.5) end, "must be an integer", "fractional address raises")
t.raises(function() batlab.lookup({}, 1) end, "namespace name or number expected, got table",
	"a table namespace raises")
t.raises(function() batlab.lookup(0) end, "register name or number expected, got no value",
	"a missing register raises")

-- Names of codes.
t.is(batlab.mode_name(batlab.MODE_CHARGE), "CHARGE", "mode_name(3)")
t.is(batlab.mode_name(6), "STOPPED", "mode_name(6)")
t.is(batlab.mode_name(7), nil, "mode_name of an unknown mode is nil")
t.is(batlab.led_name(batlab.LED_SINE), "SINE", "led_name(8)")
t.raises(function() batlab.mode_name("x") end, "number expected, got string", "mode_name('x') raises")
t.is_deeply(batlab.error_names(0), {}, "error_names(0) is empty")
t.is_deeply(batlab.error_names(batlab.ERR_VOLTAGE_LIMIT_CHG | batlab.ERR_NO_PSU | batlab.ERR_LOW_VCC),
	{ "VOLTAGE_LIMIT_CHG", "NO_PSU", "LOW_VCC" }, "error_names lists every set bit, low bit first")
t.is_deeply(batlab.error_names(0x0200), { "HW_CURRENT_LIMIT" }, "error bit 0x200 is HW_CURRENT_LIMIT")
t.is_deeply(batlab.status_names(0x0200 | 0x0400), { "NOT_INITIALIZED", "NOT_CALIBRATED" },
	"status bits 0x200, 0x400 have their status names")
t.is_deeply(batlab.error_names(0x1000 | 1), { "VOLTAGE_LIMIT_CHG", "0x1000" }, "an unnamed bit shows as hex")
t.is_deeply(batlab.settings_names(batlab.SET_WATCHDOG_TIMER | batlab.SET_DEBUG),
	{ "WATCHDOG_TIMER", "DEBUG" }, "settings_names")
t.raises(function() batlab.error_names(0x10000) end, "bit field must be 0..65535", "error_names(0x10000) raises")
t.raises(function() batlab.status_names() end, "number expected, got no value", "status_names() raises")

t.done()
