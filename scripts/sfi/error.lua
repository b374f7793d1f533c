--- sfi.error: the error object raised by failed commands.
-- An sfi.error is a table {code, rc, op, msg, detail, where} with a __tostring that
-- prints "where op: CODE: msg (detail)". Bugs (bad arguments) raise plain strings.
local core = require "sfi.core"

local M = {}

local MT <const> = core.error_mt()
local CODES <const> = core.codes()
local known = {}
for _, c in ipairs(CODES) do known[c] = true end

--- M.codes: the stable code names, in code order ("OK", "IO", "TIMEOUT", ...).
M.codes = CODES

--- M.new(code, op, msg, detail, [level]) -> sfi.error (not raised), located at the caller
-- (level 1, as error() counts; 0 = no location). Raises a string on an unknown code.
function M.new(code, op, msg, detail, level)
  if not known[code] then error("unknown sfi error code '" .. tostring(code) .. "'", 2) end
  local e = core.error(code, op, msg, detail)
  if level ~= 0 then
    local info = debug.getinfo((level or 1) + 1, "Sl")
    if info and info.currentline and info.currentline > 0 then
      e.where = info.short_src .. ":" .. info.currentline .. ": "
    end
  end
  return e
end

--- M.raise(code, op, msg, detail): raises an sfi.error located at the caller. Never returns.
function M.raise(code, op, msg, detail)
  -- A usage error is about the command line, not a place in the scripts: no location.
  error(M.new(code, op, msg, detail, code == "USAGE" and 0 or 2), 0)
end

--- M.is(e, [code]) -> boolean: e is an sfi.error (with that code, if given).
function M.is(e, code)
  return type(e) == "table" and getmetatable(e) == MT and (code == nil or e.code == code)
end

--- M.text(e) -> the error as text without its location in the scripts ("op: CODE: msg
-- (detail)"), for quoting one error inside another's detail.
function M.text(e)
  if not M.is(e) then return tostring(e) end
  local w = e.where
  e.where = nil
  local s = tostring(e)
  e.where = w
  return s
end

--- M.wrap(e, fields) -> e: copies fields (step, hint, ...) into an sfi.error; returns it.
function M.wrap(e, fields)
  if M.is(e) then
    for k, v in pairs(fields) do if e[k] == nil then e[k] = v end end
  end
  return e
end

return M
