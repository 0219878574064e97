-- The scheduler as Lua sees it: spawn, sleep, run, current, Task objects,
-- failure and cancellation, the instruction budget, calls from the wrong
-- place, determinism, and no leaks. Virtual time (batlab.open{sim=true}).
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local batlab = require "batlab"

local logged = {}
batlab.task_log(function(task, msg) logged[#logged + 1] = { task = task, msg = msg } end)

-- ---- arguments --------------------------------------------------------------
t.raises(batlab.spawn, "bad argument #1 to '[%w.]*spawn' %(function expected", "spawn(nil) raises")
t.raises(batlab.spawn, "function expected", "spawn(42) raises", 42)
t.raises(batlab.spawn_for, "batlab.Channel expected", "spawn_for(non-channel) raises", {}, print)
t.raises(batlab.sleep, "number expected", "sleep('x') raises", "x")
t.raises(batlab.sleep, "sleep time must be a number of seconds >= 0", "sleep(-1) raises", -1)
t.raises(batlab.run, "timeout must be a number of seconds >= 0", "run(-5) raises", -5)
t.raises(batlab.instruction_limit, "instruction limit must be >= 0", "instruction_limit(-1) raises", -1)
t.is(batlab.current(), nil, "current() outside a task is nil")

local pool = assert(batlab.open { sim = true })
local dev = pool:active()
t.ok(pool.sim, "a virtual pool")
t.is(batlab.now(), batlab.now(), "virtual time stands still while nothing runs")

local base = batlab._stats()
t.is(base.tasks, 0, "no tasks at the start")
t.is(base.refs, 0, "no references at the start")

-- Run the loop until no request is in flight (the watchdog and health
-- checks come and go), so timer and request counts compare.
local function quiesce()
	for _ = 1, 100 do
		if batlab._stats().pending == 0 then
			break
		end
		batlab.sleep(0.001)
	end
	-- a device's request timer stays armed until the time limit of its
	-- last request (0.25 s) has passed
	batlab.sleep(0.3)
end
quiesce()
base = batlab._stats()

-- ---- spawn, results, current -------------------------------------------------
local me
local task = batlab.spawn(function(a, b)
	me = batlab.current()
	return a + b, nil, "x"
end, 2, 3)
t.is(getmetatable(task).__name, "batlab.Task", "spawn returns a batlab.Task")
t.is(task.status, "ready", "a new task is ready")
t.like(tostring(task), "^batlab.Task %d+ %(ready%)$", "tostring(task)")
t.is(batlab.run(), true, "run returns true when every task finished")
t.is(task.status, "done", "the task is done")
t.is(me, task, "batlab.current() inside the task is the task")
t.is_deeply(task.results, { 5, nil, "x", n = 3 }, "results are packed with n")
t.is(task.error, nil, "no error for a task that succeeded")
t.is(batlab.run(), true, "run with no task returns true at once")

-- ---- sleep ordering in virtual time ---------------------------------------------
local order = {}
local t0 = batlab.now()
for _, d in ipairs { 3, 1, 2, 1 } do
	batlab.spawn(function()
		batlab.sleep(d)
		order[#order + 1] = string.format("%g@%.6f", d, batlab.now() - t0)
	end)
end
t.ok(batlab.run(), "sleepers run")
t.is(table.concat(order, " "), "1@1.000000 1@1.000000 2@2.000000 3@3.000000",
	"sleepers wake in deadline order, ties in spawn order, at exact virtual times")

t0 = batlab.now()
t.is(batlab.sleep(10), true, "sleep outside a task returns true")
t.near(batlab.now() - t0, 10, 1e-6, "sleep outside a task moves virtual time by exactly that")
t.is(batlab.sleep(0), true, "sleep(0) is fine")

-- sleep and wait interleave by time
do
	local ev = {}
	local ch = dev:channel(0)
	local start = batlab.now()
	batlab.spawn(function()
		for _ = 1, 3 do
			local s = assert(ch:wait())
			ev[#ev + 1] = string.format("w%.0f", s.time - start)
		end
	end)
	batlab.spawn(function()
		batlab.sleep(1.5)
		ev[#ev + 1] = "s1.5"
		batlab.sleep(1.0)
		ev[#ev + 1] = "s2.5"
	end)
	t.ok(batlab.run(), "a waiter and a sleeper")
	t.is(#ev, 5, "five events")
	local pos = {}
	for i, e in ipairs(ev) do
		pos[e] = i
	end
	t.ok(pos["s1.5"] and pos["s2.5"] and pos["s1.5"] < pos["s2.5"], "the sleeper's events in order")
	local waits_before_s15 = 0
	for i = 1, pos["s1.5"] or 0 do
		if ev[i]:sub(1, 1) == "w" then
			waits_before_s15 = waits_before_s15 + 1
		end
	end
	t.ok(waits_before_s15 >= 1 and waits_before_s15 <= 2,
		"reports before 1.5 s come before the sleeper's wake-up (" .. table.concat(ev, " ") .. ")")
end

-- ---- deterministic interleaving --------------------------------------------------
local function interleave()
	local out = {}
	for i = 1, 12 do
		batlab.spawn(function()
			for k = 1, 4 do
				if i % 3 == 0 then
					local v = assert(dev:read_raw("CELL" .. (i % 4), "VOLTAGE"))
					out[#out + 1] = i .. "r" .. k .. ":" .. v
				elseif i % 3 == 1 then
					batlab.sleep(0.25 * ((i + k) % 3))
					out[#out + 1] = i .. "s" .. k
				else
					local s = assert(dev:channel(i % 4):wait())
					out[#out + 1] = i .. "w" .. k .. ":" .. string.format("%.6f", s.voltage)
				end
			end
		end)
	end
	assert(batlab.run())
	return table.concat(out, " ")
end
pool:close()
pool = assert(batlab.open { sim = true })
dev = pool:active()
local run1 = interleave()
pool:close()
pool = assert(batlab.open { sim = true })
dev = pool:active()
local run2 = interleave()
t.is(run2, run1, "two runs with the same seed interleave identically")
t.ok(#run1 > 0 and select(2, run1:gsub(" ", "")) == 47, "48 events were recorded")
quiesce()
base = batlab._stats()

-- ---- failing tasks ----------------------------------------------------------------
logged = {}
local ch2 = dev:channel(2)
local survivor_samples = 0
local failing = batlab.spawn_for(ch2, function()
	assert(ch2:discharge(1.0))
	ch2:wait()
	ch2:wait()
	error("procedure went wrong")
end)
local survivor = batlab.spawn(function()
	local ch = dev:channel(3)
	for _ = 1, 6 do
		assert(ch:wait())
		survivor_samples = survivor_samples + 1
	end
	return "fine"
end)
t.is(batlab.run(), true, "run returns true although a task failed")
t.is(failing.status, "failed", "the failing task is failed")
t.like(failing.error, "procedure went wrong", "its error has the message")
t.like(failing.error, "stack traceback:", "and a traceback")
t.like(failing.error, "test_sched.lua:%d+", "naming the line")
t.is(failing.results, nil, "no results for a failed task")
t.is(#logged, 1, "one message in the run log")
t.is(logged[1] and logged[1].task, failing, "for the failed task")
t.like(logged[1] and logged[1].msg or "", "procedure went wrong", "with its message")
t.is(survivor.status, "done", "the other task carried on")
t.is(survivor_samples, 6, "and got all its samples")
quiesce()
t.is(dev:read_raw(2, "MODE"), batlab.MODE_IDLE, "the failed task's channel is IDLE (made safe)")
t.is(pool:sim_reg(dev, 2, "MODE"), batlab.MODE_IDLE, "the virtual Batlab agrees")
t.near(pool:sim_current(dev, 2), 0, 1e-9, "no current flows in the failed task's channel")

-- a task learns its channel by driving it (no spawn_for)
local f2 = batlab.spawn(function()
	local ch = dev:channel(1)
	assert(ch:charge(0.5))
	ch:wait()
	local x = nil
	return x.field
end)
batlab.run()
t.is(f2.status, "failed", "indexing nil fails the task")
quiesce()
t.is(pool:sim_reg(dev, 1, "MODE"), batlab.MODE_IDLE, "the charged channel was made safe")

-- a yield that is not ours
logged = {}
local y = batlab.spawn(function() coroutine.yield("hello") end)
batlab.run()
t.is(y.status, "failed", "coroutine.yield in a task fails it")
t.like(y.error, "yield outside the batlab API", "with a clear message")

-- ---- calls from the wrong place ----------------------------------------------------
local nested = batlab.spawn(function()
	local co = coroutine.wrap(function() batlab.sleep(1) end)
	co()
end)
local sorter = batlab.spawn(function()
	table.sort({ 3, 2, 1 }, function(a, b) batlab.sleep(0); return a < b end)
end)
local runner = batlab.spawn(function() batlab.run() end)
local opener = batlab.spawn(function() batlab.open { sim = true } end)
batlab.run()
t.like(nested.error, "nested inside a task", "sleep from a coroutine nested in a task: clear error")
t.like(sorter.error, "cannot wait here", "sleep in a sort comparator: clear error")
t.like(runner.error, "batlab.run cannot be called from a task", "run from a task: clear error")
t.like(opener.error, "batlab.open cannot be called from a task", "open from a task: clear error")

-- blocking from Lua that the loop calls (the task_log function)
local cb_err
batlab.task_log(function(tk, msg)
	local ok, e = pcall(batlab.sleep, 1)
	cb_err = e
	logged[#logged + 1] = { task = tk, msg = msg }
end)
batlab.spawn(function() error("x") end)
batlab.run()
t.like(cb_err or "", "cannot block here: this code runs from an event%-loop callback",
	"blocking inside a loop callback: clear error")
batlab.task_log(function(tk, msg) logged[#logged + 1] = { task = tk, msg = msg } end)

-- ---- cancellation ---------------------------------------------------------------------
local closed = {}
local function closer(name)
	return setmetatable({}, { __close = function() closed[#closed + 1] = name end })
end
local ch0 = dev:channel(0)
local sleeper = batlab.spawn(function()
	local guard <close> = closer("sleeper")
	batlab.sleep(1000)
end)
local waiter = batlab.spawn(function()
	local guard <close> = closer("waiter")
	assert(ch0:discharge(0.5))
	while true do
		ch0:wait()
	end
end)
local reader = batlab.spawn(function()
	local guard <close> = closer("reader")
	while true do
		dev:read_raw(0, "VOLTAGE")
	end
end)
local never = batlab.spawn(function() closed[#closed + 1] = "never ran" end)
t.is(never:cancel(), true, "cancel a task that never ran")
t.is(never.status, "cancelled", "it is cancelled")
t.is(batlab.run(5), nil, "run(5) times out while tasks run")
t.is(select(2, batlab.run(0)), "timeout", "run's second value says timeout")
t.is(sleeper.status, "waiting", "the sleeper waits")
t.is(pool:sim_reg(dev, 0, "MODE"), batlab.MODE_DISCHARGE, "the waiter's channel discharges")
t.is(sleeper:cancel(), true, "cancel the sleeper")
t.is(waiter:cancel(), true, "cancel the waiter")
t.is(reader:cancel(), true, "cancel the reader")
t.is(sleeper.status, "cancelled", "cancelled")
t.is(sleeper:cancel(), true, "cancelling again is harmless")
t.is_deeply(closed, { "sleeper", "waiter", "reader" }, "cancel runs the <close> handlers")
t.is(batlab.run(), true, "nothing left to run")
quiesce()
t.is(pool:sim_reg(dev, 0, "MODE"), batlab.MODE_IDLE, "the cancelled waiter's channel was made safe")

-- cancel from another task; a task cannot cancel itself
local victim = batlab.spawn(function() batlab.sleep(100) end)
local killer = batlab.spawn(function()
	batlab.sleep(1)
	victim:cancel()
	local ok, e = pcall(function() batlab.current():cancel() end)
	return ok, e
end)
batlab.run()
t.is(victim.status, "cancelled", "a task cancels another")
t.is(killer.results[1], false, "a task cannot cancel itself")
t.like(killer.results[2], "cannot cancel itself", "with a clear message")

-- ---- runaway tasks ----------------------------------------------------------------------
local old = batlab.instruction_limit(200000)
t.is(old, 100000000, "the default instruction limit is 1e8")
local spin = batlab.spawn(function() while true do end end)
local swallow = batlab.spawn(function()
	local n = 0
	while true do
		pcall(function() for _ = 1, 1e9 do n = n + 1 end end)
	end
end)
local fine = batlab.spawn(function()
	for _ = 1, 5 do
		for _ = 1, 10000 do end
		batlab.sleep(1)
	end
	return "ok"
end)
batlab.run()
t.is(spin.status, "failed", "an endless loop is stopped")
t.like(spin.error, "instructions without waiting", "with a clear message")
t.is(swallow.status, "failed", "a pcall cannot swallow the stop")
t.is(fine.status, "done", "a task that waits now and then is not stopped")
t.is(batlab.instruction_limit(old), 200000, "instruction_limit returns the previous limit")

-- ---- no leaks --------------------------------------------------------------------------
quiesce()
local now = batlab._stats()
t.is(now.tasks, 0, "no live tasks")
t.is(now.refs, base.refs, "registry references back to the baseline")
t.is(now.waits, 0, "no waits left")
t.is(now.ready, 0, "nothing queued")
t.is(now.channel_waits, 0, "no channel waiters or tick reads left")
t.is(now.timers, base.timers, "loop timers back to the baseline")
t.is(now.pending, 0, "no device requests pending")

pool:close()
t.ok(pool.closed, "pool closed")
t.raises(function() pool:devices() end, "closed pool", "a closed pool raises")
t.is(batlab.open { sim = true } ~= nil, true, "a new pool opens after close")

t.done()
