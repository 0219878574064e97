-- The engine as a script sees it: batlab.now(), cjson and lfs through
-- require, package.path, print, the random seed, no stray globals.
-- (The procedure sandbox and the C API are tested in tests/c/test_engine.c.)
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local batlab = require "batlab"

-- batlab.now(): seconds, monotonic.
local t0 = batlab.now()
t.is(math.type(t0), "float", "now() is a float")
local prev, backwards = t0, false
local x = 0
for i = 1, 200000 do
	x = x + i
	if i % 1000 == 0 then
		local now = batlab.now()
		if now < prev then
			backwards = true
		end
		prev = now
	end
end
t.ok(not backwards, "now() never goes backwards")
t.ok(batlab.now() > t0, "now() advances with real time")
t.ok(batlab.now() - t0 < 60, "now() is in seconds")
t.raises(function() batlab.now.x = 1 end, "attempt to index", "now is a function")

-- cjson and lfs.
local cjson = require "cjson"
t.is(cjson.encode({ 1, 2, 3 }), "[1,2,3]", "require 'cjson' works")
t.is(cjson.decode('{"v":4.2}').v, 4.2, "cjson.decode")
local safe = require "cjson.safe"
t.is(select(1, safe.decode("{")), nil, "cjson.safe returns nil on bad JSON")
local lfs = require "lfs"
t.is(lfs.attributes(".", "mode"), "directory", "require 'lfs' works")

-- package.path starts with our lua/ directory, absolute.
local luadir = package.path:match("^([^;]+)/%?%.lua;")
t.ok(luadir ~= nil, "package.path starts with <luadir>/?.lua")
t.like(luadir or "", "^/", "the lua directory is absolute")
t.like(luadir or "", "/lua$", "the lua directory is called lua")
-- Run from the source tree (as make check does), lua/ there is the one,
-- when it exists (git keeps no empty directories).
local here = lfs.currentdir()
if lfs.attributes(here .. "/lua/batlab", "mode") == "directory" then
	local real = io.popen("readlink -f " .. here .. "/lua"):read("l")
	t.is(luadir, real, "from the source tree, lua/ is the tree's")
else
	t.skip("from the source tree, lua/ is the tree's", "no lua/batlab/ in " .. here)
end
t.ok(package.path:find((luadir or "") .. "/?/init.lua", 1, true) ~= nil, "package.path has <luadir>/?/init.lua")
t.ok(package.searchpath("cjson", package.cpath) ~= nil, "package.cpath finds cjson")

-- No globals besides the standard ones, batlab and arg.
local std = {
	_G = true, _VERSION = true, assert = true, collectgarbage = true, dofile = true, error = true,
	getmetatable = true, ipairs = true, load = true, loadfile = true, next = true, pairs = true,
	pcall = true, print = true, rawequal = true, rawget = true, rawlen = true, rawset = true,
	require = true, select = true, setmetatable = true, tonumber = true, tostring = true, type = true,
	xpcall = true, warn = true, coroutine = true, debug = true, io = true, math = true, os = true,
	package = true, string = true, table = true, utf8 = true,
	batlab = true, arg = true,
	lfs = true, -- lua-filesystem sets this global itself when required
}
local extra = {}
for k in pairs(_G) do
	if not std[k] then
		extra[#extra + 1] = tostring(k)
	end
end
table.sort(extra)
t.is(table.concat(extra, ", "), "", "no stray globals")
t.is(package.loaded.batlab, batlab, "batlab is in package.loaded")

-- print goes through the engine (stdout here), tab-separated, tostring'd.
local bin = os.getenv("BATLAB") or arg[0]:match("^(.-)[^/]*$") .. "../../batlab"
local function q(s)
	return "'" .. s:gsub("'", "'\\''") .. "'"
end
local function run(args)
	local f = assert(io.popen(q(bin) .. " lua " .. args .. " 2>&1"))
	local out = f:read("a")
	f:close()
	return out
end
t.is(run("-e " .. q("print(1, nil, 'x', setmetatable({}, {__tostring = function() return 'T' end}))")),
	"1\tnil\tx\tT\n", "print: tab-separated, tostring'd, one line")
t.is(run("-e " .. q("print()")), "\n", "print() prints an empty line")

-- math.random repeats from run to run (seeded), so procedures are reproducible.
local r1 = run("-e " .. q("print(math.random(1, 1e9), math.random())"))
local r2 = run("-e " .. q("print(math.random(1, 1e9), math.random())"))
t.is(r1, r2, "math.random is seeded: two runs agree")

-- BATLAB_LUA_PATH overrides where lua/ is.
local f = assert(io.popen("BATLAB_LUA_PATH=/nonexistent/luadir " .. q(bin) .. " lua -e " ..
	q("print((package.path:match('^[^;]+')))")))
t.is(f:read("a"), "/nonexistent/luadir/?.lua\n", "BATLAB_LUA_PATH is used as it is")
f:close()

-- An installed layout: bin/batlab finds ../share/batlab/lua.
local tmp = os.tmpname()
os.remove(tmp)
assert(lfs.mkdir(tmp))
for _, d in ipairs { "/bin", "/share", "/share/batlab", "/share/batlab/lua", "/share/batlab/lua/batlab" } do
	assert(lfs.mkdir(tmp .. d))
end
local exe = io.popen("readlink -f " .. q(bin)):read("a"):gsub("\n$", "")
os.execute("cp " .. q(exe) .. " " .. q(tmp .. "/bin/batlab"))
local inst = io.popen(q(tmp .. "/bin/batlab") .. " lua -e " .. q("print((package.path:match('^[^;]+')))"))
t.is(inst:read("a"), tmp .. "/share/batlab/lua/?.lua\n", "an installed binary finds PREFIX/share/batlab/lua")
inst:close()
os.remove(tmp .. "/bin/batlab")
for _, d in ipairs { "/share/batlab/lua/batlab", "/share/batlab/lua", "/share/batlab", "/share", "/bin", "" } do
	lfs.rmdir(tmp .. d)
end

t.done()
