-- batlab.replay - how a resumed cell's procedure gets back to where the
-- crash cut it short. Its coroutine died with the host, so the procedure
-- runs again from its start; the steps it had finished (batlab.steps)
-- return the summaries the journal kept for them at once, without
-- touching the device, so every decision the procedure took on them is
-- taken again the same way. The first step past those is the one the
-- crash cut short: it starts again from its start (the device is driven
-- again) and carries on from what it had done (its charge, energy and
-- time: batlab.resume works them out), under the same step number.
--
-- What cannot be replayed ends the cell "interrupted" instead of guessing:
-- a procedure that drives the channel itself (charge, discharge,
-- set_current, wait) before the step it was in, one that takes another
-- path than before (another step name), a step declared
-- `resumable = false`. Impedance measured outside a step is replayed from
-- the journal; limits, idle, stop, labels and records run again;
-- log lines are not written twice.
local M = {}

local Replay = {}
Replay.__index = Replay

-- new{ done = { {row =, sum =, v =}, ... }, open = { step, name, resumable,
--      carry = {...} } | nil, zs = { ohms, ... }, state = table | nil,
--      on_interrupt = function(message), on_live = function(message) }
function M.new(t)
	t.i, t.zi = 0, 0
	t.done, t.zs = t.done or {}, t.zs or {}
	return setmetatable(t, Replay)
end

-- The cell cannot go on: told, then raised (the task ends, its channel
-- made safe).
function Replay:stop(cell, why)
	cell.replay = nil
	if self.on_interrupt then
		self.on_interrupt(why)
	end
	error(why, 0)
end

-- Past what the journal holds: live from here.
function Replay:live(cell, name)
	cell.replay = nil
	if type(self.state) == "table" then
		cell.state = self.state -- what the procedure kept, as it was
	end
	local o = self.open
	if not o then
		if self.on_live then
			self.on_live(("the procedure goes on after step %d"):format(self.i - 1))
		end
		return
	end
	if name ~= o.name then
		self:stop(cell, ("the crash cut step %d (%s) short, but the procedure now starts %s: "
			.. "it took another path"):format(o.step, o.name, tostring(name)))
	end
	if not o.resumable then
		self:stop(cell, ("step %d (%s) was cut short by the crash and is declared not resumable")
			:format(o.step, o.name))
	end
	if cell.recording then
		cell.recording.resumed = o.carry
	end
	local k = o.carry
	if k.ended then
		return self:ended(cell, o, k)
	end
	if self.on_live then
		self.on_live(("%s (step %d) starts again, carrying over %.4f Ah, %.4f Wh, %.0f s%s"):format(
			o.name, o.step, k.ah, k.wh, k.time, k.note and (" (" .. k.note .. ")") or ""))
	end
end

-- The device ended the step while the host was gone (its voltage limit,
-- or a safety limit: the error bits say which): the step is over, with
-- what it had done; starting it again would charge a full cell.
function Replay:ended(cell, o, k)
	if self.on_live then
		self.on_live(("%s (step %d) ended while the host was gone (%s%s): %.4f Ah, %.4f Wh%s"):format(
			o.name, o.step, k.ended, k.errors and (" " .. table.concat(k.errors, ",")) or "", k.ah, k.wh,
			k.note and (" (" .. k.note .. ")") or ""))
	end
	local sum = { name = o.name, kind = k.sign > 0 and "charge" or "discharge", samples = 0,
		duration = k.time, ah = k.ah, wh = k.wh, avg_v = 0, avg_i = 0, impedance = {},
		end_reason = k.ended, end_sample = { voltage = k.v },
		safety = k.ended == "safety" and table.concat(k.errors or {}, ",") or nil,
		errors = k.ended == "safety" and k.errors or nil }
	cell:begin_step(o.name, { kind = sum.kind })
	cell:end_step(sum)
	return sum
end

-- step(cell, name) -> the summary of a step finished before the crash (or
-- that the device ended while the host was gone), or nil: the step runs
-- (live from now on). batlab.steps calls it.
function Replay:step(cell, name)
	self.i = self.i + 1
	local e = self.done[self.i]
	if not e then
		return self:live(cell, name)
	end
	if e.row.step_name ~= name then
		self:stop(cell, ("step %d was %s before the crash, but the procedure now starts %s: "
			.. "it took another path"):format(e.row.step or self.i, tostring(e.row.step_name), tostring(name)))
	end
	local sum = e.sum
	sum.end_sample = sum.end_sample or { voltage = e.v }
	sum.impedance = sum.impedance or {}
	if cell.recording then
		cell.recording:replayed(e.row, sum, e.missing) -- (missing: its steps.csv row, lost in the crash)
	end
	return sum
end

-- The procedure drives the channel itself (`what`): fine once everything
-- the journal holds was replayed and no step was cut short; otherwise
-- it cannot be replayed.
function Replay:raw(cell, what)
	if self.i >= #self.done and not self.open then
		self.i = self.i + 1
		self:live(cell, what)
		return
	end
	self:stop(cell, ("the procedure drives the channel itself (cell:%s) before the step the crash "
		.. "cut short: only steps of batlab.steps can be replayed"):format(what))
end

-- An impedance measured outside a step, as it was: ohms | nil (none left:
-- measure).
function Replay:impedance(cell)
	self.zi = self.zi + 1
	local z = self.zs[self.zi]
	if z then
		return z
	end
	self:raw(cell, "impedance")
	return nil
end

return M
