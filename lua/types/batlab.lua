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
-- for require "batlab.steps", ...).

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
---@field device_reset boolean?

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

---@class batlab.Device
---@field sn integer
local Device = {}
---@param n integer 0..3
---@return batlab.Channel
function Device:channel(n) end
---@param ns string|integer namespace ("CELL0".."CELL3", "UNIT", ...)
---@param reg string|integer register
---@return number? value
---@return string? err
function Device:read(ns, reg) end
---@return integer? raw
---@return string? err
function Device:read_raw(ns, reg) end
---@return true|nil ok
---@return string? err
function Device:write(ns, reg, value) end
---@return true|nil ok
---@return string? err
function Device:write_verify(ns, reg, value) end

---@class batlab.Pool
local Pool = {}
---@return batlab.Device?
function Pool:active() end
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
---@param opts table
function Pool:sim_fault(dev, kind, opts) end

---@class batlab.Task
---@field status "running"|"done"|"failed"|"cancelled"
---@field results any[]
---@field error any

---@class batlab
---@field CURRENT_MAX number the largest current a step may ask for (A)
---@field EXIT_OK integer
---@field EXIT_USAGE integer
local batlab = {}
---@return number seconds (virtual time under the simulator)
function batlab.now() end
---@param opts { sim: boolean|string?, devices: integer?, seed: integer?, port: string?, serial: integer? }
---@return batlab.Pool? pool
---@return string? err
function batlab.open(opts) end
---@param fn function
---@return batlab.Task
function batlab.spawn(fn, ...) end
---@param ch batlab.Channel
---@param fn function
---@return batlab.Task
function batlab.spawn_for(ch, fn, ...) end
---@return boolean finished
---@return string? why
function batlab.run() end
---@param seconds number
function batlab.sleep(seconds) end

---@class batlab.Procedure
---@field name string?
---@field description string?
---@field params table<string, number|string|boolean>? defaults, changed with --set
---@field run fun(cell: batlab.Cell, params: table): boolean?, string?, "error"?

return batlab
