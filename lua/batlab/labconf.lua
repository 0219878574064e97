-- batlab.labconf - the lab configuration file: where the database and
-- the MQTT broker are, and the broker's credentials and TLS files, which
-- never go on a command line where `ps` shows them (docs/lab.md).
--
--   # $BATLAB_CONFIG, else ~/.config/batlab/lab.conf
--   db = postgresql://batlab@db.lab/batlab
--   mqtt = mqtt://broker.lab:8883
--   mqtt_username = bench3
--   mqtt_password = secret
--   mqtt_cafile = /etc/ssl/certs/lab-ca.pem
local M = {}

M.KEYS = {
	db = true, mqtt = true, mqtt_username = true, mqtt_password = true, mqtt_cafile = true,
	mqtt_certfile = true, mqtt_keyfile = true, mqtt_topic = true,
}

function M.path()
	local p = os.getenv("BATLAB_CONFIG")
	if p and p ~= "" then
		return p, true
	end
	return (os.getenv("HOME") or ".") .. "/.config/batlab/lab.conf", false
end

-- read([path]) -> { key = value } ({} when there is no file, unless the
-- file was named explicitly) | nil, "FILE:LINE: why".
function M.read(path)
	local named
	if not path then
		path, named = M.path()
	else
		named = true
	end
	local f, e = io.open(path)
	if not f then
		if named then
			return nil, "lab configuration: " .. tostring(e)
		end
		return {}
	end
	local conf, ln = {}, 0
	for line in f:lines() do
		ln = ln + 1
		local s = line:match("^%s*(.-)%s*$")
		if s ~= "" and s:sub(1, 1) ~= "#" then
			local k, v = s:match("^([%w_]+)%s*=%s*(.-)$")
			if not k then
				f:close()
				return nil, ("%s:%d: expected KEY = VALUE"):format(path, ln)
			end
			if not M.KEYS[k] then
				f:close()
				return nil, ("%s:%d: unknown key '%s'"):format(path, ln, k)
			end
			conf[k] = v
		end
	end
	f:close()
	return conf
end

return M
