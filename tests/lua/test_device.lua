-- batlab.open, Pool, Device and Channel against virtual Batlabs in
-- virtual time: results, argument errors, samples, limits with per-cell
-- R/B, concurrency, impedance, calibration, firmware, unplug.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local batlab = require "batlab"

local logged = {}
batlab.task_log(function(task, msg) logged[#logged + 1] = msg end)

local tmpfiles = {}
local function tmp()
	local p = os.tmpname()
	tmpfiles[#tmpfiles + 1] = p
	return p
end

-- ---- batlab.open ------------------------------------------------------------
t.raises(batlab.open, "unknown option 'bogus'", "open: unknown options raise", { bogus = 1 })
t.raises(batlab.open, "devices must be an integer 1..64", "open: devices out of range raises", { sim = true, devices = 0 })
t.raises(batlab.open, "sim must be true or a layout file name", "open: sim of the wrong type raises", { sim = 3 })
t.raises(batlab.open, "sim and port exclude each other", "open: sim and port raise", { sim = true, port = "/dev/x" })
t.fails(batlab.open, "nonexistent", "EINVAL", "open: a missing layout file fails", { sim = "/nonexistent/layout.json" })
t.fails(batlab.open, "no Batlab with serial number 4242", "ENOENT", "open: an unknown serial fails",
	{ sim = true, serial = 4242 })
t.fails(batlab.open, "/nonexistent/ttyACM9", "ENOENT", "open: a missing port fails", { port = "/nonexistent/ttyACM9" })

local pool = assert(batlab.open { sim = true, devices = 3, serial = 1001 })
t.is(getmetatable(pool).__name, "batlab.Pool", "open returns a batlab.Pool")
t.like(tostring(pool), "^batlab.Pool %(3 devices, virtual%)$", "tostring(pool)")
t.fails(batlab.open, "already open", "EBUSY", "a second open fails while one is open", { sim = true })
t.ok(batlab.now() < 5, "virtual time starts near 0 (" .. batlab.now() .. ")")

local devs = pool:devices()
t.is(#devs, 3, "three devices")
t.is(devs[1].sn .. "," .. devs[2].sn .. "," .. devs[3].sn, "1000,1001,1002", "in serial order")
t.is(pool:devices()[2], devs[2], "the same Device object each time")
t.is(pool:active(), devs[2], "serial=1001 made 1001 active")
t.is(pool:find(1002), devs[3], "find by serial")
t.is(pool:find(devs[1].port), devs[1], "find by port")
t.is(pool:find(999), nil, "find an unknown serial: nil")
t.is(pool:find("nope"), nil, "find an unknown port: nil")
t.raises(function() pool:find({}) end, "serial number or port name expected", "find({}) raises")
t.is(pool:set_active(devs[3]), true, "set_active")
t.is(pool:active(), devs[3], "and it is active")
t.raises(function() pool:set_active(42) end, "batlab.Device expected", "set_active(42) raises")
local msgs = pool:messages()
local connected = 0
for _, m in ipairs(msgs) do
	if m:find("connected") then
		connected = connected + 1
	end
end
t.is(connected, 3, "a 'connected' message per device")
t.is(#pool:messages(), 0, "messages are drained")
pool:close()
t.ok(devs[1].detached, "devices of a closed pool are detached")
t.fails(function() return devs[1]:read(0, "MODE") end, "device detached", "ECLOSED", "I/O on a detached device fails")
t.is(devs[1].sn, 1000, "its identity stays readable")

-- ---- Device fields and registers -----------------------------------------------
pool = assert(batlab.open { sim = true })
local dev = pool:active()
t.is(getmetatable(dev).__name, "batlab.Device", "a batlab.Device")
t.is(dev.sn, 1000, "dev.sn")
t.is(dev.ver, 7, "dev.ver (firmware)")
t.is(dev.port, "sim0", "dev.port")
t.is_deeply(dev.R, { 1500, 1500, 1500, 1500 }, "dev.R: per cell, index cell+1")
t.is_deeply(dev.B, { 3380, 3380, 3380, 3380 }, "dev.B")
t.is(dev.connected, true, "dev.connected")
t.like(tostring(dev), "^batlab.Device 1000 on sim0$", "tostring(dev)")

batlab.sleep(2)  -- let the first measurements latch
local t_read = batlab.now()
local p = dev:read("CELL0", "VOLTAGE")
t.is(getmetatable(p).__name, "batlab.Packet", "read returns a batlab.Packet (the seed's)")
t.is(select("#", dev:read("CELL0", "VOLTAGE")), 1, "and only that")
t.is(p.valid, true, "valid")
t.is(p.namespace, 0, "its namespace")
t.is(p.addr, batlab.VOLTAGE, "its address")
t.is(p.write, false, "a read's packet is no write")
t.ok(p.timestamp >= t_read and p.timestamp <= batlab.now(), "timestamped from the clock (batlab.now)")
local v = p:value()
t.is(math.type(v), "integer", "p:value() is the raw value")
t.is(p.data, v, "p.data too")
t.is(dev:read_raw("CELL0", "VOLTAGE"), v, "read_raw gives the bare integer")
t.is(math.type(dev:read_raw("CELL0", "VOLTAGE")), "integer", "read_raw is an integer")
local volts = p:asvoltage()
t.ok(volts > 3 and volts < 4.3, "a plausible cell voltage from p:asvoltage() " .. volts)
t.is(volts, v * 4.5 / 32768, "asvoltage of the raw value")
t.is(tostring(p), ("CELL0 VOLTAGE = %d (%.4f V)"):format(v, volts), "tostring shows raw and decoded")
t.near(dev:read(0, "TEMPERATURE"):astemperature_c(), 25, 5, "a read's temperature decodes with its cell's R and B")
t.is(dev:read(0, batlab.VOLTAGE), dev:read("cell0", "voltage"), "names in any case or numbers")
t.is(dev:read_raw("UNIT", "FIRMWARE_VER"), 7, "a unit register")
t.is(dev:read("UNIT", "FIRMWARE_VER"):value(), 7, "a unit register's packet")
t.raises(function() dev:read("CELL9", "VOLTAGE") end, "unknown namespace 'CELL9'", "unknown namespace raises")
t.raises(function() dev:read(0, "NOPE") end, "unknown register 'NOPE'", "unknown register raises")
t.raises(function() dev:read_raw(0, "NOPE") end, "unknown register 'NOPE'", "read_raw: unknown register raises")
t.raises(function() dev:read(0) end, "register name or number expected", "missing register raises")
t.raises(function() dev.read(42, 0, 0) end, "batlab.Device expected", "a method on a non-device raises")

local wp = dev:write(2, "VOLTAGE_LIMIT_CHG", 29156)
t.is(getmetatable(wp).__name, "batlab.Packet", "write returns the write's packet")
t.is(wp.write, true, "a write packet")
t.is(wp:value(), 29156, "with the value written")
t.is(wp.namespace, 2, "its namespace")
t.is(wp.addr, batlab.VOLTAGE_LIMIT_CHG, "its address")
t.is(type(wp.timestamp), "number", "timestamped")
t.like(tostring(wp), "^write CELL2 VOLTAGE_LIMIT_CHG = 29156 %(4%.0", "tostring of a write")
t.is(dev:read_raw(2, "VOLTAGE_LIMIT_CHG"), 29156, "read back")
t.is(pool:sim_reg(dev, 2, "VOLTAGE_LIMIT_CHG"), 29156, "the virtual Batlab agrees")
t.fails(function() return dev:write("UNIT", "FIRMWARE_VER", 9) end, "write UNIT FIRMWARE_VER: device refused",
	"EDEVICE", "a refused write fails with EDEVICE")
t.raises(function() dev:write(0, "MODE", 70000) end, "out of range", "a value out of range raises")
t.raises(function() dev:write(0, "MODE") end, "integer expected", "a missing value raises")
t.is(dev:write_verify(1, "CURRENT_LIMIT_CHG", 24000), true, "write_verify")
t.is(dev:read_raw(1, "CURRENT_LIMIT_CHG"), 24000, "write_verify wrote")

-- What every host does to a write (the seed, `batlab write`): the setpoint
-- clamp and the SETTINGS mask.
t.is(dev:write(3, "CURRENT_SETPOINT", 600):value(), 575, "CURRENT_SETPOINT 600 is written as 575")
t.is(pool:sim_reg(dev, 3, "CURRENT_SETPOINT"), 575, "the device holds 575")
t.is(dev:write(3, "CURRENT_SETPOINT", -3):value(), 0, "a negative setpoint is written as 0 (the seed's)")
t.is(pool:sim_reg(dev, 3, "CURRENT_SETPOINT"), 0, "the device holds 0")
t.is(dev:write(3, "CURRENT_SETPOINT", 575):value(), 575, "575 itself is written as is")
t.is(dev:write_verify(3, "CURRENT_SETPOINT", 700), true, "write_verify clamps too (and verifies 575)")
t.is(pool:sim_reg(dev, 3, "CURRENT_SETPOINT"), 575, "the device holds 575")
t.is(dev:write(3, "CURRENT_SETPOINT", 0):value(), 0, "back to 0")
t.is(dev:write("UNIT", "SETTINGS", 3 | batlab.SET_WATCHDOG_TIMER):value(), batlab.SET_WATCHDOG_TIMER,
	"SETTINGS: TRIM_OUTPUT and VCC_COMPENSATION are cleared")
t.is(pool:sim_reg(dev, "UNIT", "SETTINGS"), batlab.SET_WATCHDOG_TIMER, "the device holds the masked value")
t.is(dev:write(2, "VOLTAGE_LIMIT_DCHG", 600):value(), 600, "other registers are written as given")

-- charge, impedance, set_current
local coulombs, raw = dev:charge(0)
t.is(coulombs, 0.0, "charge of an idle cell: 0 C")
t.is(raw, 0, "and the raw counter")
t.raises(function() dev:charge(4) end, "cell must be 0..3", "charge(4) raises")
local ohms = dev:impedance(3)
t.ok(type(ohms) == "number" and ohms > 0.005 and ohms < 0.5, "impedance in ohms: " .. tostring(ohms))
t.is(dev:read_raw(3, "MODE"), batlab.MODE_IDLE, "the mode is restored after impedance")
t.is(dev:read_raw("UNIT", "LOCK"), batlab.LOCK_UNLOCKED, "and LOCK released")
t.is(dev:set_current(0, 1.5), true, "set_current")
t.raises(function() dev:set_current(0, 9) end, "current must be", "set_current(9 A) raises")
t.raises(function() dev:set_current(0, -1) end, "current must be", "set_current(-1) raises")
dev:set_current(0, 0)

-- channels
local ch = dev:channel(1)
t.is(getmetatable(ch).__name, "batlab.Channel", "dev:channel returns a batlab.Channel")
t.is(dev:channel(1), ch, "the same Channel object each time")
t.is(ch.index, 1, "ch.index")
t.is(ch.device, dev, "ch.device")
t.is(ch.last, nil, "no sample yet")
t.raises(function() dev:channel(4) end, "cell must be 0..3", "channel(4) raises")
t.raises(function() ch:charge(0) end, "current must be > 0", "charge(0) raises")
t.raises(function() ch:discharge("x") end, "number expected", "discharge('x') raises")
t.raises(function() ch:wait(-1) end, "timeout must be", "wait(-1) raises")
t.like(tostring(ch), "^batlab.Channel 1 of Batlab 1000$", "tostring(ch)")

-- ---- samples ------------------------------------------------------------------------
local s = assert(ch:wait())
for _, k in ipairs { "time", "step_time", "mode", "mode_name", "status", "status_names", "error",
                     "error_names", "voltage", "current", "temp_c", "charge_ah", "energy_wh", "vcc",
                     "cell", "serial" } do
	t.ok(s[k] ~= nil, "a sample has " .. k)
end
t.is(s.mode_name, "IDLE", "an idle channel")
t.is(s.current, 0.0, "no current when idle")
t.near(s.time, batlab.now(), 0.05, "time is batlab.now() of the report (the tick reads follow it)")
t.is(s.cell, 1, "cell")
t.is(s.serial, 1000, "serial")
t.near(s.temp_c, 25, 1.0, "temperature in degC")
t.near(s.vcc, 5.0, 0.05, "VCC")
t.is(type(s.status_names), "table", "status names")
t.is_deeply(ch.last, s, "ch.last is the latest sample")

-- discharge: current negative, charge_ah vs the integral of current
local function step_run(fn_start, seconds)
	assert(fn_start())
	local q, e, first, last = 0, 0, nil, nil
	while true do
		local x = assert(ch:wait())
		if not first then
			first = x
			-- from the step's start to the first report
			q = x.current * x.step_time / 3600
			e = x.current * x.voltage * x.step_time / 3600
		else
			local dt = x.time - last.time
			q = q + (x.current + last.current) / 2 * dt / 3600
			e = e + (x.current * x.voltage + last.current * last.voltage) / 2 * dt / 3600
		end
		last = x
		if x.step_time >= seconds then
			return last, q, e
		end
	end
end
local last, q, e = step_run(function() return ch:discharge(1.0) end, 600)
t.is(last.mode_name, "DISCHARGE", "discharging")
t.near(last.current, -1.0, 0.02, "discharge current is negative, about -1 A")
t.ok(last.charge_ah < 0, "charge_ah is negative while discharging")
t.ok(math.abs(last.charge_ah - q) <= 0.01 * math.abs(q),
	string.format("charge_ah %.5f matches the integral of current %.5f within 1 %%", last.charge_ah, q))
t.ok(math.abs(last.energy_wh - e) <= 0.01 * math.abs(e),
	string.format("energy_wh %.5f matches the integral of V*I %.5f within 1 %%", last.energy_wh, e))
t.near(last.energy_wh / last.charge_ah, last.voltage, 0.1, "energy / charge is about the cell voltage")
t.near(pool:sim_current(dev, 1), -1.0, 0.02, "the virtual cell sees -1 A")

last, q = step_run(function() return ch:charge(1.5) end, 300)
t.is(last.mode_name, "CHARGE", "charging")
t.near(last.current, 1.5, 0.03, "charge current is positive, about 1.5 A")
t.ok(last.charge_ah > 0 and math.abs(last.charge_ah - q) <= 0.01 * q,
	string.format("charge_ah %.5f positive, within 1 %% of %.5f", last.charge_ah, q))
t.ok(last.step_time >= 300 and last.step_time < 302, "step_time restarted with the step")
t.is(ch:set_current(1.0), true, "set_current within a step")
for _ = 1, 12 do
	last = assert(ch:wait())
end
t.near(last.current, 1.0, 0.03, "the regulation follows the new target")

t.is(ch:idle(), true, "idle")
last = assert(ch:wait())
t.is(last.mode_name, "IDLE", "idle mode")
t.is(last.charge_ah, 0.0, "idle is a new step: charge counter cleared")
t.ok(last.step_time < 1.5, "and step time restarted")
t.is(ch:stop(), true, "stop")
t.is(dev:read_raw(1, "MODE"), batlab.MODE_STOPPED, "MODE STOPPED")
assert(ch:idle())

-- wait timeout and report interval
t.is(ch:report_interval(5), true, "report_interval(5)")
assert(ch:wait())
local a, why, code = ch:wait(0.5)
t.is(a, nil, "wait(0.5) with 5 s reports times out")
t.is(why, "timeout", "with 'timeout'")
t.is(code, "ETIMEDOUT", "and ETIMEDOUT")
local s1, s2 = assert(ch:wait()), assert(ch:wait())
t.near(s2.time - s1.time, 5.0, 0.05, "reports 5 s apart")
assert(ch:report_interval(1))

-- ---- limits ----------------------------------------------------------------------------
-- ch:limits encodes as the project does (batlab.to_raw: nearest count), not
-- as the seed's batlab.Encoder (truncation).
local function enc(reg, v, R, B)
	return batlab.to_raw(0, reg, v, R, B)
end
local c2 = dev:channel(2)
t.is(c2:limits { vmax = 4.2, vmin = 2.9, imax = 3.0, tmax_c = 45 }, true, "limits")
t.is(dev:read_raw(2, "VOLTAGE_LIMIT_CHG"), enc("VOLTAGE", 4.2), "vmax -> VOLTAGE_LIMIT_CHG")
t.is(dev:read_raw(2, "VOLTAGE_LIMIT_DCHG"), enc("VOLTAGE", 2.9), "vmin -> VOLTAGE_LIMIT_DCHG")
t.is(dev:read_raw(2, "CURRENT_LIMIT_CHG"), enc("CURRENT", 3.0), "imax -> CURRENT_LIMIT_CHG")
t.is(dev:read_raw(2, "CURRENT_LIMIT_DCHG"), enc("CURRENT", 3.0), "imax -> CURRENT_LIMIT_DCHG")
t.is(dev:read_raw(2, "TEMP_LIMIT_CHG"), enc("TEMPERATURE", 45, 1500, 3380), "tmax_c -> TEMP_LIMIT_CHG")
t.is(dev:read_raw(2, "TEMP_LIMIT_DCHG"), enc("TEMPERATURE", 45, 1500, 3380), "tmax_c -> TEMP_LIMIT_DCHG")
t.is(c2:limits { imax_chg = 2.0, imax_dchg = 3.5, tmax_chg_c = 40, tmax_dchg_c = 60 }, true, "separate limits")
t.is(dev:read_raw(2, "CURRENT_LIMIT_CHG"), enc("CURRENT", 2.0), "imax_chg")
t.is(dev:read_raw(2, "CURRENT_LIMIT_DCHG"), enc("CURRENT", 3.5), "imax_dchg")
t.is(dev:read_raw(2, "TEMP_LIMIT_DCHG"), enc("TEMPERATURE", 60, 1500, 3380), "tmax_dchg_c")
-- the cell's own R and B
t.ok(dev:write(2, "TEMP_CALIB_R", 1650), "write TEMP_CALIB_R of cell 2")
t.ok(dev:write(2, "TEMP_CALIB_B", 3435), "write TEMP_CALIB_B of cell 2")
t.is(dev.R[3], 1650, "dev.R follows the write")
t.is(dev.B[3], 3435, "dev.B too")
t.is(dev.R[1], 1500, "other cells keep theirs")
assert(c2:limits { tmax_c = 45 })
t.is(dev:read_raw(2, "TEMP_LIMIT_CHG"), enc("TEMPERATURE", 45, 1650, 3435),
	"temperatures are encoded with the cell's own R and B")
t.isnt(enc("TEMPERATURE", 45, 1650, 3435), enc("TEMPERATURE", 45, 1500, 3380),
	"(which differ from the nominal encoding)")
assert(dev:channel(0):limits { tmax_c = 45 })
t.is(dev:read_raw(0, "TEMP_LIMIT_CHG"), enc("TEMPERATURE", 45, 1500, 3380), "cell 0 with nominal R/B")
local s2c = assert(c2:wait())
t.near(s2c.temp_c, 25, 3, "samples decode with the new R/B too (" .. s2c.temp_c .. ")")
t.raises(function() c2:limits { vmax = 4.2, foo = 1 } end, "unknown limit 'foo'", "unknown limit raises")
t.raises(function() c2:limits { vmax = "x" } end, "vmax must be a number", "a non-number raises")
t.raises(function() c2:limits { vmax = 9 } end, "vmax must be in 0..4.5 V", "an absurd voltage raises")
t.raises(function() c2:limits { imax = 3, imax_chg = 2 } end, "imax and imax_chg both set CURRENT_LIMIT_CHG",
	"conflicting limits raise")
t.raises(function() c2:limits(4.2) end, "table expected", "limits(4.2) raises")
t.is(c2:limits {}, true, "no limits: nothing to do")

-- a limit that does not stick fails with nil, msg, code naming it
pool:sim_fault(dev, "no_reply", { count = 4 })  -- one request and its 3 retries
local ok, msg, lcode = c2:limits { vmax = 4.1 }
t.is(ok, nil, "a limit whose write times out fails")
t.like(msg or "", "limit vmax %(VOLTAGE_LIMIT_CHG", "the message names the limit")
t.is(lcode, "ETIMEDOUT", "with the code")
batlab.sleep(2)

-- ---- concurrency ---------------------------------------------------------------------------
local trace = {}
for name, cell in pairs { A = 0, B = 1 } do
	batlab.spawn(function()
		for i = 1, 10 do
			assert(dev:read(cell, "VOLTAGE"))
			trace[#trace + 1] = name
		end
	end)
end
t.ok(batlab.run(), "two tasks reading")
local str = table.concat(trace)
t.is(#str, 20, "twenty reads")
t.ok(not str:find("AAAAAAAAAA") and not str:find("BBBBBBBBBB"), "the reads interleave: " .. str)

-- impedance on one channel while another samples
local during = 0
local imp_start, imp_end, imp_ohms
batlab.spawn(function()
	imp_start = batlab.now()
	imp_ohms = dev:channel(0):impedance()
	imp_end = batlab.now()
end)
batlab.spawn(function()
	local c3 = dev:channel(3)
	for _ = 1, 6 do
		local x = assert(c3:wait())
		if imp_start and not imp_end then
			during = during + 1
		end
	end
end)
t.ok(batlab.run(), "impedance and sampling together")
t.ok(imp_ohms and imp_ohms > 0, "the impedance measured " .. tostring(imp_ohms))
t.ok(imp_end - imp_start >= 2, "impedance takes its 2 s settle")
t.ok(during >= 2, "the other channel kept reporting meanwhile (" .. during .. " samples)")
t.is(dev:read_raw("UNIT", "LOCK"), 0, "LOCK released")

-- ---- calibration and firmware -------------------------------------------------------------
local calfile = tmp()
t.is(dev:calibration_backup(calfile), true, "calibration_backup")
local lines = 0
for _ in io.lines(calfile) do
	lines = lines + 1
end
t.is(lines, 49, "49 values in the backup")
t.is(dev:calibration_restore(calfile), true, "calibration_restore of that file")
local badcal = tmp()
local f = assert(io.open(badcal, "w"))
f:write("1000\n1\n2\n")
f:close()
local r1, r2, r3 = dev:calibration_restore(badcal)
t.is(r1, nil, "a short calibration file fails")
t.like(r2 or "", badcal:match("[^/]+$"), "naming the file")
t.is(r3, "EINVAL", "EINVAL")
t.fails(function() return dev:calibration_restore("/nonexistent/cal.txt") end, "nonexistent", "ENOENT",
	"a missing calibration file fails")
t.fails(function() return dev:calibration_backup("/nonexistent/dir/cal.txt") end, "nonexistent", "EIO",
	"an unwritable backup file fails")

local img = tmp()
f = assert(io.open(img, "wb"))
f:write(string.rep("\0", 15360))
f:close()
local progress = {}
t.is(dev:firmware_bootload(img, function(done, total)
	progress[#progress + 1] = done .. "/" .. total
end), true, "firmware_bootload")
t.ok(#progress > 1, "progress reported " .. #progress .. " times")
t.is(progress[#progress], "15360/15360", "up to the whole image")
t.is(dev:read_raw("UNIT", "FIRMWARE_VER"), 7, "the device answers afterwards")
local short = tmp()
f = assert(io.open(short, "wb"))
f:write("abc")
f:close()
local b1, b2 = dev:firmware_bootload(short)
t.is(b1, nil, "a bad image fails before anything is sent")
t.like(b2 or "", "15360", "saying why")
t.raises(function() dev:firmware_bootload(img, 42) end, "function expected", "a non-function progress raises")

-- ---- unplug ---------------------------------------------------------------------------------
local got = {}
local w = batlab.spawn(function()
	local c = dev:channel(0)
	while true do
		local x, m, cd = c:wait()
		if not x then
			got = { m, cd }
			return
		end
	end
end)
batlab.spawn(function()
	batlab.sleep(3)
	pool:sim_fault(dev, "unplug")
end)
pool:messages()
local news, news_at, quiet = nil, nil, nil
batlab.spawn(function()
	quiet = pool:wait_messages(1) -- nothing within a second: an empty table
	news = pool:wait_messages()   -- woken by the unplug, not by a clock
	news_at = batlab.now()
end)
local t_unplug = batlab.now() + 3
t.ok(batlab.run(20), "the tasks end after the unplug")
t.is(quiet and #quiet, 0, "wait_messages(1) with no news: an empty table after the timeout")
t.like(news and news[1] or "", "Batlab 1000 on sim0 disconnected", "wait_messages: the unplug's news")
t.ok(news_at and news_at - t_unplug < 0.01, ("as it came (%.3f s after the unplug)"):format((news_at or 0) - t_unplug))
t.raises(function() pool:wait_messages(-1) end, "a timeout in seconds", "wait_messages(-1) raises")
t.is(w.status, "done", "the waiting task saw the failure as a return value")
t.is(got[2], "ECLOSED", "ECLOSED")
t.like(got[1] or "", "Batlab 1000", "the message names the device")
t.ok(dev.detached, "the device is detached")
t.fails(function() return dev:read(0, "MODE") end, "device detached", "ECLOSED", "read on it fails")
t.fails(function() return dev:channel(1):wait() end, "device detached", "ECLOSED", "wait on it fails")
t.is(#pool:devices(), 0, "the pool is empty")
pool:close()

for _, p in ipairs(tmpfiles) do
	os.remove(p)
end
t.done()
