-- batlab.placement - cells onto channels: every channel of every Batlab
-- in serial-number order, --cell CH=NAME and names in order onto occupied
-- slots, and the swap when there are more cells than channels.
local batlab = require "batlab"
local runargs = require "batlab.runargs"

local M = {}

-- Every channel of every Batlab, in serial-number order.
function M.all_channels(pool)
	local list = {}
	for _, dev in ipairs(pool:devices()) do
		for c = 0, 3 do
			list[#list + 1] = { dev = dev, index = c, ch = dev:channel(c), global = #list }
		end
	end
	return list
end

-- A channel number as the command line writes one: 2, CELL2 or cell2.
local function channel_number(text)
	return tonumber(text) or tonumber((text or ""):match("^[Cc][Ee][Ll][Ll](%d+)$"))
end

local function find_channel(chans, spec)
	local sn, c = spec:match("^(%d+):(%w+)$")
	if sn then
		local idx = channel_number(c)
		for _, ch in ipairs(chans) do
			if ch.dev.sn == tonumber(sn) and ch.index == idx then
				return ch
			end
		end
		return nil
	end
	local g = channel_number(spec)
	return g and chans[g + 1] or nil
end

-- A slot with no cell (or a cell in backwards) is skipped, and the name goes
-- to the next slot: Lexcelon's `global cycletest` dropped the name instead.
local function occupied(ch)
	local mode = ch.dev:read_raw(ch.index, batlab.MODE)
	return mode ~= nil and mode ~= batlab.MODE_NO_CELL and mode ~= batlab.MODE_BACKWARDS, mode
end

-- assign(o, chans, settings) -> plan, names left | nil, err
function M.assign(o, chans, s)
	local plan, used = {}, {}
	for _, spec in ipairs(o.cells) do
		local where, name = spec:match("^([^=]+)=(.+)$")
		if not where then
			return nil, ("--cell '%s': expected CH=NAME"):format(spec)
		end
		local ch = find_channel(chans, where)
		if not ch then
			return nil, ("--cell '%s': no channel %s (%d channels connected)"):format(spec, where, #chans)
		end
		if used[ch] then
			return nil, ("--cell '%s': channel %s is given twice"):format(spec, where)
		end
		used[ch] = true
		plan[#plan + 1] = { ch = ch, name = name }
	end
	local names = o.names
	if #names == 0 and o.cells_from then
		local n, e = runargs.read_names(o.cells_from)
		if not n then
			return nil, "--cells-from: " .. tostring(e)
		end
		names = n
	end
	if #names == 0 and #plan == 0 and s and s.cellNames and #s.cellNames > 0 then
		names = s.cellNames
	end
	local left = {}
	local k = 1
	for _, ch in ipairs(chans) do
		if k > #names then
			break
		end
		if not used[ch] then
			if occupied(ch) then
				plan[#plan + 1] = { ch = ch, name = names[k] }
				used[ch] = true
				k = k + 1
			end
		end
	end
	for j = k, #names do
		left[#left + 1] = names[j]
	end
	if #plan == 0 and #names == 0 and #o.cells == 0 then
		-- No names at all: every occupied channel, named SERIAL-CH.
		for _, ch in ipairs(chans) do
			if occupied(ch) then
				plan[#plan + 1] = { ch = ch, name = ("%d-%d"):format(ch.dev.sn, ch.index) }
			end
		end
	end
	table.sort(plan, function(a, b) return a.ch.global < b.ch.global end)
	return plan, left
end

-- swap(o, pool, ch, done_name, next_name, say) -> true | nil, why. The
-- placement flow: say which cell to take out and which to put in, then
-- wait for the slot to empty and fill again (at most o.swap_timeout
-- seconds, default an hour). On the virtual Batlab the virtual operator
-- does it: it takes the cell out, and the layout's operator queue (or,
-- without one, this function) puts a fresh cell in a minute later.
function M.swap(o, pool, ch, done_name, next_name, say)
	local where = ("Batlab %d channel %d"):format(ch.dev.sn, ch.index)
	say(("%s is done: take it out of %s and put in %s"):format(done_name, where, next_name))
	if o.sim then
		pool:sim_fault(ch.dev, "cell_remove", { slot = ch.index })
	end
	local limit = batlab.now() + (o.swap_timeout or 3600)
	local gone_at
	while true do
		local smp = ch.ch:wait(60)
		local mode = smp and smp.mode_name
		if not gone_at and (mode == "NO_CELL" or mode == "BACKWARDS") then
			gone_at = batlab.now()
		elseif gone_at and mode == "IDLE" then
			break
		end
		if o.sim and gone_at and batlab.now() - gone_at > 60 then
			pool:sim_fault(ch.dev, "cell_insert", { slot = ch.index })
		end
		if batlab.now() > limit then
			return nil, ("%s: no cell swap within %d s (%s was not %s)"):format(where,
				o.swap_timeout or 3600, gone_at and next_name or done_name,
				gone_at and "inserted" or "taken out")
		end
	end
	say(("%s inserted in %s"):format(next_name, where))
	return true
end

return M
