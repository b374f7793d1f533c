--- sfi.cli.sim_server: `sfirun sim-server [--port 7184] [--target stm32h753] [--set knob=value]...
-- [--serial S] [--once | --max-clients N] [--port-file FILE]` serves the simulated STM32H7 (same
-- parts, knobs and simulated RSS as "sim:" probe URIs) as an ST-LINK/V3 over the stlink-server
-- TCP protocol on 127.0.0.1, so OpenOCD (`hla_stlink_backend tcp PORT`) and sfirun's
-- "stlink-tcp:PORT" probe can drive it. Clients are served one after another until Ctrl-C.
local args = require "sfi.cli.args"
local core = require "sfi.core.stlink"
local errors = require "sfi.error"
local log = require "sfi.log"
local probe = require "sfi.probe"

local M = {}

local SPEC <const> = {
  { "port", "--port", value = "PORT", help = "TCP port on 127.0.0.1 (default 7184, 0 = any free)" },
  { "target", "--target", value = "PART", help = "simulated part (default stm32h753)" },
  { "set", "--set", value = "KNOB=VALUE", multi = true,
    help = "simulator knob as in sim: URIs (state=FILE, rev=, bl=, ...)" },
  { "serial", "--serial", value = "S", help = "serial number the simulated ST-LINK reports" },
  { "once", "--once", help = "exit after the first client" },
  { "max_clients", "--max-clients", value = "N", help = "exit after N clients" },
  { "port_file", "--port-file", value = "FILE", help = "write the bound port to FILE" },
}

local function usage()
  return "usage: sfirun sim-server [--port 7184] [--target stm32h753] [--set KNOB=VALUE]...\n" ..
    "                         [--serial S] [--once | --max-clients N] [--port-file FILE]\n\n" ..
    "Serves a simulated STM32H7 as an ST-LINK/V3 over the stlink-server TCP protocol.\n" ..
    "With --set state=FILE the chip persists in FILE (saved after every client).\n\n" ..
    "options:\n" .. args.help(SPEC)
end

local function int(s, what, lo, hi)
  local v = math.tointeger(tonumber(s))
  if not v or v < lo or v > hi then
    errors.raise("USAGE", nil, string.format("%s must be an integer in %d..%d, got '%s'", what,
      lo, hi, tostring(s)))
  end
  return v
end

local function write_port_file(path, port)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then errors.raise("IO", "sim-server", "cannot write port file: " .. tostring(err)) end
  f:write(tostring(port), "\n")
  f:close()
  local ok, rerr = os.rename(tmp, path)
  if not ok then errors.raise("IO", "sim-server", "cannot write port file: " .. tostring(rerr)) end
end

--- M.run(argv, first) -> exit code: 0 after Ctrl-C or the last allowed client. Raises USAGE
-- (bad options, knobs), BUSY (port in use), NOT_FOUND (unknown part), FORMAT (state file).
function M.run(argv, first)
  local opts, pos = args.parse(argv, SPEC, "sim-server", first)
  args.setup_log(opts)
  if opts.help then
    io.stdout:write(usage(), "\n")
    return 0
  end
  if pos[1] then errors.raise("USAGE", nil, "sim-server: unexpected argument '" .. pos[1] .. "'") end
  local port = opts.port and int(opts.port, "--port", 0, 65535) or core.DEFAULT_PORT
  local max = opts.once and 1 or (opts.max_clients and int(opts.max_clients, "--max-clients", 1,
    1 << 30)) or 0
  local knobs = {}
  for _, kv in ipairs(opts.set or {}) do
    local k, v = kv:match("^([%w_]+)=(.*)$")
    if not k then errors.raise("USAGE", nil, "--set expects KNOB=VALUE, got '" .. kv .. "'") end
    knobs[k] = v
  end
  local part = opts.target or probe.DEFAULT_PART
  local p <close> = probe.open { driver = "sim", part = part, faults = knobs, connect = "hotplug" }
  local srv <close> = core.server(p._u, { port = port, serial = opts.serial, max_clients = max })
  local bound = srv:port()
  if opts.port_file then write_port_file(opts.port_file, bound) end
  log.event("sim_server", { port = bound, part = part, serial = srv:serial() },
    string.format("sim-server: simulated %s as ST-LINK %s on 127.0.0.1:%d", part, srv:serial(),
      bound))
  local ok, err = pcall(srv.run, srv)
  if not ok then
    if errors.is(err, "CANCELED") then
      log.info("sim-server: stopped")
      return 0
    end
    error(err, 0)
  end
  return 0
end

return M
