-- Lua code in lua/ and scripts/ defines no globals and reads only the
-- standard ones (a module requires `batlab` like any other): a misspelt local
-- reads as a nil global and fails only at run time, so it is caught here
-- from the bytecode listing of luac.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local lfs = require "lfs"

local allowed = {}
for name in ([[assert collectgarbage dofile error getmetatable ipairs load loadfile next pairs
	pcall print rawequal rawget rawlen rawset require select setmetatable tonumber tostring type
	xpcall _G _VERSION coroutine debug io math os package string table utf8]]):gmatch("%S+") do
	allowed[name] = true
end

local files = {}
for _, dir in ipairs({ "lua/batlab", "scripts" }) do
	for f in lfs.dir(dir) do
		if f:match("%.lua$") then
			files[#files + 1] = dir .. "/" .. f
		end
	end
end
table.sort(files)
t.ok(#files >= 10, ("found the Lua sources (%d files)"):format(#files))

local luac = io.popen("command -v luac5.4 || command -v luac"):read("l")
if not luac then
	t.skip("no luac to list bytecode", "lua5.4 (luac5.4) not installed")
	t.done()
	return
end
for _, path in ipairs(files) do
	local p = io.popen(("%s -l -l -p %q 2>&1"):format(luac, path))
	local bad = {}
	for line in p:lines() do
		local op, name = line:match("%s([GS]ETTABUP)%s.-; _ENV \"([^\"]+)\"")
		if op == "SETTABUP" or (op == "GETTABUP" and not allowed[name]) then
			local ln = line:match("%[(%d+)%]")
			bad[#bad + 1] = ("%s %s at line %s"):format(op == "SETTABUP" and "sets" or "reads", name, ln)
		end
	end
	p:close()
	t.is(table.concat(bad, "; "), "", path .. ": no global but the standard ones")
end
t.done()
