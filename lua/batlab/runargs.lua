-- batlab.runargs - the command line of `batlab run`, `cycletest` and
-- `dischargetest`: usage texts, options, and where the stock scripts are.
local batlab = require "batlab"
local check = require "batlab.settings_check"

local M = {}

local USAGE = {
	run = [[
usage: batlab run SCRIPT [options] [NAME...]
       batlab run --experiment FILE [options] [NAME...]

Run a test procedure (a Lua file returning a table with run(cell, params))
on the connected Batlabs, one task per cell.

Options:
  --settings FILE      Lexcelon settings / cell playlist (JSON)
  --cell CH=NAME       put cell NAME on channel CH (0.. or CELL0.. across
                       Batlabs in serial-number order, or SERIAL:CH);
                       repeatable
  --cells-from FILE    cell names, one per line, onto the channels in order
  --set KEY=VALUE      override a setting or procedure parameter; repeatable
  --experiment FILE    run the experiment strings of FILE ("Discharge at
                       1C until 3.0 V", ...; scripts/experiment.lua)
  --out DIR            results directory (default batlab-runs/NAME-DATE)
  --sim[=LAYOUT]       virtual Batlab(s) in virtual time (default layout:
                       one unit, four cells)
  --devices N          with --sim: number of virtual units
  --seed S             with --sim: noise seed
  --port PATH          real hardware on this port only; repeatable: the
                       cells go across the Batlabs on these ports
  --serial N           only the Batlab with this serial number
  --timeout S          end discharges S seconds after the test started
  --swap-timeout S     with more cells than channels: how long to wait for
                       the operator to swap a cell (default 3600 s)
  --speed X            with --sim: run at X times real time (to watch a dry
                       run; default: as fast as possible)
  --record POLICY      which samples become rows of the time series:
                       every=S,dv=V,di=A (a row when that much time,
                       voltage or current since the last row; first and
                       last row of each step and mode/error changes
                       always); default: every sample
  --gzip               write the time series gzip-compressed,
                       cells/NAME.csv.gz (for long runs; zcat reads it)
  --json               print the final summary as JSON on standard output
  --no-report          no report.html (the HTML page with plots) at the end
  --db URL             also write the results to PostgreSQL (postgresql://...;
                       or $BATLAB_DB, or the lab config: docs/database.md)
  --mqtt URL           publish live telemetry to an MQTT broker
                       (mqtt://host[:port]; or $BATLAB_MQTT: docs/lab.md)
  --quiet              no progress output
  -h, --help           this text (with SCRIPT: its description and params)
]],
}
USAGE.cycletest = [[
usage: batlab cycletest [--settings FILE] [options] NAME...

Lexcelon's stock cycle test (scripts/cycle-test.lua): cells NAME... go
onto the channels in order, across Batlabs in serial-number order. Takes
the options of 'batlab run' (see 'batlab run --help').
]]
USAGE.dischargetest = [[
usage: batlab dischargetest [--settings FILE] [--timeout S] [options] NAME...

Lexcelon's stock discharge test (scripts/discharge-test.lua). Takes the
options of 'batlab run' (see 'batlab run --help').
]]

M.USAGE = USAGE

local VALUED = {
	["--settings"] = true, ["--cell"] = true, ["--cells-from"] = true, ["--set"] = true,
	["--out"] = true, ["--experiment"] = true, ["--timeout"] = true, ["--db"] = true, ["--mqtt"] = true,
	["--speed"] = true, ["--swap-timeout"] = true, ["--record"] = true,
}

local POLICY_KEYS = { every = "s", dv = "V", di = "A" }

-- check_record(t, where) -> t | nil, err: a recording policy table
-- {every =, dv =, di =} (numbers >= 0; 0 or missing: off).
function M.check_record(t, where)
	if type(t) ~= "table" then
		return nil, ("%s: the recording policy must be a table {every =, dv =, di =}"):format(where)
	end
	for k, v in pairs(t) do
		if not POLICY_KEYS[k] then
			return nil, ("%s: unknown recording policy key '%s' (every, dv, di)"):format(where, tostring(k))
		end
		if type(v) ~= "number" or not (v >= 0) or v == math.huge then
			return nil, ("%s: %s must be a number >= 0 (%s), got %s"):format(where, k, POLICY_KEYS[k], tostring(v))
		end
	end
	return t
end

-- parse_record("every=10,dv=0.005,di=0.01") -> policy | nil, err.
function M.parse_record(text)
	local t = {}
	for item in (text .. ","):gmatch("([^,]*),") do
		local k, v = item:match("^%s*([%w_]+)%s*=%s*(.-)%s*$")
		if not k then
			return nil, ("--record: '%s' is not KEY=VALUE (every=S,dv=V,di=A)"):format(item)
		end
		t[k] = tonumber(v) or v
	end
	return M.check_record(t, "--record")
end

-- The names of --cell CH=NAME and NAME... checked (settings_check): o | nil, err.
local function check_names(o)
	for _, spec in ipairs(o.cells) do
		local name = spec:match("^[^=]+=(.+)$")
		local why = name and check.name_problem(name)
		if why then
			return nil, ("--cell: cell name %s %s"):format(check.show_name(name), why)
		end
	end
	for _, name in ipairs(o.names) do
		local why = check.name_problem(name)
		if why then
			return nil, ("cell name %s %s"):format(check.show_name(name), why)
		end
	end
	return o
end

-- parse(mode, argv [, dev]) -> options | nil, message. dev: the device
-- selection the command line parsed (src/cli/cmd_run.c, the parser every
-- command uses): sim, devices, seed, port, serial.
function M.parse(mode, argv, dev)
	local o = { cells = {}, sets = {}, names = {} }
	for k, v in pairs(dev or {}) do
		o[k] = v
	end
	local i = 1
	while i <= #argv do
		local a = argv[i]
		local key, val = a:match("^(%-%-[%w-]+)=(.*)$")
		key = key or a
		if key == "--help" or key == "-h" then
			o.help = true
		elseif key == "--json" then
			o.json = true
		elseif key == "--quiet" then
			o.quiet = true
		elseif key == "--no-report" then
			o.no_report = true
		elseif key == "--gzip" then
			if val then
				return nil, ("--gzip takes no value (got '%s')"):format(val)
			end
			o.gzip = true
		elseif VALUED[key] then
			if not val then
				i = i + 1
				val = argv[i]
				if val == nil then
					return nil, key .. " needs a value"
				end
			end
			if key == "--cell" then
				o.cells[#o.cells + 1] = val
			elseif key == "--set" then
				o.sets[#o.sets + 1] = val
			else
				o[key:sub(3):gsub("-", "_")] = val
			end
		elseif a:sub(1, 2) == "--" then
			return nil, ("unknown option '%s' (see 'batlab %s --help')"):format(a, mode)
		elseif mode == "run" and not o.script then
			o.script = a
		else
			o.names[#o.names + 1] = a
		end
		i = i + 1
	end
	for _, k in ipairs({ "timeout", "speed", "swap_timeout" }) do
		if o[k] ~= nil then
			local n = tonumber(o[k])
			if not n or n < 0 or n ~= n or n == math.huge then
				return nil, ("--%s: '%s' is not a valid number"):format(k:gsub("_", "-"), o[k])
			end
			o[k] = n
		end
	end
	if o.record ~= nil then
		local p, perr = M.parse_record(o.record)
		if not p then
			return nil, perr
		end
		o.record = p
	end
	if o.timeout == 0 then
		return nil, "--timeout: must be more than 0 seconds (0 would end the discharge at once)"
	end
	if o.experiment then
		local ok, err = M.experiment(mode, o)
		if not ok then
			return nil, err
		end
	end
	return check_names(o)
end

-- --experiment FILE: scripts/experiment.lua with file = FILE, the file
-- read and every step string checked before anything starts.
function M.experiment(mode, o)
	if mode ~= "run" then
		return nil, "--experiment: only with 'batlab run'"
	end
	if o.script then
		-- the first name was taken for the script: it is a cell name
		table.insert(o.names, 1, o.script)
	end
	local f, err = io.open(o.experiment, "rb")
	if not f then
		return nil, "--experiment: " .. tostring(err)
	end
	local experiment = require "batlab.experiment"
	local ok, perr = pcall(experiment.parse, f:read("a"), o.experiment)
	f:close()
	if ok then
		ok, perr = experiment.check(perr)
	end
	if not ok then
		return nil, perr
	end
	o.script = "experiment"
	table.insert(o.sets, 1, "file=" .. o.experiment)
	return true
end

-- Where the stock scripts live: beside lua/ in the source tree, or under
-- share/batlab/ once installed.
local function script_dirs()
	local luadir = batlab.luadir() or "lua"
	return { luadir .. "/../scripts", luadir .. "/../../scripts", "scripts" }
end

-- The names of the installed procedures ("capacity", "cycle-test", ...).
function M.stock_names()
	local lfs = require "lfs"
	for _, dir in ipairs(script_dirs()) do
		if lfs.attributes(dir, "mode") == "directory" then
			local names = {}
			for f in lfs.dir(dir) do
				names[#names + 1] = f:match("^(.+)%.lua$")
			end
			table.sort(names)
			return names
		end
	end
	return {}
end

function M.stock_script(name)
	for _, dir in ipairs(script_dirs()) do
		local path = dir .. "/" .. name
		local f = io.open(path)
		if f then
			f:close()
			return path
		end
	end
	return nil
end


-- read_names(path) -> { name... } | nil, err: one cell name a line; blank
-- lines and # comments skipped; a name that is too long or holds a
-- control character is an error naming the line.
function M.read_names(path)
	local f, e = io.open(path)
	if not f then
		return nil, e
	end
	local names, ln = {}, 0
	for line in f:lines() do
		ln = ln + 1
		local n = line:match("^%s*(.-)%s*$")
		if n ~= "" and n:sub(1, 1) ~= "#" then
			local why = check.name_problem(n)
			if why then
				f:close()
				return nil, ("%s:%d: cell name %s %s"):format(path, ln, check.show_name(n), why)
			end
			names[#names + 1] = n
		end
	end
	f:close()
	return names
end

return M
