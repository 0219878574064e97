-- batlab.runner - `batlab run`, `batlab cycletest` and `batlab dischargetest`:
-- load a procedure, open the Batlabs (or virtual ones), assign cells to
-- channels, run one task per cell, write the results directory, report.
--
-- Exit codes (README, docs/batlab.1): 0 every cell passed, 1 a cell failed
-- its verdict (or its procedure failed), 2 usage or settings error, 3
-- device or communication error, 130 interrupted.

local batlab = require "batlab"
local cellmod = require "batlab.cell"
local results = require "batlab.results"
local settings = require "batlab.settings"
local cjson = require "cjson"
local lfs = require "lfs"

local M = {}

local EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DEVICE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
-- Virtual runs are dated from this epoch (2000-01-01T00:00:00Z), so that
-- two runs with the same seed give byte-identical files.
local SIM_EPOCH = 946684800

local USAGE = {
	run = [[
usage: batlab run SCRIPT [options] [NAME...]

Run a test procedure (a Lua file returning a table with run(cell, params))
on the connected Batlabs, one task per cell.

Options:
  --settings FILE      Lexcelon settings / cell playlist (JSON)
  --cell CH=NAME       put cell NAME on channel CH (0.. across Batlabs in
                       serial-number order, or SERIAL:CH); repeatable
  --cells-from FILE    cell names, one per line, onto the channels in order
  --set KEY=VALUE      override a setting or procedure parameter; repeatable
  --out DIR            results directory (default batlab-runs/NAME-DATE)
  --sim[=LAYOUT]       virtual Batlab(s) in virtual time (default layout:
                       one unit, four cells)
  --devices N          with --sim: number of virtual units
  --seed S             with --sim: noise seed
  --port PATH          real hardware on this port only
  --serial N           only the Batlab with this serial number
  --timeout S          end discharges S seconds after the test started
  --speed X            with --sim: run at X times real time (to watch a dry
                       run; default: as fast as possible)
  --json               print the final summary as JSON on standard output
  --quiet              no progress output
]],
}
USAGE.cycletest = [[
usage: batlab cycletest [--settings FILE] [options] NAME...

Lexcelon's stock cycle test (scripts/cycle-test.lua): cells NAME... go
onto the channels in order, across Batlabs in serial-number order. Takes
the options of 'batlab run' (see 'batlab run --help').
]]
USAGE.dischargetest = [[
usage: batlab dischargetest [--settings FILE] [--timeout S] [options] NAME...

Lexcelon's stock discharge test (scripts/discharge-test.lua). Takes the
options of 'batlab run' (see 'batlab run --help').
]]

local function err(msg)
	io.stderr:write("batlab: ", msg, "\n")
end

-- ---- arguments ----------------------------------------------------------

local VALUED = {
	["--settings"] = true, ["--cell"] = true, ["--cells-from"] = true, ["--set"] = true,
	["--out"] = true, ["--devices"] = true, ["--seed"] = true, ["--port"] = true,
	["--serial"] = true, ["--timeout"] = true, ["--speed"] = true,
}

local function parse_args(mode, argv)
	local o = { cells = {}, sets = {}, names = {} }
	local i = 1
	while i <= #argv do
		local a = argv[i]
		local key, val = a:match("^(%-%-[%w-]+)=(.*)$")
		key = key or a
		if key == "--help" or key == "-h" then
			o.help = true
		elseif key == "--json" then
			o.json = true
		elseif key == "--quiet" then
			o.quiet = true
		elseif key == "--sim" then
			o.sim = val or true
		elseif VALUED[key] then
			if not val then
				i = i + 1
				val = argv[i]
				if val == nil then
					return nil, key .. " needs a value"
				end
			end
			if key == "--cell" then
				o.cells[#o.cells + 1] = val
			elseif key == "--set" then
				o.sets[#o.sets + 1] = val
			else
				o[key:sub(3):gsub("-", "_")] = val
			end
		elseif a:sub(1, 2) == "--" then
			return nil, ("unknown option '%s' (see 'batlab %s --help')"):format(a, mode)
		elseif mode == "run" and not o.script then
			o.script = a
		else
			o.names[#o.names + 1] = a
		end
		i = i + 1
	end
	for _, k in ipairs({ "devices", "seed", "serial", "timeout", "speed" }) do
		if o[k] ~= nil then
			local n = tonumber(o[k])
			if not n or n < 0 or (k ~= "timeout" and k ~= "speed" and n ~= math.floor(n)) then
				return nil, ("--%s: '%s' is not a valid number"):format(k, o[k])
			end
			o[k] = n
		end
	end
	return o
end

-- Where the stock scripts live: beside lua/ in the source tree, or under
-- share/batlab/ once installed.
local function stock_script(name)
	local luadir = batlab.luadir() or "lua"
	for _, dir in ipairs({ luadir .. "/../scripts", luadir .. "/../../scripts", "scripts" }) do
		local path = dir .. "/" .. name
		local f = io.open(path)
		if f then
			f:close()
			return path
		end
	end
	return nil
end

-- ---- cells onto channels -----------------------------------------------

local function read_names(path)
	local f, e = io.open(path)
	if not f then
		return nil, e
	end
	local names = {}
	for line in f:lines() do
		local n = line:match("^%s*(.-)%s*$")
		if n ~= "" and n:sub(1, 1) ~= "#" then
			names[#names + 1] = n
		end
	end
	f:close()
	return names
end

-- Every channel of every Batlab, in serial-number order.
local function all_channels(pool)
	local list = {}
	for _, dev in ipairs(pool:devices()) do
		for c = 0, 3 do
			list[#list + 1] = { dev = dev, index = c, ch = dev:channel(c), global = #list }
		end
	end
	return list
end

local function find_channel(chans, spec)
	local sn, c = spec:match("^(%d+):(%d+)$")
	if sn then
		for _, ch in ipairs(chans) do
			if ch.dev.sn == tonumber(sn) and ch.index == tonumber(c) then
				return ch
			end
		end
		return nil
	end
	local g = tonumber(spec)
	return g and chans[g + 1] or nil
end

-- A slot with no cell (or a cell in backwards) is skipped, and the name goes
-- to the next slot: Lexcelon's `global cycletest` dropped the name instead.
local function occupied(ch)
	local mode = ch.dev:read(ch.index, batlab.MODE)
	return mode ~= nil and mode ~= batlab.MODE_NO_CELL and mode ~= batlab.MODE_BACKWARDS, mode
end

local function assign(o, chans, s)
	local plan, used = {}, {}
	for _, spec in ipairs(o.cells) do
		local where, name = spec:match("^([^=]+)=(.+)$")
		if not where then
			return nil, ("--cell '%s': expected CH=NAME"):format(spec)
		end
		local ch = find_channel(chans, where)
		if not ch then
			return nil, ("--cell '%s': no channel %s (%d channels connected)"):format(spec, where, #chans)
		end
		if used[ch] then
			return nil, ("--cell '%s': channel %s is given twice"):format(spec, where)
		end
		used[ch] = true
		plan[#plan + 1] = { ch = ch, name = name }
	end
	local names = o.names
	if #names == 0 and o.cells_from then
		local n, e = read_names(o.cells_from)
		if not n then
			return nil, "--cells-from: " .. tostring(e)
		end
		names = n
	end
	if #names == 0 and #plan == 0 and s and s.cellNames and #s.cellNames > 0 then
		names = s.cellNames
	end
	local left = {}
	local k = 1
	for _, ch in ipairs(chans) do
		if k > #names then
			break
		end
		if not used[ch] then
			if occupied(ch) then
				plan[#plan + 1] = { ch = ch, name = names[k] }
				used[ch] = true
				k = k + 1
			end
		end
	end
	for j = k, #names do
		left[#left + 1] = names[j]
	end
	if #plan == 0 and #names == 0 and #o.cells == 0 then
		-- No names at all: every occupied channel, named SERIAL-CH.
		for _, ch in ipairs(chans) do
			if occupied(ch) then
				plan[#plan + 1] = { ch = ch, name = ("%d-%d"):format(ch.dev.sn, ch.index) }
			end
		end
	end
	table.sort(plan, function(a, b) return a.ch.global < b.ch.global end)
	return plan, left
end

-- ---- progress -------------------------------------------------------------

local function hms(t)
	t = math.floor(t + 0.5)
	return ("%d:%02d:%02d"):format(t // 3600, t // 60 % 60, t % 60)
end

local function new_progress(o, cells, t0)
	local tty = not o.quiet and not o.json and os.getenv("TERM") ~= nil and os.getenv("TERM") ~= "dumb"
		and batlab.isatty and batlab.isatty(1)
	local p = { tty = tty, quiet = o.quiet or o.json, last_draw = -1 }
	function p.line(text)
		if p.quiet then
			return
		end
		if p.tty then
			io.stdout:write("\r\27[J") -- the live lines go; they come back at the next draw
		end
		io.stdout:write(text, "\n")
		io.stdout:flush()
	end
	function p.event(cell, text, t)
		p.line(("[%s] %s: %s"):format(hms(t), cell, text))
	end
	-- On a terminal: one live line per channel, redrawn at most every
	-- virtual second (the cursor goes back up over them).
	function p.draw(t)
		if not p.tty or t - p.last_draw < 1 then
			return
		end
		-- Virtual time runs far faster than a terminal can show: redraw
		-- at most ten times a second of the program's own (CPU) time.
		local cpu = os.clock()
		if p.last_cpu and cpu - p.last_cpu < 0.1 then
			return
		end
		p.last_cpu = cpu
		p.last_draw = t
		local out = {}
		for _, c in ipairs(cells) do
			local s = c.last
			out[#out + 1] = s and ("\27[K%-12s %-9s %6.3f V %7.3f A %5.1f C %7.4f Ah  cycle %s  %s"):format(
				c.name, c.step or "", s.voltage, s.current, s.temp_c or 0, math.abs(s.charge_ah or 0),
				tostring(c.cycle or 0), hms(t - t0)) or ("\27[K%-12s waiting"):format(c.name)
		end
		io.stdout:write(table.concat(out, "\n"), "\27[", #out - 1 > 0 and tostring(#out - 1) or "0",
			#out > 1 and "A\r" or "\r")
		io.stdout:flush()
	end
	return p
end

-- ---- the run ---------------------------------------------------------------

-- A procedure returns ok [, message [, verdict]]: true passes, false
-- fails, and a third value may say "error" (the test could not be done,
-- e.g. a safety stop) or "incomplete" instead of "fail". A procedure that
-- raised is an error; one that never finished (Ctrl-C) is incomplete.
local VERDICTS = { pass = true, fail = true, error = true, incomplete = true }

local function cell_verdict(c)
	if c.result then
		local r = c.result
		local msg = r[2] ~= nil and tostring(r[2]) or nil
		if r[1] then
			return "pass", msg
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
		parts[#parts + 1] = ("capacity %.4f Ah"):format(sum.capacity_ah)
	end
	if type(sum.coulombic_efficiency) == "number" then
		parts[#parts + 1] = ("CE %.4f"):format(sum.coulombic_efficiency)
	end
	if type(sum.impedance_ohm) == "number" then
		parts[#parts + 1] = ("Z %.4f ohm"):format(sum.impedance_ohm)
	end
	if type(sum.temp_rise_c) == "number" then
		parts[#parts + 1] = ("dT %.1f K"):format(sum.temp_rise_c)
	end
	return table.concat(parts, "  ")
end

function M.main(mode, argv)
	local o, perr = parse_args(mode, argv)
	if not o then
		err(perr)
		return EXIT_USAGE
	end
	if o.help then
		io.stdout:write(USAGE[mode])
		return EXIT_OK
	end
	local script = o.script
	if mode ~= "run" then
		script = stock_script(mode == "cycletest" and "cycle-test.lua" or "discharge-test.lua")
		if not script then
			err("cannot find the stock scripts (scripts/cycle-test.lua)")
			return EXIT_USAGE
		end
	elseif not script then
		err("run: which script? (see 'batlab run --help')")
		return EXIT_USAGE
	end
	local proc, perr2 = batlab.load_procedure(script)
	if not proc then
		err(perr2)
		return EXIT_USAGE
	end
	if type(proc) == "function" then
		proc = { name = script:match("([^/]+)%.lua$") or script, run = proc }
	end
	if type(proc) ~= "table" or type(proc.run) ~= "function" then
		err(script .. ": a procedure returns a function, or a table with run(cell, params)")
		return EXIT_USAGE
	end

	-- settings and parameters
	local s, warnings, info
	if o.settings or proc.needs_settings then
		if o.settings then
			s, warnings, info = settings.load(o.settings, o.sets)
		else
			s, warnings, info = settings.parse("{}", "(defaults)", o.sets)
		end
		if not s then
			err(warnings)
			return EXIT_USAGE
		end
		for _, w in ipairs(warnings) do
			err("warning: " .. w)
		end
	end
	local params = s
	if not params then
		params = {}
		for k, v in pairs(proc.params or {}) do
			params[k] = v
		end
		for _, kv in ipairs(o.sets) do
			local k, v = kv:match("^([%w_]+)=(.*)$")
			if not k then
				err(("--set '%s': expected KEY=VALUE"):format(kv))
				return EXIT_USAGE
			end
			if v == "true" or v == "false" then
				params[k] = v == "true"
			else
				params[k] = tonumber(v) or v
			end
		end
	end
	local deadline
	if o.timeout then
		if mode ~= "dischargetest" and not (s and proc.needs_settings) then
			err("--timeout applies to discharge tests")
			return EXIT_USAGE
		end
	end

	-- devices
	local pool, oerr, code = batlab.open{
		sim = o.sim, devices = o.devices, seed = o.seed, port = o.port, serial = o.serial,
	}
	if not pool then
		err(oerr)
		return code == "EINVAL" and EXIT_USAGE or EXIT_DEVICE
	end
	local chans = all_channels(pool)
	local plan, left = assign(o, chans, s)
	if not plan then
		err(left)
		pool:close()
		return EXIT_USAGE
	end
	if #plan == 0 then
		err("no cell to test: every channel is empty (insert cells, or check the layout)")
		pool:close()
		return EXIT_DEVICE
	end

	-- results
	local t0 = batlab.now()
	local epoch = o.sim and SIM_EPOCH or os.time()
	local name = (s and s.cellPlaylistName) or proc.name or "run"
	local devices = {}
	for _, dev in ipairs(pool:devices()) do
		devices[#devices + 1] = { serial = dev.sn, firmware = dev.ver, port = dev.port }
	end
	-- The directory is named after the wall clock even for a virtual run
	-- (the data inside is dated from SIM_EPOCH), and never reuses one.
	local dir = o.out
	if not dir then
		local base = results.default_dir("batlab-runs", name, os.time())
		dir = base
		local k = 1
		while lfs.attributes(dir) do
			k = k + 1
			dir = ("%s-%d"):format(base, k)
		end
	end
	local run, rerr = results.open(dir, {
		start_time = epoch,
		clock = function() return batlab.now() - t0 end,
		procedure = proc.name, script = script, settings = s, settings_file = o.settings,
		settings_warnings = warnings, devices = devices, versions = { batlab = batlab.VERSION },
		options = { sim = o.sim or false, seed = o.seed, timeout = o.timeout },
		virtual_time = o.sim and true or false,
	})
	if not run then
		err(rerr)
		pool:close()
		return EXIT_USAGE
	end
	local lex
	if proc.needs_settings and s then
		local text
		if o.settings then
			local f = io.open(o.settings)
			text = f and f:read("a")
			if f then
				f:close()
			end
		end
		lex = run:lexcelon_log(s.cellPlaylistName or name, text or cjson.encode(s))
	end
	if o.timeout then
		deadline = t0 + o.timeout
	end

	-- one task per channel: its cell, then (when there are more cells than
	-- channels) the next waiting cell once the operator has swapped them
	local cells = {}
	local queue = left
	local progress = new_progress(o, cells, t0)

	local function new_cell(a)
		local c = { name = a.name, ch = a.ch, step_no = 0, cycle = 0, kind = "other" }
		c.cw = run:cell(a.name, { serial = a.ch.dev.sn, channel = a.ch.index })
		c.cell = cellmod.new(a.ch.ch, { name = a.name, log_sink = function(line)
			c.cw:event(line)
			progress.event(a.name, line, batlab.now() - t0)
		end })
		local ctx = { deadline = deadline }
		c.ctx = ctx
		function ctx.begin_step(_, step_name, meta)
			c.step_no = c.step_no + 1
			c.step = step_name
			c.cycle, c.kind = meta and meta.cycle or c.cycle, meta and meta.kind or c.kind
			c.step_start = batlab.now() - t0
			c.z = nil
			progress.event(a.name, ("%s (cycle %d, %s)"):format(step_name, c.cycle, c.kind), c.step_start)
		end
		-- One row table per cell, refilled at every sample: the writers
		-- copy what they need, and a run makes hundreds of thousands.
		local row, lrow = {}, { name = a.name, serial = a.ch.dev.sn, channel = a.ch.index }
		function ctx.sample(_, smp)
			c.last = smp
			local t = smp.time - t0
			row.time, row.step_time, row.cycle, row.cycle_kind = t, smp.step_time, c.cycle, c.kind
			row.step, row.step_name, row.mode_name = c.step_no, c.step, smp.mode_name
			row.voltage, row.current, row.temp_c = smp.voltage, smp.current, smp.temp_c
			row.charge_ah, row.energy_wh, row.vcc = smp.charge_ah, smp.energy_wh, smp.vcc
			row.errors, row.impedance = smp.error_names, c.z
			c.cw:sample(row)
			if lex then
				lrow.time, lrow.voltage, lrow.current, lrow.temp_c = t, smp.voltage, smp.current, smp.temp_c
				lrow.impedance, lrow.energy_wh, lrow.charge_ah = c.z, smp.energy_wh, smp.charge_ah
				lrow.state, lrow.vcc = c.step, smp.vcc
				lex:level1(lrow)
			end
			c.z = nil
			progress.draw(t)
		end
		function ctx.impedance(_, z)
			c.z = z
		end
		function ctx.event(_, text)
			c.cw:event(text)
			progress.event(a.name, text, batlab.now() - t0)
		end
		function ctx.cycle(_, meta)
			c.cycle, c.kind = meta.cycle, meta.kind
		end
		function ctx.end_step(_, sum, meta)
			local zs = {}
			for _, z in ipairs(sum.impedance or {}) do
				zs[#zs + 1] = z.ohms
			end
			local avg_z = results.median(zs)
			local step = {
				cycle = meta and meta.cycle or c.cycle, cycle_kind = meta and meta.kind or c.kind,
				step = c.step_no, step_name = sum.name, start = c.step_start,
				-- a storage discharge is no cycle's capacity
				kind = meta and meta.kind == "storage" and "storage" or sum.kind,
				duration = sum.duration, end_reason = sum.end_reason,
				safety_stop = sum.errors or (sum.safety and { sum.safety }) or nil,
				charge_ah = sum.ah, energy_wh = sum.wh, avg_v = sum.avg_v,
				avg_i = (sum.kind == "discharge" and -1 or 1) * (sum.avg_i or 0),
				temp_start = sum.temp_start, temp_end = sum.temp_end, impedance = avg_z,
			}
			c.cw:step(step)
			if lex then
				lex:level2{
					name = a.name, serial = a.ch.dev.sn, channel = a.ch.index,
					time = batlab.now() - t0, state = sum.name, charge_ah = sum.ah, energy_wh = sum.wh,
					avg_impedance = avg_z, delta_temp = sum.temp_rise, avg_current = sum.avg_i,
					avg_voltage = sum.avg_v, runtime = sum.duration,
				}
			end
			progress.event(a.name, ("%s done: %s, %.4f Ah, %.4f Wh, %s"):format(sum.name, sum.end_reason,
				sum.ah or 0, sum.wh or 0, hms(sum.duration or 0)), batlab.now() - t0)
		end
		cells[#cells + 1] = c
		return c
	end

	-- The placement flow (more cells than channels): say which cell to
	-- take out and which to put in, then wait for the slot to empty and
	-- fill again. On the virtual Batlab the virtual operator does it: it
	-- takes the cell out, and the layout's operator queue (or, without
	-- one, the runner) puts a fresh cell in after the operator's delay.
	local function swap(ch, done_name, next_name)
		local where = ("Batlab %d channel %d"):format(ch.dev.sn, ch.index)
		local msg = ("%s is done: take it out of %s and put in %s"):format(done_name, where, next_name)
		run:event(msg)
		progress.line(("[%s] %s"):format(hms(batlab.now() - t0), msg))
		if o.sim then
			pool:sim_fault(ch.dev, "cell_remove", { slot = ch.index })
		end
		local gone_at
		while true do
			local smp = ch.ch:wait(60)
			local mode = smp and smp.mode_name
			if not gone_at and (mode == "NO_CELL" or mode == "BACKWARDS") then
				gone_at = batlab.now()
			elseif gone_at and mode == "IDLE" then
				break
			end
			if o.sim and gone_at and batlab.now() - gone_at > 60 then
				pool:sim_fault(ch.dev, "cell_insert", { slot = ch.index })
			end
		end
		run:event(("%s inserted in %s"):format(next_name, where))
	end

	local function slot_task(a)
		while a do
			local c = new_cell(a)
			local ok, r1, r2, r3 = xpcall(proc.run, debug.traceback, c.cell, params, c.ctx)
			if ok then
				c.result = { r1, r2, r3 }
			else
				-- as the scheduler does for a failing task: the message,
				-- then the channel safe, then the next cell
				c.failure = tostring(r1)
				c.cw:event("procedure failed: " .. c.failure)
				c.cell:stop()
				c.cell:idle()
			end
			local next_name = table.remove(queue, 1)
			if not next_name then
				break
			end
			swap(a.ch, a.name, next_name)
			a = { ch = a.ch, name = next_name }
		end
	end

	local running = 0
	for _, a in ipairs(plan) do
		running = running + 1
		batlab.spawn_for(a.ch.ch, function()
			slot_task(a)
			running = running - 1
		end)
	end
	if o.speed and o.speed > 0 then
		if not o.sim then
			run:event("--speed applies to virtual runs only; ignored")
		else
			-- a pacing task: every tenth of a virtual second, wait for the
			-- real clock to catch up with virtual time / speed
			batlab.spawn(function()
				while running > 0 do
					batlab.sleep(0.1)
					batlab._pace(batlab.now() - t0, o.speed)
				end
			end)
		end
	end
	if #queue > 0 then
		run:event(("%d cell(s) wait for a free channel: %s"):format(#queue, table.concat(queue, ", ")))
	end
	run:event(("started %d cell(s)"):format(#plan))

	local finished, why = batlab.run()
	local interrupted = not finished and why == "interrupted"
	for _, name in ipairs(queue) do
		run:event(("cell %s not tested"):format(name))
	end

	-- verdicts, summaries, files
	local worst = EXIT_OK
	local out = {}
	for _, c in ipairs(cells) do
		local verdict, reason = cell_verdict(c)
		-- A procedure that passed still fails on impedance above the
		-- settings' threshold: the summary decides that.
		local extra = verdict ~= "pass" and { verdict = verdict, reason = reason } or { message = reason }
		if next(c.cell.records) ~= nil then
			extra.records = c.cell.records -- what the procedure recorded
		end
		local sum = c.cw:summary(extra) or {}
		local v = sum.verdict or verdict
		out[#out + 1] = sum
		if v ~= "pass" and worst == EXIT_OK then
			worst = EXIT_FAILED
		end
		if not o.json then
			io.stdout:write(summary_line(c.name, v, sum, reason), "\n")
		end
	end
	run:close(interrupted and "interrupted" or worst == EXIT_OK and "completed" or "failed")
	pool:close()
	if o.json then
		io.stdout:write(results.json_encode({ dir = run.dir, cells = out,
			outcome = interrupted and "interrupted" or worst == EXIT_OK and "pass" or "fail" }), "\n")
	else
		io.stdout:write(("results: %s\n"):format(run.dir))
	end
	if interrupted then
		return EXIT_INTERRUPTED
	end
	return worst
end

M._parse_args = parse_args
return M
