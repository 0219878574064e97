-- batlab.settings_check - checking settings values (docs/settings.md):
-- one value against its key (type, range), the values together (cutoffs,
-- ordering: errors) and what is unusual (warnings), and the text of the
-- messages about them. batlab.settings calls these while it reads a file.

local cjson = require "cjson"
local keys = require "batlab.settings_keys"

local M = {}

--------------------------------------------------------------------------
-- Formatting for messages and view.

-- A value as the user wrote it: 2 rather than 2.0 (JSON has one number type).
local function fmt_plain(v)
	if math.type(v) == "integer" then
		return string.format("%d", v)
	end
	return string.format("%.10g", v)
end

-- A number as a limit: floats keep a ".0" so 4 V reads as a voltage.
local function fmt_num(v)
	local s = fmt_plain(v)
	if math.type(v) == "float" and not s:find("[%.eEn]") then
		s = s .. ".0"
	end
	return s
end
M.fmt_num = fmt_num

local function fmt_value(v)
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
M.fmt_value = fmt_value

-- format_range(spec) -> "0.0..4.096 A", "0.5 s or more", "above 0.0 A, up to 4.0 A".
function M.format_range(spec)
	local u = spec.unit and spec.unit ~= "cycles" and (" " .. spec.unit) or ""
	local lo, hi = spec.min, spec.max
	if spec.type == "integer" then
		lo, hi = math.tointeger(lo) or lo, math.tointeger(hi) or hi
	else
		lo = lo and lo + 0.0
		hi = hi and hi + 0.0
	end
	if spec.above then
		return "above " .. fmt_num(spec.above + 0.0) .. u .. ", up to " .. fmt_num(hi) .. u
	end
	if hi == nil then
		return fmt_num(lo) .. u .. " or more"
	end
	return fmt_num(lo) .. ".." .. fmt_num(hi) .. u
end
local fmt_range = M.format_range

-- with_unit(v, spec) -> "4.2 V" (no unit for counts and codes).
function M.with_unit(v, spec)
	local u = spec.unit and spec.unit ~= "cycles" and spec.unit ~= "code" and (" " .. spec.unit) or ""
	return fmt_value(v) .. u
end

-- key_label(spec, as) -> "'key'", or "'name as written' (key)".
function M.key_label(spec, as)
	if as == spec.key then
		return "'" .. as .. "'"
	end
	return string.format("'%s' (%s)", as, spec.key)
end

-- label(s, info, k) -> "key 'k' = 4.2 V (default)": a value in a message,
-- named as the file wrote it, marked when it did not come from the file.
function M.label(s, info, k)
	local spec = keys.spec(k)
	local l = string.format("key %s = %s", M.key_label(spec, info.as[k] or k), M.with_unit(s[k], spec))
	if info.given[k] == "--set" then
		l = l .. " (--set)"
	elseif not info.given[k] then
		l = l .. " (default)"
	end
	return l
end

--------------------------------------------------------------------------
-- Value conversion, one key at a time. Returns value or nil, message.

local TRUE_WORDS = { ["true"] = true, ["1"] = true, yes = true, on = true }
local FALSE_WORDS = { ["false"] = true, ["0"] = true, no = true, off = true }

local function is_finite(v)
	return v == v and v ~= math.huge and v ~= -math.huge
end

local function must_be_number(spec)
	return "must be a number" .. (spec.unit and (" (" .. spec.unit .. ")") or "")
end

-- A --set string read by the key's type (the value or nil, message).
local function from_text(spec, v)
	local t = spec.type
	if t == "number" or t == "integer" then
		local n = tonumber(v)
		if n == nil then
			return nil, must_be_number(spec)
		end
		return n
	elseif t == "bool" then
		local w = v:lower()
		if TRUE_WORDS[w] then
			return true
		elseif FALSE_WORDS[w] then
			return false
		end
		return nil, "must be true/false (or 1/0)"
	elseif t == "names" then
		local list = {}
		for item in (v .. ","):gmatch("([^,]*),") do
			list[#list + 1] = item:match("^%s*(.-)%s*$")
		end
		return list
	end
	return v
end

local function convert_number(spec, v)
	if type(v) ~= "number" then
		return nil, must_be_number(spec)
	end
	if not is_finite(v) then
		return nil, "must be a finite number"
	end
	if spec.type == "integer" then
		if v ~= math.floor(v) then
			return nil, "must be a whole number"
		end
		v = math.tointeger(v) or v
	else
		v = v + 0.0
	end
	if spec.above and (v <= spec.above or v > spec.max) then
		return nil, "must be " .. fmt_range(spec) .. (v <= spec.above and spec.why_above
			and (" (" .. spec.why_above .. ")") or "")
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
			spec.key, fmt_num(v), fmt_num(spec.max), spec.unit or "")
	end
	if spec.max and v > spec.max then
		return nil, "is outside " .. fmt_range(spec) .. (spec.why_max and (" (" .. spec.why_max .. ")") or "")
	end
	return v
end

--------------------------------------------------------------------------
-- Cell names: every name (--cell, NAME..., --cells-from, cellNames) is
-- checked here.

M.NAME_MAX = 64

-- A name for a message: control characters as \n, \t, \xNN.
function M.show_name(name)
	local shown = name:gsub("[%c]", function(c)
		local named = { ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
		return named[c] or string.format("\\x%02X", c:byte())
	end)
	if #shown > 80 then
		shown = shown:sub(1, 60) .. "..."
	end
	return '"' .. shown .. '"'
end

-- name_problem(name) -> nil for a good cell name, or what is wrong: a
-- name is 1..64 characters of printable text (it goes into file names,
-- CSV rows and messages).
function M.name_problem(name)
	if type(name) ~= "string" then
		return "must be a string"
	end
	if name == "" then
		return "is empty"
	end
	local len = utf8.len(name) or #name
	if len > M.NAME_MAX then
		return string.format("is %d characters long: at most %d", len, M.NAME_MAX)
	end
	local c = name:match("%c")
	if c then
		return string.format("holds a control character (byte %d): a name is printable text", c:byte())
	end
	return nil
end

local function convert_names(v)
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
		local why = M.name_problem(name)
		if why then
			return nil, string.format("item %d: cell name %s %s", i, M.show_name(name), why)
		end
		if seen[name] then
			return nil, string.format("has %q twice (items %d and %d)", name, seen[name], i)
		end
		seen[name] = i
		list[i] = name
	end
	return list
end

local CHEMISTRY_NAMES = "lipoChemistry, ironPhosphateChemistry or otherChemistry"

-- convert(spec, v [, text]) -> value | nil, message [, note]: v checked
-- and converted for its key (text: v is a --set string, read by the key's
-- type first). note: a warning about a value that was adjusted.
function M.convert(spec, v, text)
	local t = spec.type
	if text and type(v) == "string" then
		local why
		v, why = from_text(spec, v)
		if v == nil then
			return nil, why
		end
	end
	if t == "number" or t == "integer" then
		return convert_number(spec, v)
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
			return nil, "must be a string (" .. CHEMISTRY_NAMES .. ")"
		end
		local c = keys.CHEM_ALIASES[v:lower():gsub("[^%w]", "")]
		if not c then
			return nil, "is not a known chemistry (" .. CHEMISTRY_NAMES .. ")"
		end
		return c
	elseif t == "names" then
		return convert_names(v)
	end
	error("settings: unknown type " .. tostring(t))
end

--------------------------------------------------------------------------
-- The values together

-- bounds(s, info, name) -> a list of errors: limits that depend on other
-- keys (low below high voltage, rates below their cutoffs, the storage
-- voltage between the two cutoffs).
function M.bounds(s, info, name)
	local errors = {}
	local function label(k)
		return M.label(s, info, k)
	end
	if not (s.lowVoltageCutoff < s.highVoltageCutoff) then
		errors[#errors + 1] = string.format("%s: %s must be below highVoltageCutoff (%s V)", name,
			label("lowVoltageCutoff"), fmt_num(s.highVoltageCutoff))
	end
	local floor = keys.CHEMISTRIES[s.cellChemistryType].lv_floor
	if floor and s.lowVoltageCutoff < floor and not s.allowLowVoltageCutoff then
		errors[#errors + 1] = string.format("%s: %s is below %s V, the lowest Lexcelon's software takes"
			.. " (allowed: %s..%s V, below highVoltageCutoff); to discharge deeper (primary cells, down to"
			.. " %s V) ask for it with --set allowLowVoltageCutoff=true (or \"allowLowVoltageCutoff\": true"
			.. " in the file)", name, label("lowVoltageCutoff"), fmt_num(floor), fmt_num(floor),
			fmt_num(keys.spec("lowVoltageCutoff").max), fmt_num(keys.spec("lowVoltageCutoff").min))
	end
	for _, spec in ipairs(keys.KEYS) do
		if spec.cutoff and (not spec.when or s[spec.when]) and s[spec.key] > s[spec.cutoff] then
			errors[#errors + 1] = string.format("%s: %s is above %s (%s A)", name, label(spec.key),
				spec.cutoff, fmt_num(s[spec.cutoff]))
		end
	end
	if s.trickleEnable then
		for _, k in ipairs({ "trickleChrgRate", "trickleDischrgRate" }) do
			if s[k] <= 0 then
				errors[#errors + 1] = string.format("%s: %s must be above 0 A when trickleEnable is on (a trickle at 0 A never reaches the cutoff: the step would never end)",
					name, label(k))
			end
		end
	end
	if s.numWarmupCycles + s.numMeasurementCycles == 0 then
		errors[#errors + 1] = string.format("%s: %s and %s: a cycle test would run no cycle and measure nothing (set numMeasurementCycles to 1 or more)",
			name, label("numWarmupCycles"), label("numMeasurementCycles"))
	end
	if s.storageDischarge and (s.storageDischargeVoltage < s.lowVoltageCutoff
			or s.storageDischargeVoltage > s.highVoltageCutoff) then
		errors[#errors + 1] = string.format("%s: %s must lie between lowVoltageCutoff (%s V) and highVoltageCutoff (%s V)",
			name, label("storageDischargeVoltage"), fmt_num(s.lowVoltageCutoff), fmt_num(s.highVoltageCutoff))
	end
	return errors
end

-- Values outside the usual range of the declared chemistry.
local function chemistry_warnings(s, label, warn)
	local chem = keys.CHEMISTRIES[s.cellChemistryType]
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
end

local function trickle_warnings(s, label, warn)
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

-- warnings(s, info, name, list): appends what is allowed but unusual (the
-- chemistry's usual ranges first, then the general ones) to list.
function M.warnings(s, info, name, list)
	local function label(k)
		return M.label(s, info, k)
	end
	local function warn(fmt, ...)
		list[#list + 1] = name .. ": " .. string.format(fmt, ...)
	end
	chemistry_warnings(s, label, warn)
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
	if s.prechargeRate == 0 then
		warn("%s: the precharge is skipped (the cycles start from the cell as it is)", label("prechargeRate"))
	end
	if s.chargeRate == 0 then
		warn("%s: every charge step is skipped (for primary cells); a cycle test measures only discharges",
			label("chargeRate"))
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
		trickle_warnings(s, label, warn)
	end
	if s.cellPlaylistName == "" or not s.cellPlaylistName:find("^[ %w_%-%.]+$") then
		warn("%s: a playlist name is letters, digits, space, '_', '-' and '.'; other characters are replaced in file names",
			label("cellPlaylistName"))
	end
end

return M
