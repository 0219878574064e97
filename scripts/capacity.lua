-- capacity.lua - charge (CC then CV), rest, discharge: the measured
-- capacity is the verdict. Run: batlab run scripts/capacity.lua --sim --cell 0=A1
-- Parameters can be changed with --set, e.g. --set discharge_a=1.5.
local steps = require "batlab.steps"
return {
  name = "capacity",
  description = "Charge (CC then CV), rest, discharge: passes at 2.0 Ah or more.",
  params = { charge_a = 1.0, discharge_a = 2.0, vmax = 4.2, vmin = 3.0 },
  run = function(cell, p)            -- one task per cell
    cell:limits{ vmax = p.vmax + 0.05, vmin = p.vmin - 0.2, imax = 4.0, tmax_c = 50 }
    steps.charge(cell, { current = p.charge_a, until_v = p.vmax, cv = { until_i = 0.1 } })
    steps.rest(cell, 600)
    local r = steps.discharge(cell, { current = p.discharge_a, until_v = p.vmin })
    return r.ah >= 2.0, ("capacity %.3f Ah"):format(r.ah)
  end,
}
