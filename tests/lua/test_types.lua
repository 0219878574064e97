-- The LuaCATS definitions in lua/types/ (for lua-language-server): every
-- file parses as Lua and is a ---@meta file named after the module
-- `require` finds it as (batlab/objects.lua, which only declares classes,
-- is `---@meta _`: nothing requires it); every public function of the
-- core `batlab` module, of the step library and of the characterisation
-- modules, and every method of a cell and of the objects the core module
-- returns (packets, devices, channels, recorders, ...), is declared there
-- (a function added without its definition fails here); `make install`
-- puts them under share/batlab/lua/types.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")

local root = arg[0]:match("^(.-)[^/]*$") .. "../.."
local types = root .. "/lua/types"

local files = { ["batlab"] = "batlab.lua", ["_"] = "batlab/objects.lua" }
for _, m in ipairs { "steps", "conditions", "steps_more", "profile", "experiment", "cell" } do
	files["batlab." .. m] = "batlab/" .. m .. ".lua"
end
local text = {}
for mod, f in pairs(files) do
	local s = cli.read(types .. "/" .. f)
	t.ok(s ~= nil, f .. " exists")
	s = s or ""
	text[mod] = s
	t.ok(load(s, f) ~= nil, f .. " parses as Lua")
	t.is(s:match("^%-%-%-@meta ([%w._]+)"), mod, f .. " is the ---@meta file of " .. mod)
end
-- every file under lua/types is one of those (a new one must be checked here)
local f = assert(io.popen("cd " .. cli.quote(types) .. " && find . -name '*.lua'"))
local found = {}
for line in f:lines() do
	found[#found + 1] = line:sub(3)
end
f:close()
table.sort(found)
local listed = {}
for _, rel in pairs(files) do
	listed[#listed + 1] = rel
end
table.sort(listed)
t.is(table.concat(found, " "), table.concat(listed, " "), "every file in lua/types is checked")

-- the public functions of a module table (not _private ones)
local function public(tbl)
	local out = {}
	for k, v in pairs(tbl) do
		if type(v) == "function" and not k:find("^_") then
			out[#out + 1] = k
		end
	end
	table.sort(out)
	return out
end

-- Functions of the core module that are not the procedure writer's API:
-- batlab's own Lua modules call them, docs/lua-api.md does not document them.
local CORE_INTERNAL = {
	db_open = "the runner's PostgreSQL sink (batlab.labsink; `batlab run --db`)",
	db_check = "`batlab db check` (batlab.labcli)",
	db_init = "`batlab db init` (batlab.labcli)",
	db_push = "`batlab db push` (batlab.labcli)",
	db_query = "`batlab db` queries (batlab.labcli)",
	db_series = "a cell's number in batlab.sample_data, for the resume's catch-up (batlab.labresume)",
	db_spool_scan = "each cell's last sample number in a run's spool, for the resume's catch-up (batlab.labresume)",
	db_connect = "`batlab report --db` reads runs back (batlab.report.dbload)",
	mqtt_open = "the runner's MQTT telemetry (batlab.labsink; `batlab run --mqtt`)",
	open_file = "io.open with a big buffer for the Lexcelon log (batlab.lexcelon_log)",
	isatty = "whether the progress lines go to a terminal (batlab.progress)",
	luadir = "where scripts/ lies, for the runner (batlab.runargs)",
	load_procedure = "the runner loads procedures with it (batlab.procedure)",
}

local checks = {
	{ "batlab", "batlab", CORE_INTERNAL },
	{ "batlab.steps", "steps", { _has = true } },
	{ "batlab.conditions", "C", {} },
	{ "batlab.steps_more", "more", {} },
	{ "batlab.profile", "profile", { at = true, compile = true } },
	{ "batlab.experiment", "experiment", { parse_step = true, check = true } },
}
for _, c in ipairs(checks) do
	local mod, var, skip = c[1], c[2], c[3]
	local missing = {}
	for _, name in ipairs(public(require(mod))) do
		if not skip[name] and not text[mod]:find("function " .. var .. "." .. name .. "(", 1, true) then
			missing[#missing + 1] = name
		end
	end
	t.is(table.concat(missing, ", "), "", mod .. ": every public function declared")
end
local Cell = require("batlab.cell").Cell
local missing = {}
for name, v in pairs(Cell) do
	if type(v) == "function" and not name:find("^_") and not text["batlab.cell"]:find("function Cell:" .. name .. "(", 1, true) then
		missing[#missing + 1] = name
	end
end
table.sort(missing)
t.is(table.concat(missing, ", "), "", "batlab.cell: every method of a cell declared")

-- The methods of the objects the core module returns: those of the class
-- (the metatable's __index, or the methods table a C __index has as its
-- first upvalue) and, for a channel, the seed interface's.
local function methods(obj)
	local mt = getmetatable(obj)
	local idx = mt and mt.__index
	if type(idx) == "function" then
		idx = select(2, debug.getupvalue(idx, 1))
	end
	local out = {}
	for k, v in pairs(type(idx) == "table" and idx or {}) do
		if type(v) == "function" and not k:find("^_") then
			out[#out + 1] = k
		end
	end
	return out
end
-- undocumented methods: not the procedure writer's API
local METHOD_INTERNAL = {
	["Pool:sim_cell"] = "the simulator's model state, for tests only (not in docs/lua-api.md)",
	["Logger:path"] = "batlab.seed's helper for its own log files",
	["Logger:event"] = "batlab.seed's test events",
	["Logger:acquire"] = "batlab.seed's shared log files",
	["Logger:release"] = "batlab.seed's shared log files",
}
local core = text["batlab"] .. text["_"]
local pool = assert(batlab.open { sim = true })
local dev = pool:devices()[1]
local ch = dev:channel(0)
local gz = assert(batlab.gzopen(cli.tmpdir() .. "/x.gz", "w"))
local rec = assert(batlab.recorder(ch, nil, {}))
local objects = {
	{ "Pool", pool }, { "Device", dev }, { "Channel", ch },
	{ "Task", batlab.spawn(function() end) },
	{ "Packet", batlab.Packet { namespace = "CELL0", addr = "VOLTAGE", value = 1 } },
	{ "Encoder", batlab.Encoder(1) }, { "Trail", batlab.trail { keep = 2 } },
	{ "Series", batlab.series { "time" } }, { "GzFile", gz }, { "Recorder", rec },
	{ "Settings", batlab.Settings() }, { "Logger", batlab.Logger() },
}
for _, o in ipairs(objects) do
	local class, names = o[1], methods(o[2])
	if class == "Channel" then
		for k in pairs(require("batlab.seed").channel_methods) do
			names[#names + 1] = k
		end
	end
	t.ok(#names > 0, class .. ": methods found")
	missing = {}
	for _, name in ipairs(names) do
		local m = class .. ":" .. name
		if not METHOD_INTERNAL[m] and not core:find("function " .. m .. "(", 1, true) then
			missing[#missing + 1] = name
		end
	end
	table.sort(missing)
	t.is(table.concat(missing, ", "), "", "batlab." .. class .. ": every method declared")
end
rec:close()
gz:close()
batlab.run()
pool:close()

-- make install places them
local tmp = cli.tmpdir()
local san = (os.getenv("BUILD") or ""):match("build/san$") and " SANITIZE=1" or ""
local f = assert(io.popen(("cd %s && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s install DESTDIR=%s%s 2>&1; echo rc=$?")
	:format(cli.quote(root), cli.quote(tmp), san)))
local out = f:read("a")
f:close()
t.like(out, "rc=0", "make install")
for _, rel in pairs(files) do
	t.ok(cli.read(tmp .. "/usr/local/share/batlab/lua/types/" .. rel) ~= nil, "installed: share/batlab/lua/types/" .. rel)
end

t.done()
