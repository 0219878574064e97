-- Live telemetry over MQTT (docs/lab.md), against a real Mosquitto broker
-- of our own (labservers.lua) and mosquitto_sub as the subscriber: every
-- sample message equal to its CSV row, the events, the retained status
-- with the verdict, "online" and the last will when batlab dies, a broker
-- that is not there, the config file, bad URLs. Skipped, saying why,
-- where the broker cannot be started.
local dir = arg[0]:match("^(.-)[^/]*$")
local t = dofile(dir .. "tap.lua")
local cli = dofile(dir .. "cli.lua")
local lab = dofile(dir .. "labservers.lua")
local csv = require "batlab.csv"
local cjson = require "cjson"

local mq, why = lab.mosquitto()
if not mq then
	io.write("1..0 # SKIP ", (why:gsub("\n", " ")), "\n")
	os.exit(0)
end

local tmp = cli.tmpdir()
local q = cli.quote
local SUB = ("mosquitto_sub -h 127.0.0.1 -p %d"):format(mq.port)

cli.write(tmp .. "/short.lua", [[
local steps = require "batlab.steps"
return {
  name = "short",
  params = { sync = "" },
  run = function(cell, p)
    steps.rest(cell, 60)
    if p.sync ~= "" then -- stop here until the test is done with us
      local f = assert(io.open(p.sync .. "/to-test", "w")); f:write("held\n"); f:close()
      local g = assert(io.open(p.sync .. "/to-proc", "r")); g:read("l"); g:close()
    end
    steps.discharge(cell, { current = 1.0, max_time = 600 })
    return true, "done"
  end,
}
]])

local function subscribe(file, topic)
	return lab.subscribe(mq, file, topic)
end

-- ---- a run with --mqtt ------------------------------------------------------------

local done = subscribe(tmp .. "/sub.txt", "batlab/#")
local r1 = tmp .. "/r1"
-- at --speed 1000 (0.7 s): live samples are dropped while the broker is
-- slower than they come, and an unpaced virtual run outruns any broker
local code, _, err = cli.batlab(("run %s --sim --speed 1000 --cell 0=A1 --out %s --mqtt %s --quiet --no-report")
	:format(q(tmp .. "/short.lua"), r1, mq.url))
t.is(code, 0, "run --mqtt: exit 0 " .. err)
t.is(err, "", "run --mqtt: nothing on stderr")
local got = done()
t.ok(got, "the subscriber saw everything up to the end marker")
got = got or ""

local samples, events, statuses, online = {}, {}, {}, {}
for topic, payload in got:gmatch("(batlab/[^ \n]+) ([^\n]*)") do
	local host, rest = topic:match("^batlab/([^/]+)/(.+)$")
	if rest == "1000/0/sample" then
		samples[#samples + 1] = cjson.decode(payload)
	elseif rest == "1000/0/event" then
		events[#events + 1] = cjson.decode(payload)
	elseif rest == "1000/0/status" then
		statuses[#statuses + 1] = cjson.decode(payload)
	elseif rest == "online" then
		online[#online + 1] = payload
	end
	t.host = host
end

local rows = csv.parse(cli.read(r1 .. "/cells/A1.csv"))
table.remove(rows, 1)
if #rows[#rows] <= 1 then
	rows[#rows] = nil
end
local by_time = {}
for _, r in ipairs(rows) do
	by_time[r[1]] = r
end
-- QoS 0 telemetry may drop a sample the broker was too slow for; on a
-- local broker nearly all arrive
t.ok(#samples >= #rows * 0.9, ("sample messages: %d of %d rows"):format(#samples, #rows))
local bad
for i, s in ipairs(samples) do
	local r = by_time[("%.3f"):format(s.time)]
	if not r then
		bad = bad or ("message %d: no CSV row at %.3f s"):format(i, s.time)
	elseif tonumber(r[8]) ~= s.voltage or tonumber(r[9]) ~= s.current or tonumber(r[10]) ~= s.temp_c
		or tonumber(r[11]) ~= s.charge_ah or tonumber(r[12]) ~= s.energy_wh or tonumber(r[5]) ~= s.step
		or r[6] ~= s.step_name or r[7] ~= s.mode or s.cell ~= "A1" then
		bad = bad or ("message %d at %.3f s differs from its CSV row"):format(i, s.time)
	end
end
t.ok(not bad, "every sample message equals its CSV row (V, I, T, Ah, Wh, step, mode) " .. (bad or ""))
local texts = {}
for _, e in ipairs(events) do
	texts[#texts + 1] = e.message
end
texts = table.concat(texts, "\n")
t.like(texts, "REST started %(step 1", "event: the rest started")
t.like(texts, "DISCHARGE ended: time", "event: the discharge ended")
t.is(statuses[#statuses].verdict, "pass", "status: the verdict, last")
t.is(statuses[#statuses].state, "done", "status: done")
t.is(statuses[#statuses].procedure, "short", "status: the procedure")
t.is(statuses[2] and statuses[2].step_name, "REST", "status: each step as it starts (REST)")
t.is(statuses[3] and statuses[3].step_name, "DISCHARGE", "status: each step as it starts (DISCHARGE)")
t.is(online[1], "true", "online: true while running")
t.is(online[#online], "false", "online: false after a clean end")
local _, ret = lab.sh(("%s -t 'batlab/+/1000/0/status' --retained-only -C 1 -W 10"):format(SUB))
t.like(ret, '"verdict":"pass"', "the status is retained: a late subscriber gets the verdict")

-- ---- the last will: batlab killed mid-run -------------------------------------------

local sync = tmp .. "/sync"
assert(os.execute(("mkdir %s && mkfifo %s/to-test %s/to-proc"):format(sync, sync, sync)))
-- at --speed 50 its 60 s rest takes 1.2 s of real time, in which the
-- connection to the broker is made and "online" published before the run
-- blocks on the fifo (unpaced, the rest could end first: then nothing
-- says online, and the will has nothing to replace)
assert(os.execute(("(%s run %s --sim --speed 50 --cell 0=B2 --out %s/r2 --mqtt %s --set sync=%s --quiet --no-report"
	.. " </dev/null >/dev/null 2>&1 & echo $! > %s/pid)"):format(q(cli.bin), q(tmp .. "/short.lua"), tmp, mq.url,
	sync, tmp)))
local _, held = lab.sh("timeout 120 head -n 1 " .. sync .. "/to-test")
t.is(held, "held\n", "last will: the run is under way")
local _, on = lab.sh(("%s -t 'batlab/%s/online' --retained-only -C 1 -W 10"):format(SUB, t.host or "+"))
t.is(on, "true\n", "last will: online is true while it runs")
-- a subscriber that ends when the will comes ("true" retained, then "false")
assert(os.execute(("timeout 60 %s -t 'batlab/%s/online' -C 2 > %s/will.txt 2>&1 & echo $! > %s/will.pid")
	:format(SUB, t.host or "+", tmp, tmp)))
lab.sh(("timeout 30 sh -c 'until [ -s %s/will.txt ]; do sleep 0.05; done'"):format(tmp))
lab.sh("kill -9 " .. cli.read(tmp .. "/pid"))
lab.sh(("timeout 60 sh -c 'until [ \"$(wc -l < %s/will.txt)\" -ge 2 ]; do sleep 0.05; done'"):format(tmp))
t.is(cli.read(tmp .. "/will.txt"), "true\nfalse\n", "last will: the broker says offline when batlab dies")

-- ---- no broker ------------------------------------------------------------------

code, _, err = cli.batlab(("run %s --sim --cell 0=C3 --out %s/r3 --mqtt mqtt://127.0.0.1:1 --quiet --no-report")
	:format(q(tmp .. "/short.lua"), tmp))
t.is(code, 0, "no broker: the run still passes")
t.like(err, "cannot reach the MQTT broker 127.0.0.1:1", "no broker: said once")
t.ok(cli.read(tmp .. "/r3/cells/C3.csv"):find("DISCHARGE", 1, true), "no broker: the files are written")

-- ---- the config file -----------------------------------------------------------------

cli.write(tmp .. "/lab.conf", "# the lab\nmqtt = " .. mq.url .. "\n")
done = subscribe(tmp .. "/sub4.txt", "batlab/+/1000/0/status")
code, _, err = cli.batlab(("run %s --sim --cell 0=D4 --out %s/r4 --quiet --no-report"):format(q(tmp .. "/short.lua"), tmp),
	"BATLAB_CONFIG=" .. tmp .. "/lab.conf")
t.is(code, 0, "mqtt from the config file: exit 0 " .. err)
t.like(done() or "", '"cell":"D4"', "mqtt from the config file: the status came")
cli.write(tmp .. "/bad.conf", "mqtt = " .. mq.url .. "\nmqtt_pasword = x\n")
code, _, err = cli.batlab(("run %s --sim --cell 0=E5 --out %s/r5 --quiet --no-report"):format(q(tmp .. "/short.lua"), tmp),
	"BATLAB_CONFIG=" .. tmp .. "/bad.conf")
t.is(code, 2, "a misspelt key in the config file: exit 2")
t.like(err, "bad.conf:2: unknown key 'mqtt_pasword'", "a misspelt key: names the file, line and key")
t.ok(not cli.read(tmp .. "/r5/run.json"), "a misspelt key: no run directory made")
cli.write(tmp .. "/bad.conf", "mqtt = " .. mq.url .. "\nmqtt_password = x\n")
code, _, err = cli.batlab(("run %s --sim --cell 0=E5 --out %s/r5 --quiet --no-report"):format(q(tmp .. "/short.lua"), tmp),
	"BATLAB_CONFIG=" .. tmp .. "/bad.conf")
t.ok(code == 2 and err:find("gives mqtt_password without mqtt_username", 1, true),
	"a password without a user: exit 2, said " .. err)
cli.write(tmp .. "/bad.conf", "mqtt = " .. mq.url .. "\n")
code, _, err = cli.batlab(("run %s --sim --cell 0=E5 --out %s/r5 --quiet --no-report"):format(q(tmp .. "/short.lua"), tmp),
	"BATLAB_CONFIG=" .. tmp .. "/bad.conf")
t.is(code, 0, "the file corrected, the same command runs into the same --out " .. err)
code, _, err = cli.batlab(("run %s --sim --cell 0=E5 --out %s/r6 --mqtt http://x --quiet"):format(q(tmp .. "/short.lua"), tmp))
t.is(code, 2, "--mqtt with a bad URL: exit 2")
t.like(err, "not mqtt://HOST", "--mqtt with a bad URL: says what it wants")
t.ok(not cli.read(tmp .. "/r6/run.json"), "--mqtt with a bad URL: no run directory made")
code, _, err = cli.batlab(("run %s --sim --cell 0=E5 --out %s/r7 --mqtt mqtt://me:pw@x --quiet"):format(q(tmp .. "/short.lua"), tmp))
t.is(code, 2, "--mqtt with credentials in the URL: exit 2")
t.like(err, "credentials go in the lab configuration file", "--mqtt with credentials: says where they go")

-- ---- credentials from the config file, against a broker that wants them -------------

local amq, awhy = lab.mosquitto("bench3", "s3cret pass")
t.ok(amq, "a broker with a password file " .. tostring(awhy))
if amq then
	cli.write(tmp .. "/auth.conf", ("mqtt = %s\nmqtt_username = bench3\nmqtt_password = s3cret pass\n"):format(amq.url))
	code, _, err = cli.batlab(("run %s --sim --cell 0=G7 --out %s/r8 --quiet --no-report"):format(q(tmp .. "/short.lua"), tmp),
		"BATLAB_CONFIG=" .. tmp .. "/auth.conf")
	t.is(code, 0, "credentials from the config file: exit 0")
	t.is(err, "", "credentials from the config file: the broker took them (no warning)")
	local _, st = lab.sh(("mosquitto_sub -h 127.0.0.1 -p %d%s -t 'batlab/+/1000/0/status' --retained-only -C 1 -W 10")
		:format(amq.port, amq.auth))
	local ok, sj = pcall(cjson.decode, st)
	t.ok(ok and sj.cell == "G7" and sj.verdict == "pass", "credentials from the config file: the status arrived " .. st)
	cli.write(tmp .. "/wrong.conf", ("mqtt = %s\nmqtt_username = bench3\nmqtt_password = wrong\n"):format(amq.url))
	code, _, err = cli.batlab(("run %s --sim --cell 0=H8 --out %s/r9 --quiet --no-report"):format(q(tmp .. "/short.lua"), tmp),
		"BATLAB_CONFIG=" .. tmp .. "/wrong.conf")
	t.is(code, 0, "a wrong password: the run still passes")
	t.like(err, "refused", "a wrong password: the broker's refusal is said")
	amq:destroy()
end

mq:destroy()
os.execute("rm -rf " .. q(tmp))
t.done()
