-- What `batlab run` refuses before anything starts, and what it says about
-- a procedure: --set names and types checked against the procedure's
-- params (with a suggestion), settings keys likewise, `run FILE --help`,
-- and more cells than channels with the README's own procedure.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local csv = require "batlab.csv"
local lfs = require "lfs"

local tmp = cli.tmpdir()
local write, read = cli.write, cli.read

local batlab_cmd = cli.batlab

-- ---- --set against the procedure's params -----------------------------------------

local code, out, err = batlab_cmd(("run scripts/capacity.lua --sim --out %s/a --set discharg_a=1.5 --cell 0=A1"):format(tmp))
t.is(code, 2, "a misspelt --set name is a usage error")
t.like(err, "has no parameter 'discharg_a' %(did you mean discharge_a%?%)", "naming it, with a suggestion")
t.like(err, "its parameters: charge_a, discharge_a, vmax, vmin", "and the names it has")
t.ok(not lfs.attributes(tmp .. "/a"), "nothing started: no run directory")

code, out, err = batlab_cmd(("run scripts/capacity.lua --sim --out %s/b --set discharge_a=fast --cell 0=A1"):format(tmp))
t.is(code, 2, "a --set value of the wrong type is a usage error")
t.like(err, "discharge_a is a number %(default 2%.0%), not 'fast'", "before the two-hour charge, not after")
t.ok(not lfs.attributes(tmp .. "/b"), "nothing started")

code, out, err = batlab_cmd(("cycletest --sim --out %s/c --set chargRate=1 A1"):format(tmp))
t.is(code, 2, "a misspelt settings key in --set is a usage error")
t.like(err, "unknown key 'chargRate' %(did you mean chargeRate%?%)", "with a suggestion")

-- ---- run FILE --help ------------------------------------------------------------------

code, out = batlab_cmd("run scripts/capacity.lua --help")
t.is(code, 0, "run FILE --help exits 0")
t.like(out, "^capacity %(scripts/capacity%.lua%)\n", "names the procedure")
t.like(out, "Charge %(CC then CV%), rest, discharge", "shows its description")
t.like(out, "\n  discharge_a +2%.0\n", "lists each parameter with its default")
t.like(out, "usage: batlab run SCRIPT", "then the options")

-- ---- procedures by name, and a procedure that returns nothing ---------------------------

code, out = batlab_cmd(("run capacity --sim --quiet --out %s/byname --cell 0=N1"):format(tmp))
t.ok(code == 0 and out:find("N1%s+PASS%s+capacity"), "run capacity: the installed procedure by name")
code, out, err = batlab_cmd("run nosuch --sim")
t.is(code, 2, "an unknown procedure name is a usage error")
t.like(err, "nosuch: no such file, and no installed procedure of that name %(capacity, .*cycle%-test, ",
	"naming the procedures there are")
local quiet = tmp .. "/quiet.lua"
local f = assert(io.open(quiet, "w"))
f:write("return { run = function(c) c:discharge(0.5); c:wait(); c:wait() end }\n")
f:close()
code, out = batlab_cmd(("run %s --sim --out %s/quiet --cell 0=Q1"):format(quiet, tmp))
t.is(code, 0, "a procedure that returns nothing passes")
t.like(out, "Q1%s+PASS%s+completed %(the procedure returned no verdict%)", "and the verdict line says why")

-- ---- channels named as every command names them ---------------------------------------

code, out = batlab_cmd(("run capacity --sim --quiet --out %s/cellname --cell CELL3=K1 --cell 1000:cell1=K2"):format(tmp))
t.ok(code == 0 and out:find("K1%s+PASS") and out:find("K2%s+PASS"), "--cell takes CELL3 and SERIAL:cell1 as well as 3")
local rj = read(tmp .. "/cellname/run.json") or ""
t.like(rj, '"channel": 3,%s*"file": "cells/K1%.csv"', "CELL3 is channel 3")

-- ---- more cells than channels with the README's procedure -------------------------------

code, out = batlab_cmd(("run scripts/capacity.lua --sim --quiet --out %s/five A B C D E"):format(tmp))
local passes = select(2, out:gsub("\n[A-E]%s+PASS", "")) + (out:match("^[A-E]%s+PASS") and 1 or 0)
t.is(code, 0, "five cells on four channels: every procedure ends with its channel safe, so the swap happens")
t.is(passes, 5, ("every cell tested (%d passed)"):format(passes))
local rows = csv.parse(read(tmp .. "/five/cells/E.csv") or "")
t.ok(#rows > 1000, ("the fifth cell has its own time series (%d rows)"):format(#rows - 1))

-- the operator is slower than --swap-timeout (the virtual one takes a
-- minute to put the next cell in): the slot gives up with a clear message
code, out = batlab_cmd(("run capacity --sim --quiet --swap-timeout 30 --out %s/slow S1 S2 S3 S4 S5"):format(tmp))
local ev = read(tmp .. "/slow/events.log") or ""
t.like(ev, "no cell swap within 30 s %(S5 was not inserted%)", "a swap that does not happen in time is reported")
t.like(ev, "cell S5 not tested", "and the cell that was not tested")
t.ok(out:find("S1%s+PASS") and out:find("S4%s+PASS"), "the cells that were tested keep their verdicts")
t.like(out, "S5%s+UNTESTED", "the one that was not says so")
t.is(code, 1, "and the run does not exit 0")

-- a procedure's check(params) refuses its parameters before anything starts
write(tmp .. "/checked.lua", [[
return { name = "checked", params = { amps = 1.0 },
  check = function(p) if p.amps > 4 then return "amps: at most 4 A, not " .. p.amps end end,
  run = function(cell) return true end }
]])
code, out, err = batlab_cmd(("run %s/checked.lua --sim --set amps=9 --out %s/chk A"):format(tmp, tmp))
t.is(code, 2, "check(params) refusing: exit 2")
t.like(err, "checked%.lua: amps: at most 4 A, not 9", "with its message and the procedure's name")
t.is(lfs.attributes(tmp .. "/chk"), nil, "before anything was written")
write(tmp .. "/bins.txt", "A capacity_ah ~~ 2\n")
code, out, err = batlab_cmd(("run grade --sim --set rules=%s/bins.txt --out %s/g A"):format(tmp, tmp))
t.is(code, 2, "grade.lua with a bad rules file: exit 2 before the run")
t.like(err, "bins%.txt:1: a condition is KEY OP NUMBER", "naming the file, the line and what is wrong")

t.done()
