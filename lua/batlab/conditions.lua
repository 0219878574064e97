-- batlab.conditions - one model of "when does this end" for steps, groups
-- of steps and whole runs (docs/characterisation.md):
--
--   local C = require "batlab.conditions"
--   local stop = C.any {
--     C.voltage_below(3.0),                  -- named "voltage"
--     C.dvdt_below(1e-4, 60, "relaxed"),     -- |dV/dt| < 0.1 mV/s over 60 s
--     C.all({ C.time(600), C.temp_rise(3) }, "hot and long"),
--   }
--   -- or the same as a plain table (an `any` of named shorthands):
--   local stop = { v_below = 3.0, time = 3600, temp_rise = 5 }
--
-- A condition is a description; C.compile(spec) makes a fresh evaluator
-- (conditions such as dV/dt or -dV keep state over the step), called at
-- each sample with the step's summary under construction:
--
--   local check = C.compile(stop)
--   local fired = check(sample, summary)   -- the fired condition's name, or nil
--
-- The summary fields used: duration, ah, wh, temp_start (batlab.steps).

local batlab = require "batlab"
local step_watch = require "batlab.step_watch"

local M = {}

local COND = {}
COND.__index = COND

-- thresholds(spec, sum) -> true: tightens a batlab.Channel watch spec so
-- that it wakes at every report the condition could fire on (see
-- batlab.step_watch); false: it needs to see every report now. nil:
-- never watchable (the user's own function). A condition whose
-- evaluators keep a history has thresholds per evaluator: make() puts
-- them in INST[evaluator].
local INST = setmetatable({}, { __mode = "k" })

local function cond(kind, name, make, thresholds)
	return setmetatable({ kind = kind, name = name or kind, make = make, thresholds = thresholds }, COND)
end

-- A fresh evaluator of c, whether c said something inside, and the
-- evaluator's thresholds (nil: not watchable).
local function instantiate(c)
	local ev, named_inside = c.make()
	return ev, named_inside, INST[ev] or c.thresholds
end

-- The thresholds of several evaluators together (a combination wakes when
-- any part could fire: for `all`, more often than needed, never too
-- late); nil when one of them has none.
local function joint(thrs)
	for _, t in ipairs(thrs) do
		if not t then
			return nil
		end
	end
	return function(spec, sum)
		for _, t in ipairs(thrs) do
			if not t(spec, sum) then
				return false
			end
		end
		return true
	end
end

-- The watch's helpers: thresholds from a difference are woken EARLY
-- (waking early is safe); lower/higher tighten a threshold.
local EARLY, lower, higher = step_watch.EARLY, step_watch.lower, step_watch.higher

local function number(v, what)
	if type(v) ~= "number" or v ~= v then
		error(("conditions.%s: a number expected, got %s"):format(what, tostring(v)), 3)
	end
	return v
end

-- ---- leaves -----------------------------------------------------------------------

function M.voltage_above(v, name)
	number(v, "voltage_above")
	return cond("voltage", name, function()
		return function(s) return s.voltage >= v end
	end, function(spec) spec.v_hi = lower(spec.v_hi, v) return true end)
end

function M.voltage_below(v, name)
	number(v, "voltage_below")
	return cond("voltage", name, function()
		return function(s) return s.voltage <= v end
	end, function(spec) spec.v_lo = higher(spec.v_lo, v) return true end)
end

-- |current| at or below `a`, once the step has run `settle` s (default 5:
-- the current ramps at the start of a step).
function M.current_below(a, name, settle)
	number(a, "current_below")
	settle = settle or 5
	return cond("current", name, function()
		return function(s, sum) return sum.duration >= settle and math.abs(s.current) <= a end
	end, function(spec, sum)
		-- duration = step time - t_offset + carry
		local after = settle + (sum.t_offset or 0) - (sum.carry and sum.carry.time or 0) - EARLY
		spec.i_lo, spec.i_after = higher(spec.i_lo, a), lower(spec.i_after, after)
		return true
	end)
end

function M.current_above(a, name)
	number(a, "current_above")
	return cond("current", name, function()
		return function(s) return math.abs(s.current) >= a end
	end, function(spec) spec.i_hi = lower(spec.i_hi, a) return true end)
end

function M.time(seconds, name)
	number(seconds, "time")
	return cond("time", name, function()
		return function(_, sum) return sum.duration >= seconds end
	end, function(spec) spec.dur_at = lower(spec.dur_at, seconds) return true end)
end

function M.ah(x, name)
	number(x, "ah")
	return cond("charge", name, function()
		return function(_, sum) return sum.ah >= x end
	end, function(spec) spec.ah_at = lower(spec.ah_at, x) return true end)
end

function M.wh(x, name)
	number(x, "wh")
	return cond("energy", name, function()
		return function(_, sum) return sum.wh >= x end
	end, function(spec) spec.wh_at = lower(spec.wh_at, x) return true end)
end

function M.temp_above(c, name)
	number(c, "temp_above")
	return cond("temperature", name, function()
		return function(s) return s.temp_c ~= nil and s.temp_c >= c end
	end, function(spec) spec.temp_at = lower(spec.temp_at, c) return true end)
end

-- The temperature has risen `k` kelvin above where the step started.
function M.temp_rise(k, name)
	number(k, "temp_rise")
	return cond("temp_rise", name, function()
		return function(s, sum)
			return s.temp_c ~= nil and sum.temp_start ~= nil and s.temp_c - sum.temp_start >= k
		end
	end, function(spec, sum)
		if sum.temp_start == nil then
			return false
		end
		spec.temp_at = lower(spec.temp_at, sum.temp_start + k - EARLY)
		return true
	end)
end

-- |dV/dt| over the last `window` seconds (default 60) has fallen below
-- `vps` V/s: a relaxation is over. Needs a full window of samples first.
-- The history is a batlab.trail (src/lua/lua_watch_trail.c): a watched
-- step's quiet reports go into it in C, and the watch wakes the step at
-- the report that brings the slope below vps.
function M.dvdt_below(vps, window, name)
	number(vps, "dvdt_below")
	window = window or 60
	return cond("dvdt", name, function()
		local trail = batlab.trail { window = window }
		local ev = function(s, sum)
			local slope = trail:push(sum.duration, s.voltage)
			return slope ~= nil and slope < vps
		end
		INST[ev] = function(spec)
			if spec.dvdt then
				return false   -- one trail per watch: a second one looks at every report
			end
			spec.dvdt, spec.dvdt_below = trail, vps
			return true
		end
		return ev
	end)
end

-- The voltage has fallen `dv` volts from the step's peak (-dV: the end of
-- a NiMH/NiCd charge). Ignores the first `settle` seconds (default 30).
-- A watched step follows the peak in C over the quiet reports (the spec's
-- mdv_peak, read back before the next report is evaluated here).
function M.minus_dv(dv, name, settle)
	number(dv, "minus_dv")
	settle = settle or 30
	return cond("minus_dv", name, function()
		local peak, given
		local ev = function(s, sum)
			if given then
				peak, given = given.mdv_peak, nil
			end
			if sum.duration < settle then
				return false
			end
			peak = math.max(peak or s.voltage, s.voltage)
			return peak - s.voltage >= dv
		end
		INST[ev] = function(spec)
			if spec.mdv_dv then
				return false   -- one -dV per watch: a second one looks at every report
			end
			if given then
				peak, given = given.mdv_peak, nil
			end
			spec.mdv_dv, spec.mdv_settle, spec.mdv_peak = dv, settle, peak
			given = spec
			return true
		end
		return ev
	end)
end

-- fn(sample, summary) -> true (or a string: the name it fired under).
function M.predicate(fn, name)
	if type(fn) ~= "function" then
		error("conditions.predicate: a function expected, got " .. type(fn), 2)
	end
	return cond("predicate", name, function()
		return fn
	end)
end

-- ---- combinations -----------------------------------------------------------------

local from_table

local function as_cond(c)
	if getmetatable(c) == COND then
		return c
	elseif type(c) == "table" then
		return from_table(c)
	elseif type(c) == "function" then
		return M.predicate(c)
	end
	error("conditions: a condition, a table of shorthands or a function expected, got " .. type(c), 3)
end

-- Any one of them: fires under the first (in order) that fires.
function M.any(list, name)
	local cs = {}
	for i, c in ipairs(list) do
		cs[i] = as_cond(c)
	end
	return cond("any", name, function()
		local evs, thrs = {}, {}
		for i, c in ipairs(cs) do
			local ev, _, thr = instantiate(c)
			evs[i], thrs[i] = { ev, c.name }, thr or false
		end
		local any = function(s, sum)
			for _, e in ipairs(evs) do
				local r = e[1](s, sum)
				if r then
					return type(r) == "string" and r or e[2]
				end
			end
			return false
		end
		INST[any] = joint(thrs)
		return any, true
	end)
end

-- All of them at the same sample: fires under its own name, or the names
-- of its parts joined by "+". Every part is evaluated at every sample (the
-- stateful ones keep their history).
function M.all(list, name)
	local cs, names = {}, {}
	for i, c in ipairs(list) do
		cs[i] = as_cond(c)
		names[i] = cs[i].name
	end
	return cond("all", name or table.concat(names, "+"), function()
		local evs, thrs = {}, {}
		for i, c in ipairs(cs) do
			local ev, _, thr = instantiate(c)
			evs[i], thrs[i] = ev, thr or false
		end
		local all = function(s, sum)
			local n = 0
			for _, ev in ipairs(evs) do
				if ev(s, sum) then
					n = n + 1
				end
			end
			return n == #evs
		end
		INST[all] = joint(thrs)
		return all
	end)
end

-- named(name, c): the same condition under another name.
function M.named(name, c)
	c = as_cond(c)
	return cond(c.kind, name, c.make, c.thresholds)
end

-- The shorthand keys of a plain table, each a condition named after its
-- key's kind (the end reasons batlab.steps uses).
local SHORT = {
	v_above = M.voltage_above, v_below = M.voltage_below, i_below = M.current_below,
	i_above = M.current_above, time = M.time, ah = M.ah, wh = M.wh, temp_above = M.temp_above,
	temp_rise = M.temp_rise, dvdt_below = M.dvdt_below, minus_dv = M.minus_dv,
}
M.SHORTHANDS = SHORT
local ORDER = { "v_above", "v_below", "i_below", "i_above", "time", "ah", "wh", "temp_above",
	"temp_rise", "dvdt_below", "minus_dv" }

function from_table(t)
	if #t > 0 then
		return M.any(t)
	end
	for k in pairs(t) do
		if not SHORT[k] then
			local keys = table.concat(ORDER, ", ")
			error(("conditions: unknown condition '%s' (one of %s)"):format(tostring(k), keys), 4)
		end
	end
	local list = {}
	for _, k in ipairs(ORDER) do
		if t[k] ~= nil then
			list[#list + 1] = SHORT[k](t[k])
		end
	end
	return M.any(list)
end

-- compile(spec) -> check(sample, summary) -> name | nil. spec: a
-- condition, a table of shorthands, a list of conditions (any), a
-- predicate function, or nil (never fires).
-- The thresholds of a compiled check (check -> function(spec, sum)), for
-- the checks whose every condition has them.
M.thresholds = setmetatable({}, { __mode = "k" })

local function never() return nil end
M.thresholds[never] = function() return true end

function M.compile(spec)
	if spec == nil then
		return never
	end
	local c = as_cond(spec)
	local ev, named_inside, thr = instantiate(c)
	local check = function(s, sum)
		local r = ev(s, sum)
		if not r then
			return nil
		end
		if type(r) == "string" and (named_inside or c.kind == "predicate") then
			return r
		end
		return c.name
	end
	M.thresholds[check] = thr
	return check
end

M.is_condition = function(c) return getmetatable(c) == COND end

return M
