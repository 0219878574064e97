-- batlab.grade_rules - grading rules from a file, for scripts/grade.lua
-- (docs/characterisation.md, "Grading"): one bin a line, the first whose
-- conditions all hold wins; a cell no line takes is "reject".
--
--   # grade  conditions (key OP number, joined by "and")
--   A        capacity_ah >= 2.40 and impedance_ohm <= 0.060
--   B        capacity_ah >= 2.20 and impedance_ohm <= 0.080
--   C        capacity_ah >= 2.00
--
-- Keys: capacity_ah, energy_wh, impedance_ohm, temp_rise_c. OP: >=, <=,
-- >, <, ==. A line with only a grade takes every cell.

local M = {}

M.KEYS = { capacity_ah = true, energy_wh = true, impedance_ohm = true, temp_rise_c = true }
local OPS = {
	[">="] = function(a, b) return a >= b end, ["<="] = function(a, b) return a <= b end,
	[">"] = function(a, b) return a > b end, ["<"] = function(a, b) return a < b end,
	["=="] = function(a, b) return a == b end,
}

-- parse(text, where) -> rules | raises "where:LINE: ..." naming the word.
function M.parse(text, where)
	local rules, n = {}, 0
	for line in (text .. "\n"):gmatch("([^\n]*)\n") do
		n = n + 1
		line = line:gsub("#.*$", ""):gsub("^%s+", ""):gsub("%s+$", "")
		if line ~= "" then
			local grade, rest = line:match("^(%S+)%s*(.*)$")
			local rule = { grade = grade, conds = {} }
			for part in (rest .. " and "):gmatch("(.-)%s+and%s+") do
				local key, op, num = part:match("^%s*([%w_]+)%s*([<>=]+)%s*(%S+)%s*$")
				if not key then
					error(("%s:%d: a condition is KEY OP NUMBER, got '%s'"):format(where, n, part), 0)
				elseif not M.KEYS[key] then
					error(("%s:%d: unknown key '%s' (capacity_ah, energy_wh, impedance_ohm, temp_rise_c)")
						:format(where, n, key), 0)
				elseif not OPS[op] then
					error(("%s:%d: unknown operator '%s' (>=, <=, >, <, ==)"):format(where, n, op), 0)
				elseif not tonumber(num) then
					error(("%s:%d: '%s' is not a number"):format(where, n, num), 0)
				end
				rule.conds[#rule.conds + 1] = { key = key, op = op, value = tonumber(num) }
			end
			rules[#rules + 1] = rule
		end
	end
	if #rules == 0 then
		error(("%s: no grading rules"):format(where), 0)
	end
	return rules
end

-- grade(rules, figures) -> the grade of the first rule whose conditions
-- hold (a figure that is missing holds no condition), or "reject".
function M.grade(rules, figures)
	for _, r in ipairs(rules) do
		local ok = true
		for _, c in ipairs(r.conds) do
			local v = figures[c.key]
			if type(v) ~= "number" or not OPS[c.op](v, c.value) then
				ok = false
				break
			end
		end
		if ok then
			return r.grade
		end
	end
	return "reject"
end

return M
