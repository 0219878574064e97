-- batlab.report.html - the page around the plots: one self-contained
-- file (styles inline, no scripts, no fonts, images or links to load), in
-- the XML syntax of HTML, so XML tools read it and an e-mail attachment or
-- a USB stick opens it the same way. Printing gives A4 pages with no plot
-- cut across two of them.
--
--   local html = require "batlab.report.html"
--   local page = html.page("title", { html.h(2, "Cells"), html.table(head, rows) })

local svg = require "batlab.report.svg"

local M = {}

M.escape = svg.escape
local esc = M.escape

-- Screen first, then print: A4 with margins, every figure and table row
-- kept whole, headings kept with what follows them.
M.STYLE = [[
body { font-family: sans-serif; font-size: 14px; color: #1a1a1a; margin: 24px auto; max-width: 1000px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 8px 0; }
h2 { font-size: 18px; border-bottom: 1px solid #bbb; padding-bottom: 2px; margin-top: 28px; }
h3 { font-size: 15px; margin: 18px 0 6px 0; }
table { border-collapse: collapse; margin: 6px 0 12px 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.meta th { width: 11em; }
.verdict-pass { color: #1d6b2b; font-weight: bold; }
.verdict-fail, .verdict-error { color: #b3261e; font-weight: bold; }
.verdict-incomplete { color: #8a5a00; font-weight: bold; }
.warn { color: #8a5a00; }
figure { margin: 8px 0 16px 0; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 12px; color: #555; }
svg .band-label { font-size: 9px; fill: #555; }
svg .axis-title { font-size: 12px; }
pre.events { font-size: 11px; background: #f7f7f7; border: 1px solid #ddd; padding: 6px; white-space: pre-wrap; }
details summary { cursor: pointer; }
@page { size: A4; margin: 12mm; }
@media print {
  body { margin: 0; max-width: none; padding: 0; font-size: 11px; }
  h2 { break-after: avoid; page-break-after: avoid; }
  h3 { break-after: avoid; page-break-after: avoid; }
  figure, tr, .cell-head { break-inside: avoid; page-break-inside: avoid; }
  figure svg { width: 100%; }
  details { display: block; }
  details > *:not(summary) { display: block; }
  pre.events { font-size: 8px; }
}
]]

-- attrs(t) -> ' k="v"...' in key order, values escaped.
local function attrs(t)
	if not t then
		return ""
	end
	local keys = {}
	for k in pairs(t) do
		keys[#keys + 1] = k
	end
	table.sort(keys)
	local out = {}
	for _, k in ipairs(keys) do
		out[#out + 1] = (' %s="%s"'):format(k, esc(t[k]))
	end
	return table.concat(out)
end

-- A value for a table cell: a string as text, a number with fmt, nil as
-- an empty cell, { html = "..." } as markup already made.
local function cell_text(v, fmt)
	if type(v) == "table" and v.html then
		return v.html
	elseif type(v) == "number" then
		return esc((fmt or "%.4g"):format(v))
	elseif v == nil then
		return ""
	end
	return esc(v)
end
M.cell_text = cell_text

-- el(tag, text [, attributes]) -> an element with escaped text.
function M.el(tag, text, a)
	return ("<%s%s>%s</%s>"):format(tag, attrs(a), esc(text), tag)
end

function M.h(level, text, a)
	return M.el("h" .. level, text, a)
end

-- table(head, rows [, opts]) -> a table; rows are lists of values (see
-- cell_text); opts.num = { [column] = fmt } right-aligns and formats
-- numbers; opts.class, opts.row_class(row) -> class of a row's cells.
function M.table(head, rows, opts)
	opts = opts or {}
	local out = { ("<table%s><thead><tr>"):format(attrs(opts.class and { class = opts.class })) }
	for _, h in ipairs(head) do
		out[#out + 1] = "<th>" .. esc(h) .. "</th>"
	end
	out[#out + 1] = "</tr></thead><tbody>"
	for _, row in ipairs(rows) do
		out[#out + 1] = "<tr>"
		for i = 1, #head do
			local fmt = opts.num and opts.num[i]
			local cls = fmt and ' class="num"' or ""
			out[#out + 1] = ("<td%s>%s</td>"):format(cls, cell_text(row[i], fmt))
		end
		out[#out + 1] = "</tr>"
	end
	out[#out + 1] = "</tbody></table>"
	return table.concat(out)
end

-- meta(pairs) -> a two-column table of { name, value } rows (key order
-- as given; values as for table()).
function M.meta(list)
	local out = { '<table class="meta"><tbody>' }
	for _, p in ipairs(list) do
		out[#out + 1] = ("<tr><th>%s</th><td>%s</td></tr>"):format(esc(p[1]), cell_text(p[2]))
	end
	out[#out + 1] = "</tbody></table>"
	return table.concat(out)
end

-- figure(svg_text, caption) -> the plot with its caption.
function M.figure(svg_text, caption)
	return "<figure>" .. svg_text .. (caption and ("<figcaption>" .. esc(caption) .. "</figcaption>") or "")
		.. "</figure>"
end

-- verdict(v) -> the verdict word, coloured by its class.
function M.verdict(v)
	v = v or "incomplete"
	return { html = ('<span class="verdict-%s">%s</span>'):format(esc(v):gsub("[^%w]", ""), esc(v:upper())) }
end

-- page(title, parts) -> the whole document.
function M.page(title, parts)
	return table.concat({
		'<!DOCTYPE html>',
		'<html xmlns="http://www.w3.org/1999/xhtml" lang="en">',
		'<head>',
		'<meta charset="utf-8"/>',
		'<meta name="viewport" content="width=device-width, initial-scale=1"/>',
		'<meta name="generator" content="batlab report"/>',
		"<title>" .. esc(title) .. "</title>",
		"<style>" .. M.STYLE .. "</style>",
		"</head>",
		"<body>",
		table.concat(parts, "\n"),
		"</body>",
		"</html>",
		"",
	}, "\n")
end

return M
