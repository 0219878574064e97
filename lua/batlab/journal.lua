-- batlab.journal - a run's journal: journal.jsonl in its directory, one
-- JSON object per line, only ever appended, so that `batlab resume` can
-- tell after a crash (kill -9, a reboot, a power cut) what each cell had
-- done and where it was. Entries (docs/results.md):
--
--   {"ev":"run", mode, argv, dev, script, script_hash, settings_hash, epoch}
--   {"ev":"cell", cell, serial, channel}
--   {"ev":"begin", cell, step, name, t, resumable}     a step starts
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
-- Lines are flushed as they are written; a step's start and end also go
-- to the disk (fsync). A line cut short by a crash is ignored on reading.
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
	return setmetatable({ f = f, path = path, sync = sync and true or false }, Journal)
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

-- write(entry [, sync]) -> true | nil, err. sync: to the disk now.
function Journal:write(entry, sync)
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
	if sync and self.sync then
		return batlab.fsync(self.f)
	end
	w, err = self.f:flush()
	if not w then
		return nil, self.path .. ": " .. tostring(err)
	end
	return true
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
