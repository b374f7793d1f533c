--- sfi.test: the in-house test runner used by `sfirun --test FILE`.
-- T.case(name, fn) runs fn at once under pcall and records the result; the host prints
-- "N passed, N failed" at the end and exits non-zero if anything failed.
local errors = require "sfi.error"

local M = { passed = 0, failed = 0, skipped = 0 }

--- M.case(name, fn): runs one test case; a raised error is a failure.
function M.case(name, fn)
  local ok, err = xpcall(fn, function (e)
    if errors.is(e) then return debug.traceback(tostring(e), 2) end
    return debug.traceback(tostring(e), 2)
  end)
  if ok then
    M.passed = M.passed + 1
    io.stdout:write("ok   ", name, "\n")
  elseif type(err) == "string" and err:find("__SKIP__", 1, true) then
    M.skipped = M.skipped + 1
    io.stdout:write("skip ", name, ": ", (err:match("__SKIP__:?%s*([^\n]*)") or ""), "\n")
  else
    M.failed = M.failed + 1
    io.stdout:write("FAIL ", name, "\n", tostring(err), "\n")
  end
  io.stdout:flush()
end

--- M.skip(why): inside a case, marks it skipped.
function M.skip(why) error("__SKIP__: " .. tostring(why), 0) end

--- M.eq(got, want, [what]): raises unless got == want (deep for tables).
local function deq(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do if not deq(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
M.deq = deq

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) == "table" and getmetatable(v) == nil then
    local parts = {}
    for k, x in pairs(v) do parts[#parts + 1] = tostring(k) .. "=" .. show(x) end
    table.sort(parts)
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  return tostring(v)
end

function M.eq(got, want, what)
  if not deq(got, want) then
    error(string.format("%s: expected %s, got %s", what or "value", show(want), show(got)), 2)
  end
end

--- M.raises(code, fn, ...) -> err: fn must raise an sfi.error with that code (or, when code
-- is a pattern starting with "%", a string error matching it).
function M.raises(code, fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then error("expected an error " .. tostring(code) .. ", got success", 2) end
  if code:sub(1, 1) == "%" then
    if type(err) ~= "string" or not err:find(code:sub(2)) then
      error("expected a string error matching '" .. code:sub(2) .. "', got " .. tostring(err), 2)
    end
    return err
  end
  if not errors.is(err) then error("expected sfi.error " .. code .. ", got " .. tostring(err), 2) end
  if err.code ~= code then error("expected " .. code .. ", got " .. tostring(err), 2) end
  return err
end

--- M.summary() -> failed count: prints "N passed, N failed[, N skipped]".
function M.summary()
  local line = string.format("%d passed, %d failed", M.passed, M.failed)
  if M.skipped > 0 then line = line .. string.format(", %d skipped", M.skipped) end
  io.stdout:write(line, "\n")
  io.stdout:flush()
  return M.failed
end

--- M.tmpdir() -> path: a fresh directory removed at exit (best effort).
function M.tmpdir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p '" .. p .. "'"))
  M.tmpdirs = M.tmpdirs or {}
  M.tmpdirs[#M.tmpdirs + 1] = p
  return p
end

--- M.cleanup(): removes the directories made by tmpdir.
function M.cleanup()
  for _, d in ipairs(M.tmpdirs or {}) do os.execute("rm -rf '" .. d .. "'") end
  M.tmpdirs = {}
end

--- M.readfile(path) -> string | nil; M.writefile(path, data)
function M.readfile(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function M.writefile(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

--- M.sh(cmd) -> exit code, output (stdout and stderr together).
function M.sh(cmd)
  local f = assert(io.popen(cmd .. " 2>&1", "r"))
  local out = f:read("a")
  local _, _, code = f:close()
  return code, out
end

return M
