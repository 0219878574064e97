-- batlab.report.sections - the parts of a report page made of text: the
-- run's header, the summary table, the events log, and each cell's
-- section around its plots (batlab.report.figures).

local figures = require "batlab.report.figures"
local html = require "batlab.report.html"
local load = require "batlab.report.load"

local M = {}

local val = load.val

-- Failed cells first, then errors, incomplete ones, passes.
local RANK = { fail = 1, error = 2, incomplete = 3, pass = 4 }

local function verdict_of(cell)
	return cell.summary and val(cell.summary.verdict) or "incomplete"
end

-- sorted(cells) -> the cells, failed first, else in run order.
function M.sorted(cells)
	local out = {}
	for i, c in ipairs(cells) do
		out[i] = { c = c, i = i }
	end
	table.sort(out, function(a, b)
		local ra, rb = RANK[verdict_of(a.c)] or 0, RANK[verdict_of(b.c)] or 0
		if ra ~= rb then
			return ra < rb
		end
		return a.i < b.i
	end)
	for i, e in ipairs(out) do
		out[i] = e.c
	end
	return out
end

-- A duration in seconds as h:mm:ss.
function M.duration(s)
	s = tonumber(s)
	if not s then
		return nil
	end
	s = math.floor(s + 0.5)
	return ("%d:%02d:%02d (%d s)"):format(s // 3600, s // 60 % 60, s % 60, s)
end

local function text_of(v)
	v = val(v)
	if math.type(v) == "float" and v == math.floor(v) and math.abs(v) < 2 ^ 53 then
		return ("%d"):format(v) -- JSON has one number type: 1000.0 is serial 1000
	end
	if type(v) == "table" then
		local parts = {}
		for k, x in pairs(v) do
			parts[#parts + 1] = type(k) == "number" and tostring(val(x)) or (k .. " " .. tostring(val(x)))
		end
		table.sort(parts)
		return table.concat(parts, ", ")
	end
	return v ~= nil and tostring(v) or nil
end

local function outcome_text(o)
	o = val(o)
	if type(o) ~= "table" then
		return "not closed (the run did not finish, or is still running)"
	end
	local s = tostring(val(o.status) or "?")
	return val(o.message) and (s .. ": " .. tostring(o.message)) or s
end

local function devices_text(meta)
	local parts = {}
	for _, d in ipairs(val(meta.devices) or {}) do
		parts[#parts + 1] = ("serial %s on %s, firmware %s"):format(text_of(d.serial) or "?",
			text_of(d.port) or "?", text_of(d.firmware) or "?")
	end
	if val(meta.virtual_time) then
		parts[#parts + 1] = "(virtual Batlab, virtual time)"
	end
	return table.concat(parts, "; ")
end

local function cells_text(meta)
	local parts = {}
	for _, c in ipairs(val(meta.cells) or {}) do
		parts[#parts + 1] = ("%s (serial %s, channel %s)"):format(text_of(c.name) or "?",
			text_of(c.serial) or "?", text_of(c.channel) or "?")
	end
	return table.concat(parts, ", ")
end

-- The warnings a reader must see: the settings', the report's own notes.
function M.warnings(run)
	local out = {}
	for _, w in ipairs(val(run.meta.settings_warnings) or {}) do
		out[#out + 1] = "settings: " .. tostring(w)
	end
	for _, n in ipairs(run.notes) do
		out[#out + 1] = n
	end
	return out
end

-- header(run) -> the run's table: what ran, on what, when, how it ended.
function M.header(run)
	local m = run.meta
	local warn = M.warnings(run)
	local rows = {
		{ "Procedure", text_of(m.procedure) or text_of(m.script) or "?" },
		{ "Settings file", text_of(m.settings_file) },
		{ "Devices", devices_text(m) },
		{ "Cells", cells_text(m) },
		{ "Start", text_of(m.start) },
		{ "Duration", M.duration(val(m.duration_s)) },
		{ "Outcome", outcome_text(m.outcome) },
		{ "Warnings", #warn > 0 and { html = '<span class="warn">' .. html.escape(table.concat(warn, "; ")) .. "</span>" }
			or "none" },
		{ "Run directory", run.dir },
	}
	if run.source then -- read from elsewhere than the directory
		rows[#rows + 1] = { "Read from", run.source }
	end
	return html.meta(rows)
end

-- The settings (or the procedure's parameters) as a compact table.
function M.settings(run)
	local s = val(run.meta.settings) or val(run.meta.params)
	if type(s) ~= "table" then
		return ""
	end
	local keys = {}
	for k in pairs(s) do
		keys[#keys + 1] = tostring(k)
	end
	table.sort(keys)
	local rows = {}
	for i = 1, #keys, 2 do
		rows[#rows + 1] = { keys[i], text_of(s[keys[i]]), keys[i + 1], keys[i + 1] and text_of(s[keys[i + 1]]) }
	end
	return html.h(3, val(run.meta.settings) and "Settings" or "Parameters")
		.. html.table({ "key", "value", "key", "value" }, rows)
end

local function n(v)
	v = val(v)
	return type(v) == "number" and v or nil
end

-- summary_rows(cells [, label]) -> the rows of the summary table, with
-- label (the run, in a comparison) as the first column when given.
function M.summary_rows(cells, label)
	local rows = {}
	for _, c in ipairs(M.sorted(cells)) do
		local s = c.summary or {}
		local ce = n(s.coulombic_efficiency)
		local row, at = {}, label and 1 or 0
		row[1] = label
		local values = { c.name, ("%s / %s"):format(text_of(c.info.serial) or "?", text_of(c.info.channel) or "?"),
			html.verdict(verdict_of(c)), text_of(s.reason) or (c.summary and "" or "no summary"),
			n(s.capacity_ah), ce and ce * 100, n(s.energy_wh), n(s.impedance_ohm), n(s.temp_rise_c),
			n(s.cycles_completed), text_of(s.records) }
		for i = 1, #M.SUMMARY_HEAD do
			row[at + i] = values[i]
		end
		rows[#rows + 1] = row
	end
	return rows
end

M.SUMMARY_HEAD = { "Cell", "Serial / channel", "Verdict", "Reason", "Capacity / Ah", "CE / %",
	"Energy / Wh", "Impedance / Ω", "Temp. rise / K", "Cycles", "Recorded" }

-- The number formats of the summary columns, shifted by `at` columns.
function M.summary_formats(at)
	local out = {}
	for k, v in pairs({ [5] = "%.4f", [6] = "%.2f", [7] = "%.4f", [8] = "%.5f", [9] = "%.1f", [10] = "%d" }) do
		out[k + at] = v
	end
	return out
end

function M.summary(run)
	return html.table(M.SUMMARY_HEAD, M.summary_rows(run.cells), { num = M.summary_formats(0) })
end

-- cell(cell, index) -> the cell's section: heading, its plots.
function M.cell(cell, index)
	local id = "cell" .. index
	local s = cell.summary or {}
	local parts = { ('<section class="cell" id="%s">'):format(id),
		html.h(3, ("Cell %s — %s"):format(cell.name, verdict_of(cell):upper()), { class = "cell-head" }),
		html.el("p", ("%s: %d samples, %d steps. %s"):format(cell.file, cell.ts.rows, #cell.steps,
			text_of(s.reason) or "")) }
	local plots = {
		{ figures.voltage_current(cell, id .. "-vi"), "Shaded: the steps (charge red, discharge blue, rest grey)." },
		{ figures.temperature(cell, id .. "-temp") },
		{ figures.capacity(cell, id .. "-cycles") },
		{ figures.discharge_curves(cell, id .. "-curves"), "Voltage against charge taken out, per discharge." },
		{ figures.impedance(cell, id .. "-z") },
		{ figures.dqdv(cell, id .. "-dqdv") },
	}
	for _, p in ipairs(plots) do
		if p[1] then
			parts[#parts + 1] = html.figure(p[1], p[2])
		end
	end
	parts[#parts + 1] = "</section>"
	return table.concat(parts, "\n")
end

-- events(run) -> the events log as it is (first EVENTS_MAX lines).
function M.events(run)
	local text = table.concat(run.events, "\n")
	if run.events_more > 0 then
		text = text .. ("\n... %d more line(s) in events.log"):format(run.events_more)
	end
	return '<pre class="events">' .. html.escape(text) .. "</pre>"
end

return M
