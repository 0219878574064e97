-- discharge-test.lua - Lexcelon's stock discharge test: one discharge at
-- dischargeRate down to lowVoltageCutoff, ended early by --timeout (counted
-- from the start of the test, as Lexcelon's was meant to be):
--
--   batlab dischargetest --settings cr123a.json --timeout 3600 --sim CELL_A
local stocktest = require "batlab.stocktest"

return {
	name = "discharge-test",
	needs_settings = true,
	run = function(cell, settings, ctx)
		return stocktest.run(cell, settings, ctx, "discharge")
	end,
}
