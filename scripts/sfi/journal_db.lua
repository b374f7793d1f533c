--- sfi.journal_db: the licence journal's central copy in PostgreSQL. Each station keeps its
-- SQLite journal (it works offline) and pushes it to a shared database that sfirun creates and
-- versions (schema "sfirun", ordered migrations, docs/journal-db.md). A pushed row keeps its
-- station and its sequence number (the journal row id); pushing is idempotent (a row is
-- inserted once and changed only when its unknown outcome was resolved), resumable (batches
-- commit in sequence order, the next push starts after the last committed row) and ordered
-- per station. M.report answers the OEM's questions across stations.
local pg = require "sfi.core.pg"
local core = require "sfi.core"
local config = require "sfi.config"
local errors = require "sfi.error"
local journal = require "sfi.journal"
local log = require "sfi.log"

local M = {}

-- Ordered migrations: MIGRATIONS[n] brings version n-1 to n. Append only; a released entry is
-- never edited (a database that ran it must stay equal to a new one).
local MIGRATIONS <const> = {
  { -- 1: stations and their licence rows
    [[CREATE TABLE sfirun.station(station text PRIMARY KEY, cm text,
        first_push timestamptz NOT NULL DEFAULT now(), last_push timestamptz)]],
    [[CREATE TABLE sfirun.licence(
        station text NOT NULL REFERENCES sfirun.station, seq bigint NOT NULL,
        time timestamptz NOT NULL, time_end timestamptz, uid text, cert_sha256 text, fwid text,
        recipe text, provider text, token text, counter_before bigint, counter_after bigint,
        outcome text NOT NULL, detail text, fields text, licence bytea,
        pushed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (station, seq))]],
    "CREATE INDEX licence_uid ON sfirun.licence(uid)",
    "CREATE INDEX licence_token ON sfirun.licence(token)",
  },
  { -- 2: station events, the station name the row itself recorded, and change tracking
    "ALTER TABLE sfirun.licence ADD COLUMN recorded_station text",
    "ALTER TABLE sfirun.licence ADD COLUMN revision integer NOT NULL DEFAULT 1",
    "ALTER TABLE sfirun.licence ADD COLUMN updated_at timestamptz",
    [[CREATE TABLE sfirun.event(
        station text NOT NULL REFERENCES sfirun.station, seq bigint NOT NULL,
        time timestamptz NOT NULL, kind text NOT NULL, uid text, recipe text, detail text,
        PRIMARY KEY (station, seq))]],
  },
}

--- M.SCHEMA_VERSION: the schema version this sfirun writes.
M.SCHEMA_VERSION = #MIGRATIONS

local LOCK_SCHEMA <const> = 0x5346494D -- advisory lock key: one migration at a time

--- M.connect(uri, [timeout_s]) -> connection (use <close>). Raises as sfi.core.pg.connect:
-- USAGE (bad URI, a password in it), NO_DEVICE, TIMEOUT, AUTH, NOT_FOUND, IO.
function M.connect(uri, timeout)
  return pg.connect(uri, timeout)
end

local function rollback(c)
  if c:status() ~= "lost" then pcall(c.exec, c, "ROLLBACK") end
end

-- fn(c) inside BEGIN/COMMIT; any error rolls back and is raised again.
local function transaction(c, fn, ...)
  c:exec("BEGIN")
  local res = table.pack(pcall(fn, c, ...))
  if res[1] then
    c:exec("COMMIT")
    return table.unpack(res, 2, res.n)
  end
  rollback(c)
  error(res[2], 0)
end

--- M.version(c) -> integer: the database's schema version (0 = no sfirun schema).
function M.version(c)
  local rows = c:exec("SELECT to_regclass('sfirun.schema_version') IS NOT NULL AS present")
  if rows[1].present ~= "t" then return 0 end
  rows = c:exec("SELECT coalesce(max(version), 0) AS v FROM sfirun.schema_version")
  return math.tointeger(tonumber(rows[1].v))
end

--- M.migrate(c, [upto]) -> from, to: creates the schema or brings an older one up to date
-- (to version upto, default M.SCHEMA_VERSION), all in one transaction under an advisory lock
-- so that stations starting together never migrate twice. Raises UNSUPPORTED for a schema
-- newer than this sfirun, and the database's errors (the schema is then unchanged).
function M.migrate(c, upto)
  upto = upto or M.SCHEMA_VERSION
  return transaction(c, function ()
    c:exec("SELECT pg_advisory_xact_lock($1)", LOCK_SCHEMA)
    c:exec("CREATE SCHEMA IF NOT EXISTS sfirun")
    c:exec([[CREATE TABLE IF NOT EXISTS sfirun.schema_version(version integer PRIMARY KEY,
               applied_at timestamptz NOT NULL DEFAULT now(), sfirun text)]])
    local from = M.version(c)
    if from > M.SCHEMA_VERSION then
      errors.raise("UNSUPPORTED", "journal_db.migrate", string.format("the database's sfirun " ..
        "schema is version %d, newer than this sfirun knows (%d): upgrade sfirun", from,
        M.SCHEMA_VERSION))
    end
    for v = from + 1, upto do
      for _, sql in ipairs(MIGRATIONS[v]) do c:exec(sql) end
      c:exec("INSERT INTO sfirun.schema_version(version, sfirun) VALUES ($1, $2)", v,
        core.versions().sfirun)
    end
    if upto > from then
      log.info("Journal database schema: version %d -> %d", from, upto)
    end
    return from, math.max(from, upto)
  end)
end

local function hostname()
  local h = os.getenv("HOSTNAME")
  if h and h ~= "" then return h end
  local f = io.open("/etc/hostname", "r")
  if f then
    h = f:read("l")
    f:close()
  end
  return h and h ~= "" and h or "unknown"
end

local function hex(s)
  return s and (s:gsub(".", function (ch) return string.format("%02x", ch:byte()) end)) or nil
end

local function empty(v) if v == nil or v == "" then return nil end return v end

local function json(v)
  local t = type(v)
  if t == "table" then
    local parts = {}
    if v[1] ~= nil then
      for i = 1, #v do parts[i] = json(v[i]) end
      return "[" .. table.concat(parts, ",") .. "]"
    end
    for k, x in pairs(v) do parts[#parts + 1] = json(tostring(k)) .. ":" .. json(x) end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif t == "string" then
    return '"' .. v:gsub('[%c"\\]', function (ch) return string.format("\\u%04x", ch:byte()) end) .. '"'
  elseif v == nil then
    return "null"
  end
  return tostring(v)
end

-- One statement per batch: the rows travel as one JSON parameter. A row already there changes
-- only when it was unknown and the station has decided it since (same request time).
local UPSERT <const> = [[
INSERT INTO sfirun.licence AS l (station, seq, time, time_end, uid, cert_sha256, fwid,
  recorded_station, recipe, provider, token, counter_before, counter_after, outcome, detail,
  fields, licence)
SELECT $1, x.seq, x.time, x.time_end, x.uid, x.cert_sha256, x.fwid, x.recorded_station, x.recipe,
  x.provider, x.token, x.counter_before, x.counter_after, x.outcome, x.detail, x.fields,
  decode(x.licence, 'hex')
FROM jsonb_to_recordset($2::jsonb) AS x(seq bigint, time timestamptz, time_end timestamptz,
  uid text, cert_sha256 text, fwid text, recorded_station text, recipe text, provider text,
  token text, counter_before bigint, counter_after bigint, outcome text, detail text,
  fields text, licence text)
ORDER BY x.seq
ON CONFLICT (station, seq) DO UPDATE SET time_end = EXCLUDED.time_end,
  counter_after = EXCLUDED.counter_after, outcome = EXCLUDED.outcome, detail = EXCLUDED.detail,
  licence = EXCLUDED.licence, revision = l.revision + 1, updated_at = now()
WHERE l.outcome = 'unknown' AND EXCLUDED.outcome <> 'unknown' AND l.time = EXCLUDED.time
RETURNING (xmax = 0) AS inserted]]

local function record(r)
  return { seq = r.id, time = r.time, time_end = empty(r.time_end), uid = empty(r.uid),
    cert_sha256 = empty(r.cert_sha256), fwid = empty(r.fwid), recorded_station = empty(r.station),
    recipe = empty(r.recipe), provider = empty(r.provider), token = empty(r.token),
    counter_before = r.counter_before, counter_after = r.counter_after,
    outcome = r.outcome or "unknown", detail = empty(r.detail), fields = empty(r.fields),
    licence = hex(r.licence) }
end

local function int(v) return v and math.tointeger(tonumber(v)) or nil end

--- M.push{uri=, journal=path, station=, cm=, batch=500, timeout=10, statement_ms=} -> stats {station, last,
-- inserted, updated, unchanged, events, batches, schema = {from, to}}: copies the journal's
-- rows (and events) not yet in the database, and the resolved outcomes of rows the database
-- still holds as unknown. Batches of `batch` rows commit in sequence order, so a push cut at
-- any point leaves a prefix and the next push continues after it; only rows from there on
-- (and the unknown ones) are read from the journal. station defaults to config.station, the
-- journal's own station name, then the host name. Raises NOT_FOUND (no journal), FORMAT (the
-- database holds rows of this station that this journal does not: two journals under one
-- name), the connection's errors (NO_DEVICE, AUTH, TIMEOUT...) and SQL errors (PROTOCOL,
-- FORMAT) with the server's message.
function M.push(o)
  local j <close> = journal.open(o.journal or journal.path(), "read")
  local station, rows = o.station or config.station, nil
  if not station then
    rows = j:rows()
    station = rows[1] and empty(rows[1].station) or hostname()
  end
  local batch = o.batch or 500
  local c <close> = M.connect(o.uri, o.timeout)
  if o.statement_ms then -- bounds lock waits too: a push after an install never hangs it
    c:exec("SELECT set_config('statement_timeout', $1, false)", tostring(o.statement_ms))
  end
  local from, to = M.migrate(c)
  local st = { station = station, inserted = 0, updated = 0, unchanged = 0, events = 0,
    batches = 0, schema = { from = from, to = to } }
  c:exec([[INSERT INTO sfirun.station(station, cm) VALUES ($1, $2)
           ON CONFLICT (station) DO UPDATE SET cm = coalesce(EXCLUDED.cm, station.cm)]],
    station, o.cm)

  local top = int(c:exec("SELECT max(seq) AS m FROM sfirun.licence WHERE station = $1", station)[1].m) or 0
  local unknown = c:exec("SELECT seq FROM sfirun.licence WHERE station = $1 AND outcome = 'unknown'" ..
    " ORDER BY seq", station)
  -- read from the first row that may change: the oldest unknown one or the last one pushed
  local after = math.max(0, top - 1, 0)
  if unknown[1] then after = math.min(after, int(unknown[1].seq) - 1) end
  rows = rows or j:rows(after)
  local byid = {}
  for _, r in ipairs(rows) do byid[r.id] = r end
  st.last = rows[#rows] and rows[#rows].id or after
  if top > 0 then
    local mine = byid[top]
    local same = mine and c:exec("SELECT 1 AS x FROM sfirun.licence WHERE station = $1 AND seq = $2" ..
      " AND time = $3::timestamptz", station, top, mine.time)[1]
    if not same then
      errors.raise("FORMAT", "journal.push", string.format("the database holds row %d of station " ..
        "'%s' and this journal %s: another journal pushes under the same station name (give " ..
        "--station)", top, station, mine and "has a different row there" or "has no such row"))
    end
  end
  -- rows the database holds as unknown that the station has decided since, then the new ones
  local todo = {}
  for _, u in ipairs(unknown) do
    local r = byid[int(u.seq)]
    if r and r.outcome ~= "unknown" then todo[#todo + 1] = r end
  end
  for _, r in ipairs(rows) do
    if r.id > top then todo[#todo + 1] = r end
  end
  local i = 1
  while i <= #todo do
    local last = math.min(#todo, i + batch - 1)
    local recs = {}
    for k = i, last do recs[#recs + 1] = record(todo[k]) end
    transaction(c, function ()
      -- one pusher per station at a time (a follow loop and an install's push may overlap)
      c:exec("SELECT pg_advisory_xact_lock(hashtext('sfirun.push:' || $1))", station)
      for _, r in ipairs(c:exec(UPSERT, station, json(recs))) do
        if r.inserted == "t" then st.inserted = st.inserted + 1 else st.updated = st.updated + 1 end
      end
      c:exec("UPDATE sfirun.station SET last_push = now() WHERE station = $1", station)
    end)
    st.batches = st.batches + 1
    log.debug("journal push: %s rows %d..%d committed", station, todo[i].id, todo[last].id)
    i = last + 1
  end
  st.unchanged = top - st.updated
  local events = j:events()
  if #events > 0 then
    local etop = int(c:exec("SELECT max(seq) AS m FROM sfirun.event WHERE station = $1", station)[1].m) or 0
    transaction(c, function ()
      for _, e in ipairs(events) do
        if e.id > etop then
          local _, n = c:exec([[INSERT INTO sfirun.event(station, seq, time, kind, uid, recipe, detail)
            VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (station, seq) DO NOTHING]], station,
            e.id, e.time, e.kind, empty(e.uid), empty(e.recipe), empty(e.detail))
          st.events = st.events + n
        end
      end
    end)
  end
  return st
end

--- M.push_quietly(uri, [opts]) -> stats | nil, err: M.push with a short connect timeout (3 s)
-- and statement timeout (15 s), as station opts.station, config.station or the host name (the
-- name sfi.journal records by default), that never raises: the install that calls it has
-- finished either way; a database that is down or unreachable gives a warning, and the rows
-- go with the next push.
function M.push_quietly(uri, o)
  o = o or {}
  -- the station as the install recorded it (sfi.journal): no full read of a long journal
  local station = o.station or config.station or hostname()
  local ok, st = pcall(M.push, { uri = uri, journal = o.journal, station = station,
    cm = o.cm or os.getenv("SFIRUN_CM"), timeout = o.timeout or 3, statement_ms = 15000 })
  if ok then
    log.event("journal.push", { station = st.station, inserted = st.inserted, updated = st.updated },
      string.format("Journal pushed: %d new row(s), %d resolved (station %s)", st.inserted,
        st.updated, st.station))
    return st
  end
  if errors.is(st, "NOT_FOUND") and st.op == "journal.open" then
    log.debug("journal push: no journal yet, nothing to push")
    return nil, st
  end
  log.warn("journal push failed, the station keeps its rows and pushes them next time: %s",
    errors.is(st) and (st.code .. ": " .. st.msg) or tostring(st))
  return nil, st
end

-- {{{ report

local Q_COUNTS <const> = [[
SELECT coalesce(s.cm, '') AS cm, l.station, coalesce(l.fwid, '') AS image,
  to_char(l.time AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, count(*) AS requests,
  count(*) FILTER (WHERE l.outcome IN ('ok', 'spent')) AS issued,
  count(*) FILTER (WHERE l.outcome = 'unknown') AS unknown,
  count(*) FILTER (WHERE l.outcome NOT IN ('ok', 'spent', 'unknown')) AS failed
FROM sfirun.licence l JOIN sfirun.station s USING (station)
GROUP BY 1, 2, 3, 4 ORDER BY 4, 1, 2, 3]]

local Q_DUPLICATES <const> = [[
SELECT uid, count(*) AS issued, count(DISTINCT station) AS stations,
  string_agg(DISTINCT coalesce(fwid, ''), ' ') AS images,
  string_agg(station || '#' || seq, ' ' ORDER BY time, station, seq) AS rows
FROM sfirun.licence WHERE outcome IN ('ok', 'spent') AND coalesce(uid, '') <> ''
GROUP BY uid HAVING count(*) > 1 ORDER BY uid]]

local Q_UNKNOWN <const> = [[
SELECT l.station, l.seq, to_char(l.time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') AS time,
  coalesce(l.uid, '') AS uid, coalesce(l.token, '') AS token, l.counter_before
FROM sfirun.licence l WHERE l.outcome = 'unknown' ORDER BY l.station, l.seq]]

-- A token's counter history: the highest and lowest readings any station recorded, against
-- the licence rows. Every counter decrement should have a licence row (ok or spent).
local Q_TOKENS <const> = [[
SELECT token, count(DISTINCT station) AS stations,
  max(counter_before) AS highest,
  least(min(counter_before), min(counter_after)) AS lowest,
  count(*) FILTER (WHERE outcome IN ('ok', 'spent')) AS issued,
  count(*) FILTER (WHERE outcome = 'unknown') AS unknown,
  count(*) FILTER (WHERE outcome = 'not-spent') AS not_spent,
  count(*) FILTER (WHERE outcome NOT IN ('ok', 'spent', 'unknown', 'not-spent')) AS failed
FROM sfirun.licence WHERE provider = 'token' AND coalesce(token, '') <> ''
GROUP BY token ORDER BY token]]

local Q_PROVISIONED <const> = [[
SELECT detail FROM sfirun.event WHERE kind = 'provision' ORDER BY time]]

--- M.report(uri) -> report {counts = {{cm, station, image, day, requests, issued, unknown,
-- failed}...}, duplicates = {{uid, issued, stations, images, rows}...}, unknown = {{station,
-- seq, time, uid, token, counter_before}...}, tokens = {{token, stations, provisioned,
-- highest, lowest, decrements, issued, unknown, not_spent, failed, missing, status}...},
-- totals = {requests, issued, unknown, failed, stations, duplicates}, schema}. Read only.
-- Raises as M.connect, NOT_FOUND when the database has no sfirun schema.
function M.report(uri, timeout)
  local c <close> = M.connect(uri, timeout)
  local v = M.version(c)
  if v == 0 then
    errors.raise("NOT_FOUND", "journal.report", "the database holds no sfirun journal (nothing was pushed)")
  end
  if v > M.SCHEMA_VERSION then
    errors.raise("UNSUPPORTED", "journal.report", string.format("the database's sfirun schema is " ..
      "version %d, newer than this sfirun knows (%d): upgrade sfirun", v, M.SCHEMA_VERSION))
  end
  local rep = { schema = v, counts = {}, duplicates = {}, unknown = {}, tokens = {},
    totals = { requests = 0, issued = 0, unknown = 0, failed = 0 } }
  c:exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") -- one snapshot for every table
  for _, r in ipairs(c:exec(Q_COUNTS)) do
    local x = { cm = r.cm, station = r.station, image = r.image, day = r.day,
      requests = int(r.requests), issued = int(r.issued), unknown = int(r.unknown), failed = int(r.failed) }
    rep.counts[#rep.counts + 1] = x
    for _, k in ipairs { "requests", "issued", "unknown", "failed" } do
      rep.totals[k] = rep.totals[k] + x[k]
    end
  end
  for _, r in ipairs(c:exec(Q_DUPLICATES)) do
    rep.duplicates[#rep.duplicates + 1] = { uid = r.uid, issued = int(r.issued),
      stations = int(r.stations), images = r.images, rows = r.rows }
  end
  for _, r in ipairs(c:exec(Q_UNKNOWN)) do
    rep.unknown[#rep.unknown + 1] = { station = r.station, seq = int(r.seq), time = r.time,
      uid = r.uid, token = r.token, counter_before = int(r.counter_before) }
  end
  local provisioned = {}
  if v >= 2 then
    for _, r in ipairs(c:exec(Q_PROVISIONED)) do
      local tok, max = (r.detail or ""):match('"token":"([^"]*)"'), (r.detail or ""):match('"max":(%d+)')
      if tok and max then provisioned[tok] = int(max) end
    end
  end
  for _, r in ipairs(c:exec(Q_TOKENS)) do
    local t = { token = r.token, stations = int(r.stations), provisioned = provisioned[r.token],
      highest = int(r.highest), lowest = int(r.lowest), issued = int(r.issued),
      unknown = int(r.unknown), not_spent = int(r.not_spent), failed = int(r.failed) }
    local top = t.provisioned or t.highest
    t.decrements = top and t.lowest and (top - t.lowest) or nil
    -- decrements the rows do not account for: licences lost, unless unknown rows explain them
    t.missing = t.decrements and (t.decrements - t.issued) or nil
    if not t.missing then t.status = "no counter readings"
    elseif t.missing == 0 then t.status = "balanced"
    elseif t.missing < 0 then t.status = "more licences than decrements (counter restored?)"
    elseif t.missing <= t.unknown then t.status = "explained by unknown outcomes"
    else t.status = string.format("%d licence(s) lost", t.missing - t.unknown) end
    rep.tokens[#rep.tokens + 1] = t
  end
  rep.totals.stations = int(c:exec("SELECT count(*) AS n FROM sfirun.station")[1].n)
  rep.totals.duplicates = #rep.duplicates
  c:exec("COMMIT")
  return rep
end

-- }}}

return M
