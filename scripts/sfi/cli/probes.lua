--- sfi.cli.probes: `sfirun probes` lists the probes the drivers see and the parts the
-- simulator can be (URIs usable with --probe).
local args = require "sfi.cli.args"
local device = require "sfi.device"
local probe = require "sfi.probe"

local M = {}

--- M.run(argv, first) -> 0. Raises USAGE for unknown options.
function M.run(argv, first)
  local opts = args.parse(argv, {}, "probes", first)
  args.setup_log(opts)
  if opts.help then
    io.stdout:write("usage: sfirun probes\n\nLists connected probes and the simulated parts.\n")
    return 0
  end
  local out = {}
  for _, p in ipairs(probe.list()) do
    out[#out + 1] = string.format("%-10s %-26s %s", p.driver, p.serial, p.desc)
  end
  local ids = {}
  for id in pairs(device.families) do ids[#ids + 1] = id end
  table.sort(ids)
  for _, id in ipairs(ids) do
    local pack = device.by_devid(id)
    local names = {}
    for name in pairs(pack.parts) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do
      out[#out + 1] = string.format("%-10s %-26s simulated %s (DEV_ID 0x%03X, %d KB)", "sim",
        "sim:" .. name, pack.family, id, pack.parts[name].flash_kb)
    end
  end
  io.stdout:write(table.concat(out, "\n"), "\n")
  return 0
end

return M
