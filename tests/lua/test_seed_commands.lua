-- The seed's utility commands batlab has as its own, through the real
-- program: `batlab measure` across every connected Batlab (the seed's
-- `global measure`), and `batlab settings view FILE` (its `view settings`
-- for a file: every setting, or every problem and exit 2).
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")

local dir = arg[0]:match("^(.-)[^/]*$") .. "../../"
local tmp = cli.tmpdir()

-- ---- measure: every Batlab ----------------------------------------------------------

-- The lines of one unit's block: "Batlab N on PORT:" then VCC and cells.
local function blocks(out)
	local list, cur = {}, nil
	for line in out:gmatch("[^\n]+") do
		local sn, port = line:match("^Batlab (%d+) on (%S+):$")
		if sn then
			cur = { serial = tonumber(sn), port = port, cells = {} }
			list[#list + 1] = cur
		elseif cur then
			local c, v, rest = line:match("^CELL(%d): (%-?[%d.]+) V, (.*)$")
			if c then
				cur.cells[tonumber(c)] = { v = tonumber(v), mode = rest:match(", (%u[%u_]*)$") }
			elseif line:match("^VCC: ") then
				cur.vcc = tonumber(line:match("^VCC: ([%d.]+) V"))
			end
		end
	end
	return list
end

local code, out, err = cli.batlab("measure --sim --devices 2")
t.is(code, 0, "measure --sim --devices 2: exit 0 (" .. err .. ")")
local b = blocks(out)
t.is(#b, 2, "both Batlabs are measured")
t.ok(b[1] and b[1].serial == 1000 and b[1].port == "sim0" and b[2] and b[2].serial == 1001 and b[2].port == "sim1",
	"each under a line naming its serial and port, in serial-number order")
local full = true
for _, x in ipairs(b) do
	full = full and x.vcc and x.vcc > 4.9 and x.cells[0] and x.cells[3] and x.cells[0].mode == "IDLE"
end
t.ok(full, "each with its VCC and its four cells")

-- A layout whose two units hold different cells: each block shows its own.
code, out = cli.batlab("measure --sim=" .. dir .. "docs/examples/layout-mixed.json")
b = blocks(out)
t.is(code, 0, "measure on the mixed layout: exit 0")
t.is(b[1] and b[1].serial, 1000, "first unit 1000")
t.is(b[2] and b[2].serial, 131073, "second unit 131073")
t.is(b[1] and b[1].cells[3] and b[1].cells[3].mode, "BACKWARDS", "1000 CELL3: its reversed cell")
t.ok(b[1] and b[1].cells[0] and math.abs(b[1].cells[0].v - 4.19) < 0.02, "1000 CELL0: its full cell near 4.19 V")
t.ok(b[2] and b[2].cells[3] and math.abs(b[2].cells[3].v - 3.56) < 0.02 and b[2].cells[3].mode == "IDLE",
	"131073 CELL3: its own cell near 3.56 V")
t.is(b[2] and b[2].cells[1] and b[2].cells[1].mode, "NO_CELL", "131073 CELL1: empty")

-- One cell: that cell of every unit.
code, out = cli.batlab("measure --sim --devices 2 CELL2")
local n2 = select(2, out:gsub("\nCELL2: ", ""))
t.ok(code == 0 and n2 == 2 and not out:find("CELL0"), "measure CELL2: CELL2 of each unit, no other cell")

-- --serial (or --port): that unit only, as before (no heading line).
code, out = cli.batlab("measure --sim --devices 2 --serial 1001")
t.ok(code == 0 and not out:find("Batlab ") and select(2, out:gsub("CELL%d: ", "")) == 4,
	"measure --serial 1001: that unit's four cells only")
code, out = cli.batlab("measure --sim")
t.ok(code == 0 and not out:find("Batlab ") and out:find("^VCC: "), "one Batlab: the output as before")

-- The examples docs/cli.md prints, run exactly as printed (from the top of
-- the tree), their output as printed.
local root = cli.quote(dir)
local doc = assert(cli.read(dir .. "docs/cli.md"))
local shown = doc:match("```\n%$ batlab measure %-%-sim %-%-devices 2 CELL0\n(.-)```")
code, out = cli.batlab("measure --sim --devices 2 CELL0", "cd " .. root .. " &&")
t.is(out, shown, "docs/cli.md: batlab measure --sim --devices 2 CELL0, output as printed")
shown = doc:match("```\n%$ batlab settings view docs/examples/flat%.json\n(.-)```")
code, out = cli.batlab("settings view docs/examples/flat.json", "cd " .. root .. " &&")
local same = code == 0 and shown ~= nil
for line in (shown or ""):gmatch("[^\n]+") do
	same = same and (line == "  ..." or out:find("\n" .. line .. "\n", 1, true) ~= nil
		or out:sub(1, #line + 1) == line .. "\n")
end
t.ok(same, "docs/cli.md: batlab settings view docs/examples/flat.json, its lines as printed")
t.like(cli.read(dir .. "README.md"), "`batlab settings view\ndocs/examples/flat%.json`",
	"README.md prints that command too")

-- ---- settings view ------------------------------------------------------------------

local view = cli.runner("settings")
local o, e, c = view("view " .. dir .. "docs/examples/flat.json")
t.is(c, 0, "settings view FILE: exit 0 (" .. e .. ")")
t.like(o, "^Settings from .-docs/examples/flat%.json %(Python format%)\n", "names the file and its format")
t.like(o, "\n  cellPlaylistName +\"Example Flat\" ", "a value from the file")
t.like(o, "\n  lowVoltageCutoff +2%.8 V +discharge voltage limit", "with its unit and what it does")
t.like(o, "\n  restPeriod +120 s ", "restPeriod as in the file")
t.like(o, "\n  trickleChrgRate +0%.5 A .-%(default%)\n", "defaults are marked")
local missing = {}
for _, spec in ipairs(require("batlab.settings").KEYS) do
	if not o:find("\n  " .. spec.key .. " ", 1, true) then
		missing[#missing + 1] = spec.key
	end
end
t.is(table.concat(missing, " "), "", "every setting is shown")

o, e, c = view("view " .. dir .. "docs/examples/playlist.json")
t.is(c, 0, "a GUI playlist: exit 0")
t.like(o, "%(GUI playlist format%)", "read as a GUI playlist")

o, e, c = view("view " .. dir .. "docs/examples/flat.json --set restPeriod=30")
t.like(o, "\n  restPeriod +30 s .-%(%-%-set%)\n", "--set overrides, marked")

-- a bad file: every problem, exit 2, nothing on stdout
cli.write(tmp .. "/bad.json", '{ "highVoltageCutoff": 5.2, "chargeRate": "fast" }')
o, e, c = view("view " .. tmp .. "/bad.json")
t.is(c, 2, "a bad file: exit 2")
t.is(o, "", "nothing printed on stdout")
t.like(e, "batlab: settings view: .-/bad%.json: key 'highVoltageCutoff' = 5%.2 is outside 3%.0%.%.4%.4 V", "names the key and range")
t.like(e, "\nbatlab: settings view: .-/bad%.json: key 'chargeRate' = \"fast\" must be a number", "every problem, one a line")
o, e, c = view("view " .. dir .. "tests/data/settings/malformed.json")
t.ok(c == 2 and e:find("malformed%.json:5: invalid JSON"), "malformed JSON: the line, exit 2")
o, e, c = view("view " .. tmp .. "/missing.json")
t.ok(c == 2 and e:find("missing%.json: No such file"), "a missing file: exit 2")
o, e, c = view("view " .. dir .. "tests/data/settings/py-primary-cell.json")
t.ok(c == 2 and e:find("allowLowVoltageCutoff=true", 1, true), "a 1.0 V cutoff: refused, naming the option")
o, e, c = view("view " .. dir .. "tests/data/settings/py-primary-cell.json --set allowLowVoltageCutoff=true")
t.ok(c == 0 and o:find("\n  allowLowVoltageCutoff +true .-%(%-%-set%)\n"), "allowed with it")
t.like(e, "batlab: warning: .-'chargeRate' = 0 A: every charge step is skipped", "warnings on stderr")

-- usage errors
o, e, c = view("")
t.ok(c == 2 and e:find("a subcommand is needed"), "settings alone: usage, exit 2")
o, e, c = view("show x.json")
t.ok(c == 2 and e:find("unknown subcommand 'show'"), "an unknown subcommand: exit 2")
o, e, c = view("view")
t.ok(c == 2 and e:find("FILE missing"), "view without FILE: exit 2")
o, e, c = view("view a.json b.json")
t.ok(c == 2 and e:find("one FILE only"), "two files: exit 2")
o, e, c = view("view a.json --colour")
t.ok(c == 2 and e:find("unknown option '%-%-colour'"), "an unknown option: exit 2")
o, e, c = view("--help")
t.ok(c == 0 and o:find("usage: batlab settings view FILE"), "--help: exit 0")

require("batlab.fsutil").rm_rf(tmp)
t.done()
