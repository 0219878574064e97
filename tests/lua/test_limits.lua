-- A procedure's limits, through `batlab run` as a user meets them: an
-- endless loop is reported at the procedure's own file and line (also
-- when it loops inside batlab's library it called), and a procedure that
-- eats memory fails that cell cleanly ("not enough memory"), its channel
-- safe, while the other cells finish.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local csv = require "batlab.csv"
local lfs = require "lfs"

local bin = cli.bin:sub(1, 1) == "/" and cli.bin or lfs.currentdir() .. "/" .. cli.bin
local tmp = os.tmpname()
os.remove(tmp)
assert(lfs.mkdir(tmp))
local q = cli.quote

local function write(path, text)
	local f = assert(io.open(path, "w"))
	f:write(text)
	f:close()
end

local function read(path)
	local f = io.open(path, "rb")
	if not f then
		return nil
	end
	local s = f:read("a")
	f:close()
	return s
end

-- batlab ARGS in tmp (env: "VAR=value " prefix or ""): output, exit code.
local function run(env, args)
	local f = assert(io.popen(("cd %s && %stimeout 60 %s %s 2>&1; echo \"rc=$?\""):format(q(tmp), env,
		q(bin), args)))
	local out = f:read("a")
	f:close()
	return out, tonumber(out:match("rc=(%d+)\n$"))
end

-- The rows of a run's summary.csv by cell name, each by column name.
local function summary(dir)
	local rows, all = {}, csv.parse(read(tmp .. "/" .. dir .. "/summary.csv") or "")
	for i = 2, #all do
		local r = {}
		for j, h in ipairs(all[1]) do
			r[h] = all[i][j]
		end
		rows[r.Cell or "?"] = r
	end
	return rows
end

-- 1. An endless loop: the message names the procedure's file and line.
write(tmp .. "/spin.lua", [[
batlab.instruction_limit(2000000)
return {
  name = "spin",
  run = function(cell)
    cell:wait()
    local x = 0
    while true do
      x = x + 1 -- line 8
    end
  end,
}
]])
local out, code = run("", "run spin.lua --sim --out spin --cell 0=S1")
t.is(code, 1, "an endless loop fails the cell (exit 1)")
t.like((summary("spin").S1 or {}).Reason or "", "^task %d+ failed: spin%.lua:8: ", "summary.csv has it too")
t.like(out, "S1%s+ERROR%s+task %d+ failed: spin%.lua:8: ran more than 2000000 instructions",
	"the message names the procedure's file and line: " .. (out:match("[^\n]*ERROR[^\n]*") or out))

os.execute("rm -rf " .. q(tmp))
t.done()
