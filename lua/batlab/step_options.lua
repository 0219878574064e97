-- batlab.step_options - the options each step of batlab.steps takes, and
-- the check that an option a step does not know (a typo such as untl_v,
-- which would otherwise be ignored and let the step run to the device's
-- own limit) or a value of the wrong type raises at the call, before
-- anything starts:
--
--   unknown option 'untl_v' to steps.discharge (did you mean until_v?);
--   steps.discharge takes: current, cv_approach, guard, ...

local suggest = require "batlab.suggest"

local M = {}

local NUM, FUN, STR, BOOL = "number", "function", "string", "boolean"
local SUB = {
	trickle = { engage_v = NUM, current = NUM },
	pulse = { on = NUM, off = NUM, off_current = NUM },
	cv_approach = { v = NUM, step = NUM, sensitivity = NUM, z = NUM },
	cv = { v = NUM, until_i = NUM, max_time = NUM },
	record = { every = NUM, dv = NUM, di = NUM },
}
local function schema(...)
	local out = {}
	for _, t in ipairs({ ... }) do
		for k, v in pairs(t) do
			out[k] = v
		end
	end
	return out
end
local COMMON = { name = STR, guard = FUN, on_sample = FUN, report_timeout = NUM, silence_grace = NUM,
	allow_bad_thermistor = BOOL, resumable = BOOL, record = SUB.record, tail = NUM, capture = "userdata" }
local CC = { current = NUM, until_v = NUM, until_i = NUM, settle = NUM, max_time = NUM,
	max_ah = NUM, max_wh = NUM, max_temp_c = NUM, ["until"] = FUN, impedance_every = NUM,
	on_impedance = FUN, trickle = SUB.trickle, pulse = SUB.pulse, cv_approach = SUB.cv_approach }
local OPTIONS = {
	charge = schema(COMMON, CC, { cv = SUB.cv }),
	discharge = schema(COMMON, CC),
	rest = COMMON,
	cv_hold = schema(COMMON, { v = NUM, until_i = NUM, max_time = NUM, current = NUM }),
}
M.OPTIONS = OPTIONS

local function names_of(sch)
	local list = {}
	for k in pairs(sch) do
		list[#list + 1] = k
	end
	table.sort(list)
	return list
end

local function unknown(fn, key, sch, within)
	local best = type(key) == "string" and suggest.closest(key, names_of(sch)) or nil
	local shown = type(key) == "string" and ("'" .. key .. "'") or ("[" .. tostring(key) .. "]")
	return ("unknown option %s %sto steps.%s%s; %s takes: %s"):format(shown,
		within and ("in " .. within .. " ") or "", fn, best and (" (did you mean " .. best .. "?)") or "",
		within or ("steps." .. fn), table.concat(names_of(sch), ", "))
end

-- The first thing wrong with opts, or nil.
local function bad_options(fn, opts, sch, within)
	if type(opts) ~= "table" then
		return ("%s to steps.%s must be a table, got %s"):format(within or "options", fn, type(opts))
	end
	for k, v in pairs(opts) do
		local want = sch[k]
		local what = within and (within .. "." .. tostring(k)) or tostring(k)
		if want == nil then
			return unknown(fn, k, sch, within)
		elseif type(want) == "table" then
			local err = bad_options(fn, v, want, what)
			if err then
				return err
			end
		elseif type(v) ~= want then
			return ("option %s to steps.%s must be a %s, got %s"):format(what, fn, want, type(v))
		end
	end
	local tail = not within and opts.tail
	if tail and (tail < 1 or tail > 1e6 or tail ~= math.floor(tail)) then
		return ("option tail to steps.%s must be a whole number of reports from 1 to 1e6, got %s")
			:format(fn, tostring(tail))
	end
	return nil
end

-- check(fn, opts [, level]): raise, at the caller of steps.<fn> (level 3
-- from here by default: the caller of the function that calls check), on
-- an unknown option (with the names allowed and the nearest) or a value
-- of the wrong type, nested tables included.
function M.check(fn, opts, level)
	local err = bad_options(fn, opts, OPTIONS[fn])
	if err then
		error(err, level or 3)
	end
end

M.bad = bad_options

return M
