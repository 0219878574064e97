-- The characterisation scripts' steps are watched in C (ch:watch): a
-- rest ending on dV/dt over a window (batlab.trail), -dV from a step's
-- peak, the last voltages of a step (tail), every report's numbers
-- captured (batlab.series), a CCCV charge's CC phase and CV band, constant
-- power and resistance. Their task is resumed only for the
-- reports that can end or change the step, and that must change nothing:
-- the same procedure run watched and once with an on_sample hook on every
-- step (which makes each step look at every report in Lua) writes the
-- same files and the same summaries to the last bit; a GITT-style relax
-- resumes its task a few times for a couple of hundred reports, each a
-- row, and ends on the very report where dV/dt, evaluated as the Lua
-- condition always did (reference below), first falls below the limit.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")

local tmp = cli.tmpdir()

local PROC = [[
local batlab = require "batlab"
local more = require "batlab.steps_more"
local C = require "batlab.conditions"
local ch = require "batlab.characterise"
local profile = require "batlab.profile"
return {
  name = "watchcond",
  params = { look = false },
  run = function(cell, p)
    -- how many reports each step's task was resumed for
    local wakes = 0
    local wait, watch = cell.wait, cell.watch
    cell.wait = function(self, ...) wakes = wakes + 1 return wait(self, ...) end
    cell.watch = function(self, ...) wakes = wakes + 1 return watch(self, ...) end
    local function o(t)
      if p.look then t.on_sample = function() end end
      return t
    end
    local got = {}
    local function keep(sum, extra)
      local d = ("%s|%s|%d wakes=%d"):format(sum.name, sum.end_reason, sum.samples, wakes)
      for _, k in ipairs { "duration", "ah", "wh", "avg_v", "avg_i", "temp_start", "temp_end", "temp_max" } do
        d = d .. (" %s=%.17g"):format(k, sum[k] or -1)
      end
      for _, v in ipairs(sum.tail or {}) do
        d = d .. (" %.17g"):format(v)
      end
      got[#got + 1] = d .. (extra or "")
      wakes = 0
      return sum
    end
    local function rows(cap)
      local out = {}
      for _, r in ipairs(cap:rows()) do
        out[#out + 1] = ("%.17g/%.17g"):format(r[1], r[2])
      end
      return " rows " .. #out .. " " .. table.concat(out, ",")
    end
    cell:limits { vmax = 4.25, vmin = 2.8, imax = 4.0, tmax_c = 55 }
    keep(more.cccv(cell, o { current = 1.25, v = 4.2, until_i = 0.125, max_time = 6 * 3600, name = "FULL" }))
    keep(more.rest(cell, 600, o { name = "REST", tail = 5 }))
    local cap = batlab.series { "step_time", "voltage" }
    keep(more.discharge(cell, o { current = 2.0, max_time = 10, name = "PULSE", capture = cap })
      , rows(cap))
    -- a GITT pulse and relax: every report captured for the reference below
    local gp = keep(more.discharge(cell, o { current = 0.5, max_time = 600, name = "GPULSE",
      stop = { v_below = 3.0 } }))
    local relax = batlab.series { "step_time", "voltage" }
    local r = keep(more.rest(cell, 3600, o { name = "RELAX", tail = 5, capture = relax,
      stop = C.dvdt_below(3e-6, 120, "relaxed") }))
    -- the Lua evaluation the condition had (a table of {t, V}): the first
    -- report where it fires
    local hist, fired = {}, nil
    for k, row in ipairs(relax:rows()) do
      local tt, v = row[1], row[2]
      hist[#hist + 1] = { tt, v }
      while #hist > 2 and tt - hist[2][1] >= 120 do
        table.remove(hist, 1)
      end
      local first = hist[1]
      if tt - first[1] >= 120 and math.abs(v - first[2]) / (tt - first[1]) < 3e-6 then
        fired = k
        break
      end
    end
    -- dV/dt inside `all` and a group's `during`, with a time limit
    -- -dV from the step's peak (a discharge falls from its start)
    keep(more.discharge(cell, o { current = 1.0, max_time = 3600, name = "MDV",
      stop = C.minus_dv(0.02, "dropped", 30) }))
    -- regulated steps: the current changes and the error statistics
    local function reg(sum)
      local g = sum.regulation or {}
      return (" reg %s %.17g %.17g %.17g"):format(tostring(g.samples), g.mean_abs_err or -1, g.rms_err or -1,
        g.max_abs_err or -1)
    end
    local pw = more.power(cell, o { watts = 3, stop = { time = 900, v_below = 3.0 }, name = "POWER" })
    keep(pw, reg(pw))
    local rs = more.resistance(cell, o { ohms = 6, stop = { time = 900 }, name = "RES" })
    keep(rs, reg(rs))
    -- profile playback: held levels, then ramps (the watch wakes where the
    -- current would move 1/128 A), across rests and changes of direction
    local pts = { { 0, -1.0 }, { 300, -2.0 }, { 600, 0 }, { 900, 1.0 }, { 1200, -1.5 }, { 1500, -1.5 } }
    for _, mode in ipairs { "step", "linear" } do
      local pr = profile.play(cell, o { points = pts, mode = mode, stop = { v_below = 3.0 }, name = "P" .. mode })
      keep(pr, (" net=%.17g segments=%d"):format(pr.net_ah, pr.segments))
    end
    more.group(cell, { n = 1, during = C.all { C.dvdt_below(2e-5, 60), C.time(200) } }, function()
      local d = keep(more.discharge(cell, o { current = 1.0, max_time = 120, name = "G DIS" }))
      return { d, keep(more.rest(cell, 1800, o { name = "G REST" })) }
    end)
    cell:record { watch = table.concat(got, "\n"), relax_rows = #relax, relax_fired = fired,
      relax_reason = r.end_reason, relax_samples = r.samples,
      first_v = gp.first_sample and gp.first_sample.voltage }
    return true
  end,
}
]]
cli.write(tmp .. "/watchcond.lua", PROC)

local function run(tag, look)
	local code = cli.batlab(("run %s/watchcond.lua --sim --seed 7 --quiet --no-report --set look=%s --out %s/%s A B")
		:format(tmp, look, tmp, tag))
	t.is(code, 0, tag .. ": the procedure runs")
end
run("watched", "false")
run("looked", "true")

t.is(cli.read(tmp .. "/watched/steps.csv"), cli.read(tmp .. "/looked/steps.csv"),
	"steps.csv is byte-identical whether the steps watch or look at every report")
for _, cell in ipairs { "A", "B" } do
	t.is(cli.read(tmp .. "/watched/cells/" .. cell .. ".csv"), cli.read(tmp .. "/looked/cells/" .. cell .. ".csv"),
		cell .. ": the time series is byte-identical")
end

local json = require "cjson"
local function records(tag)
	local s = json.decode(cli.read(tmp .. "/" .. tag .. "/summary.json"))
	local out = {}
	for _, c in ipairs(s.cells) do
		out[c.name] = c.records
	end
	return out
end
local W, L = records("watched"), records("looked")

-- the summaries without the wake counts, which differ on purpose
local function bare(s)
	return (s or ""):gsub(" wakes=%d+", "")
end

-- wake counts and samples of each step, by name
local function wakes(s)
	local out = {}
	for line in (s or ""):gmatch("[^\n]+") do
		local name, reason, n, w = line:match("^(.-)|(.-)|(%d+) wakes=(%d+)")
		out[name] = { reason = reason, samples = tonumber(n), wakes = tonumber(w) }
	end
	return out
end

-- the RELAX step's rows in a time series (the Step Name column)
local function step_rows(path, name)
	local text = cli.read(path) or ""
	local header = text:match("^[^\n]*")
	local col
	local k = 0
	for field in header:gmatch("[^,]+") do
		k = k + 1
		if field == "Step Name" then
			col = k
		end
	end
	local n = 0
	for line in text:gmatch("\n([^\n]+)") do
		local f, i = nil, 0
		for field in (line .. ","):gmatch("([^,]*),") do
			i = i + 1
			if i == col then
				f = field
				break
			end
		end
		if f == name then
			n = n + 1
		end
	end
	return n
end

for _, cell in ipairs { "A", "B" } do
	local w, l = W[cell] or {}, L[cell] or {}
	t.ok(w.watch and select(2, w.watch:gsub("\n", "")) == 11, cell .. ": twelve step summaries kept")
	t.is(bare(w.watch), bare(l.watch), cell .. ": every summary (tail and captured rows too) is the same to the last bit")
	local ww, lw = wakes(w.watch), wakes(l.watch)
	local relax = ww.RELAX or {}
	t.is(relax.reason, "relaxed", cell .. ": the relax ended on dV/dt")
	t.ok((relax.samples or 0) > 150, cell .. ": after over 150 reports (" .. tostring(relax.samples) .. ")")
	t.ok((relax.wakes or 99) <= 3, cell .. ": its task resumed " .. tostring(relax.wakes) .. " times for them")
	t.is(lw.RELAX and lw.RELAX.wakes, relax.samples, cell .. ": looking at every report resumes it for each")
	t.is(w.relax_rows, relax.samples, cell .. ": every report captured")
	t.is(step_rows(tmp .. "/watched/cells/" .. cell .. ".csv", "RELAX"), relax.samples,
		cell .. ": every report of the relax is a row of the time series")
	t.is(w.relax_fired, w.relax_rows, cell .. ": it ended on the first report where the Lua evaluation of dV/dt fires")
	local full = ww.FULL or {}
	t.ok(full.wakes and full.samples and full.wakes * 3 < full.samples,
		cell .. ": the CCCV charge resumed its task for fewer than a third of its reports ("
		.. tostring(full.wakes) .. " of " .. tostring(full.samples) .. ")")
	t.ok((ww.REST or {}).wakes == 2 and (ww.PULSE or {}).wakes == 2,
		cell .. ": a rest keeping its last voltages and a captured pulse resume their task twice")
	t.is((ww["G REST"] or {}).reason, "dvdt+time", cell .. ": a group's dV/dt and time together end its rest")
	t.is((ww.GPULSE or {}).wakes, 2, cell .. ": a GITT pulse resumes its task twice")
	local mdv = ww.MDV or {}
	t.ok(mdv.reason == "dropped" and mdv.samples > 100 and mdv.wakes <= 3,
		("%s: a -dV discharge ended on it after %s reports, its task resumed %s times"):format(cell,
			tostring(mdv.samples), tostring(mdv.wakes)))
	for _, name in ipairs { "POWER", "RES" } do
		local x = ww[name] or {}
		t.ok(x.samples and x.samples > 800 and x.wakes * 10 < x.samples, ("%s: a %s step resumed its task for "
			.. "fewer than a tenth of its reports (%s of %s)"):format(cell, name, tostring(x.wakes), tostring(x.samples)))
	end
	t.ok(w.watch and w.watch:match("POWER|time|.- reg %d+ %d"), cell .. ": the power step's regulation error kept")
	local ps, pl = ww.Pstep or {}, ww.Plinear or {}
	t.ok(ps.reason == "profile end" and ps.samples > 1400 and ps.wakes <= 12,
		("%s: a profile of held levels resumed its task %s times for %s reports"):format(cell, tostring(ps.wakes),
			tostring(ps.samples)))
	t.ok(pl.reason == "profile end" and pl.wakes * 10 < pl.samples * 6,
		("%s: a profile of ramps resumed it %s times for %s reports (1/128 A every 2.3 s)"):format(cell, tostring(pl.wakes), tostring(pl.samples)))
	t.ok(type(w.first_v) == "number" and w.first_v == l.first_v, cell .. ": its first report kept (first_sample)")
	t.is((ww.FULL or {}).reason, "current", cell .. ": the CCCV charge ended on its CV current")
end

-- batlab.trail against the evaluator it replaced, on random reports (times
-- with gaps, windows of 0 to 30 s, spans equal to the window), pair for pair; its count form; and the
-- errors of the new pieces.
cli.write(tmp .. "/trail.lua", [[
local batlab = require "batlab"
local seed = 12345
local function rnd()
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed / 2147483648
end
local bad = 0
for _, window in ipairs { 0, 0.5, 3, 30 } do
  local tr, hist, t = batlab.trail { window = window }, {}, 0
  for _ = 1, 2000 do
    -- steps of 1/8 s (exact): spans equal to the window happen
    t = t + 0.125 * (1 + math.floor((rnd() < 0.1 and 40 or 8) * rnd()))
    local v = 3.7 + 0.01 * rnd()
    hist[#hist + 1] = { t, v }
    while #hist > 2 and t - hist[2][1] >= window do
      table.remove(hist, 1)
    end
    local first, want = hist[1], nil
    if not (t - first[1] < window) then
      want = math.abs(v - first[2]) / (t - first[1])
    end
    local got = tr:push(t, v)
    if #tr ~= #hist or not (got == want or (got ~= got and want ~= want)) then
      bad = bad + 1
    end
  end
end
print("window mismatches " .. bad)
local k = batlab.trail { keep = 3 }
for i = 1, 5 do k:push(i, i / 10) end
print("keep " .. table.concat(k:values(), ","))
print(select(2, pcall(batlab.trail, {})))
print(select(2, pcall(batlab.series, { "voltage", "bogus" })))
print(select(2, pcall(require("batlab.step_options").check, "rest", { tail = 0.5 })))
]])
local code, out = cli.batlab("lua " .. tmp .. "/trail.lua")
out = out or ""
t.is(code, 0, "the trail script runs")
t.ok(out:find("window mismatches 0", 1, true), "a window trail gives the Lua evaluator's slope, pair for pair")
t.ok(out:find("keep 0.3,0.4,0.5", 1, true), "a keep trail holds the last voltages, oldest first")
t.ok(out:find("give window = seconds >= 0 or keep = a count >= 1", 1, true), "a trail of neither says what it takes")
t.ok(out:find("series: field 2 is 'bogus', not one of time, step_time, voltage", 1, true),
	"an unknown series field is named, with the fields there are")
t.ok(out:find("option tail to steps.rest must be a whole number of reports", 1, true), "a bad tail is refused")
t.done()
