--- sfi.journal: the append-only licence journal (SQLite, WAL). Every licence request is
-- written before the provider is asked and its outcome after, so a crash in between leaves a
-- row whose outcome is "unknown". Rows are never deleted.
local core = require "sfi.core.journal"
local config = require "sfi.config"
local errors = require "sfi.error"

local M = {}

--- M.path() -> string: config.journal (--journal) or <state dir>/journal.sqlite.
function M.path()
  return config.journal or (config.state_dir() .. "/journal.sqlite")
end

--- M.open([path]) -> journal (with <close>): j:begin{...} -> id, j:finish(id, outcome,
-- [counter_after], [detail]), j:rows([after]) -> list. Raises IO / ACCESS / FORMAT / BUSY.
function M.open(path)
  return core.open(path or M.path())
end

--- M.rows([path]) -> list of rows {id, time, time_end, uid, cert_sha256, fwid, station, recipe,
-- provider, counter_before, counter_after, outcome, detail}. Raises as M.open.
function M.rows(path)
  local j <close> = M.open(path)
  return j:rows()
end

local function station()
  if config.station then return config.station end
  local h = os.getenv("HOSTNAME")
  if h and h ~= "" then return h end
  local f = io.open("/etc/hostname", "r")
  if f then
    h = f:read("l")
    f:close()
  end
  return h or "unknown"
end

--- M.record(req, fn) -> fn's results: journals one licence request around fn() -> lic, after.
-- req = {uid=, cert=, fwid=, recipe=, station=, provider=, counter_before=, journal=path}.
-- The outcome is "ok" or the sfi.error code; errors from fn are re-raised unchanged.
-- Raises the journal's own errors before fn runs (no licence without a journal row).
function M.record(req, fn)
  local j <close> = M.open(req.journal)
  local id = j:begin {
    uid = req.uid, cert = req.cert, fwid = req.fwid, recipe = req.recipe,
    station = req.station or station(), provider = req.provider,
    counter_before = req.counter_before,
  }
  local ok, lic, after = pcall(fn)
  if ok then
    j:finish(id, "ok", after)
    return lic, after
  end
  local code = errors.is(lic) and lic.code or "ERROR"
  local fin_ok = pcall(j.finish, j, id, code, req.counter_on_error and req.counter_on_error() or nil,
    tostring(lic))
  if not fin_ok then
    io.stderr:write("sfirun: journal row ", id, " left unknown\n")
  end
  error(lic, 0)
end

return M
