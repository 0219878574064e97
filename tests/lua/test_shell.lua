-- `batlab shell`: -e chunks and files with the globals batlab, pool and dev;
-- --sim, --devices, --seed, --serial, --port; exit codes 0/1/2/3.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")

local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local q, run = cli.quote, cli.runner("shell")

local out, err, code

out, err, code = run("--sim -e " .. q("print(dev.sn, dev.port, #pool:devices(), batlab.VERSION ~= nil)"))
t.is(code, 0, "-e with --sim: exit 0")
t.is(out, "1000\tsim0\t1\ttrue\n", "globals dev, pool and batlab")
t.is(err, "", "nothing on stderr")

out, err, code = run("--sim --devices 3 --serial 1002 -e " .. q("print(#pool:devices(), dev.sn)"))
t.is(out, "3\t1002\n", "--devices 3 --serial 1002")

out, err, code = run("--sim=/nonexistent/layout.json -e " .. q("print(1)"))
t.is(code, 2, "a missing layout: exit 2")
t.like(err, "nonexistent", "naming it")

out, err, code = run("--sim --serial 77 -e " .. q("print(1)"))
t.is(code, 3, "no device with that serial: exit 3")
t.like(err, "no Batlab with serial number 77", "saying so")

out, err, code = run("--port /nonexistent/ttyACM9 -e " .. q("print(1)"))
t.is(code, 2, "a port that does not exist: exit 2")
t.is(err, "batlab: shell: /nonexistent/ttyACM9: no such port (is it plugged in? 'batlab list' shows the Batlabs found)\n",
	"saying so")

out, err, code = run("--sim -e " .. q("error('boom')"))
t.is(code, 1, "a Lua error: exit 1")
t.like(err, "^batlab: %(command line%):1: boom", "the message on stderr")

out, err, code = run("--sim -e")
t.is(code, 2, "-e without a chunk: exit 2")
out, err, code = run("--bogus")
t.is(code, 2, "an unknown option: exit 2")
out, err, code = run("--sim --devices 0 -e 'print(1)'")
t.is(code, 2, "--devices 0: exit 2")
out, err, code = run("--help")
t.is(code, 0, "--help: exit 0")
t.like(out, "usage: batlab shell", "--help prints the usage")

-- blocking calls in the shell run virtual time; several chunks in order
out, err, code = run("--sim -e " .. q("t0 = batlab.now()") .. " -e " ..
	q("batlab.sleep(3600); print(string.format('%.0f', batlab.now() - t0))"))
t.is(out, "3600\n", "sleep in the shell jumps virtual time; chunks share globals")

-- a channel the user drives is left as the user left it ...
out, err, code = run("--sim -e " .. q([[
	local ch = dev:channel(0)
	assert(ch:discharge(1.0))
	local s = assert(ch:wait())
	print(s.mode_name, s.current < 0)
]]))
t.is(out, "DISCHARGE\ttrue\n", "the shell drives a channel directly")
t.is(code, 0, "exit 0")

-- ... but a task that fails has its channel made safe
out, err, code = run("--sim -e " .. q([[
	batlab.task_log(function() end)
	local task = batlab.spawn(function()
		local ch = dev:channel(1)
		assert(ch:charge(1.0))
		ch:wait()
		error("oops")
	end)
	batlab.run()
	batlab.sleep(1)
	print(task.status, dev:read(1, "MODE") == batlab.MODE_IDLE)
]]))
t.is(out, "failed\ttrue\n", "a failing task's channel is made safe")

-- a file, with arguments; standard input when it is not a terminal
local path = os.tmpname()
local f = assert(io.open(path, "w"))
f:write("print(select('#', ...), table.concat({...}, ','), dev.sn)\n")
f:close()
out, err, code = run("--sim " .. q(path) .. " a b")
t.is(out, "2\ta,b\t1000\n", "FILE ARGS: arguments as ...")
os.remove(path)
out, err, code = run("--sim", "print(dev:read('UNIT', 'FIRMWARE_VER'))\n")
t.is(out, "7\n", "standard input is run when it is not a terminal")
t.is(code, 0, "exit 0")

-- the module itself: helpers into the environment it is given, no globals
local shell = require "batlab.shell"
local batlab = require "batlab"
local env = {}
t.is(shell.install(env, nil), shell, "install returns the module")
t.ok(env.tasks == shell.tasks and env.help == shell.help, "install puts tasks and help into env")
t.ok(rawget(_G, "tasks") == nil and rawget(_G, "help") == nil, "and sets no global")
batlab.spawn(function() return 42 end)
batlab.run()
t.like(table.concat(shell.notices(), "\n"), "%[task %d+ done: 42%]", "a task spawned after install is followed")

t.done()
