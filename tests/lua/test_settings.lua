-- batlab.settings: both Lexcelon formats, aliases, defaults, every kind of
-- error and warning, overrides, cell names, view, register values.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local settings = require "batlab.settings"

local DATA = "tests/data/settings/"

local function has(list, pattern)
	for _, w in ipairs(list or {}) do
		if w:find(pattern) then
			return true
		end
	end
	return false
end

local function parse(text, overrides)
	return settings.parse(text, "t.json", overrides)
end

-- Python flat file -----------------------------------------------------------

local s, w, info = settings.load(DATA .. "py-flat.json")
t.ok(s ~= nil, "py-flat.json loads")
t.is(info.format, "python", "flat file detected as the Python format")
t.is(s.cellPlaylistName, "My Playlist", "cellPlaylistName")
t.is(s.highVoltageCutoff, 4.2, "highVoltageCutoff")
t.is(s.chargeRate, 2.0, "chargeRate")
t.is(math.type(s.chargeRate), "float", "rates are floats")
t.is(s.numWarmupCycles, 2, "numWarmupCycles")
t.is(math.type(s.numWarmupCycles), "integer", "cycles are integers")
t.is(s.storageDischarge, true, "storageDischarge true")
t.is(s.sineWaveMagnitude, 0, "sineWaveMagnitude kept")
t.is(s.sineWaveFrequency, 39.0625, "sineWaveFrequency kept")
t.is(s.acceptableImpedanceThreshold, 0.2, "acceptableImpedanceThreshold kept")
t.is_deeply(s.cellNames, { "My-Cell_0987", "My-Cell_0988", "My-Cell_0989", "My-Cell_0990" }, "cellNames (ignored by Py, used here)")
t.is(#w, 0, "no warnings for a clean flat file")
t.is(info.given.chargeRate, "file", "info.given: from the file")
t.is(info.given.prechargeRate, nil, "info.given: prechargeRate defaulted")

-- Defaults ---------------------------------------------------------------------

local d = settings.defaults()
t.is(d.cellPlaylistName, "DefaultPlaylist", "default cellPlaylistName")
t.is(d.cellChemistryType, "lipoChemistry", "default chemistry lipo")
t.is(d.numWarmupCycles, 0, "default numWarmupCycles 0")
t.is(d.numMeasurementCycles, 1, "default numMeasurementCycles 1")
t.is(d.storageDischarge, false, "default storageDischarge off (Py)")
t.is(d.storageDischargeVoltage, 3.8, "default storageDischargeVoltage 3.8")
t.is(d.restPeriod, 60.0, "default restPeriod 60")
t.is(math.type(d.restPeriod), "float", "restPeriod is a float (the GUI truncated it)")
t.is(d.reportingPeriod, 1.0, "default reportingPeriod 1")
t.is(d.impedanceReportingPeriod, 60.0, "default impedanceReportingPeriod 60")
t.is(d.acceptableImpedanceThreshold, 1.0, "default acceptableImpedanceThreshold 1.0")
t.is(d.highVoltageCutoff, 4.2, "default highVoltageCutoff 4.2")
t.is(d.lowVoltageCutoff, 2.5, "default lowVoltageCutoff 2.5")
t.is(d.chargeTemperatureCutoff, 50.0, "default chargeTemperatureCutoff 50")
t.is(d.dischargeTemperatureCutoff, 80.0, "default dischargeTemperatureCutoff 80")
t.is(d.chargeCurrentSafetyCutoff, 4.0, "default current cutoffs 4.0 A (4.096 can never trip)")
t.is(d.dischargeCurrentSafetyCutoff, 4.0, "default discharge current cutoff 4.0 A")
t.is(d.prechargeRate, 2.0, "default prechargeRate")
t.is(d.chargeRate, 2.0, "default chargeRate")
t.is(d.dischargeRate, 2.0, "default dischargeRate")
t.is(d.sineWaveFrequency, 39.0625, "default sineWaveFrequency")
t.is(d.sineWaveMagnitude, 2, "default sineWaveMagnitude")
t.is(d.trickleEnable, false, "default trickle off")
t.is(d.trickleChrgEngageVoltage, 4.1, "trickle charge engage near the top (not 2.8: the seed's swap fixed)")
t.is(d.trickleDischrgEngageVoltage, 2.8, "trickle discharge engage near the bottom (not 4.1)")
t.is(d.trickleChrgRate, 0.5, "default trickleChrgRate")
t.is(d.trickleDischrgRate, 0.5, "default trickleDischrgRate")
t.is(d.pulseEnable, false, "default pulse off")
t.is(d.pulseChrgOnTime, 60.0, "default pulseChrgOnTime")
t.is(d.pulseChrgOffTime, 10.0, "default pulseChrgOffTime")
t.is(d.pulseDischrgOnTime, 60.0, "default pulseDischrgOnTime")
t.is(d.pulseDischrgOffTime, 10.0, "default pulseDischrgOffTime")
t.is(d.pulseChrgOffRate, 0.0, "default pulseChrgOffRate")
t.is(d.pulseDischrgOffRate, 0.0, "default pulseDischrgOffRate")
t.is(d.constantVoltageEnable, false, "default CV off")
t.is(d.constantVoltageDischargeEnable, false, "default CV discharge off")
t.is(d.constantVoltageStepsize, 8, "default constantVoltageStepsize 8")
t.is(d.constantVoltageSensitivity, 1.0, "default constantVoltageSensitivity")
t.is(d.individualCellLogs, false, "default individualCellLogs")
t.is_deeply(d.cellNames, {}, "default cellNames empty")
local nkeys = 0
for _ in pairs(d) do
	nkeys = nkeys + 1
end
t.is(nkeys, #settings.KEYS, "defaults have every key")

-- Trickle defaults follow the cutoffs.
s = assert(parse('{"highVoltageCutoff": 4.0, "lowVoltageCutoff": 3.0}'))
t.is(s.trickleChrgEngageVoltage, 3.9, "trickle charge engage = HV - 0.1")
t.is(s.trickleDischrgEngageVoltage, 3.3, "trickle discharge engage = LV + 0.3")

-- GUI playlist -------------------------------------------------------------------

s, w, info = settings.load(DATA .. "gui-playlist.json")
t.ok(s ~= nil, "gui-playlist.json loads")
t.is(info.format, "gui", "nested batlabSettings -> GUI format")
t.is(s.cellPlaylistName, "GUI Playlist", "GUI top-level key")
t.is(s.highVoltageCutoff, 4.15, "batlabSettings.highVoltageCutoff")
t.is(s.trickleEnable, true, "enableTrickle -> trickleEnable")
t.is(s.trickleChrgRate, 0.3, "trickleChargeRate -> trickleChrgRate")
t.is(s.trickleDischrgRate, 0.4, "trickleDischargeRate -> trickleDischrgRate")
t.is(s.trickleChrgEngageVoltage, 4.05, "trickleChargeEngageLimit -> trickleChrgEngageVoltage")
t.is(s.trickleDischrgEngageVoltage, 3.1, "trickleDischargeEngageLimit -> trickleDischrgEngageVoltage")
t.is(s.pulseEnable, true, "enablePulse -> pulseEnable")
t.is(s.pulseChrgOnTime, 30.0, "pulseChargeOnTime -> pulseChrgOnTime")
t.is(s.pulseChrgOffTime, 5.0, "pulseChargeOffTime -> pulseChrgOffTime")
t.is(s.pulseDischrgOnTime, 45.0, "pulseDischargeOnTime -> pulseDischrgOnTime")
t.is(s.pulseDischrgOffTime, 7.0, "pulseDischargeOffTime -> pulseDischrgOffTime (not the charge one)")
t.is(s.pulseChrgOffRate, 0.25, "pulseChargeOffRate -> pulseChrgOffRate (settable)")
t.is(s.pulseDischrgOffRate, 0.5, "pulseDischargeOffRate -> pulseDischrgOffRate")
t.is(s.constantVoltageEnable, true, "enableConstantVoltage -> constantVoltageEnable")
t.is(s.constantVoltageDischargeEnable, true, "GUI file: CV discharge follows the single CV flag")
t.is(s.constantVoltageStepsize, 4, "constantVoltageStepSize -> constantVoltageStepsize")
t.is(s.sineWaveFrequency, 78.125, "sineWaveFrequency")
t.is(s.sineWaveMagnitude, 1, "sineWaveMagnitude")
t.is(s.restPeriod, 90.5, "restPeriod keeps its fraction")
t.is(s.individualCellLogs, true, "individualCellLogs")
t.is(s.playlistOutputDirectory, "/home/user/GUI Playlist", "playlistOutputDirectory")
t.is(#w, 0, "no warnings for a clean GUI playlist")
t.is(info.as.trickleChrgRate, "batlabSettings.trickleChargeRate", "info.as: the name as written")

-- Aliases at any level, canonical names inside batlabSettings.
s = assert(parse('{"batlabSettings": {"trickleChrgRate": 0.2, "constantVoltageStepsize": 3}}'))
t.is(s.trickleChrgRate, 0.2, "canonical name inside batlabSettings")
t.is(s.constantVoltageStepsize, 3, "constantVoltageStepsize (Py spelling) in batlabSettings")
s = assert(parse('{"trickleChargeRate": 0.2, "enableTrickle": 1}'))
t.is(s.trickleChrgRate, 0.2, "GUI alias at the top of a flat file")
t.is(s.trickleEnable, true, "enableTrickle = 1 -> true")
t.is(settings.canonical("trickleChargeRate"), "trickleChrgRate", "canonical(alias)")
t.is(settings.canonical("batlabSettings.enablePulse"), "pulseEnable", "canonical(batlabSettings.alias)")
t.is(settings.canonical("nope"), nil, "canonical(unknown) -> nil")

-- Same key twice: fine when equal, an error when not.
s = parse('{"trickleChrgRate": 0.2, "batlabSettings": {"trickleChargeRate": 0.2}}')
t.ok(s ~= nil, "the same value under two names is accepted")
local _, err = parse('{"trickleChrgRate": 0.2, "batlabSettings": {"trickleChargeRate": 0.3}}')
t.like(err, "^t%.json: key 'trickleChrgRate' is given twice with different values", "conflicting values -> error")

-- Chemistry presets (LFP) and GUI-required keys missing.
s, w, info = settings.load(DATA .. "gui-lfp.json")
t.ok(s ~= nil, "gui-lfp.json loads")
t.is(s.cellChemistryType, "ironPhosphateChemistry", "chemistry")
t.is(s.highVoltageCutoff, 3.6, "LFP preset: HV 3.6")
t.is(s.lowVoltageCutoff, 2.0, "LFP preset: LV 2.0")
t.is(s.storageDischargeVoltage, 3.2, "LFP preset: storage 3.2")
t.is(s.trickleChrgEngageVoltage, 3.5, "LFP trickle charge engage 3.5")
t.ok(has(w, "GUI playlist without batlabCellPlaylistFileVersion, cellNames"), "missing GUI-required keys noted")
t.is(#info.notes, 1, "one note")
for _, spec in ipairs({ { "lipo", "lipoChemistry" }, { "LiFePO4", "ironPhosphateChemistry" },
		{ "ironPhosphate", "ironPhosphateChemistry" }, { "other", "otherChemistry" }, { "Li-ion", "lipoChemistry" } }) do
	s = parse(string.format('{"cellChemistryType": "%s"}', spec[1]))
	t.is(s and s.cellChemistryType, spec[2], "chemistry " .. spec[1] .. " -> " .. spec[2])
end

-- Errors: files ---------------------------------------------------------------------

s, err = settings.load(DATA .. "no-such-file.json")
t.is(s, nil, "missing file -> nil")
t.is(err, DATA .. "no-such-file.json: No such file or directory", "missing file -> FILE: No such file or directory")

s, err = settings.load(DATA .. "malformed.json")
t.is(s, nil, "malformed JSON -> nil")
t.like(err, "^tests/data/settings/malformed%.json:5: invalid JSON: ", "malformed JSON -> FILE:LINE (line 5)")
t.like(err, "column 5", "malformed JSON -> column")
t.like(err, "but found a string", "cjson token names made readable")

_, err = parse('{"a": 1,}')
t.like(err, "^t%.json:1: invalid JSON: Expected object key string but found '}' %(column 9%)", "trailing comma")
_, err = parse("")
t.like(err, "^t%.json:1: invalid JSON: .*the end of the file", "empty file")
_, err = parse('{\n"x": NaN\n}')
t.like(err, "^t%.json:2: invalid JSON", "NaN is not JSON")
_, err = parse('[1, 2]')
t.like(err, "^t%.json: expected a JSON object", "top-level array")
_, err = parse(' []')
t.like(err, "^t%.json: expected a JSON object", "top-level empty array")
_, err = parse('"text"')
t.like(err, "^t%.json: expected a JSON object", "top-level string")
_, err = parse('{"batlabSettings": 3}')
t.like(err, "^t%.json: key 'batlabSettings' must be an object", "batlabSettings not an object")
s, w = parse("\239\187\191{}")
t.ok(s ~= nil, "a UTF-8 byte order mark is skipped")

-- Errors: types --------------------------------------------------------------------

_, err = parse('{"chargeRate": "fast"}')
t.is(err, 't.json: key \'chargeRate\' = "fast" must be a number (A)', "string for a number")
_, err = parse('{"chargeRate": null}')
t.like(err, "key 'chargeRate' = null must be a number", "null for a number")
_, err = parse('{"storageDischarge": 2}')
t.like(err, "key 'storageDischarge' = 2 must be true/false %(or 1/0%)", "2 for a bool")
_, err = parse('{"storageDischarge": "yes"}')
t.like(err, "key 'storageDischarge' = \"yes\" must be true/false", "string for a bool")
s = assert(parse('{"storageDischarge": 0, "pulseEnable": 1, "trickleEnable": false}'))
t.ok(s.storageDischarge == false and s.pulseEnable == true and s.trickleEnable == false, "bools from 0/1/false")
_, err = parse('{"numMeasurementCycles": 1.5}')
t.like(err, "key 'numMeasurementCycles' = 1.5 must be a whole number", "fractional cycles")
_, err = parse('{"cellPlaylistName": 7}')
t.like(err, "key 'cellPlaylistName' = 7 must be a string", "number for a string")
_, err = parse('{"cellNames": "A1"}')
t.like(err, "key 'cellNames' = \"A1\" must be an array of strings", "string for cellNames")
_, err = parse('{"cellNames": ["A1", 2]}')
t.like(err, "must be an array of strings %(item 2 is number%)", "number in cellNames")
_, err = parse('{"cellNames": ["A1", "A1"]}')
t.like(err, "has \"A1\" twice", "duplicate cell name")
_, err = parse('{"cellNames": ["A1", ""]}')
t.like(err, "item 2: cell name \"\" is empty", "empty cell name")
_, err = parse('{"cellChemistryType": "NiMH"}')
t.like(err, "key 'cellChemistryType' = \"NiMH\" is not a known chemistry", "unknown chemistry")
_, err = parse('{"batlabSettings": {"enableTrickle": "on"}}')
t.like(err, "key 'batlabSettings%.enableTrickle' %(trickleEnable%) = \"on\" must be true/false",
	"error names the key as written and its canonical name")

-- Errors: device/safety ranges -------------------------------------------------------

local range_cases = {
	{ "highVoltageCutoff", 5.2, "is outside 3%.0%.%.4%.4 V" },
	{ "highVoltageCutoff", 2.9, "is outside 3%.0%.%.4%.4 V" },
	{ "lowVoltageCutoff", 0.2, "is outside 0%.5%.%.4%.4 V %(the current sink cannot hold its current from a lower voltage%)" },
	{ "storageDischargeVoltage", 4.5, "is outside 0%.5%.%.4%.4 V" },
	{ "chargeCurrentSafetyCutoff", 5.1, "is outside 0%.0%.%.4%.096 A %(4%.096 A is the current sense full scale%)" },
	{ "dischargeCurrentSafetyCutoff", -1, "is outside 0%.0%.%.4%.096 A" },
	{ "chargeRate", 4.2, "is outside 0%.0%.%.4%.0 A" },
	{ "dischargeRate", -0.5, "must be above 0%.0 A, up to 4%.0 A" },
	{ "prechargeRate", 5, "is outside 0%.0%.%.4%.0 A" },
	{ "trickleChrgRate", 4.5, "is outside 0%.0%.%.4%.0 A" },
	{ "pulseDischrgOffRate", 4.5, "is outside 0%.0%.%.4%.0 A" },
	{ "chargeTemperatureCutoff", 90, "is outside %-20%.0%.%.80%.0 degC" },
	{ "dischargeTemperatureCutoff", -30, "is outside %-20%.0%.%.80%.0 degC" },
	{ "reportingPeriod", 0.1, "is outside 0%.5%.%.3600%.0 s" },
	{ "restPeriod", -1, "is outside 0%.0%.%.604800%.0 s" },
	{ "numWarmupCycles", -1, "is outside 0%.%.100000" },
	{ "impedanceReportingPeriod", -5, "is outside 0%.0%.%.86400%.0 s" },
	{ "acceptableImpedanceThreshold", 0, "is outside 0%.001%.%.200%.0 ohm" },
	{ "sineWaveFrequency", 20, "is outside 39%.0625%.%.1054%.6875 Hz" },
	{ "sineWaveMagnitude", 3, "is outside 0%.%.2 code" },
	{ "constantVoltageStepsize", 0, "is outside 1%.%.575 raw" },
	{ "trickleChrgEngageVoltage", 4.6, "is outside 1%.8%.%.4%.4 V" },
	{ "pulseChrgOnTime", -1, "is outside 0%.0%.%.86400%.0 s" },
}
for _, c in ipairs(range_cases) do
	local text = string.format('{"%s": %s}', c[1], tostring(c[2]))
	local r, e = parse(text)
	t.ok(r == nil and type(e) == "string" and e:find("^t%.json: key '" .. c[1] .. "' = ") and e:find(c[3]) ~= nil,
		string.format("%s = %s -> range error", c[1], tostring(c[2])))
	if r ~= nil or not e:find(c[3]) then
		t.diag(tostring(e))
	end
end
_, err = parse('{"highVoltageCutoff": 5.2}')
t.is(err, "t.json: key 'highVoltageCutoff' = 5.2 is outside 3.0..4.4 V", "the exact message")

-- Lexcelon's own files run as they are: a 4.1 A cutoff (more than the
-- register holds) becomes 4.096 A with a warning; a 1.0 V cutoff for a
-- primary cell, below the 2.4324 V of Lexcelon's own check, is refused with
-- the option that allows it, and allowed with it (and a chemistry warning).
s, w = settings.load(DATA .. "py-lexcelon-default.json")
t.ok(s ~= nil and s.chargeCurrentSafetyCutoff == 4.096 and s.dischargeCurrentSafetyCutoff == 4.096,
	"4.1 A cutoffs are taken as 4.096 A")
t.ok(has(w, "chargeCurrentSafetyCutoff 4%.1 is more than the register holds; using 4%.096 A"), "with a warning")
t.ok(has(w, "dischargeCurrentSafetyCutoff 4%.1 is more than the register holds"), "for each cutoff")
s, w = settings.load(DATA .. "py-primary-cell.json")
t.is(w, DATA .. "py-primary-cell.json: key 'lowVoltageCutoff' = 1 V is below 2.4324 V, the lowest Lexcelon's software"
	.. " takes (allowed: 2.4324..4.4 V, below highVoltageCutoff); to discharge deeper (primary cells, down to 0.5 V)"
	.. " ask for it with --set allowLowVoltageCutoff=true (or \"allowLowVoltageCutoff\": true in the file)",
	"a 1.0 V discharge cutoff is refused, naming the range and the option")
s, w = settings.load(DATA .. "py-primary-cell.json", { "allowLowVoltageCutoff=true" })
t.ok(s ~= nil and s.lowVoltageCutoff == 1.0 and s.allowLowVoltageCutoff == true,
	"a 1.0 V discharge cutoff is allowed with allowLowVoltageCutoff")
t.ok(has(w, "'lowVoltageCutoff' = 1 V is below the usual 2%.5 V"), "with a chemistry warning")
t.ok(has(w, "'chargeCurrentSafetyCutoff' = 4%.096 A is above the largest current the Batlab measures"), "4.096 A: can never trip warning")

-- The register limits come from the unit conversions in C, not from copies.
local batlab = require "batlab"
t.is(batlab.CURRENT_FULL_SCALE, 4.096, "batlab.CURRENT_FULL_SCALE is 4.096 A")
t.is(batlab.VOLTAGE_FULL_SCALE, 4.5, "batlab.VOLTAGE_FULL_SCALE is 4.5 V")
local by_key = {}
for _, spec in ipairs(settings.KEYS) do
	by_key[spec.key] = spec
end
t.ok(by_key.chargeCurrentSafetyCutoff.max == batlab.CURRENT_FULL_SCALE
	and by_key.dischargeCurrentSafetyCutoff.max == batlab.CURRENT_FULL_SCALE,
	"current cutoffs reach up to the current full scale")
local v_ok = true
for _, spec in ipairs(settings.KEYS) do
	if spec.unit == "V" and not (spec.max < batlab.VOLTAGE_FULL_SCALE) then
		v_ok = false
	end
end
t.ok(v_ok, "every voltage setting stays below the voltage full scale")

-- Dynamic bounds --------------------------------------------------------------------

_, err = parse('{"highVoltageCutoff": 3.6, "lowVoltageCutoff": 3.8}')
t.is(err, "t.json: key 'lowVoltageCutoff' = 3.8 V must be below highVoltageCutoff (3.6 V)", "LV must be below HV")
_, err = parse('{"chargeCurrentSafetyCutoff": 1.0, "chargeRate": 1.5, "prechargeRate": 0.5}')
t.is(err, "t.json: key 'chargeRate' = 1.5 A is above chargeCurrentSafetyCutoff (1.0 A)", "rate above its cutoff")
_, err = parse('{"chargeCurrentSafetyCutoff": 1.0, "chargeRate": 0.5}')
t.like(err, "key 'prechargeRate' = 2 A %(default%) is above chargeCurrentSafetyCutoff", "a default above the cutoff says (default)")
_, err = parse('{"dischargeCurrentSafetyCutoff": 1.0}')
t.like(err, "key 'dischargeRate' = 2 A %(default%) is above dischargeCurrentSafetyCutoff", "discharge rate vs cutoff")
s = parse('{"dischargeCurrentSafetyCutoff": 1.0, "dischargeRate": 1.0, "trickleDischrgRate": 2.0}')
t.ok(s ~= nil, "trickle rate unchecked against the cutoff while trickle is off")
_, err = parse('{"dischargeCurrentSafetyCutoff": 1.0, "dischargeRate": 1.0, "trickleDischrgRate": 2.0, "trickleEnable": true}')
t.like(err, "key 'trickleDischrgRate' = 2 A is above dischargeCurrentSafetyCutoff", "trickle rate checked when on")
_, err = parse('{"chargeCurrentSafetyCutoff": 2.0, "pulseChrgOffRate": 3.0, "pulseEnable": 1}')
t.like(err, "key 'pulseChrgOffRate' = 3 A is above chargeCurrentSafetyCutoff", "pulse off rate checked when on")
_, err = parse('{"storageDischarge": true, "storageDischargeVoltage": 4.3}')
t.is(err, "t.json: key 'storageDischargeVoltage' = 4.3 V must lie between lowVoltageCutoff (2.5 V) and highVoltageCutoff (4.2 V)",
	"storage voltage above HV")
_, err = parse('{"storageDischarge": true, "storageDischargeVoltage": 2.0}')
t.like(err, "must lie between lowVoltageCutoff", "storage voltage below LV")
s = parse('{"storageDischarge": false, "storageDischargeVoltage": 4.3}')
t.ok(s ~= nil, "storage voltage unchecked when storage discharge is off")

-- Warnings ------------------------------------------------------------------------------

s, w = parse('{"highVoltageCutoff": 4.3}')
t.ok(s and has(w, "key 'highVoltageCutoff' = 4%.3 V is above the usual 4%.25 V for Li%-ion/LiPo cells"), "Li-ion HV warning")
s, w = parse('{"lowVoltageCutoff": 2.45}')
t.ok(s and has(w, "key 'lowVoltageCutoff' = 2%.45 V is below the usual 2%.5 V for Li%-ion/LiPo cells"), "Li-ion LV warning")
s = parse('{"lowVoltageCutoff": 2.4324}')
t.ok(s ~= nil, "2.4324 V, the floor of Lexcelon's check, is taken")
s, err = parse('{"lowVoltageCutoff": 2.4}')
t.like(err, "2%.4 V is below 2%.4324 V.*allowLowVoltageCutoff=true", "2.4 V is refused without allowLowVoltageCutoff")
s, err = parse('{"cellChemistryType": "LFP", "highVoltageCutoff": 3.6}')
t.ok(s ~= nil and s.lowVoltageCutoff == 2.0, "LiFePO4: its 2.0 V preset is taken")
s, err = parse('{"cellChemistryType": "LFP", "highVoltageCutoff": 3.6, "lowVoltageCutoff": 1.9}')
t.like(err, "1%.9 V is below 2%.0 V", "LiFePO4: below 2.0 V is refused")
s = parse('{"lowVoltageCutoff": 1.0, "allowLowVoltageCutoff": true}')
t.ok(s ~= nil and s.lowVoltageCutoff == 1.0, "allowLowVoltageCutoff in the file works too")
_, err = parse('{"lowVoltageCutoff": 0.4, "allowLowVoltageCutoff": true}')
t.like(err, "is outside 0%.5%.%.4%.4 V", "the device's 0.5 V floor holds with allowLowVoltageCutoff")
s, w = parse('{"cellChemistryType": "ironPhosphateChemistry", "highVoltageCutoff": 3.8}')
t.ok(s and has(w, "above the usual 3%.65 V for LiFePO4 cells"), "LFP HV warning")
s, w = parse('{"cellChemistryType": "ironPhosphateChemistry", "lowVoltageCutoff": 1.9, "allowLowVoltageCutoff": true}')
t.ok(s and has(w, "below the usual 2%.0 V for LiFePO4 cells"), "LFP LV warning")
s, w = parse('{"cellChemistryType": "otherChemistry", "highVoltageCutoff": 4.4, "lowVoltageCutoff": 1.9, "allowLowVoltageCutoff": true}')
t.ok(s and #w == 0, "no chemistry warnings for other chemistry")
s, w = parse('{"storageDischarge": 1, "storageDischargeVoltage": 4.1}')
t.ok(s and has(w, "outside the usual 3%.5%.%.4%.0 V for storing"), "storage voltage warning")
s, w = parse('{"chargeTemperatureCutoff": 60}')
t.ok(s and has(w, "above the usual 50%.0 degC for charging"), "charge temperature warning")
s, w = parse('{"dischargeTemperatureCutoff": 20}')
t.ok(s and has(w, "below room temperature"), "temperature cutoff below room temperature")
s, w = parse('{"impedanceReportingPeriod": 5}')
t.ok(s and has(w, "each impedance measurement takes about 2 s"), "short impedance period")
s, w = parse('{"sineWaveFrequency": 100}')
t.ok(s and has(w, "not a multiple of 39%.0625 Hz: the Batlab will use 78%.125 Hz"), "sine frequency rounding")
s, w = parse('{"trickleEnable": true, "trickleChrgEngageVoltage": 2.8, "trickleDischrgEngageVoltage": 4.1}')
t.ok(s and has(w, "trickle engage voltages look swapped"), "swapped trickle voltages (the seed defaults)")
s, w = parse('{"trickleEnable": true, "trickleChrgEngageVoltage": 4.3}')
t.ok(s and has(w, "charge trickle never engages"), "charge trickle above HV")
s, w = parse('{"cellPlaylistName": "a/b"}')
t.ok(s and has(w, "other characters are replaced in file names"), "playlist name with a slash")

s, w = settings.load(DATA .. "unknown-keys.json")
t.ok(s ~= nil, "unknown keys do not stop the load")
t.ok(has(w, "unknown keys ignored: 'chargRate', 'batlabSettings%.colour'"), "unknown keys named in one warning")

-- Overrides (--set) ---------------------------------------------------------------------

s, w, info = settings.load(DATA .. "py-flat.json", { "restPeriod=10", "storageDischarge=false",
	"trickleChargeRate=0.25", "cellNames=A1, A2", "batlabSettings.enablePulse=on", "numWarmupCycles = 0" })
t.ok(s ~= nil, "overrides load")
t.is(s.restPeriod, 10.0, "--set restPeriod=10")
t.is(s.storageDischarge, false, "--set storageDischarge=false")
t.is(s.trickleChrgRate, 0.25, "--set with a GUI alias")
t.is_deeply(s.cellNames, { "A1", "A2" }, "--set cellNames=A1, A2")
t.is(s.pulseEnable, true, "--set batlabSettings.enablePulse=on")
t.is(s.numWarmupCycles, 0, "--set with spaces around =")
t.is(info.given.restPeriod, "--set", "info.given says --set")
s = settings.parse("{}", "m.json", { restPeriod = "5", trickleEnable = true, chargeRate = 1 })
t.ok(s and s.restPeriod == 5.0 and s.trickleEnable == true and s.chargeRate == 1.0, "overrides as a map")
_, err = settings.load(DATA .. "py-flat.json", { "highVoltageCutoff=5.2" })
t.is(err, DATA .. "py-flat.json: key 'highVoltageCutoff' = \"5.2\" (--set) is outside 3.0..4.4 V", "--set out of range")
_, err = settings.load(DATA .. "py-flat.json", { "chargeRate=fast" })
t.like(err, "key 'chargeRate' = \"fast\" %(%-%-set%) must be a number", "--set wrong type")
_, err = settings.load(DATA .. "py-flat.json", { "trickleEnable=maybe" })
t.like(err, "must be true/false", "--set bad bool")
_, err = settings.load(DATA .. "py-flat.json", { "colour=blue" })
t.like(err, "%-%-set: unknown key 'colour'", "--set unknown key is an error")
_, err = settings.load(DATA .. "py-flat.json", { "restPeriod" })
t.like(err, "expected KEY=VALUE", "--set without =")
_, err = settings.load(DATA .. "py-flat.json", { "chargeCurrentSafetyCutoff=1.0" })
t.like(err, "key 'chargeRate' = 2 A is above chargeCurrentSafetyCutoff %(1%.0 A%)", "--set takes part in the dynamic checks")

-- Cell names ------------------------------------------------------------------------------

t.is_deeply(settings.generate_names("CELL", 1, 3), { "CELL_001", "CELL_002", "CELL_003" }, "generate_names CELL_001..")
t.is_deeply(settings.generate_names("B", 998, 3), { "B_0998", "B_0999", "B_1000" }, "width grows with count + start")
t.is(#settings.generate_names("X", 0, 0), 0, "zero names")
t.raises(function() settings.generate_names("", 1, 3) end, "designator", "empty designator raises")
s = assert(settings.load(DATA .. "py-flat.json"))
t.is_deeply(settings.cell_names(s), s.cellNames, "cell_names from the file")
t.is_deeply(settings.cell_names(s, { "X1", "X2" }), { "X1", "X2" }, "names from the command line win")
t.is_deeply(settings.cell_names(s, {}), s.cellNames, "an empty command-line list does not")
local names, nerr = settings.cell_names(s, { "X1", "X1" })
t.ok(names == nil and nerr:find("given twice"), "duplicate command-line names refused")

-- View ------------------------------------------------------------------------------------

s, w, info = settings.load(DATA .. "gui-playlist.json")
local text = settings.view(s, info)
t.like(text, "^Settings from tests/data/settings/gui%-playlist%.json %(GUI playlist format%)", "view: title")
for _, spec in ipairs(settings.KEYS) do
	t.ok(text:find("\n  " .. spec.key .. " ", 1, true) ~= nil, "view lists " .. spec.key)
end
t.like(text, "highVoltageCutoff +4%.15 V ", "view: value with unit")
t.like(text, "chargeTemperatureCutoff +45 degC", "view: degC")
t.like(text, "constantVoltageStepsize +4 raw", "view: raw units")
t.like(text, "cellNames +%[\"CELL_001\", \"CELL_002\", \"CELL_003\"%]", "view: cell names")
t.like(settings.view(settings.defaults()), "restPeriod +60 s", "view without info")

-- The seed-compatible object ------------------------------------------------------------

local obj = settings.Settings()
t.is(getmetatable(obj).__name, "batlab.Settings", "Settings() object")
t.is(obj.highVoltageCutoff, 4.2, "defaults before load")
t.ok(obj:load(DATA .. "gui-playlist.json"), "obj:load")
t.is(obj.highVoltageCutoff, 4.15, "obj.key after load")
t.is(obj.trickleChargeRate, 0.3, "obj.alias")
t.is(obj:get("enableTrickle"), true, "obj:get(alias)")
t.like(obj:view(), "GUI playlist format", "obj:view()")
local okl, lerr = obj:load(DATA .. "malformed.json")
t.ok(okl == nil and lerr:find(":5: invalid JSON"), "obj:load error")
t.is(obj.highVoltageCutoff, 4.15, "a failed load keeps the previous settings")
local fh = assert(io.open(DATA .. "py-flat.json", "rb"))
t.ok(obj:load(fh), "obj:load(file handle), like the seed")
fh:close()
t.is(obj.cellPlaylistName, "My Playlist", "loaded from the handle")

-- Register values ---------------------------------------------------------------------------

s = assert(parse('{"highVoltageCutoff": 4.2, "lowVoltageCutoff": 2.8, "chargeTemperatureCutoff": 45, "dischargeTemperatureCutoff": 65}'))
local regs = settings.to_register_values(s, 1500, 3380)
t.is(regs.VOLTAGE_LIMIT_CHG, 30583, "VOLTAGE_LIMIT_CHG 4.2 V")
t.is(regs.VOLTAGE_LIMIT_DCHG, 20389, "VOLTAGE_LIMIT_DCHG 2.8 V")
t.is(regs.CURRENT_LIMIT_CHG, 32000, "CURRENT_LIMIT_CHG 4.0 A")
t.is(regs.CURRENT_LIMIT_DCHG, 32000, "CURRENT_LIMIT_DCHG 4.0 A")
t.is(regs.TEMP_LIMIT_CHG, 25092, "TEMP_LIMIT_CHG 45 degC")
t.is(regs.TEMP_LIMIT_DCHG, 20826, "TEMP_LIMIT_DCHG 65 degC")
t.isnt(settings.to_register_values(s, 1400, 3300).TEMP_LIMIT_CHG, 25092, "R/B change the temperature limits")
t.is(#settings.LIMIT_REGISTERS, 6, "LIMIT_REGISTERS lists six")
local sine = settings.sine_register_values(assert(settings.load(DATA .. "gui-playlist.json")))
t.is(sine.SINE_FREQ, 2, "SINE_FREQ for 78.125 Hz")
t.is(sine.SINE_MAGDIV, 1, "SINE_MAGDIV")

-- Optional: Lexcelon's own files, when ../shared is there -----------------------------------

local REF = "../shared/reference/lexcelon/"
local ref_fh = io.open(REF .. "test1234.json")
if ref_fh then
	ref_fh:close()
	local rs, rw = settings.load(REF .. "test1234.json")
	t.like(rw, "'lowVoltageCutoff' = 2 V is below 2%.4324 V", "reference test1234.json: LV 2.0 is refused, as the seed's check did")
	rs, rw = settings.load(REF .. "test1234.json", { "allowLowVoltageCutoff=true" })
	t.ok(rs ~= nil and rs.cellPlaylistName == "TEST1234" and has(rw, "lowVoltageCutoff"),
		"and loads with allowLowVoltageCutoff, LV 2.0 warning for Li-ion")
	local ds, dw = settings.load(REF .. "default.json")
	t.ok(ds ~= nil and has(dw, "more than the register holds"), "reference default.json loads, 4.1 A cutoffs clamped with a warning")
	local cs, cw = settings.load(REF .. "cr123a.json")
	t.like(cw, "allowLowVoltageCutoff=true", "reference cr123a.json: 1.0 V refused, naming the option")
	cs, cw = settings.load(REF .. "cr123a.json", { "allowLowVoltageCutoff=true" })
	t.ok(cs ~= nil and has(cw, "lowVoltageCutoff"), "reference cr123a.json loads with it, 1.0 V with a warning")
else
	t.skip("reference settings files", "../shared/reference/lexcelon not present")
end

t.done()
