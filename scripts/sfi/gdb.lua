--- sfi.gdb: what differs between debug servers that speak GDB's remote serial protocol, as
-- data: for each dialect, the monitor commands (qRcmd) for the connect modes and reset kinds
-- sfirun uses, the attach sequence, the speed command, how the server says a target is lost
-- or a command failed, and where each fact comes from. The "gdb" probe driver
-- (engine/probe/drv_gdb.c) executes it; a missing command falls back to the Cortex-M debug
-- registers in memory (DHCSR halt, AIRCR SYSRESETREQ / VECTRESET), which every server allows.
-- A site with another server, or a server version that differs, adds or edits a dialect here
-- (or in a recipe: gdb.DIALECTS.mine = {...}) without recompiling.
local M = {}

--- M.DIALECTS[name] = {port=, tty=, attach={...}, connect={normal=, hotplug=, ["under-reset"]=},
-- reset={sw=, hw=, core=}, speed=, lost={...}, failed={...}, no_x=, reattach=, sources={...},
-- verified=}. Commands are monitor command text (without "monitor "); attach entries are
-- "monitor CMD" or raw packets.
M.DIALECTS = {
  -- Any RSP server: only the packets of the GDB manual; resets through AIRCR, no hardware
  -- reset, no connect under reset.
  generic = {
    sources = { "GDB manual, appendix Remote Protocol (Packets, General Query Packets)" },
    verified = "against sfirun sim-server --gdb and OpenOCD 0.12",
  },
  -- OpenOCD 0.12 (`gdb_port`, default 3333). A failed read answers zeros unless OpenOCD was
  -- started with `-c "gdb_report_data_abort enable"` (a configuration command: it cannot be
  -- turned on from a GDB client), so start it that way; X writes of 8 bytes or more are
  -- acknowledged before they are done (an error surfaces one packet later), so sfirun writes
  -- with M. What "reset run" does depends on the board's reset_config (SRST when declared,
  -- else SYSRESETREQ on H7).
  openocd = {
    port = 3333,
    connect = { normal = "halt", ["under-reset"] = "reset halt" },
    reset = { sw = "reset run", hw = "reset run" },
    speed = "adapter speed %u",
    no_x = true,
    lost = { "Target not examined", "target not examined", "Error connecting DP" },
    sources = {
      "OpenOCD User's Guide: General Commands (reset, halt), GDB Configuration " ..
        "(gdb_port, gdb_report_data_abort), adapter speed, reset_config",
      "openocd v0.12.0 src/server/gdb_server.c (PacketSize=4000, E0E, X acknowledged early)",
      "openocd v0.12.0 tcl/target/stm32h7x.cfg (sysresetreq; connect_assert_srst unsupported)",
    },
    verified = "against OpenOCD 0.12 attached to sfirun sim-server (hla stlink tcp)",
  },
  -- SEGGER JLinkGDBServer (default port 2331). Every Cortex-M reset strategy leaves the core
  -- halted. Reset type 0 normal, 1 core (VECTRESET), 2 the reset pin.
  jlink = {
    port = 2331,
    connect = { normal = "halt" },
    reset = { sw = "reset 0", core = "reset 1", hw = "reset 2" },
    speed = "speed %u",
    sources = {
      "SEGGER UM08001, J-Link GDB Server: monitor reset/halt/go/speed",
      "SEGGER knowledge base, J-Link Reset Strategies (Cortex-M: type 0 normal, 1 core; " ..
        "all halt after reset)",
    },
    verified = false, -- not run against a real J-Link; type 2 and the connect-under-reset
                      -- method (a server command-line option) are unconfirmed
  },
  -- pyOCD gdbserver (default port 3333). Monitor output comes back as one hex reply, errors
  -- as text; connect under reset is the launch option connect_mode=under-reset.
  pyocd = {
    port = 3333,
    connect = { normal = "halt" },
    reset = { sw = "reset system", hw = "reset hardware", core = "reset core" },
    speed = "set frequency %uk",
    failed = { "Error:", "Transfer failed" },
    lost = { "No ACK", "Transfer fault" },
    sources = {
      "pyOCD docs/command_reference.md (reset [halt] [TYPE], halt, set frequency)",
      "pyOCD docs/gdbserver.md (port 3333), pyocd/gdbserver/gdbserver.py (PacketSize=800)",
    },
    verified = false,
  },
  -- Black Magic Probe: RSP natively on its USB serial port. Scan and attach first; its reset
  -- pulse drops the target list, so the scan and attach run again on every connect.
  -- Firmware before v1.9 names connect_rst "connect_srst" and the reset "hard_srst".
  bmp = {
    tty = "/dev/ttyACM0",
    attach = { "monitor swdp_scan", "vAttach;1" },
    reattach = true,
    connect = { normal = "connect_rst disable", hotplug = "connect_rst disable",
                ["under-reset"] = "connect_rst enable" },
    reset = { hw = "reset" },
    speed = "frequency %u000",
    failed = { "Failed" },
    lost = { "TARGET LOST", "SW-DP scan failed" },
    sources = {
      "Black Magic Probe firmware src/command.c (swd_scan/swdp_scan, connect_rst, reset, " ..
        "frequency), src/gdb_main.c (vAttach, EFF without target, PacketSize=400)",
    },
    verified = false,
  },
}

local URI_KEYS <const> = { dialect = true, timeout = true, baud = true, speed = true }

local function bad(fmt, ...)
  require("sfi.error").raise("USAGE", "probe.open", string.format(fmt, ...))
end

--- M.parse(target, query) -> gdb config table for sfi.core.probe (and the speed in kHz, if
-- given). target: "HOST:PORT", "PORT" (127.0.0.1), "[IPv6]:PORT", "/dev/tty..." (serial);
-- query: {dialect=, timeout= (ms), baud=, speed= (kHz)}. Raises USAGE naming what is wrong.
function M.parse(target, query)
  for k in pairs(query) do
    if not URI_KEYS[k] then
      bad("gdb: unknown URI parameter '%s' (known: baud, dialect, speed, timeout)", k)
    end
  end
  local name = query.dialect or "generic"
  local d = M.DIALECTS[name]
  if not d then
    local names = {}
    for n in pairs(M.DIALECTS) do names[#names + 1] = n end
    table.sort(names)
    bad("gdb: unknown dialect '%s' (known: %s)", name, table.concat(names, ", "))
  end
  local cfg = { dialect = name, attach = d.attach, connect = d.connect, reset = d.reset,
    speed = d.speed, lost = d.lost, failed = d.failed, no_x = d.no_x, reattach = d.reattach }
  local function int(v, what, lo, hi)
    local n = math.tointeger(tonumber(v))
    if not n or n < lo or n > hi then bad("gdb: %s '%s' must be %d..%d", what, v, lo, hi) end
    return n
  end
  if target:sub(1, 1) == "/" then
    cfg.tty = target
    cfg.baud = query.baud and int(query.baud, "baud", 1200, 4000000) or nil
  elseif target == "" then
    if not d.port and d.tty then cfg.tty = d.tty
    elseif d.port then cfg.host, cfg.port = "127.0.0.1", d.port
    else bad("gdb: give HOST:PORT or a serial device (gdb:127.0.0.1:3333, gdb:/dev/ttyACM0)") end
  else
    local host, port = target:match("^%[([%x:]+)%]:(%d+)$")
    if not host then host, port = target:match("^([%w%.%-]+):(%d+)$") end
    if not host and target:match("^%d+$") then host, port = "127.0.0.1", target end
    if not host and target:match("^[%w%.%-]+$") and d.port then host, port = target, d.port end
    if not host then
      bad("gdb: malformed target '%s' (HOST:PORT, PORT, [IPv6]:PORT or /dev/tty...)", target)
    end
    cfg.host, cfg.port = host, int(port, "port", 1, 65535)
  end
  if query.timeout then cfg.timeout_ms = int(query.timeout, "timeout", 10, 600000) end
  local khz = query.speed and int(query.speed, "speed", 1, 100000) or nil
  return cfg, khz
end

return M
