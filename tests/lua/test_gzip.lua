-- Compressed time series (`--gzip`, docs/results.md): a run writes
-- cells/<name>.csv.gz holding, once inflated, the bytes the same run
-- writes uncompressed; run.json names it; the report and `batlab analyze`
-- read it as they read the .csv; a killed run's file inflates to every
-- row flushed before the kill; what `batlab resume` does to such a file
-- (cut to whole rows, written again as a whole gzip file, appended to).
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local cjson = require "cjson"
local lfs = require "lfs"
local fsutil = require "batlab.fsutil"
local resume = require "batlab.resume"

local tmp = cli.tmpdir()
local q, read = cli.quote, cli.read

-- sh text -> its standard output, exit status (stderr to tmp/err)
local function sh(cmd)
	local p = io.popen(cmd .. " 2>" .. q(tmp .. "/err") .. "; echo \"rc=$?\"")
	local out = p:read("a")
	p:close()
	local body, rc = out:match("^(.-)rc=(%d+)\n$")
	return body, tonumber(rc)
end

local function zcat(path)
	return sh("zcat " .. q(path))
end

local function files_in(dir)
	local names = {}
	for e in lfs.dir(dir) do
		if e ~= "." and e ~= ".." then
			names[#names + 1] = e
		end
	end
	table.sort(names)
	return table.concat(names, " ")
end

-- ---- the same seed with and without --gzip: the same bytes -----------------------

local CELLS = { "A", "B", "C", "D" }
local function pair(name, extra)
	local plain, gz = tmp .. "/" .. name .. "-plain", tmp .. "/" .. name .. "-gz"
	local c1 = cli.batlab(("cycletest --sim --seed 5 --quiet %s --out %s A B C D"):format(extra, q(plain)))
	local c2, _, err = cli.batlab(("cycletest --sim --seed 5 --quiet --gzip %s --out %s A B C D")
		:format(extra, q(gz)))
	t.ok(c1 == 0 and c2 == 0, name .. ": both runs complete " .. err)
	t.is(files_in(gz .. "/cells"), "A.csv.gz B.csv.gz C.csv.gz D.csv.gz", name .. ": cells/ holds .csv.gz only")
	for _, c in ipairs(CELLS) do
		local want = read(plain .. "/cells/" .. c .. ".csv") or ""
		local got, rc = zcat(gz .. "/cells/" .. c .. ".csv.gz")
		t.ok(rc == 0 and #want > 1000 and got == want,
			("%s %s: zcat gives the uncompressed run's %d bytes byte for byte (got %d, zcat exit %s)")
				:format(name, c, #want, #got, tostring(rc)))
		local size = lfs.attributes(gz .. "/cells/" .. c .. ".csv.gz", "size") or 0
		t.ok(size > 0 and size * 3 < #want, ("%s %s: %d bytes compressed of %d"):format(name, c, size, #want))
	end
	return plain, gz
end

local plain, gz = pair("full", "")
local thin_plain, thin_gz = pair("every30", "--record every=30")
t.ok(#(read(thin_plain .. "/cells/A.csv") or "") * 5 < #(read(plain .. "/cells/A.csv") or ""),
	"--record every=30 thins the rows (the pair above compared those)")
t.is(thin_gz:match("[^/]*$"), "every30-gz", "(the thinned pair's directory)")

-- run.json and summary.json name the real files.
local run = cjson.decode(read(gz .. "/run.json") or "{}")
local listed, named = {}, {}
for _, f in ipairs(run.files or {}) do
	listed[f] = true
end
for _, c in ipairs(run.cells or {}) do
	named[#named + 1] = c.file
end
t.is(table.concat(named, " "), "cells/A.csv.gz cells/B.csv.gz cells/C.csv.gz cells/D.csv.gz",
	"run.json's cells name cells/<name>.csv.gz")
t.ok(listed["cells/A.csv.gz"] and not listed["cells/A.csv"], "run.json's files list the .csv.gz")
local sum = cjson.decode(read(gz .. "/summary.json") or "{}")
t.is(sum.cells and sum.cells[1] and sum.cells[1].file, "cells/A.csv.gz", "summary.json's file too")
t.is((read(gz .. "/summary.json") or ""):gsub("%.csv%.gz", ".csv"), read(plain .. "/summary.json"),
	"summary.json otherwise the same as the uncompressed run's")
t.is(read(gz .. "/steps.csv"), read(plain .. "/steps.csv"), "steps.csv the same")

-- ---- the readers ---------------------------------------------------------------

-- The report: the same page (plots and tables drawn from the inflated
-- series), but for the run's directory and file names.
local function page(dir)
	local html = read(dir .. "/report.html") or ""
	local base = dir:match("[^/]*$")
	return (html:gsub(dir:gsub("%p", "%%%0"), "RUN"):gsub(base:gsub("%p", "%%%0"), "RUN"):gsub("%.csv%.gz", ".csv"))
end
local p_plain, p_gz = page(plain), page(gz)
local _, paths = p_plain:gsub("<path ", "")
t.ok(paths >= 20 and #p_plain > 100000, ("the uncompressed run's report has its plots (%d paths)"):format(paths))
t.ok(p_gz == p_plain, "the --gzip run's report.html is the same page, plots included")
os.remove(gz .. "/report.html")
local code = cli.batlab("report " .. q(gz))
t.ok(code == 0 and page(gz) == p_plain, "`batlab report RUN_DIR` on it writes the same page again")

-- batlab analyze: the same tables.
local c1 = cli.batlab("analyze " .. q(plain))
local c2 = cli.batlab("analyze " .. q(gz))
t.ok(c1 == 0 and c2 == 0, "batlab analyze runs on both")
for _, f in ipairs { "cycles.csv", "dqdv.csv", "dvdq.csv", "resistance.csv" } do
	local want = read(plain .. "/analysis/" .. f) or ""
	t.ok(#want > 100 and read(gz .. "/analysis/" .. f) == want, "analyze: the same " .. f)
end
local j1 = cjson.decode(read(plain .. "/analysis/analysis.json") or "{}")
local j2 = cjson.decode(read(gz .. "/analysis/analysis.json") or "{}")
t.ok(j1.cells and j1.cells.A and j1.cells.A.resistance_median_ohm == j2.cells.A.resistance_median_ohm
	and j1.cells.D.throughput_ah == j2.cells.D.throughput_ah, "analyze: the same analysis.json numbers")

-- fsutil.read_file and open_read inflate a .gz (the shared reader).
local full_a = read(plain .. "/cells/A.csv")
t.is(fsutil.read_file(gz .. "/cells/A.csv.gz"), full_a, "fsutil.read_file inflates a .csv.gz")
local f = assert(fsutil.open_read(gz .. "/cells/A.csv.gz"))
local first, n = f:read("l"), 1
for _ in f:lines() do
	n = n + 1
end
f:close()
t.is(first, full_a:match("^([^\n]*)"), "open_read: read('l') gives the header line")
t.is(n, select(2, full_a:gsub("\n", "")), "open_read: lines() gives every line")

-- ---- a killed run: every flushed row readable ---------------------------------------

-- The host kills itself (SIGKILL, no cleanup) once cell A's step 4 has
-- started: the recorder flushed at step 4's label, so all of steps 1-3.
local killed = tmp .. "/killed"
code = cli.batlab(("cycletest --sim --seed 5 --quiet --no-report --gzip --out %s A B C D"):format(q(killed)),
	"BATLAB_JOURNAL_SIGNAL='KILL after started A 4'")
t.is(code, 137, "the run was killed (SIGKILL)")
local path = killed .. "/cells/A.csv.gz"
local got, rc = zcat(path)
t.is(rc, 1, "zcat exits 1 on the cut-short file ...")
t.like(read(tmp .. "/err") or "", "unexpected end of file", "... saying it ends early")
t.ok(#got > 0 and full_a:sub(1, #got) == got, ("... and prints a prefix of the whole run's file (%d of %d bytes)")
	:format(#got, #full_a))
local step3_end = 0
for line in full_a:gmatch("[^\n]+") do
	local step = tonumber(line:match("^[^,]*,[^,]*,[^,]*,[^,]*,([^,]*),"))
	if step and step <= 3 then
		step3_end = step3_end + #line + 1
	end
end
t.ok(step3_end > 100000 and #got >= step3_end + #full_a:match("^[^\n]*\n"),
	("every row of steps 1-3 is there (%d bytes of them, %d read)"):format(step3_end, #got))
t.is(fsutil.read_file(path), got, "batlab's reader gives the same prefix, no error")

-- What `batlab resume` does to it: whole rows kept, the file written
-- again as a whole gzip file, so the resumed rows' member follows it.
local whole = got:match("^(.*\n)")
local lines, last = resume.tidy_file(path)
local back
back, rc = zcat(path)
t.ok(rc == 0 and back == whole, "after resume's tidy: a whole gzip file of the whole rows (zcat exits 0)")
t.is(lines, select(2, whole:gsub("\n", "")), "it counts the lines")
t.is(last, whole:match("([^\n]*)\n$"), "and gives the last row")
local w = assert(batlab.gzopen(path, "a"))
assert(w:write("9999,1,next,row\n"))
assert(w:close())
back, rc = zcat(path)
t.ok(rc == 0 and back == whole .. "9999,1,next,row\n", "a member appended after it reads on (as the recorder's)")

-- ---- bad input ------------------------------------------------------------------

local err
code, _, err = cli.batlab("cycletest --sim --gzip=yes --out " .. q(tmp .. "/bad") .. " A")
t.is(code, 2, "--gzip=yes: a usage error, exit 2")
t.like(err, "%-%-gzip takes no value %(got 'yes'%)", "naming the option and the value")
t.ok(not lfs.attributes(tmp .. "/bad"), "and no run directory")
cli.write(tmp .. "/bad.csv.gz", "not gzip at all, plain text\n")
t.is(fsutil.read_file(tmp .. "/bad.csv.gz"), "not gzip at all, plain text\n", "a plain file named .gz reads as it is")
local whole_b = read(gz .. "/cells/B.csv.gz")
cli.write(tmp .. "/bad2.csv.gz", whole_b:sub(1, -9) .. ("\0"):rep(8)) -- its CRC and length wrong
local text, msg = fsutil.read_file(tmp .. "/bad2.csv.gz")
t.ok(text == nil and tostring(msg):find("bad2.csv.gz", 1, true), "damaged data: nil and a message naming the file: "
	.. tostring(msg))
t.ok(not pcall(batlab.gzopen, tmp .. "/x.gz", "x"), "batlab.gzopen: a mode not r, w or a raises")
local none, nmsg = batlab.gzopen(tmp .. "/no/such.csv.gz")
t.ok(none == nil and tostring(nmsg):find("no/such.csv.gz: No such file", 1, true), "a missing file: nil, message: "
	.. tostring(nmsg))

-- A run whose B.csv.gz is damaged so: the report draws what it read and
-- says where it stopped; analyze does the other cells and says which not.
local dmg = tmp .. "/damaged"
os.execute(("cp -r %s %s"):format(q(gz), q(dmg)))
cli.write(dmg .. "/cells/B.csv.gz", whole_b:sub(1, -9) .. ("\0"):rep(8))
code, _, err = cli.batlab("report " .. q(dmg))
t.is(code, 0, "batlab report on a run with a damaged .csv.gz: exit 0 " .. err)
t.like(read(dmg .. "/report.html") or "", "cells/B%.csv%.gz: read to row %d+ only: [^<]*incorrect data check",
	"its report notes where B's series stopped being readable, and why")
local out
code, out, err = cli.batlab("analyze " .. q(dmg))
t.is(code, 0, "batlab analyze on it: exit 0")
t.like(err, "warning: cell B not analysed: [^\n]*B%.csv%.gz: incorrect data check", "a warning naming the cell, file, why")
t.like(out, "%(6 cycle rows", "the other three cells analysed (two cycle rows each)")

-- ---- the commands docs/results.md prints, exactly as printed ---------------------------

local doc = read("docs/results.md") or ""
local run_cmd = doc:match("\n    (batlab cycletest %-%-sim %-%-gzip [^\n]+)\n")
local zcat_cmd = doc:match("\n    (zcat [^\n]+)\n")
t.ok(run_cmd and zcat_cmd, "docs/results.md prints a --gzip run and a zcat of its file")
if run_cmd and zcat_cmd then
	out, rc = sh(("cd %s && mkdir doc && cd doc && %s %s >/dev/null && %s"):format(q(tmp), q(cli.abs_bin),
		run_cmd:gsub("^batlab ", ""), zcat_cmd))
	t.is(rc, 0, "`" .. run_cmd .. "` and `" .. zcat_cmd .. "` run")
	t.like(out, "^Test Time / s,Step Time / s,.*\n[%d.]+,[%d.]+,0,precharge,1,PRECHARGE,", "zcat shows the header and rows")
end

if os.getenv("KEEP") then
	t.diag("kept: " .. tmp)
else
	os.execute("rm -rf " .. q(tmp))
end
t.done()
