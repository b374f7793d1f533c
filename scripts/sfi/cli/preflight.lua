--- sfi.cli.preflight: `sfirun preflight [RECIPE.lua] [--probe URI] [--set KEY=VALUE]... [--json]`:
-- connects, reads the chip and the image, and lists every SFI precondition the device pack
-- knows as pass / fail / unknown with the fix. Reads only; opens no HSM; spends nothing.
-- Without a recipe the chip's own pack is used (device from its DEV_ID, no write mode).
-- Exit codes: 0 no check failed, 1 a check failed (or the chip could not be read), 2 usage.
local args = require "sfi.cli.args"
local errors = require "sfi.error"
local flow = require "sfi.flow"
local log = require "sfi.log"

local M = {}

local SPEC <const> = {
  { "set", "--set", value = "KEY=VALUE", multi = true, help = "a recipe parameter (image=...)" },
  { "probe", "--probe", value = "URI", help = "probe URI" },
}

local USAGE <const> = "usage: sfirun preflight [RECIPE.lua] [--probe URI] --set image=FILE [--set ...] [--json]"

-- The recipe used without one: the standard parameters, the device the chip reports.
local function generic()
  local sfi = require "sfi.sfi"
  return flow.recipe {
    name = "preflight", version = "1", params = sfi.params {},
    run = function (r, a) return sfi.install(r, sfi.options(a, {})) end,
  }
end

--- M.run(argv, first, gopts) -> 0 | 1. Raises USAGE / FORMAT (exit 2).
function M.run(argv, first, gopts)
  local opts, pos = args.parse(argv, SPEC, "preflight", first)
  args.setup_log(opts)
  if opts.help then io.stdout:write(USAGE, "\n\noptions:\n", args.help(SPEC), "\n"); return 0 end
  local run = require "sfi.cli.run"
  local desc = pos[1] and run.load(pos[1]) or generic()
  local sets = {}
  for _, kv in ipairs(opts.set or {}) do
    local k, v = kv:match("^([%w_%.%-]+)=(.*)$")
    if not k then errors.raise("USAGE", nil, "--set expects KEY=VALUE, got '" .. kv .. "'") end
    sets[k] = v
  end
  if opts.probe or (gopts and gopts.probe) then sets.probe = opts.probe or gopts.probe end
  local ok, err, r = flow.run(desc, desc:parse(sets), "preflight")
  if not ok then error(err, 0) end
  local checks = r.checks
  if not checks then
    errors.raise("USAGE", nil, "recipe '" .. desc.name .. "' has no preflight step (it does not use sfi.install)")
  end
  local failed = 0
  for _, x in ipairs(checks) do if x.status == "fail" then failed = failed + 1 end end
  if not log.json() then
    local out = { string.format("Preflight of %s (recipe %s): reads only, no licence asked", sets.probe or
      (desc.params.probe and desc.params.probe.default) or "?", desc.name) }
    for _, x in ipairs(checks) do
      out[#out + 1] = string.format("  %-7s %-17s %s", x.status:upper(), x.name, x.detail or "")
      if x.status == "fail" and x.fix then out[#out + 1] = string.format("  %-7s %-17s fix: %s", "", "", x.fix) end
    end
    out[#out + 1] = string.format("%d check(s): %d failed", #checks, failed)
    io.stdout:write(table.concat(out, "\n"), "\n")
  end
  log.event("preflight", { checks = #checks, failed = failed, status = failed == 0 and "ok" or "fail" }, nil,
    failed == 0 and "debug" or "warn")
  return failed == 0 and 0 or 1
end

return M
