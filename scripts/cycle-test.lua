-- cycle-test.lua - Lexcelon's stock cycle test with a settings file:
--
--   batlab cycletest --settings playlist.json --sim CELL_A CELL_B
--   batlab run scripts/cycle-test.lua --settings playlist.json --cell 0=CELL_A
--
-- Precharge, rest, then per warm-up and measurement cycle a discharge,
-- rest, charge and rest, then an optional storage discharge. See
-- lua/batlab/stocktest.lua for the sequence and what it fixes.
local stocktest = require "batlab.stocktest"

return {
	name = "cycle-test",
	needs_settings = true,
	run = function(cell, settings, ctx)
		return stocktest.run(cell, settings, ctx, "cycle")
	end,
}
