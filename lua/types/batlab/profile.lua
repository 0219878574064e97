---@meta batlab.profile
-- LuaCATS definitions of batlab.profile for lua-language-server: never
-- loaded by batlab, declarations only (lua/types/batlab.lua says how to use
-- them).

---@class batlab.profile
local profile = {}
---@param opts batlab.CommonOptions|{ points: number[][]?, file: string?, mode: "linear"|"step"?, n: integer?, stop: batlab.ConditionSpec? }
---@return batlab.Summary
function profile.play(cell, opts) end
---@return number[][]
function profile.parse_csv(text, where) end

return profile
