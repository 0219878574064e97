-- batlab.zero_amp - ZERO_AMP_THRESH for the steps of batlab.steps: the
-- guard that lowers it and puts it back, the smallest current a step must
-- measure, and the check that refuses one the device cannot count (see
-- docs/procedures.md).
local batlab = require "batlab"

local M = {}

-- Below ZERO_AMP_THRESH (0.25 A from the factory, kept in the device's
-- EEPROM) the device reads 0 A and its counter counts nothing: a hold
-- until 0.1 A would never see its end, a C/10 current would count no
-- charge. A step that needs such currents lowers it for its duration.

M.LOW = 0.05     -- A: what the step lowers it to (Lexcelon's CV value)
M.FLOOR = 0.01   -- A: a step that needs less is refused

local function raw_amps(raw)
	return raw * 4.096 / 32768
end

-- The register is one per device, for its four channels: the cells that
-- lowered it share it (device -> { n = guards open, was, set } in raw
-- counts), and only the last to close puts back what it was. Each cell
-- putting back what it had read would raise it under another cell's
-- small current, which the device then reads as 0 A.
local shared = setmetatable({}, { __mode = "k" })

-- zero_amp_guard(cell [, amps]) -> guard | nil, err. Sets ZERO_AMP_THRESH
-- to amps (default ZERO_AMP_LOW) unless another guard on the device set
-- it lower; closing the guard (a to-be-closed variable, or guard:close())
-- puts back what it was once no other guard on the device is open.
-- guard.was and guard.set are the two thresholds in A.
function M.guard(cell, amps)
	local dev = cell.device
	local s = shared[dev]
	if not s then
		local old, err = dev:read_raw(batlab.UNIT, batlab.ZERO_AMP_THRESH)
		if not old then
			return nil, err
		end
		s = { n = 0, was = old, set = old }
	end
	local raw = batlab.to_raw(batlab.UNIT, batlab.ZERO_AMP_THRESH, amps or M.LOW)
	if raw < s.set then
		local ok, werr = dev:write_verify(batlab.UNIT, batlab.ZERO_AMP_THRESH, raw)
		if not ok then
			return nil, werr
		end
		s.set = raw
	end
	shared[dev], s.n = s, s.n + 1
	local g = { was = raw_amps(s.was), set = raw_amps(s.set) }
	function g.close()
		if g.closed then
			return
		end
		g.closed, s.n = true, s.n - 1
		if s.n > 0 then
			return
		end
		shared[dev] = nil
		-- A task cancelled (Ctrl-C, a run ending) closes this while its
		-- channels were already made safe: it cannot wait for the device
		-- any more, and the next connect reads the threshold again.
		local okc, back, berr = pcall(dev.write_verify, dev, batlab.UNIT, batlab.ZERO_AMP_THRESH, s.was)
		if not okc then
			back, berr = nil, tostring(back):match("[^\n]*")
		end
		if not back then
			cell:log(("ZERO_AMP_THRESH could not be put back to %.3f A: %s"):format(g.was, tostring(berr)))
		end
	end
	return setmetatable(g, { __close = g.close })
end

-- The smallest current a step must measure (A), and what it is for.
function M.smallest(opts, kind)
	local need, what
	local function consider(a, name)
		if type(a) == "number" and a > 0 and (not need or a < need) then
			need, what = a, name
		end
	end
	if kind == "cv_hold" then
		consider(opts.until_i or 0.05, "until_i")
		return need, what
	end
	consider(opts.current, "current")
	consider(opts.until_i, "until_i")
	consider(opts.trickle and opts.trickle.current, "trickle.current")
	consider(opts.pulse and opts.pulse.off_current, "pulse.off_current")
	consider(opts.cv_approach and opts.cv_approach.step, "cv_approach.step")
	if opts.cv then
		consider(opts.cv.until_i or 0.05, "cv.until_i")
	end
	return need, what
end

-- Refuse (at the caller of steps.<fn>) a current the device cannot count.
function M.check_smallest(fn, opts)
	local need, what = M.smallest(opts, fn)
	if need and need < M.FLOOR then
		error(("steps.%s: %s = %g A is below the smallest current the device counts (%g A)")
			:format(fn, what, need, M.FLOOR), 3)
	end
end

-- Lower ZERO_AMP_THRESH for a step whose smallest current is within 20 %
-- of it: guard (or nil when not needed), or nil and an error.
function M.for_step(cell, name, opts, kind)
	local need, what = M.smallest(opts, kind)
	if not need or not cell.device then
		return false
	end
	local s, raw, err = shared[cell.device], nil, nil
	if s then
		raw = s.set
	else
		raw, err = cell.device:read_raw(batlab.UNIT, batlab.ZERO_AMP_THRESH)
	end
	if not raw then
		return nil, err
	end
	if need >= 1.2 * raw_amps(raw) then
		return false
	end
	local g, gerr = M.guard(cell, math.min(M.LOW, need / 2))
	if g then
		cell:log(("%s: ZERO_AMP_THRESH %.4f A for the step (%s %g A), was %.4f A")
			:format(name, g.set, what, need, g.was))
	end
	return g, gerr
end

return M
