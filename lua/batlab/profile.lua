-- batlab.profile - current-versus-time playback (a drive cycle) as one
-- step (docs/characterisation.md):
--
--   local profile = require "batlab.profile"
--   local sum = profile.play(cell, {
--     points = { {0, -1.0}, {30, -2.5}, {60, 0.5}, {90, 0} },  -- s, A (+ charge)
--     -- or file = "drive.csv" (two numeric columns: time s, current A)
--     mode = "linear",          -- or "step" (hold each value until the next time)
--     n = 3,                    -- play it three times
--     stop = { v_below = 3.0 }, -- any batlab.conditions condition
--   })
--
-- The step ends with "profile end" after the last point (n times), or on
-- a condition, or when the device stops the channel on one of its limits.
-- The Batlab is a current source with one direction per mode: a change of
-- sign (or to 0 A, a rest) starts a new device step; a change of more than
-- 0.25 A too (the software regulation moves 0.25 A per report), smaller
-- changes move the setpoint within the step. The summary counts across
-- them: duration, ah and wh (throughput), net_ah (signed), segments.

local batlab = require "batlab"
local steps = require "batlab.steps"
local more = require "batlab.steps_more"
local C = require "batlab.conditions"
local step_watch = require "batlab.step_watch"

local core = steps._core
local M = {}

-- The points of a CSV text: the first two numbers of each line that has
-- them (a header and comment lines are skipped).
function M.parse_csv(text, where)
	local pts = {}
	local n = 0
	for line in (text .. "\n"):gmatch("([^\n]*)\n") do
		n = n + 1
		local a, b = line:match("^%s*([^,;%s]+)%s*[,;%s]%s*([^,;%s]+)")
		local t, i = tonumber(a), tonumber(b)
		if t and i then
			pts[#pts + 1] = { t, i }
		elseif line:match("^%s*[%d%-%.]") then
			error(("%s:%d: a profile line needs two numbers (time s, current A): %s"):format(where, n, line), 0)
		end
	end
	return pts
end

-- Points checked: at least two, times from 0 and increasing, currents
-- within the device's range.
local function checked(pts, where)
	if type(pts) ~= "table" or #pts < 2 then
		error(("profile %s: at least two points {time, current} are needed"):format(where), 0)
	end
	local prev
	for k, p in ipairs(pts) do
		local t, a = p[1] or p.t, p[2] or p.current
		if type(t) ~= "number" or type(a) ~= "number" then
			error(("profile %s: point %d is not {time, current}"):format(where, k), 0)
		end
		if (prev and t <= prev) or (not prev and t ~= 0) then
			error(("profile %s: point %d: times start at 0 and increase (got %g)"):format(where, k, t), 0)
		end
		if math.abs(a) > batlab.CURRENT_MAX then
			error(("profile %s: point %d: %g A is beyond the device's %g A"):format(where, k, a,
				batlab.CURRENT_MAX), 0)
		end
		prev = t
	end
	return pts
end

-- The current at time t of one pass. `from` (a table the playback keeps)
-- remembers the segment of the last lookup: at a time no earlier than its
-- start, the points before it are not gone through again (a long drive
-- cycle would otherwise cost its length at every report). The segment
-- found is the same: the first whose end is after t.
function M.at(pts, t, mode, from)
	local k0 = 2
	local h = from and from.k
	if h and h <= #pts + 1 and t >= (pts[h - 1][1] or pts[h - 1].t) then
		k0 = h
	end
	for k = k0, #pts do
		local t1, t2 = pts[k - 1][1] or pts[k - 1].t, pts[k][1] or pts[k].t
		if t < t2 then
			if from then
				from.k = k
			end
			local a1, a2 = pts[k - 1][2] or pts[k - 1].current, pts[k][2] or pts[k].current
			if mode == "step" then
				return a1
			end
			return a1 + (a2 - a1) * (t - t1) / (t2 - t1)
		end
	end
	if from then
		from.k = #pts + 1
	end
	local last = pts[#pts]
	return last[2] or last.current
end

local function kind_of(a)
	return math.abs(a) < 0.01 and "rest" or a > 0 and "charge" or "discharge"
end

-- Start a device step for current a.
local function start(cell, a)
	local k = kind_of(a)
	if k == "rest" then
		return cell:idle()
	end
	return cell[k](cell, math.abs(a))
end

-- The step's totals: what the finished device steps did plus this one.
local function totals(sum, base, s)
	sum.duration = base.t + s.step_time
	sum.ah = base.ah + math.abs(s.charge_ah or 0)
	sum.wh = base.wh + math.abs(s.energy_wh or 0)
	sum.net_ah = base.net + (s.charge_ah or 0)
end

local function load(opts)
	local where = opts.file or "points"
	local pts = opts.points
	if opts.file then
		local f, err = io.open(opts.file, "rb")
		if not f then
			error("profile: " .. tostring(err), 0)
		end
		pts = M.parse_csv(f:read("a"), opts.file)
		f:close()
	end
	if opts.mode and opts.mode ~= "linear" and opts.mode ~= "step" then
		error(("profile: mode must be \"linear\" or \"step\", got %s"):format(tostring(opts.mode)), 0)
	end
	return checked(pts, where)
end

-- Until when in the pass (s) the playback, driving `cur` A (signed) in
-- segment kind `seg` and at d s into the pass (the segment M.at last
-- found in `cursor`), changes nothing: while the profile's current stays
-- within 1/128 A of cur and of the same kind (a little inside, for
-- rounding), to the end of the segment at most. nil: it may act now.
local INSIDE = 1e-9
local function quiet_until(pts, d, mode, cursor, seg, cur)
	local k = cursor.k
	if not k or k < 2 or k > #pts then
		return nil
	end
	local p1, p2 = pts[k - 1], pts[k]
	local t1, t2, a1, a2 = p1[1] or p1.t, p2[1] or p2.t, p1[2] or p1.current, p2[2] or p2.current
	local lo, hi
	if seg == "rest" then
		lo, hi = -0.01 + INSIDE, 0.01 - INSIDE
	elseif seg == "charge" then
		lo, hi = math.max(cur - 1 / 128, 0.01) + INSIDE, cur + 1 / 128 - INSIDE
	else
		lo, hi = cur - 1 / 128 + INSIDE, math.min(cur + 1 / 128, -0.01) - INSIDE
	end
	local want = mode == "step" and a1 or a1 + (a2 - a1) * (d - t1) / (t2 - t1)
	if not (want > lo and want < hi) then
		return nil
	end
	if mode == "step" or a2 == a1 then
		return t2
	end
	local edge = a2 > a1 and hi or lo
	return math.min(t1 + (edge - a1) * (t2 - t1) / (a2 - a1), t2)
end

-- The watch spec of the playback's next report (batlab.step_watch), or
-- nil to look at it. The profile's duration, charge and energy run on
-- across its device steps from `base`: the watch takes base as what the
-- step carries. It wakes where the current could change (quiet_until),
-- at the profile's end, and where a stop condition could fire. Not
-- when that is less than two reports away (a profile that changes at
-- every report: the watch would cost more than it saves).
local function watch_spec(cell, w, sum, base, seg, cur)
	local d = sum.duration % w.period
	local q = quiet_until(w.pts, d, w.mode, w.cursor, seg, cur)
	if not q or q - d < 2 * sum.duration / sum.samples then
		return nil
	end
	w.st.sign = seg == "charge" and 1 or -1
	sum.carry = { time = base.t, ah = base.ah, wh = base.wh }
	local spec = step_watch.spec(cell, seg == "rest" and "rest" or seg, w.opts, w.st, sum, steps)
	sum.carry = nil
	if spec then
		spec.dur_at = math.min(spec.dur_at or math.huge, (sum.duration - d) + q - step_watch.EARLY, w.period * w.n)
	end
	return spec
end

-- The playback loop; returns the finished summary.
local function playback(cell, name, opts, pts)
	local sum = core.new_summary(name, "profile")
	local check = more._check(cell, opts.stop)
	local period, n = pts[#pts][1] or pts[#pts].t, opts.n or 1
	local base = { t = 0, ah = 0, wh = 0, net = 0 }
	local a = M.at(pts, 0, opts.mode)
	local ok, err, code = start(cell, a)
	if not ok then
		return core.finish(sum, "safety", { safety = err, errors = { code } })
	end
	local seg, segments, last = kind_of(a), 1, nil
	local cursor = {}
	local w = { pts = pts, mode = opts.mode, cursor = cursor, period = period, n = n,
		opts = { guard = opts.guard, on_sample = opts.on_sample, ["until"] = check },
		st = { sign = -1, pulse_on = true, trickle_on = false, base_current = 0 } }
	local spec
	while true do
		local s, done = core.observe(cell, seg == "rest" and "rest" or seg, sum, opts, spec)
		if not s then
			if last then
				totals(done, base, done.end_sample or last)
			end
			done.segments = segments
			return done
		end
		last = s
		totals(sum, base, s)
		local fired = check(s, sum) or (sum.duration >= period * n and "profile end")
		if fired then
			sum.segments = segments
			return more._end_on(sum, fired)
		end
		local want = M.at(pts, sum.duration % period, opts.mode, cursor)
		local cur = seg == "rest" and 0 or (seg == "charge" and 1 or -1) * (sum._amps or math.abs(a))
		if kind_of(want) ~= seg or math.abs(want - cur) > 0.25 then
			base = { t = sum.duration, ah = sum.ah, wh = sum.wh, net = sum.net_ah }
			ok, err, code = start(cell, want)
			if not ok then
				cell:stop()
				return core.finish(sum, "safety", { safety = err, errors = { code }, segments = segments })
			end
			seg, segments, sum._amps = kind_of(want), segments + 1, math.abs(want)
		elseif seg ~= "rest" and math.abs(want - cur) >= 1 / 128 then
			sum._amps = math.abs(want)
			local failed = core.set_current(cell, sum, sum._amps)
			if failed then
				return failed
			end
		end
		spec = watch_spec(cell, w, sum, base,
			seg, seg == "rest" and 0 or (seg == "charge" and 1 or -1) * (sum._amps or math.abs(a)))
	end
end

-- play(cell, opts): opts.points or opts.file, mode, n, stop, name, and
-- batlab.steps' common options (guard, on_sample, report_timeout, ...).
function M.play(cell, opts)
	if type(opts) ~= "table" then
		error("profile.play: options table expected", 2)
	end
	local pts = load(opts)
	local name = opts.name or "PROFILE"
	local sum = core.stepped(cell, name, function()
		return playback(cell, name, opts, pts)
	end, { resumable = false }, "profile")
	sum._amps = nil
	sum.end_condition = sum.end_condition or sum.end_reason
	return sum
end

M.compile = C.compile
return M
