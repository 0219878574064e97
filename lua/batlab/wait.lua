-- batlab.wait - wait until a condition holds, checked at each report.
--
--   local wait = require "batlab.wait"
--   local ok, why = wait.until_(function(s) return s.voltage >= 4.2 end, 3600, ch)
--
-- until_(cond, timeout_s, source): `source` is anything with a wait
-- method that returns a sample - a batlab.Channel or a cell object. cond
-- is called with the latest sample (source.last, which may be nil) first,
-- then after every report of that channel. Returns true when cond returns
-- a true value, false, "timeout" when timeout_s passes first (nil: no
-- timeout), or nil, message, code when waiting fails (device I/O).
--
-- Without a source, cond() is polled every `poll_s` seconds (default 1)
-- with batlab.sleep.
--
-- cond runs inside the task, so it may call device methods (they yield),
-- but each call costs a round trip at every report: predicates should read
-- the sample they are given.
local batlab = require "batlab"

local M = {}

M.poll_s = 1.0

function M.until_(cond, timeout_s, source)
	if type(cond) ~= "function" then
		error("wait.until_: condition function expected, got " .. type(cond), 2)
	end
	if timeout_s ~= nil and (type(timeout_s) ~= "number" or timeout_s < 0) then
		error("wait.until_: timeout must be a number of seconds >= 0 or nil", 2)
	end
	local deadline = timeout_s and batlab.now() + timeout_s
	local sample = source and source.last
	while true do
		if cond(sample) then
			return true
		end
		local left = deadline and deadline - batlab.now()
		if left and left <= 0 then
			return false, "timeout"
		end
		if source then
			local err, code
			sample, err, code = source:wait(left)
			if not sample then
				if err == "timeout" then
					return false, "timeout"
				end
				return nil, err, code
			end
		else
			batlab.sleep(left and math.min(left, M.poll_s) or M.poll_s)
		end
	end
end

M.wait_until = M.until_

return M
