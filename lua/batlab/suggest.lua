-- batlab.suggest - "did you mean ...?" for a misspelt name: the closest of
-- the allowed names by edit distance (insertions, deletions, changes and
-- swaps of neighbours), if it is close enough to be the one meant.
local M = {}

-- The optimal string alignment distance between a and b.
local function distance(a, b)
	local la, lb = #a, #b
	local d = {}
	for i = 0, la do
		d[i] = { [0] = i }
	end
	for j = 0, lb do
		d[0][j] = j
	end
	for i = 1, la do
		for j = 1, lb do
			local cost = a:byte(i) == b:byte(j) and 0 or 1
			local v = math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
			if i > 1 and j > 1 and a:byte(i) == b:byte(j - 1) and a:byte(i - 1) == b:byte(j) then
				v = math.min(v, d[i - 2][j - 2] + 1)
			end
			d[i][j] = v
		end
	end
	return d[la][lb]
end
M.distance = distance

-- closest(name, names) -> the allowed name meant, or nil. names: an array
-- or a set (keys). Case is ignored; a name that is a longer or shorter
-- spelling of one counts as one letter off; at most a third of the
-- letters (and at least two) may differ.
function M.closest(name, names)
	local list = {}
	if names[1] ~= nil then
		list = names
	else
		for k in pairs(names) do
			list[#list + 1] = k
		end
		table.sort(list)
	end
	local best, best_d
	local lname = tostring(name):lower()
	for _, cand in ipairs(list) do
		local lc = tostring(cand):lower()
		local d = distance(lname, lc)
		if lname:sub(1, #lc) == lc or lc:sub(1, #lname) == lname then
			d = math.min(d, 1)
		end
		if d <= math.max(2, #lc // 3) and (not best_d or d < best_d) then
			best, best_d = cand, d
		end
	end
	return best
end

-- hint(name, names) -> " (did you mean X?)" or "".
function M.hint(name, names)
	local c = M.closest(name, names)
	return c and (" (did you mean %s?)"):format(c) or ""
end

return M
