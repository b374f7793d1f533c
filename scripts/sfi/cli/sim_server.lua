--- sfi.cli.sim_server: `sfirun sim-server [--port 7184] [--gdb PORT] [--target stm32h753]
-- [--set knob=value]... [--serial S] [--once | --max-clients N] [--port-file FILE]` serves the
-- simulated STM32H7 (same parts, knobs and simulated RSS as "sim:" probe URIs) on 127.0.0.1 as
-- an ST-LINK/V3 over the stlink-server TCP protocol, so OpenOCD (`hla_stlink_backend tcp PORT`)
-- and sfirun's "stlink-tcp:PORT" probe can drive it, and/or over the GDB remote serial
-- protocol (--gdb), so any GDB client and sfirun's "gdb:" probe can. Clients are served one
-- after another (one at a time across both servers) until Ctrl-C.
local args = require "sfi.cli.args"
local core = require "sfi.core.simserver"
local errors = require "sfi.error"
local log = require "sfi.log"
local probe = require "sfi.probe"

local M = {}

local SPEC <const> = {
  { "port", "--port", value = "PORT",
    help = "stlink-server port on 127.0.0.1 (default " .. probe.STLINK_TCP_PORT ..
      " unless --gdb alone; 0 = any free)" },
  { "gdb", "--gdb", value = "PORT", help = "also (or, without --port, only) serve GDB's remote " ..
    "protocol on 127.0.0.1:PORT (0 = any free)" },
  { "target", "--target", value = "PART", help = "simulated part (default stm32h753)" },
  { "set", "--set", value = "KNOB=VALUE", multi = true,
    help = "simulator knob as in sim: URIs (state=FILE, rev=, bl=, ...)" },
  { "serial", "--serial", value = "S", help = "serial number the simulated ST-LINK reports" },
  { "once", "--once", help = "exit after the first client" },
  { "max_clients", "--max-clients", value = "N", help = "exit after N clients" },
  { "port_file", "--port-file", value = "FILE",
    help = "write the bound ports to FILE, one per line: stlink-server first, then GDB" },
}

local function usage()
  return "usage: sfirun sim-server [--port " .. probe.STLINK_TCP_PORT .. "] [--gdb PORT] [--target stm32h753]\n" ..
    "                         [--set KNOB=VALUE]... [--serial S] [--once | --max-clients N]\n" ..
    "                         [--port-file FILE]\n\n" ..
    "Serves a simulated STM32H7 as an ST-LINK/V3 over the stlink-server TCP protocol and/or\n" ..
    "over GDB's remote serial protocol (--gdb; `monitor help` lists its commands).\n" ..
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

local function write_port_file(path, ports)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then errors.raise("IO", "sim-server", "cannot write port file: " .. tostring(err)) end
  for _, port in ipairs(ports) do f:write(tostring(port), "\n") end
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
  local gdb_port = opts.gdb and int(opts.gdb, "--gdb", 0, 65535) or nil
  local port = opts.port and int(opts.port, "--port", 0, 65535) or
    (not gdb_port and probe.STLINK_TCP_PORT or nil)
  local max = opts.once and 1 or (opts.max_clients and int(opts.max_clients, "--max-clients", 1,
    1 << 30)) or 0
  local knobs = {}
  for _, kv in ipairs(opts.set or {}) do
    local k, v = kv:match("^([%w_]+)=(.*)$")
    if not k then errors.raise("USAGE", nil, "--set expects KNOB=VALUE, got '" .. kv .. "'") end
    knobs[k] = v
  end
  local part = opts.target or probe.DEFAULT_PART
  -- the chip is served whatever state it is in: an RDP level 2 chip is there, its debug port
  -- just never answers (each client finds that out, as with a real probe)
  local p <close> = probe.open { driver = "sim", part = part, faults = knobs, no_connect = true }
  local srv <close> = core.serve(p._u, { stlink_port = port, gdb_port = gdb_port,
    serial = opts.serial, max_clients = max })
  local bound, gbound = srv:stlink_port(), srv:gdb_port()
  if opts.port_file then
    local ports = { bound }
    ports[#ports + 1] = gbound
    write_port_file(opts.port_file, ports)
  end
  if bound then
    log.event("sim_server", { port = bound, part = part, serial = srv:serial() },
      string.format("sim-server: simulated %s as ST-LINK %s on 127.0.0.1:%d", part, srv:serial(),
        bound))
  end
  if gbound then
    log.event("sim_server", { gdb_port = gbound, part = part },
      string.format("sim-server: simulated %s over GDB's remote protocol on 127.0.0.1:%d", part,
        gbound))
  end
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
