-- simserver.lua: starts `sfirun sim-server` in the background on a free loopback port for tests
-- and benchmarks, and stops it (SIGINT, then SIGKILL) in every case. Waits are bounded.
local M = {}

local S = {}
S.__index = S

local function sleep(s) os.execute("sleep " .. s) end

local function alive(pid)
  return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true
end

local function readfile(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local n = 0

--- M.start{dir=, target=, set={knob=value...}, args="", gdb=true, stlink=false} -> server
-- {port (stlink-server), gdb_port, pid, log}. gdb=true also serves GDB's remote protocol;
-- stlink=false serves only that.
-- Raises (a string) when the server does not come up within 10 s.
function M.start(opts)
  n = n + 1
  local sfirun = assert(os.getenv("SFIRUN"), "SFIRUN not set")
  local dir = assert(opts.dir)
  local pf, logf = string.format("%s/port%d", dir, n), string.format("%s/server%d.log", dir, n)
  local sets = {}
  for k, v in pairs(opts.set or {}) do sets[#sets + 1] = string.format("--set '%s=%s'", k, v) end
  table.sort(sets)
  local ports = (opts.stlink ~= false and "--port 0 " or "") .. (opts.gdb and "--gdb 0" or "")
  local want = (opts.stlink ~= false and 1 or 0) + (opts.gdb and 1 or 0)
  local cmd = string.format("exec %s sim-server %s --port-file '%s' --target %s %s %s" ..
    " </dev/null >'%s' 2>&1 & echo $!", sfirun, ports, pf, opts.target or "stm32h753",
    table.concat(sets, " "), opts.args or "", logf)
  local f = assert(io.popen(cmd, "r"))
  local pid = math.tointeger(tonumber(f:read("l")))
  f:close()
  assert(pid, "sim-server did not start")
  local s = setmetatable({ pid = pid, log = logf }, S)
  for _ = 1, 200 do
    local got = {}
    for line in (readfile(pf) or ""):gmatch("[^\n]+") do got[#got + 1] = math.tointeger(tonumber(line)) end
    if #got == want then
      if opts.stlink ~= false then s.port = got[1] end
      if opts.gdb then s.gdb_port = got[#got] end
      return s
    end
    if not alive(pid) then break end
    sleep(0.05)
  end
  s:stop()
  error("sim-server did not come up: " .. (readfile(logf) or "(no log)"), 0)
end

--- s:stop(): interrupts the server (it saves the chip) and waits up to 5 s, then kills it.
-- Idempotent.
function S:stop()
  if self.stopped then return end
  self.stopped = true
  os.execute("kill -INT " .. self.pid .. " 2>/dev/null")
  for _ = 1, 100 do
    if not alive(self.pid) then return end
    sleep(0.05)
  end
  os.execute("kill -KILL " .. self.pid .. " 2>/dev/null")
end
S.__close = S.stop
S.__gc = S.stop

--- s:output() -> the server's log so far.
function S:output() return readfile(self.log) or "" end

--- s:running() -> boolean
function S:running() return alive(self.pid) end

M.sleep = sleep

--- M.openocd(port, cmds) -> code, output: OpenOCD 0.12 as a user drives an ST-LINK behind
-- stlink-server (hla, `hla_stlink_backend tcp PORT`, target/stm32h7x.cfg, no work area, no
-- servers of its own), `-c init`, each command of cmds, `-c shutdown`; killed after 60 s.
function M.openocd(port, cmds)
  local c = {}
  for _, x in ipairs(cmds) do c[#c + 1] = string.format("-c '%s'", x) end
  return require("sfi.test").sh(string.format("timeout -s KILL 60 openocd -f interface/stlink.cfg " ..
    "-c 'hla_stlink_backend tcp %d' -c 'set WORKAREASIZE 0' -f target/stm32h7x.cfg " ..
    "-c 'gdb_port disabled' -c 'telnet_port disabled' -c 'tcl_port disabled' " ..
    "-c init %s -c shutdown", port, table.concat(c, " ")))
end
return M
