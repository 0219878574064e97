-- batlab.runner - `batlab run`, `batlab cycletest` and `batlab dischargetest`:
-- load a procedure, open the Batlabs (or virtual ones), assign cells to
-- channels, run one task per cell, record every sample of every cell,
-- write the results directory, report. Exit codes: batlab.EXIT_* (README,
-- docs/batlab.1).
--
-- Each cell's procedure runs in a task of its own, bound to its channel:
-- however it ends (returns, fails, is cancelled) the scheduler makes the
-- channel safe in C (STOPPED, then IDLE, read back) before anything else.

local batlab = require "batlab"
local cellmod = require "batlab.cell"
local journal = require "batlab.journal"
local placement = require "batlab.placement"
local procedure = require "batlab.procedure"
local progress = require "batlab.progress"
local recording = require "batlab.recording"
local results = require "batlab.results"
local resume = require "batlab.resume"
local runargs = require "batlab.runargs"
local cjson = require "cjson"
local lfs = require "lfs"

local M = {}

-- Virtual runs are dated from this epoch (2000-01-01T00:00:00Z), so that
-- two runs with the same seed give byte-identical files.
local SIM_EPOCH = 946684800

local function err(msg)
	io.stderr:write("batlab: ", msg, "\n")
end

-- ---- the results directory -------------------------------------------------

local function run_dir(o, name)
	if o.out then
		return o.out
	end
	-- Named after the wall clock even for a virtual run (the data inside
	-- is dated from SIM_EPOCH), and never reused.
	local base = results.default_dir("batlab-runs", name, os.time())
	local dir, k = base, 1
	while lfs.attributes(dir) do
		k = k + 1
		dir = ("%s-%d"):format(base, k)
	end
	return dir
end

-- A stock test's Lexcelon log (none for other procedures): run.
local function open_lexcelon(R, run, name)
	local o, s = R.o, R.settings
	if R.proc.needs_settings and s then
		local text
		if o.settings then
			local f = io.open(o.settings)
			text = f and f:read("a")
			if f then
				f:close()
			end
		end
		R.lex = run:lexcelon_log(s.cellPlaylistName or name, text or cjson.encode(s),
			{ flush_steps_only = o.sim and true or false })
	end
	return run
end

local function open_results(R)
	local o, s, proc = R.o, R.settings, R.proc
	local name = (s and s.cellPlaylistName) or proc.name or "run"
	local devices = {}
	for _, dev in ipairs(R.pool:devices()) do
		devices[#devices + 1] = { serial = dev.sn, firmware = dev.ver, port = dev.port }
	end
	local run, rerr = results.open(run_dir(o, name), {
		start_time = R.epoch,
		clock = function() return batlab.now() - R.t0 end,
		procedure = proc.name, script = R.script, settings = s, settings_file = o.settings,
		settings_warnings = R.warnings, devices = devices, versions = { batlab = batlab.VERSION },
		options = { sim = o.sim or false, seed = o.seed, timeout = o.timeout },
		virtual_time = o.sim and true or false, gzip = o.gzip, -- gzip: the series as cells/<name>.csv.gz
	})
	if not run then
		return nil, rerr
	end
	-- The journal (batlab.journal): what `batlab resume` goes on from.
	local j, jerr = journal.open(run.dir, journal.wants_sync(o))
	if not j then
		run:close("error")
		return nil, jerr
	end
	R.journal = j
	j:write({ ev = "run", mode = R.mode, argv = resume.recorded_argv(R.argv), dev = R.dev, -- (no password)
		cwd = lfs.currentdir(), script = R.script, script_hash = journal.digest_file(R.script),
		settings_file = o.settings, settings_hash = o.settings and journal.digest_file(o.settings) or nil,
		epoch = R.epoch, sim = o.sim and true or false }, true)
	return open_lexcelon(R, run, name)
end

-- ---- one cell --------------------------------------------------------------

local function cell_event(R, c, text)
	c.cw:event(text)
	if R.lab then
		R.lab:event(c.name, text, batlab.now() - R.t0)
	end
	R.progress.event(c.name, text, batlab.now() - R.t0)
end

-- The cell object, its writer and its recording: from here on every
-- sample of the channel is a row of cells/<name>.csv.
local function new_cell(R, a)
	local c = { name = a.name, ch = a.ch, cycle = 0, step_no = 0 }
	c.cw = assert(R.run:cell(a.name, { serial = a.ch.dev.sn, channel = a.ch.index }))
	if not a.replay then
		R.journal:write({ ev = "cell", cell = a.name, serial = a.ch.dev.sn, channel = a.ch.index }, true)
	end
	c.cell = cellmod.new(a.ch.ch, { name = a.name, log_sink = function(line)
		cell_event(R, c, line)
	end })
	-- individualCellLogs: the cell's level-1 rows go to its own
	-- batlab-log_<playlist>_<cell>.csv (column header only), level 2 to
	-- the main log, as the seed did.
	local log1 = R.lex
	if R.lex and R.settings.individualCellLogs then
		log1 = assert(R.run:lexcelon_log(R.settings.cellPlaylistName, nil,
			{ cell = a.name, flush_steps_only = R.o.sim and true or false }))
	end
	local rec, rerr = recording.attach(c.cell, {
		series = c.cw:series(), t0 = R.t0, epoch = R.epoch,
		lexcelon = R.lex and { log1 = log1, log2 = R.lex, serial = a.ch.dev.sn, channel = a.ch.index,
			period = R.settings and R.settings.reportingPeriod or 1 },
		journal = R.journal, journal_every = R.o.sim and math.huge or 1, record = R.o.record or R.proc.record,
		feeds = R.lab and R.lab:feeds(a.name, a.ch.ch, a.ch.dev.sn, a.ch.index),
		-- the live lines: on a terminal only, redrawn at most every
		-- virtual second (they read c.cell.last)
		on_sample = R.progress.tty and function(smp)
			R.progress.draw(smp.time - R.t0)
		end or nil,
		sample_every = 1,
		on_step = function(row, sum, _, known)
			c.cw:step(row, known)
			if R.lab and not known then
				R.lab:step(c.name, row)
			end
			c.step, c.cycle = nil, row.cycle
			if known then -- replayed after a crash: told before it
				return
			end
			local errs = sum.errors and table.concat(sum.errors, "|") or sum.safety
			cell_event(R, c, ("%s ended: %s%s, %.4f Ah, %.4f Wh, %s"):format(sum.name, sum.end_reason,
				errs and (" (" .. tostring(errs) .. ")") or "", sum.ah or 0, sum.wh or 0,
				progress.hms(sum.duration or 0)))
		end,
		on_error = function(msg, code)
			cell_event(R, c, "recording: " .. msg)
			-- A test whose samples cannot be written is not worth running
			-- on: its procedure is stopped (its channel made safe).
			if code ~= "ECLOSED" and not c.failure then
				c.failure = "recording failed: " .. msg
				if c.task and c.task.status ~= "done" then
					c.task:cancel()
				end
			end
		end,
		on_label = function(labels) -- the live line shows them; a new step is an event
			if labels.step ~= c.step_no then
				c.step_no = labels.step
				if c.cell.replay then -- replaying after a crash: told before it
					return
				end
				cell_event(R, c, ("%s started (step %d, cycle %d, %s)"):format(labels.step_name or "?",
					labels.step, labels.cycle or 0, labels.cycle_kind or "other"))
			end
			c.step, c.cycle = labels.step_name, labels.cycle
		end,
	})
	if not rec then
		error("recording " .. a.name .. ": " .. tostring(rerr))
	end
	c.rec = rec
	if a.replay then -- resumed after a crash (batlab.resume)
		resume.attach(R, c, a)
	end
	R.cells[#R.cells + 1] = c
	return c
end

-- Run the cell's procedure in a task of its own and wait for its end.
local function run_cell(R, a)
	local c = new_cell(R, a)
	local t = batlab.spawn_for(a.ch.ch, R.proc.run, c.cell, R.params, { deadline = R.deadline })
	R.task_cell[t], c.task = c, t
	t:join()
	if t.status == "done" then
		local r = t.results
		c.result = { r[1], r[2], r[3] }
	elseif t.status == "failed" then
		c.failure = c.failure or tostring(t.error)
	end
	c.stats = resume.stats(c, c.rec:stats())
	c.rec:close()
	if t.status ~= "cancelled" and not c.interrupted then
		R.journal:write({ ev = "done", cell = c.name, result = c.result and recording.plain(c.result),
			failure = c.failure, records = recording.plain(c.cell.records) }, true)
	end
	return c
end

-- One task per channel: its cell, then (more cells than channels) the
-- next waiting cell once the operator has swapped them.
local function slot_task(R, a)
	while a do
		run_cell(R, a)
		local next_name = table.remove(R.queue, 1)
		if not next_name then
			return
		end
		local ok, why = placement.swap(R.o, R.pool, a.ch, a.name, next_name, function(msg)
			R.run:event(msg)
			R.progress.line(("[%s] %s"):format(progress.hms(batlab.now() - R.t0), msg))
		end)
		if not ok then
			R.run:event(why)
			R.progress.line("batlab: " .. why)
			table.insert(R.queue, 1, next_name)
			return
		end
		a = { ch = a.ch, name = next_name }
	end
end

local function log_news(R, news)
	for _, m in ipairs(news) do
		R.run:event(m)
	end
end

local function start_tasks(R, plan)
	local running, pace = 0, R.o.speed and R.o.speed > 0 and R.o.sim
	-- Each task adds its cell before it first waits: run.json is written
	-- once the watcher (spawned last) first runs, not once per cell.
	R.run:hold_meta()
	for _, a in ipairs(plan) do
		running = running + 1
		batlab.spawn(function()
			slot_task(R, a)
			running = running - 1
			if running == 0 and R.watching then -- no more news to wait for
				log_news(R, R.pool:messages())
				R.watcher:cancel()
			end
		end)
	end
	if R.o.speed and R.o.speed > 0 and not R.o.sim then
		R.run:event("--speed applies to virtual runs only; ignored")
	end
	-- The run's watcher: the devices' news (plugged, unplugged, reset,
	-- silent) into events.log as it comes, and with --speed the pace:
	-- every tenth of a virtual second it waits for the real clock to
	-- catch up with virtual time / speed (and logs the news every second).
	R.watcher = batlab.spawn(function()
		local tick = 0
		assert(R.run:release_meta())
		while running > 0 do
			if pace then
				batlab.sleep(0.1)
				tick = tick + 1
				batlab._pace(batlab.now() - R.t0, R.o.speed)
				log_news(R, tick % 10 == 0 and R.pool:messages() or {})
			else
				R.watching = true
				log_news(R, R.pool:wait_messages())
				R.watching = false
			end
		end
	end)
end

-- ---- verdicts --------------------------------------------------------------

-- A procedure returns ok [, message [, verdict]]: true passes, false
-- fails, and a third value may say "error" (the test could not be done,
-- e.g. a safety stop) or "incomplete" instead of "fail". One that returns
-- nothing passes, saying so. A procedure that raised is an error; one that
-- never finished (Ctrl-C) is incomplete.
local VERDICTS = { pass = true, fail = true, error = true, incomplete = true }

local function cell_verdict(c)
	if c.interrupted then -- a crash cut it short and it could not go on
		return "incomplete", "interrupted: " .. c.interrupted
	elseif c.result and c.failure then -- it returned, but its recording failed
		return "error", c.failure:match("^[^\n]*")
	elseif c.result then
		local r = c.result
		local msg = r[2] ~= nil and tostring(r[2]) or nil
		if r[1] then
			return "pass", msg
		elseif r[1] == nil and r[2] == nil and r[3] == nil then
			-- It ran to its end without a claim: what it measured is in
			-- the files; nothing failed.
			return "pass", "completed (the procedure returned no verdict)"
		end
		return VERDICTS[r[3]] and r[3] ~= "pass" and r[3] or "fail", msg or "the procedure reported a failure"
	elseif c.failure then
		return "error", c.failure:match("^[^\n]*")
	end
	return "incomplete", "interrupted"
end

-- One line per cell: verdict, why (the procedure's own words when it
-- passed), and the figures a tester looks at first.
local function summary_line(name, verdict, sum, reason)
	local parts = { ("%-16s %-10s"):format(name, verdict:upper()) }
	local why = verdict == "pass" and reason or sum.reason or reason
	if why and why ~= "" then
		parts[#parts + 1] = why
	end
	if type(sum.capacity_ah) == "number" then
		-- a discharge that did not reach its end voltage measured part of it
		parts[#parts + 1] = ("capacity %.4f Ah"):format(sum.capacity_ah)
			.. (sum.capacity_complete == false and (" (incomplete: %s)"):format(sum.capacity_note) or "")
	end
	if type(sum.coulombic_efficiency) == "number" then
		parts[#parts + 1] = ("CE %.4f"):format(sum.coulombic_efficiency)
	elseif type(sum.capacity_ah) == "number" and sum.coulombic_efficiency_note then
		-- the why, without its explanation in parentheses (summary.json
		-- keeps it whole)
		parts[#parts + 1] = "CE n/a: " .. sum.coulombic_efficiency_note:gsub("%s*%b()$", "")
	end
	if type(sum.impedance_ohm) == "number" then
		parts[#parts + 1] = ("Z %.4f ohm"):format(sum.impedance_ohm)
	end
	if type(sum.temp_rise_c) == "number" then
		parts[#parts + 1] = ("dT %.1f K"):format(sum.temp_rise_c)
	end
	return table.concat(parts, "  ")
end

-- Summaries, verdict lines, files; the exit code.
local function finish(R, interrupted)
	local worst = batlab.EXIT_OK
	R.progress.clear()
	local out = {}
	for _, c in ipairs(R.cells) do
		if c.rec.rec then -- interrupted: the slot task never closed it
			c.stats = resume.stats(c, c.rec:stats())
			c.rec:close()
		end
		c.cw:samples(c.stats or {}, c.rec.impedance)
		local verdict, reason = cell_verdict(c)
		-- A procedure that passed still fails on impedance above the
		-- settings' threshold: the summary decides that.
		local extra = verdict ~= "pass" and { verdict = verdict, reason = reason } or { message = reason }
		if next(c.cell.records) ~= nil then
			extra.records = c.cell.records -- what the procedure recorded
		end
		local sum = c.cw:summary(extra) or {}
		local v = sum.verdict or verdict
		if R.lab then
			R.lab:summary(c.name, sum, v)
		end
		out[#out + 1] = sum
		if v ~= "pass" and worst == batlab.EXIT_OK then
			worst = batlab.EXIT_FAILED
		end
		local line = summary_line(c.name, v, sum, reason)
		R.run:event("verdict: " .. line:gsub("%s+", " "))
		if not R.o.json then
			io.stdout:write(line, "\n")
		end
	end
	for _, name in ipairs(R.queue) do -- cells that never got a channel
		worst = worst == batlab.EXIT_OK and batlab.EXIT_FAILED or worst
		if not R.o.json then
			io.stdout:write(("%-16s %-10s no channel became free for it\n"):format(name, "UNTESTED"))
		end
	end
	local outcome = interrupted and "interrupted" or worst == batlab.EXIT_OK and "completed" or "failed"
	R.run:close(outcome)
	local lok, lerr = true, nil
	if R.lab then
		lok, lerr = R.lab:close(outcome)
	end
	if not lok then
		err(lerr)
	end
	R.journal:write({ ev = "closed", outcome = outcome })
	R.journal:close()
	R.pool:close()
	-- report.html from the closed run's files (batlab.report); a report
	-- that cannot be written is said, the run's result stands
	local report, rerr
	if not R.o.no_report then
		report, rerr = require("batlab.report").write_run(R.run.dir)
		if not report then
			err("report: " .. tostring(rerr))
		end
	end
	if R.o.json then
		io.stdout:write(results.json_encode({ dir = R.run.dir, cells = out,
			outcome = interrupted and "interrupted" or worst == batlab.EXIT_OK and "pass" or "fail" }), "\n")
	else
		io.stdout:write(("results: %s\n"):format(R.run.dir))
		if report then
			io.stdout:write(("report: %s\n"):format(report))
		end
	end
	return interrupted and batlab.EXIT_INTERRUPTED or worst
end

-- A failing procedure's message (with its traceback) goes to its cell's
-- events; other tasks' failures to the run's.
local function log_failures(R)
	batlab.task_log(function(task, msg)
		local c = R.task_cell[task]
		if c then
			c.failure = msg
			cell_event(R, c, "procedure failed: " .. msg)
		else
			R.run:event(msg)
			err(msg)
		end
	end)
end

-- ---- the run -----------------------------------------------------------------

-- Everything before the devices: options, procedure, parameters. R | nil, code.
local function prepare(mode, argv, dev)
	local o, perr = runargs.parse(mode, argv, dev)
	if not o then
		err(perr)
		return nil, batlab.EXIT_USAGE
	end
	if o.help and not (mode == "run" and o.script) then
		io.stdout:write(runargs.USAGE[mode])
		return nil, batlab.EXIT_OK
	end
	local proc, script = procedure.load(mode, o)
	if not proc then
		err(script)
		return nil, batlab.EXIT_USAGE
	end
	if o.help then
		io.stdout:write(procedure.help(proc, script), runargs.USAGE[mode])
		return nil, batlab.EXIT_OK
	end
	local params, s, warnings = procedure.params(o, proc)
	if not params then
		err(s)
		return nil, batlab.EXIT_USAGE
	end
	for _, w in ipairs(warnings or {}) do
		err("warning: " .. w)
	end
	if o.timeout and mode ~= "dischargetest" and not (s and proc.needs_settings) then
		err("--timeout applies to discharge tests")
		return nil, batlab.EXIT_USAGE
	end
	return { o = o, proc = proc, script = script, params = params, settings = s, mode = mode, argv = argv,
		dev = dev,
		warnings = warnings, cells = {}, task_cell = setmetatable({}, { __mode = "k" }) }
end

-- The Batlabs (or virtual ones): true | nil, code.
local function open_pool(R, dev)
	local pool, oerr, code = batlab.open(dev)
	if not pool then
		err(oerr)
		return nil, code == "EINVAL" and batlab.EXIT_USAGE or batlab.EXIT_DEVICE
	end
	R.pool = pool
	return true
end

-- What connecting said and the settings' warnings in events.log; the
-- progress lines.
local function opened(R)
	for _, m in ipairs(R.pool:messages()) do
		R.run:event(m, R.resumed_at or 0)
	end
	for _, w in ipairs(R.warnings or {}) do
		R.run:event("settings warning: " .. w, R.resumed_at or 0)
	end
	R.progress = progress.new(R.o, R.cells, R.t0)
end

-- Devices, cell placement, results. true | nil, code.
local function open_all(R)
	local o = R.o
	local lok, lerr = require("batlab.labsink").check(R)
	if not lok then
		err(lerr)
		return nil, batlab.EXIT_USAGE
	end
	local ok, code = open_pool(R, { sim = o.sim, devices = o.devices, seed = o.seed, port = o.port,
		serial = o.serial })
	if not ok then
		return nil, code
	end
	local pool = R.pool
	local plan, left = placement.assign(o, placement.all_channels(pool), R.settings)
	if not plan or #plan == 0 then
		err(plan and "no cell to test: every channel is empty (insert cells, or check the layout)" or left)
		pool:close()
		return nil, plan and batlab.EXIT_DEVICE or batlab.EXIT_USAGE
	end
	R.plan, R.queue = plan, left
	R.t0 = batlab.now()
	R.epoch = o.sim and SIM_EPOCH or os.time()
	R.deadline = o.timeout and R.t0 + o.timeout or nil
	local run, rerr = open_results(R)
	if not run then
		err(rerr)
		pool:close()
		return nil, batlab.EXIT_USAGE
	end
	R.run = run
	local lab, lerr = require("batlab.labsink").open(R)
	if lerr then
		err(lerr)
		run:close("error")
		pool:close()
		return nil, batlab.EXIT_USAGE
	end
	R.lab = lab
	opened(R)
	return true
end

-- What `batlab resume` shares with a run (batlab.resume).
local PARTS = { open_pool = open_pool, open_lexcelon = open_lexcelon, opened = opened, err = err }

-- main(mode, argv, dev) -> exit code. dev: the device-selection options
-- (sim, devices, seed, port, serial) as the command line parsed them.
function M.main(mode, argv, dev)
	local R, code
	if mode == "resume" then
		R, code = resume.prepare(argv, dev, prepare, err)
	else
		R, code = prepare(mode, argv, dev)
	end
	if not R then
		return code
	end
	local ok, ocode
	if R.resume then
		ok, ocode = resume.open(R, PARTS)
	else
		ok, ocode = open_all(R)
	end
	if not ok then
		return ocode
	end
	log_failures(R)
	start_tasks(R, R.plan)
	if #R.queue > 0 then
		R.run:event(("%d cell(s) wait for a free channel: %s"):format(#R.queue, table.concat(R.queue, ", ")))
	end
	R.run:event(("started %d cell(s)"):format(#R.plan))
	local finished, why = batlab.run()
	batlab.task_log(nil)
	for _, m in ipairs(R.pool:messages()) do -- the devices' last news
		R.run:event(m)
	end
	if not finished then
		R.run:event(why == "interrupted" and "interrupted: every channel was made safe, the tests ended"
			or ("the run stopped: " .. tostring(why)))
	end
	for _, name in ipairs(R.queue) do
		R.run:event(("cell %s not tested"):format(name))
	end
	return finish(R, not finished and why == "interrupted")
end

return M
