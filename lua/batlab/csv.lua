-- batlab.csv - CSV fields, rows, deterministic numbers, and a parser.
--
-- Output is RFC 4180 with "\n" line ends: a field is quoted when it holds
-- a comma, a double quote, CR or LF, or starts or ends with a space; inner
-- quotes are doubled. Numbers are written with a fixed format per column,
-- so the same values always give the same bytes. The rules live in C
-- (src/host/csv.c, batlab.csv_line), shared with the time-series recorder;
-- these functions only choose the field code.

local batlab = require "batlab"

local csv_line = batlab.csv_line

local M = {}

local function is_finite(v)
	return v == v and v ~= math.huge and v ~= -math.huge
end
M.is_finite = is_finite

-- field(v) -> the CSV text of one value. nil -> "", booleans -> "true" /
-- "false", numbers -> %.10g (use num() for a column format), strings
-- quoted when needed.
-- Strings seen before: a run writes the same step and mode names on
-- every row, so their quoting is worked out once (bounded, so a run with
-- many distinct strings does not grow it without end).
local field_cache, field_cached = {}, 0

function M.field(v)
	local tv = type(v)
	if v == nil then
		return ""
	elseif tv == "number" then
		return M.num(v, "%.10g")
	elseif tv == "boolean" then
		return v and "true" or "false"
	end
	local s = tostring(v)
	local q = field_cache[s]
	if q then
		return q
	end
	q = csv_line("s", s):sub(1, -2)
	if field_cached < 1024 then
		field_cache[s] = q
		field_cached = field_cached + 1
	end
	return q
end

-- num(v, fmt) -> v formatted with fmt ("%.4f"), "" for nil, NaN and
-- infinities (no value is written as no value, never as a number that
-- looks like data), and "-0.0000"-style negative zeros written without
-- the sign. Integers with "%d" formats are accepted as floats too.
local codes = { ["%d"] = "d", ["%.10g"] = "g" }

function M.num(v, fmt)
	if type(v) ~= "number" then
		return ""
	end
	local code = codes[fmt]
	if not code then
		local n = fmt:match("^%%%.(%d+)f$")
		assert(n, "csv.num: format %.Nf, %d or %.10g expected, got " .. tostring(fmt))
		code = "f" .. n
		codes[fmt] = code
	end
	return csv_line(code, v):sub(1, -2)
end

-- trimmed(v [, decimals]) -> "%.<decimals>f" with trailing zeros removed
-- but at least one decimal digit: 0.18779, 62.522993, 60.0 (how Python
-- prints a float of microsecond resolution). decimals defaults to 6.
function M.trimmed(v, decimals)
	local s = M.num(v, "%." .. (decimals or 6) .. "f")
	if s == "" then
		return s
	end
	s = s:gsub("0+$", "")
	if s:sub(-1) == "." then
		s = s .. "0"
	end
	return s
end

-- line(fields [, n]) -> one CSV line with "\n". fields[1..n] are already
-- text (from field/num) or raw values (passed through field()); n
-- defaults to #fields and pads with empty fields.
function M.line(fields, n)
	n = n or #fields
	local out = {}
	for i = 1, n do
		local v = fields[i]
		if type(v) ~= "string" then
			v = M.field(v)
		end
		out[i] = v
	end
	return table.concat(out, ",") .. "\n"
end

-- parse(text) -> array of rows, each an array of field strings. Handles
-- quoted fields spanning lines and doubled quotes; accepts "\n" and
-- "\r\n". A trailing newline does not make an empty last row.
function M.parse(text)
	local rows, row, i, n = {}, {}, 1, #text
	local field = {}
	local function end_field()
		row[#row + 1] = table.concat(field)
		field = {}
	end
	local function end_row()
		end_field()
		rows[#rows + 1] = row
		row = {}
	end
	if n == 0 then
		return rows
	end
	while i <= n do
		local c = text:sub(i, i)
		if c == '"' and #field == 0 then
			-- A quoted field: up to the closing quote.
			i = i + 1
			while i <= n do
				local q = text:find('"', i, true)
				if not q then
					field[#field + 1] = text:sub(i)
					i = n + 1
					break
				end
				field[#field + 1] = text:sub(i, q - 1)
				if text:sub(q + 1, q + 1) == '"' then
					field[#field + 1] = '"'
					i = q + 2
				else
					i = q + 1
					break
				end
			end
		elseif c == "," then
			end_field()
			i = i + 1
		elseif c == "\n" or c == "\r" then
			end_row()
			if c == "\r" and text:sub(i + 1, i + 1) == "\n" then
				i = i + 1
			end
			i = i + 1
			if i > n then
				return rows
			end
		else
			local j = text:find('[,\r\n]', i) or n + 1
			field[#field + 1] = text:sub(i, j - 1)
			i = j
		end
	end
	end_row()
	return rows
end

return M
