-- The source tree is the architecture (docs/runtime.md): each folder of
-- src/ is a layer and may include headers only from itself and the layers
-- below it. A header from a layer above fails here, naming the file, the
-- line and the header.
local t = dofile(arg[0]:match("^(.-)[^/]*$") .. "tap.lua")
local lfs = require "lfs"

-- what each layer may include (besides itself)
local ALLOWED = {
	core = {},
	sim = { "core" },
	link = { "core", "sim" },
	device = { "core", "link" },
	host = { "core", "link", "device", "sim" },
	lua = { "core", "link", "device", "host" },
	cli = { "core", "link", "device", "host", "lua", "sim" },
}

local layers = {}
for entry in lfs.dir("src") do
	if entry ~= "." and entry ~= ".." and lfs.attributes("src/" .. entry, "mode") == "directory" then
		layers[#layers + 1] = entry
	end
end
table.sort(layers)
local loose = {}
for entry in lfs.dir("src") do
	if lfs.attributes("src/" .. entry, "mode") == "file" then
		loose[#loose + 1] = entry
	end
end
t.is(#loose, 0, "every source file sits in a layer folder " .. table.concat(loose, " "))

for _, layer in ipairs(layers) do
	local ok_set = { [layer] = true }
	t.ok(ALLOWED[layer] ~= nil, ("src/%s is a known layer"):format(layer))
	for _, l in ipairs(ALLOWED[layer] or {}) do
		ok_set[l] = true
	end
	local bad, n = {}, 0
	for f in lfs.dir("src/" .. layer) do
		if f:match("%.[ch]$") then
			local path = ("src/%s/%s"):format(layer, f)
			local ln = 0
			for line in io.lines(path) do
				ln = ln + 1
				local inc = line:match('^%s*#%s*include%s+"([^"]+)"')
				if inc then
					n = n + 1
					local dir = inc:match("^([^/]+)/")
					if not dir then
						bad[#bad + 1] = ("%s:%d: \"%s\" has no layer folder"):format(path, ln, inc)
					elseif not ok_set[dir] then
						bad[#bad + 1] = ("%s:%d: includes %s from layer %s"):format(path, ln, inc, dir)
					end
				end
			end
		end
	end
	t.ok(n > 0, ("src/%s: %d project includes read"):format(layer, n))
	t.is(#bad, 0, ("src/%s includes only from %s"):format(layer,
		#ALLOWED[layer] > 0 and table.concat(ALLOWED[layer], ", ") or "itself"))
	for _, b in ipairs(bad) do
		io.stdout:write("# ", b, "\n")
	end
end
t.done()
