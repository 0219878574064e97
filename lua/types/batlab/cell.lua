---@meta batlab.cell
-- LuaCATS definitions of batlab.cell for lua-language-server: never
-- loaded by batlab, declarations only (lua/types/batlab.lua says how to use
-- them).

---@class batlab.Cell
---@field name string
---@field device batlab.Device
---@field channel integer
---@field ch batlab.Channel
---@field records table<string, any>
---@field last batlab.Sample?
---@field state table? kept across `batlab resume` (numbers, strings, booleans, tables)
---@field limits_set batlab.Limits?
local Cell = {}
---@param timeout_s? number
---@return batlab.Sample? sample
---@return string? err
---@return string? code
function Cell:wait(timeout_s) end
---@param spec table as batlab.Channel's watch
---@return batlab.Sample? sample
---@return string? err
---@return string? code
function Cell:watch(spec) end
---@param t batlab.Limits
---@return true|nil ok
---@return string? err
function Cell:limits(t) end
---@param amps number
---@return true|nil ok
---@return string? err
function Cell:charge(amps) end
---@param amps number
---@return true|nil ok
---@return string? err
function Cell:discharge(amps) end
---@return true|nil ok
function Cell:idle() end
---@return true|nil ok
function Cell:stop() end
---@param amps number
function Cell:set_current(amps) end
---@param s number
function Cell:report_interval(s) end
---@return number? ohms
---@return string? err
function Cell:impedance() end
---@param t { cycle: integer?, cycle_kind: string?, step_name: string? }
---@return batlab.Cell
function Cell:label(t) end
---@param name string
---@param opts? { resumable: boolean?, kind: string? }
function Cell:begin_step(name, opts) end
---@param summary batlab.Summary
---@return batlab.Summary
function Cell:end_step(summary) end
---@param fields table<string, any> merged into summary.json's records
---@return batlab.Cell
function Cell:record(fields) end
---@param fmt string
---@return string
function Cell:log(fmt, ...) end
---@param cond fun(s: batlab.Sample): any
---@param timeout_s? number
function Cell:wait_until(cond, timeout_s) end


---@class batlab.cellmodule
local M = {}
---@param ch batlab.Channel
---@param opts? { name: string?, on_sample: function?, on_record: function?, log_sink: function? }
---@return batlab.Cell
function M.new(ch, opts) end

return M
