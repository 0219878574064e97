-- batlab.labsink - a run's second sinks: its rows to PostgreSQL
-- (batlab.db_open, docs/database.md) and its live telemetry to MQTT
-- (batlab.mqtt_open, docs/lab.md), beside the files, never instead of
-- them. The runner feeds it from where it feeds the files: a cell's
-- samples through a C feed on its channel (labelled by batlab.recording),
-- its steps and summary from the runner's callbacks, and the database's
-- events from events.log itself (Lab:_log_events), so the table holds
-- every line, the run's own ones too, in the file's order.
--
--   local lab, err = labsink.open(R)        -- nil, nil: no --db/--mqtt
--   feeds = lab:feeds(name, ch)             -- for recording.attach
--   lab:cell(name, serial, channel); lab:step(name, row)
--   lab:event(name, text, t); lab:summary(name, sum); lab:close(outcome)
local batlab = require "batlab"
local labconf = require "batlab.labconf"
local labresume = require "batlab.labresume"

local M = {}

local Lab = {}
Lab.__index = Lab

local function hostname()
	local f = io.open("/proc/sys/kernel/hostname")
	local h = f and f:read("l")
	if f then
		f:close()
	end
	return h or os.getenv("HOSTNAME") or "localhost"
end

-- mqtt://host[:port] or mqtts://host[:port] (TLS) and the config's
-- credentials and TLS files -> batlab.mqtt_open's options | nil, err.
local function mqtt_opts(url, conf, node)
	local scheme, host, port = url:match("^(mqtts?)://([%w%.%-]+):?(%d*)/?$")
	if not scheme and url:find("@", 1, true) then
		return nil, "credentials go in the lab configuration file (docs/lab.md), not in the URL, where ps shows them"
	elseif not scheme then
		return nil, ("'%s' is not mqtt://HOST[:PORT] or mqtts://HOST[:PORT]"):format(url)
	end
	if conf.mqtt_password and not conf.mqtt_username then
		return nil, "the lab configuration file gives mqtt_password without mqtt_username"
	end
	local tls = scheme == "mqtts" or conf.mqtt_cafile ~= nil
	return {
		host = host, port = tonumber(port), node = node, prefix = conf.mqtt_topic,
		username = conf.mqtt_username, password = conf.mqtt_password,
		cafile = conf.mqtt_cafile, capath = tls and not conf.mqtt_cafile and "/etc/ssl/certs" or nil,
		certfile = conf.mqtt_certfile, keyfile = conf.mqtt_keyfile,
	}
end

local function absolute(dir)
	if dir:sub(1, 1) == "/" then
		return dir
	end
	return require("lfs").currentdir() .. "/" .. dir
end

-- Where the sinks go: R.o.db / R.o.mqtt, else $BATLAB_DB / $BATLAB_MQTT,
-- else the config file; a resumed run's are its own (batlab.labresume).
local function urls(R, conf)
	if R.resume then
		return labresume.urls(R, conf)
	end
	return R.o.db or os.getenv("BATLAB_DB") or conf.db, R.o.mqtt or os.getenv("BATLAB_MQTT") or conf.mqtt
end

function Lab:_run_row()
	local R = self.R
	local run_json = require("batlab.fsutil").read_file(R.run.dir .. "/run.json")
	self.db:row("runs", { self.run_id, self.host, R.mode, R.proc.name, R.script, { ts = R.epoch },
		R.o.sim and true or false, absolute(R.run.dir), batlab.VERSION, run_json and { json = run_json } }, 10)
end

-- What a resume needs to go on with the same sinks (its journal, never
-- a password: batlab.labresume).
local function record(R, lab, url, mqtt_url)
	local db, removed
	if (url or "") ~= "" then
		db, removed = labresume.redact(url)
	end
	R.journal:write({ ev = "lab", run_id = lab.run_id, db = db, db_password = removed or nil,
		mqtt = (mqtt_url or "") ~= "" and mqtt_url or nil }, true)
end

-- The TLS files the options name, each readable (what bl_mqtt_open loads).
local TLS_FILES = { cafile = "CA certificates", certfile = "client certificate", keyfile = "client key" }

-- check(R) -> true | nil, err: the lab configuration, the sinks' URLs and
-- the broker's TLS files, before the run makes its directory (a typo
-- there must not leave behind a run directory that the corrected command
-- then refuses to write into).
function M.check(R)
	local conf, cerr = labconf.read()
	if not conf then
		return nil, cerr
	end
	local url, mqtt_url = urls(R, conf)
	if (url or "") ~= "" then
		local ok, why = batlab.db_check(url)
		if not ok then
			return nil, "--db: " .. tostring(why)
		end
	end
	if (mqtt_url or "") ~= "" then
		local opts, oerr = mqtt_opts(mqtt_url, conf, "check")
		if not opts then
			return nil, "--mqtt: " .. oerr
		end
		for _, k in ipairs { "cafile", "certfile", "keyfile" } do
			local f, ferr = nil, nil
			if opts[k] then
				f, ferr = io.open(opts[k], "rb")
			end
			if opts[k] and not f then
				return nil, ("--mqtt: cannot load the MQTT %s from %s"):format(TLS_FILES[k], ferr)
			elseif f then
				f:close()
			end
		end
	end
	return true
end

-- open(R) -> lab | nil, nil (no sink asked for) | nil, err.
function M.open(R)
	local conf, cerr = labconf.read()
	if not conf then
		return nil, cerr
	end
	local url, mqtt_url, warn = urls(R, conf)
	if (url or "") == "" and (mqtt_url or "") == "" then
		return nil
	end
	if warn then
		io.stderr:write("batlab: warning: ", warn, "\n")
	end
	local dir = R.run.dir
	local lab = setmetatable({ R = R, host = hostname(), seq = 0, t0 = R.t0, epoch = R.epoch, cells = {} },
		Lab)
	lab.run_id = R.resume and R.resume.lab and R.resume.lab.run_id
		or ("%s:%s:%d"):format(lab.host, dir:match("([^/]+)/*$") or dir, os.time())
	record(R, lab, url, mqtt_url)
	if (url or "") ~= "" then
		local db, err = batlab.db_open(url, dir)
		if not db then
			return nil, "--db: " .. tostring(err)
		end
		lab.db = db
		lab.log = { path = dir .. "/events.log", off = 0 }
		if R.resume then
			labresume.catch_up(lab, R)
		else
			lab:_run_row()
		end
	end
	if (mqtt_url or "") ~= "" then
		if not batlab.mqtt_open then
			lab:close("error")
			return nil, "--mqtt: this batlab was built without MQTT"
		end
		local opts, oerr = mqtt_opts(mqtt_url, conf, lab.host)
		local mq, err = nil, oerr
		if opts then
			mq, err = batlab.mqtt_open(opts)
		end
		if not mq then
			lab:close("error")
			return nil, "--mqtt: " .. tostring(err)
		end
		lab.mqtt = mq
	end
	return lab
end

-- The feeds batlab.recording labels and closes with the cell's recording.
function Lab:feeds(name, ch, serial, channel)
	local out = {}
	-- (a resumed cell goes on after its rows; its cells row is there, batlab.labresume)
	local before = self.db and self.rows_before and self.rows_before[name]
	if self.db then
		out[#out + 1] = self.db:feed(ch, self.run_id, name, self.t0, self.epoch, before or 0)
	end
	if self.db and not before then
		self.cell_names = self.cell_names or {}
		self.cell_names[name] = true
		self.ncells = (self.ncells or 0) + 1 -- its place in run.json's cells
		self.db:row("cells", { self.run_id, name, serial, channel, self.ncells }, 5)
	end
	if self.mqtt then
		local c = { topic = ("%d/%d/"):format(serial, channel), status = { cell = name,
			procedure = self.R.proc.name, state = "running", step = 0, cycle = 0 } }
		self.cells[name] = c
		local feed = self.mqtt:feed(ch, name, serial, channel, self.t0)
		-- the C feed labels the samples; a new step is also a new status
		out[#out + 1] = {
			label = function(_, t)
				feed:label(t)
				local st = c.status
				local new = t.step ~= nil and t.step ~= st.step
				for _, k in ipairs { "step", "step_name", "cycle", "cycle_kind" } do
					if t[k] ~= nil then
						st[k] = t[k]
					end
				end
				if new then
					self:_status(c)
				end
			end,
			carry = function(_, k) feed:carry(k) end, -- (a resumed step, batlab.recording)
			close = function() feed:close() end,
		}
		self:_status(c)
	end
	return out
end

local json = require("batlab.results").json_encode
local compact = require("cjson").encode  -- a message, one line

function Lab:_status(c)
	self.mqtt:publish(c.topic .. "status", compact(c.status), true)
end

function Lab:step(name, row)
	if not self.db then
		return
	end
	self.db:row("steps", { self.run_id, name, row.step, row.cycle, row.cycle_kind, row.step_name, row.kind,
		row.start, row.duration, row.end_reason, row.charge_ah, row.energy_wh, row.avg_v, row.avg_i,
		row.temp_start, row.temp_end, row.impedance }, 17)
end

-- One entry of events.log ("<date> <t> s  <text>", continued on
-- indented lines) as a row: a cell's when the text starts "[CELL] ".
function Lab:_event_row(t, body)
	local name, text = body:match("^%[(.-)%] (.*)$")
	if not (name and self.cell_names and self.cell_names[name]) then
		name, text = nil, body
	end
	self.seq = self.seq + 1
	if self.seq <= (self.skip_events or 0) then -- resumed: spooled before the crash
		return
	end
	self.db:row("events", { self.run_id, self.seq, name, { ts = self.epoch + t }, t, text }, 6)
end

-- The entries events.log gained since last time, in its order: the
-- cells' lines and the run's own (connected, started, verdicts,
-- interrupted, ...). Read when a cell's event comes and at the end; the
-- file is written an entry at a time and flushed, so whole entries.
function Lab:_log_events()
	local f = self.db and io.open(self.log.path, "rb")
	if not f then
		return
	end
	f:seek("set", self.log.off)
	local text = f:read("a") or ""
	f:close()
	local cur_t, cur
	local used = 0
	for line, stop in text:gmatch("([^\n]*)\n()") do
		local t, body = line:match("^%S+ +(%-?[%d.]+) s  (.*)$")
		if t and not line:find("^%s") then
			if cur then
				self:_event_row(cur_t, cur)
			end
			cur_t, cur = tonumber(t), body
		elseif cur then
			cur = cur .. "\n" .. line
		end
		used = stop - 1
	end
	if cur then
		self:_event_row(cur_t, cur)
	end
	self.log.off = self.log.off + used
end

function Lab:event(name, text, t)
	self:_log_events()
	local c = self.mqtt and self.cells[name]
	if c then
		self.mqtt:publish(c.topic .. "event", compact({ time = t, cell = name, message = text }))
	end
end

function Lab:summary(name, sum, verdict)
	local c = self.mqtt and self.cells[name]
	if c then
		c.status.state, c.status.verdict, c.status.reason = "done", verdict, sum.reason or sum.message
		self:_status(c)
	end
	if not self.db then
		return
	end
	self.db:row("summaries", { self.run_id, name, verdict, sum.reason, sum.capacity_ah, sum.energy_wh,
		sum.impedance_ohm, { json = json(sum) } }, 8)
end

-- close(outcome) -> true | nil, message: what could not be sent is said
-- (it stays in the run's spool for `batlab db push`).
function Lab:close(outcome)
	local msgs = {}
	if self.mqtt then
		self.mqtt:close()
		self.mqtt = nil
	end
	if self.db then
		self:_log_events()
		local now = batlab.now() - self.t0
		self.db:row("run_ends", { self.run_id, { ts = self.epoch + now }, outcome }, 3)
		local left, why = self.db:close(tonumber(os.getenv("BATLAB_DB_WAIT")) or 10)
		self.db = nil
		if left > 0 then
			msgs[#msgs + 1] = ("database: %d bytes of rows not sent (%s); they are in %s/db-spool.sql: "
				.. "send them with 'batlab db push %s'"):format(left, why or "?", self.R.run.dir, self.R.run.dir)
		end
	end
	if #msgs > 0 then
		return nil, table.concat(msgs, "; ")
	end
	return true
end

return M
