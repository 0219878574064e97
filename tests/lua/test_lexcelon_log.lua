-- batlab.lexcelon_log: Lexcelon's batlab-log_<playlist>.csv with a header
-- that matches the rows; optional comparison with a real log.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local lex = require "batlab.lexcelon_log"
local csv = require "batlab.csv"
local fsutil = require "batlab.fsutil"

local TMP = assert(fsutil.tmpdir("test-lexcelon"))
local EPOCH = 1509225000   -- 2017-10-28T21:10:00Z

-- The seed's 20 documented columns (REFERENCE-HOST §4.1), in order.
local SEED_HEADER = {
	"Cell Name", "Batlab SN", "Channel", "Timestamp (s)", "Voltage (V)", "Current (A)",
	"Temperature (C)", "Impedance (Ohm)", "Energy (J)", "Charge (Coulombs)", "Test State",
	"Test Type", "Charge Capacity (Coulombs)", "Energy Capacity (J)", "Avg Impedance (Ohm)",
	"delta Temperature (C)", "Avg Current (A)", "Avg Voltage", "Runtime (s)", "VCC (V)",
}

t.is(lex.NCOLS, 23, "23 columns")
for i = 1, 20 do
	t.is(lex.COLUMNS[i], SEED_HEADER[i], "column " .. i .. " as the seed: " .. SEED_HEADER[i])
end
t.is(lex.COLUMNS[21], "Operating Setpoint (raw)", "column 21 named (the seed's unnamed op_raw)")
t.is(lex.COLUMNS[22], "Setpoint (raw)", "column 22 named (sp_raw)")
t.is(lex.COLUMNS[23], "Duty (raw)", "column 23 named (DUTY)")

t.is(lex.timestamp(EPOCH + 0.635238, true), "2017-10-28 21:10:00.635238", "timestamp: Python's str(datetime), UTC")
t.is(lex.timestamp(EPOCH, true), "2017-10-28 21:10:00.000000", "timestamp: always 6 fractional digits")
t.like(lex.timestamp(EPOCH), "^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.000000$", "timestamp: local time by default")

local SETTINGS = '{\n    "cellPlaylistName": "My Playlist",\n    "chargeRate": 2\n}\n'
local path = TMP .. "/batlab-log_My Playlist.csv"
local log = assert(lex.open(path, SETTINGS, { start_time = EPOCH, utc = true }))
t.is(getmetatable(log).__name, "batlab.LexcelonLog", "log object")

local head = assert(fsutil.read_file(path))
t.is(head, '"' .. SETTINGS:gsub('"', '""') .. '"' .. string.rep(",", 22) .. "\n" .. table.concat(lex.COLUMNS, ",") .. "\n",
	"header: settings text as one quoted field + 22 commas, then the 23 column names")

assert(log:level1{ name = "testcell3", serial = 262209, channel = 3, time = 11.635238, voltage = 3.27834,
	current = 0.0034, temp_c = 18.77344, energy_j = 0.0332, charge_c = 0.0101, state = "CHARGEREST",
	vcc = 5.0123, op_raw = 256, sp_raw = 256, duty = 412 })
local after1 = fsutil.read_file(path)
t.like(after1, "\ntestcell3,262209,3,2017%-10%-28 21:10:11%.635238,3%.2783,0%.0034,18%.7734,,0%.0332,0%.0101,CHARGEREST,,,,,,,,,5%.0123,256,256,412\n$",
	"level-1 row, flushed before close")
assert(log:level1{ name = "testcell3", serial = 262209, channel = 3, time = 70, voltage = 3.9,
	current = -1.9396, temp_c = 20, impedance = 0.04567, energy_ah = nil, energy_wh = 0.1, charge_ah = 0.05,
	state = "DISCHARGE" })
assert(log:level2{ name = "testcell3", serial = 262209, channel = 3, time = 66.656019, state = "DISCHARGE",
	charge_c = 99.2883, energy_j = 242.1847, avg_impedance = nil, delta_temp = -1.1219, avg_current = -1.9396,
	avg_voltage = 2.4392, runtime = 52.497788 })
assert(log:level2{ name = "x, \"quoted\"", serial = 1, channel = 0, timestamp = "given", state = "PRECHARGE",
	charge_ah = 0.5, energy_wh = 2, avg_impedance = 0.05, delta_temp = 1, avg_current = 2, avg_voltage = 4,
	runtime = 60 })
t.is(log:close(), true, "close")
t.is(log:close(), true, "close twice")
local okw, werr = log:level1{ name = "late" }
t.ok(okw == nil and werr:find("closed"), "writing after close -> nil, err")

local text = assert(fsutil.read_file(path))
local header, rows = lex.read(text)
t.is_deeply(header, lex.COLUMNS, "reader (skip to 'Cell Name') finds the header")
t.is(#rows, 4, "4 data rows")
for i, r in ipairs(rows) do
	t.is(#r, 23, "row " .. i .. " has 23 fields, as many as the header")
end
local r1, r2, r3, r4 = rows[1], rows[2], rows[3], rows[4]
t.is(r1[11], "CHARGEREST", "level 1: state in Test State (11)")
t.is(r1[12], "", "level 1: Test Type (12) empty")
t.is(r1[8], "", "level 1: impedance empty on ordinary rows")
t.is(r2[8], "0.0457", "level 1: impedance on impedance rows")
t.is(r2[6], "1.9396", "level 1: current as a magnitude, like the Batlab reports it")
t.is(r2[9], "360.0000", "level 1: energy_wh converted to J")
t.is(r2[10], "180.0000", "level 1: charge_ah converted to C")
t.is(r2[20], "", "level 1: VCC empty when not given")
t.is(r3[11], "", "level 2: Test State (11) empty, like the seed")
t.is(r3[12], "DISCHARGE", "level 2: the step name in Test Type (12), where existing tools read it")
t.is(r3[13], "99.2883", "level 2: charge capacity (C)")
t.is(r3[14], "242.1847", "level 2: energy capacity (J)")
t.is(r3[15], "", "level 2: no Zavg carried over when nothing was measured")
t.is(r3[16], "-1.1219", "level 2: delta T")
t.is(r3[17], "1.9396", "level 2: avg current (magnitude)")
t.is(r3[18], "2.4392", "level 2: avg voltage")
t.is(r3[19], "52.497788", "level 2: runtime, Python float style")
t.is(r3[4], "2017-10-28 21:11:06.656019", "level 2: timestamp")
for c = 5, 10 do
	t.is(r3[c], "", "level 2: column " .. c .. " empty")
end
t.is(r4[1], 'x, "quoted"', "a name with a comma and quotes survives (quoted)")
t.is(r4[4], "given", "timestamp string passed through")
t.is(r4[13], "1800.0000", "level 2: charge_ah converted")
t.is(r4[15], "0.0500", "level 2: avg impedance when measured")
t.is(r4[19], "60.0", "runtime 60 -> 60.0")

-- Per-cell file style: header only.
local p2 = TMP .. "/batlab-log_My Playlist_A1.csv"
local l2 = assert(lex.open(p2, nil, { start_time = EPOCH }))
l2:close()
t.is(fsutil.read_file(p2), table.concat(lex.COLUMNS, ",") .. "\n", "no settings text: only the column header")

-- Append mode: a second header block, like the seed's re-load.
local l3 = assert(lex.open(p2, nil, { append = true }))
l3:close()
local _, n = fsutil.read_file(p2):gsub("Cell Name", "")
t.is(n, 2, "append adds a header block")

local bad, berr = lex.open(TMP .. "/no/such/dir/x.csv", "{}")
t.ok(bad == nil and berr:find("No such file"), "open in a missing directory -> nil, err")

-- Optional: a real Lexcelon log ---------------------------------------------------------

local REF = "../shared/reference/lexcelon/batlab-log_DefaultPlaylist.csv"
local ref = fsutil.read_file(REF)
if ref then
	local h, rr = lex.read(ref)
	-- The sample log predates the header (older library): every line is a row.
	if h then
		t.ok(#h <= lex.NCOLS, "reference header no wider than ours")
	else
		t.ok(true, "reference log has no header line (older library)")
	end
	local l1_ok, l2_ok, n1, n2 = true, true, 0, 0
	local ts_ok = true
	-- Which columns are filled per row type, in the reference and in ours.
	local ours1, ours2 = {}, {}
	for c = 1, 23 do
		ours1[c] = r1[c] ~= "" or c == 8     -- impedance only on impedance rows
		ours2[c] = r4[c] ~= ""
	end
	for _, row in ipairs(rr) do
		if #row > 1 then
			if #row > lex.NCOLS then
				l1_ok = false
			end
			if not row[4]:find("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d%.%d+$") then
				ts_ok = false
			end
			local level2 = (row[12] or "") ~= ""
			for c = 1, #row do
				if row[c] ~= "" then
					if level2 and not ours2[c] then
						l2_ok = false
						t.diag("level 2 column " .. c .. " filled in the reference, empty in ours")
					elseif not level2 and not ours1[c] then
						l1_ok = false
						t.diag("level 1 column " .. c .. " filled in the reference, empty in ours")
					end
				end
			end
			if level2 then
				n2 = n2 + 1
			else
				n1 = n1 + 1
			end
		end
	end
	t.ok(n1 > 0 and n2 > 0, string.format("reference: %d level-1 and %d level-2 rows", n1, n2))
	t.ok(l1_ok, "every column a reference level-1 row fills, ours fills too (same positions)")
	t.ok(l2_ok, "every column a reference level-2 row fills, ours fills too (step name in Test Type)")
	t.ok(ts_ok, "reference timestamps have our date-time shape")
	local states = {}
	for _, row in ipairs(rr) do
		if (row[12] or "") ~= "" then
			states[#states + 1] = row[12]
		end
	end
	t.is(states[1], "PRECHARGE", "reference level-2 rows carry the step name in column 12, as ours")
else
	t.skip("reference Lexcelon log", REF .. " not present")
end

fsutil.rm_rf(TMP)
t.done()
