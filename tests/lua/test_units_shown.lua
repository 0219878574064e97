-- Units print as units: a temperature is "degC" (and "degF"), never a bare
-- "C", which is the unit of charge (coulombs) on the same lines; checked
-- wherever a command prints a temperature.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local batlab = require "batlab"
local progress = require "batlab.progress"

local function run(args)
	return cli.runner("")(args)
end

-- the live line of a run on a terminal (drawn as on one: a terminal is
-- faked for the module, its output caught)
local real_getenv, real_isatty, real_stdout = os.getenv, batlab.isatty, io.stdout
local shown = {}
os.getenv = function(k) return k == "TERM" and "xterm" or real_getenv(k) end
batlab.isatty = function() return true end
io.stdout = { write = function(self, ...) for _, s in ipairs({ ... }) do shown[#shown + 1] = s end end,
	flush = function() end }
local cells = { { name = "C1", step = "charge", cycle = 1,
	last = { voltage = 3.9, current = 1.0, temp_c = 28.8, charge_ah = 0.5 } } }
local p = progress.new({}, cells, 0)
p.draw(10)
os.getenv, batlab.isatty, io.stdout = real_getenv, real_isatty, real_stdout
local line = table.concat(shown)
t.ok(p.tty, "the progress believes it draws on a terminal")
t.like(line, "C1%s+charge%s+3%.900 V%s+1%.000 A%s+28%.8 degC%s+0%.5000 Ah", "the live line: 28.8 degC")
t.ok(not line:find("28.8 C", 1, true), "not 28.8 C")

-- the utility commands: every temperature they print
local out = run("measure --sim")
t.like(out, "CELL0: [^\n]* degC, [^\n]* degF, [^\n]* C, ", "measure: degC and degF, then coulombs")
out = run("setpoints 0 --sim")
t.like(out, "temperature limits [%d.]+ degC %([%d.]+ degF%) charge, [%d.]+ degC", "setpoints: degC")
out = run("read cell0 temperature --sim")
t.like(out, "^CELL0 TEMPERATURE = %d+ %([%d.]+ degC, [%d.]+ degF%)\n$", "read TEMPERATURE: degC")
out = run("read cell0 temp_limit_chg --sim")
t.like(out, "%(45%.00 degC, 113%.00 degF%)", "read TEMP_LIMIT_CHG: degC")

t.done()
