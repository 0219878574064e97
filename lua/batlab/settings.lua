-- batlab.settings - Lexcelon test settings ("cell playlist") files.
--
-- Reads both formats (docs/settings.md): the Python library's flat object
-- and the GUI's playlist with its nested `batlabSettings` object and renamed
-- keys. The result is one table with the canonical (Python) key names and
-- values in engineering units, every value checked:
--
--   * wrong type, malformed, or outside what the Batlab can do safely
--     (the device's limits): an error naming the file, the key, the value and the
--     allowed range - nothing starts;
--   * unusual for the declared chemistry, unknown keys, suspicious
--     combinations: warnings (strings), for the run's metadata.
--
-- docs/settings.md lists every key, alias, unit, default and range. The
-- key table is batlab.settings_keys, the checks batlab.settings_check;
-- this module reads files and --set overrides, and shows the result.
--
--   local settings = require "batlab.settings"
--   local s, warnings, info = settings.load("default.json", { "restPeriod=10" })
--   if not s then error(warnings) end     -- warnings is the error text here

local cjson = require("cjson.safe").new()

local batlab = require "batlab"
local check = require "batlab.settings_check"
local keys = require "batlab.settings_keys"
local sjson = require "batlab.settings_json"
local suggest = require "batlab.suggest"

local M = {}

M.CHEMISTRIES, M.KEYS, M.canonical = keys.CHEMISTRIES, keys.KEYS, keys.canonical
M.format_range = check.format_range

local KEYS, fmt_value = keys.KEYS, check.fmt_value

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

-- One key of the file into r.raw (a key given twice must say the same).
local function take(r, k, v, prefix)
	local as = prefix .. k
	local spec = keys.spec(k)
	if not spec then
		r.unknown[#r.unknown + 1] = as
		return
	end
	local prev = r.raw[spec.key]
	if prev ~= nil then
		local same = prev.value == v
		if not same and type(v) == "table" and type(prev.value) == "table" then
			same = cjson.encode(v) == cjson.encode(prev.value)
		end
		if not same then
			r.errors[#r.errors + 1] = string.format("%s: key '%s' is given twice with different values ('%s' = %s and '%s' = %s)",
				r.name, spec.key, prev.as, fmt_value(prev.value), as, fmt_value(v))
		end
		return
	end
	r.raw[spec.key] = { value = v, as = as }
end

-- Every key of the file (the top level, then batlabSettings) into r.raw;
-- unknown keys and a GUI file's missing keys are warnings.
local function collect(r, root)
	local bs = root.batlabSettings
	if bs ~= nil then
		r.info.format = "gui"
	end
	for _, k in ipairs(sorted_keys(root)) do
		if k ~= "batlabSettings" then
			take(r, k, root[k], "")
		end
	end
	for _, k in ipairs(bs and sorted_keys(bs) or {}) do
		take(r, k, bs[k], "batlabSettings.")
	end
	if #r.unknown > 0 then
		local quoted = {}
		for i, k in ipairs(r.unknown) do
			quoted[i] = "'" .. k .. "'"
		end
		r.warnings[#r.warnings + 1] = string.format("%s: unknown key%s ignored: %s", r.name,
			#r.unknown > 1 and "s" or "", table.concat(quoted, ", "))
	end
	if r.info.format == "gui" then
		local missing = {}
		for _, k in ipairs(keys.GUI_REQUIRED) do
			if r.raw[k] == nil then
				missing[#missing + 1] = k
			end
		end
		if #missing > 0 then
			local note = string.format("%s: GUI playlist without %s: default%s used", r.name,
				table.concat(missing, ", "), #missing > 1 and "s" or "")
			r.info.notes[#r.info.notes + 1] = note
			r.warnings[#r.warnings + 1] = note
		end
	end
end

-- --set overrides replace file values (no conflict) | nil, err.
local function apply_overrides(r, overrides)
	local olist, oerr = override_list(overrides)
	if not olist then
		return nil, r.name .. ": " .. oerr
	end
	for _, o in ipairs(olist) do
		local ck = keys.canonical(o.name)
		if not ck then
			local names = {}
			for _, spec in ipairs(KEYS) do
				names[#names + 1] = spec.key
			end
			r.errors[#r.errors + 1] = string.format("%s: --set: unknown key '%s'%s", r.name, o.name,
				suggest.hint(o.name, names))
		else
			r.raw[ck] = { value = o.value, as = o.name, set = true }
			r.from_text[ck] = o.from_text
		end
	end
	return true
end

-- Every given value converted and checked: the settings so far.
local function convert_all(r)
	local s, info = {}, r.info
	for _, spec in ipairs(KEYS) do
		local g = r.raw[spec.key]
		if g ~= nil then
			local v, why, note = check.convert(spec, g.value, r.from_text[spec.key])
			if note then
				r.warnings[#r.warnings + 1] = r.name .. ": " .. note
			end
			if v == nil then
				r.errors[#r.errors + 1] = string.format("%s: key %s = %s%s %s", r.name,
					check.key_label(spec, g.as), fmt_value(g.value), g.set and " (--set)" or "", why)
			else
				s[spec.key] = v
				info.given[spec.key] = g.set and "--set" or "file"
				info.as[spec.key] = g.as
			end
		end
	end
	return s
end

-- Defaults, in table order (chemistry first, cutoffs before what depends
-- on them).
local function fill_defaults(s, info)
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
end

-- parse(json_text, name [, overrides]) -> s, warnings, info | nil, err
--
-- info = { file = name, format = "python" | "gui", given = {key = "file" |
-- "--set"}, as = {key = the name as written}, notes = {...} }.
-- err holds one line per problem, each "NAME: ..." (or "NAME:LINE: ..."
-- for malformed JSON).
function M.parse(text, name, overrides)
	name = name or "settings"
	local root, err = sjson.decode(text, name)
	if not root then
		return nil, err
	end
	local info = { file = name, format = "python", given = {}, as = {}, notes = {} }
	-- raw: key -> { value as found, as = the name it had, set = from --set }
	local r = { name = name, info = info, raw = {}, unknown = {}, from_text = {}, errors = {}, warnings = {} }
	collect(r, root)
	local ok, oerr = apply_overrides(r, overrides)
	if not ok then
		return nil, oerr
	end
	local s = convert_all(r)
	if #r.errors > 0 then
		return nil, table.concat(r.errors, "\n")
	end
	fill_defaults(s, info)
	local errors = check.bounds(s, info, name)
	if #errors > 0 then
		return nil, table.concat(errors, "\n")
	end
	check.warnings(s, info, name, r.warnings)
	return s, r.warnings, info
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
		local size = f:seek("end")
		if size and size > sjson.MAX_BYTES then
			f:close()
			return nil, sjson.too_big(name, size)
		end
		f:seek("set")
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
-- non-empty strings of printable text, at most 64 characters, each given
-- once.
function M.cell_names(s, from_cli)
	local list = (type(from_cli) == "table" and #from_cli > 0) and from_cli or (s and s.cellNames) or {}
	local out, seen = {}, {}
	for i, n in ipairs(list) do
		if type(n) ~= "string" or n == "" then
			return nil, string.format("cell name %d must be a non-empty string", i)
		end
		local why = check.name_problem(n)
		if why then
			return nil, string.format("cell name %s %s", check.show_name(n), why)
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
	-- batlab.to_raw: the project's encoding (nearest count), not the seed's
	-- batlab.Encoder (truncation)
	local function raw(reg, v)
		return batlab.to_raw(0, reg, v, R, B)
	end
	R, B = R or 1500, B or 3380
	return {
		VOLTAGE_LIMIT_CHG = raw("VOLTAGE_LIMIT_CHG", s.highVoltageCutoff),
		VOLTAGE_LIMIT_DCHG = raw("VOLTAGE_LIMIT_DCHG", s.lowVoltageCutoff),
		CURRENT_LIMIT_CHG = raw("CURRENT_LIMIT_CHG", s.chargeCurrentSafetyCutoff),
		CURRENT_LIMIT_DCHG = raw("CURRENT_LIMIT_DCHG", s.dischargeCurrentSafetyCutoff),
		TEMP_LIMIT_CHG = raw("TEMP_LIMIT_CHG", s.chargeTemperatureCutoff),
		TEMP_LIMIT_DCHG = raw("TEMP_LIMIT_DCHG", s.dischargeTemperatureCutoff),
	}
end

-- The order to write them in (names of the table above).
M.LIMIT_REGISTERS = {
	"VOLTAGE_LIMIT_CHG", "VOLTAGE_LIMIT_DCHG", "CURRENT_LIMIT_CHG",
	"CURRENT_LIMIT_DCHG", "TEMP_LIMIT_CHG", "TEMP_LIMIT_DCHG",
}

-- sine_register_values(s) -> { SINE_FREQ = raw, SINE_MAGDIV = code } (UNIT).
function M.sine_register_values(s)
	return {
		SINE_FREQ = batlab.to_raw(batlab.UNIT, batlab.SINE_FREQ, s.sineWaveFrequency),
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
			shown = check.with_unit(v, spec)
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
