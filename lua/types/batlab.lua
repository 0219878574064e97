---@meta batlab
-- LuaCATS definitions of batlab's Lua API, for lua-language-server
-- (completion and checks while writing a procedure). Never loaded by
-- batlab itself: declarations only. `make install` puts this directory in
-- share/batlab/lua/types; point the language server at it, e.g. a
-- .luarc.json beside your procedures:
--   { "workspace.library": ["/usr/local/share/batlab/lua/types"],
--     "runtime.version": "Lua 5.4" }
-- (docs/characterisation.md, "Editor support"). The step library's
-- modules' definitions are in batlab/ beside this file (batlab/steps.lua
-- for require "batlab.steps", ...); the objects the functions below return
-- (batlab.Packet, batlab.Recorder, batlab.GzFile, batlab.Trail, ...) are
-- declared in batlab/objects.lua.

---@class batlab.Sample
---@field time number batlab.now() of the report (s)
---@field step_time number seconds since the step began
---@field mode integer
---@field mode_name "NO_CELL"|"BACKWARDS"|"IDLE"|"CHARGE"|"DISCHARGE"|"IMPEDANCE"|"STOPPED"
---@field status integer
---@field status_names string[]
---@field error integer
---@field error_names string[]
---@field voltage number V
---@field current number A, + charging, - discharging
---@field temp_c number? degC (absent when the thermistor reads nothing)
---@field charge_ah number Ah since the step began, signed like current
---@field energy_wh number Wh since the step began
---@field vcc number V
---@field cell integer
---@field serial integer
---@field step_seq integer the channel's steps begun when this report was taken
---@field op_raw integer the setpoint the regulation last wrote (raw, 128 per A)
---@field sp_raw integer its target (raw)
---@field duty integer? DUTY (0..640), only while a current is driven and ch:want_duty(true) holds
---@field device_reset boolean? only after the device reset during this channel's step

---@class batlab.Limits
---@field vmax number? charge voltage limit (V)
---@field vmin number? discharge voltage limit (V)
---@field imax number? current limit, both directions (A)
---@field imax_chg number?
---@field imax_dchg number?
---@field tmax_c number? temperature limit, both directions (degC)
---@field tmax_chg_c number?
---@field tmax_dchg_c number?

---@class batlab.Channel
---@field index integer 0..3
---@field device batlab.Device
---@field last batlab.Sample?
---@field step_time number?
---@field state "IDLE"|"PRECHARGE"|"CHARGE"|"CHARGEREST"|"DISCHARGE"|"DISCHARGEREST"|"POSTDISCHARGE" the seed's test state
---@field bat batlab.Device the seed's name of device
---@field slot integer the seed's name of index
---@field name string? the latest test's cell name
---@field test_type integer the latest test's batlab.TT_CYCLE or TT_DISCHARGE
---@field test_state integer batlab.TS_* of the running test (TS_IDLE when none runs)
---@field settings table? the settings table the latest test runs with
local Channel = {}
---@param timeout_s? number
---@return batlab.Sample? sample
---@return string? err
---@return string? code
function Channel:wait(timeout_s) end
---@param spec table thresholds; the quiet reports are accounted into it (docs/lua-api.md)
---@return batlab.Sample? sample
---@return string? err
---@return string? code
function Channel:watch(spec) end
---@param s number seconds between reports (0.1 steps; 0 = off)
---@return true
function Channel:report_interval(s) end
---@param amps number
---@return true|nil ok
---@return string? err
---@return string? code
function Channel:charge(amps) end
---@param amps number
---@return true|nil ok
---@return string? err
---@return string? code
function Channel:discharge(amps) end
---@return true|nil ok
function Channel:idle() end
---@return true|nil ok
function Channel:stop() end
---@param amps number the regulation target within the step
---@return true|nil ok
function Channel:set_current(amps) end
---@return number? ohms
---@return string? err
---@return string? code
function Channel:impedance() end
---@param t batlab.Limits
---@return true|nil ok
---@return string? err
---@return string? code
function Channel:limits(t) end
---Samples taken while a current is driven carry `duty` until as many want_duty(false).
---@param on boolean
function Channel:want_duty(on) end
---The seed's stock test, in a task (batlab.spawn_for); settings must be loaded first.
---@param name string the cell's name
---@param test_type? "cycle"|"discharge"|integer default "cycle"; batlab.TT_CYCLE (1), batlab.TT_DISCHARGE (0)
---@param timeout? number s: every discharge ends that long after the start (0 = none)
---@return true|nil ok
---@return string? err
---@return string? code
function Channel:start_test(name, test_type, timeout) end
---@return boolean ended true when a test was ended (its task cancelled, the channel made safe)
function Channel:end_test() end
---@return boolean
function Channel:is_testing() end
---@return number seconds since the test started; once ended, how long it ran; 0 before any
function Channel:runtime() end
---@return number seconds in the current state
function Channel:state_runtime() end
---@return integer cycle 0 during the precharge, then 1..N
function Channel:cycle_number() end
---The seed's level-2 row now, in the running test's log.
---@param step string its Test Type column
---@return true|nil ok
---@return string? err
---@return string? code "ESTATE" with no test (or no log) running
function Channel:log_lvl2(step) end
---@return batlab.TestInfo? info the latest test, or nil
function Channel:test_info() end

---@class batlab.Device
---@field sn integer
---@field serial integer the same as sn
---@field port string
---@field ver integer firmware version
---@field firmware integer the same as ver
---@field R number[] thermistor R per cell, Lua index = cell + 1 (a fresh list each time)
---@field B number[] thermistor B per cell
---@field connected boolean
---@field bootloader boolean
---@field detached boolean
---@field settings batlab.Settings|table|nil the loaded settings later tests use (the seed's)
---@field logger batlab.Logger the seed's logger (batlab.logger)
local Device = {}
---@param n integer 0..3
---@return batlab.Channel
function Device:channel(n) end
---@param ns string|integer namespace ("CELL0".."CELL3", "UNIT", ...), any case, or a number
---@param reg string|integer register name or address
---@return batlab.Packet? packet
---@return string? err
---@return string? code
function Device:read(ns, reg) end
---@param ns string|integer
---@param reg string|integer
---@return integer? raw the 16-bit value, no packet made
---@return string? err
---@return string? code
function Device:read_raw(ns, reg) end
---@param ns string|integer
---@param reg string|integer
---@param value integer 0..65535, or -32768..-1
---@return batlab.Packet? packet the write's (p.write true)
---@return string? err
---@return string? code "EDEVICE" when refused
function Device:write(ns, reg, value) end
---@param ns string|integer
---@param reg string|integer
---@param value integer
---@return true|nil ok once read back equal (3 tries)
---@return string? err
---@return string? code "EVERIFY"
function Device:write_verify(ns, reg, value) end
---The software regulation target (0 turns regulation off). No I/O.
---@param cell integer 0..3
---@param amps number
---@return true
function Device:set_current(cell, amps) end
---@param cell integer 0..3
---@return number? ohms
---@return string? err
---@return string? code
function Device:impedance(cell) end
---@param cell integer 0..3
---@return number? coulombs
---@return integer|string|nil raw the 32-bit counter, or the message
---@return string? code
function Device:charge(cell) end
---@param file string the firmware image
---@param progress? fun(done: integer, total: integer) must not wait
---@return true|nil ok
---@return string? err
---@return string? code
function Device:firmware_bootload(file, progress) end
---@param download? boolean|string true: save under the asset's name; a string: that file
---@param from? string another release list (URL)
---@return integer? version the newest released version
---@return string? file_or_err the saved image's file name (with download), or the message
---@return string? code "EIO", "EINVAL", "ENOENT"
function Device:firmware_check(download, from) end
---@param opts? { force: boolean?, from: string? }
---@return boolean|nil flashed true once flashed; false when the device is not older
---@return integer|string|nil version_or_err the release's version, or the message
---@return string? code
function Device:firmware_update(opts) end
---@param file string writes the 49-value file
---@return true|nil ok
---@return string? err
---@return string? code
function Device:calibration_backup(file) end
---@param file string
---@return true|nil ok every value write-verified
---@return string? err
---@return string? code "EINVAL" for a bad file
function Device:calibration_restore(file) end

---@class batlab.Pool
---@field sim boolean
---@field closed boolean
local Pool = {}
---@return batlab.Device?
function Pool:active() end
---@param dev batlab.Device
function Pool:set_active(dev) end
---@return boolean
function Pool:active_exists() end
---@return string[] ports the pool's devices' ports
function Pool:get_ports() end
---@param serial_or_port integer|string
---@return batlab.Device?
function Pool:find(serial_or_port) end
---Simulator hook: the virtual device's raw register (no I/O).
---@param dev batlab.Device
---@param ns string|integer
---@param reg string|integer
---@return integer raw
function Pool:sim_reg(dev, ns, reg) end
---Simulator hook: the current the virtual cell sees.
---@param dev batlab.Device
---@param cell integer
---@return number amps signed
function Pool:sim_current(dev, cell) end
---@return batlab.Device[]
function Pool:devices() end
---@return string[]
function Pool:messages() end
---Waits (in a task) until there is at least one message, or timeout seconds.
---@param timeout? number seconds; nil waits as long as it takes
---@return string[]
function Pool:wait_messages(timeout) end
function Pool:close() end
---@param dev batlab.Device
---@param kind string a fault kind (docs/simulator.md)
---@param opts? { slot: integer?, count: integer?, value: number? }
function Pool:sim_fault(dev, kind, opts) end

---@class batlab.Task
---@field id integer
---@field status "ready"|"waiting"|"running"|"done"|"failed"|"cancelled"
---@field results { n: integer, [integer]: any }? the packed returns once done
---@field error any the message with a traceback once failed
local Task = {}
---A task cannot cancel itself.
function Task:cancel() end
---Waits for the task's end.
---@param timeout_s? number
---@return "done"|"failed"|"cancelled"|nil status
---@return string? err "timeout"
---@return string? code "ETIMEDOUT"
function Task:join(timeout_s) end

---@class batlab
---@field CURRENT_MAX number the largest current a step may ask for (A)
---@field VOLTAGE_FULL_SCALE number 4.5 V
---@field CURRENT_FULL_SCALE number 4.096 A
---@field VERSION string the program's version
---@field registers batlab.Register[]|table<string, batlab.Register> every register in table order, also by name
---@field MODE_LIST table<integer, string> the seed's list, from 0 (MODE_LIST[2] == "MODE_IDLE")
---@field ERR_LIST table<integer, string> the seed's list, from 0
---@field NAMESPACE_LIST integer[]
---@field l_test_state table<integer, string> the seed's test state names, from 0
---@field TT_CYCLE integer 1
---@field TT_DISCHARGE integer 0
---@field logger batlab.Logger the logger the seed's tests use
---@field [string] integer namespaces, registers (batlab.VOLTAGE == 7) and codes (MODE_*, ERR_*, STAT_*, SET_*, LED_*, TS_*, ...)
local batlab = {}
---@return number seconds (virtual time under the simulator)
function batlab.now() end
---@param opts { sim: boolean|string?, devices: integer?, seed: integer?, port: string?, serial: integer? }
---@return batlab.Pool? pool
---@return string? err
---@return string? code
function batlab.open(opts) end

-- Tasks (the scheduler)

---@param fn function
---@return batlab.Task
function batlab.spawn(fn, ...) end
---@param ch batlab.Channel the task drives it from the start
---@param fn function
---@return batlab.Task
function batlab.spawn_for(ch, fn, ...) end
---Runs the loop until every task finished. Not from a task.
---@param timeout_s? number
---@return true|nil finished
---@return string? err "timeout", "interrupted", "N tasks wait for something that cannot happen"
---@return string? code "ETIMEDOUT", "EINTR", "EIDLE"
function batlab.run(timeout_s) end
---In a task it yields; outside one it runs the loop.
---@param seconds number
---@return true
function batlab.sleep(seconds) end
---@return batlab.Task? task the running task, nil outside tasks
function batlab.current() end
---Sets how many Lua instructions a task spawned afterwards may run without waiting.
---@param n? integer default 1e8; 0 = none; nil only reads
---@return integer previous the previous limit
function batlab.instruction_limit(n) end
---Failure messages go to fn instead of the log (stderr); nil restores it. fn must not wait.
---@param fn fun(task: batlab.Task, message: string)|nil
function batlab.task_log(fn) end
---fn is called after every spawn; nil removes it. fn must not wait.
---@param fn fun(task: batlab.Task, ch: batlab.Channel?, where: string)|nil where: "file:line:"
function batlab.on_spawn(fn) end

-- Lookups and names

---@param ns string|integer a namespace name (any case) or number ("cell2", 4, "0xff")
---@param reg string|integer a register name (any case) or address 0..127
---@return integer namespace the namespace byte
---@return integer addr
function batlab.lookup(ns, reg) end
---@param n integer
---@return string? name "CHARGE", or nil
function batlab.mode_name(n) end
---@param n integer
---@return string? name "SINE", or nil
function batlab.led_name(n) end
---@param bits integer ERROR bits
---@return string[] names every set bit, low first ("VOLTAGE_LIMIT_CHG"; an unnamed bit "0x1000")
function batlab.error_names(bits) end
---@param bits integer STATUS bits
---@return string[] names
function batlab.status_names(bits) end
---@param bits integer SETTINGS bits
---@return string[] names
function batlab.settings_names(bits) end
---A step's recent (time, voltage) pairs, kept in C: a window in seconds or a count.
---@param opts { window: number?, keep: integer? } one of the two
---@return batlab.Trail
function batlab.trail(opts) end
---Every report's numbers for the fields named, kept in C.
---@param fields ("time"|"step_time"|"voltage"|"current"|"temp_c"|"charge_ah"|"energy_wh"|"vcc")[] 1 to 8
---@return batlab.Series
function batlab.series(fields) end
---The raw value batlab itself writes for a value in the register's unit (rounded, clamped).
---@param ns string|integer
---@param reg string|integer
---@param value number V, A, degC, Hz, App, s
---@param R? number thermistor R for temperatures (default 1500)
---@param B? number thermistor B (default 3380)
---@return integer raw
function batlab.to_raw(ns, reg, value, R, B) end
---@param raw32 integer CHARGEH << 16 | CHARGEL
---@param mult? number 6 (default), or 1 for the hi-res channel
---@return number coulombs raw32 x mult x 1.28e-5
function batlab.ascharge(raw32, mult) end
---@param raw32 integer
---@param mult? number
---@return number ah 46,875,000 counts = 1 Ah
function batlab.ascharge_ah(raw32, mult) end

-- Packets and the seed's Encoder

---@param spec batlab.PacketSpec
---@return batlab.Packet
function batlab.Packet(spec) end
---@param x number the value in engineering units
---@return batlab.Encoder
function batlab.Encoder(x) end

-- Recording and files

---A channel's every sample as a row of a time-series CSV, written in C.
---@param ch batlab.Channel
---@param path string? nil writes no file; ending in .gz appends a gzip member
---@param opts batlab.RecorderOpts
---@return batlab.Recorder? rec
---@return string? err
---@return string? code
function batlab.recorder(ch, path, opts) end
---A Lua file's writes on the disk.
---@param file file*
---@return true|nil ok
---@return string? err
---@return string? code
function batlab.fsync(file) end
---@param path string
---@param mode? "r"|"w"|"a" "r" (default): inflated, a plain file as it is
---@return batlab.GzFile? file
---@return string? err
---@return string? code
function batlab.gzopen(path, mode) end
---One CSV line formatted in C (docs/results.md, "Text fields").
---@param spec string field codes separated by commas: fN aN d g s r T L -
---@param ... any one value per field
---@return string line with its "\n"
function batlab.csv_line(spec, ...) end

-- Extending the classes (the seed interface uses these)

---Adds methods, and fields whose value a function(ch) computes, to every Channel.
---@param methods table<string, function>
---@param fields? table<string, fun(ch: batlab.Channel): any>
function batlab.extend_channel(methods, fields) end
---Adds fields whose value a function(dev) computes to every Device.
---@param fields table<string, fun(dev: batlab.Device): any>
function batlab.extend_device(fields) end

-- The seed library's interface

---@return batlab.Settings settings every default
function batlab.Settings() end
---@param st batlab.Settings|table|nil a Settings object or a plain table from batlab.settings.load; nil clears
---@return true
function batlab.use_settings(st) end
---@return batlab.Settings|table|nil settings what start_test would use
function batlab.loaded_settings() end
---@param opts? { dir: string?, echo: boolean? } dir default "."; echo default true
---@return batlab.Logger
function batlab.Logger(opts) end

---@class batlab.Procedure
---@field name string?
---@field description string?
---@field params table<string, number|string|boolean>? defaults, changed with --set
---@field run fun(cell: batlab.Cell, params: table): boolean?, string?, "error"?

return batlab
