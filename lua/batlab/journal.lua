-- batlab.journal - a run's journal: journal.jsonl in its directory, one
-- JSON object per line, only ever appended, so that `batlab resume` can
-- tell after a crash (kill -9, a reboot, a power cut) what each cell had
-- done and where it was. Entries (docs/results.md):
--
--   {"ev":"run", mode, argv, dev, script, script_hash, settings_hash, epoch}
--   {"ev":"cell", cell, serial, channel}
--   {"ev":"begin", cell, step, name, t, resumable, cleared}
--                                                      a step starts (cleared:
--                                                      the device's counter
--                                                      and ERROR were cleared
--                                                      just before)
--   {"ev":"started", cell, step}                       the device started it
--   {"ev":"at", cell, step, t, step_time, ah, wh, v, qmin, qmax}
--                                                      where it is (about
--                                                      once a second)
--   {"ev":"end", cell, step, t, row, sum, state}       a step ended
--   {"ev":"z", cell, ohms, q, in_step}                 an impedance
--   {"ev":"done", cell, result, failure, records}      its procedure ended
--   {"ev":"resume", t, gap_from}                       the run went on
--   {"ev":"closed", outcome}                           the run ended
--
-- Lines are flushed as they are written ("at" lines about once a second
-- for all cells together); a step's start and end also go to the disk
-- (fsync). A line cut short by a crash is ignored on reading.
local batlab = require "batlab"
local cjson = require("cjson").new()
local fsutil = require "batlab.fsutil"

cjson.encode_invalid_numbers(true) -- nan/inf of a broken sample: written, not fatal
cjson.decode_invalid_numbers(true)

local M = {}

M.FILE = "journal.jsonl"

local Journal = {}
Journal.__index = Journal

-- open(dir [, sync]) -> journal | nil, err. Appends to an existing
-- journal. sync: steps' starts and ends go to the disk at once (fsync),
-- which a power cut needs; it can stall the host for a while on a busy
-- disk, harmless for a real Batlab (its watchdog waits 25.5 s) but not
-- for a simulator on a pty running many times faster than real time.
function M.open(dir, sync)
	local path = dir .. "/" .. M.FILE
	local f, err = io.open(path, "ab")
	if not f then
		return nil, err
	end
	-- resumable until the run's first entry says it ran on the in-process
	-- simulator (a resume reopens a run that can be resumed)
	return setmetatable({ f = f, path = path, sync = sync and true or false, resumable = true }, Journal)
end

-- Whether a run's journal goes to the disk at every step (see open): on
-- real ports; not for the in-process simulator (nothing to resume) or a
-- simulator on a pseudo-terminal (--port /dev/pts/N).
function M.wants_sync(o)
	local ports = type(o.port) == "table" and o.port or { o.port }
	for _, p in ipairs(ports) do
		if p:find("^/dev/pts/") then
			return false
		end
	end
	return not o.sim
end

-- For the kill-and-resume tests (tests/lua/resume_kill.lua), which must
-- land a crash or a Ctrl-C exactly where they mean to, whatever the
-- machine's speed: BATLAB_JOURNAL_SIGNAL="SIG WHEN EV [CELL [STEP [N]]]"
-- makes the host send itself signal SIG (KILL, INT, ...) just before
-- (WHEN = before) or just after (after) writing the Nth (default first)
-- entry of kind EV (of that cell and step). Through io.popen, not
-- os.execute: system() ignores SIGINT in the caller while it waits.
local function signal_spec()
	local text = os.getenv("BATLAB_JOURNAL_SIGNAL")
	if not text or text == "" then
		return nil
	end
	local sig, when, ev, cell, step, n = text:match("^(%u+)%s+(%a+)%s+(%a+)%s*(%S*)%s*(%d*)%s*(%d*)$")
	assert(sig and (when == "before" or when == "after"),
		"BATLAB_JOURNAL_SIGNAL: SIG before|after EV [CELL [STEP [N]]]")
	return { sig = sig, when = when, ev = ev, cell = cell ~= "" and cell or nil, step = tonumber(step),
		n = tonumber(n) or 1 }
end
local SIGNAL = signal_spec()

local function signal_here(entry, when)
	local s = SIGNAL
	if s and entry.ev == s.ev and (not s.cell or entry.cell == s.cell)
		and (not s.step or entry.step == s.step) then
		if when == "before" then -- (each entry counted once)
			s.seen = (s.seen or 0) + 1
		end
		if s.when ~= when or s.seen < s.n then
			return
		end
		SIGNAL = nil
		local p = io.popen("kill -s " .. s.sig .. " $PPID")
		if p then
			p:close()
		end
	end
end

-- write(entry [, sync]) -> true | nil, err. sync: to the disk now.
function Journal:write(entry, sync)
	if SIGNAL then
		signal_here(entry, "before")
	end
	if entry.ev == "run" then
		self.resumable = not entry.sim
	end
	local ok, err = self:_write(entry, sync)
	if SIGNAL then
		signal_here(entry, "after")
	end
	return ok, err
end

function Journal:_write(entry, sync)
	if not self.f then
		return nil, self.path .. ": closed"
	end
	local ok, text = pcall(cjson.encode, entry)
	if not ok then
		return nil, self.path .. ": " .. tostring(text)
	end
	local w, err = self.f:write(text, "\n")
	if not w then
		return nil, self.path .. ": " .. tostring(err)
	end
	-- an in-process simulator's run cannot be resumed: its journal goes
	-- to the disk with the buffer, not an entry at a time
	if not self.resumable then
		return true
	end
	-- "at" entries (every cell, every second) go out together about once
	-- a second, with the next entry of another kind or at close: a lab of
	-- 256 channels made a write a channel a second for them
	if entry.ev == "at" then
		local now = batlab.now()
		if self.at_flushed and now - self.at_flushed < 1 then
			return true
		end
		self.at_flushed = now
	end
	if sync and self.sync then
		return batlab.fsync(self.f)
	end
	w, err = self.f:flush()
	if not w then
		return nil, self.path .. ": " .. tostring(err)
	end
	return true
end

-- Modes in which the device's charge counter counts.
local COUNTING = { CHARGE = true, DISCHARGE = true, IMPEDANCE = true }

-- Before a charge or discharge step's "begin" entry (batlab.recording):
-- when nothing counts on channel `ch` (mode_now: its last report's mode),
-- its charge counter and ERROR are cleared. Then after a crash anywhere
-- past "begin", even one between the device starting the current and the
-- journal's "started", what the counter holds and what ERROR says are
-- this step's, which batlab.resume reads. -> true when cleared. Only for
-- a run that can be resumed: the in-process simulator's results stay as
-- they were without the two writes.
function Journal:clear_for_step(ch, mode_now)
	if not self.resumable or not mode_now or COUNTING[mode_now] then
		return false
	end
	local dev, cell = ch.device, ch.index
	return dev:write(cell, "ERROR", 0) ~= nil and dev:write(cell, "CHARGEH", 0) ~= nil
end

function Journal:close()
	if self.f then
		local f = self.f
		self.f = nil
		if self.sync then
			batlab.fsync(f)
		end
		return f:close()
	end
	return true
end

-- JSON null (cjson.null) read back as nil: the journal only writes it
-- for holes in arrays (a procedure's nil message).
local function drop_nulls(t)
	for k, v in pairs(t) do
		if v == cjson.null then
			t[k] = nil
		elseif type(v) == "table" then
			drop_nulls(v)
		end
	end
	return t
end

-- read(dir) -> entries | nil, err. A last line without its newline (cut
-- short by a crash) is left out; a bad line anywhere else is an error.
function M.read(dir)
	local path = dir .. "/" .. M.FILE
	local text, err = fsutil.read_file(path)
	if not text then
		return nil, err
	end
	local out, n = {}, 0
	for line, nl in text:gmatch("([^\n]*)(\n?)") do
		if nl == "" then
			break -- the cut-short last line, or the end
		end
		n = n + 1
		if line ~= "" then
			local ok, e = pcall(cjson.decode, line)
			if not ok or type(e) ~= "table" then
				return nil, ("%s:%d: not a journal entry (%s)"):format(path, n, tostring(e))
			end
			out[#out + 1] = drop_nulls(e)
		end
	end
	return out
end

-- digest_file(path) -> digest | nil, err: enough to tell that a procedure
-- or a settings file changed since the run started.
function M.digest_file(path)
	local text, err = fsutil.read_file(path)
	if not text then
		return nil, err
	end
	return fsutil.hash(text)
end

return M
