-- batlab.settings_json - the JSON text of a settings file (docs/settings.md):
-- its size, NUL bytes, keys given twice in one object, and JSON errors as
-- FILE:LINE. batlab.settings reads the values.

local cjson = require("cjson.safe").new()
cjson.decode_invalid_numbers(false)  -- NaN, Infinity, hex: not JSON

local M = {}

-- A settings file is a few kilobytes; more is not a settings file.
M.MAX_BYTES = 1024 * 1024

function M.too_big(name, size)
	return string.format("%s: the file is %d bytes: a settings file is at most %d bytes (1 MB)",
		name, size, M.MAX_BYTES)
end

-- line_col(text, pos) -> line, column of byte pos.
local function line_col(text, pos)
	local line, last_nl = 1, 0
	for nl in text:sub(1, pos - 1):gmatch("()\n") do
		line = line + 1
		last_nl = nl
	end
	return line, pos - last_nl
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
	local line, col = line_col(text, pos)
	return string.format("%s:%d: invalid JSON: %s (column %d)", name, line, msg, col)
end

--------------------------------------------------------------------------
-- Keys given twice. cjson keeps the last of two equal keys; the file's
-- author meant one of them, so it is an error. The text is valid JSON
-- here (cjson read it).

-- The end of the string starting at the quote at i.
local function string_end(text, i)
	local j = i + 1
	while true do
		local q = text:find('["\\]', j)
		if not q or text:byte(q) == 34 then
			return q or #text
		end
		j = q + 2
	end
end

-- duplicate(text) -> key, pos, first_pos of the first key given twice in
-- one object, or nil.
local function duplicate(text)
	local stack, i, n = {}, 1, #text
	while i <= n do
		local c = text:byte(i)
		local top = stack[#stack]
		if c == 34 then
			local q = string_end(text, i)
			if top and top.keys and top.expect_key then
				local raw = text:sub(i, q)
				local key = cjson.decode(raw) or raw
				if top.keys[key] then
					return key, i, top.keys[key]
				end
				top.keys[key] = i
				top.expect_key = false
			end
			i = q
		elseif c == 123 then
			stack[#stack + 1] = { keys = {}, expect_key = true }
		elseif c == 91 then
			stack[#stack + 1] = {}
		elseif c == 125 or c == 93 then
			stack[#stack] = nil
		elseif c == 44 and top and top.keys then
			top.expect_key = true
		end
		i = i + 1
	end
	return nil
end

--------------------------------------------------------------------------
-- decode(text, name) -> the top-level object of a settings text | nil, err.
function M.decode(text, name)
	if type(text) ~= "string" then
		return nil, name .. ": settings text must be a string"
	end
	if #text > M.MAX_BYTES then
		return nil, M.too_big(name, #text)
	end
	local nul = text:find("\0", 1, true)
	if nul then
		local line, col = line_col(text, nul)
		return nil, string.format("%s:%d: a NUL byte (column %d): a settings file is text, and nothing after a NUL may be skipped",
			name, line, col)
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
	local key, pos, first = duplicate(text)
	if key then
		return nil, string.format("%s:%d: key '%s' is given twice in one object (first on line %d)",
			name, (line_col(text, pos)), key, (line_col(text, first)))
	end
	local bs = root.batlabSettings
	if bs ~= nil and (type(bs) ~= "table" or bs[1] ~= nil) then
		return nil, name .. ": key 'batlabSettings' must be an object ({...})"
	end
	return root
end

return M
