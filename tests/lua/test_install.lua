-- `make install-udev` and `make install UDEV=1` (into a DESTDIR) put the
-- udev rule where README's Install section says, with what it must say:
-- the Batlab's USB ID, access for the user at the machine and the dialout
-- group, and ModemManager told to keep off. A plain `make install` puts no
-- rule anywhere. Runs make in the source tree, as a user would.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local cli = dofile(arg[0]:match("^(.-)[^/]*$") .. "cli.lua")
local lfs = require "lfs"

local root = arg[0]:match("^(.-)[^/]*$") .. "../.."
local q = cli.quote

local slurp = cli.read

-- make TARGET VARS... in the source tree, outside the make that runs the
-- tests (its flags are not ours); the same build as the tests use.
local san = (os.getenv("BUILD") or ""):match("build/san$") and " SANITIZE=1" or ""
local function make(args)
	local f = assert(io.popen(("cd %s && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s %s%s 2>&1; echo \"rc=$?\"")
		:format(q(root), args, san)))
	local out = f:read("a")
	f:close()
	return tonumber(out:match("rc=(%d+)\n$")), out:gsub("rc=%d+\n$", "")
end

local tmp = cli.tmpdir()

local rule = slurp(root .. "/tools/60-batlab.rules")
t.ok(rule, "the rule ships as tools/60-batlab.rules")
rule = rule or ""
local readme = slurp(root .. "/README.md") or ""

-- what the rule says, line by line (comments aside)
local tty, usb
for line in rule:gmatch("[^\n]+") do
	if not line:match("^%s*#") then
		tty = tty or (line:match('SUBSYSTEM=="tty"') and line)
		usb = usb or (line:match('SUBSYSTEM=="usb"') and line)
	end
end
t.ok(tty and tty:find('ATTRS{idVendor}=="04d8"', 1, true) and tty:find('ATTRS{idProduct}=="000a"', 1, true),
	"the tty rule matches USB 04D8:000A")
t.ok(tty and tty:find('TAG+="uaccess"', 1, true), "the user at the machine may open it")
t.ok(tty and tty:find('GROUP="dialout"', 1, true) and tty:find('MODE="0660"', 1, true), "so may the dialout group")
t.ok(tty and tty:find('ENV{ID_MM_DEVICE_IGNORE}="1"', 1, true), "ModemManager ignores the port")
t.ok(usb and usb:find('ATTR{idVendor}=="04d8"', 1, true) and usb:find('ENV{ID_MM_DEVICE_IGNORE}="1"', 1, true),
	"and the USB device")

-- make install-udev: the default place, and a package's
local code, out = make("install-udev DESTDIR=" .. q(tmp .. "/a"))
t.is(code, 0, "make install-udev: exit 0")
local path = "/etc/udev/rules.d/60-batlab.rules"
t.is(slurp(tmp .. "/a" .. path), rule, "make install-udev puts the rule in " .. path)
t.is(lfs.attributes(tmp .. "/a" .. path, "permissions"), "rw-r--r--", "readable by all, as udev wants")
t.ok(readme:find(path, 1, true), "README's Install section names " .. path)
t.like(out, "udevadm control %-%-reload%-rules", "make install-udev says how to load it now")

code = make("install-udev PREFIX=/usr DESTDIR=" .. q(tmp .. "/b"))
path = "/usr/lib/udev/rules.d/60-batlab.rules"
t.is(slurp(tmp .. "/b" .. path), rule, "with PREFIX=/usr: in " .. path)
t.ok(readme:find(path, 1, true), "README names " .. path)
code = make("install-udev UDEVDIR=/lib/udev/rules.d DESTDIR=" .. q(tmp .. "/c"))
t.is(slurp(tmp .. "/c/lib/udev/rules.d/60-batlab.rules"), rule, "UDEVDIR chooses the directory")

-- make install: the rule only when asked
code = make("install PREFIX=/usr UDEV=1 DESTDIR=" .. q(tmp .. "/d"))
t.is(code, 0, "make install UDEV=1: exit 0")
t.is(slurp(tmp .. "/d/usr/lib/udev/rules.d/60-batlab.rules"), rule, "make install UDEV=1 installs the rule")
t.ok(lfs.attributes(tmp .. "/d/usr/bin/batlab", "mode") == "file", "with everything else")
code = make("install PREFIX=/usr DESTDIR=" .. q(tmp .. "/e"))
t.is(code, 0, "make install: exit 0")
t.ok(lfs.attributes(tmp .. "/e/usr/bin/batlab", "mode") == "file", "make install installs batlab")
t.is(lfs.attributes(tmp .. "/e/usr/lib/udev", "mode"), nil, "but no udev rule unless asked")
t.is(lfs.attributes(tmp .. "/e/etc", "mode"), nil, "nothing in /etc either")

os.execute("rm -rf " .. q(tmp))
t.done()
