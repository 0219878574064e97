-- batlab.settings - Lexcelon test settings ("cell playlist") files.
--
-- Reads both formats (REFERENCE-HOST §3): the Python library's flat object
-- and the GUI's playlist with its nested `batlabSettings` object and renamed
-- keys. The result is one table with the canonical (Python) key names and
-- values in engineering units, every value checked:
--
--   * wrong type, malformed, or outside what the Batlab can do safely
--     (PROTOCOL §10): an error naming the file, the key, the value and the
--     allowed range - nothing starts;
--   * unusual for the declared chemistry, unknown keys, suspicious
--     combinations: warnings (strings), for the run's metadata.
--
-- docs/settings.md lists every key, alias, unit, default and range.
--
--   local settings = require "batlab.settings"
--   local s, warnings, info = settings.load("default.json", { "restPeriod=10" })
--   if not s then error(warnings) end     -- warnings is the error text here

local cjson = require("cjson.safe").new()
cjson.decode_invalid_numbers(false)  -- NaN, Infinity, hex: not JSON

local M = {}

--------------------------------------------------------------------------
-- Chemistry presets (the GUI wizard's, REFERENCE-HOST §3.2) and the
-- usual ranges that give warnings.

local CHEMISTRIES = {
	lipoChemistry = {
		label = "Li-ion/LiPo",
		highVoltageCutoff = 4.2, lowVoltageCutoff = 2.5, storageDischargeVoltage = 3.8,
		hv_max = 4.25, lv_min = 2.5, storage_min = 3.5, storage_max = 4.0,
		charge_temp_max = 50,
	},
	ironPhosphateChemistry = {
		label = "LiFePO4",
		highVoltageCutoff = 3.6, lowVoltageCutoff = 2.0, storageDischargeVoltage = 3.2,
		hv_max = 3.65, lv_min = 2.0, storage_min = 3.0, storage_max = 3.4,
		charge_temp_max = 50,
	},
	otherChemistry = {
		label = "other",
		highVoltageCutoff = 4.2, lowVoltageCutoff = 2.5, storageDischargeVoltage = 3.8,
	},
}
M.CHEMISTRIES = CHEMISTRIES

-- Accepted spellings (lower case, letters and digits only) -> canonical.
local CHEM_ALIASES = {
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
	  min = 0, doc = "rest after each charge and discharge" },
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
	{ key = "chargeTemperatureCutoff", where = "bS", type = "number", unit = "degC", default = 50,
	  min = -20, max = 80, doc = "charge temperature limit (TEMP_LIMIT_CHG)" },
	{ key = "dischargeTemperatureCutoff", where = "bS", type = "number", unit = "degC", default = 80,
	  min = -20, max = 80, doc = "discharge temperature limit (TEMP_LIMIT_DCHG)" },
	{ key = "chargeCurrentSafetyCutoff", where = "bS", type = "number", unit = "A", default = 4.0,
	  min = 0, max = 4.096, doc = "charge current limit (CURRENT_LIMIT_CHG)",
	  why_max = "4.096 A is the current sense full scale", clamp_above = 5.0 },
	{ key = "dischargeCurrentSafetyCutoff", where = "bS", type = "number", unit = "A", default = 4.0,
	  min = 0, max = 4.096, doc = "discharge current limit (CURRENT_LIMIT_DCHG)",
	  why_max = "4.096 A is the current sense full scale", clamp_above = 5.0 },

	-- Rates
	{ key = "prechargeRate", where = "bS", type = "number", unit = "A", default = 2.0,
	  min = 0, max = 4.0, cutoff = "chargeCurrentSafetyCutoff", group = "Rates",
	  doc = "precharge current" },
	{ key = "chargeRate", where = "bS", type = "number", unit = "A", default = 2.0,
	  min = 0, max = 4.0, cutoff = "chargeCurrentSafetyCutoff", doc = "charge current" },
	{ key = "dischargeRate", where = "bS", type = "number", unit = "A", default = 2.0,
	  min = 0, max = 4.0, cutoff = "dischargeCurrentSafetyCutoff",
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
	  default = 60, min = 0, doc = "charge pulse on time (0 = no pulse)" },
	{ key = "pulseChrgOffTime", gui = "pulseChargeOffTime", where = "bS", type = "number", unit = "s",
	  default = 10, min = 0, doc = "charge pulse off time" },
	{ key = "pulseDischrgOnTime", gui = "pulseDischargeOnTime", where = "bS", type = "number", unit = "s",
	  default = 60, min = 0, doc = "discharge pulse on time (0 = no pulse)" },
	{ key = "pulseDischrgOffTime", gui = "pulseDischargeOffTime", where = "bS", type = "number", unit = "s",
	  default = 10, min = 0, doc = "discharge pulse off time" },
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

local BY_NAME = {}   -- canonical and GUI names -> spec
for i, spec in ipairs(KEYS) do
	spec.index = i
	BY_NAME[spec.key] = spec
	if spec.gui then
		BY_NAME[spec.gui] = spec
	end
end

-- Keys the GUI refuses a playlist without (REFERENCE-HOST §3.1).
local GUI_REQUIRED = { "cellPlaylistName", "batlabCellPlaylistFileVersion", "cellChemistryType", "cellNames" }

-- canonical(name) -> the canonical key for a canonical or GUI name (a
-- "batlabSettings." prefix is allowed), or nil.
function M.canonical(name)
	if type(name) ~= "string" then
		return nil
	end
	local spec = BY_NAME[name] or BY_NAME[name:match("^batlabSettings%.(.+)$") or ""]
	return spec and spec.key or nil
end

--------------------------------------------------------------------------
-- Formatting for messages and view.

local function fmt_num(v, spec)
	if spec and spec.type == "integer" and math.type(v) == "integer" then
		return string.format("%d", v)
	end
	if math.type(v) == "integer" then
		return string.format("%d", v)
	end
	local s = string.format("%.10g", v)
	if not s:find("[%.eEn]") then
		s = s .. ".0"
	end
	return s
end

-- A value as the user wrote it: 2 rather than 2.0 (JSON has one number type).
local function fmt_plain(v)
	if math.type(v) == "integer" then
		return string.format("%d", v)
	end
	return string.format("%.10g", v)
end

local function fmt_value(v, spec)
	if type(v) == "number" then
		return fmt_plain(v)
	elseif type(v) == "string" then
		return string.format("%q", v)
	elseif v == cjson.null then
		return "null"
	elseif type(v) == "table" then
		return "[...]"
	end
	return tostring(v)
end

local function fmt_range(spec)
	local u = spec.unit and spec.unit ~= "cycles" and (" " .. spec.unit) or ""
	local lo, hi = spec.min, spec.max
	if spec.type == "integer" then
		lo, hi = math.tointeger(lo) or lo, math.tointeger(hi) or hi
	else
		lo = lo and lo + 0.0
		hi = hi and hi + 0.0
	end
	if hi == nil then
		return fmt_num(lo) .. u .. " or more"
	end
	return fmt_num(lo) .. ".." .. fmt_num(hi) .. u
end
M.format_range = fmt_range

local function with_unit(v, spec)
	local u = spec.unit and spec.unit ~= "cycles" and spec.unit ~= "code" and (" " .. spec.unit) or ""
	return fmt_value(v, spec) .. u
end

--------------------------------------------------------------------------
-- JSON errors: cjson reports "at character N"; turn it into FILE:LINE.

local TOKENS = {
	T_OBJ_BEGIN = "'{'", T_OBJ_END = "'}'", T_ARR_BEGIN = "'['", T_ARR_END = "']'",
	T_STRING = "a string", T_NUMBER = "a number", T_BOOLEAN = "a boolean", T_NULL = "null",
	T_COLON = "':'", T_COMMA = "','", T_END = "the end of the file", T_WHITESPACE = "white space",
	T_ERROR = "an error", T_UNKNOWN = "an unknown token",
}

local function json_error(name, text, msg)
	msg = tostring(msg or "invalid JSON")
	local pos = tonumber(msg:match("at character (%d+)"))
	msg = msg:gsub("%s*at character %d+", ""):gsub("T_[A-Z_]+", TOKENS)
	if not pos then
		return string.format("%s: invalid JSON: %s", name, msg)
	end
	local line, last_nl = 1, 0
	local upto = text:sub(1, pos - 1)
	for nl in upto:gmatch("()\n") do
		line = line + 1
		last_nl = nl
	end
	return string.format("%s:%d: invalid JSON: %s (column %d)", name, line, msg, pos - last_nl)
end

--------------------------------------------------------------------------
-- Value conversion, one key at a time. Returns value or nil, message.

local TRUE_WORDS = { ["true"] = true, ["1"] = true, yes = true, on = true }
local FALSE_WORDS = { ["false"] = true, ["0"] = true, no = true, off = true }

local function is_finite(v)
	return v == v and v ~= math.huge and v ~= -math.huge
end

-- from_text: the value is a --set string, to be read by the key's type.
local function convert(spec, v, from_text)
	local t = spec.type
	if from_text and type(v) == "string" then
		if t == "number" or t == "integer" then
			local n = tonumber(v)
			if n == nil then
				return nil, "must be a number" .. (spec.unit and (" (" .. spec.unit .. ")") or "")
			end
			v = n
		elseif t == "bool" then
			local w = v:lower()
			if TRUE_WORDS[w] then
				v = true
			elseif FALSE_WORDS[w] then
				v = false
			else
				return nil, "must be true/false (or 1/0)"
			end
		elseif t == "names" then
			local list = {}
			for item in (v .. ","):gmatch("([^,]*),") do
				list[#list + 1] = item:match("^%s*(.-)%s*$")
			end
			v = list
		end
	end
	if t == "number" or t == "integer" then
		if type(v) ~= "number" then
			return nil, "must be a number" .. (spec.unit and (" (" .. spec.unit .. ")") or "")
		end
		if not is_finite(v) then
			return nil, "must be a finite number"
		end
		if t == "integer" then
			if v ~= math.floor(v) then
				return nil, "must be a whole number"
			end
			v = math.tointeger(v) or v
		else
			v = v + 0.0
		end
		if spec.min and spec.max == nil and v < spec.min then
			return nil, "must be " .. fmt_range(spec)
		end
		if spec.min and v < spec.min then
			return nil, "is outside " .. fmt_range(spec) .. (spec.why_min and (" (" .. spec.why_min .. ")") or "")
		end
		if spec.max and v > spec.max and spec.clamp_above and v <= spec.clamp_above then
			-- Lexcelon's own files ask for 4.1 A, more than the register
			-- holds; the limit the device can have is the nearest.
			return spec.max, nil, string.format("%s %s is more than the register holds; using %s %s",
				spec.key, fmt_num(v, spec), fmt_num(spec.max, spec), spec.unit or "")
		end
		if spec.max and v > spec.max then
			return nil, "is outside " .. fmt_range(spec) .. (spec.why_max and (" (" .. spec.why_max .. ")") or "")
		end
		return v
	elseif t == "bool" then
		if v == true or v == false then
			return v
		end
		if v == 0 or v == 1 then
			return v == 1
		end
		return nil, "must be true/false (or 1/0)"
	elseif t == "string" then
		if type(v) ~= "string" then
			return nil, "must be a string"
		end
		return v
	elseif t == "chemistry" then
		if type(v) ~= "string" then
			return nil, "must be a string (lipoChemistry, ironPhosphateChemistry or otherChemistry)"
		end
		local c = CHEM_ALIASES[v:lower():gsub("[^%w]", "")]
		if not c then
			return nil, "is not a known chemistry (lipoChemistry, ironPhosphateChemistry or otherChemistry)"
		end
		return c
	elseif t == "names" then
		if type(v) ~= "table" then
			return nil, "must be an array of strings"
		end
		local n = #v
		for k in pairs(v) do
			if math.type(k) ~= "integer" or k < 1 or k > n then
				return nil, "must be an array of strings"
			end
		end
		local list, seen = {}, {}
		for i = 1, n do
			local name = v[i]
			if type(name) ~= "string" then
				return nil, string.format("must be an array of strings (item %d is %s)", i,
					name == cjson.null and "null" or type(name))
			end
			if name == "" then
				return nil, string.format("must not hold an empty name (item %d)", i)
			end
			if seen[name] then
				return nil, string.format("has %q twice (items %d and %d)", name, seen[name], i)
			end
			seen[name] = i
			list[i] = name
		end
		return list
	end
	error("settings: unknown type " .. tostring(t))
end

--------------------------------------------------------------------------
-- parse

local function sorted_keys(t)
	local keys = {}
	for k in pairs(t) do
		keys[#keys + 1] = k
	end
	table.sort(keys, function(a, b)
		return tostring(a) < tostring(b)
	end)
	return keys
end

-- Normalise overrides: an array of "KEY=VALUE" strings and/or a map of
-- KEY -> value (string: read by the key's type; other: used as is).
-- Returns a list of { name, value, from_text } or nil, message.
local function override_list(overrides)
	local list = {}
	if overrides == nil then
		return list
	end
	if type(overrides) ~= "table" then
		return nil, "--set: overrides must be a table"
	end
	for i, item in ipairs(overrides) do
		if type(item) ~= "string" then
			return nil, string.format("--set: item %d must be a KEY=VALUE string", i)
		end
		local k, v = item:match("^%s*([^=]-)%s*=(.*)$")
		if not k or k == "" then
			return nil, string.format("--set %q: expected KEY=VALUE", item)
		end
		list[#list + 1] = { name = k, value = v:match("^%s*(.-)%s*$"), from_text = true }
	end
	local n = #overrides
	for _, k in ipairs(sorted_keys(overrides)) do
		if not (math.type(k) == "integer" and k >= 1 and k <= n) then
			if type(k) ~= "string" then
				return nil, "--set: keys must be strings"
			end
			local v = overrides[k]
			list[#list + 1] = { name = k, value = v, from_text = type(v) == "string" }
		end
	end
	return list
end

-- parse(json_text, name [, overrides]) -> s, warnings, info | nil, err
--
-- info = { file = name, format = "python" | "gui", given = {key = "file" |
-- "--set"}, as = {key = the name as written}, notes = {...} }.
-- err holds one line per problem, each "NAME: ..." (or "NAME:LINE: ..."
-- for malformed JSON).
function M.parse(text, name, overrides)
	name = name or "settings"
	if type(text) ~= "string" then
		return nil, name .. ": settings text must be a string"
	end
	if text:sub(1, 3) == "\239\187\191" then  -- UTF-8 byte order mark
		text = text:sub(4)
	end
	local root, jerr = cjson.decode(text)
	if root == nil then
		return nil, json_error(name, text, jerr)
	end
	-- cjson decodes [] and {} alike: look at the text too.
	if type(root) ~= "table" or root[1] ~= nil or not text:find("^%s*{") then
		return nil, name .. ": expected a JSON object ({...}) at the top level"
	end

	local errors, warnings, notes = {}, {}, {}
	local info = { file = name, format = "python", given = {}, as = {}, notes = notes }
	local raw = {}        -- key -> value as found
	local unknown = {}

	local function key_label(spec, as)
		if as == spec.key then
			return "'" .. as .. "'"
		end
		return string.format("'%s' (%s)", as, spec.key)
	end

	local function take(k, v, prefix)
		local as = prefix .. k
		local spec = BY_NAME[k]
		if not spec then
			unknown[#unknown + 1] = as
			return
		end
		local prev = raw[spec.key]
		if prev ~= nil then
			local same = prev.value == v
			if not same and type(v) == "table" and type(prev.value) == "table" then
				same = cjson.encode(v) == cjson.encode(prev.value)
			end
			if not same then
				errors[#errors + 1] = string.format("%s: key '%s' is given twice with different values ('%s' = %s and '%s' = %s)",
					name, spec.key, prev.as, fmt_value(prev.value, spec), as, fmt_value(v, spec))
			end
			return
		end
		raw[spec.key] = { value = v, as = as }
	end

	local bs = root.batlabSettings
	if bs ~= nil then
		info.format = "gui"
		if type(bs) ~= "table" or bs[1] ~= nil then
			return nil, name .. ": key 'batlabSettings' must be an object ({...})"
		end
	end
	for _, k in ipairs(sorted_keys(root)) do
		if k ~= "batlabSettings" then
			take(k, root[k], "")
		end
	end
	if bs then
		for _, k in ipairs(sorted_keys(bs)) do
			take(k, bs[k], "batlabSettings.")
		end
	end
	if #unknown > 0 then
		local quoted = {}
		for i, k in ipairs(unknown) do
			quoted[i] = "'" .. k .. "'"
		end
		warnings[#warnings + 1] = string.format("%s: unknown key%s ignored: %s", name,
			#unknown > 1 and "s" or "", table.concat(quoted, ", "))
	end
	if info.format == "gui" then
		local missing = {}
		for _, k in ipairs(GUI_REQUIRED) do
			if raw[k] == nil then
				missing[#missing + 1] = k
			end
		end
		if #missing > 0 then
			local note = string.format("%s: GUI playlist without %s: default%s used", name,
				table.concat(missing, ", "), #missing > 1 and "s" or "")
			notes[#notes + 1] = note
			warnings[#warnings + 1] = note
		end
	end

	-- Overrides replace file values (no conflict).
	local olist, oerr = override_list(overrides)
	if not olist then
		return nil, name .. ": " .. oerr
	end
	local from_text = {}
	for _, o in ipairs(olist) do
		local ck = M.canonical(o.name)
		if not ck then
			errors[#errors + 1] = string.format("%s: --set: unknown key '%s'", name, o.name)
		else
			raw[ck] = { value = o.value, as = o.name, set = true }
			from_text[ck] = o.from_text
		end
	end

	-- Convert and check every given value.
	local s = {}
	for _, spec in ipairs(KEYS) do
		local r = raw[spec.key]
		if r ~= nil then
			local v, why, note = convert(spec, r.value, from_text[spec.key])
			if note then
				warnings[#warnings + 1] = name .. ": " .. note
			end
			if v == nil then
				errors[#errors + 1] = string.format("%s: key %s = %s%s %s", name, key_label(spec, r.as),
					fmt_value(r.value, spec), r.set and " (--set)" or "", why)
			else
				s[spec.key] = v
				info.given[spec.key] = r.set and "--set" or "file"
				info.as[spec.key] = r.as
			end
		end
	end
	if #errors > 0 then
		return nil, table.concat(errors, "\n")
	end

	-- Defaults, in table order (chemistry first, cutoffs before what
	-- depends on them).
	for _, spec in ipairs(KEYS) do
		if s[spec.key] == nil then
			local d = spec.default
			if type(d) == "function" then
				d = d(s, info)
				if spec.type == "number" then
					-- Keep computed defaults tidy: 4.2 - 0.1 is 4.1, not 4.1000000000000005.
					d = tonumber(string.format("%.6f", d))
				end
			elseif spec.type == "number" then
				d = d + 0.0
			elseif type(d) == "table" then
				local copy = {}
				for i, x in ipairs(d) do
					copy[i] = x
				end
				d = copy
			end
			s[spec.key] = d
		end
	end

	local function label(k)
		local spec = BY_NAME[k]
		local as = info.as[k] or k
		local l = string.format("key %s = %s", key_label(spec, as), with_unit(s[k], spec))
		if info.given[k] == "--set" then
			l = l .. " (--set)"
		elseif not info.given[k] then
			l = l .. " (default)"
		end
		return l
	end

	-- Dynamic bounds (errors).
	if not (s.lowVoltageCutoff < s.highVoltageCutoff) then
		errors[#errors + 1] = string.format("%s: %s must be below highVoltageCutoff (%s V)", name,
			label("lowVoltageCutoff"), fmt_num(s.highVoltageCutoff))
	end
	for _, spec in ipairs(KEYS) do
		if spec.cutoff and (not spec.when or s[spec.when]) and s[spec.key] > s[spec.cutoff] then
			errors[#errors + 1] = string.format("%s: %s is above %s (%s A)", name, label(spec.key),
				spec.cutoff, fmt_num(s[spec.cutoff]))
		end
	end
	if s.storageDischarge and (s.storageDischargeVoltage < s.lowVoltageCutoff
			or s.storageDischargeVoltage > s.highVoltageCutoff) then
		errors[#errors + 1] = string.format("%s: %s must lie between lowVoltageCutoff (%s V) and highVoltageCutoff (%s V)",
			name, label("storageDischargeVoltage"), fmt_num(s.lowVoltageCutoff), fmt_num(s.highVoltageCutoff))
	end
	if #errors > 0 then
		return nil, table.concat(errors, "\n")
	end

	-- Warnings: chemistry, then general.
	local chem = CHEMISTRIES[s.cellChemistryType]
	local function warn(fmt, ...)
		warnings[#warnings + 1] = name .. ": " .. string.format(fmt, ...)
	end
	if chem.hv_max and s.highVoltageCutoff > chem.hv_max then
		warn("%s is above the usual %s V for %s cells", label("highVoltageCutoff"), fmt_num(chem.hv_max), chem.label)
	end
	if chem.lv_min and s.lowVoltageCutoff < chem.lv_min then
		warn("%s is below the usual %s V for %s cells", label("lowVoltageCutoff"), fmt_num(chem.lv_min), chem.label)
	end
	if chem.storage_min and s.storageDischarge and (s.storageDischargeVoltage < chem.storage_min
			or s.storageDischargeVoltage > chem.storage_max) then
		warn("%s is outside the usual %s..%s V for storing %s cells", label("storageDischargeVoltage"),
			fmt_num(chem.storage_min), fmt_num(chem.storage_max), chem.label)
	end
	if chem.charge_temp_max and s.chargeTemperatureCutoff > chem.charge_temp_max then
		warn("%s is above the usual %s degC for charging %s cells", label("chargeTemperatureCutoff"),
			fmt_num(chem.charge_temp_max + 0.0), chem.label)
	end
	for _, k in ipairs({ "chargeTemperatureCutoff", "dischargeTemperatureCutoff" }) do
		if s[k] < 25 then
			warn("%s is below room temperature: the step may stop at once", label(k))
		end
	end
	for _, k in ipairs({ "chargeCurrentSafetyCutoff", "dischargeCurrentSafetyCutoff" }) do
		if s[k] > 4.092 then
			warn("%s is above the largest current the Batlab measures (4.092 A): the firmware current limit can never trip", label(k))
		end
	end
	if s.impedanceReportingPeriod > 0 and s.impedanceReportingPeriod < 10 then
		warn("%s: each impedance measurement takes about 2 s", label("impedanceReportingPeriod"))
	end
	local steps = s.sineWaveFrequency / 39.0625
	if steps ~= math.floor(steps) then
		warn("%s is not a multiple of 39.0625 Hz: the Batlab will use %s Hz", label("sineWaveFrequency"),
			fmt_num(math.floor(steps) * 39.0625))
	end
	if s.trickleEnable then
		if s.trickleChrgEngageVoltage <= s.trickleDischrgEngageVoltage then
			warn("trickle engage voltages look swapped: trickleChrgEngageVoltage %s V is not above trickleDischrgEngageVoltage %s V, so trickle engages almost at once",
				fmt_num(s.trickleChrgEngageVoltage), fmt_num(s.trickleDischrgEngageVoltage))
		end
		if s.trickleChrgEngageVoltage >= s.highVoltageCutoff then
			warn("%s is not below highVoltageCutoff: charge trickle never engages", label("trickleChrgEngageVoltage"))
		end
		if s.trickleDischrgEngageVoltage <= s.lowVoltageCutoff then
			warn("%s is not above lowVoltageCutoff: discharge trickle never engages", label("trickleDischrgEngageVoltage"))
		end
	end
	if s.cellPlaylistName == "" or not s.cellPlaylistName:find("^[ %w_%-%.]+$") then
		warn("%s: a playlist name is letters, digits, space, '_', '-' and '.'; other characters are replaced in file names",
			label("cellPlaylistName"))
	end
	return s, warnings, info
end

-- load(path [, overrides]) -> s, warnings, info | nil, err
-- path may also be an open file (the seed's Settings.load took one).
function M.load(path, overrides)
	local text, name
	if io.type(path) == "file" then
		name = "settings"
		text = path:read("a")
		if not text then
			return nil, name .. ": read failed"
		end
	else
		if type(path) ~= "string" then
			return nil, "settings: file name must be a string"
		end
		name = path
		local f, err = io.open(path, "rb")
		if not f then
			-- io.open says "PATH: No such file or directory" already.
			return nil, err
		end
		text = f:read("a")
		f:close()
		if not text then
			return nil, path .. ": read failed"
		end
	end
	return M.parse(text, name, overrides)
end

-- defaults([chemistry]) -> the full settings table with every default.
function M.defaults(chemistry)
	local text = chemistry and cjson.encode({ cellChemistryType = chemistry }) or "{}"
	local s, err = M.parse(text, "defaults")
	if not s then
		error(err, 2)
	end
	return s
end

--------------------------------------------------------------------------
-- Cell names

-- generate_names(designator, start, count) -> {"CELL_001", ...}: the GUI
-- wizard's names, zero-padded to max(3, digits(count + start)).
function M.generate_names(designator, start, count)
	designator = designator or "CELL"
	start = math.tointeger(start or 1)
	count = math.tointeger(count)
	if type(designator) ~= "string" or designator == "" then
		error("generate_names: designator must be a non-empty string", 2)
	end
	if not start or start < 0 then
		error("generate_names: start must be a whole number >= 0", 2)
	end
	if not count or count < 0 then
		error("generate_names: count must be a whole number >= 0", 2)
	end
	local width = math.max(3, #tostring(count + start))
	local names = {}
	for i = 0, count - 1 do
		names[#names + 1] = string.format("%s_%0" .. width .. "d", designator, start + i)
	end
	return names
end

-- cell_names(s, from_cli) -> names | nil, err. Names from the command line
-- (a non-empty array) win over the file's cellNames. Names must be
-- non-empty strings, each given once.
function M.cell_names(s, from_cli)
	local list = (type(from_cli) == "table" and #from_cli > 0) and from_cli or (s and s.cellNames) or {}
	local out, seen = {}, {}
	for i, n in ipairs(list) do
		if type(n) ~= "string" or n == "" then
			return nil, string.format("cell name %d must be a non-empty string", i)
		end
		if seen[n] then
			return nil, string.format("cell name %q is given twice", n)
		end
		seen[n] = true
		out[i] = n
	end
	return out
end

--------------------------------------------------------------------------
-- Register values

-- to_register_values(s, R, B) -> { VOLTAGE_LIMIT_CHG = raw, ... } for the
-- six cell limit registers; R, B are the cell's thermistor calibration
-- (default 1500, 3380).
function M.to_register_values(s, R, B)
	local batlab = require "batlab"
	local E = batlab.Encoder
	R, B = R or 1500, B or 3380
	return {
		VOLTAGE_LIMIT_CHG = E(s.highVoltageCutoff):asvoltage(),
		VOLTAGE_LIMIT_DCHG = E(s.lowVoltageCutoff):asvoltage(),
		CURRENT_LIMIT_CHG = E(s.chargeCurrentSafetyCutoff):ascurrent(),
		CURRENT_LIMIT_DCHG = E(s.dischargeCurrentSafetyCutoff):ascurrent(),
		TEMP_LIMIT_CHG = E(s.chargeTemperatureCutoff):c_astemperature(R, B),
		TEMP_LIMIT_DCHG = E(s.dischargeTemperatureCutoff):c_astemperature(R, B),
	}
end

-- The order to write them in (names of the table above).
M.LIMIT_REGISTERS = {
	"VOLTAGE_LIMIT_CHG", "VOLTAGE_LIMIT_DCHG", "CURRENT_LIMIT_CHG",
	"CURRENT_LIMIT_DCHG", "TEMP_LIMIT_CHG", "TEMP_LIMIT_DCHG",
}

-- sine_register_values(s) -> { SINE_FREQ = raw, SINE_MAGDIV = code } (UNIT).
function M.sine_register_values(s)
	local batlab = require "batlab"
	return {
		SINE_FREQ = batlab.Encoder(s.sineWaveFrequency):asfreq(),
		SINE_MAGDIV = s.sineWaveMagnitude,
	}
end

--------------------------------------------------------------------------
-- view

-- view(s [, info]) -> text: every setting, its value with unit, what it
-- does; values not from the file are marked "(default)" or "(--set)"
-- when info (the third result of load/parse) is given.
function M.view(s, info)
	if type(info) ~= "table" or type(info.given) ~= "table" then
		info = nil
	end
	local lines = {}
	if info then
		lines[#lines + 1] = string.format("Settings from %s (%s format)", info.file,
			info.format == "gui" and "GUI playlist" or "Python")
	end
	for _, spec in ipairs(KEYS) do
		if spec.group then
			lines[#lines + 1] = spec.group
		end
		local v = s[spec.key]
		local shown
		if spec.type == "names" then
			local q = {}
			for i, n in ipairs(v or {}) do
				q[i] = string.format("%q", n)
			end
			shown = "[" .. table.concat(q, ", ") .. "]"
		elseif v == nil then
			shown = "-"
		else
			shown = with_unit(v, spec)
		end
		local mark = ""
		if info then
			if info.given[spec.key] == "--set" then
				mark = " (--set)"
			elseif not info.given[spec.key] then
				mark = " (default)"
			end
		end
		lines[#lines + 1] = string.format("  %-30s %-16s %s%s", spec.key, shown, spec.doc, mark)
	end
	return table.concat(lines, "\n") .. "\n"
end

--------------------------------------------------------------------------
-- The seed-compatible object: batlab.Settings-like.
--
--   local st = settings.Settings()
--   assert(st:load("default.json"))
--   print(st:view())
--   print(st.highVoltageCutoff, st.warnings[1])

local Object = {}

-- Keep what load/parse returned; the old settings stay on failure.
local function adopt(self, s, w, info)
	if not s then
		return nil, w
	end
	rawset(self, "settings", s)
	rawset(self, "warnings", w)
	rawset(self, "info", info)
	return true, w
end

function Object:load(file, overrides)
	return adopt(self, M.load(file, overrides))
end

function Object:parse(text, name, overrides)
	return adopt(self, M.parse(text, name, overrides))
end

function Object:view()
	return M.view(self.settings, self.info)
end

function Object:get(key)
	local k = M.canonical(key)
	return k and self.settings[k]
end

function Object:to_register_values(R, B)
	return M.to_register_values(self.settings, R, B)
end

function Object:cell_names(from_cli)
	return M.cell_names(self.settings, from_cli)
end

local ObjectMT = {
	__name = "batlab.Settings",
	__index = function(self, k)
		local m = Object[k]
		if m then
			return m
		end
		local ck = M.canonical(k)
		return ck and rawget(self, "settings")[ck]
	end,
}

function M.Settings()
	return setmetatable({ settings = M.defaults(), warnings = {}, info = nil }, ObjectMT)
end

return M
