-- batlab.shell - the Lua side of the interactive `batlab shell`
-- (src/cli/shell_repl.c): the helpers tasks() and help(), and the notices
-- printed before each prompt (plug/unplug messages, background tasks that
-- ended).
--
-- install(env, pool) puts the helpers into env (the shell passes its
-- globals; this module sets none itself). Through batlab.on_spawn every
-- task started in the shell process - from the prompt or by a module such
-- as the stock-test runner - is followed until its end has been reported
-- once. It also routes task failure
-- messages here (batlab.task_log): the shell reports them as one-line
-- notices instead of tracebacks written over the prompt; `task.error`
-- keeps the traceback.
--
-- The C scheduler keeps its own list of live tasks but has no Lua accessor;
-- what a task waits in and which channels it drives are read from its
-- coroutine and its channel set (the Task's user values 1 and 2, see
-- src/sched.c) through the debug library, and only for display.
local batlab = require "batlab"
local show = require "batlab.show"

local M = {}

-- show(...) -> the text the prompt prints for each value a line returned
-- (batlab.show: samples in their units, tables written out).
M.show = show.values

local tracked = {}                               -- tasks not reported yet, in spawn order
local info = setmetatable({}, { __mode = "k" })  -- task -> { where = "stdin:3", ch = Channel }
local pending = {}                               -- notice lines not printed yet
local the_pool

local function first_line(s)
	s = tostring(s or "")
	return s:match("^[^\n]*")
end

-- batlab.on_spawn's hook: where = "stdin:3:" (the spawning line).
local function track(t, ch, where)
	local w = where and (where:gsub(":%s*$", ""))
	info[t] = { where = (w and w ~= "") and w or "?", ch = ch }
	tracked[#tracked + 1] = t
end

-- "1000:0 1000:2": the channels a task drives, "-" for none.
local function channels(t, rec)
	local seen, list = {}, {}
	local function add(ch)
		local ok, name = pcall(function() return ("%d:%d"):format(ch.device.sn, ch.index) end)
		if ok and not seen[name] then
			seen[name] = true
			list[#list + 1] = name
		end
	end
	if rec and rec.ch then
		add(rec.ch)
	end
	local ok, bound = pcall(debug.getuservalue, t, 2)
	if ok and type(bound) == "table" then
		for ch in pairs(bound) do
			add(ch)
		end
	end
	table.sort(list)
	return #list > 0 and table.concat(list, " ") or "-"
end

-- "sleep() at stdin:1": the batlab call a waiting task is suspended in and
-- the innermost Lua line that made it.
local function waiting_in(t)
	local ok, co = pcall(debug.getuservalue, t, 1)
	if not ok or type(co) ~= "thread" then
		return "-"
	end
	local call, where
	for level = 0, 30 do
		local d = debug.getinfo(co, level, "nSl")
		if not d then
			break
		end
		if d.what == "C" and not call and d.name then
			call = (d.namewhat == "method" and ":" or "") .. d.name .. "()"
		elseif d.what ~= "C" and d.currentline and d.currentline > 0 then
			where = d.short_src .. ":" .. d.currentline
			break
		end
	end
	if call and where then
		return call .. " at " .. where
	end
	return call or where or "-"
end

local function results_text(r)
	if type(r) ~= "table" or (r.n or 0) == 0 then
		return ""
	end
	local parts = {}
	for i = 1, math.min(r.n, 4) do
		parts[i] = tostring(r[i])
	end
	local s = table.concat(parts, ", ") .. (r.n > 4 and ", ..." or "")
	if #s > 60 then
		s = s:sub(1, 57) .. "..."
	end
	return ": " .. s
end

-- Lines to print before the next prompt: pool messages first, then every
-- followed task that ended since the last call (each reported once).
function M.notices()
	local out = {}
	if the_pool and not the_pool.closed then
		for _, m in ipairs(the_pool:messages()) do
			out[#out + 1] = m
		end
	end
	for _, line in ipairs(pending) do
		out[#out + 1] = line
	end
	pending = {}
	local keep = {}
	for _, t in ipairs(tracked) do
		local st = t.status
		if st == "done" then
			out[#out + 1] = ("[task %d done%s]"):format(t.id, results_text(t.results))
		elseif st == "failed" then
			out[#out + 1] = ("[%s] (its task.error has the traceback)"):format(first_line(t.error))
		elseif st == "cancelled" then
			out[#out + 1] = ("[task %d cancelled]"):format(t.id)
		else
			keep[#keep + 1] = t
		end
	end
	tracked = keep
	return out
end

-- The running tasks, like batlabutil's `list` of running tests.
function M.tasks()
	local rows = {}
	for _, t in ipairs(tracked) do
		local st = t.status
		if st == "ready" or st == "waiting" or st == "running" then
			local rec = info[t]
			rows[#rows + 1] = { t.id, st, channels(t, rec), st == "waiting" and waiting_in(t) or "-",
				rec and rec.where or "?" }
		end
	end
	if #rows == 0 then
		print("no tasks running")
		return
	end
	print(("%4s  %-8s  %-14s  %-32s  %s"):format("id", "state", "channels", "waiting in", "spawned at"))
	for _, r in ipairs(rows) do
		print(("%4d  %-8s  %-14s  %-32s  %s"):format(r[1], r[2], r[3], r[4], r[5]))
	end
end

M.guide = [[
The batlab shell: Lua 5.4 with the batlab API (docs/lua-api.md).

  batlab             the module: batlab.open, spawn, spawn_for, run, sleep, ...
  pool               the connected Batlabs: pool:devices(), pool:find(sn)
  dev                the active Batlab: dev.sn, dev:read("CELL0", "VOLTAGE")
                     (a packet: :asvoltage(), :value(); dev:read_raw: the integer)
  tasks()            the running tasks (id, state, channels, what they wait in)
  help()             this guide

  =expr or expr      print a value:      dev:read("UNIT", "VCC")
  ch = dev:channel(0); ch:discharge(1.0); ch:wait()   drive a channel directly
  t = batlab.spawn_for(ch, function()                  a background task
        ch:discharge(1.0)
        repeat local s = ch:wait() until s.voltage < 3.0
        ch:idle()
      end)
  tasks()  t.status  t:cancel()  batlab.run()          follow, stop, or wait for tasks

Calls that wait (dev:read, ch:wait, batlab.sleep, batlab.run) block the
prompt and run the event loop until they are done; Ctrl-C interrupts them
(every task is cancelled and every channel made safe). Background tasks
keep running while the prompt waits for input on real hardware; with
--sim, time is virtual and moves only while a command runs (use
batlab.run() or batlab.sleep(s) to let tasks progress). Ctrl-C at the
prompt clears the line; Ctrl-D or os.exit() leaves, cancelling running
tasks (their channels are made safe). History: ~/.batlab_history.]]

function M.help()
	print(M.guide)
end

-- The helpers install puts into the shell's environment, by name.
M.helpers = { tasks = M.tasks, help = M.help }

local installed = false

-- install(env, pool) -> M. Puts M.helpers into env (a table; nil: none),
-- and once per process sets up task tracking and failure messages as
-- notices. pool: the session's pool, whose messages notices() prints.
function M.install(env, pool)
	the_pool = pool
	for name, fn in pairs(env and M.helpers or {}) do
		env[name] = fn
	end
	if installed then
		return M
	end
	installed = true
	batlab.on_spawn(track)
	batlab.task_log(function(t, msg)
		-- A followed task is reported by notices(); anything else here.
		if not info[t] then
			pending[#pending + 1] = "[" .. first_line(msg) .. "]"
		end
	end)
	return M
end

return M
