-- batlab.show - values as the shell's prompt prints them: what a line
-- returns is shown as text a person reads, not `table: 0x...`. A sample
-- (what ch:wait() returns) is one line in its units, like `batlab measure`;
-- a packet is its own display line; other tables are written out as Lua
-- constructors, nested ones inline, cycles and depth cut short.
local M = {}

local MAX_DEPTH = 3     -- tables deeper than this show as {...}
local MAX_ITEMS = 40    -- entries shown per table before "..."
local WIDE = 78         -- a top-level table longer than this gets a line per entry

-- A sample as the channel layer makes it (docs/lua-api.md, Samples).
function M.is_sample(v)
	return type(v) == "table" and getmetatable(v) == nil and type(v.voltage) == "number"
		and type(v.current) == "number" and type(v.mode) == "number"
		and type(v.cell) == "number" and type(v.time) == "number"
end

local function num(fmt, v, unit)
	return type(v) == "number" and (fmt .. " %s"):format(v, unit) or ("-- " .. unit)
end

-- "1000 CELL0 at 4.002 s: 3.7149 V, -0.9986 A, 25.1 degC, -0.000325 Ah,
-- -0.000977 Wh, DISCHARGE (step 0.948 s, VCC 5.000 V)", with the ERROR
-- bits by name when any is set.
function M.sample(s)
	local parts = {
		num("%.4f", s.voltage, "V"),
		(s.current ~= 0 and "%+.4f A" or "%.4f A"):format(s.current),
		num("%.1f", s.temp_c, "degC"),
		num("%.6f", s.charge_ah, "Ah"),
		num("%.6f", s.energy_wh, "Wh"),
		s.mode_name or ("MODE " .. s.mode),
	}
	if type(s.error) == "number" and s.error ~= 0 then
		local names = type(s.error_names) == "table" and table.concat(s.error_names, ",") or ""
		parts[#parts + 1] = "ERROR " .. (names ~= "" and names or ("0x%04X"):format(s.error))
	end
	local extra = {}
	if type(s.step_time) == "number" then
		extra[#extra + 1] = ("step %.3f s"):format(s.step_time)
	end
	if type(s.vcc) == "number" then
		extra[#extra + 1] = ("VCC %.3f V"):format(s.vcc)
	end
	return ("%sCELL%d at %.3f s: %s%s"):format(s.serial and (tostring(s.serial) .. " ") or "", s.cell,
		s.time, table.concat(parts, ", "), #extra > 0 and (" (" .. table.concat(extra, ", ") .. ")") or "")
end

local function has_tostring(v)
	local mt = getmetatable(v)
	return type(mt) == "table" and mt.__tostring ~= nil
end

local show

-- Keys in a stable order: the array part first, then the rest sorted
-- (numbers before strings, each in its own order).
local function keys_of(t)
	local n, rest = #t, {}
	for k in pairs(t) do
		if not (math.type(k) == "integer" and k >= 1 and k <= n) then
			rest[#rest + 1] = k
		end
	end
	table.sort(rest, function(a, b)
		local ta, tb = type(a), type(b)
		if ta ~= tb then
			return ta < tb
		end
		if ta == "number" or ta == "string" then
			return a < b
		end
		return tostring(a) < tostring(b)
	end)
	return n, rest
end

local function key_text(k, depth, seen)
	if type(k) == "string" and k:match("^[%a_][%w_]*$") then
		return k
	end
	return "[" .. show(k, depth, seen) .. "]"
end

local function entries(t, depth, seen)
	local n, rest = keys_of(t)
	local items = {}
	for i = 1, n do
		items[#items + 1] = show(t[i], depth + 1, seen)
	end
	for _, k in ipairs(rest) do
		items[#items + 1] = key_text(k, depth + 1, seen) .. " = " .. show(t[k], depth + 1, seen)
	end
	if #items > MAX_ITEMS then
		local more = #items - MAX_ITEMS
		for i = #items, MAX_ITEMS + 1, -1 do
			items[i] = nil
		end
		items[#items + 1] = ("... (%d more)"):format(more)
	end
	return items
end

-- show(v, depth, seen) -> v as text
function show(v, depth, seen)
	local ty = type(v)
	if ty == "string" then
		return depth == 0 and v or ("%q"):format(v)
	elseif has_tostring(v) then
		-- a packet, a device: its own line, bracketed inside a table
		return depth == 0 and tostring(v) or ("<" .. tostring(v) .. ">")
	elseif ty ~= "table" then
		return tostring(v)
	elseif M.is_sample(v) then
		return depth == 0 and M.sample(v) or ("<" .. M.sample(v) .. ">")
	elseif seen[v] then
		return "<cycle>"
	elseif depth >= MAX_DEPTH then
		return "{...}"
	end
	seen[v] = true
	local items = entries(v, depth, seen)
	seen[v] = nil
	if #items == 0 then
		return "{}"
	end
	local line = "{ " .. table.concat(items, ", ") .. " }"
	if depth > 0 or #line <= WIDE then
		return line
	end
	return "{\n  " .. table.concat(items, ",\n  ") .. ",\n}"
end

-- value(v) -> the text the prompt prints for one value
function M.value(v)
	return show(v, 0, {})
end

-- values(...) -> each value's text, in order (as many as given)
function M.values(...)
	local out = table.pack(...)
	for i = 1, out.n do
		out[i] = M.value(out[i])
	end
	return table.unpack(out, 1, out.n)
end

return M
