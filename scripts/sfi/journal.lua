--- sfi.journal: the append-only licence journal (SQLite, WAL). Every licence request is
-- written before the provider is asked and its outcome after (with the licence itself, which
-- opens only on its chip), so a crash in between leaves a row whose outcome is "unknown";
-- M.reconcile decides those from the counter history where it can. Rows are never deleted.
local core = require "sfi.core.journal"
local config = require "sfi.config"
local errors = require "sfi.error"
local log = require "sfi.log"
local util = require "sfi.util"

local M = {}

local told = false

--- M.path() -> string: config.journal (--journal) or <state dir>/journal.sqlite.
function M.path()
  return config.journal or (config.state_dir() .. "/journal.sqlite")
end

--- M.open([path], [mode]) -> journal (with <close>): j:begin{...} -> id, j:finish(id, outcome,
-- [counter_after], [detail], [licence]), j:resolve(id, outcome, detail), j:rows([after]).
-- mode "write" (default) creates the file, never a directory, except the default state
-- directory (the run then says where it writes); "read" never creates or changes anything.
-- Raises NOT_FOUND (no journal / no directory), IO / ACCESS / FORMAT / BUSY.
function M.open(path, mode)
  mode = mode or "write"
  if not path then
    path = M.path()
    if mode == "write" and not config.journal then
      local dir = config.state_dir()
      if util.stat(dir) ~= "dir" then require("sfi.core").mkdir(dir) end
      if not told and not os.getenv("SFIRUN_STATE_DIR") then
        told = true
        log.info("Licence journal: %s (default state directory; set SFIRUN_STATE_DIR or " ..
          "--journal to choose)", path)
      end
    end
  end
  return core.open(path, mode)
end

local function decode(r)
  if r.fields then r.fields = util.json_flat(r.fields) or r.fields end
  return r
end

--- M.rows([path]) -> list of rows {id, time, time_end, uid, cert_sha256, fwid, station, recipe,
-- provider, token, counter_before, counter_after, outcome, detail, fields, licence}. Never
-- creates anything. Raises NOT_FOUND (no journal), as M.open.
function M.rows(path)
  local j <close> = M.open(path or M.path(), "read")
  local rows = j:rows()
  for _, r in ipairs(rows) do decode(r) end
  return rows
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

--- M.record(req, fn) -> lic, after: journals one licence request around fn() -> lic, after,
-- [detail]. req = {uid=, cert=, fwid=, recipe=, station=, provider=, token=, fields={...},
-- counter_before=, tag=hex, journal=path}. The outcome is "ok" (with the licence) or the sfi.error
-- code; errors from fn are re-raised unchanged. Raises the journal's own errors before fn
-- runs (no licence without a journal row).
function M.record(req, fn)
  local j <close> = M.open(req.journal)
  local id = j:begin {
    uid = req.uid, cert = req.cert, fwid = req.fwid, recipe = req.recipe,
    station = req.station or station(), provider = req.provider, token = req.token,
    fields = req.fields and next(req.fields) and util.json(req.fields) or nil,
    counter_before = req.counter_before, tag = req.tag,
  }
  local ok, lic, after, detail = pcall(fn)
  if ok then
    local fin_ok, ferr = pcall(j.finish, j, id, "ok", after, detail, lic)
    if not fin_ok then
      log.warn("journal row %d left unknown: %s", id, tostring(ferr))
    end
    return lic, after
  end
  if errors.is(lic) and (lic.outcome_unknown or lic.code == "CANCELED") then
    -- stopped half way (killed, timed out, interrupted: Ctrl-C may land after the provider spent
    -- and before this line): whether it spent cannot be known here; reconcile decides later
    log.warn("journal row %d left as unknown outcome: %s", id, lic.msg)
    error(lic, 0)
  end
  local code = errors.is(lic) and lic.code or "ERROR"
  local fin_ok = pcall(j.finish, j, id, code, req.counter_on_error and req.counter_on_error() or nil,
    tostring(lic))
  if not fin_ok then
    log.warn("journal row %d left unknown", id)
  end
  error(lic, 0)
end

--- M.note{kind=, uid=, recipe=, detail=(string or flat table)} -> nothing: appends a station
-- event (a recovery and its evidence) to the journal. Raises as M.open.
function M.note(e)
  local j <close> = M.open(e.journal)
  j:note { kind = e.kind, uid = e.uid, recipe = e.recipe, station = e.station or station(),
           detail = type(e.detail) == "table" and util.json(e.detail) or e.detail }
end

--- M.events([path]) -> list of {id, time, station, recipe, uid, kind, detail}. Never creates
-- anything; an older journal has none. Raises NOT_FOUND (no journal), as M.open.
function M.events(path)
  local j <close> = M.open(path or M.path(), "read")
  return j:events()
end

--- M.reconcile(path, counters, [tags]) -> report {decided = {{id, outcome, why}...}, unknown =
-- {{id, why}...}}: decides each "unknown" row. A row with a request tag whose token's tags are
-- given is decided by the token alone: the tag is written before the counter moves, so no tag
-- = nothing spent, a tag = spent (at the values it names; conservative if the request died
-- between the tag and the decrement). Other rows are decided from the counter history: under
-- the token's guard every row's counter_before was read just before its request, so the next
-- observation of the same token (the next row's counter_before, or counters[token], the
-- counter now) says whether the request spent one: the same value = not spent, one less =
-- spent; anything else stays unknown. Rows are updated ("spent" / "not-spent" with the
-- evidence). counters maps a row's token identity ("" for rows that name none) to the token's
-- current counter; tags maps it to {[tag hex] = {value...}} (h:tags()). Tags are kept only
-- for the values below the counter + window (sfi.hsm.TAG_WINDOW): a row that could have spent
-- a value above that, and has no tag left, goes by the counter history. Raises as M.open.
function M.reconcile(path, counters, tags, window)
  local j <close> = M.open(path or M.path(), "write")
  local rows = j:rows()
  local report = { decided = {}, unknown = {} }
  for i, r in ipairs(rows) do
    local on_token = r.outcome == "unknown" and r.tag and tags and tags[r.token or ""]
    local now = counters and counters[r.token or ""]
    local pruned = on_token and not on_token[r.tag] and not (r.counter_before and now and
      r.counter_before - 1 < now + (window or 0))
    if on_token and not pruned then
      local values = on_token[r.tag]
      local outcome = values and "spent" or "not-spent"
      local why = values and string.format("reconciled: its tag is on the token at counter value %s",
        table.concat(values, ", ")) or "reconciled: its tag is not on the token: nothing spent"
      j:resolve(r.id, outcome, why)
      report.decided[#report.decided + 1] = { id = r.id, outcome = outcome, why = why }
    elseif r.outcome == "unknown" then
      local key = r.token or ""
      local nxt, where
      for k = i + 1, #rows do
        local o = rows[k]
        if (o.token or "") == key and o.provider == r.provider then
          nxt, where = o.counter_before, "row " .. o.id
          break
        end
      end
      if nxt == nil and counters and counters[key] then
        nxt, where = counters[key], "the token's counter now"
      end
      local before = r.counter_before
      local outcome, why
      if r.provider ~= "token" and before == nil then
        outcome, why = "not-spent", "reconciled: a " .. tostring(r.provider) .. " provider spends no counter"
      elseif before and nxt == before then outcome = "not-spent"
      elseif before and nxt == before - 1 then outcome = "spent" end
      if outcome then
        why = why or string.format("reconciled: counter %d before, %d at %s", before, nxt, where)
        j:resolve(r.id, outcome, why)
        report.decided[#report.decided + 1] = { id = r.id, outcome = outcome, why = why }
      else
        report.unknown[#report.unknown + 1] = { id = r.id, why = pruned and ("its tag is not " ..
          "on the token, which keeps the tags of recent counter values only, and the counter " ..
          "history does not decide it") or before == nil and
          "no counter reading before the request" or nxt == nil and
          "no later reading of this token's counter (give --hsm)" or
          string.format("counter %d before, %d at %s: more than this request moved it", before,
            nxt, where) }
      end
    end
  end
  return report
end

return M
