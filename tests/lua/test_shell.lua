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
	print(task.status, dev:read_raw(1, "MODE") == batlab.MODE_IDLE)
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
out, err, code = run("--sim", "print(dev:read_raw('UNIT', 'FIRMWARE_VER'))\n")
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

-- what the prompt prints for a value (shell.show, from batlab.show)
local sample = { time = 12.5, step_time = 2.25, mode = 4, mode_name = "DISCHARGE", status = 0,
	status_names = {}, error = 0, error_names = {}, voltage = 3.71, current = -1.0, temp_c = 28.84,
	charge_ah = -0.1667, energy_wh = -0.62, vcc = 5.0, cell = 1, serial = 1000 }
t.is(shell.show(sample), "1000 CELL1 at 12.500 s: 3.7100 V, -1.0000 A, 28.8 degC, -0.166700 Ah, "
	.. "-0.620000 Wh, DISCHARGE (step 2.250 s, VCC 5.000 V)", "a sample: one line in its units, degC")
sample.temp_c, sample.error, sample.error_names = nil, 2, { "VOLTAGE_LIMIT_DCHG" }
sample.mode, sample.mode_name, sample.current = 6, "STOPPED", 0
t.is(shell.show(sample), "1000 CELL1 at 12.500 s: 3.7100 V, 0.0000 A, -- degC, -0.166700 Ah, "
	.. "-0.620000 Wh, STOPPED, ERROR VOLTAGE_LIMIT_DCHG (step 2.250 s, VCC 5.000 V)",
	"no thermistor reading: --; a set ERROR by name")
local p = batlab.Packet{ namespace = "CELL2", addr = "VOLTAGE", value = 30583 }
t.is(shell.show(p), "CELL2 VOLTAGE = 30583 (4.1999 V)", "a packet: its display line")
t.is(select("#", shell.show(1, nil, "x")), 3, "as many texts as values")
t.is(table.concat({ shell.show(1, true, "x", 2.5) }, "|"), "1|true|x|2.5", "plain values as print shows them")
t.is(shell.show({ 3, 4, b = "s", a = { p } }), '{ 3, 4, a = { <CELL2 VOLTAGE = 30583 (4.1999 V)> }, b = "s" }',
	"a table: its entries, the array first, then the keys sorted")
t.is(shell.show({}), "{}", "an empty table")
local cyc = { name = "loop" }
cyc.self = cyc
t.is(shell.show(cyc), '{ name = "loop", self = <cycle> }', "a cycle is cut")
t.is(shell.show({ { { { 1 } } } }), "{ { { {...} } } }", "deep tables are cut")
t.is(shell.show({ ["a key"] = 1, [true] = 2 }), '{ [true] = 2, ["a key"] = 1 }', "keys that are not names")
local wide = shell.show({ sample, sample })
t.like(wide, "^{\n  <1000 CELL1 at 12%.500 s: [^\n]*>,\n  <1000 CELL1 [^\n]*>,\n}$",
	"a long table: a line per entry, samples bracketed")
local many = {}
for i = 1, 50 do
	many[i] = i
end
t.like(shell.show(many), "40,\n  %.%.%. %(10 more%),\n}$", "a long list is cut after 40 entries")

t.done()
