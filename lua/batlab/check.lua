-- batlab.check - `batlab check FILE [--set KEY=VALUE]... [--sim=LAYOUT]
-- [--cell CH=NAME]... [--out DIR]`: a procedure loaded, its parameters
-- checked and the whole of it dry-run on the virtual Batlab in virtual
-- time (every step's options are checked when the step is called), then
-- what went wrong: the verdict lines, each step that did not end normally,
-- a count. Never touches hardware: --port and --serial are refused. The
-- run's files go to a temporary directory (or --out DIR).

local cjson = require "cjson"
local csv = require "batlab.csv"
local fsutil = require "batlab.fsutil"

local M = {}

M.USAGE = [[
usage: batlab check FILE [--set KEY=VALUE]... [--sim=LAYOUT] [--devices N] [--seed S]
                          [--cell CH=NAME]... [--out DIR]

Load a procedure, check its parameters, and dry-run it on the virtual
Batlab in virtual time; report each cell's verdict, failures, safety
stops and abnormal step ends. Exit 0 when nothing went wrong, 1 when
something did, 2 when the procedure or its parameters are refused.
]]

-- The steps.csv rows that did not end normally.
local ABNORMAL = { safety = true, stopped = true, removed = true, ["no reports"] = true,
	["device reset"] = true, thermistor = true, ["device error"] = true }

local function problems_of(dir)
	local out = {}
	local text = fsutil.read_file(dir .. "/steps.csv")
	local rows = text and csv.parse(text) or {}
	local head = rows[1] or {}
	local col = {}
	for i, n in ipairs(head) do
		col[n] = i
	end
	for r = 2, #rows do
		local row = rows[r]
		local why = row[col["End Reason"]]
		if ABNORMAL[why] or (row[col["Safety Stop"]] or "") ~= "" then
			out[#out + 1] = ("%s: step %s (%s) ended %s%s"):format(row[col.Cell], row[col.Step], row[col["Step Name"]],
				why, (row[col["Safety Stop"]] or "") ~= "" and (" [" .. row[col["Safety Stop"]] .. "]") or "")
		end
	end
	return out
end


-- After the runner's verdict lines: the abnormal step ends, and a count.
local function report(dir)
	local text = fsutil.read_file(dir .. "/summary.json")
	if not text then
		io.stdout:write("check: the dry run wrote no summary\n")
		return 1
	end
	local sum = cjson.decode(text)
	local bad = 0
	for _, c in ipairs(sum.cells or {}) do
		if c.verdict == "error" then
			bad = bad + 1
		end
	end
	for _, p in ipairs(problems_of(dir)) do
		io.stdout:write("problem: ", p, "\n")
		bad = bad + 1
	end
	io.stdout:write(bad == 0 and "check: no problems found (a dry run in virtual time)\n"
		or ("check: %d problem(s) (a dry run in virtual time)\n"):format(bad))
	return bad == 0 and 0 or 1
end

-- main(mode, argv, dev) -> exit status (the runner's signature: the
-- command line's device options in dev).
function M.main(_, argv, dev)
	dev = dev or {}
	if argv[1] == "-h" or argv[1] == "--help" or #argv == 0 then
		io.stdout:write(M.USAGE)
		return #argv == 0 and 2 or 0
	end
	if dev.port or dev.serial then
		io.stderr:write("batlab: check: a dry run never touches hardware: no --port or --serial\n")
		return 2
	end
	local keep, args = nil, {}
	local k = 1
	while k <= #argv do
		if argv[k] == "--out" then
			keep = argv[k + 1]
			k = k + 1
		elseif argv[k] ~= "--quiet" then
			args[#args + 1] = argv[k]
		end
		k = k + 1
	end
	-- the dry run's files stay for a look (the runner says where)
	local dir = keep or (fsutil.tmpdir("check") .. "/run")
	for _, a in ipairs({ "--quiet", "--no-report", "--out", dir }) do
		args[#args + 1] = a
	end
	local sim = { sim = dev.sim or true, devices = dev.devices, seed = dev.seed }
	local code = require("batlab.runner").main("run", args, sim)
	if code == 2 then
		return 2
	end
	return report(dir)
end

return M
