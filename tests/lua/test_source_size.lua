-- One job per module, functions a reader can hold in mind: no source file
-- over about 700 lines, no function over about 80. Counted from the
-- sources: C functions from a `{` in column 0 to the `}` in column 0, Lua
-- functions from a `function` line in column 0 to the `end` in column 0.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local lfs = require "lfs"

local FILE_MAX, FUNC_MAX = 700, 80

local files = {}
local function walk(dir, pattern)
	for f in lfs.dir(dir) do
		local path = dir .. "/" .. f
		if f ~= "." and f ~= ".." then
			if lfs.attributes(path, "mode") == "directory" then
				walk(path, pattern)
			elseif f:match(pattern) then
				files[#files + 1] = path
			end
		end
	end
end
walk("src", "%.[ch]$")
walk("lua", "%.lua$")
walk("scripts", "%.lua$")
table.sort(files)
t.ok(#files > 40, ("found the sources (%d files)"):format(#files))

local long_files, long_funcs = {}, {}
for _, path in ipairs(files) do
	local n, start, name = 0, nil, nil
	local is_c = path:match("%.[ch]$")
	local prev = ""
	for line in io.lines(path) do
		n = n + 1
		if is_c then
			if line == "{" then
				start, name = n, prev:match("([%w_]+)%s*%(") or prev
			elseif line == "}" and start then
				if n - start > FUNC_MAX then
					long_funcs[#long_funcs + 1] = ("%s:%d %s (%d lines)"):format(path, start, name, n - start)
				end
				start = nil
			end
		else
			local fn = line:match("^local function ([%w_.:]+)") or line:match("^function ([%w_.:]+)")
			if fn then
				start, name = n, fn
			elseif line == "end" and start then
				if n - start > FUNC_MAX then
					long_funcs[#long_funcs + 1] = ("%s:%d %s (%d lines)"):format(path, start, name, n - start)
				end
				start = nil
			end
		end
		prev = line
	end
	if n > FILE_MAX then
		long_files[#long_files + 1] = ("%s (%d lines)"):format(path, n)
	end
end
t.is(#long_files, 0, ("no source file over %d lines"):format(FILE_MAX))
for _, f in ipairs(long_files) do
	io.stdout:write("# ", f, "\n")
end
t.is(#long_funcs, 0, ("no function over %d lines"):format(FUNC_MAX))
for _, f in ipairs(long_funcs) do
	io.stdout:write("# ", f, "\n")
end
t.done()
