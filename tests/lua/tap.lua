-- tests/lua/tap.lua - a tiny TAP producer for the Lua tests.
--
-- The tests run inside the batlab binary (`batlab lua tests/lua/test_X.lua`,
-- which is what `make check` does under prove), so they see the real
-- bindings. Load this file relative to the test, so any working directory
-- works:
--
--   local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
--   t.is(batlab.MODE_IDLE, 2, "MODE_IDLE")
--   t.done()
--
-- Each dofile gives a fresh counter. done() prints the plan ("1..N") and
-- raises if anything failed, so the test exits non-zero (status 1) with
-- "N of M tests failed" on stderr. Patterns in like/raises are Lua patterns.

local M = {}

local n, failed = 0, 0

local function show(v)
	if type(v) == "string" then
		return string.format("%q", v)
	end
	return tostring(v)
end

local function diag(msg)
	for line in (tostring(msg) .. "\n"):gmatch("(.-)\n") do
		print("# " .. line)
	end
end
M.diag = diag

function M.ok(cond, name)
	n = n + 1
	print(string.format("%sok %d - %s", cond and "" or "not ", n, name or ""))
	if not cond then
		failed = failed + 1
		-- The first caller outside this file is the test's line.
		for level = 2, 10 do
			local info = debug.getinfo(level, "Sl")
			if not info then
				break
			end
			if not info.short_src:find("tap%.lua$") then
				diag(string.format("  at %s:%d", info.short_src, info.currentline))
				break
			end
		end
	end
	return cond
end

function M.is(got, want, name)
	local r = M.ok(got == want, name)
	if not r then
		diag("     got: " .. show(got))
		diag("    want: " .. show(want))
	end
	return r
end

function M.isnt(got, unwanted, name)
	local r = M.ok(got ~= unwanted, name)
	if not r then
		diag("     got: " .. show(got) .. " (should differ)")
	end
	return r
end

-- Numbers within an absolute tolerance.
function M.near(got, want, tol, name)
	local r = M.ok(type(got) == "number" and math.abs(got - want) <= tol, name)
	if not r then
		diag("     got: " .. show(got))
		diag(string.format("    want: %.9g (+/- %g)", want, tol))
	end
	return r
end

function M.like(got, pattern, name)
	local r = M.ok(type(got) == "string" and got:find(pattern) ~= nil, name)
	if not r then
		diag("     got: " .. show(got))
		diag("    like: " .. show(pattern))
	end
	return r
end

-- Deep comparison of tables (keys and values, recursively); where reports
-- the first difference.
local function deep_diff(a, b, path)
	if type(a) ~= "table" or type(b) ~= "table" then
		if a == b then
			return nil
		end
		return string.format("%s: got %s, want %s", path, show(a), show(b))
	end
	for k, v in pairs(b) do
		local d = deep_diff(a[k], v, path .. "[" .. show(k) .. "]")
		if d then
			return d
		end
	end
	for k, v in pairs(a) do
		if b[k] == nil then
			return string.format("%s[%s]: got %s, want nothing", path, show(k), show(v))
		end
	end
	return nil
end

function M.is_deeply(got, want, name)
	local d = deep_diff(got, want, "value")
	local r = M.ok(d == nil, name)
	if not r then
		diag("    " .. d)
	end
	return r
end

-- fn(...) must raise an error whose message matches pattern.
function M.raises(fn, pattern, name, ...)
	local okay, err = pcall(fn, ...)
	local msg = tostring(err)
	local r = M.ok(not okay and msg:find(pattern) ~= nil, name)
	if not r then
		if okay then
			diag("    no error raised")
		else
			diag("    error: " .. show(msg))
			diag("     like: " .. show(pattern))
		end
	end
	return r
end

-- fn(...) must return nil, a message matching pattern, and code.
function M.fails(fn, pattern, code, name, ...)
	local v, msg, c = fn(...)
	local r = M.ok(v == nil and type(msg) == "string" and msg:find(pattern) ~= nil and c == code, name)
	if not r then
		diag("     got: " .. show(v) .. ", " .. show(msg) .. ", " .. show(c))
		diag("    want: nil, " .. show(pattern) .. ", " .. show(code))
	end
	return r
end

-- Record a test that cannot run here.
function M.skip(name, reason)
	n = n + 1
	print(string.format("ok %d - %s # skip %s", n, name or "", reason or ""))
end

function M.done()
	print("1.." .. n)
	if failed > 0 then
		error(string.format("%d of %d tests failed", failed, n), 0)
	end
end

return M
