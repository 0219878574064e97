-- Running the batlab program from a Lua test, as a user does: its standard
-- output, standard error and exit status. Not a test itself (no test_
-- prefix); tests load it beside tap.lua.
--
--   local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
--   local run = cli.runner("shell")
--   local out, err, code = run("--sim -e " .. cli.quote("print(1)"))

local M = {}

-- $BATLAB (set by make check), or the program built next to tests/.
M.bin = os.getenv("BATLAB") or arg[0]:match("^(.-)[^/]*$") .. "../../batlab"

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
