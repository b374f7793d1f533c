--- sfi.cli.probes: `sfirun probes [--json] [--tcp-port P]` lists the probes the drivers see (USB
-- ST-LINKs with serial, firmware and target voltage; the stlink-server on 127.0.0.1:7184, or on
-- --tcp-port, if one runs) and the parts the simulator can be (URIs usable with --probe).
local args = require "sfi.cli.args"
local device = require "sfi.device"
local errors = require "sfi.error"
local log = require "sfi.log"
local probe = require "sfi.probe"

local M = {}

local SPEC <const> = {
  { "tcp_port", "--tcp-port", value = "PORT", help = "also look for an stlink-server on PORT" },
}

local function uri_of(p)
  if p.driver == "stlink-tcp" then return "stlink-tcp:" .. probe.STLINK_TCP_PORT .. "/" .. p.serial end
  if p.driver == "stlink" then return "stlink:" .. p.serial end
  return p.driver
end

--- M.run(argv, first) -> 0. Raises USAGE for unknown options.
function M.run(argv, first)
  local opts = args.parse(argv, SPEC, "probes", first)
  args.setup_log(opts)
  if opts.help then
    io.stdout:write("usage: sfirun probes [--json] [--tcp-port PORT]\n\n",
      "Lists connected probes and the simulated parts.\n\noptions:\n", args.help(SPEC), "\n")
    return 0
  end
  local rows = {}
  for _, p in ipairs(probe.list()) do
    if p.driver ~= "sim" then
      rows[#rows + 1] = { driver = p.driver, serial = p.serial, uri = uri_of(p), desc = p.desc }
    end
  end
  if opts.tcp_port then
    local port = math.tointeger(tonumber(opts.tcp_port))
    if not port or port < 1 or port > 65535 then
      errors.raise("USAGE", nil, "--tcp-port must be 1..65535, got '" .. opts.tcp_port .. "'")
    end
    local ok, p = pcall(probe.open, { uri = "stlink-tcp:" .. port, connect = "hotplug" })
    if ok then
      local d = p._u:describe()
      p:close()
      rows[#rows + 1] = { driver = "stlink-tcp", serial = d.serial,
        uri = string.format("stlink-tcp:%d/%s", port, d.serial), desc = d.desc }
    else
      log.debug("probes: no stlink-server on port %d: %s", port, tostring(p))
    end
  end
  local ids = {}
  for id in pairs(device.families) do ids[#ids + 1] = id end
  table.sort(ids)
  for _, id in ipairs(ids) do
    local pack = device.by_devid(id)
    local names = {}
    if pack.sim then -- families the simulator models
      for name in pairs(pack.parts) do names[#names + 1] = name end
    end
    table.sort(names)
    for _, name in ipairs(names) do
      rows[#rows + 1] = { driver = "sim", serial = "sim", uri = "sim:" .. name,
        desc = string.format("simulated %s (DEV_ID 0x%03X, %d KB)", pack.family, id,
          pack.parts[name].flash_kb) }
    end
  end
  if log.json() then
    for _, r in ipairs(rows) do log.event("probe", r, nil) end
    return 0
  end
  local out = {}
  for _, r in ipairs(rows) do
    out[#out + 1] = string.format("%-10s %-40s %s", r.driver, r.uri, r.desc)
  end
  io.stdout:write(table.concat(out, "\n"), "\n")
  return 0
end

return M
