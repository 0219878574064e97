---@meta batlab.conditions
-- LuaCATS definitions of batlab.conditions for lua-language-server: never
-- loaded by batlab, declarations only (lua/types/batlab.lua says how to use
-- them).

---@class batlab.Condition
---@field kind string
---@field name string

---A condition, a table of shorthands (an `any` of them), a list of
---conditions, or a predicate.
---@alias batlab.ConditionSpec batlab.Condition|batlab.ConditionShorthand|batlab.Condition[]|fun(s: batlab.Sample, sum: batlab.Summary): any

---@class batlab.ConditionShorthand
---@field v_above number?
---@field v_below number?
---@field i_below number?
---@field i_above number?
---@field time number?
---@field ah number?
---@field wh number?
---@field temp_above number?
---@field temp_rise number?
---@field dvdt_below number?
---@field minus_dv number?

---@class batlab.conditions
local C = {}
---@return batlab.Condition
function C.voltage_above(v, name) end
---@return batlab.Condition
function C.voltage_below(v, name) end
---@return batlab.Condition
function C.current_below(a, name, settle) end
---@return batlab.Condition
function C.current_above(a, name) end
---@return batlab.Condition
function C.time(seconds, name) end
---@return batlab.Condition
function C.ah(x, name) end
---@return batlab.Condition
function C.wh(x, name) end
---@return batlab.Condition
function C.temp_above(c, name) end
---@return batlab.Condition
function C.temp_rise(k, name) end
---@param vps number V/s
---@param window? number s (default 60)
---@return batlab.Condition
function C.dvdt_below(vps, window, name) end
---@return batlab.Condition
function C.minus_dv(dv, name, settle) end
---@param fn fun(s: batlab.Sample, sum: batlab.Summary): boolean|string|nil
---@return batlab.Condition
function C.predicate(fn, name) end
---@param list batlab.ConditionSpec[]
---@return batlab.Condition
function C.any(list, name) end
---@param list batlab.ConditionSpec[]
---@return batlab.Condition
function C.all(list, name) end
---@return batlab.Condition
function C.named(name, c) end
---@param spec batlab.ConditionSpec?
---@return fun(s: batlab.Sample, sum: batlab.Summary): string?
function C.compile(spec) end
---@return boolean
function C.is_condition(c) end

return C
