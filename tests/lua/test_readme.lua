-- The commands README.md and docs/procedures.md print, run exactly as
-- printed (those that need no hardware: the ones with --sim), from a fresh
-- directory holding only what a checkout has (docs/, scripts/). A comment
-- after a command ("# CELL2 VOLTAGE = 27385 (3.7608 V)") is what it must
-- print; a run must leave a results directory with its files filled.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local csv = require "batlab.csv"
local lfs = require "lfs"

local BATLAB = cli.abs_bin
local root = lfs.currentdir()
local tmp = cli.tmpdir()
local write, read = cli.write, cli.read
assert(os.execute(("ln -s %q %q && ln -s %q %q"):format(root .. "/docs", tmp .. "/docs",
	root .. "/scripts", tmp .. "/scripts")))

-- The commands of a document: indented code lines starting with `batlab `.
local function commands(doc)
	local out = {}
	for line in (read(doc) or ""):gmatch("[^\n]+") do
		local cmd = line:match("^    (batlab .*)$")
		if cmd and cmd:find("%-%-sim") then
			local text, want = cmd:match("^(.-)%s+#%s*(.*)$")
			out[#out + 1] = { cmd = text or cmd, want = want }
		end
	end
	return out
end

local function runs_before()
	local set = {}
	if lfs.attributes(tmp .. "/batlab-runs") then
		for d in lfs.dir(tmp .. "/batlab-runs") do
			set[d] = true
		end
	end
	return set
end

local n = 0
for _, doc in ipairs({ "README.md", "docs/procedures.md", "docs/characterisation.md" }) do
	local cmds = commands(doc)
	t.ok(#cmds > 0, ("%s prints commands (%d with --sim)"):format(doc, #cmds))
	for _, c in ipairs(cmds) do
		n = n + 1
		local before = runs_before()
		local shell = ("cd %q && %s%s > out.txt 2> err.txt"):format(tmp, BATLAB, c.cmd:sub(#"batlab" + 1))
		local _, how, code = os.execute(shell)
		local out, err = read(tmp .. "/out.txt") or "", read(tmp .. "/err.txt") or ""
		t.ok(how == "exit" and code == 0, ("%s: `%s` exits 0 (%s)"):format(doc, c.cmd, err:match("[^\n]*")))
		if c.want then
			t.ok(out:find(c.want, 1, true), ("`%s` prints '%s'"):format(c.cmd, c.want))
		end
		-- a run: its directory, filled
		for d in pairs(runs_before()) do
			if d ~= "." and d ~= ".." and not before[d] then
				local dir = tmp .. "/batlab-runs/" .. d
				local cells, rows = 0, 0
				for f in lfs.dir(dir .. "/cells") do
					if f:match("%.csv$") then
						cells = cells + 1
						rows = rows + #csv.parse(read(dir .. "/cells/" .. f) or "") - 1
					end
				end
				t.ok(cells > 0 and rows > 1000 * cells, ("`%s`: %d time series, %d rows"):format(c.cmd, cells, rows))
				local steps = csv.parse(read(dir .. "/steps.csv") or "")
				t.ok(#steps > cells, ("`%s`: steps.csv has the steps (%d)"):format(c.cmd, #steps - 1))
				t.like(read(dir .. "/summary.json") or "", '"verdict": "pass"', ("`%s`: summary.json"):format(c.cmd))
				t.like(out, "PASS", ("`%s` prints the verdicts"):format(c.cmd))
			end
		end
	end
end
t.ok(n >= 6, ("ran every documented --sim command (%d)"):format(n))
t.done()
