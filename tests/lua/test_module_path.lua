-- Modules come only from batlab's lua/ directory and the system's Lua
-- directories: a lfs.lua, cjson.lua or batlab/steps.lua planted in the
-- working directory of a run is never loaded (package.path and
-- package.cpath hold no template relative to the working directory).
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local lfs = require "lfs"

local bin = cli.abs_bin
local tmp = cli.tmpdir()
local write, read = cli.write, cli.read
assert(lfs.mkdir(tmp .. "/batlab"))
local marker = tmp .. "/PWNED"

local plant = ("io.open(%q, 'a'):write(...or '?', '\\n') return {}\n"):format(marker)
for _, m in ipairs({ "lfs.lua", "cjson.lua", "batlab/steps.lua", "batlab/runner.lua",
	"batlab/seed.lua", "batlab.lua" }) do
	write(tmp .. "/" .. m, plant)
end
write(tmp .. "/quick.json", [[{ "cellPlaylistName": "quick", "numWarmupCycles": 0,
  "numMeasurementCycles": 1, "restPeriod": 30, "reportingPeriod": 1 }]])

local function in_tmp(args)
	local f = assert(io.popen(("cd %s && %s %s 2>&1; echo \"rc=$?\""):format(cli.quote(tmp),
		cli.quote(bin), args)))
	local out = f:read("a")
	f:close()
	return out, tonumber(out:match("rc=(%d+)\n$"))
end

local out, code = in_tmp("lua -e " .. cli.quote("for _, w in ipairs{package.path, package.cpath} do " ..
	"for e in w:gmatch('[^;]+') do if e:sub(1, 1) ~= '/' then print('relative: ' .. e) end end end " ..
	"require 'lfs'; require 'cjson'; require 'batlab.steps'"))
t.is(code, 0, "batlab lua runs in a folder with planted modules")
t.ok(not out:find("relative: "), "no relative template in package.path or cpath: " .. out:gsub("\n", " | "))

out, code = in_tmp("cycletest --settings quick.json --sim --out run A")
t.is(code, 0, "cycletest runs in that folder: " .. out:match("[^\n]*"))
t.ok(lfs.attributes(tmp .. "/run/summary.csv"), "and writes its summary")
t.ok(not lfs.attributes(marker), "no planted module was loaded")

os.execute("rm -rf " .. cli.quote(tmp))
t.done()
