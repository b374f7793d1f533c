--- sfi.cli.journal: `sfirun journal [--journal PATH] [--json]`: prints the licence journal,
-- one row per request; rows whose outcome is unknown (a crash between request and answer)
-- are flagged so an operator can reconcile them with the token's counter.
local args = require "sfi.cli.args"
local config = require "sfi.config"
local journal = require "sfi.journal"

local M = {}

local SPEC <const> = {
  { "journal", "--journal", value = "PATH", help = "journal database (default <state dir>/journal.sqlite)" },
}

--- M.run(argv, first, gopts) -> 0. Raises IO / FORMAT when the journal cannot be read.
function M.run(argv, first, gopts)
  local opts = args.parse(argv, SPEC, "journal", first)
  if opts.help then
    io.stdout:write("usage: sfirun journal [--journal PATH] [--json]\n\noptions:\n",
      args.help(SPEC), "\n")
    return 0
  end
  config.journal = opts.journal or (gopts and gopts.journal) or config.journal
  local path = journal.path()
  local rows = journal.rows(path)
  local unknown = 0
  local enc = require("sfi.cli.hsm").json
  for _, r in ipairs(rows) do
    if r.outcome == "unknown" then unknown = unknown + 1 end
    if opts.json or (gopts and gopts.json) then
      io.stdout:write(enc(r), "\n")
    else
      local flag = r.outcome == "unknown" and "  <-- UNKNOWN OUTCOME: check the token counter" or ""
      io.stdout:write(string.format("%4d %s %-8s uid=%s fw=%s ctr=%s->%s station=%s recipe=%s %s%s\n",
        r.id, r.time, r.provider or "-", r.uid or "-", r.fwid or "-",
        r.counter_before or "?", r.counter_after or "?", r.station or "-", r.recipe or "-",
        r.outcome, flag))
    end
  end
  if not (opts.json or (gopts and gopts.json)) then
    io.stdout:write(string.format("%d request(s), %d with unknown outcome (%s)\n", #rows, unknown, path))
  end
  return 0
end

return M
