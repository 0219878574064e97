-- A step of batlab.steps resumes its task only for the reports it has to
-- look at (ch:watch); the quiet ones are accounted in C. That must change
-- nothing a run records: the same procedure, run once as it is (watched)
-- and once with an on_sample hook on every step (which makes each step
-- look at every report in Lua), gives the same steps.csv byte for byte
-- and the same summaries to the last bit (samples, sums, temperatures).
-- The procedure uses every threshold a watch holds: voltage ends, trickle
-- engagement, pulses, the constant-voltage taper, impedance every N s, Ah,
-- Wh, time and temperature limits, the end current after a settle time,
-- and the default guards; a rest and a carried-over constant-voltage hold;
-- and batlab.steps_more's steps ending on conditions that are thresholds.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")

local tmp = cli.tmpdir()

local PROC = [[
local steps = require "batlab.steps"
local more = require "batlab.steps_more"
local C = require "batlab.conditions"
return {
  name = "watch",
  params = { look = false },
  run = function(cell, p)
    local guard = steps.default_guards(function(msg) cell:log(msg) end)
    local function o(t)
      t.guard = t.guard or guard
      if p.look then t.on_sample = function() end end
      return t
    end
    local got = {}
    local function keep(sum)
      local d = sum.end_reason .. " " .. sum.samples
      for _, k in ipairs { "duration", "ah", "wh", "avg_v", "avg_i", "temp_start", "temp_end", "temp_max" } do
        d = d .. (" %s=%.17g"):format(k, sum[k] or -1)
      end
      got[#got + 1] = d
      return sum
    end
    keep(steps.discharge(cell, o { current = 2.0, until_v = 3.6, max_time = 3000 }))
    keep(steps.rest(cell, 75, o {}))
    keep(steps.charge(cell, o { current = 2.0, until_v = 4.15, impedance_every = 200,
      trickle = { engage_v = 4.0, current = 0.3 } }))
    keep(steps.discharge(cell, o { current = 1.5, until_v = 2.9, max_ah = 0.35,
      pulse = { on = 37, off = 11, off_current = 0.2 } }))
    keep(steps.discharge(cell, o { current = 1.0, until_v = 3.0, max_temp_c = cell.last.temp_c + 0.3 }))
    keep(steps.charge(cell, o { current = 1.2, until_v = 4.2, until_i = 1.3, settle = 40 }))
    keep(steps.charge(cell, o { current = 1.8, until_v = 4.2, max_wh = 1.9,
      cv_approach = { v = 4.2, step = 0.0625, sensitivity = 1 } }))
    keep(steps.discharge(cell, o { current = 1.0, until_v = 3.9 }))
    keep(steps.charge(cell, o { current = 1.5, until_v = 4.1, cv = { until_i = 0.4 } }))
    -- batlab.steps_more with conditions that are thresholds
    keep(more.discharge(cell, o { current = 1.0, stop = { v_below = 3.0, ah = 0.3 } }))
    keep(more.rest(cell, 500, o { stop = C.any { C.time(150), C.voltage_above(4.5) } }))
    keep(more.charge(cell, o { current = 1.0, stop = C.all { C.time(100), C.current_above(0.5) } }))
    keep(more.discharge(cell, o { current = 1.5, stop = { temp_rise = 0.1, time = 1800 } }))
    cell:record { watch = table.concat(got, "\n") }
    return true
  end,
}
]]
cli.write(tmp .. "/watch.lua", PROC)

local function run(tag, look)
	local code = cli.batlab(("run %s/watch.lua --sim --seed 5 --quiet --no-report --set look=%s --out %s/%s A B")
		:format(tmp, look, tmp, tag))
	t.is(code, 0, tag .. ": the procedure runs")
end
run("watched", "false")
run("looked", "true")

local w_steps, l_steps = cli.read(tmp .. "/watched/steps.csv"), cli.read(tmp .. "/looked/steps.csv")
t.ok(w_steps and #w_steps > 500, "steps.csv written")
t.is(w_steps, l_steps, "steps.csv is byte-identical whether the steps watch or look at every report")
for _, cell in ipairs { "A", "B" } do
	t.is(cli.read(tmp .. "/watched/cells/" .. cell .. ".csv"), cli.read(tmp .. "/looked/cells/" .. cell .. ".csv"),
		cell .. ": the time series is byte-identical")
end

local json = require "cjson"
local function summaries(tag)
	local s = json.decode(cli.read(tmp .. "/" .. tag .. "/summary.json"))
	local out = {}
	for _, c in ipairs(s.cells) do
		out[c.name] = c.records and c.records.watch
	end
	return out
end
local ws, ls = summaries("watched"), summaries("looked")
for _, cell in ipairs { "A", "B" } do
	t.ok(ws[cell] and select(2, ws[cell]:gsub("\n", "")) == 12, cell .. ": thirteen step summaries kept")
	t.is(ws[cell], ls[cell], cell .. ": every summary is the same to the last bit")
end

-- The ends the procedure meant to reach were reached (the thresholds
-- were crossed, not missed).
local reasons = {}
for line in (ws.A or ""):gmatch("[^\n]+") do
	reasons[#reasons + 1] = line:match("^(%S+)")
end
t.is(table.concat(reasons, ","), "voltage,time,voltage,charge,temperature,current,energy,voltage,voltage,charge,time,time+current,temp_rise",
	"each step ended on the condition it was built to reach")
t.done()
