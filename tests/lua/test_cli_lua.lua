-- `batlab lua`: exit codes (0 ok, 1 raised, 2 usage / missing / does not
-- compile), error messages with FILE:LINE and a traceback, arg, stdin.
-- Runs $BATLAB (set by make check), or the ./batlab next to tests/, through io.popen.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")

local bin = os.getenv("BATLAB") or arg[0]:match("^(.-)[^/]*$") .. "../../batlab"

local function q(s)
	return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Run `batlab lua ARGS`; returns stdout, stderr, exit code.
local errfile = os.tmpname()
local function run(args, stdin)
	local cmd = q(bin) .. " lua " .. args .. " 2>" .. q(errfile)
	if stdin then
		cmd = "printf '%s' " .. q(stdin) .. " | " .. cmd
	end
	local f = assert(io.popen(cmd .. "; echo \"rc=$?\""))
	local out = f:read("a")
	f:close()
	local code = tonumber(out:match("rc=(%d+)\n$"))
	out = out:gsub("rc=%d+\n$", "")
	local ef = assert(io.open(errfile))
	local err = ef:read("a")
	ef:close()
	return out, err, code
end

local tmpfiles = {}
local function script(text)
	local path = os.tmpname()
	local f = assert(io.open(path, "w"))
	f:write(text)
	f:close()
	tmpfiles[#tmpfiles + 1] = path
	return path
end

local out, err, code

out, err, code = run("-e " .. q("print('hi')"))
t.is(code, 0, "-e ok: exit 0")
t.is(out, "hi\n", "-e ok: output")
t.is(err, "", "-e ok: nothing on stderr")

out, err, code = run("-e " .. q("error('boom')"))
t.is(code, 1, "-e raising: exit 1")
t.like(err, "^batlab: %(command line%):1: boom\n", "-e raising: batlab: CHUNK:LINE: message")
t.like(err, "\nstack traceback:\n", "-e raising: a traceback follows")

out, err, code = run("-e " .. q("x ="))
t.is(code, 2, "-e not compiling: exit 2")
t.like(err, "^batlab: %(command line%):1: unexpected symbol near <eof>", "-e not compiling: message")

local raising = script("local x = 1\n\nerror('went wrong: ' .. x)\n")
out, err, code = run(q(raising))
t.is(code, 1, "FILE raising: exit 1")
t.like(err, "^batlab: [^\n]*" .. raising:match("[^/]+$") .. ":3: went wrong: 1\n", "FILE raising: FILE:LINE: message")
t.like(err, "stack traceback:\n.*in main chunk", "FILE raising: traceback down to the main chunk")

local table_error = script("error(setmetatable({}, {__tostring = function() return 'custom' end}))\n")
out, err, code = run(q(table_error))
t.is(code, 1, "FILE raising a table: exit 1")
t.like(err, "^batlab: custom", "an error object's __tostring is used")

local nil_error = script("error()\n")
out, err, code = run(q(nil_error))
t.is(code, 1, "FILE raising nil: exit 1")
t.like(err, "^batlab: %(error object is a nil value%)", "a nil error object is named")

local broken = script("print('a')\nlocal = 3\n")
out, err, code = run(q(broken))
t.is(code, 2, "FILE not compiling: exit 2")
t.like(err, "^batlab: [^\n]*:2: <name> expected near '='", "FILE not compiling: FILE:LINE: message")
t.is(out, "", "FILE not compiling: nothing ran")

out, err, code = run(q("/nonexistent/script.lua"))
t.is(code, 2, "missing FILE: exit 2")
t.like(err, "^batlab: cannot open /nonexistent/script%.lua", "missing FILE: message")

out, err, code = run("")
t.is(code, 2, "no arguments: exit 2")
t.like(err, "^usage: batlab lua", "no arguments: usage on stderr")

out, err, code = run("-x")
t.is(code, 2, "unknown option: exit 2")
t.like(err, "^batlab: lua: unknown option '%-x'", "unknown option: message")

out, err, code = run("-e")
t.is(code, 2, "-e without a chunk: exit 2")
t.like(err, "^batlab: lua: %-e needs a chunk", "-e without a chunk: message")

out, err, code = run("--help")
t.is(code, 0, "--help: exit 0")
t.like(out, "^usage: batlab lua", "--help: usage on stdout")

-- arg and ... like lua(1).
local args = script("print(arg[0], arg[1], arg[2], #arg, select('#', ...), ...)\n")
out, err, code = run(q(args) .. " one 'two words'")
t.is(code, 0, "FILE ARGS: exit 0")
t.is(out, args .. "\tone\ttwo words\t2\t2\tone\ttwo words\n", "arg[0], arg[1..] and ... are set")

out, err, code = run("-e " .. q("print(arg[0], arg[1])") .. " " .. q(args) .. " A")
t.is(out, args .. "\tA\n" .. args .. "\tA\tnil\t1\t1\tA\n", "-e chunks run first and see arg")

out, err, code = run("-e " .. q("x = 41") .. " -e " .. q("print(x + 1)"))
t.is(out, "42\n", "several -e chunks run in order in one state")

out, err, code = run("-- " .. q(args) .. " -e")
t.is(out, args .. "\t-e\tnil\t1\t1\t-e\n", "after --, everything is FILE and ARGS")

out, err, code = run("-", "print(6 * 7)\n")
t.is(code, 0, "'-' reads the script from stdin: exit 0")
t.is(out, "42\n", "'-' reads the script from stdin")

out, err, code = run("-e " .. q("os.exit(3)"))
t.is(code, 3, "os.exit works outside procedures (like lua(1))")

out, err, code = run("-e " .. q("print(batlab.MODE_CHARGE, batlab.Packet{namespace=0, addr=7, value=30583})"))
t.is(out, "3\tCELL0 VOLTAGE = 30583 (4.1999 V)\n", "the batlab global is there for -e")

for _, path in ipairs(tmpfiles) do
	os.remove(path)
end
os.remove(errfile)
t.done()
