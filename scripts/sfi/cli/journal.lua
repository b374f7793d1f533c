--- sfi.cli.journal: `sfirun journal [--journal PATH] [--json]` prints the licence journal, one
-- row per request, rows whose outcome is unknown (a crash between request and answer) flagged;
-- `sfirun journal reconcile [--hsm URI]` decides those rows from the counter history;
-- `push` and `report` (sfi.cli.journal_pg) copy it to and read it from PostgreSQL.
local args = require "sfi.cli.args"
local config = require "sfi.config"
local journal = require "sfi.journal"
local log = require "sfi.log"
local util = require "sfi.util"

local M = {}

local SPEC <const> = {
  { "journal", "--journal", value = "PATH", help = "journal database (default <state dir>/journal.sqlite)" },
  { "hsm", "--hsm", value = "URI", help = "reconcile: the token, to read its counter now" },
  { "events", "--events", help = "list station events (recoveries and their evidence)" },
  { "to", "--to", value = "URI", help = "push: PostgreSQL connection URI (no password in it)" },
  { "from", "--from", value = "URI", help = "report: PostgreSQL connection URI (no password in it)" },
  { "station", "--station", value = "NAME", help = "push: the station's name (default: the journal's)" },
  { "cm", "--cm", value = "NAME", help = "push: the contract manufacturer (default $SFIRUN_CM)" },
  { "follow", "--follow", help = "push: keep pushing every --interval seconds" },
  { "interval", "--interval", value = "S", help = "push --follow: seconds between pushes (default 30)" },
  { "batch", "--batch", value = "N", help = "push: rows per committed batch (default 500)" },
  { "csv", "--csv", help = "report: CSV of one table (--table)" },
  { "table", "--table", value = "NAME", help = "report --csv: counts|duplicates|unknown|tokens" },
  { "html", "--html", value = "FILE", help = "report: also write a static HTML report" },
}

local USAGE <const> = [==[
usage: sfirun journal [--journal PATH] [--events] [--json]
       sfirun journal reconcile [--journal PATH] [--hsm URI] [--json]
       sfirun journal push --to URI [--journal PATH] [--station NAME] [--cm NAME]
                           [--follow [--interval S]] [--batch N]
       sfirun journal report --from URI [--json | --csv [--table NAME]] [--html FILE]
The database password comes from PGPASSWORD, ~/.pgpass or a service file, never the URI.]==]

local function show(rows, path, json)
  local unknown = 0
  for _, r in ipairs(rows) do
    if r.outcome == "unknown" then unknown = unknown + 1 end
    if json then
      local o = {}
      for k, v in pairs(r) do o[k] = v end
      o.licence = nil -- not secret, but binary: `journal` shows that one was kept
      o.licence_kept = r.licence and true or nil
      io.stdout:write(util.json(o), "\n")
    else
      local flag = r.outcome == "unknown" and
        "  <-- UNKNOWN OUTCOME: run 'sfirun journal reconcile --hsm URI'" or ""
      local fields = ""
      if type(r.fields) == "table" then
        local kv = {}
        for k, v in pairs(r.fields) do kv[#kv + 1] = k .. "=" .. tostring(v) end
        table.sort(kv)
        fields = " " .. table.concat(kv, " ")
      end
      io.stdout:write(string.format("%4d %s %-8s uid=%s fw=%s ctr=%s->%s station=%s recipe=%s%s %s%s\n",
        r.id, r.time, r.provider or "-", r.uid or "-", r.fwid or "-",
        r.counter_before or "?", r.counter_after or "?", r.station or "-", r.recipe or "-",
        fields, r.outcome, flag))
    end
  end
  if not json then
    io.stdout:write(string.format("%d request(s), %d with unknown outcome (%s)\n", #rows, unknown, path))
  end
end

local function reconcile(path, opts, json)
  local counters, tags = {}, {}
  if opts.hsm then
    local hsm = require "sfi.hsm"
    local h <close> = hsm.open { uri = opts.hsm }
    local info = h:info()
    local id = hsm.identity(info)
    counters[id] = info.counter
    tags[id] = {}
    for _, t in ipairs(h:tags()) do
      local v = tags[id][t.tag] or {}
      v[#v + 1] = t.value
      tags[id][t.tag] = v
    end
  end
  local rep = journal.reconcile(path, counters, tags, require("sfi.hsm").TAG_WINDOW)
  for _, d in ipairs(rep.decided) do
    if json then
      io.stdout:write(util.json { id = d.id, outcome = d.outcome, why = d.why }, "\n")
    else
      io.stdout:write(string.format("%4d %-9s %s\n", d.id, d.outcome, d.why))
    end
  end
  for _, u in ipairs(rep.unknown) do
    if json then
      io.stdout:write(util.json { id = u.id, outcome = "unknown", why = u.why }, "\n")
    else
      io.stdout:write(string.format("%4d %-9s %s\n", u.id, "unknown", u.why))
    end
  end
  log.event("journal.reconcile", { decided = #rep.decided, unknown = #rep.unknown },
    string.format("%d row(s) decided, %d still unknown (%s)", #rep.decided, #rep.unknown, path))
  return #rep.unknown > 0 and 1 or 0
end

--- M.run(argv, first, gopts) -> 0 (reconcile: 1 when rows stay unknown). Raises NOT_FOUND
-- (no journal), IO / FORMAT when the journal cannot be read.
function M.run(argv, first, gopts)
  local opts, pos = args.parse(argv, SPEC, "journal", first)
  args.setup_log(opts)
  if opts.help then
    io.stdout:write(USAGE, "\n\noptions:\n", args.help(SPEC), "\n")
    return 0
  end
  config.journal = opts.journal or (gopts and gopts.journal) or config.journal
  if config.journal then util.check_output(config.journal, "journal --journal") end
  local path = journal.path()
  local json = opts.json or (gopts and gopts.json)
  if pos[1] == "reconcile" then return reconcile(path, opts, json) end
  if pos[1] == "push" or pos[1] == "report" then
    return require("sfi.cli.journal_pg")[pos[1]](opts, path, json)
  end
  if pos[1] then
    require("sfi.error").raise("USAGE", nil, "journal: unknown sub-command '" .. pos[1] ..
      "' (reconcile, push, report)")
  end
  if opts.events then
    for _, e in ipairs(journal.events(path)) do
      if json then io.stdout:write(util.json(e), "\n")
      else
        io.stdout:write(string.format("%4d %s %-9s uid=%s recipe=%s %s\n", e.id, e.time, e.kind,
          e.uid or "-", e.recipe or "-", e.detail or ""))
      end
    end
    return 0
  end
  show(journal.rows(path), path, json)
  return 0
end

return M
