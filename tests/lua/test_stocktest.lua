-- The stock cycle and discharge tests (lua/batlab/stocktest.lua) on the
-- virtual Batlab in virtual time: the sequence, capacities against the
-- cell model, each feature changing the traces, safety stops and a removed
-- cell ending that cell's test, and ZERO_AMP_THRESH put back.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local batlab = require "batlab"
local cellmod = require "batlab.cell"
local settings = require "batlab.settings"
local recording = require "batlab.recording"
local stocktest = require "batlab.stocktest"

local pool = assert(batlab.open { sim = true, seed = 11 })
local dev = pool:active()

local function load(overrides)
	local list = {}
	for k, v in pairs(overrides) do
		list[#list + 1] = k .. "=" .. tostring(v)
	end
	table.sort(list)
	local parsed = assert(settings.parse("{}", "test.json", list))
	return parsed
end

-- Run the stock test on the given channels with one settings table; each
-- cell's steps, samples and impedance readings are recorded with the
-- model's truth (charge in/out) at each step's start and end.
local function run(chans, s, test_type, hook)
	local rec = {}
	for _, n in ipairs(chans) do
		local r = { steps = {}, samples = {}, impedance = {}, events = {} }
		rec[n] = r
		local cell = cellmod.new(dev:channel(n), { name = "c" .. n, log_sink = function(line)
			r.events[#r.events + 1] = line
		end })
		local truth0, step_no = nil, 0
		-- what a run records, through the recording every run uses
		r.recording = assert(recording.attach(cell, {
			on_label = function(labels)
				if labels.step ~= step_no then
					step_no = labels.step
					truth0 = pool:sim_cell(dev, n)
					r.current_step = labels.step_name
				end
			end,
			on_step = function(row, sum)
				local truth1 = pool:sim_cell(dev, n)
				sum.meta = { cycle = row.cycle, kind = row.cycle_kind }
				if truth0 and truth1 then
					sum.model_in = truth1.charge_in_ah - truth0.charge_in_ah
					sum.model_out = truth1.charge_out_ah - truth0.charge_out_ah
				end
				r.steps[#r.steps + 1] = sum
			end,
			on_sample = function(smp)
				if step_no == 0 then
					return
				end
				r.samples[#r.samples + 1] = { step = r.current_step, v = smp.voltage, i = smp.current,
					t = smp.step_time }
				if hook then
					hook(n, smp, r)
				end
			end,
		}))
		r.impedance = r.recording.impedance.values
		local ctx = { deadline = s._deadline }
		r.task = batlab.spawn_for(dev:channel(n), function()
			return stocktest.run(cell, s, ctx, test_type or "cycle")
		end)
	end
	assert(batlab.run())
	for _, n in ipairs(chans) do
		local r = rec[n]
		r.recording:close()
		r.ok, r.msg = r.task.results and r.task.results[1], r.task.results and r.task.results[2]
		if r.task.status ~= "done" then
			r.msg = tostring(r.task.error)
		end
	end
	return rec
end

local function names(r)
	local out = {}
	for _, st in ipairs(r.steps) do
		out[#out + 1] = st.name
	end
	return table.concat(out, " ")
end

-- ---- the sequence, and capacities against the model (4 channels) --------------------

local base = { numWarmupCycles = 1, numMeasurementCycles = 1, restPeriod = 60,
	impedanceReportingPeriod = 0, storageDischarge = false }
local rec = run({ 0, 1, 2, 3 }, load(base))
local worst, seq_ok, all_ok = 0, true, true
for n = 0, 3 do
	local r = rec[n]
	all_ok = all_ok and r.ok
	seq_ok = seq_ok and names(r) ==
		"PRECHARGE CHARGEREST DISCHARGE DISCHARGEREST CHARGE CHARGEREST DISCHARGE DISCHARGEREST CHARGE CHARGEREST"
	for _, st in ipairs(r.steps) do
		local model = st.kind == "charge" and st.model_in or st.kind == "discharge" and st.model_out or nil
		if model and model > 0.05 then
			worst = math.max(worst, math.abs(st.ah - model) / model)
		end
	end
end
t.ok(all_ok, "every cell passes (" .. tostring(rec[0].msg) .. ")")
t.ok(seq_ok, "precharge, rest, then per cycle discharge, rest, charge, rest: the last charge rests too ("
	.. names(rec[0]) .. ")")
t.ok(worst < 0.01, ("every step's charge agrees with the cell model within 1 %% (worst %.3f %%)"):format(worst * 100))
local kinds = {}
for _, st in ipairs(rec[0].steps) do
	kinds[#kinds + 1] = st.meta.cycle .. ":" .. st.meta.kind
end
t.is(table.concat(kinds, " "),
	"0:precharge 0:precharge 1:warmup 1:warmup 1:warmup 1:warmup 2:measurement 2:measurement 2:measurement 2:measurement",
	"each cycle numbered and marked warm-up or measurement")

-- ---- features ---------------------------------------------------------------------

-- trickle: the charge current drops to the trickle rate above the engage voltage
rec = run({ 0 }, load({ numWarmupCycles = 0, numMeasurementCycles = 1, restPeriod = 10,
	trickleEnable = true, trickleChrgEngageVoltage = 4.0, trickleChrgRate = 0.5,
	trickleDischrgEngageVoltage = 3.3, trickleDischrgRate = 0.5, impedanceReportingPeriod = 0 }))
local trickled, dtrickled = false, false
for _, smp in ipairs(rec[0].samples) do
	if smp.step == "CHARGE" and smp.v > 4.05 and math.abs(smp.i - 0.5) < 0.03 then
		trickled = true
	end
	if smp.step == "DISCHARGE" and smp.v < 3.25 and math.abs(smp.i + 0.5) < 0.03 then
		dtrickled = true
	end
end
t.ok(rec[0].ok, "trickle run passes")
t.ok(trickled, "trickle: above 4.0 V the charge goes on at 0.5 A")
t.ok(dtrickled, "trickle: below 3.3 V the discharge goes on at 0.5 A")

-- pulse: the discharge current alternates between the rate and the off rate
rec = run({ 1 }, load({ numWarmupCycles = 0, numMeasurementCycles = 1, restPeriod = 10,
	pulseEnable = true, pulseDischrgOnTime = 60, pulseDischrgOffTime = 20, pulseDischrgOffRate = 0,
	pulseChrgOnTime = 60, pulseChrgOffTime = 20, impedanceReportingPeriod = 0 }))
local on_n, off_n = 0, 0
for _, smp in ipairs(rec[1].samples) do
	if smp.step == "DISCHARGE" and smp.t > 5 then
		if math.abs(smp.i) < 0.05 then
			off_n = off_n + 1
		elseif math.abs(smp.i + 2.0) < 0.05 then
			on_n = on_n + 1
		end
	end
end
t.ok(rec[1].ok, "pulse run passes")
t.ok(off_n > 20 and on_n > 3 * off_n * 0.8, ("pulse: the discharge pauses (%d s off, %d s on)"):format(off_n, on_n))

-- constant voltage: the charge current tapers near the cutoff, and
-- ZERO_AMP_THRESH (lowered to 0.05 A meanwhile, kept in EEPROM) comes back
local zat_before = dev:read_raw(batlab.UNIT, batlab.ZERO_AMP_THRESH)
local zat_during
rec = run({ 2 }, load({ numWarmupCycles = 0, numMeasurementCycles = 1, restPeriod = 10,
	constantVoltageEnable = true, impedanceReportingPeriod = 0 }), nil, function(n, smp)
	if not zat_during and smp.step_time > 5 then
		zat_during = pool:sim_reg(dev, batlab.UNIT, batlab.ZERO_AMP_THRESH)
	end
end)
local tapered = false
for _, smp in ipairs(rec[2].samples) do
	if smp.step == "CHARGE" and smp.i > 0 and smp.i < 1.5 then
		tapered = true
	end
end
t.ok(rec[2].ok, "constant-voltage run passes (" .. tostring(rec[2].msg) .. ")")
t.ok(tapered, "constant voltage: the charge current tapers below the rate")
t.is(zat_during, 400, "ZERO_AMP_THRESH is 0.05 A during the test")
t.is(dev:read_raw(batlab.UNIT, batlab.ZERO_AMP_THRESH), zat_before, "and back to what it was afterwards")

-- storage discharge: the test ends with a discharge to the storage voltage
rec = run({ 3 }, load({ numWarmupCycles = 0, numMeasurementCycles = 1, restPeriod = 10,
	storageDischarge = true, storageDischargeVoltage = 3.7, impedanceReportingPeriod = 0 }))
local last = rec[3].steps[#rec[3].steps]
t.is(last.name, "POSTDISCHARGE", "storage discharge: the last step")
t.ok(last.end_sample.voltage <= 3.7 and last.end_sample.voltage > 3.6,
	("ends at the storage voltage (%.3f V)"):format(last.end_sample.voltage))

-- impedance every N seconds: measured, and close to the model's
rec = run({ 0 }, load({ numWarmupCycles = 0, numMeasurementCycles = 1, restPeriod = 10,
	impedanceReportingPeriod = 600 }))
local zs = rec[0].impedance
t.ok(#zs >= 5, ("impedance measured every 600 s (%d readings)"):format(#zs))
local zmodel = 0.045 + 0.025 -- R0 + R1 at DC; the sine sees less of R1
local zok = #zs > 0
for _, z in ipairs(zs) do
	zok = zok and z > 0.03 and z < zmodel * 3
end
t.ok(zok, ("each reading plausible (first %.4f ohm)"):format(zs[1] or 0))

-- impedance checks draw a little charge (the 39 Hz sine's mean) from the
-- cell, which the device's counter adds to whatever the step counts: a
-- charge step's charge is net of it, so the coulombic efficiency is the
-- cell's with or without checks (0.982 against 0.995 when counted as charge)
local function ce_of(r)
	local charged, ce
	for _, st in ipairs(r.steps) do
		if st.kind == "charge" and st.meta.cycle == 1 then
			charged = (charged or 0) + st.ah
		elseif st.kind == "discharge" and st.meta.cycle == 2 then
			ce = st.ah / charged
		end
	end
	return ce
end
local ce_plain = ce_of(run({ 2 }, load({ numWarmupCycles = 1, numMeasurementCycles = 1, restPeriod = 60,
	impedanceReportingPeriod = 0 }))[2])
rec = run({ 2 }, load({ numWarmupCycles = 1, numMeasurementCycles = 1, restPeriod = 60,
	impedanceReportingPeriod = 60 }))
local ce_z = ce_of(rec[2])
t.ok(#rec[2].impedance > 200, ("impedance every 60 s (%d readings)"):format(#rec[2].impedance))
t.ok(ce_plain and ce_z and math.abs(ce_z - ce_plain) < 0.002,
	("coulombic efficiency %.4f with impedance checks, %.4f without"):format(ce_z or 0, ce_plain or 0))

-- discharge test with a timeout counted from the start of the test
local ds = load({ impedanceReportingPeriod = 0 })
ds._deadline = batlab.now() + 900
rec = run({ 1 }, ds, "discharge")
t.is(names(rec[1]), "DISCHARGE", "the discharge test is one discharge")
t.is(rec[1].steps[1].end_reason, "timeout", "ended by the timeout")
t.ok(math.abs(rec[1].steps[1].duration - 900) < 5, ("after %.0f s"):format(rec[1].steps[1].duration))
t.ok(rec[1].ok, "a timeout is a normal end of a discharge test")

-- ---- safety stops and a removed cell ------------------------------------------------

local short = load({ numWarmupCycles = 0, numMeasurementCycles = 1, restPeriod = 10, impedanceReportingPeriod = 0 })

-- external power lost while charging: the device stops the channel (NO_PSU)
local cut = false
rec = run({ 2 }, short, nil, function(n, smp, r)
	if not cut and smp.current > 0.5 and smp.step_time > 30 then
		cut = true
		pool:sim_fault(dev, "psu_lost", { value = 0 })
	end
end)
pool:sim_fault(dev, "psu_lost", { value = 1 })
batlab.sleep(3)
t.ok(rec[2].ok == false, "a safety stop fails the cell")
t.like(rec[2].msg, "CHARGE ended: safety %(NO_PSU%)", "and names the step and the error bit")

-- a hot cell trips the charge temperature limit
local hot = load({ numWarmupCycles = 0, numMeasurementCycles = 1, restPeriod = 10,
	chargeTemperatureCutoff = 35, impedanceReportingPeriod = 0 })
pool:sim_fault(dev, "self_heating", { slot = 3, value = 3.0 })
rec = run({ 3 }, hot)
pool:sim_fault(dev, "self_heating", { slot = 3, value = 0 })
t.like(rec[3].msg, "safety %(TEMP_LIMIT_CHG%)", "a temperature stop is reported as such")

-- a weak USB supply: VCC below 4.25 V stops the channel
rec = run({ 0 }, short, nil, function(n, smp, r)
	if smp.step_time > 20 and smp.step_time < 22 and r.current_step == "PRECHARGE" then
		pool:sim_fault(dev, "vcc_sag", { value = 4.15 })
	end
end)
pool:sim_fault(dev, "vcc_sag", { value = 5.0 })
batlab.sleep(3) -- until the device has measured VCC again
t.ok(rec[0].ok == false, "VCC sag fails the cell")
t.ok(rec[0].msg:find("LOW_VCC") or rec[0].msg:find("low VCC"), "naming low VCC (" .. tostring(rec[0].msg) .. ")")

-- the cell is taken out during the discharge
rec = run({ 1 }, short, nil, function(n, smp, r)
	if r.current_step == "DISCHARGE" and smp.step_time > 60 and smp.step_time < 62 then
		pool:sim_fault(dev, "cell_remove", { slot = 1 })
	end
end)
t.ok(rec[1].ok == false, "a removed cell ends that cell's test")
t.like(rec[1].msg, "DISCHARGE ended: removed", "with a clear result")
t.is(dev:read_raw(1, batlab.MODE) ~= batlab.MODE_DISCHARGE, true, "and the channel no longer discharges")
pool:sim_fault(dev, "cell_insert", { slot = 1 })

pool:close()
t.done()
