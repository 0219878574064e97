-- batlab.guards - what stops any step of a test, whatever it was asked to
-- end on (batlab.steps' `guard` option; batlab.steps.default_guards).
local step_watch = require "batlab.step_watch"

local M = {}

-- Default guards, after Lexcelon's test manager: abort on two VCC readings
-- in a row below 4.1 V, and on repeated voltage drops with steady current
-- (a hardware fault seen on some units).
function M.default(log)
	local low_vcc, warned, jumps, prev = 0, false, 0, nil
	local guard
	guard = function(s)
		if s.vcc and s.vcc > 0 then
			if s.vcc < 4.1 then
				low_vcc = low_vcc + 1
				if low_vcc >= 2 then
					return "low VCC"
				end
			else
				low_vcc = 0
			end
			if s.vcc < 4.35 and not warned and log then
				warned = true
				log(("VCC %.2f V is low: use a powered hub"):format(s.vcc))
			end
		end
		if prev and math.abs(prev.current) > 0.05 and prev.voltage > 0.5
			and math.abs(math.abs(s.current) - math.abs(prev.current)) < 0.05
			and prev.voltage - s.voltage > 0.2 then
			jumps = jumps + 1
			if log then
				log(("voltage dropped %.3f V at steady current (%d)"):format(prev.voltage - s.voltage, jumps))
			end
			if jumps > 5 then
				return "voltage jumps: possible hardware problem"
			end
		end
		prev = s
		return nil
	end
	-- A quiet report (batlab.Channel watch: 0 or >= 4.35 V VCC, no jump)
	-- only moves `prev` on and, with a VCC reading, resets the low count.
	step_watch.quiet_guards[guard] = function(last, vcc_seen)
		prev = last
		if vcc_seen then
			low_vcc = 0
		end
	end
	return guard
end

return M
