-- batlab.progress - what a run shows while it runs: one live line per
-- channel on a terminal, timestamped event lines otherwise.
local batlab = require "batlab"

local M = {}

function M.hms(t)
	t = math.floor(t + 0.5)
	return ("%d:%02d:%02d"):format(t // 3600, t // 60 % 60, t % 60)
end

-- new(o, cells, t0): o.quiet, o.json; cells: { name, step, cycle, cell }
-- (the runner's: cell.last is the latest sample) or { ..., last = sample }
function M.new(o, cells, t0)
	local tty = not o.quiet and not o.json and os.getenv("TERM") ~= nil and os.getenv("TERM") ~= "dumb"
		and batlab.isatty and batlab.isatty(1)
	local p = { tty = tty, quiet = o.quiet or o.json, last_draw = -1 }
	function p.line(text)
		if p.quiet then
			return
		end
		if p.tty then
			io.stdout:write("\r\27[J") -- the live lines go; they come back at the next draw
		end
		-- A closed standard output (its reader left): stop writing to
		-- it; the run goes on and its files say everything.
		if not (io.stdout:write(text, "\n") and io.stdout:flush()) then
			p.quiet, p.tty = true, false
		end
	end
	-- The live lines go for good (the end of a run, an interruption).
	function p.clear()
		if p.tty then
			io.stdout:write("\r\27[J")
			io.stdout:flush()
		end
	end
	function p.event(cell, text, t)
		p.line(("[%s] %s: %s"):format(M.hms(t), cell, text))
	end
	-- On a terminal: one live line per channel, redrawn at most every
	-- virtual second (the cursor goes back up over them).
	function p.draw(t)
		if not p.tty or t - p.last_draw < 1 then
			return
		end
		-- Virtual time runs far faster than a terminal can show: redraw
		-- at most ten times a second of the program's own (CPU) time.
		local cpu = os.clock()
		if p.last_cpu and cpu - p.last_cpu < 0.1 then
			return
		end
		p.last_cpu = cpu
		p.last_draw = t
		local out = {}
		for _, c in ipairs(cells) do
			local s = c.last or (c.cell and c.cell.last)
			out[#out + 1] = s and ("\27[K%-12s %-9s %6.3f V %7.3f A %5.1f degC %7.4f Ah  cycle %s  %s"):format(
				c.name, c.step or "", s.voltage, s.current, s.temp_c or 0, math.abs(s.charge_ah or 0),
				tostring(c.cycle or 0), M.hms(t - t0)) or ("\27[K%-12s waiting"):format(c.name)
		end
		io.stdout:write(table.concat(out, "\n"), "\27[", #out - 1 > 0 and tostring(#out - 1) or "0",
			#out > 1 and "A\r" or "\r")
		io.stdout:flush()
	end
	return p
end

return M
