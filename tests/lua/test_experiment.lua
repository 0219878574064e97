-- batlab.experiment: PyBaMM's experiment strings parsed (C-rates, A, mA,
-- W, Ohm; until V, A, C-rate; for durations; "or until"; repeats * N and
-- tuples in a file), bad strings refused naming the string and the word;
-- an experiment gives the same steps and traces as the equivalent Lua
-- steps on the virtual Batlab; `batlab run --experiment FILE` end to end,
-- and a bad file refused with exit 2 before anything runs.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local batlab = require "batlab"
local cellmod = require "batlab.cell"
local experiment = require "batlab.experiment"
local more = require "batlab.steps_more"
local steps = require "batlab.steps"
local csv = require "batlab.csv"

local cap = { capacity_ah = 2.5 }
local st = experiment.parse_step("Discharge at 1C until 3.0 V", cap)
t.ok(st.op == "discharge" and st.kind == "crate" and st.value == 1 and st.until_v == 3.0, "Discharge at 1C until 3.0 V")
st = experiment.parse_step("Charge at C/2 for 2 hours or until 4.2 V", cap)
t.ok(st.op == "charge" and st.value == 0.5 and st.max_time == 7200 and st.until_v == 4.2, "C/2 for 2 hours or until 4.2 V")
st = experiment.parse_step("Hold at 4.2 V until C/20", cap)
t.ok(st.op == "hold" and st.value == 4.2 and math.abs(st.until_i - 0.125) < 1e-12, "Hold at 4.2 V until C/20 (0.125 A)")
st = experiment.parse_step("Hold at 4200 mV until 50 mA", cap)
t.ok(math.abs(st.value - 4.2) < 1e-12 and math.abs(st.until_i - 0.05) < 1e-12, "mV and mA")
st = experiment.parse_step("Discharge at 2 W for 10 minutes", cap)
t.ok(st.kind == "power" and st.value == 2 and st.max_time == 600, "W, minutes")
st = experiment.parse_step("discharge at 4 Ohm until 3.3V", cap)
t.ok(st.kind == "resistance" and st.value == 4 and st.until_v == 3.3, "Ohm, any case, 3.3V without a space")
st = experiment.parse_step("Rest for 1 hour")
t.ok(st.op == "rest" and st.seconds == 3600, "Rest for 1 hour")

local function refused(str, want, opts)
	local ok, err = pcall(experiment.parse_step, str, opts or cap)
	t.ok(not ok and err:find(want, 1, true), ("'%s' refused: %s"):format(str, tostring(err)))
end
refused("Discharge at 1Q until 3 V", "'Discharge at 1Q until 3 V': could not parse '1Q'")
refused("Discharge at 1C until 3 Volts", "could not parse '3 Volts'")
refused("Rest for 1 fortnight", "could not parse '1 fortnight'")
refused("Sprint at 1C until 3 V", "expected Charge, Discharge, Hold or Rest, got 'Sprint'")
refused("Discharge at 1C", "no end (for DURATION or until LIMIT)")
refused("Hold at 1 A until 3 V", "Hold takes a voltage, not '1 A'")
refused("Discharge at 1C until 3 V", "a C-rate needs capacity_ah", {})

local list = experiment.parse([[
# comment
Discharge at 1C until 3.3 V
"Rest for 10 minutes" * 2
("Charge at 0.5 A until 4.1 V",
 "Hold at 4.1 V until C/20") * 3
]], "x.txt")
t.is(#list, 3, "a file: steps, a repeated step, a tuple")
t.is(list[2], "Rest for 10 minutes * 2", "a quoted step repeated")
t.ok(list[3].times == 3 and list[3][2] == "Hold at 4.1 V until C/20", "a tuple over lines, * 3")

-- ---- the same traces as the Lua steps ----------------------------------------------------

local pool = assert(batlab.open { sim = true, seed = 9 })
local dev = pool:active()
local function on(n, fn)
	local cell = cellmod.new(dev:channel(n), { name = "c" .. n, log_sink = function() end })
	local task = batlab.spawn_for(dev:channel(n), fn, cell)
	assert(batlab.run())
	assert(task.status == "done", tostring(task.error))
	return table.unpack(task.results)
end
local limits = { vmax = 4.15, vmin = 2.6, imax = 4.0, tmax_c = 60 }
local a = on(0, function(c)
	c:limits(limits)
	return experiment.run(c, { "Discharge at 1C until 3.4 V", "Rest for 10 minutes",
		"Charge at 1 A until 4.1 V", "Hold at 4.1 V until C/20", "Discharge at 3 W for 20 minutes" }, cap)
end)
local b = on(1, function(c)
	c:limits(limits)
	return {
		more.discharge(c, { current = 2.5, stop = { v_below = 3.4 } }),
		more.rest(c, 600),
		more.charge(c, { current = 1.0, stop = { v_above = 4.1 } }),
		steps.cv_hold(c, { v = 4.1, until_i = 0.125, current = 1.0 }),
		more.power(c, { watts = 3, stop = { time = 1200 } }),
	}
end)
t.is(#a, 5, "five steps run")
for k = 1, 5 do
	t.is(a[k].end_reason, b[k].end_reason, ("step %d ends the same way (%s)"):format(k, b[k].end_reason))
	t.ok(math.abs(a[k].duration - b[k].duration) <= math.max(0.02 * b[k].duration, 2)
		and math.abs(a[k].ah - b[k].ah) <= math.max(0.01 * b[k].ah, 1e-3),
		("step %d: %.0f s %.4f Ah, Lua %.0f s %.4f Ah"):format(k, a[k].duration, a[k].ah, b[k].duration, b[k].ah))
end

-- ---- batlab run --experiment ---------------------------------------------------------

local tmp = cli.tmpdir()
local code, out, err = cli.batlab(("run --experiment docs/examples/experiment.txt --sim --quiet --out %s/r --cell 0=A1")
	:format(tmp))
t.is(code, 0, "run --experiment exits 0 " .. err)
t.like(out, "PASS%s+12 steps", "twelve steps: two, then a tuple of five twice")
local rows = csv.parse(cli.read(tmp .. "/r/steps.csv"))
t.is(#rows, 13, "each a row of steps.csv")
t.is(rows[5][7], "Hold at 4.1 V until C/20", "named by its string")
t.is(rows[5][11], "current", "the hold ended on its current")
t.is(rows[13][4], "2", "the second repeat of the tuple is cycle 2")
cli.write(tmp .. "/bad.txt", "Discharge at 1C until 3.3 V\nRest for 10 minuets\n")
code, out, err = cli.batlab(("run --experiment %s/bad.txt --sim --out %s/b --cell 0=A1"):format(tmp, tmp))
t.is(code, 2, "a bad experiment file: exit 2")
t.like(err, "'Rest for 10 minuets': could not parse '10 minuets'", "naming the string and the words")
t.is(cli.read(tmp .. "/b/run.json"), nil, "before anything ran")

t.done()
