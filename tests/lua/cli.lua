-- Running the batlab program from a Lua test, as a user does: its standard
-- output, standard error and exit status. Not a test itself (no test_
-- prefix); tests load it beside tap.lua.
--
--   local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
--   local run = cli.runner("shell")
--   local out, err, code = run("--sim -e " .. cli.quote("print(1)"))
--   local tmp = cli.tmpdir()
--   local code, out, err = cli.batlab("run capacity --sim --out " .. tmp .. "/r A1")
--   cli.write(tmp .. "/p.lua", "..."); local text = cli.read(tmp .. "/r/events.log")

local lfs = require "lfs"

local M = {}

-- $BATLAB (set by make check), or the program built next to tests/.
M.bin = os.getenv("BATLAB") or arg[0]:match("^(.-)[^/]*$") .. "../../batlab"
-- The same as an absolute path, for commands run from another directory.
M.abs_bin = M.bin:sub(1, 1) == "/" and M.bin or lfs.currentdir() .. "/" .. M.bin

-- tmpdir() -> the path of a new empty directory.
function M.tmpdir()
	local tmp = os.tmpname()
	os.remove(tmp)
	assert(lfs.mkdir(tmp))
	return tmp
end

-- write(path, text): the whole file.
function M.write(path, text)
	local f = assert(io.open(path, "wb"))
	f:write(text)
	f:close()
end

-- read(path) -> the whole file, or nil when there is none.
function M.read(path)
	local f = io.open(path, "rb")
	if not f then
		return nil
	end
	local s = f:read("a")
	f:close()
	return s
end

-- batlab(args [, prefix]) -> exit code, stdout, stderr: the program with
-- sh text args, prefix (environment settings, `timeout 20`, ...) before
-- it, standard input from /dev/null. A signal's death is 128 + signal.
function M.batlab(args, prefix)
	local out, err = os.tmpname(), os.tmpname()
	local _, how, code = os.execute(("%s%s %s < /dev/null > %s 2> %s"):format(prefix and prefix .. " " or "",
		M.quote(M.bin), args, out, err))
	local o, e = M.read(out) or "", M.read(err) or ""
	os.remove(out)
	os.remove(err)
	return how == "exit" and code or 128 + code, o, e
end

-- quote(s) -> s as one word for sh.
function M.quote(s)
	return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- runner(subcommand) -> run(args [, stdin]) -> stdout, stderr, exit code.
-- args is sh text after the subcommand; stdin, when given, is piped in,
-- otherwise the program reads /dev/null (never the terminal of make).
function M.runner(sub)
	return function(args, stdin)
		local errfile = os.tmpname()
		local cmd = M.quote(M.bin) .. " " .. sub .. " " .. args .. " 2>" .. M.quote(errfile)
		if stdin then
			cmd = "printf '%s' " .. M.quote(stdin) .. " | " .. cmd
		else
			cmd = cmd .. " </dev/null"
		end
		local f = assert(io.popen(cmd .. "; echo \"rc=$?\""))
		local out = f:read("a")
		f:close()
		local ef = assert(io.open(errfile))
		local err = ef:read("a")
		ef:close()
		os.remove(errfile)
		return (out:gsub("rc=%d+\n$", "")), err, tonumber(out:match("rc=(%d+)\n$"))
	end
end

return M
