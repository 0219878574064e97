-- Private PostgreSQL and Mosquitto servers for the lab tests
-- (test_lab_*.lua): each in its own temporary directory on a loopback
-- port, never the system's services. Not a test itself.
--
--   local lab = dofile(dir .. "labservers.lua")
--   local pg, why = lab.postgres()   -- nil, why: the test skips, saying why
--   lab.postgres{ durable = true }   -- a server as a lab runs one (below)
--   pg.url; pg:psql("select 1"); pg:stop(); pg:start(); pg:destroy()
--   local mq, why = lab.mosquitto()  -- mq.port, mq.url; mq:destroy()
--   lab.mosquitto(nil, nil, { cafile =, certfile =, keyfile = })  -- TLS
--       only (mq.url mqtts://localhost:PORT); mq.client: mosquitto_sub's
--       and mosquitto_pub's options to reach it
--   local done = lab.subscribe(mq, file, topic [, options])  -- mosquitto_sub
--       (with options, e.g. "-R": no retained messages) in the background
--       into file, ready; done() -> all it got, once it has seen a marker
--       published after everything before it (nil: never)
--
-- PostgreSQL refuses to run as root: as root the server runs as `nobody`.
-- Readiness is waited for, never slept for: pg_ctl -w waits until the
-- server takes connections; the broker is tried with mosquitto_pub until
-- it answers (a bounded number of tries, each failing at once while the
-- port is closed).
local lfs = require "lfs"

local M = {}

local function sh(cmd)
	local f = io.popen(cmd .. " 2>&1; echo \"rc=$?\"")
	local out = f:read("a")
	f:close()
	local rc = tonumber(out:match("rc=(%d+)\n$"))
	return rc == 0, (out:gsub("rc=%d+\n$", "")), rc
end
M.sh = sh

local function q(s)
	return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function pg_bin()
	local ok, out = sh("ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1")
	local dir = ok and out:match("^(%S+)") or nil
	if dir and lfs.attributes(dir .. "/pg_ctl", "mode") == "file" then
		return dir
	end
	return nil
end

local function is_root()
	local ok, out = sh("id -u")
	return ok and out:match("^0") ~= nil
end

-- A port from the loopback range to try first: different per process, so
-- two test runs on one machine seldom collide (a busy port is skipped).
local function first_port(base)
	local seed = tostring({}):match("0x(%x+)") or "0"
	return base + tonumber(seed:sub(-4), 16) % 2000
end

-- A server is destroyed when its test is done with it, and also when the
-- test dies of an error first (the Lua state's collection at exit): no
-- server outlives its test.
local PG = {}
PG.__index = PG
PG.__gc = function(s)
	if not s.gone then
		s:destroy()
	end
end

function PG:ctl(args)
	return sh(("%s%s/pg_ctl -D %s %s"):format(self.as, self.bin, q(self.data), args))
end

-- A throwaway server: nothing it stores needs to survive a crash of the
-- machine, so it writes the least it can (no fsync, no commit waiting for
-- the WAL, no full pages in the WAL, no WAL for replicas). Not advice for
-- a lab's server.
local PG_FAST = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c wal_level=minimal"
	.. " -c max_wal_senders=0 -c autovacuum=off"

-- A durable server (the bench's) keeps PostgreSQL's defaults: every
-- commit waits for its WAL to reach the disk, full pages in the WAL,
-- autovacuum; what a lab's server does.
function PG:start()
	return self:ctl(("-w -t 60 -l %s -o %s start"):format(q(self.dir .. "/log"),
		q(("-p %d -k %s -c listen_addresses=127.0.0.1 %s"):format(self.port, self.dir,
			self.durable and "" or PG_FAST))))
end

function PG:stop()
	return self:ctl("-w -t 60 -m fast stop")
end

-- psql(sql) -> ok, output (unaligned, tab-separated, no headers).
function PG:psql(sql)
	return sh(("psql -X -q -At -F '\t' -v ON_ERROR_STOP=1 %s -c %s"):format(q(self.url), q(sql)))
end

-- rows(sql) -> the rows as arrays of fields (text); raises on an error.
function PG:rows(sql)
	local ok, out = self:psql(sql)
	assert(ok, out)
	local rows = {}
	for line in out:gmatch("[^\n]+") do
		local f = {}
		for field in (line .. "\t"):gmatch("([^\t]*)\t") do
			f[#f + 1] = field
		end
		rows[#rows + 1] = f
	end
	return rows
end

function PG:destroy()
	self.gone = true
	self:stop()
	sh("rm -rf " .. q(self.dir))
end

-- or_skip(server, why) -> server, or the TAP plan of a skipped test (saying
-- why) and exit: a test that needs the server and cannot have it.
function M.or_skip(server, why)
	if not server then
		io.write("1..0 # SKIP ", (tostring(why):gsub("\n", " ")), "\n")
		os.exit(0)
	end
	return server
end

-- postgres([{ durable = true }]) -> server | nil, why.
function M.postgres(opts)
	local bin = pg_bin()
	if not bin then
		return nil, "PostgreSQL is not installed (make deps installs it)"
	end
	local dir = os.tmpname()
	os.remove(dir)
	assert(lfs.mkdir(dir))
	local as = ""
	if is_root() then
		as = "runuser -u nobody -- "
		sh("chmod 755 " .. q(dir) .. " && chown nobody " .. q(dir))
	end
	local s = setmetatable({ bin = bin, dir = dir, data = dir .. "/data", as = as,
		durable = opts and opts.durable }, PG)
	local ok, out = sh(("%s%s/initdb -A trust -U batlab -E UTF8 --no-sync -D %s"):format(as, bin, q(s.data)))
	if not ok then
		sh("rm -rf " .. q(dir))
		return nil, "initdb failed: " .. out
	end
	local port = first_port(20000)
	for k = 0, 9 do
		s.port = port + k
		if s:start() then
			s.url = ("postgresql://batlab@127.0.0.1:%d/postgres"):format(s.port)
			return s
		end
	end
	local log = io.open(dir .. "/log")
	local why = log and log:read("a") or "?"
	sh("rm -rf " .. q(dir))
	return nil, "the PostgreSQL server did not start: " .. why
end

local function read(path)
	local f = io.open(path, "rb")
	local text = f and f:read("a")
	if f then
		f:close()
	end
	return text
end

local MQ = {}
MQ.__index = MQ
MQ.__gc = function(s)
	if not s.gone then
		s:destroy()
	end
end

function MQ:destroy()
	self.gone = true
	local f = io.open(self.dir .. "/pid")
	local pid = f and f:read("n")
	if f then
		f:close()
	end
	if pid then
		sh("kill " .. math.tointeger(pid))
	end
	sh("rm -rf " .. q(self.dir))
end

-- The broker's configuration: its listener, plain or TLS (the broker's
-- certificate and key, and the CA it trusts), who may connect.
local function mosquitto_conf(dir, port, auth, tls)
	local f = assert(io.open(dir .. "/mosquitto.conf", "w"))
	f:write(("listener %d 127.0.0.1\n"):format(port))
	if tls then
		f:write(("cafile %s\ncertfile %s\nkeyfile %s\n"):format(tls.cafile, tls.certfile, tls.keyfile))
	end
	f:write(("%spersistence false\npid_file %s/pid\nlog_dest file %s/log\n"):format(auth, dir, dir))
	f:close()
end

-- mosquitto([user, password [, tls]]) -> broker | nil, why. With a user,
-- the broker takes only that user (a password file), no anonymous
-- clients. With tls ({ cafile, certfile, keyfile }: files the broker can
-- read), a TLS listener only; the helpers' own clients (readiness, the
-- subscriber's marks) check its certificate against tls.cafile but not
-- its name, so that a broker with a certificate for another name can be
-- used too.
function M.mosquitto(user, password, tls)
	if not sh("command -v mosquitto && command -v mosquitto_sub && command -v mosquitto_pub") then
		return nil, "mosquitto or mosquitto-clients is not installed (make deps installs them)"
	end
	local dir = os.tmpname()
	os.remove(dir)
	assert(lfs.mkdir(dir))
	sh("chmod 777 " .. q(dir))
	local auth, pub_auth = "allow_anonymous true\n", ""
	if user then
		assert(sh(("mosquitto_passwd -b -c %s %s %s"):format(q(dir .. "/passwd"), q(user), q(password))))
		sh("chmod 644 " .. q(dir .. "/passwd"))
		auth = ("allow_anonymous false\npassword_file %s/passwd\n"):format(dir)
		pub_auth = (" -u %s -P %s"):format(q(user), q(password))
	end
	local tls_opts = tls and (" --cafile %s --insecure"):format(q(tls.cafile)) or ""
	local port, why = first_port(24000), ""
	for k = 0, 9 do
		local p = port + k
		local client = ("-h 127.0.0.1 -p %d%s%s"):format(p, tls_opts, pub_auth)
		mosquitto_conf(dir, p, auth, tls)
		local started, out = sh(("mosquitto -d -c %s"):format(q(dir .. "/mosquitto.conf")))
		why = out
		if started then
			for _ = 1, 200 do
				if sh(("mosquitto_pub %s -t batlab-test/ready -n"):format(client)) then
					return setmetatable({ dir = dir, port = p, auth = pub_auth, client = client,
						url = (tls and "mqtts://localhost:%d" or "mqtt://127.0.0.1:%d"):format(p) }, MQ)
				end
				if not lfs.attributes(dir .. "/pid") then
					break -- it exited (the port was taken): the next one
				end
			end
			MQ.destroy({ dir = dir }) -- a plain table: no finalizer
			assert(lfs.mkdir(dir))
			sh("chmod 777 " .. q(dir))
		end
	end
	sh("rm -rf " .. q(dir))
	return nil, "the mosquitto broker did not start " .. why
end

function M.subscribe(mq, file, topic, options)
	local pub = ("mosquitto_pub %s -t batlab-test/mark -m "):format(mq.client)
	assert(os.execute(("mosquitto_sub %s %s -v -t %s -t batlab-test/mark > %s 2>&1 & echo $! > %s.pid")
		:format(mq.client, options or "", q(topic), q(file), q(file))))
	local function mark(word)
		for _ = 1, 300 do
			sh(pub .. word)
			if (read(file) or ""):find("batlab-test/mark " .. word, 1, true) then
				return true
			end
		end
		return false
	end
	assert(mark("ready"), "the subscriber never became ready")
	return function()
		local ok = mark("end")
		sh("kill " .. (read(file .. ".pid") or ""))
		return ok and read(file) or nil
	end
end

return M
