---@meta batlab.steps_more
-- LuaCATS definitions of batlab.steps_more for lua-language-server: never
-- loaded by batlab, declarations only (lua/types/batlab.lua says how to use
-- them).

---@class batlab.MoreOptions: batlab.CommonOptions
---@field stop batlab.ConditionSpec?
---@field max_current number?
---@field settle number?

---@class batlab.GroupResult
---@field name string
---@field iterations integer
---@field end_reason string "count", a condition's name, or a step's abnormal end
---@field ok boolean
---@field steps batlab.Summary[]
---@field ah number
---@field wh number
---@field duration number

---@class batlab.steps_more
local more = {}
---@param opts batlab.CCOptions|{ stop: batlab.ConditionSpec? }
---@return batlab.Summary
function more.charge(cell, opts) end
---@param opts batlab.CCOptions|{ stop: batlab.ConditionSpec? }
---@return batlab.Summary
function more.discharge(cell, opts) end
---@param seconds number?
---@param opts? batlab.CommonOptions|{ stop: batlab.ConditionSpec? }
---@return batlab.Summary
function more.rest(cell, seconds, opts) end
---@param opts batlab.MoreOptions|{ current: number, v: number, until_i: number?, max_time: number? }
---@return batlab.Summary
function more.cccv(cell, opts) end
---@param opts batlab.MoreOptions|{ watts: number, direction: "charge"|"discharge"? }
---@return batlab.Summary
function more.power(cell, opts) end
---@param opts batlab.MoreOptions|{ ohms: number, direction: "charge"|"discharge"? }
---@return batlab.Summary
function more.resistance(cell, opts) end
---@param opts { levels: { current: number, time: number }[], n: integer?, stop: batlab.ConditionSpec?, name: string? }
---@return batlab.GroupResult
function more.pulses(cell, opts) end
---@param opts { name: string?, n: integer?, until: batlab.ConditionSpec?, during: batlab.ConditionSpec? }
---@param body fun(k: integer, g: table): batlab.Summary|batlab.Summary[]
---@return batlab.GroupResult
function more.group(cell, opts, body) end

return more
