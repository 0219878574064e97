---@meta batlab.steps
-- LuaCATS definitions of batlab.steps for lua-language-server: never
-- loaded by batlab, declarations only (lua/types/batlab.lua says how to use
-- them).

---@class batlab.Summary
---@field name string
---@field kind "charge"|"discharge"|"rest"|"profile"
---@field duration number s
---@field ah number
---@field wh number
---@field avg_v number
---@field avg_i number
---@field temp_start number?
---@field temp_end number?
---@field temp_max number?
---@field temp_rise number?
---@field end_reason string "voltage", "current", "time", "charge", "energy", "temperature", a condition's name, "safety", "stopped", "removed", "no reports", ...
---@field end_condition string? the name of the condition that ended the step (batlab.steps_more)
---@field predicate_reason string?
---@field safety string?
---@field errors string[]?
---@field samples integer
---@field end_sample batlab.Sample?
---@field impedance { time: number, step_time: number, charge_ah: number, ohms: number }[]
---@field cv batlab.Summary? the CV hold after a charge with `cv`
---@field cv_time number? s of constant voltage (steps_more.cccv)
---@field cv_ah number?
---@field regulation { target: number, unit: string, samples: integer, mean_abs_err: number, rms_err: number, max_abs_err: number }? (power, resistance)
---@field net_ah number? signed charge (profile)
---@field segments integer? device steps used (profile)
---@field zero_amp { was: number, set: number }?

---@class batlab.CommonOptions
---@field name string?
---@field guard (fun(s: batlab.Sample): string?)?
---@field on_sample (fun(s: batlab.Sample, sum: batlab.Summary))?
---@field report_timeout number?
---@field silence_grace number?
---@field allow_bad_thermistor boolean?
---@field resumable boolean?

---@class batlab.CCOptions: batlab.CommonOptions
---@field current number A (required)
---@field until_v number?
---@field until_i number?
---@field settle number?
---@field max_time number?
---@field max_ah number?
---@field max_wh number?
---@field max_temp_c number?
---@field until (fun(s: batlab.Sample, sum: batlab.Summary): string?)?
---@field impedance_every number?
---@field on_impedance (fun(ohms: number, s: batlab.Sample, sum: batlab.Summary))?
---@field trickle { engage_v: number, current: number }?
---@field pulse { on: number, off: number, off_current: number? }?
---@field cv_approach { v: number, step: number, sensitivity: number?, z: number? }?
---@field cv { v: number?, until_i: number?, max_time: number? }? (charge only)

---@class batlab.steps
---@field SILENCE_GRACE number
local steps = {}
---@param cell batlab.Cell
---@param opts batlab.CCOptions
---@return batlab.Summary
function steps.charge(cell, opts) end
---@param cell batlab.Cell
---@param opts batlab.CCOptions
---@return batlab.Summary
function steps.discharge(cell, opts) end
---@param cell batlab.Cell
---@param seconds number
---@param opts? batlab.CommonOptions
---@return batlab.Summary
function steps.rest(cell, seconds, opts) end
---@param cell batlab.Cell
---@param opts batlab.CommonOptions|{ v: number, until_i: number?, max_time: number?, current: number? }
---@return batlab.Summary
function steps.cv_hold(cell, opts) end
---@param summary batlab.Summary?
---@return boolean
function steps.ok(summary) end
---@param log? fun(msg: string)
---@return fun(s: batlab.Sample): string?
function steps.default_guards(log) end
---@param cell batlab.Cell
---@param amps number
function steps.zero_amp_guard(cell, amps) end
---@param cell batlab.Cell
---@return number? ohms
function steps.impedance(cell) end
---@param cell batlab.Cell
---@param count integer
---@param interval number s of rest between measurements
---@return number[]
function steps.impedance_survey(cell, count, interval) end

return steps
