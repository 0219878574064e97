-- A procedure's limits, through `batlab run` as a user meets them: an
-- endless loop is reported at the procedure's own file and line (also
-- when it loops inside batlab's library it called), and a procedure that
-- eats memory fails that cell cleanly ("not enough memory"), its channel
-- safe, while the other cells finish.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local csv = require "batlab.csv"
local lfs = require "lfs"

local bin = cli.abs_bin
local tmp = cli.tmpdir()
local write, read = cli.write, cli.read
local q = cli.quote

-- batlab ARGS in tmp (env: "VAR=value " prefix or ""): output, exit code.
local function run(env, args)
	local f = assert(io.popen(("cd %s && %stimeout 60 %s %s 2>&1; echo \"rc=$?\""):format(q(tmp), env,
		q(bin), args)))
	local out = f:read("a")
	f:close()
	return out, tonumber(out:match("rc=(%d+)\n$"))
end

-- The rows of a run's summary.csv by cell name, each by column name.
local function summary(dir)
	local rows, all = {}, csv.parse(read(tmp .. "/" .. dir .. "/summary.csv") or "")
	for i = 2, #all do
		local r = {}
		for j, h in ipairs(all[1]) do
			r[h] = all[i][j]
		end
		rows[r.Cell or "?"] = r
	end
	return rows
end

-- 1. An endless loop: the message names the procedure's file and line.
write(tmp .. "/spin.lua", [[
batlab.instruction_limit(2000000)
return {
  name = "spin",
  run = function(cell)
    cell:wait()
    local x = 0
    while true do
      x = x + 1 -- line 8
    end
  end,
}
]])
local out, code = run("", "run spin.lua --sim --out spin --cell 0=S1")
t.is(code, 1, "an endless loop fails the cell (exit 1)")
t.like((summary("spin").S1 or {}).Reason or "", "^task %d+ failed: spin%.lua:8: ", "summary.csv has it too")
t.like(out, "S1%s+ERROR%s+task %d+ failed: spin%.lua:8: ran more than 2000000 instructions",
	"the message names the procedure's file and line: " .. (out:match("[^\n]*ERROR[^\n]*") or out))

-- 2. A procedure that grows a table without end, under a 32 MB limit
-- (BATLAB_MEMORY_MB; the default is 256 MB). `ulimit -v` keeps a batlab
-- without the limit from taking the machine (not under AddressSanitizer,
-- whose shadow memory needs far more address space than that).
local GUARD = (os.getenv("BATLAB") or ""):find("/san/", 1, true) and "" or "ulimit -v 4000000; "
write(tmp .. "/hog.lua", [[
return {
  name = "hog",
  run = function(cell)
    cell:discharge(0.5)
    cell:wait()
    if cell.name == "M1" then
      local t, i = {}, 0
      while true do
        i = i + 1
        t[i] = ("x"):rep(64) .. i
        if i % 1000 == 0 then cell:wait() end
      end
    end
    batlab.sleep(600)
    return true, "slept"
  end,
}
]])
out, code = run(GUARD .. "BATLAB_MEMORY_MB=32 ", "run hog.lua --sim --out hog --cell 0=M1 --cell 1=M2")
t.is(code, 1, "the memory hog fails its cell (exit 1)")
local rows = summary("hog")
t.is((rows.M1 or {}).Verdict, "error", "M1 (the hog): error")
t.like((rows.M1 or {}).Reason or "", "not enough memory: the procedure went over the memory limit %(32 MB",
	"with a clear reason: " .. tostring((rows.M1 or {}).Reason))
t.is((rows.M2 or {}).Verdict, "pass", "M2 carries on and passes")
t.like(read(tmp .. "/hog/events.log") or "", "verdict: M2 PASS slept", "after its whole procedure")

-- 3. A pcall around the growth cannot swallow the limit: the task is
-- stopped at its next instruction, with no instruction limit to help.
write(tmp .. "/hog2.lua", [[
batlab.instruction_limit(0)
return {
  name = "hog2",
  run = function(cell)
    cell:discharge(0.5)
    cell:wait()
    if cell.name == "M1" then
      local t = {}
      while true do
        pcall(function() for i = 1, 1e9 do t[#t + 1] = { i } end end)
      end
    end
    batlab.sleep(600)
    return true, "slept"
  end,
}
]])
out, code = run(GUARD .. "BATLAB_MEMORY_MB=32 ", "run hog2.lua --sim --out hog2 --cell 0=M1 --cell 1=M2")
rows = summary("hog2")
t.is(code, 1, "pcall: the hog still fails (exit 1)")
t.like((rows.M1 or {}).Reason or "", "not enough memory: the procedure went over", "pcall: the reason")
t.is((rows.M2 or {}).Verdict, "pass", "pcall: M2 passes")

os.execute("rm -rf " .. q(tmp))
t.done()
