--- sfi.cli.journal_pg: `sfirun journal push` (copy the station's journal to PostgreSQL, once or
-- --follow) and `sfirun journal report` (counts, duplicates, unknown outcomes and counter
-- reconciliation across stations, as text, JSON, CSV or one HTML file).
local core = require "sfi.core"
local db = require "sfi.journal_db"
local errors = require "sfi.error"
local log = require "sfi.log"
local report = require "sfi.pg_report"
local util = require "sfi.util"

local M = {}

local function number(v, what, lo, hi)
  local n = v and math.tointeger(tonumber(v))
  if not n or n < lo or n > hi then
    errors.raise("USAGE", nil, string.format("journal: %s must be an integer from %d to %d, got '%s'",
      what, lo, hi, tostring(v)))
  end
  return n
end

local function say(st, json)
  local msg = string.format("Journal pushed (station %s): %d new row(s), %d resolved, %d already " ..
    "there, %d event(s), %d batch(es)", st.station, st.inserted, st.updated, st.unchanged, st.events,
    st.batches)
  if json then
    io.stdout:write(util.json { station = st.station, last = st.last, inserted = st.inserted,
      updated = st.updated, unchanged = st.unchanged, events = st.events, batches = st.batches,
      schema = st.schema.to }, "\n")
  else
    io.stdout:write(msg, "\n")
  end
  io.stdout:flush()
end

--- M.push(opts, path, json) -> 0 (1 when the push failed). --follow pushes until Ctrl-C and
-- never stops on a database error (it warns and tries again next interval). Raises USAGE,
-- NOT_FOUND (no journal) and, without --follow, the push's errors.
function M.push(o, path, json)
  if not o.to then errors.raise("USAGE", nil, "journal push: give --to URI (a PostgreSQL connection URI)") end
  local p = { uri = o.to, journal = path, station = o.station, cm = o.cm or os.getenv("SFIRUN_CM"),
    batch = o.batch and number(o.batch, "--batch", 1, 100000) or nil }
  if not o.follow then
    say(db.push(p), json)
    return 0
  end
  local interval = o.interval and number(o.interval, "--interval", 1, 86400) or 30
  log.info("Pushing the journal every %d s (Ctrl-C stops)", interval)
  while true do
    local ok, st = pcall(db.push, p)
    if ok then
      p.station = st.station -- known now: later rounds read only the rows after the last pushed
      if st.inserted + st.updated + st.events > 0 then say(st, json) end
    elseif errors.is(st) and st.code ~= "CANCELED" and st.code ~= "USAGE" then
      log.warn("journal push failed, next try in %d s: %s: %s", interval, st.code, st.msg)
    else
      error(st, 0)
    end
    core.sleep_ms(interval * 1000)
  end
end

--- M.report(opts, path, json) -> 0. Raises USAGE, the connection's errors, NOT_FOUND (no
-- sfirun schema in the database), IO (HTML file not written).
function M.report(o, _, json)
  if not o.from then errors.raise("USAGE", nil, "journal report: give --from URI (a PostgreSQL connection URI)") end
  if json and o.csv then errors.raise("USAGE", nil, "journal report: --json or --csv, not both") end
  if o.table and not report.TABLES[o.table] then
    errors.raise("USAGE", nil, "journal report: --table is counts, duplicates, unknown or tokens, got '" ..
      o.table .. "'")
  end
  if o.html then util.check_output(o.html, "HTML report") end
  local rep = db.report(o.from)
  if o.html then
    util.write_file(o.html, report.html(rep))
    log.info("HTML report written to %s", o.html)
  end
  if json then
    io.stdout:write(report.json(rep), "\n")
  elseif o.csv then
    io.stdout:write(report.csv(rep, o.table))
  else
    io.stdout:write(report.text(rep))
  end
  return 0
end

return M
