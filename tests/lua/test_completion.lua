-- tools/batlab-completion.bash against the program itself: it offers every
-- command of `batlab --help`, and for each command exactly the options that
-- command's --help lists (plus -h/--help, which every command takes), so the
-- two cannot drift apart. The completion runs in bash, as a user's would.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")

local script = arg[0]:match("^(.-)[^/]*$") .. "../../tools/batlab-completion.bash"

local function batlab(args)
	return cli.runner("")(args)
end

-- complete(words...) -> the words bash offers for the last one
local function complete(...)
	local words = { ... }
	local quoted = {}
	for i, w in ipairs(words) do
		quoted[i] = cli.quote(w)
	end
	local sh = ("source %s; COMP_WORDS=(batlab %s); COMP_CWORD=%d; COMPREPLY=(); _batlab; "
		.. "printf '%%s\\n' \"${COMPREPLY[@]}\""):format(cli.quote(script), table.concat(quoted, " "), #words)
	local f = assert(io.popen("bash --norc --noprofile -c " .. cli.quote(sh) .. " 2>&1"))
	local set = {}
	for line in f:lines() do
		if line ~= "" then
			set[(line:gsub("=$", ""))] = true -- --sim= is --sim[=LAYOUT]
		end
	end
	f:close()
	return set
end

-- the options a --help text lists
local function options_of(help)
	local set = {}
	for o in (" " .. help):gmatch("[%s%[%(|,](%-%-?%a[%w%-]*)") do
		set[o] = true
	end
	return set
end

local function sorted(set)
	local l = {}
	for k in pairs(set) do
		l[#l + 1] = k
	end
	table.sort(l)
	return table.concat(l, " ")
end

-- set a minus set b
local function minus(a, b)
	local d = {}
	for k in pairs(a) do
		if not b[k] then
			d[k] = true
		end
	end
	return d
end

-- the commands
local help = batlab("--help")
local commands = {}
for name in ("\n" .. help:match("\nCommands:\n(.-)\n\n")):gmatch("\n  (%l+) ") do
	commands[name] = true
end
t.ok(commands.run and commands.calibration and commands.lowcurrent, "batlab --help lists the commands: " .. sorted(commands))
local offered = complete("")
t.is(sorted(minus(offered, { ["--help"] = true, ["--version"] = true })), sorted(commands),
	"the completion offers exactly the commands of batlab --help")

-- the options, per command (firmware and calibration: per subcommand)
local each = {}
for name in pairs(commands) do
	each[#each + 1] = { name }
end
for i = #each, 1, -1 do
	local name = each[i][1]
	if name == "firmware" then
		each[i] = { "firmware", "load" }
		each[#each + 1] = { "firmware", "check" }
		each[#each + 1] = { "firmware", "update" }
	elseif name == "calibration" then
		each[i] = { "calibration", "backup" }
		each[#each + 1] = { "calibration", "restore" }
	end
end
table.sort(each, function(a, b) return table.concat(a, " ") < table.concat(b, " ") end)
local run_help = batlab("run --help")
for _, c in ipairs(each) do
	local label = table.concat(c, " ")
	local text = batlab(label .. " --help")
	-- cycletest and dischargetest take the options of run, and say so
	if text:gsub("%s+", " "):find("Takes the options of 'batlab run'", 1, true) then
		text = text .. run_help
	end
	local listed = options_of(text)
	local words = { table.unpack(c) }
	words[#words + 1] = "-"
	local got = complete(table.unpack(words))
	t.ok(next(listed) ~= nil, label .. " --help lists options: " .. sorted(listed))
	t.is(sorted(minus(listed, got)), "", label .. ": the completion offers every option of --help")
	-- -h and --help go with every command, listed or not
	listed["-h"], listed["--help"] = true, true
	t.is(sorted(minus(got, listed)), "", label .. ": and no option --help does not list")
	t.is(select(3, batlab(label .. " -h")), 0, label .. " -h: exit 0")
end

-- values and arguments
t.is(sorted(complete("measure", "")), "0 1 2 3 CELL0 CELL1 CELL2 CELL3 all", "measure: a cell or all")
t.is(sorted(complete("impedance", "--sim", "")), "0 1 2 3 CELL0 CELL1 CELL2 CELL3", "impedance: a cell, options skipped")
t.is(sorted(complete("charge", "--connect-timeout", "5", "")), "0 1 2 3 CELL0 CELL1 CELL2 CELL3 all",
	"an option's value is not taken for an argument")
t.is(sorted(complete("write", "cell0", "mode", "i")), "IDLE IMPEDANCE", "write ... MODE: the mode names")
t.is(sorted(complete("calibration", "")), "backup restore", "calibration: its subcommands")
t.is(sorted(complete("firmware", "")), "check load update", "firmware: its subcommands")
t.is(sorted(complete("settings", "")), "view", "settings: its subcommand")
t.is(sorted(complete("measure", "--seed", "")), "", "--seed: no guess at its value")

t.done()
