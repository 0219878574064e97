-- Never lose a test to the way a run ends: a hang-up (an SSH drop) ends a
-- run like SIGTERM (exit 130, channels safe, files complete, summary
-- written); a standard output whose reader left (`| head -1`) fails only
-- that stream; Ctrl-C is honoured while a procedure computes without
-- waiting. Signals are sent once the child printed its first line (a
-- blocking read on a pipe, no timing involved).
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local cjson = require "cjson"
local lfs = require "lfs"

local bin = cli.abs_bin
local tmp = cli.tmpdir()
local write, read = cli.write, cli.read
local q = cli.quote

local function sh(script)
	write(tmp .. "/t.sh", script)
	local p = assert(io.popen("sh " .. q(tmp .. "/t.sh") .. " 2>&1"))
	local got = p:read("a")
	p:close()
	return got
end

local function verdicts(dir)
	local sj = cjson.decode(read(dir .. "/summary.json") or "null")
	local v = {}
	for _, c in ipairs(type(sj) == "table" and (sj.cells or sj) or {}) do
		v[#v + 1] = c.verdict
	end
	return table.concat(v, " ")
end

local function outcome(dir)
	local rj = cjson.decode(read(dir .. "/run.json") or "null")
	local o = type(rj) == "table" and rj.outcome
	return type(o) == "table" and tostring(o.status) or type(o) == "string" and o or "none"
end

-- Run `batlab ARGS` with its output on a fifo, send SIG once its first line
-- was read, and return what the script printed (exit=N).
local function signalled(args, sig)
	os.remove(tmp .. "/fifo")
	return sh(([[
mkfifo %s/fifo || exit 9
%s %s > %s/fifo 2>&1 &
pid=$!
{ IFS= read -r first; kill -%s "$pid"; cat > /dev/null; } < %s/fifo
wait "$pid"
echo "exit=$?"
]]):format(q(tmp), q(bin), args, q(tmp), sig, q(tmp)))
end

write(tmp .. "/quick.json", [[{ "cellPlaylistName": "quick", "numWarmupCycles": 0,
  "numMeasurementCycles": 1, "restPeriod": 30, "reportingPeriod": 1 }]])
write(tmp .. "/long.json", [[{ "cellPlaylistName": "long", "numWarmupCycles": 0, "numMeasurementCycles": 200 }]])

-- 1. A pipe whose reader leaves after the first line.
local got = sh(([[
{ %s cycletest --settings %s/quick.json --sim --out %s/pipe A B C D 2> %s/pipe.err; echo $? > %s/pipe.rc; } | head -1
]]):format(q(bin), q(tmp), q(tmp), q(tmp), q(tmp)))
t.like(got, "^%[0:00:00%]", "the reader got its first line")
t.is(read(tmp .. "/pipe.rc"), "0\n", "a closed standard output: the run still ends as it would (exit 0, not SIGPIPE)")
t.is(verdicts(tmp .. "/pipe"), "pass pass pass pass", "and writes every cell's summary")
t.like(outcome(tmp .. "/pipe"), "completed", "run.json: completed")
t.like(read(tmp .. "/pipe.err") or "", "standard output was closed", "stderr says the output was lost")

-- 2. A hang-up in the middle of a long run.
got = signalled(("cycletest --settings %s/long.json --sim --out %s/hup H1 H2"):format(q(tmp), q(tmp)), "HUP")
t.like(got, "exit=130", "SIGHUP: exit 130")
t.is(verdicts(tmp .. "/hup"), "incomplete incomplete", "SIGHUP: every cell's summary is there, marked incomplete")
t.like(outcome(tmp .. "/hup"), "interrupted", "SIGHUP: run.json says interrupted")
local tail = (read(tmp .. "/hup/cells/H1.csv") or ""):match("([^\n]*)\n$") or ""
t.ok(select(2, tail:gsub(",", ",")) == 15, "SIGHUP: the time series ends with a complete row")

-- 3. Ctrl-C while a procedure computes without waiting (no instruction
-- limit, so only the signal can end it; `timeout` ends a batlab that
-- missed it). The task is cancelled like the others, not failed.
write(tmp .. "/spin.lua", [[
batlab.instruction_limit(0)
return {
  name = "spin",
  run = function(cell)
    cell:wait()
    print("spinning")
    local x = 0
    while true do x = x + 1 end
  end,
}
]])
got = sh(([[
mkfifo %s/fifo2 || exit 9
timeout 30 %s run %s/spin.lua --sim --out %s/spin --cell 0=S1 --cell 1=S2 > %s/fifo2 2>&1 &
pid=$!
{ IFS= read -r first; echo "first=$first"; t0=$(date +%%s%%N); kill -INT "$pid"; cat > /dev/null; } < %s/fifo2
wait "$pid"
echo "exit=$? ms=$(( ($(date +%%s%%N) - t0) / 1000000 ))"
]]):format(q(tmp), q(bin), q(tmp), q(tmp), q(tmp), q(tmp)))
t.like(got, "first=spinning", "the procedure computes")
t.like(got, "exit=130", "SIGINT while a task computes: exit 130")
local ms = tonumber(got:match("ms=(%d+)")) or 1e9
t.ok(ms < 2000, ("and promptly (%s ms; well under 0.2 s on an idle machine)"):format(ms))
t.is(verdicts(tmp .. "/spin"), "incomplete incomplete", "both cells incomplete: the computing task was cancelled, not failed")
t.like(outcome(tmp .. "/spin"), "interrupted", "run.json says interrupted")

os.execute("rm -rf " .. q(tmp))
t.done()
