-- batlab.cell - the object a procedure's run(cell, params) gets: one
-- channel of one Batlab, with a name, a record of results and a log.
--
--   local cell = require("batlab.cell").new(dev:channel(0), { name = "A1" })
--   cell:limits{ vmax = 4.2, vmin = 2.8, imax = 4.0, tmax_c = 50 }
--   cell:discharge(1.0)
--   repeat local s = assert(cell:wait()) until s.voltage < 3.0
--   cell:idle()
--   cell:record{ capacity_ah = -cell.last.charge_ah }
--   cell:log("done after %.0f s", cell.last.step_time)
--
-- Fields: name, device (batlab.Device), channel (index 0..3), ch (the
-- batlab.Channel), records (what record{} accumulated), last (the latest
-- sample of the channel: ch.last, looked up when read, so that no sample
-- has to go through Lua to be remembered), recording (what a run records
-- for the cell: batlab.recording, or nil outside a run).
--
-- In a run every sample of the cell's channel is recorded whatever the
-- procedure calls; these only label what is recorded:
--   cell:label{cycle = 2, cycle_kind = "measurement"}   -- rows from now on
--   cell:begin_step("PULSE") ... cell:end_step(summary) -- a step of its own
-- (batlab.steps calls begin_step/end_step itself).
--
-- Hooks a runner may set (all optional):
--   cell.on_sample = function(sample, cell) end   -- every sample cell:wait returns
--   cell.on_record = function(fields, cell) end   -- every record{} call
--   cell.log_sink  = function(msg, cell) end      -- where cell:log writes
--                                                 -- (default: print)
-- A hook must not wait (it runs inside cell:wait).
--
-- The channel methods (charge, discharge, idle, stop, set_current,
-- impedance, limits, report_interval, wait) behave as on batlab.Channel:
-- they return nil, message, code on device failures and raise on bad
-- arguments.
local batlab = require "batlab"
local wait = require "batlab.wait"

local M = {}

local Cell = {}
M.Cell = Cell

function Cell.__index(self, k)
	local v = Cell[k]
	if v == nil and k == "last" then
		return self.ch.last
	end
	return v
end

-- new(ch [, opts]): opts.name (default "SERIAL:INDEX"), opts.on_sample,
-- opts.on_record, opts.log_sink.
function M.new(ch, opts)
	if getmetatable(ch) == nil or type(ch.wait) ~= "function" or ch.index == nil then
		error("batlab.cell.new: batlab.Channel expected, got " .. type(ch), 2)
	end
	opts = opts or {}
	if type(opts) ~= "table" then
		error("batlab.cell.new: options table expected, got " .. type(opts), 2)
	end
	local dev = ch.device
	return setmetatable({
		ch = ch,
		device = dev,
		channel = ch.index,
		name = opts.name and tostring(opts.name) or string.format("%d:%d", dev.sn, ch.index),
		records = {},
		-- false rather than nil: cell:wait reads them at every sample, and
		-- a missing field costs a call of __index
		on_sample = opts.on_sample or false,
		replay = false,
		on_record = opts.on_record,
		log_sink = opts.log_sink,
	}, Cell)
end

function Cell:wait(timeout_s)
	if self.replay then
		self.replay:raw(self, "wait")
	end
	local s, err, code = self.ch:wait(timeout_s)
	if s then
		if self.on_sample then
			self.on_sample(s, self)
		end
	end
	return s, err, code
end

-- watch(spec) -> sample | nil, err, code: the next report a step has to
-- look at (batlab.Channel's watch: the quiet ones are accounted in spec).
function Cell:watch(spec)
	if self.replay then
		self.replay:raw(self, "wait")
	end
	return self.ch:watch(spec)
end

-- Channel methods, forwarded as they are. Those that drive a current
-- cannot be replayed after a crash (batlab.replay).
local DRIVES = { charge = true, discharge = true, set_current = true }
for _, name in ipairs { "charge", "discharge", "idle", "stop", "set_current",
                        "report_interval" } do
	Cell[name] = function(self, ...)
		if self.replay and DRIVES[name] then
			self.replay:raw(self, name)
		end
		return self.ch[name](self.ch, ...)
	end
end

-- limits{...} as on batlab.Channel; the cell remembers what it set
-- (cell.limits_set), so that steps can check their targets against it.
function Cell:limits(t)
	local ok, err, code = self.ch:limits(t)
	if ok then
		self.limits_set = self.limits_set or {}
		for k, v in pairs(t) do
			self.limits_set[k] = v
		end
	end
	return ok, err, code
end

-- impedance() -> ohms | nil, err, code. A measurement goes on the next
-- row of the cell's time series.
function Cell:impedance()
	local z, err, code
	if self.replay then -- after a crash: the value it had measured
		z = self.replay:impedance(self)
		if z then
			return z
		end
	end
	z, err, code = self.ch:impedance()
	if z and self.recording then
		self.recording:note_impedance(z)
	end
	return z, err, code
end

-- label{cycle =, cycle_kind =, step_name =}: labels for what is recorded
-- from now on (nothing outside a run).
function Cell:label(t)
	if type(t) ~= "table" then
		error("cell:label: table expected, got " .. type(t), 2)
	end
	for k in pairs(t) do
		if k ~= "cycle" and k ~= "cycle_kind" and k ~= "step_name" then
			error(("cell:label: unknown label '%s' (cycle, cycle_kind, step_name)"):format(tostring(k)), 2)
		end
	end
	if self.recording then
		self.recording:label(t)
	end
	return self
end

-- begin_step(name [, opts]): the rows from now on belong to a new step.
-- opts.resumable = false: after a crash this step cannot go on from its
-- start (`batlab resume` ends the cell "interrupted").
function Cell:begin_step(name, opts)
	if self.recording then
		self.recording:begin_step(tostring(name), opts)
	end
end

-- end_step(summary): the step is over (a steps.csv row); summary as
-- batlab.steps returns them.
function Cell:end_step(summary)
	if self.recording then
		self.recording:end_step(summary)
	end
	return summary
end

-- wait_until(cond, timeout_s): batlab.wait.until_ on this cell's reports.
function Cell:wait_until(cond, timeout_s)
	return wait.until_(cond, timeout_s, self)
end

-- record{key = value, ...}: merged into cell.records (later keys win).
function Cell:record(fields)
	if type(fields) ~= "table" then
		error("cell:record: table expected, got " .. type(fields), 2)
	end
	for k, v in pairs(fields) do
		self.records[k] = v
	end
	if self.on_record then
		self.on_record(fields, self)
	end
	return self
end

-- log(fmt, ...): the message to the sink, which puts its own time and
-- cell name on it (a run's events.log and progress lines do); without a
-- sink, printed as "[   123.4] NAME: message" (batlab.now() time).
-- Returns the message.
function Cell:log(fmt, ...)
	local msg
	if select("#", ...) > 0 then
		msg = string.format(fmt, ...)
	else
		msg = tostring(fmt)
	end
	if self.replay then
		-- replaying after a crash: it was written the first time
		return msg
	elseif self.log_sink then
		self.log_sink(msg, self)
	else
		print(string.format("[%9.1f] %s: %s", batlab.now(), self.name, msg))
	end
	return msg
end

function Cell:__tostring()
	return "cell " .. self.name
end

return M
