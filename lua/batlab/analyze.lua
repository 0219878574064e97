-- batlab.analyze - `batlab analyze RUN_DIR [--bin-mv MV] [--smooth N]
-- [--capacity AH] [--min-step-ah AH]`: reads a run directory (summary.json,
-- steps.csv, cells/*.csv) and writes RUN_DIR/analysis/: cycles.csv,
-- dqdv.csv, dvdq.csv, resistance.csv and analysis.json (what each holds:
-- docs/characterisation.md, "Analysis"). The computations are
-- batlab.cycle_analysis'.

local cjson = require "cjson"
local csv = require "batlab.csv"
local fsutil = require "batlab.fsutil"
local ca = require "batlab.cycle_analysis"

local M = {}

local USAGE = [[
usage: batlab analyze RUN_DIR [--bin-mv MV] [--smooth N] [--capacity AH] [--min-step-ah AH]

Per-cycle statistics, throughput, dQ/dV and dV/dQ, and the resistance at
every current step of a run, written to RUN_DIR/analysis/.

  --bin-mv MV        dQ/dV voltage bin (default 5 mV)
  --smooth N         moving average over N bins (odd, default 5; 1: none)
  --capacity AH      nominal capacity for equivalent full cycles
                     (default: each cell's largest cycle discharge)
  --min-step-ah AH   dQ/dV and dV/dQ only for steps moving this much
                     (default 0.1 Ah)
]]

local function fail(msg)
	io.stderr:write("batlab: analyze: ", msg, "\n")
	return 2
end

local function args_of(argv)
	local o = { bin_mv = 5, smooth = 5, min_step_ah = 0.1 }
	local k = 1
	while k <= #argv do
		local a = argv[k]
		local key = a:match("^%-%-([%w-]+)$")
		if a == "-h" or a == "--help" then
			o.help = true
		elseif key == "bin-mv" or key == "smooth" or key == "capacity" or key == "min-step-ah" then
			local v = tonumber(argv[k + 1])
			if not v or v <= 0 then
				return nil, ("--%s needs a number > 0, got %s"):format(key, tostring(argv[k + 1]))
			end
			o[key:gsub("-", "_")] = v
			k = k + 1
		elseif a:sub(1, 1) == "-" then
			return nil, ("unknown option '%s' (see 'batlab analyze --help')"):format(a)
		elseif o.dir then
			return nil, "one RUN_DIR only"
		else
			o.dir = a
		end
		k = k + 1
	end
	if o.smooth % 2 ~= 1 then
		return nil, "--smooth must be an odd whole number"
	end
	return o
end

-- A CSV file's rows as tables by column name.
local function rows_of(path)
	local text, err = fsutil.read_file(path)
	if not text then
		return nil, err
	end
	local rows, out = csv.parse(text), {}
	local head = rows[1] or {}
	for r = 2, #rows do
		local row = {}
		for i, name in ipairs(head) do
			row[name] = rows[r][i]
		end
		out[#out + 1] = row
	end
	return out
end

local function series_of(path)
	local rows, err = rows_of(path)
	if not rows then
		return nil, err
	end
	local out = {}
	for _, r in ipairs(rows) do
		local t, v = tonumber(r["Test Time / s"]), tonumber(r["Voltage / V"])
		if t and v then
			out[#out + 1] = { t = t, cycle = tonumber(r.Cycle) or 0, step = tonumber(r.Step) or 0, mode = r.Mode,
				v = v, i = tonumber(r["Current / A"]) or 0, temp = tonumber(r["Temperature / degC"]),
				q = tonumber(r["Charge / Ah"]) or 0 }
		end
	end
	return out
end

local function steps_of(rows, cell)
	local out = {}
	for _, r in ipairs(rows) do
		if r.Cell == cell then
			out[#out + 1] = { cycle = tonumber(r.Cycle) or 0, step = tonumber(r.Step), name = r["Step Name"],
				kind = r["Step Kind"], ah = tonumber(r["Charge / Ah"]) or 0, wh = tonumber(r["Energy / Wh"]) or 0 }
		end
	end
	return out
end

local function write(path, head, rows)
	local parts = { csv.line(head) }
	for _, r in ipairs(rows) do
		parts[#parts + 1] = csv.line(r, #head)
	end
	return fsutil.write_atomic(path, table.concat(parts))
end

local CYCLE_COLS = { "cycle", "chg_ah", "chg_wh", "dis_ah", "dis_wh", "ce", "ee", "chg_avg_v", "dis_avg_v",
	"cv_s", "cv_ah", "temp_rise", "throughput_ah", "efc" }

-- One cell: its figures, and rows for the CSV files.
local function analyze_cell(name, series, steps, o, out)
	local cycles = ca.cycles(steps, series, o.capacity)
	for _, c in ipairs(cycles) do
		local row = { name, csv.num(c.cycle, "%d") }
		for k = 2, #CYCLE_COLS do
			local v = c[CYCLE_COLS[k]]
			row[#row + 1] = v and csv.num(v, "%.6f") or ""
		end
		out.cycles[#out.cycles + 1] = row
	end
	local by_step = {}
	for _, s in ipairs(series) do
		by_step[s.step] = by_step[s.step] or {}
		table.insert(by_step[s.step], s)
	end
	local peaks = {}
	for _, st in ipairs(steps) do
		local rows = by_step[st.step]
		if rows and (st.kind == "charge" or st.kind == "discharge") and st.ah >= o.min_step_ah then
			local curve, peak = ca.dqdv(rows, o.bin_mv / 1000, o.smooth)
			for _, p in ipairs(curve) do
				out.dqdv[#out.dqdv + 1] = { name, st.step, st.kind, csv.num(p[1], "%.4f"), csv.num(p[2], "%.4f") }
			end
			for _, p in ipairs(ca.dvdq(rows, st.ah / 100, o.smooth)) do
				out.dvdq[#out.dvdq + 1] = { name, st.step, st.kind, csv.num(p[1], "%.5f"), csv.num(p[2], "%.4f") }
			end
			peaks[#peaks + 1] = peak and { step = st.step, name = st.name, kind = st.kind, v = peak[1],
				dqdv = peak[2] } or nil
		end
	end
	local rs, ohms = ca.resistances(series, 0.2, 2.0), {}
	for _, r in ipairs(rs) do
		ohms[#ohms + 1] = r.ohms
		out.res[#out.res + 1] = { name, csv.num(r.t, "%.3f"), csv.num(r.dt, "%.3f"), csv.num(r.i_from, "%.4f"),
			csv.num(r.i_to, "%.4f"), csv.num(r.v_from, "%.4f"), csv.num(r.v_to, "%.4f"), csv.num(r.ohms, "%.5f") }
	end
	local last = cycles[#cycles]
	return { cycles = #cycles, throughput_ah = last and last.throughput_ah, efc = last and last.efc,
		dqdv_peaks = peaks, current_steps = #rs, resistance_median_ohm = ca.median(ohms) }
end

local function run(o)
	local sum = fsutil.read_file(o.dir .. "/summary.json")
	if not sum then
		return fail(o.dir .. ": no summary.json (not a finished run directory)")
	end
	local ok, summary = pcall(cjson.decode, sum)
	if not ok or type(summary.cells) ~= "table" then
		return fail(o.dir .. "/summary.json: not a run summary")
	end
	local steps = rows_of(o.dir .. "/steps.csv") or {}
	local out = { cycles = {}, dqdv = {}, dvdq = {}, res = {} }
	local json = { params = { bin_mv = o.bin_mv, smooth_bins = o.smooth, capacity_ah = o.capacity,
		min_step_ah = o.min_step_ah, resistance_min_di_a = 0.2, resistance_max_dt_s = 2.0 }, cells = {} }
	for _, c in ipairs(summary.cells) do
		local series, serr
		if type(c.file) == "string" then
			series, serr = series_of(o.dir .. "/" .. c.file)
		end
		if series then
			json.cells[c.name] = analyze_cell(c.name, series, steps_of(steps, c.name), o, out)
		elseif serr then -- (a damaged .csv.gz: the run's other cells are still analysed)
			io.stderr:write(("batlab: analyze: warning: cell %s not analysed: %s\n"):format(c.name, serr))
		end
	end
	local dir = o.dir .. "/analysis"
	local made, merr = fsutil.mkdir_p(dir)
	if not made then
		return fail(dir .. ": " .. tostring(merr))
	end
	local head = { "Cell" }
	for _, k in ipairs(CYCLE_COLS) do
		head[#head + 1] = k
	end
	write(dir .. "/cycles.csv", head, out.cycles)
	write(dir .. "/dqdv.csv", { "Cell", "Step", "Kind", "Voltage / V", "dQ/dV / Ah/V" }, out.dqdv)
	write(dir .. "/dvdq.csv", { "Cell", "Step", "Kind", "Charge / Ah", "dV/dQ / V/Ah" }, out.dvdq)
	write(dir .. "/resistance.csv", { "Cell", "Test Time / s", "Interval / s", "Current From / A",
		"Current To / A", "Voltage From / V", "Voltage To / V", "Resistance / Ohm" }, out.res)
	fsutil.write_atomic(dir .. "/analysis.json", cjson.encode(json) .. "\n")
	io.stdout:write(("analysis: %s (%d cycle rows, %d dQ/dV points, %d current steps)\n"):format(dir,
		#out.cycles, #out.dqdv, #out.res))
	return 0
end

-- main(argv) -> exit status.
function M.main(argv)
	local o, err = args_of(argv)
	if not o then
		return fail(err)
	end
	if o.help then
		io.stdout:write(USAGE)
		return 0
	end
	if not o.dir then
		io.stderr:write(USAGE)
		return 2
	end
	return run(o)
end

M.USAGE = USAGE
return M
