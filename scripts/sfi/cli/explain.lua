--- sfi.cli.explain: `sfirun explain LOGFILE [--json]`: reads a log of ST's programmer (the
-- `HH:MM:SS : text` lines users paste, or plain) or of sfirun, says what it shows (device,
-- bootloader, image, probe, RSS results) and which known causes fit, with their sources and
-- the next thing to try. Reads the file only. Exit 0 (2: no such file or not a log).
local args = require "sfi.cli.args"
local diagnose = require "sfi.diagnose"
local errors = require "sfi.error"
local log = require "sfi.log"
local util = require "sfi.util"

local M = {}

local function hx(v) return v and string.format("0x%X", v) or "?" end

--- M.run(argv, first) -> 0. Raises USAGE / FORMAT (exit 2).
function M.run(argv, first)
  local opts, pos = args.parse(argv, {}, "explain", first)
  args.setup_log(opts)
  if opts.help or not pos[1] then
    io.stdout:write("usage: sfirun explain LOGFILE [--json]\n")
    if opts.help then return 0 end
    errors.raise("USAGE", nil, "explain needs a log file")
  end
  local ok, text = pcall(util.read_file, pos[1], "log file", 16 * 1024 * 1024)
  if not ok then
    if errors.is(text, "NOT_FOUND") then errors.raise("USAGE", nil, text.msg) end
    error(text, 0)
  end
  local f = diagnose.facts_from_log(text)
  if not (f.dev_id or #f.results > 0 or f.protocol) then
    errors.raise("FORMAT", nil, string.format("'%s' shows no SFI install (no device ID, image or RSS " ..
      "result found)", pos[1]))
  end
  local found = diagnose.diagnose(f)
  if log.json() then
    log.event("explain", { file = pos[1], dev_id = f.dev_id, bl = f.bl, protocol = f.protocol,
      areas = f.areas, results = #f.results > 0 and table.concat(
        (function () local t = {} for i, v in ipairs(f.results) do t[i] = hx(v) end return t end)(), ",")
        or nil, probe = f.probes[1], tool = f.tool })
    for _, d in ipairs(found) do
      log.event("finding", { id = d.id, kind = d.kind, cause = d.cause, source = d.source, fix = d.fix })
    end
    return 0
  end
  local out = { "What the log shows:" }
  local function kv(k, v) if v then out[#out + 1] = string.format("  %-12s %s", k, v) end end
  kv("device", f.dev_id and string.format("%s (DEV_ID 0x%03X)", f.device or "?", f.dev_id))
  kv("bootloader", f.bl and hx(f.bl))
  kv("tool", f.tool)
  kv("probe", #f.probes > 0 and f.probes[1] or nil)
  if #f.voltages > 0 then kv("voltage", string.format("%.2f V", math.max(table.unpack(f.voltages)))) end
  kv("image", f.protocol and string.format("protocol %d, %s areas (%s)", f.protocol, f.areas or "?",
    table.concat(f.area_types, "")))
  if #f.results > 0 then
    local t = {}
    for i, v in ipairs(f.results) do t[i] = hx(v) end
    kv("RSS results", table.concat(t, ", "))
  end
  kv("outcome", string.format("%d failed, %d finished install(s) in this log", f.failures, f.successes))
  out[#out + 1] = ""
  if #found == 0 then
    out[#out + 1] = "No known cause fits. Run 'sfirun preflight' on the chip, and compare with a capture " ..
      "of ST's tool (docs/learning-from-captures.md)."
  end
  for _, d in ipairs(found) do
    out[#out + 1] = string.format("%s %s", d.kind == "cause" and "Likely cause:" or "Note:", d.cause)
    out[#out + 1] = "  source: " .. d.source
    if d.fix then out[#out + 1] = "  next:   " .. d.fix end
  end
  io.stdout:write(table.concat(out, "\n"), "\n")
  return 0
end

return M
