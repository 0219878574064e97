-- batlab.recording - what a run records for one cell, whatever its
-- procedure calls: every sample of its channel becomes a row of its time
-- series (written in C by batlab.recorder), every step the procedure or
-- the step library runs becomes a row of steps.csv, and a stock test's
-- Lexcelon log gets its level-1 rows every reporting period and a level-2
-- row per step. The procedure only labels (cell:label, cell:begin_step,
-- cell:end_step, which batlab.steps calls for it); the runner and the
-- seed interface both attach their sinks here.
--
--   local rec = recording.attach(cell, {
--     series = "run/cells/A1.csv",   -- or nil: no time series file
--     t0 = batlab.now(), epoch = os.time(),
--     on_sample = function(sample, rec) end,     -- progress; must not wait
--     on_step = function(row, summary, rec) end, -- a finished step
--     on_error = function(message, code) end,    -- recording failed ("ECLOSED": the device went away)
--     on_label = function(labels) end,           -- the labels changed
--     lexcelon = { log1 = log, log2 = log, period = 1, serial = 1, channel = 0 },
--     journal = j, journal_every = 1,              -- batlab.journal: steps and
--                                                  -- where the cell is, every N s
--     feeds = { feed },   -- other sinks of the samples (batlab.labsink):
--                         -- labelled with the rows, closed with the recording
--     record = { every = 10, dv = 0.005, di = 0.01 },  -- which samples are rows
--   })                                                 -- (default: every one)
--
-- A step may record under its own policy: begin_step(name, {record = {...}})
-- until its end_step, then the run's again.
--   ...
--   rec:close()
local batlab = require "batlab"
local results_median = require("batlab.results").median

local M = {}

local Recording = {}
Recording.__index = Recording

-- A copy of t that JSON can hold (numbers, strings, booleans, tables of
-- them; no functions, no cycles), for the journal.
local function plain(t, depth)
	if type(t) ~= "table" or (depth or 0) > 6 then
		return nil
	end
	local out = {}
	for k, v in pairs(t) do
		local tk, tv = type(k), type(v)
		if (tk == "string" or tk == "number") and k ~= "end_sample" then
			if tv == "number" or tv == "string" or tv == "boolean" then
				out[k] = v
			elseif tv == "table" then
				out[k] = plain(v, (depth or 0) + 1)
			end
		end
	end
	return out
end
M.plain = plain

-- A journal entry for this cell; a failed write fails the recording
-- (a run that cannot be resumed should say so at once).
local function journal(r, entry, sync)
	if not r.journal then
		return
	end
	entry.cell = r.cell.name
	local ok, err = r.journal:write(entry, sync)
	if not ok then
		r:_fail("journal: " .. tostring(err))
	end
end

-- Where the cell is, about once every journal_every seconds: what a
-- resumed step carries over when the device cannot tell.
local function journal_at(r, smp)
	if not r.journal or (r.at_last and smp.time - r.at_last < r.journal_every) then
		return
	end
	-- A report between the step's label and the device's start of it is
	-- the step before's (its step time runs on from there): not where
	-- this step is.
	if smp.step_seq == r.seq0 then
		return
	end
	r.at_last = smp.time
	local c, st = r.carry, r.rec and r.rec:stats() or {}
	journal(r, { ev = "at", step = r.step_no, t = smp.time - r.t0,
		step_time = smp.step_time + (c and c.time or 0), mode = smp.mode_name,
		ah = math.abs(smp.charge_ah or 0) + (c and c.ah or 0),
		wh = math.abs(smp.energy_wh or 0) + (c and c.wh or 0),
		v = smp.voltage, i = math.abs(smp.current or 0), qmin = st.charge_min, qmax = st.charge_max })
end

-- The Lexcelon log's level-1 row for a sample, every `period` seconds (and
-- whenever an impedance was measured since the last one). Rows are due on
-- a grid from the first one: with samples every second and a period of
-- 2.5 s they come 3, 2, 3, 2 s apart, 2.5 s on average, where waiting for
-- "a period since the last row" would give one every 3 s.
local function lexcelon_row(r, smp)
	local lx = r.lex
	if not (lx and lx.log1) or r.step_no == 0 then
		return -- nothing to report before the test's first step
	end
	local period = lx.period or 1
	local due = r.lex_due
	local on_time = not due or smp.time >= due - 1e-6
	if not (on_time or r.lex_z) then
		return
	end
	if on_time then
		due = (due or smp.time) + period
		-- a gap (a stalled channel) starts the grid again
		r.lex_due = due > smp.time + 1e-6 and due or smp.time + period
	end
	local row = r.lex_row
	row.time, row.epoch = smp.time - r.t0, r.epoch and (r.epoch + smp.time - r.t0) or nil
	row.voltage, row.current, row.temp_c, row.vcc = smp.voltage, smp.current, smp.temp_c, smp.vcc
	row.op_raw, row.sp_raw, row.duty = smp.op_raw, smp.sp_raw, smp.duty
	row.impedance, row.state = r.lex_z, r.labels.step_name or "IDLE"
	-- Lexcelon's charge and energy are magnitudes since the step began
	-- (a resumed step's from its first start).
	local c = r.carry
	row.energy_wh = smp.energy_wh and math.abs(smp.energy_wh) + (c and c.wh or 0)
	row.charge_ah = smp.charge_ah and math.abs(smp.charge_ah) + (c and c.ah or 0)
	r.lex_z = nil
	local ok, err = lx.log1:level1(row)
	if not ok then
		r:_fail("Lexcelon log: " .. tostring(err))
	end
end

function Recording:_sample(smp)
	self.last = smp
	self.cell.last = smp
	journal_at(self, smp)
	lexcelon_row(self, smp)
	if self.on_sample then
		self.on_sample(smp, self)
	end
end

function Recording:_fail(msg, code)
	if self.failed then
		return
	end
	self.failed = msg
	if self.on_error then
		self.on_error(msg, code)
	end
end

-- attach(cell, opts) -> recording | nil, err. The cell gets it as
-- cell.recording; its labels go to every row from now on.
function M.attach(cell, o)
	local r = setmetatable({
		cell = cell, t0 = o.t0 or batlab.now(), epoch = o.epoch, on_sample = o.on_sample,
		on_step = o.on_step, on_error = o.on_error, on_label = o.on_label, lex = o.lexcelon, step_no = 0,
		journal = o.journal, journal_every = o.journal_every or 1, feeds = o.feeds or {},
		policy = o.record or {},
		labels = { step = 0, cycle = 0, cycle_kind = "other" },
		impedance = { values = {}, charges = {} },
	}, Recording)
	if r.lex then
		r.lex_row = { name = cell.name, serial = r.lex.serial, channel = r.lex.channel }
		-- Lexcelon's log has the applied duty: read while driving a current
		if cell.ch.want_duty then
			cell.ch:want_duty(true)
			r.wants_duty = true
		end
	end
	local rec, err = batlab.recorder(cell.ch, o.series, {
		t0 = r.t0, epoch = o.epoch or 0,
		on_sample = function(smp) r:_sample(smp) end,
		on_error = function(msg, code) r:_fail(msg, code) end,
		record = r.policy,
	})
	if not rec then
		return nil, err
	end
	r.rec = rec
	rec:label(r.labels)
	cell.recording = r
	return r
end

-- label{cycle =, cycle_kind =, step =, step_name =}: for the rows to come.
function Recording:label(t)
	for _, k in ipairs { "step", "step_name", "cycle", "cycle_kind" } do
		if t[k] ~= nil then
			self.labels[k] = t[k]
		end
	end
	if self.rec then
		self.rec:label(t)
	end
	for _, f in ipairs(self.feeds) do
		f:label(t)
	end
	if self.on_label then
		self.on_label(self.labels)
	end
end

-- begin_step(name [, opts]): opts.resumable = false: after a crash the
-- cell cannot go on from this step's start (it ends "interrupted");
-- opts.kind: "charge", "discharge" or "rest" (what a resume carries over).
function Recording:begin_step(name, opts)
	local c = self.resumed -- this is the step a crash cut short
	self.resumed = nil
	self.carry = c
	self.step_no = c and c.step or self.step_no + 1
	self.step_start = c and c.start or batlab.now() - self.t0
	self.at_last, self.in_step = nil, true
	self.seq0 = self.last and self.last.step_seq or 0
	self:label { step = self.step_no, step_name = name }
	if opts and opts.record and self.rec then
		self.rec:policy(opts.record)
		self.step_policy = true
	end
	if c and self.rec then
		self.rec:carry { step_time = c.time, charge_ah = c.sign * c.ah, energy_wh = c.sign * c.wh }
	end
	-- (batlab.journal: a resume may then read the counter as this step's)
	local kind = opts and opts.kind
	local cleared = self.journal and (kind == "charge" or kind == "discharge")
		and self.journal:clear_for_step(self.cell.ch, (self.last or self.cell.ch.last or {}).mode_name) or nil
	journal(self, { ev = "begin", step = self.step_no, name = name, t = batlab.now() - self.t0,
		start = self.step_start, resumable = not (opts and opts.resumable == false), kind = kind, cleared = cleared,
		carry_ah = c and c.ah, carry_wh = c and c.wh, carry_time = c and c.time,
		cycle = self.labels.cycle, cycle_kind = self.labels.cycle_kind }, true)
end

-- The device started the step (its charge counter cleared): from here a
-- resume may read the counter as this step's.
function Recording:started()
	journal(self, { ev = "started", step = self.step_no })
end

-- A step that ended before a crash, replayed (batlab.replay): the
-- summary and steps.csv row it had, not written again (unless missing:
-- the crash came between its journal entry and its row).
function Recording:replayed(row, sum, missing)
	self.step_no = row.step or self.step_no + 1
	self:label { step = self.step_no, step_name = row.step_name, cycle = row.cycle,
		cycle_kind = row.cycle_kind }
	if self.on_step then
		self.on_step(row, sum, self, not missing)
	end
end

function Recording:note_impedance(z)
	if self.rec then
		self.rec:impedance(z)
	end
	self.lex_z = z
	local q = self.last and self.last.charge_ah
	if type(q) == "number" then
		self:_impedance(z, math.abs(q) + (self.carry and self.carry.ah or 0))
		journal(self, { ev = "z", ohms = z, q = math.abs(q), step = self.step_no, in_step = self.in_step })
	end
end

function Recording:_impedance(z, q)
	self.impedance.values[#self.impedance.values + 1] = z
	self.impedance.charges[#self.impedance.charges + 1] = q
end

-- A step ended with summary `sum` (batlab.steps): its steps.csv row and
-- Lexcelon level-2 row.
function Recording:end_step(sum)
	local zs = {}
	for _, z in ipairs(sum.impedance or {}) do
		zs[#zs + 1] = z.ohms
	end
	local avg_z = results_median(zs)
	local lb = self.labels
	local row = {
		cycle = lb.cycle, cycle_kind = lb.cycle_kind, step = self.step_no, step_name = sum.name,
		start = self.step_start,
		-- a storage discharge is no cycle's capacity
		kind = lb.cycle_kind == "storage" and "storage" or sum.kind,
		duration = sum.duration, end_reason = sum.end_reason,
		safety_stop = sum.errors or (sum.safety and { sum.safety }) or nil,
		charge_ah = sum.ah, energy_wh = sum.wh, avg_v = sum.avg_v,
		avg_i = (sum.kind == "discharge" and -1 or 1) * (sum.avg_i or 0),
		temp_start = sum.temp_start, temp_end = sum.temp_end, impedance = avg_z,
	}
	if self.step_policy and self.rec then
		self.step_policy = nil
		self.rec:policy(self.policy)
	end
	if self.rec then
		self.rec:flush()
	end
	local state = type(self.cell.state) == "table" and plain(self.cell.state) or nil
	journal(self, { ev = "end", step = self.step_no, t = batlab.now() - self.t0, row = plain(row),
		sum = plain(sum), state = state, v = sum.end_sample and sum.end_sample.voltage }, true)
	self.carry, self.in_step = nil, false
	if self.on_step then
		self.on_step(row, sum, self)
	end
	local lx = self.lex
	if lx and lx.log2 then
		local now = batlab.now() - self.t0
		local ok, err = lx.log2:level2 {
			name = self.cell.name, serial = lx.serial, channel = lx.channel, time = now,
			epoch = self.epoch and self.epoch + now or nil,
			state = sum.name, charge_ah = sum.ah, energy_wh = sum.wh,
			avg_impedance = avg_z, delta_temp = sum.temp_rise, avg_current = sum.avg_i,
			avg_voltage = sum.avg_v, runtime = sum.duration,
		}
		if not ok then
			self:_fail("Lexcelon log: " .. tostring(err))
		end
	end
	return row
end

-- What the summary needs from the samples: rows written, |Ah| range.
function Recording:stats()
	return self.rec and self.rec:stats() or { rows = 0 }
end

function Recording:close()
	if not self.rec then
		return true
	end
	local rec = self.rec
	self.rec = nil
	if self.wants_duty then
		self.wants_duty = nil
		self.cell.ch:want_duty(false)
	end
	for _, f in ipairs(self.feeds) do
		f:close()
	end
	if self.cell.recording == self then
		self.cell.recording = nil
	end
	return rec:close()
end

return M
