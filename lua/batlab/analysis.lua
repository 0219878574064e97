-- batlab.analysis - what a cell's steps and samples add up to
-- (docs/results.md "summary.json"): per-cycle charge and energy, capacity,
-- coulombic efficiency, the impedance figure, and the verdict.
--
--   local analysis = require "batlab.analysis"
--   local sum = analysis.summarize(cw.record, { threshold = 0.1 })
--   print(sum.verdict, sum.reason, sum.capacity_ah)

local csv = require "batlab.csv"
local columns = require "batlab.columns"

local M = {}

-- finite(v) -> true for a number that is neither NaN nor infinite.
local function finite(v)
	return type(v) == "number" and csv.is_finite(v)
end
M.finite = finite

-- median(values) -> the median of a list of numbers (the mean of the two
-- middle ones for an even count), or nil for an empty list.
function M.median(values)
	local v = {}
	for _, x in ipairs(values) do
		v[#v + 1] = x
	end
	if #v == 0 then
		return nil
	end
	table.sort(v)
	local n = #v
	if n % 2 == 1 then
		return v[(n + 1) // 2]
	end
	return (v[n // 2] + v[n // 2 + 1]) / 2
end

-- median_mid(values, charges [, qmin, qmax]) -> median, count | nil, 0
--
-- The GUI's impedance figure, corrected: the median of the impedance
-- samples taken while the charge counter was in the middle 50 % of its
-- range (qmin + 25 % .. qmax - 25 %). qmin/qmax default to the range of
-- charges itself; the cell writer passes the range over all its samples.
-- Samples that are not finite or not > 0 (a failed measurement) are
-- skipped; without charges every valid sample counts. Nothing left:
-- nil, 0 (the GUI took the median of an empty list).
function M.median_mid(values, charges, qmin, qmax)
	local zs, qs = {}, {}
	for i = 1, #values do
		local z, q = values[i], charges and charges[i]
		if finite(z) and z > 0 and (charges == nil or finite(q)) then
			zs[#zs + 1], qs[#qs + 1] = z, q
		end
	end
	if #zs == 0 then
		return nil, 0
	end
	if charges == nil then
		return M.median(zs), #zs
	end
	local lo, hi = qmin, qmax
	if lo == nil or hi == nil then
		lo, hi = math.huge, -math.huge
		for _, q in ipairs(qs) do
			lo, hi = math.min(lo, q), math.max(hi, q)
		end
	end
	local span = hi - lo
	local a, b = lo + 0.25 * span, hi - 0.25 * span
	-- A tolerance of a part in 1e9 of the span keeps samples on the edges.
	local eps = 1e-9 * math.max(math.abs(span), 1e-12)
	local sel = {}
	for i, q in ipairs(qs) do
		if q >= a - eps and q <= b + eps then
			sel[#sel + 1] = zs[i]
		end
	end
	if #sel == 0 then
		return nil, 0
	end
	return M.median(sel), #sel
end

-- step_kind(step) -> "charge" | "discharge" | "rest" | "storage" |
-- "impedance" | "other": step.kind when given, else from the step name
-- (Lexcelon's state names: PRECHARGE/CHARGE, DISCHARGE, *REST,
-- POSTDISCHARGE), else from the sign of avg_i.
function M.step_kind(step)
	if type(step.kind) == "string" and step.kind ~= "" then
		return step.kind
	end
	local n = type(step.step_name) == "string" and step.step_name:upper() or ""
	if n:find("REST") then
		return "rest"
	elseif n:find("POSTDISCHARGE") or n:find("STORAGE") then
		return "storage"
	elseif n:find("IMPEDANCE") then
		return "impedance"
	elseif n:find("DISCHARGE") then
		return "discharge"
	elseif n:find("CHARGE") then
		return "charge"
	end
	if finite(step.avg_i) then
		if step.avg_i > 1e-3 then
			return "charge"
		elseif step.avg_i < -1e-3 then
			return "discharge"
		end
	end
	return "other"
end

local function has_safety_stop(step)
	local s = step.safety_stop
	if type(s) == "table" then
		return #s > 0
	elseif type(s) == "string" then
		return s ~= ""
	elseif type(s) == "number" then
		return s ~= 0
	end
	return s == true
end
M.has_safety_stop = has_safety_stop

local VERDICTS = { pass = true, fail = true, error = true, incomplete = true }
M.VERDICTS = VERDICTS

-- The cycle of a step, made on its first step.
local function cycle_of(acc, st)
	local cyc = math.tointeger(st.cycle) or 0
	local c = acc.by_cycle[cyc]
	if not c then
		c = { cycle = cyc, kind = st.cycle_kind, charge_ah = nil, discharge_ah = nil,
			charge_wh = nil, discharge_wh = nil, safety_stop = false, discharge_s = 0,
			discharge_vs = 0 }
		acc.by_cycle[cyc] = c
		acc.order[#acc.order + 1] = cyc
	end
	c.kind = c.kind or st.cycle_kind
	return c, cyc
end

local function new_pending()
	return { ah = 0, wh = 0, valid = true, any = false }
end

local function add_charge(acc, c, cyc, ah, wh)
	local p = acc.pending
	c.charge_ah = (c.charge_ah or 0) + (ah or 0)
	c.charge_wh = (c.charge_wh or 0) + (wh or 0)
	p.ah, p.wh, p.any = p.ah + (ah or 0), p.wh + (wh or 0), true
	if cyc < 1 then
		p.valid = false
	end
end

-- Ends of a discharge that reached its end voltage (the CV taper of a
-- constant-voltage discharge ends on current). A step with no end reason
-- (a procedure's own) is taken as complete.
local COMPLETE_END = { voltage = true, current = true }

-- Why a discharge did not measure the whole capacity, or nil.
local function incomplete_why(st, stopped)
	if stopped then
		return "safety stop"
	end
	local why = st.end_reason
	if type(why) == "string" and why ~= "" and not COMPLETE_END[why] then
		return why
	end
	return nil
end

local function add_discharge(acc, c, st, ah, wh, stopped)
	local p = acc.pending
	if c.discharge_ah == nil then
		-- First discharge of this cycle: the charge that filled it.
		if p.any and p.valid and p.ah > 0 then
			c.filled_ah, c.filled_wh = p.ah, p.wh
		else
			c.no_fill = p.any and "no full charge before the measurement discharge (only the "
				.. "precharge, from an unknown state of charge)"
				or "no charge before the measurement discharge"
		end
	end
	c.incomplete = c.incomplete or incomplete_why(st, stopped)
	c.discharge_ah = (c.discharge_ah or 0) + (ah or 0)
	c.discharge_wh = (c.discharge_wh or 0) + (wh or 0)
	if stopped then
		c.discharge_safety = true
	end
	if finite(st.avg_v) and finite(st.duration) and st.duration > 0 then
		c.discharge_s = c.discharge_s + st.duration
		c.discharge_vs = c.discharge_vs + st.avg_v * st.duration
	end
	acc.pending = new_pending()
end

-- One finished step into the per-cycle totals, the safety stops and the
-- largest temperature rise.
local function add_step(acc, st)
	local kind = M.step_kind(st)
	local c, cyc = cycle_of(acc, st)
	local stopped = has_safety_stop(st)
	if stopped then
		c.safety_stop = true
		acc.safety[#acc.safety + 1] = { step = st.step, step_name = st.step_name, cycle = st.cycle,
			errors = columns.names_text(st.safety_stop) }
	end
	local rise = st.temp_rise
	if not finite(rise) and finite(st.temp_end) and finite(st.temp_start) then
		rise = st.temp_end - st.temp_start
	end
	if finite(rise) and (acc.temp_rise == nil or rise > acc.temp_rise) then
		acc.temp_rise = rise + 0.0
	end
	local ah = finite(st.charge_ah) and math.abs(st.charge_ah) + 0.0 or nil
	local wh = finite(st.energy_wh) and math.abs(st.energy_wh) + 0.0 or nil
	if kind == "charge" then
		add_charge(acc, c, cyc, ah, wh)
	elseif kind == "discharge" then
		add_discharge(acc, c, st, ah, wh, stopped)
	end
end

local function mean(list)
	if #list == 0 then
		return nil
	end
	local sum = 0
	for _, x in ipairs(list) do
		sum = sum + x
	end
	return sum / #list
end

-- The measurement discharges the capacity is from: those that reached
-- their end voltage; only when there is none, the others, marked
-- incomplete (fig.partial). Why a cycle is left out or why there is no CE
-- goes to fig.cap_notes / fig.ce_notes.
local function take_measurement(fig, c, ce, partial)
	fig.caps[#fig.caps + 1] = c.discharge_ah
	fig.energies[#fig.energies + 1] = c.discharge_wh
	if ce and not partial then
		fig.ces[#fig.ces + 1] = ce
	end
	fig.vs, fig.vt = fig.vs + c.discharge_vs, fig.vt + c.discharge_s
end

local function measurements(fig, list)
	local whole = {}
	for _, m in ipairs(list) do
		if not m.c.incomplete then
			whole[#whole + 1] = m
		end
	end
	fig.partial = #whole == 0 and #list > 0
	for _, m in ipairs(list) do
		local c = m.c
		local note = c.incomplete and ("cycle %d's discharge ended on %s, before its end voltage")
			:format(m.cycle, c.incomplete)
		if note then
			fig.cap_notes[#fig.cap_notes + 1] = note
		end
		if not c.incomplete or fig.partial then
			take_measurement(fig, c, m.ce, fig.partial)
			if fig.partial and not c.no_fill then
				fig.ce_notes[#fig.ce_notes + 1] = "the measurement discharge is incomplete"
			elseif not m.ce then
				fig.ce_notes[#fig.ce_notes + 1] = c.no_fill or "no charge before the measurement discharge"
			end
		end
	end
end

-- The per-cycle list, and what the measurement cycles give: capacities,
-- energies, efficiencies, the discharge voltage over time.
local function cycle_figures(acc)
	local fig = { cycles = {}, caps = {}, energies = {}, ces = {}, vs = 0, vt = 0, completed = 0,
		cap_notes = {}, ce_notes = {} }
	local list = {}
	table.sort(acc.order)
	for _, cyc in ipairs(acc.order) do
		local c = acc.by_cycle[cyc]
		local ce, ee
		if c.discharge_ah and c.filled_ah and c.filled_ah > 0 and not c.incomplete then
			ce = c.discharge_ah / c.filled_ah
		end
		if c.discharge_wh and c.filled_wh and c.filled_wh > 0 and not c.incomplete then
			ee = c.discharge_wh / c.filled_wh
		end
		fig.cycles[#fig.cycles + 1] = {
			cycle = cyc, kind = c.kind, charge_ah = c.charge_ah, discharge_ah = c.discharge_ah,
			charge_wh = c.charge_wh, discharge_wh = c.discharge_wh,
			coulombic_efficiency = ce, energy_efficiency = ee, safety_stop = c.safety_stop,
		}
		if c.discharge_ah then
			fig.cycles[#fig.cycles].discharge_complete = c.incomplete == nil
		end
		if cyc >= 1 and c.discharge_ah and c.charge_ah and not c.safety_stop then
			fig.completed = fig.completed + 1
		end
		if c.kind == "measurement" and c.discharge_ah then
			list[#list + 1] = { c = c, cycle = cyc, ce = ce }
		end
	end
	measurements(fig, list)
	if #list == 0 then
		fig.ce_notes[1] = "no measurement discharge"
	end
	return fig
end

-- The verdict and its reason, into sum.
local function judge(sum, opts, safety)
	local cap, zval, threshold = sum.capacity_ah, sum.impedance_ohm, sum.impedance_threshold
	if opts.verdict ~= nil then
		sum.verdict, sum.reason = tostring(opts.verdict), opts.reason
	elseif opts.error ~= nil then
		sum.verdict, sum.reason = "error", tostring(opts.error)
	elseif opts.complete == false then
		sum.verdict, sum.reason = "incomplete", opts.reason or "the test did not finish"
	elseif #safety > 0 then
		local s = safety[1]
		sum.verdict = "fail"
		sum.reason = string.format("safety stop in step %s (%s): %s", tostring(s.step or "?"),
			tostring(s.step_name or "?"), s.errors)
	elseif sum.impedance_pass == false then
		sum.verdict = "fail"
		sum.reason = string.format("impedance %.4f ohm is above %.4f ohm", zval, threshold)
	else
		sum.verdict = "pass"
		local parts = {}
		if cap then
			parts[#parts + 1] = string.format("capacity %.4f Ah", cap)
				.. (sum.capacity_complete == false and " (incomplete: " .. sum.capacity_note .. ")" or "")
		end
		if zval then
			parts[#parts + 1] = threshold and string.format("impedance %.4f ohm <= %.4f ohm", zval, threshold)
				or string.format("impedance %.4f ohm", zval)
		else
			parts[#parts + 1] = "impedance not measured"
		end
		sum.reason = opts.reason or table.concat(parts, ", ")
	end
end

-- summarize(record [, opts]) -> summary table.
--
-- record: { name, serial, channel, steps = { step summaries, in order },
--   impedance = { values = {...}, charges = {...} }, charge_min, charge_max }
-- (a cell writer keeps one: cw.record). opts: threshold (ohm; default
-- none), verdict and reason (given: used as they are), error (a message:
-- verdict "error"), complete (false: verdict "incomplete").
-- docs/results.md defines every field.
function M.summarize(record, opts)
	opts = opts or {}
	local steps = record.steps or {}
	-- pending: the charge steps since the last discharge, what filled the
	-- cell for the next one. Not valid once the precharge (cycle < 1, from
	-- an unknown state of charge) is among them.
	local acc = { by_cycle = {}, order = {}, pending = new_pending(), safety = {} }
	for _, st in ipairs(steps) do
		add_step(acc, st)
	end
	local fig = cycle_figures(acc)

	local z = record.impedance or {}
	local zval, zn = M.median_mid(z.values or {}, z.charges, record.charge_min, record.charge_max)
	local threshold = opts.threshold
	local zpass
	if zval and finite(threshold) then
		zpass = zval <= threshold
	end

	local cap = mean(fig.caps)
	local cap_min, cap_max
	for _, x in ipairs(fig.caps) do
		cap_min = cap_min and math.min(cap_min, x) or x
		cap_max = cap_max and math.max(cap_max, x) or x
	end
	local sum = {
		name = record.name, serial = record.serial, channel = record.channel,
		cycles = fig.cycles,
		capacity_ah = cap,
		capacity_c = cap and cap * 3600,
		capacity_min_ah = cap_min,
		capacity_max_ah = cap_max,
		capacity_cycles = #fig.caps,
		capacity_complete = cap and not fig.partial,
		capacity_note = #fig.cap_notes > 0 and table.concat(fig.cap_notes, "; ") or nil,
		energy_wh = mean(fig.energies),
		coulombic_efficiency = mean(fig.ces),
		coulombic_efficiency_note = #fig.ces == 0 and fig.ce_notes[1] or nil,
		avg_voltage = fig.vt > 0 and fig.vs / fig.vt or nil,
		temp_rise_c = acc.temp_rise,
		impedance_ohm = zval,
		impedance_samples = zn,
		impedance_threshold = threshold,
		impedance_pass = zpass,
		cycles_completed = fig.completed,
		safety_stops = acc.safety,
		safety_stop_count = #acc.safety,
		steps = #steps,
	}
	judge(sum, opts, acc.safety)
	return sum
end

return M
