-- batlab check FILE: a procedure dry-run on the virtual Batlab in virtual
-- time, through the real program: a sound procedure exits 0 saying no
-- problems were found; a misspelt step option exits 1 naming the option,
-- the file and the line; a safety stop in a faulty layout is listed as a
-- problem with its error bits; a bad --set exits 2 before anything runs;
-- --port is refused (no hardware is ever touched).
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")

local tmp = cli.tmpdir()
local code, out, err = cli.batlab("check scripts/capacity.lua --cell 0=A1 --out " .. tmp .. "/ok")
t.is(code, 0, "a sound procedure: exit 0 " .. err)
t.like(out, "A1%s+PASS%s+capacity", "its verdict line")
t.like(out, "check: no problems found %(a dry run in virtual time%)", "and no problems")
t.ok(cli.read(tmp .. "/ok/summary.json") ~= nil, "--out keeps the dry run's files")

cli.write(tmp .. "/typo.lua", [[
local steps = require "batlab.steps"
return { params = { a = 1.0 }, run = function(cell, p)
  cell:limits{ vmax = 4.25, vmin = 2.8, imax = 4.0, tmax_c = 50 }
  steps.discharge(cell, { current = p.a, untl_v = 3.0 })
end }
]])
code, out = cli.batlab(("check %s/typo.lua --cell 0=X"):format(tmp))
t.is(code, 1, "a misspelt step option: exit 1")
t.like(out, "typo%.lua:4: unknown option 'untl_v' to steps%.discharge %(did you mean until_v%?%)",
	"naming the option, the file and the line")
t.like(out, "check: 1 problem%(s%)", "one problem")

cli.write(tmp .. "/hot.json", [[{ "devices": [ { "serial": 1000,
  "cells": [ { "profile": "nmc18650", "soc": 0.5 }, null, null, null ],
  "faults": [ { "at": 300, "kind": "self_heating", "slot": 0, "value": 6 } ] } ] }]])
code, out = cli.batlab(("check scripts/capacity.lua --sim=%s/hot.json --cell 0=H"):format(tmp))
t.is(code, 1, "a cell heating itself: exit 1")
t.like(out, "problem: H: step 1 %(CHARGE%) ended safety %[TEMP_LIMIT_CHG%]", "the safety stop, with its bits")

code, out, err = cli.batlab(("check %s/typo.lua --set b=2"):format(tmp))
t.is(code, 2, "an unknown parameter: exit 2")
t.like(err, "has no parameter 'b' %(did you mean a%?%)", "naming it")
code, _, err = cli.batlab("check scripts/capacity.lua --port /dev/null")
t.is(code, 2, "--port: exit 2")
t.like(err, "never touches hardware", "a dry run only")

t.done()
