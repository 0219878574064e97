-- batlab.settings_keys - what a settings file may hold (docs/settings.md):
-- every key with its GUI alias, type, unit, range and default, and the
-- chemistry presets. batlab.settings reads files against this table.
--
-- Ranges that are a register's full scale come from the unit conversions
-- in C (batlab.CURRENT_FULL_SCALE), so the two cannot drift apart.

local batlab = require "batlab"

local M = {}

-- Current limits hold up to the current sense full scale (4.096 A).
local I_FULL = batlab.CURRENT_FULL_SCALE
local I_FULL_WHY = string.format("%.10g A is the current sense full scale", I_FULL)

--------------------------------------------------------------------------
-- Chemistry presets (the GUI wizard's), the usual ranges that give
-- warnings, and lv_floor: the lowest lowVoltageCutoff Lexcelon's software
-- takes (the Python library's check: 2.4324 V; the GUI's LiFePO4 preset:
-- 2.0 V). Lower needs allowLowVoltageCutoff.

local CHEMISTRIES = {
	lipoChemistry = {
		label = "Li-ion/LiPo",
		highVoltageCutoff = 4.2, lowVoltageCutoff = 2.5, storageDischargeVoltage = 3.8,
		hv_max = 4.25, lv_min = 2.5, storage_min = 3.5, storage_max = 4.0,
		charge_temp_max = 50, lv_floor = 2.4324,
	},
	ironPhosphateChemistry = {
		label = "LiFePO4",
		highVoltageCutoff = 3.6, lowVoltageCutoff = 2.0, storageDischargeVoltage = 3.2,
		hv_max = 3.65, lv_min = 2.0, storage_min = 3.0, storage_max = 3.4,
		charge_temp_max = 50, lv_floor = 2.0,
	},
	otherChemistry = {
		label = "other",
		highVoltageCutoff = 4.2, lowVoltageCutoff = 2.5, storageDischargeVoltage = 3.8,
		lv_floor = 2.4324,
	},
}
M.CHEMISTRIES = CHEMISTRIES

-- Accepted spellings (lower case, letters and digits only) -> canonical.
M.CHEM_ALIASES = {
	lipo = "lipoChemistry", lipochemistry = "lipoChemistry", liion = "lipoChemistry",
	lithiumion = "lipoChemistry", lipolymer = "lipoChemistry",
	ironphosphate = "ironPhosphateChemistry", ironphosphatechemistry = "ironPhosphateChemistry",
	lfp = "ironPhosphateChemistry", lifepo4 = "ironPhosphateChemistry",
	other = "otherChemistry", otherchemistry = "otherChemistry",
}

--------------------------------------------------------------------------
-- The key table. Order = view order = check order. Fields:
--   key    canonical (Python) name        gui    GUI name when different
--   where  "top" | "bS" (GUI location)    type   number|integer|bool|string|names|chemistry
--   unit   for messages and view          min/max  device/safety range (error)
--   above  the value must be more than this (a rate of 0 A never ends a step)
--   default  value, or function(s, info) computed after the others
--   doc    one line for view

local KEYS = {
	-- Playlist and logging
	{ key = "cellPlaylistName", where = "top", type = "string", default = "DefaultPlaylist",
	  group = "Playlist", doc = "playlist name (log file names)" },
	{ key = "batlabCellPlaylistFileVersion", where = "top", type = "string", default = "0.0.1",
	  doc = "file format version" },
	{ key = "cellChemistryType", where = "top", type = "chemistry", default = "lipoChemistry",
	  doc = "chemistry: presets and usual ranges" },
	{ key = "cellNames", where = "top", type = "names", default = {},
	  doc = "cells to test, in order" },
	{ key = "playlistOutputDirectory", where = "top", type = "string", default = "",
	  doc = "GUI results directory" },
	{ key = "playlistSaveFilename", where = "top", type = "string", default = "",
	  doc = "GUI save target" },
	{ key = "individualCellLogs", where = "top", type = "bool", default = false,
	  doc = "also write batlab-log_<playlist>_<cell>.csv" },
	{ key = "cellLogTimestamps", where = "top", type = "bool", default = true,
	  doc = "GUI flag (our per-cell CSVs always have times)" },

	-- Test flow
	{ key = "numWarmupCycles", where = "top", type = "integer", unit = "cycles", default = 0,
	  min = 0, max = 100000, group = "Test flow", doc = "warm-up cycles (not in the capacity)" },
	{ key = "numMeasurementCycles", where = "top", type = "integer", unit = "cycles", default = 1,
	  min = 0, max = 100000, doc = "measurement cycles (the capacity)" },
	{ key = "restPeriod", where = "top", type = "number", unit = "s", default = 60,
	  min = 0, max = 604800, why_max = "7 days; a longer rest looks like a typo and would never end",
	  doc = "rest after each charge and discharge" },
	{ key = "reportingPeriod", where = "top", type = "number", unit = "s", default = 1,
	  min = 0.5, max = 3600, doc = "time between samples" },
	{ key = "impedanceReportingPeriod", where = "top", type = "number", unit = "s", default = 60,
	  min = 0, max = 86400, doc = "time between impedance measurements (0 = off)" },
	{ key = "acceptableImpedanceThreshold", where = "top", type = "number", unit = "ohm", default = 1.0,
	  min = 0.001, max = 200, doc = "impedance above this fails the cell" },
	{ key = "storageDischarge", where = "top", type = "bool", default = false,
	  doc = "discharge to the storage voltage at the end" },
	{ key = "storageDischargeVoltage", where = "top", type = "number", unit = "V",
	  default = function(s) return CHEMISTRIES[s.cellChemistryType].storageDischargeVoltage end,
	  min = 0.5, max = 4.4, doc = "storage discharge ends below this" },

	-- Safety limits (written to the limit registers)
	{ key = "highVoltageCutoff", where = "bS", type = "number", unit = "V",
	  default = function(s) return CHEMISTRIES[s.cellChemistryType].highVoltageCutoff end,
	  min = 3.0, max = 4.4, group = "Limits", doc = "charge voltage limit (VOLTAGE_LIMIT_CHG)" },
	{ key = "lowVoltageCutoff", where = "bS", type = "number", unit = "V",
	  default = function(s) return CHEMISTRIES[s.cellChemistryType].lowVoltageCutoff end,
	  min = 0.5, max = 4.4, doc = "discharge voltage limit (VOLTAGE_LIMIT_DCHG)",
	  why_min = "the current sink cannot hold its current from a lower voltage" },
	-- batlab's own key: below the floor of Lexcelon's software (the
	-- chemistry's lv_floor) only when asked for by name.
	{ key = "allowLowVoltageCutoff", where = "top", type = "bool", default = false,
	  doc = "allow lowVoltageCutoff below 2.4324 V (LiFePO4: 2.0 V), down to 0.5 V" },
	{ key = "chargeTemperatureCutoff", where = "bS", type = "number", unit = "degC", default = 50,
	  min = -20, max = 80, doc = "charge temperature limit (TEMP_LIMIT_CHG)" },
	{ key = "dischargeTemperatureCutoff", where = "bS", type = "number", unit = "degC", default = 80,
	  min = -20, max = 80, doc = "discharge temperature limit (TEMP_LIMIT_DCHG)" },
	{ key = "chargeCurrentSafetyCutoff", where = "bS", type = "number", unit = "A", default = 4.0,
	  min = 0, max = I_FULL, doc = "charge current limit (CURRENT_LIMIT_CHG)",
	  why_max = I_FULL_WHY, clamp_above = 5.0 },
	{ key = "dischargeCurrentSafetyCutoff", where = "bS", type = "number", unit = "A", default = 4.0,
	  min = 0, max = I_FULL, doc = "discharge current limit (CURRENT_LIMIT_DCHG)",
	  why_max = I_FULL_WHY, clamp_above = 5.0 },

	-- Rates
	{ key = "prechargeRate", where = "bS", type = "number", unit = "A", default = 2.0,
	  min = 0, max = 4.0, cutoff = "chargeCurrentSafetyCutoff", group = "Rates",
	  doc = "precharge current (0 = no precharge, with a warning)" },
	{ key = "chargeRate", where = "bS", type = "number", unit = "A", default = 2.0,
	  min = 0, max = 4.0, cutoff = "chargeCurrentSafetyCutoff",
	  doc = "charge current (0 = no charge: primary cells, with a warning)" },
	{ key = "dischargeRate", where = "bS", type = "number", unit = "A", default = 2.0,
	  min = 0, above = 0, max = 4.0, cutoff = "dischargeCurrentSafetyCutoff",
	  why_above = "at 0 A the cell never reaches lowVoltageCutoff: the test would fail after the charge",
	  doc = "discharge (and storage discharge) current" },

	-- Sine wave (impedance)
	{ key = "sineWaveFrequency", where = "bS", type = "number", unit = "Hz", default = 39.0625,
	  min = 39.0625, max = 1054.6875, group = "Sine wave", doc = "impedance sine frequency (SINE_FREQ)" },
	{ key = "sineWaveMagnitude", where = "bS", type = "integer", unit = "code", default = 2,
	  min = 0, max = 2, doc = "sine magnitude code: 2 / 2^code A p-p (SINE_MAGDIV)" },

	-- Trickle
	{ key = "trickleEnable", gui = "enableTrickle", where = "bS", type = "bool", default = false,
	  group = "Trickle", doc = "reduce the current near the end of charge/discharge" },
	{ key = "trickleChrgEngageVoltage", gui = "trickleChargeEngageLimit", where = "bS",
	  type = "number", unit = "V", min = 1.8, max = 4.4,
	  default = function(s) return s.highVoltageCutoff - 0.1 end,
	  doc = "charge trickle engages above this (default HV - 0.1 V)" },
	{ key = "trickleDischrgEngageVoltage", gui = "trickleDischargeEngageLimit", where = "bS",
	  type = "number", unit = "V", min = 0.5, max = 4.4,
	  default = function(s) return s.lowVoltageCutoff + 0.3 end,
	  doc = "discharge trickle engages below this (default LV + 0.3 V)" },
	{ key = "trickleChrgRate", gui = "trickleChargeRate", where = "bS", type = "number", unit = "A",
	  default = 0.5, min = 0, max = 4.0, cutoff = "chargeCurrentSafetyCutoff", when = "trickleEnable",
	  doc = "trickle charge current" },
	{ key = "trickleDischrgRate", gui = "trickleDischargeRate", where = "bS", type = "number", unit = "A",
	  default = 0.5, min = 0, max = 4.0, cutoff = "dischargeCurrentSafetyCutoff", when = "trickleEnable",
	  doc = "trickle discharge current" },

	-- Pulse
	{ key = "pulseEnable", gui = "enablePulse", where = "bS", type = "bool", default = false,
	  group = "Pulse", doc = "pulsed charge and discharge" },
	{ key = "pulseChrgOnTime", gui = "pulseChargeOnTime", where = "bS", type = "number", unit = "s",
	  default = 60, min = 0, max = 86400, doc = "charge pulse on time (0 = no pulse)" },
	{ key = "pulseChrgOffTime", gui = "pulseChargeOffTime", where = "bS", type = "number", unit = "s",
	  default = 10, min = 0, max = 86400, doc = "charge pulse off time" },
	{ key = "pulseDischrgOnTime", gui = "pulseDischargeOnTime", where = "bS", type = "number", unit = "s",
	  default = 60, min = 0, max = 86400, doc = "discharge pulse on time (0 = no pulse)" },
	{ key = "pulseDischrgOffTime", gui = "pulseDischargeOffTime", where = "bS", type = "number", unit = "s",
	  default = 10, min = 0, max = 86400, doc = "discharge pulse off time" },
	{ key = "pulseChrgOffRate", gui = "pulseChargeOffRate", where = "bS", type = "number", unit = "A",
	  default = 0, min = 0, max = 4.0, cutoff = "chargeCurrentSafetyCutoff", when = "pulseEnable",
	  doc = "charge current during the off phase" },
	{ key = "pulseDischrgOffRate", gui = "pulseDischargeOffRate", where = "bS", type = "number", unit = "A",
	  default = 0, min = 0, max = 4.0, cutoff = "dischargeCurrentSafetyCutoff", when = "pulseEnable",
	  doc = "discharge current during the off phase" },

	-- Constant voltage (approximation by stepping the current down)
	{ key = "constantVoltageEnable", gui = "enableConstantVoltage", where = "bS", type = "bool",
	  default = false, group = "Constant voltage", doc = "constant-voltage end of charge" },
	{ key = "constantVoltageDischargeEnable", where = "bS", type = "bool",
	  default = function(s, info) return info.format == "gui" and s.constantVoltageEnable or false end,
	  doc = "constant-voltage end of discharge (GUI files: follows the CV flag)" },
	{ key = "constantVoltageStepsize", gui = "constantVoltageStepSize", where = "bS", type = "integer",
	  unit = "raw", default = 8, min = 1, max = 575,
	  doc = "current step in 1/128 A (also the loop's minimum)" },
	{ key = "constantVoltageSensitivity", where = "bS", type = "number", unit = "factor", default = 1,
	  min = 0, max = 100, doc = "scales I*Z in the CV threshold" },
}
M.KEYS = KEYS

-- canonical and GUI names -> spec
local BY_NAME = {}
for i, spec in ipairs(KEYS) do
	spec.index = i
	BY_NAME[spec.key] = spec
	if spec.gui then
		BY_NAME[spec.gui] = spec
	end
end

-- Keys the GUI refuses a playlist without (docs/settings.md).
M.GUI_REQUIRED = { "cellPlaylistName", "batlabCellPlaylistFileVersion", "cellChemistryType", "cellNames" }

-- canonical(name) -> the canonical key for a canonical or GUI name (a
-- "batlabSettings." prefix is allowed), or nil.
function M.canonical(name)
	if type(name) ~= "string" then
		return nil
	end
	local spec = BY_NAME[name] or BY_NAME[name:match("^batlabSettings%.(.+)$") or ""]
	return spec and spec.key or nil
end

-- spec(name) -> the key's spec for a canonical or GUI name, or nil.
function M.spec(name)
	return BY_NAME[name]
end

return M
