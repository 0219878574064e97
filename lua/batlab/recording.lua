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
--     on_sample = function(sample, rec) end,     -- every sample; must not wait
--     sample_every = 1,  -- or: on_sample at most once per 1 s of sample time
--                        -- (progress), the first sample at or past the
--                        -- last call + 1 s
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
--
-- rec.last (like cell.last) is the channel's latest sample, looked up
-- when read: a sample reaches Lua only when something here wants it (the
-- journal's "at" entry every journal_every seconds, on_sample), never
-- just to be remembered. The time series and the Lexcelon level-1 rows
-- are written in C (batlab.recorder) from every sample.
local batlab = require "batlab"
local results_median = require("batlab.results").median

local M = {}

local Recording = {}
function Recording.__index(self, k)
	if k == "last" then
		return self.cell.ch.last
	end
	return Recording[k]
end

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
-- resumed step carries over when the device cannot tell. Returns the
-- sample time it wants the next sample at (-math.huge: the next one).
local function journal_at(r, smp)
	if not r.journal then
		return math.huge
	end
	if r.at_last and smp.time - r.at_last < r.journal_every then
		return r.at_last + r.journal_every
	end
	-- A report between the step's label and the device's start of it is
	-- the step before's (its step time runs on from there): not where
	-- this step is.
	if smp.step_seq == r.seq0 then
		return -math.huge
	end
	r.at_last = smp.time
	local c, st = r.carry, r.rec and r.rec:stats() or {}
	journal(r, { ev = "at", step = r.step_no, t = smp.time - r.t0,
		step_time = smp.step_time + (c and c.time or 0), mode = smp.mode_name,
		ah = math.abs(smp.charge_ah or 0) + (c and c.ah or 0),
		wh = math.abs(smp.energy_wh or 0) + (c and c.wh or 0),
		v = smp.voltage, i = math.abs(smp.current or 0), qmin = st.charge_min, qmax = st.charge_max })
	return smp.time + r.journal_every
end

-- The caller's on_sample: every sample, or with sample_every the first
-- sample at or past the last call + sample_every. Returns when it wants
-- the next sample, as journal_at.
local function call_on_sample(r, smp)
	local f, every = r.on_sample, r.sample_every
	if not f then
		return math.huge
	elseif not every then
		f(smp, r)
		return -math.huge
	end
	if not r.sample_next or smp.time >= r.sample_next - 1e-6 then
		r.sample_next = smp.time + every
		f(smp, r)
	end
	return r.sample_next
end

-- batlab.recorder calls this only at the sample time it returned (or at
-- the next sample after rec:wake()).
function Recording:_sample(smp)
	return math.min(journal_at(self, smp), call_on_sample(self, smp))
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

-- The Lexcelon log's level-1 rows, written by batlab.recorder in C into
-- log1's file (its header and level-2 rows are lexcelon_log's): nil
-- without a log.
local function lexcelon_rows(r)
	local lx = r.lex
	local log = lx and lx.log1
	if not log then
		return nil
	end
	if io.type(log.f) ~= "file" then
		error("batlab.recording: lexcelon.log1 must be an open batlab.lexcelon_log", 3)
	end
	return {
		file = log.f, path = log.path, period = lx.period or 1, utc = log.utc,
		-- cell, serial and channel: the same on every row
		prefix = batlab.csv_line("s,s,s", r.cell.name, lx.serial, lx.channel):sub(1, -2),
		epoch = r.epoch, start_time = log.start_time, flush_every_row = not log.lazy,
	}
end

-- The level-1 rows the recorder wrote since the last call, counted in
-- log1's rows.
local function count_lexcelon_rows(r)
	local log = r.lex and r.lex.log1
	if not (log and r.rec) then
		return
	end
	local n = r.rec:stats().lexcelon_rows or 0
	log:add_rows(n - (r.lex_rows or 0))
	r.lex_rows = n
end

-- attach(cell, opts) -> recording | nil, err. The cell gets it as
-- cell.recording; its labels go to every row from now on.
function M.attach(cell, o)
	local r = setmetatable({
		cell = cell, t0 = o.t0 or batlab.now(), epoch = o.epoch, on_sample = o.on_sample,
		sample_every = o.sample_every or false,
		on_step = o.on_step, on_error = o.on_error, on_label = o.on_label, lex = o.lexcelon, step_no = 0,
		journal = o.journal, journal_every = o.journal_every or 1, feeds = o.feeds or {},
		policy = o.record or {},
		labels = { step = 0, cycle = 0, cycle_kind = "other" },
		impedance = { values = {}, charges = {} },
	}, Recording)
	if r.lex then
		-- Lexcelon's log has the applied duty: read while driving a current
		if cell.ch.want_duty then
			cell.ch:want_duty(true)
			r.wants_duty = true
		end
	end
	local sample = Recording._sample
	local rec, err = batlab.recorder(cell.ch, o.series, {
		t0 = r.t0, epoch = o.epoch or 0,
		on_sample = function(smp) return sample(r, smp) end,
		on_error = function(msg, code) r:_fail(msg, code) end,
		record = r.policy,
		lexcelon = lexcelon_rows(r),
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
	local last = self.last
	self.seq0 = last and last.step_seq or 0
	self:label { step = self.step_no, step_name = name }
	if self.rec then
		self.rec:wake() -- the journal's first "at" of the step
		self.rec:lexcelon_carry(c and c.ah or 0, c and c.wh or 0)
	end
	if opts and opts.record and self.rec then
		self.rec:policy(opts.record)
		self.step_policy = true
	end
	if c and self.rec then
		local k = { step_time = c.time, charge_ah = c.sign * c.ah, energy_wh = c.sign * c.wh }
		self.rec:carry(k)
		for _, f in ipairs(self.feeds) do -- (the database's rows are the CSV's)
			if f.carry then
				f:carry(k)
			end
		end
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
	local last = self.last
	local q = last and last.charge_ah
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
		self.rec:lexcelon_carry(0, 0)
		count_lexcelon_rows(self)
	end
	-- the summary and the procedure's state are for resume, which a run
	-- on the in-process simulator cannot do (encoding them cost 1 %)
	local full = self.journal and self.journal.resumable
	local state = full and type(self.cell.state) == "table" and plain(self.cell.state) or nil
	journal(self, { ev = "end", step = self.step_no, t = batlab.now() - self.t0, row = plain(row),
		sum = full and plain(sum) or nil, state = state, v = sum.end_sample and sum.end_sample.voltage }, true)
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
	count_lexcelon_rows(self)
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
