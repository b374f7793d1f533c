--- sfi.util: small helpers recipes and the library share: whole-file reads and atomic writes.
local core = require "sfi.core"
local cimage = require "sfi.core.image"
local errors = require "sfi.error"

local M = {}

--- M.parse_int(s, [unsigned]) -> integer | nil: the one integer parser. s is an integer, or
-- a string holding a decimal or 0x-hex integer (blanks around it and, unless unsigned, a
-- leading '-' allowed); anything else (a fraction, "12abc", "", another type) is nil. Callers
-- raise their own error naming the input.
function M.parse_int(s, unsigned)
  local v
  if math.type(s) == "integer" then
    v = s
  elseif type(s) == "number" then
    v = math.tointeger(s)
  elseif type(s) == "string" then
    local neg, body = s:match("^%s*(%-?)(%S+)%s*$")
    if not body then return nil end
    -- tonumber with a base wraps around on overflow: a value that does not fit in 63 bits
    -- is no number here (the caller names the input as typed)
    local hex = body:match("^0[xX]0*(%x+)$")
    if hex then
      if #hex < 16 or (#hex == 16 and hex:sub(1, 1):match("[0-7]")) then
        v = math.tointeger(tonumber(hex, 16))
      end
    elseif body:match("^%d+$") then
      v = math.tointeger(tonumber(body)) -- an integer, or a float (out of range) tointeger refuses
    end
    if v and neg == "-" then v = -v end
  end
  if v and unsigned and v < 0 then return nil end
  return v
end

--- M.write_file(path, bytes, [exclusive]): writes the file atomically (temporary file, then
-- rename; mode 0600); with exclusive an existing file is an error. Raises IO / ACCESS.
function M.write_file(path, bytes, exclusive) return cimage.write(path, bytes, exclusive) end

local function too_big(what, path, max)
  errors.raise("FORMAT", "read", string.format("%s '%s' is larger than %d bytes, more than it " ..
    "can legally be", what, path, max))
end

--- M.check_file(path, what, max) -> size: path is a regular file of at most max bytes, checked
-- before anything reads it (for readers that open the file themselves: the C codecs, the
-- capture and bundle readers). A directory, FIFO or device is refused up front: a FIFO never
-- blocks the run, /dev/zero never fills memory. Raises NOT_FOUND (no such file) or FORMAT
-- (not a regular file, too large), naming `what` and the path.
function M.check_file(path, what, max)
  local kind, size = core.stat(path)
  if not kind then errors.raise("NOT_FOUND", "read", string.format("%s '%s': no such file", what, path)) end
  if kind ~= "file" then
    errors.raise("FORMAT", "read", string.format("%s '%s' is a %s, not a file", what, path,
      kind == "dir" and "directory" or kind))
  end
  if size > max then too_big(what, path, max) end
  return size
end

--- M.read_file(path, what, [max]) -> bytes: a regular file of at most max bytes (default
-- 64 MiB), checked as M.check_file does before reading, and again while reading (for files
-- whose size stat cannot tell). Raises NOT_FOUND or FORMAT, naming `what` and the path.
function M.read_file(path, what, max)
  what = what or "file"
  max = max or 64 * 1024 * 1024
  M.check_file(path, what, max)
  local f, err = io.open(path, "rb")
  if not f then errors.raise("NOT_FOUND", "read", string.format("%s: %s", what, tostring(err))) end
  local s = f:read(max + 1) or ""
  f:close()
  if #s > max then too_big(what, path, max) end
  return s
end

--- M.stat(path) -> "file"|"dir"|"fifo"|"device"|"other", size | nil (no such path).
M.stat = core.stat

--- M.dirname(path) -> the directory part ("." for a bare name).
function M.dirname(path)
  local d = path:match("^(.*)/[^/]*$")
  if d == nil then return "." end
  return d == "" and "/" or d
end

--- M.check_output(path, what): an output file may be written at path: its directory exists
-- and path is not a directory. Raises USAGE naming `what` otherwise (nothing is created).
function M.check_output(path, what)
  local d = M.dirname(path)
  if M.stat(d) ~= "dir" then
    errors.raise("USAGE", nil, string.format("%s: directory '%s' does not exist", what, d))
  end
  local t = M.stat(path)
  if t and t ~= "file" then
    errors.raise("USAGE", nil, string.format("%s: '%s' is a %s, not a file", what, path, t))
  end
end

--- M.json(v) -> text: JSON for strings, numbers, booleans, nil and tables (keys sorted; a
-- table is an object).
function M.json(v)
  local t = type(v)
  if t == "table" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys, function (a, b) return tostring(a) < tostring(b) end)
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts + 1] = M.json(tostring(k)) .. ":" .. M.json(v[k]) end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif t == "string" then
    return '"' .. v:gsub('[%c"\\]', function (c) return string.format("\\u%04x", c:byte()) end) .. '"'
  elseif v == nil then
    return "null"
  end
  return tostring(v)
end

--- M.json_flat(text) -> table: decodes a flat JSON object written by M.json (string, number,
-- boolean values). Returns nil for anything else.
function M.json_flat(text)
  if type(text) ~= "string" or not text:match("^%s*{.*}%s*$") then return nil end
  local out = {}
  local body = text:match("^%s*{(.*)}%s*$")
  local pos = 1
  while pos <= #body do
    local k, rest = body:match('^%s*"(.-)"%s*:%s*()', pos)
    if not k then break end
    local v, after
    if body:sub(rest, rest) == '"' then
      local s, e = body:match('^"(.-)"()', rest)
      v, after = s and s:gsub("\\u(%x%x%x%x)", function (h) return string.char(tonumber(h, 16)) end), e
    else
      local lit, e = body:match("^([^,}%s]+)()", rest)
      if lit == "true" then v = true elseif lit == "false" then v = false else v = tonumber(lit) end
      after = e
    end
    if v == nil or not after then return nil end
    out[k:gsub("\\u(%x%x%x%x)", function (h) return string.char(tonumber(h, 16)) end)] = v
    pos = (body:match("^%s*,()", after)) or #body + 1
  end
  return out
end

return M
