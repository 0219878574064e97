-- batlab.experiment - the experiment strings PyBaMM users write, run as
-- batlab steps (docs/characterisation.md, "Experiments"):
--
--   local experiment = require "batlab.experiment"
--   experiment.run(cell, {
--     "Discharge at 1C until 3.0 V",
--     "Rest for 1 hour",
--     { "Charge at 0.5 A until 4.2 V", "Hold at 4.2 V until C/20", times = 3 },
--   }, { capacity_ah = 2.5 })
--
-- Steps: "Discharge|Charge at VALUE [for DURATION] [or] [until LIMIT]"
-- (VALUE: a C-rate 1C, C/2, 0.5C; A or mA; W or mW; Ohm), "Rest for
-- DURATION", "Hold at V until LIMIT|for DURATION". LIMIT: V or mV, A or
-- mA, a C-rate. DURATION: seconds, minutes, hours, days (s, min, h).
-- A string may end in "* N" (repeat it); a table { ..., times = N }
-- repeats its steps (each repeat labelled as a cycle).
-- parse(text) reads an experiment file: one step a line, or PyBaMM's
-- tuples ("Discharge at 1C until 3 V", "Rest for 1 hour") * 3.

local steps = require "batlab.steps"
local more = require "batlab.steps_more"

local M = {}

local UNITS = {
	a = { "current", 1 }, ma = { "current", 1e-3 }, w = { "power", 1 }, mw = { "power", 1e-3 },
	ohm = { "resistance", 1 }, ohms = { "resistance", 1 }, ["\206\169"] = { "resistance", 1 },
	mohm = { "resistance", 1e-3 }, v = { "voltage", 1 }, mv = { "voltage", 1e-3 },
}
local TIME = {
	s = 1, sec = 1, secs = 1, second = 1, seconds = 1, min = 60, mins = 60, minute = 60, minutes = 60,
	h = 3600, hr = 3600, hrs = 3600, hour = 3600, hours = 3600, day = 86400, days = 86400,
}

local function bad(str, word, why)
	-- the word as the user wrote it (it was matched in lower case)
	local i = str:lower():find(word, 1, true)
	word = i and str:sub(i, i + #word - 1) or word
	error(("experiment: '%s': %s '%s'"):format(str, why or "could not parse", word), 0)
end

-- A value with its unit: kind ("crate", "current", "power", "resistance",
-- "voltage"), number.
local function value(str, text)
	local t = text:lower():gsub("%s+", "")
	local d = t:match("^c/([%d.]+)$")
	if d and tonumber(d) and tonumber(d) > 0 then
		return "crate", 1 / tonumber(d)
	end
	local n, u = t:match("^([%d.]+)(.*)$")
	n = tonumber(n)
	if n and u == "c" then
		return "crate", n
	end
	if n and UNITS[u] then
		return UNITS[u][1], n * UNITS[u][2]
	end
	bad(str, text)
end

local function duration(str, text)
	local n, u = text:lower():match("^%s*([%d.]+)%s*(%a+)%s*$")
	if tonumber(n) and TIME[u] then
		return tonumber(n) * TIME[u]
	end
	bad(str, text)
end

-- The amps of a C-rate or current, given the options' capacity.
local function amps(str, kind, n, opts, text)
	if kind == "crate" then
		if type(opts.capacity_ah) ~= "number" then
			bad(str, text, "a C-rate needs capacity_ah (the options) for")
		end
		return n * opts.capacity_ah
	end
	return n
end

-- parse_step(str, opts) -> a step description { op, ... }.
function M.parse_step(str, opts)
	opts = opts or {}
	local s = str:gsub("^%s+", ""):gsub("%s+$", "")
	local low = s:lower()
	local d = low:match("^rest for (.+)$")
	if d then
		return { op = "rest", seconds = duration(str, d), text = str }
	end
	local verb, rest = low:match("^(%a+) at (.+)$")
	if not verb or (verb ~= "charge" and verb ~= "discharge" and verb ~= "hold") then
		bad(str, low:match("^(%S+)") or s, "expected Charge, Discharge, Hold or Rest, got")
	end
	-- "at VALUE [for DURATION] [or] [until LIMIT]"
	local val, tail = rest:match("^(.-)%s+(for%s.+)$")
	if not val then
		val, tail = rest:match("^(.-)%s+(until%s.+)$")
	end
	val, tail = val or rest, tail or ""
	local step = { op = verb, text = str }
	step.kind, step.value = value(str, val)
	local f, u = tail:match("^for%s+(.-)%s+or%s+until%s+(.+)$")
	if not f then
		f = tail:match("^for%s+(.+)$")
		u = tail:match("^until%s+(.+)$")
	end
	if tail ~= "" and not f and not u then
		bad(str, tail)
	end
	step.max_time = f and duration(str, f)
	if u then
		local k, n = value(str, u)
		if k == "voltage" then
			step.until_v = n
		elseif k == "current" or k == "crate" then
			step.until_i = amps(str, k, n, opts, u)
		else
			bad(str, u, "a limit is V, A or a C-rate, not")
		end
	end
	if verb == "hold" and step.kind ~= "voltage" then
		bad(str, val, "Hold takes a voltage, not")
	elseif verb ~= "hold" and step.kind == "voltage" then
		bad(str, val, "Charge and Discharge take a current, C-rate, power or resistance, not")
	end
	if step.kind == "crate" and type(opts.capacity_ah) ~= "number" then
		bad(str, val, "a C-rate needs capacity_ah (the options) for")
	end
	if not step.max_time and not step.until_v and not step.until_i then
		bad(str, s, "no end (for DURATION or until LIMIT) in")
	end
	return step
end

-- The step's conditions.
local function stop_of(st, sign)
	local c = {}
	if st.until_v then
		c[sign > 0 and "v_above" or "v_below"] = st.until_v
	end
	if st.until_i then
		c.i_below = st.until_i
	end
	if st.max_time then
		c.time = st.max_time
	end
	return c
end

-- Run one parsed step; `prev` is the summary before (a hold after a
-- charge that reached its voltage continues it, as steps.charge's cv).
local function run_step(cell, st, opts, prev, prev_st)
	local name = st.text
	if st.op == "rest" then
		return more.rest(cell, st.seconds, { name = name })
	elseif st.op == "hold" then
		if prev and prev.kind == "charge" and prev.end_reason == "voltage" and prev_st and prev_st.amps then
			return steps.cv_hold(cell, { v = st.value, until_i = st.until_i or 0.05, max_time = st.max_time,
				current = prev_st.amps, name = name })
		end
		return more.cccv(cell, { current = opts.hold_current or (opts.capacity_ah or 2) / 2, v = st.value,
			until_i = st.until_i or 0.05, max_time = st.max_time, name = name })
	end
	local sign = st.op == "charge" and 1 or -1
	local stop = stop_of(st, sign)
	local dir = st.op
	if st.kind == "power" then
		return more.power(cell, { watts = st.value, direction = dir, stop = stop, name = name })
	elseif st.kind == "resistance" then
		return more.resistance(cell, { ohms = st.value, direction = dir, stop = stop, name = name })
	end
	st.amps = amps(st.text, st.kind, st.value, opts, tostring(st.value) .. "C")
	return more[dir](cell, { current = st.amps, stop = stop, name = name })
end

-- The list flattened into parsed steps with their repeats, checked
-- before anything runs: { step | { list, times } }.
local function compile(list, opts, out)
	out = out or {}
	for _, item in ipairs(list) do
		if type(item) == "table" then
			out[#out + 1] = { block = compile(item, opts), times = item.times or 1 }
		elseif type(item) == "string" then
			local body, n = item:match("^(.-)%s*%*%s*(%d+)%s*$")
			local st = M.parse_step(body or item, opts)
			out[#out + 1] = n and { block = { st }, times = tonumber(n) } or st
		else
			error("experiment: a step is a string or a table of them, got " .. type(item), 0)
		end
	end
	return out
end

local function execute(cell, prog, opts, acc)
	for _, item in ipairs(prog) do
		if item.block then
			for k = 1, item.times do
				if item.times > 1 then
					acc.cycle = acc.cycle + 1
					cell:label{ cycle = acc.cycle }
				end
				if not execute(cell, item.block, opts, acc) then
					return false
				end
			end
		else
			local sum = run_step(cell, item, opts, acc[#acc], acc.prev)
			acc[#acc + 1], acc.prev = sum, item
			if not steps.ok(sum) then
				return false
			end
		end
	end
	return true
end

-- run(cell, list, opts) -> summaries, ok: the steps in order; stops at the
-- first step that did not end normally. opts: capacity_ah (for C-rates),
-- hold_current (a Hold that does not follow a charge starts at it).
-- Every string is parsed before the first step runs.
function M.run(cell, list, opts)
	opts = opts or {}
	if type(list) ~= "table" then
		error("experiment: a list of step strings expected, got " .. type(list), 2)
	end
	local prog = compile(list, opts)
	local acc = { cycle = 0 }
	local ok = execute(cell, prog, opts, acc)
	acc.cycle, acc.prev = nil, nil
	return acc, ok
end

-- check(list [, opts]) -> true | nil, message: every string parses (a
-- C-rate without a capacity is taken as valid: the capacity may come
-- later, from a parameter).
function M.check(list, opts)
	local o = { capacity_ah = (opts and opts.capacity_ah) or 1 }
	local ok, err = pcall(compile, list, o)
	if not ok then
		return nil, err
	end
	return true
end

-- parse(text, where) -> list: an experiment file. Blank lines and #
-- comments skipped; a line is a step ("Rest for 1 hour", quoted or not,
-- with a trailing comma or not), or a tuple ( "...", "..." ) * N that may
-- span lines.
function M.parse(text, where)
	local list, lines = {}, {}
	for line in (text .. "\n"):gmatch("([^\n]*)\n") do
		lines[#lines + 1] = line:gsub("#.*$", ""):gsub("^%s+", ""):gsub("[%s,]+$", "")
	end
	local k = 1
	while k <= #lines do
		local line = lines[k]
		if line:sub(1, 1) == "(" then
			local buf, start = line, k
			while not buf:find("%)%s*[%*%d%s]*$") and k < #lines do
				k = k + 1
				buf = buf .. " " .. lines[k]
			end
			local inner, n = buf:match("^%((.*)%)%s*%*?%s*(%d*)$")
			if not inner then
				error(("%s:%d: a tuple ( \"...\", ... ) * N expected"):format(where or "experiment", start), 0)
			end
			local group = { times = tonumber(n) or 1 }
			for q in inner:gmatch("[\"']([^\"']+)[\"']") do
				group[#group + 1] = q
			end
			list[#list + 1] = group
		elseif line ~= "" then
			local q, n = line:match("^[\"'](.-)[\"']%s*%*%s*(%d+)$")
			list[#list + 1] = q and (q .. " * " .. n) or line:match("^[\"'](.*)[\"']$") or line
		end
		k = k + 1
	end
	return list
end

return M
