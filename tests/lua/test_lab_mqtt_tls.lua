-- Live telemetry over MQTT with TLS (docs/lab.md), against real TLS
-- listeners: Mosquitto brokers of our own (labservers.lua) with
-- certificates made here by a throwaway CA (the `openssl` command), and
-- `openssl s_server` to see the server name batlab sends.
--
-- * mqtts://localhost with the CA: the samples, events and statuses
--   arrive over TLS, equal to the run's files;
-- * a broker whose certificate is for another name, or signed by a CA
--   batlab was not given: refused, said, nothing published, the run
--   unharmed; a number as the host is checked against the certificate's
--   addresses;
-- * the server name sent (SNI) is the name given, not the address;
-- * the name is looked up by batlab's lookup thread only, never on the
--   loop's thread (strace, when it is installed and may trace).
local dir = arg[0]:match("^(.-)[^/]*$")
local t = dofile(dir .. "tap.lua")
local cli = dofile(dir .. "cli.lua")
local lab = dofile(dir .. "labservers.lua")
local csv = require "batlab.csv"
local cjson = require "cjson"

local q = cli.quote
if not lab.sh("command -v openssl") then
	io.write("1..0 # SKIP the openssl command is not installed (make deps installs it)\n")
	os.exit(0)
end

local tmp = cli.tmpdir()
-- the broker may run as the mosquitto user: it reads its files here
lab.sh("chmod 755 " .. q(tmp))

-- A CA, a second CA that signs nothing the brokers use, and certificates
-- signed by the first: `localhost` (also 127.0.0.1) and `wrong.example`.
local function make_certs()
	local key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
	local cmds = {
		("openssl req -x509 %s -keyout ca.key -out ca.pem -days 2 -subj /CN=batlab-test-ca"):format(key),
		("openssl req -x509 %s -keyout other-ca.key -out other-ca.pem -days 2 -subj /CN=batlab-other-ca"):format(key),
	}
	for name, san in pairs({ localhost = "DNS:localhost,IP:127.0.0.1", ["wrong.example"] = "DNS:wrong.example" }) do
		cli.write(("%s/%s.ext"):format(tmp, name), "subjectAltName=" .. san .. "\n")
		cmds[#cmds + 1] = ("openssl req -new %s -keyout %s.key -out %s.csr -subj /CN=%s"):format(key, name, name, name)
		cmds[#cmds + 1] = ("openssl x509 -req -in %s.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
			.. " -extfile %s.ext -out %s.pem"):format(name, name, name)
	end
	local ok, out = lab.sh(("cd %s && %s && chmod 644 *.key"):format(q(tmp), table.concat(cmds, " && ")))
	return ok, out
end
local made, why = make_certs()
t.ok(made, "the certificates are made " .. (made and "" or why))

local function tls(name)
	return { cafile = tmp .. "/ca.pem", certfile = ("%s/%s.pem"):format(tmp, name),
		keyfile = ("%s/%s.key"):format(tmp, name) }
end
local mq
mq, why = lab.mosquitto(nil, nil, tls("localhost"))
if not mq and why:find("not installed", 1, true) then
	io.write("1..0 # SKIP ", why, "\n")
	os.exit(0)
end
local wrong, wwhy = lab.mosquitto(nil, nil, tls("wrong.example"))
t.ok(mq and wrong, "two TLS brokers (localhost, wrong.example) " .. tostring(why) .. tostring(wwhy))
if not (mq and wrong) then
	t.done()
	os.exit(1)
end

cli.write(tmp .. "/short.lua", [[
local steps = require "batlab.steps"
return {
  name = "short",
  run = function(cell)
    steps.rest(cell, 60)
    steps.discharge(cell, { current = 1.0, max_time = 600 })
    return true, "done"
  end,
}
]])
-- the CA in the lab configuration file, as a lab has it
cli.write(tmp .. "/tls.conf", ("mqtt_cafile = %s/ca.pem\n"):format(tmp))
cli.write(tmp .. "/other.conf", ("mqtt_cafile = %s/other-ca.pem\n"):format(tmp))

-- run(cell, url, conf [, extra [, wrapper]]) -> exit code, stderr, the
-- results dir
local function run(cell, url, conf, extra, wrapper)
	local out = ("%s/r-%s"):format(tmp, cell)
	local code, _, err = cli.batlab(("run %s --sim %s --cell 0=%s --out %s --mqtt %s --quiet --no-report")
		:format(q(tmp .. "/short.lua"), extra or "", cell, out, url),
		("BATLAB_CONFIG=%s/%s %s"):format(tmp, conf, wrapper or ""))
	return code, err, out
end

-- messages(text) -> samples, events, statuses, online of channel 1000/0
local function messages(text)
	local m = { sample = {}, event = {}, status = {}, online = {} }
	for topic, payload in (text or ""):gmatch("(batlab/[^ \n]+) ([^\n]*)") do
		local rest = topic:match("^batlab/[^/]+/(.+)$")
		local kind = rest == "online" and "online" or rest:match("^1000/0/(%a+)$")
		if kind then
			local list = m[kind]
			list[#list + 1] = kind == "online" and payload or cjson.decode(payload)
		end
	end
	return m.sample, m.event, m.status, m.online
end

-- ---- mqtts://localhost with the right CA ----------------------------------------------

local done = lab.subscribe(mq, tmp .. "/sub1.txt", "batlab/#")
-- paced (0.7 s of real time) so that the broker keeps up with the samples
local code, err, r1 = run("A1", mq.url, "tls.conf", "--speed 1000")
t.is(code, 0, "mqtts://localhost: exit 0")
t.is(err, "", "mqtts://localhost: nothing on stderr (the certificate is taken)")
local samples, events, statuses, online = messages(done())
local rows = csv.parse(cli.read(r1 .. "/cells/A1.csv"))
table.remove(rows, 1)
local by_time = {}
for _, r in ipairs(rows) do
	by_time[r[1]] = r
end
t.ok(#samples >= #rows * 0.5, ("sample messages over TLS: %d for %d rows"):format(#samples, #rows))
local bad
for i, s in ipairs(samples) do
	local r = by_time[("%.3f"):format(s.time)]
	if not r or tonumber(r[8]) ~= s.voltage or tonumber(r[9]) ~= s.current or tonumber(r[11]) ~= s.charge_ah
		or r[6] ~= s.step_name or s.cell ~= "A1" then
		bad = bad or ("message %d at %.3f s has no equal CSV row"):format(i, s.time)
	end
end
t.ok(#samples > 0 and not bad, "every sample message equals its CSV row (V, I, Ah, step, cell) " .. (bad or ""))
local texts = {}
for _, e in ipairs(events) do
	texts[#texts + 1] = e.message
end
t.like(table.concat(texts, "\n"), "DISCHARGE ended: time", "event over TLS: the discharge ended")
local last = statuses[#statuses] or {}
t.ok(last.state == "done" and last.verdict == "pass" and last.procedure == "short" and last.cell == "A1",
	"status over TLS: done, pass, the procedure and the cell")
t.is(table.concat(online, ","), "true,false", "online over TLS: true, then false at the end")
-- mosquitto's own client, checking the name too, agrees the broker is localhost's
local _, ret = lab.sh(("mosquitto_sub -h localhost -p %d --cafile %s -t 'batlab/+/1000/0/status' --retained-only"
	.. " -C 1 -W 10"):format(mq.port, q(tmp .. "/ca.pem")))
t.like(ret, '"verdict":"pass"', "the retained status, read by a client that checks the name localhost")

-- a number as the host: checked against the certificate's addresses
local ip_url = ("mqtts://127.0.0.1:%d"):format(mq.port)
code, err = run("B2", ip_url, "tls.conf")
t.is(code, 0, "mqtts://127.0.0.1: exit 0")
t.is(err, "", "mqtts://127.0.0.1: its certificate names 127.0.0.1, taken")
_, ret = lab.sh(("mosquitto_sub %s -t 'batlab/+/1000/0/status' --retained-only -C 1 -W 10"):format(mq.client))
t.like(ret, '"cell":"B2"', "mqtts://127.0.0.1: the status arrived")

-- ---- certificates batlab must refuse ---------------------------------------------------

-- refused(cell, url, conf, broker, expected warning, what)
local function refused(cell, url, conf, broker, warning, what)
	-- -R: what the broker holds from the runs before is not this run's
	local sub = lab.subscribe(broker, ("%s/sub-%s.txt"):format(tmp, cell), "batlab/#", "-R")
	local c, e, out = run(cell, url, conf)
	t.is(c, 0, what .. ": the run still passes")
	t.ok((cli.read(out .. "/cells/" .. cell .. ".csv") or ""):find("DISCHARGE", 1, true), what .. ": the files are written")
	t.like(e, warning, what .. ": said")
	local _, n = e:gsub("is refused", "")
	t.is(n, 1, what .. ": said once")
	local got = sub() or "?"
	t.ok(got ~= "?" and not got:find("batlab/", 1, true), what .. ": nothing was published " .. got)
end
refused("C3", ("mqtts://localhost:%d"):format(wrong.port), "tls.conf", wrong,
	("the MQTT broker localhost:%d is refused: its certificate is not for 'localhost'"):format(wrong.port),
	"a certificate for wrong.example")
refused("D4", ("mqtts://127.0.0.1:%d"):format(wrong.port), "tls.conf", wrong,
	("the MQTT broker 127.0.0.1:%d is refused: its certificate is not for '127.0.0.1'"):format(wrong.port),
	"a number not in the certificate")
refused("E5", mq.url, "other.conf", mq,
	("the MQTT broker localhost:%d is refused: its certificate does not verify: "):format(mq.port),
	"a certificate the CA given did not sign")

-- a CA file that is not there: a usage error naming it, before any run
cli.write(tmp .. "/missing.conf", ("mqtt_cafile = %s/no-such-ca.pem\n"):format(tmp))
code, err = run("E9", mq.url, "missing.conf")
t.is(code, 2, "a CA file that is not there: exit 2")
t.like(err, "cannot load the MQTT CA certificates from " .. tmp:gsub("%p", "%%%0") .. "/no%-such%-ca%.pem: No such file",
	"a CA file that is not there: names it and why")
t.ok(not cli.read(tmp .. "/r-E9/run.json"), "a CA file that is not there: no run directory made")

-- ---- the server name sent (SNI): the name given, none for a number -------------------

-- openssl s_server serves localhost's certificate to a client that names
-- localhost, wrong.example's to any other, and prints the name it got. It
-- ends after one connection, and what it printed is all there once it
-- has ended (its standard output is buffered).
-- s_server(file) -> port, done() -> what it printed | nil, why
local function s_server(file)
	local certs = ("-cert %s/wrong.example.pem -key %s/wrong.example.key -servername localhost"
		.. " -cert2 %s/localhost.pem -key2 %s/localhost.key"):format(tmp, tmp, tmp, tmp)
	local out = ""
	for k = 1, 10 do
		local port = wrong.port + 100 * k
		assert(os.execute(("timeout 60 openssl s_server -rev -naccept 1 -accept 127.0.0.1:%d %s < /dev/null > %s 2>&1"
			.. " & echo $! > %s.pid"):format(port, certs, q(file), q(file))))
		-- ready when it says ACCEPT; gone (the port taken) when it ended
		lab.sh(("timeout 10 sh -c 'until grep -q -e ACCEPT -e rror %s; do sleep 0.02; done'"):format(q(file)))
		out = cli.read(file) or ""
		if out:find("ACCEPT", 1, true) then
			return port, function()
				lab.sh(("timeout 10 sh -c 'while kill -0 %s; do sleep 0.02; done'"):format(cli.read(file .. ".pid"):match("%d+")))
				return cli.read(file) or ""
			end
		end
	end
	return nil, out
end

local port, ended = s_server(tmp .. "/sni1.txt")
t.ok(port, "openssl s_server listens " .. (port and "" or tostring(ended)))
code, err = run("F6", ("mqtts://localhost:%d"):format(port or 1), "tls.conf")
local said = port and ended() or ""
t.like(said, 'Hostname in TLS extension: "localhost"', "SNI: the name given is the server name sent")
t.ok(code == 0 and not err:find("is refused", 1, true), "SNI: so the server's certificate for it was served, and taken " .. err)
port, ended = s_server(tmp .. "/sni2.txt")
code, err = run("G7", ("mqtts://127.0.0.1:%d"):format(port or 1), "tls.conf")
said = port and ended() or ""
-- the hello was read (the certificate it then sent was refused: "bad
-- certificate"), and it named no server
t.ok(said:find("alert bad certificate", 1, true) and not said:find("Hostname in TLS extension", 1, true),
	"SNI: none for a number (RFC 6066) " .. said:sub(1, 300))
t.like(err, "is refused: its certificate is not for '127.0.0.1'", "SNI: so the server's default certificate came, refused")

-- ---- the name looked up off the loop's thread -----------------------------------------

-- strace shows which thread opens /etc/hosts (glibc's lookup of localhost
-- reads it): batlab's lookup thread (resolve.h), never the main thread,
-- which runs the loop and libmosquitto, given only addresses.
local trace = tmp .. "/trace.txt"
if not lab.sh("command -v strace && strace -f -o /dev/null true") then
	t.skip("the name is looked up off the loop's thread", "strace is not installed, or may not trace here")
else
	-- (LeakSanitizer cannot work under ptrace: off for this run of a
	-- SANITIZE=1 build, whose leaks the runs above check)
	code, err = run("H8", mq.url, "tls.conf", "--speed 1000",
		("ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -qq -e trace=openat -o %s"):format(q(trace)))
	t.is(code, 0, "under strace: exit 0 " .. err)
	local main, looked_up, on_main = nil, 0, 0
	for line in (cli.read(trace) or ""):gmatch("[^\n]+") do
		local tid = line:match("^(%d+) ")
		main = main or tid
		if line:find('"/etc/hosts"', 1, true) then
			looked_up = looked_up + 1
			on_main = on_main + (tid == main and 1 or 0)
		end
	end
	t.ok(main and looked_up > 0, ("under strace: localhost was looked up (%d time(s))"):format(looked_up))
	t.is(on_main, 0, "under strace: never by the loop's thread (libmosquitto was given the address)")
	_, ret = lab.sh(("mosquitto_sub %s -t 'batlab/+/1000/0/status' --retained-only -C 1 -W 10"):format(mq.client))
	t.like(ret, '"cell":"H8"', "under strace: the status arrived over TLS")
end

mq:destroy()
wrong:destroy()
os.execute("rm -rf " .. q(tmp))
t.done()
