---@meta batlab.experiment
-- LuaCATS definitions of batlab.experiment for lua-language-server: never
-- loaded by batlab, declarations only (lua/types/batlab.lua says how to use
-- them).

---@class batlab.experiment
local experiment = {}
---@param list (string|table)[] "Discharge at 1C until 3.0 V", "Rest for 1 hour", { ..., times = N }
---@param opts? { capacity_ah: number?, hold_current: number? }
---@return batlab.Summary[] summaries
---@return boolean ok
function experiment.run(cell, list, opts) end
---@return (string|table)[]
function experiment.parse(text, where) end

return experiment
