-- bench_lab.lua - the lab sinks' cost (make bench; docs/lab.md), against
-- private PostgreSQL and Mosquitto servers (tests/lua/labservers.lua):
--
--   lab_realtime_256   256 virtual channels (64 units) reporting every
--                      second in real time for BENCH_LAB_S seconds
--                      (default 45), with --db and --mqtt: batlab's CPU
--                      as a share of one core while all channels report
--                      (target: under 3 %), and the same without the
--                      sinks for reference
--   lab_cycletest      the virtual stock cycle test of four cells with
--                      and without --db: wall-clock ratio (target: 1.5)
--
-- Run by `make bench` as `batlab lua tests/bench/bench_lab.lua`. Prints
-- a SKIP line when the servers cannot be started. BENCH_LAB=cycletest
-- runs only lab_cycletest.
local lab = dofile(arg[0]:match("^(.-)[^/]*$") .. "../lua/labservers.lua")
local batlab = require "batlab" -- batlab.now(): the monotonic clock
local bin = os.getenv("BATLAB") or "./batlab"
local secs = tonumber(os.getenv("BENCH_LAB_S")) or 45

-- The server as a lab runs one (PostgreSQL's defaults: commits wait for
-- the disk), not the tests' throwaway settings.
local pg, why = lab.postgres{ durable = true }
local mq, mwhy = lab.mosquitto()
if not (pg and mq) then
	print("bench lab: SKIP: " .. tostring(why or mwhy))
	if pg then pg:destroy() end
	if mq then mq:destroy() end
	return
end
local tmp = os.tmpname()
os.remove(tmp)
assert(os.execute("mkdir " .. tmp))
assert(lab.sh(("%s db init --db '%s'"):format(bin, pg.url)))
local f = assert(io.open(tmp .. "/rest.lua", "w"))
f:write(([[
local steps = require "batlab.steps"
return { name = "rest", run = function(cell) steps.rest(cell, %d); return true end }
]]):format(secs))
f:close()

-- user + system CPU seconds and wall seconds of a command
local function timed(cmd)
	local ok, out = lab.sh(("bash -c 'TIMEFORMAT=\"%%U %%S %%R\"; time (%s >/dev/null 2>%s/err)' 2>&1")
		:format(cmd:gsub("'", "'\\''"), tmp))
	local u, s, r = out:match("([%d.]+) ([%d.]+) ([%d.]+)%s*$")
	return ok, tonumber(u) + tonumber(s), tonumber(r)
end

-- The fields of /proc/PID/stat from the state on (ppid 2, utime 12,
-- stime 13, cutime 14, cstime 15, in ticks of 1/HZ s); nil once gone.
local HZ = 100
local function stat_fields(pid)
	local f = io.open("/proc/" .. pid .. "/stat")
	local line = f and f:read("a")
	if f then
		f:close()
	end
	local rest = line and line:match("%) (.*)")
	if not rest then
		return nil
	end
	local v = {}
	for w in rest:gmatch("%S+") do
		v[#v + 1] = w
	end
	return v
end

-- CPU ticks (user + system) of a running process; nil once gone
local function ticks(pid)
	local v = stat_fields(pid)
	return v and tonumber(v[12]) + tonumber(v[13])
end

-- A run in the background: its CPU as a share of one core while all its
-- channels report (from 15 s to 5 s before its end, the start and the
-- close left out), and over its whole life as far as it was seen.
local function steady_share(cmd)
	local p = io.popen(("%s >/dev/null 2>>%s/err & echo $!"):format(cmd, tmp))
	local pid = p:read("l")
	p:close()
	local t0 = batlab.now()
	local a, b, last, t_last
	while true do
		local t, n = batlab.now() - t0, ticks(pid)
		if not n then
			break
		end
		last, t_last = n, t
		if not a and t >= 15 then
			a = { n, t }
		elseif a and not b and t >= secs - 5 then
			b = { n, t }
		end
		os.execute("sleep 0.5")
	end
	if not (a and b and last) then
		return nil
	end
	return (b[1] - a[1]) / (b[2] - a[2]), last / t_last
end

local function realtime()
	local base = ("%s run %s/rest.lua --sim --devices 64 --speed 1 --quiet --no-report"):format(bin, tmp)
	local s0, w0 = steady_share(base .. " --out " .. tmp .. "/r0")
	local s1, w1 = steady_share(("%s --out %s/r1 --db '%s' --mqtt %s"):format(base, tmp, pg.url, mq.url))
	if not (s0 and s1) then
		print("bench lab_realtime_256: a run ended too soon (see " .. tmp .. "/err)")
		return
	end
	print(("bench lab_realtime_256: %d s, 256 channels at 1 s: %.2f %% of a core with --db and --mqtt"
		.. " while all report (%.2f %% without; target under 3 %%); with the start: %.2f %% and %.2f %%")
		:format(secs, s1, s0, w1, w0))
	print(("FIGURE\t256 virtual channels (64 in-process virtual Batlabs) at 1 s reports in real time, streaming to"
		.. " PostgreSQL (--db) and Mosquitto (--mqtt)\t%.2f %% of a core while all report (%.2f %% without the"
		.. " sinks; %.2f %% with the start)\t< 3 %%\t"):format(s1, s0, w1))
	local _, rows = pg:psql("SELECT count(*) FROM batlab.samples")
	print(("bench lab_realtime_256: %s samples in the database"):format(rows:match("%d+") or "?"))
end

if os.getenv("BENCH_LAB") ~= "cycletest" then
	realtime()
end

-- The server's CPU seconds so far: the postmaster's, its children's it
-- has reaped (a connection's backend, once it ends), those still running
-- (the WAL writer, the checkpointer, ...).
local function server_cpu()
	local f = io.open(pg.data .. "/postmaster.pid")
	local pm = f and f:read("n")
	if f then
		f:close()
	end
	local total = 0
	for pid in io.popen("ls /proc"):lines() do
		local v = tonumber(pid) and stat_fields(pid)
		if v then
			if tonumber(pid) == pm then
				total = total + v[12] + v[13] + v[14] + v[15]
			elseif tonumber(v[2]) == pm then
				total = total + v[12] + v[13]
			end
		end
	end
	return total / HZ
end

-- Each run three times, in turn, the machine being shared: the medians.
local function median(t)
	table.sort(t)
	return t[(#t + 1) // 2]
end
local cyc = bin .. " cycletest --sim CELL_A CELL_B CELL_C CELL_D --quiet --no-report"
local w0, w1, c0, c1, srv, ok = {}, {}, {}, {}, {}, true
for k = 1, 3 do
	local okc0, cpu0, wall0 = timed(("%s --out %s/c0-%d"):format(cyc, tmp, k))
	local s0 = server_cpu()
	local okc1, cpu1, wall1 = timed(("%s --out %s/c1-%d --db '%s'"):format(cyc, tmp, k, pg.url))
	srv[k] = server_cpu() - s0
	w0[k], w1[k], c0[k], c1[k], ok = wall0, wall1, cpu0, cpu1, ok and okc0 and okc1
end
local m0, m1 = median(w0), median(w1)
print(("bench lab_cycletest: virtual stock cycle test %.2f s, with --db %.2f s: %.2f times (target 1.5;"
	.. " medians of 3; server with PostgreSQL's default durability settings)%s")
	:format(m0, m1, m1 / m0, ok and "" or " [a run failed]"))
print(("FIGURE\tvirtual stock cycle test of 4 cells with --db against without (wall, medians of 3; a local"
	.. " PostgreSQL with its default durability)\t%.2f s against %.2f s: %.2f times\t<= 1.5 times\t")
	:format(m1, m0, m1 / m0))
-- What the server alone takes to store those samples: the first run's,
-- out of the database in COPY's binary format, into a table with the same
-- key and index, by psql (one COPY, one transaction, nothing else running;
-- medians of 3). The sink cannot end before the server has them all: this
-- against the run without the sink is what the ratio cannot go under,
-- whatever batlab does, unless the two overlap.
local bin_file = tmp .. "/samples.bin"
assert(pg:psql(("\\copy (SELECT d.* FROM batlab.sample_data d JOIN batlab.cells c ON batlab.series(c.run_id, c.cell)"
	.. " = d.series JOIN batlab.runs r ON r.run_id = c.run_id WHERE r.run_dir LIKE '%%/c1-1') TO '%s' WITH (FORMAT binary)")
	:format(bin_file)))
assert(pg:psql("CREATE TABLE bench_store (LIKE batlab.sample_data INCLUDING ALL)"))
local alone = {}
for k = 1, 3 do
	local okp, out = lab.sh(("psql -X -q '%s' -c '\\timing on' -c \"\\copy bench_store FROM '%s' WITH (FORMAT binary)\"")
		:format(pg.url, bin_file))
	alone[k] = okp and tonumber(out:match("Time: ([%d.]+) ms")) and tonumber(out:match("Time: ([%d.]+) ms")) / 1000
		or math.huge
	pg:psql("TRUNCATE bench_store")
end
pg:psql("DROP TABLE bench_store")
local ma = median(alone)
print(("bench lab_cycletest: the server alone stores the run's samples in %.2f s (psql COPY, binary, one"
	.. " transaction; the run without the sink: %.2f s)"):format(ma, m0))
print(("FIGURE\tthe same samples stored by the server alone (psql COPY of the first run's, binary, one transaction,"
	.. " the same key and index; medians of 3)\t%.2f s: %.2f times the run without --db\t\t"):format(ma, ma / m0))
print(("bench lab_cycletest: CPU: batlab %.2f s, with --db %.2f s; the server %.2f s storing the run"
	.. " (%s samples)"):format(median(c0), median(c1), median(srv),
	(select(2, pg:psql("SELECT count(*) FROM batlab.samples s JOIN batlab.runs r USING (run_id) WHERE r.run_dir LIKE '%/c1-1'")) or "?"):match("%d+") or "?"))

pg:destroy()
mq:destroy()
os.execute("rm -rf " .. tmp)
