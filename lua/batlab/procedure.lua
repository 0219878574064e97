-- batlab.procedure - a procedure for `batlab run` (or a stock test's
-- script) and its parameters: load(mode, opts) finds and loads the
-- script, params(opts, proc) gives its params (or the settings file of a
-- stock test) with --set applied, help(proc, script) is `run FILE --help`.
local batlab = require "batlab"
local runargs = require "batlab.runargs"
local settings = require "batlab.settings"
local suggest = require "batlab.suggest"
local lfs = require "lfs"

local M = {}

-- The procedure of `batlab MODE`: proc, script | nil, err.
function M.load(mode, o)
	local script = o.script
	if mode ~= "run" then
		script = runargs.stock_script(mode == "cycletest" and "cycle-test.lua" or "discharge-test.lua")
		if not script then
			return nil, "cannot find the stock scripts (scripts/cycle-test.lua)"
		end
	elseif not script then
		return nil, "run: which script? (see 'batlab run --help')"
	elseif not script:find("/", 1, true) and not lfs.attributes(script) then
		-- a procedure by name: one of the installed scripts
		local found = runargs.stock_script(script:match("%.lua$") and script or script .. ".lua")
		if not found then
			return nil, ("%s: no such file, and no installed procedure of that name (%s)"):format(script,
				table.concat(runargs.stock_names(), ", "))
		end
		script = found
	end
	local proc, perr = batlab.load_procedure(script)
	if not proc then
		return nil, perr
	end
	if type(proc) == "function" then
		proc = { name = script:match("([^/]+)%.lua$") or script, run = proc }
	end
	if type(proc) ~= "table" or type(proc.run) ~= "function" then
		return nil, script .. ": a procedure returns a function, or a table with run(cell, params)"
	end
	if proc.params ~= nil and type(proc.params) ~= "table" then
		return nil, script .. ": params must be a table of NAME = default value"
	end
	if proc.record ~= nil then
		local ok, rerr = runargs.check_record(proc.record, script .. ": record")
		if not ok then
			return nil, rerr
		end
	end
	proc._script = script
	return proc, script
end

-- One --set KEY=VALUE for a procedure's params: the key must be one of
-- them, the value of its default's type. key, value | nil, nil, message.
local function set_param(proc, kv)
	local where = proc._script or "the procedure"
	local k, v = kv:match("^([%w_]+)=(.*)$")
	if not k then
		return nil, nil, ("--set '%s': expected KEY=VALUE"):format(kv)
	end
	local params = proc.params or {}
	local default = params[k]
	if default == nil then
		local names = {}
		for name in pairs(params) do
			names[#names + 1] = name
		end
		table.sort(names)
		if #names == 0 then
			return nil, nil, ("--set '%s': %s takes no parameters"):format(kv, where)
		end
		return nil, nil, ("--set '%s': %s has no parameter '%s'%s; its parameters: %s"):format(kv, where, k,
			suggest.hint(k, names), table.concat(names, ", "))
	end
	local dt = type(default)
	if dt == "number" then
		local n = tonumber(v)
		if not n then
			return nil, nil, ("--set '%s': %s is a number (default %s), not '%s'"):format(kv, k,
				tostring(default), v)
		end
		return k, n
	elseif dt == "boolean" then
		if v ~= "true" and v ~= "false" then
			return nil, nil, ("--set '%s': %s is true or false (default %s)"):format(kv, k, tostring(default))
		end
		return k, v == "true"
	end
	return k, v
end

-- `batlab run FILE --help`: what the procedure says of itself, its
-- parameters with their defaults, then the options.
function M.help(proc, script)
	local out = { ("%s (%s)"):format(proc.name or "procedure", script) }
	if type(proc.description) == "string" then
		out[#out + 1] = "\n" .. proc.description:gsub("%s+$", "")
	end
	local names = {}
	for k in pairs(proc.params or {}) do
		names[#names + 1] = k
	end
	table.sort(names)
	out[#out + 1] = #names > 0 and "\nParameters (change with --set NAME=VALUE):" or "\nNo parameters."
	for _, k in ipairs(names) do
		out[#out + 1] = ("  %-20s %s"):format(k, tostring(proc.params[k]))
	end
	return table.concat(out, "\n") .. "\n\n"
end

-- The settings (stock tests, or --settings) or the procedure's params with
-- --set applied: params, settings, warnings | nil, err.
function M.params(o, proc)
	if o.settings or proc.needs_settings then
		local s, warnings
		if o.settings then
			s, warnings = settings.load(o.settings, o.sets)
		else
			s, warnings = settings.parse("{}", "(defaults)", o.sets)
		end
		if not s then
			return nil, warnings
		end
		return s, s, warnings
	end
	local params = {}
	for k, v in pairs(proc.params or {}) do
		params[k] = v
	end
	for _, kv in ipairs(o.sets) do
		local k, v, perr = set_param(proc, kv)
		if perr then
			return nil, perr
		end
		params[k] = v
	end
	-- A procedure's own check of its parameters, before anything starts.
	local ok, why = pcall(proc.check or function() end, params)
	if not ok or why then
		return nil, ("%s: %s"):format(proc._script or proc.name or "procedure", tostring(why))
	end
	return params
end

return M
