-- batlab.json - JSON text that is the same bytes for the same data.
--
-- lua-cjson writes every string, number and null; this module only decides
-- the order of object keys (sorted) and the layout (2-space indent, one
-- value per line, a final newline). cjson's own table encoding follows the
-- table's hash order, which Lua 5.4 seeds per process, so two identical
-- runs could write their files differently.
--
-- Numbers (docs/results.md): integers as integers, other floats with 10
-- significant digits, integral floats as "N.0" so a reader still sees a
-- float, NaN and infinities as null. Empty tables are [] unless made with
-- json.object(). Strings that are not UTF-8 are read as Latin-1, so the
-- text is always valid JSON.
--
--   local json = require "batlab.json"
--   io.write(json.encode({ b = 1, a = { 2.5, json.null }, c = json.object() }))

local cjson = require "cjson"

local M = {}

-- Instances of their own: the settings below would otherwise change
-- cjson for every other user in the process.
-- 14 digits (cjson's most) keep integers and whole numbers exact.
local exact = cjson.new()
exact.encode_number_precision(14)
-- 10 digits for measurements; NaN and infinities become null.
local approx = cjson.new()
approx.encode_number_precision(10)
approx.encode_invalid_numbers("null")

local NULL = setmetatable({}, { __name = "batlab.results.null", __tostring = function() return "null" end })
M.null = NULL

local OBJECT_MT = { __jsontype = "object" }

-- object([t]) -> t, marked to be written as an object even when empty.
function M.object(t)
	return setmetatable(t or {}, OBJECT_MT)
end

local function string_text(s)
	if not utf8.len(s) then
		-- Not UTF-8: read the bytes as Latin-1 so the output is valid JSON.
		s = s:gsub("[\128-\255]", function(c)
			return utf8.char(c:byte())
		end)
	end
	-- cjson escapes "/" as "\/"; both are JSON, and paths read better
	-- without. Every "/" in cjson's output has that backslash before it.
	return (exact.encode(s):gsub("\\/", "/"))
end

local function number_text(v)
	if math.type(v) == "integer" then
		return exact.encode(v)
	end
	if v == math.floor(v) and math.abs(v) < 1e14 then
		return exact.encode(v) .. ".0"
	end
	return approx.encode(v)
end

local function is_array(t)
	local n = #t
	if getmetatable(t) == OBJECT_MT then
		return false
	end
	if n == 0 then
		return next(t) == nil
	end
	local count = 0
	for _ in pairs(t) do
		count = count + 1
	end
	return count == n
end

local encode

local function encode_array(v, out, depth)
	if #v == 0 then
		out[#out + 1] = "[]"
		return
	end
	local pad = "\n" .. string.rep("  ", depth + 1)
	out[#out + 1] = "["
	for i = 1, #v do
		out[#out + 1] = (i > 1 and "," or "") .. pad
		encode(v[i], out, depth + 1)
	end
	out[#out + 1] = "\n" .. string.rep("  ", depth) .. "]"
end

local function encode_object(v, out, depth)
	local keys = {}
	for k in pairs(v) do
		keys[#keys + 1] = tostring(k)
	end
	table.sort(keys)
	if #keys == 0 then
		out[#out + 1] = "{}"
		return
	end
	local pad = "\n" .. string.rep("  ", depth + 1)
	out[#out + 1] = "{"
	for i, k in ipairs(keys) do
		local val = v[k]
		if val == nil then
			val = v[tonumber(k)]
		end
		out[#out + 1] = (i > 1 and "," or "") .. pad .. string_text(k) .. ": "
		encode(val, out, depth + 1)
	end
	out[#out + 1] = "\n" .. string.rep("  ", depth) .. "}"
end

-- Text encoded before (encode_at), kept as it is.
local RAW_MT = {}

encode = function(v, out, depth)
	local tv = type(v)
	if tv == "table" and getmetatable(v) == RAW_MT then
		out[#out + 1] = v[1]
	elseif tv == "boolean" then
		out[#out + 1] = exact.encode(v)
	elseif tv == "number" then
		out[#out + 1] = number_text(v)
	elseif tv == "string" then
		out[#out + 1] = string_text(v)
	elseif tv == "table" and v ~= NULL then
		if depth > 64 then
			error("json.encode: nested too deeply (a cycle?)", 0)
		end
		if is_array(v) then
			encode_array(v, out, depth)
		else
			encode_object(v, out, depth)
		end
	else
		-- nil, json.null, functions, userdata (cjson.null included): no
		-- data to keep.
		out[#out + 1] = exact.encode(exact.null)
	end
end

-- encode_at(v, depth) -> the text of v as encode writes it at that depth
-- of nesting (no final newline), and raw(text) -> a value encode writes
-- as that text: a document rewritten often (summary.json, one cell at a
-- time) encodes each part once.
function M.encode_at(v, depth)
	local out = {}
	encode(v, out, depth)
	return table.concat(out)
end

function M.raw(text)
	return setmetatable({ text }, RAW_MT)
end

-- encode(v) -> text (with a final newline).
function M.encode(v)
	local out = {}
	encode(v, out, 0)
	return table.concat(out) .. "\n"
end

return M
