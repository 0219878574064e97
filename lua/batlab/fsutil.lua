-- batlab.fsutil - file-system helpers for the results writers.
--
-- Safe file names (a cell name never escapes the directory it is written
-- in), mkdir -p, empty-directory test, atomic writes (temp file + rename).
-- Uses lfs; every function returns nil, message on failure.

local lfs = require "lfs"

local M = {}

-- The longest name safe_name returns, in bytes (file systems allow 255;
-- room is left for a "-NN" suffix and an extension).
M.MAX_NAME = 100

-- Windows device names: harmless on POSIX, but the run directory may be
-- copied to a Windows share, where "CON.csv" cannot be created.
local RESERVED = {
	CON = true, PRN = true, AUX = true, NUL = true,
	COM1 = true, COM2 = true, COM3 = true, COM4 = true, COM5 = true,
	COM6 = true, COM7 = true, COM8 = true, COM9 = true,
	LPT1 = true, LPT2 = true, LPT3 = true, LPT4 = true, LPT5 = true,
	LPT6 = true, LPT7 = true, LPT8 = true, LPT9 = true,
}

-- A short, stable hash (FNV-1a, 32 bits) of s as 8 hex digits: it keeps
-- two long names that share their first MAX_NAME bytes apart.
local function fnv1a(s)
	local h = 0x811c9dc5
	for i = 1, #s do
		h = ((h ~ s:byte(i)) * 0x01000193) & 0xffffffff
	end
	return string.format("%08x", h)
end
M.hash = fnv1a

-- Cut s to at most n bytes without splitting a UTF-8 sequence.
local function utf8_cut(s, n)
	if #s <= n then
		return s
	end
	local cut = n
	-- Step back over continuation bytes (10xxxxxx) to a sequence start.
	while cut > 0 and (s:byte(cut + 1) or 0) & 0xC0 == 0x80 do
		cut = cut - 1
	end
	return s:sub(1, cut)
end

-- safe_name(name [, max]) -> a string usable as one path component.
--
-- Rules (docs/results.md): control characters, path separators and the
-- characters Windows refuses (\ / : * ? " < > |) become "_"; every run of
-- two or more dots becomes "_" (so no ".."); a leading dot or dash and a
-- trailing dot or space become "_"; Windows device names get a "_" suffix;
-- empty or nil becomes "unnamed"; a name longer than max bytes is cut at
-- a UTF-8 boundary and ends with "~" and a hash of the full name, so
-- distinct long names stay distinct. Same input, same output.
function M.safe_name(name, max)
	max = max or M.MAX_NAME
	local s = name == nil and "" or tostring(name)
	local full = s
	s = s:gsub("[%c\127]", "_")
	s = s:gsub('[/\\:%*%?"<>|]', "_")
	s = s:gsub("%.%.+", "_")
	s = s:gsub("^[%.%-]", "_")
	s = s:gsub("[%. ]$", "_")
	if s == "" then
		return "unnamed"
	end
	if RESERVED[(s:match("^[^%.]*")):upper()] then
		s = s .. "_"
	end
	if #s > max then
		local tag = "~" .. fnv1a(full)
		s = utf8_cut(s, max - #tag) .. tag
	end
	return s
end

-- unique_name(base, used [, ext]) -> base, or base-2, base-3, ... the
-- first whose lower-cased form (file systems that ignore case) is not a
-- key of used; records it in used. ext is appended after the suffix.
function M.unique_name(base, used, ext)
	ext = ext or ""
	local name, n = base, 1
	while used[(name .. ext):lower()] do
		n = n + 1
		name = base .. "-" .. n
	end
	used[(name .. ext):lower()] = true
	return name .. ext
end

function M.is_dir(path)
	return lfs.attributes(path, "mode") == "directory"
end

function M.exists(path)
	return lfs.attributes(path, "mode") ~= nil
end

-- mkdir_p(path) -> true | nil, message. Creates path and its parents.
function M.mkdir_p(path)
	if type(path) ~= "string" or path == "" then
		return nil, "mkdir: empty path"
	end
	if M.is_dir(path) then
		return true
	end
	local prefix = path:sub(1, 1) == "/" and "/" or ""
	local sofar = prefix
	for part in path:gmatch("[^/]+") do
		sofar = (sofar == "" or sofar == "/") and (sofar .. part) or (sofar .. "/" .. part)
		if part ~= "." then
			local mode = lfs.attributes(sofar, "mode")
			if mode == nil then
				local ok, err = lfs.mkdir(sofar)
				if not ok and not M.is_dir(sofar) then
					return nil, string.format("%s: %s", sofar, err or "cannot create directory")
				end
			elseif mode ~= "directory" then
				return nil, string.format("%s: not a directory", sofar)
			end
		end
	end
	return true
end

-- is_empty_dir(path) -> true when path is a directory with no entries
-- (other than . and ..); false when it has some; nil, message when it
-- is not a directory.
function M.is_empty_dir(path)
	if not M.is_dir(path) then
		return nil, path .. ": not a directory"
	end
	for entry in lfs.dir(path) do
		if entry ~= "." and entry ~= ".." then
			return false
		end
	end
	return true
end

-- read_file(path) -> text | nil, "PATH: reason" (a ".gz" path inflated)
function M.read_file(path)
	local f, err = M.open_read(path)
	if not f then
		return nil, err
	end
	local text, rerr = f:read("a")
	f:close()
	if not text then
		return nil, rerr or (path .. ": read failed")
	end
	return text
end

-- open_read(path) -> file | nil, message: a file to read (read("l"),
-- read("a"), read(n), lines(), close()). A path ending in ".gz" (a
-- compressed time series, cells/<name>.csv.gz) reads inflated, through
-- batlab.gzopen: every reader of a series goes through here or
-- read_file, so it reads either kind.
function M.open_read(path)
	if path:sub(-3) == ".gz" then
		return require("batlab").gzopen(path, "r")
	end
	return io.open(path, "rb")
end

-- write_atomic(path, text) -> true | nil, message. Writes path.tmp, then
-- renames it over path, so a reader sees the old file or the new one,
-- never half of one.
function M.write_atomic(path, text)
	local tmp = path .. ".tmp"
	local f, err = io.open(tmp, "wb")
	if not f then
		return nil, err
	end
	local ok, werr = f:write(text)
	if not ok then
		f:close()
		os.remove(tmp)
		return nil, tmp .. ": " .. tostring(werr)
	end
	ok, werr = f:close()
	if not ok then
		os.remove(tmp)
		return nil, tmp .. ": " .. tostring(werr)
	end
	local rok, rerr = os.rename(tmp, path)
	if not rok then
		os.remove(tmp)
		return nil, rerr
	end
	return true
end

-- close_once(obj [, where]) -> true | nil, err. Closes obj.f the first
-- time only (obj.closed marks it), so a writer's close is safe to call
-- twice and from error paths. where, when given, prefixes the error.
function M.close_once(obj, where)
	if obj.closed then
		return true
	end
	obj.closed = true
	if not obj.f then -- never opened (a resumed run's time series)
		return true
	end
	local ok, err = obj.f:close()
	if not ok then
		return nil, where and (where .. ": " .. tostring(err)) or err
	end
	return true
end

-- rm_rf(path): removes a file or a directory tree (for tests' temp dirs).
-- Symbolic links are removed, never followed.
function M.rm_rf(path)
	local mode = lfs.symlinkattributes(path, "mode")
	if mode == "directory" then
		for entry in lfs.dir(path) do
			if entry ~= "." and entry ~= ".." then
				M.rm_rf(path .. "/" .. entry)
			end
		end
		return lfs.rmdir(path)
	elseif mode ~= nil then
		return os.remove(path)
	end
	return true
end

-- tmpdir(tag) -> a fresh directory path derived from os.tmpname().
function M.tmpdir(tag)
	local name = os.tmpname()
	os.remove(name)
	local dir = name .. "-" .. (tag or "batlab")
	local ok, err = M.mkdir_p(dir)
	if not ok then
		return nil, err
	end
	return dir
end

return M
