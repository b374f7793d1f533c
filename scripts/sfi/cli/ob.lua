--- sfi.cli.ob: `sfirun ob read --probe URI [--json]` prints the option bytes in ST's grouped
-- listing (JSON: one "option_bytes" event with every field); `sfirun ob write --probe URI
-- NAME=VALUE...` programs named fields (RDP=0xCC needs --force-irreversible).
local args = require "sfi.cli.args"
local errors = require "sfi.error"
local log = require "sfi.log"
local ob = require "sfi.ob"
local probe = require "sfi.probe"

local M = {}

local SPEC <const> = {
  { "probe", "--probe", value = "URI", help = "probe URI, e.g. sim:stm32h753?bl=0x90" },
  { "connect", "--connect", value = "MODE", help = "normal (default), hotplug, under-reset" },
  { "force", "--force-irreversible", help = "allow RDP=0xCC (level 2, permanent)" },
}

local function usage()
  return "usage: sfirun ob read --probe URI [--json]\n" ..
    "       sfirun ob write --probe URI NAME=VALUE... [--force-irreversible]\n\n" ..
    "Reads or writes option bytes by name (names as in ST's listing: RDP, SECURITY, nWRP3...).\n\n" ..
    "options:\n" .. args.help(SPEC)
end

local function open(opts)
  if not opts.probe then errors.raise("USAGE", nil, "ob: --probe URI is required") end
  return probe.open { uri = opts.probe, connect = opts.connect }
end

--- M.run(argv, first) -> exit code. Raises USAGE (bad arguments, field names, values) and the
-- probe's errors (LOCKED, NO_DEVICE, TARGET...).
function M.run(argv, first)
  local opts, pos = args.parse(argv, SPEC, "ob", first)
  args.setup_log(opts)
  local verb = pos[1]
  if opts.help or not verb then
    io.stdout:write(usage(), "\n")
    return opts.help and 0 or 2
  end
  if verb == "read" then
    if pos[2] then errors.raise("USAGE", nil, "ob read: unexpected argument '" .. pos[2] .. "'") end
    local p <close> = open(opts)
    local values = ob.for_part(p, ob.read(p))
    if log.json() then
      log.event("option_bytes", values, nil)
    else
      io.stdout:write(ob.format(values, p:device_pack()), "\n")
    end
    return 0
  elseif verb == "write" then
    local set = {}
    for i = 2, #pos do
      local k, v = pos[i]:match("^([%w_]+)=(.+)$")
      if not k then
        errors.raise("USAGE", nil, "ob write: expected NAME=VALUE, got '" .. pos[i] .. "'")
      end
      set[k] = args.int(v, k)
    end
    if next(set) == nil then errors.raise("USAGE", nil, "ob write: no NAME=VALUE given") end
    local p <close> = open(opts)
    ob.check(p:device_pack(), set, { force_irreversible = opts.force ~= nil })
    ob.program(p, set, { force_irreversible = opts.force ~= nil })
    return 0
  end
  errors.raise("USAGE", nil, "ob: unknown action '" .. verb .. "' (read, write)")
end

return M
