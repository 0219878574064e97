-- CSV injection (OWASP): text batlab writes into a CSV that a spreadsheet
-- would run as a formula (= + - @ TAB CR first, not a number) is written
-- quoted with a ' in front, in every CSV of a run; numbers stay numbers.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local csv = require "batlab.csv"
local lfs = require "lfs"

-- ---- the field formatter (src/host/csv.c, bl_csv_text) ------------------------
t.is(csv.field('=HYPERLINK("x")'), [["'=HYPERLINK(""x"")"]], "= text: quoted, ' in front, quotes doubled")
t.is(csv.field("-A1"), [["'-A1"]], "- text")
t.is(csv.field("+A1"), [["'+A1"]], "+ text")
t.is(csv.field("@SUM(A1)"), [["'@SUM(A1)"]], "@ text")
t.is(csv.field("\tx"), "\"'\tx\"", "TAB first")
t.is(csv.field("-"), [["'-"]], "a lone -")
t.is(csv.field("-1.5"), "-1.5", "a negative number as text stays a number")
t.is(csv.field("+2e-3"), "+2e-3", "a signed number with exponent stays a number")
t.is(csv.field("-1e"), [["'-1e"]], "not quite a number is text")
t.is(csv.field(-2.5), "-2.5", "a negative number stays a number")
t.is(csv.field("a=b"), "a=b", "= inside the text is harmless")
t.is(require("batlab").csv_line("s,d,s", "=1+1", -3, "ok"), [["'=1+1",-3,ok]] .. "\n", "batlab.csv_line")

-- ---- a virtual run with hostile cell names --------------------------------------
local BATLAB = cli.bin
local tmp = cli.tmpdir()
local write, read = cli.write, cli.read

local settings = tmp .. "/quick.json"
write(settings, [[{ "cellPlaylistName": "inj", "numMeasurementCycles": 1, "restPeriod": 30,
  "impedanceReportingPeriod": 600, "highVoltageCutoff": 4.2, "lowVoltageCutoff": 2.8 }]])
local cmd = ("%s cycletest --settings %s --sim --out %s/r --quiet '=HYPERLINK(\"x\")' -A1 > %s/out 2> %s/err")
	:format(BATLAB, settings, tmp, tmp, tmp)
local ok, how, code = os.execute(cmd)
t.is(code, 0, "cycletest with names =HYPERLINK(\"x\") and -A1 exits 0 (" .. (read(tmp .. "/err") or ""):sub(1, 300) .. ")")

local files = { "steps.csv", "summary.csv", "batlab-log_inj.csv" }
for f in lfs.dir(tmp .. "/r/cells") do
	if f:match("%.csv$") then
		files[#files + 1] = "cells/" .. f
	end
end
t.ok(#files >= 5, "two per-cell CSVs (" .. table.concat(files, " ") .. ")")

local function is_number(s)
	return s:match("^[+-]?%d*%.?%d+[eE][+-]?%d+$") or s:match("^[+-]?%d+%.?%d*$") or s:match("^[+-]?%.%d+$")
end

for _, f in ipairs(files) do
	local text = read(tmp .. "/r/" .. f) or ""
	local bad, negatives = {}, 0
	for _, row in ipairs(csv.parse(text)) do
		for _, field in ipairs(row) do
			local c = field:sub(1, 1)
			if c == "=" or c == "+" or c == "-" or c == "@" then
				if is_number(field) then
					negatives = negatives + 1
				else
					bad[#bad + 1] = field
				end
			end
		end
	end
	t.is(#bad, 0, f .. ": no field a spreadsheet runs (" .. table.concat(bad, " | ") .. ")")
	if f:match("^cells/") then
		t.ok(negatives > 0, f .. ": negative numbers are written as numbers")
	end
end
for _, f in ipairs({ "steps.csv", "summary.csv", "batlab-log_inj.csv" }) do
	local text = read(tmp .. "/r/" .. f) or ""
	t.ok(text:find([["'=HYPERLINK(""x"")"]], 1, true), f .. ": the = name is written with a ' in front")
	t.ok(text:find([["'-A1"]], 1, true), f .. ": the -A1 name is written with a ' in front")
end

os.execute("rm -rf " .. tmp)
t.done()
