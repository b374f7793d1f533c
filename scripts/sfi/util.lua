--- sfi.util: small helpers recipes and the library share: whole-file reads and atomic writes.
local cimage = require "sfi.core.image"
local errors = require "sfi.error"

local M = {}

--- M.write_file(path, bytes, [exclusive]): writes the file atomically (temporary file, then
-- rename; mode 0600); with exclusive an existing file is an error. Raises IO / ACCESS.
function M.write_file(path, bytes, exclusive) return cimage.write(path, bytes, exclusive) end

--- M.read_file(path, what) -> bytes. Raises NOT_FOUND naming `what` (e.g. "licence file").
function M.read_file(path, what)
  local f, err = io.open(path, "rb")
  if not f then errors.raise("NOT_FOUND", "read", (what or "file") .. ": " .. tostring(err)) end
  local s = f:read("a")
  f:close()
  return s
end

return M
