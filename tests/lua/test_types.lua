-- The LuaCATS definitions in lua/types/ (for lua-language-server): every
-- file parses as Lua and is a ---@meta file named after the module
-- `require` finds it as; every public function of the step library and
-- the characterisation modules, and every method of a cell, is declared
-- there (a function added without its definition fails here); `make
-- install` puts them under share/batlab/lua/types.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")

local root = arg[0]:match("^(.-)[^/]*$") .. "../.."
local types = root .. "/lua/types"

local files = { ["batlab"] = "batlab.lua" }
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

local checks = {
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
