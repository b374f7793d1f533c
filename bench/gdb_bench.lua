-- gdb_bench.lua: 1 MiB written to and read back from target RAM (AXI SRAM 0x24000000, two
-- passes of 512 KiB each way) through GDB's remote protocol, in the same run:
--   rsp_ram_rw_1MiB: sfirun's gdb: driver -> `sfirun sim-server --gdb`, against gdb-multiarch
--     (`restore ... binary` / `dump binary memory`, timed inside gdb) -> the same server.
--     Goal: ratio sfirun/gdb <= 0.8.
--   openocd_hop_1MiB: sfirun's gdb: driver -> OpenOCD's GDB server -> sim-server (stlink-server
--     protocol), against OpenOCD's own load_image/dump_image over the same stlink sim-server:
--     the cost of the extra hop (reported, no goal).
-- Run from the source dir:
--   SFIRUN=$PWD/build/release/sfirun build/release/sfirun -I tests/lib --test bench/gdb_bench.lua
local T = require "sfi.test"
local probe = require "sfi.probe"
local simserver = require "simserver"

local SIZE <const> = 512 * 1024
local ADDR <const> = 0x24000000

local function now() return require("sfi.core").now_ns() / 1e9 end -- monotonic seconds

local function data() return require("fwgen").bytes(SIZE, 7) end

local function have(cmd) return (T.sh("command -v " .. cmd .. " >/dev/null")) == 0 end

-- Best of 3: two passes of write + read back through an open probe.
local function sfirun_rw(uri, buf)
  local best = math.huge
  for _ = 1, 3 do
    local p <close> = probe.open(uri)
    local t0 = now()
    p:write(ADDR, buf)
    local back = p:read(ADDR, SIZE)
    p:write(ADDR, buf)
    back = p:read(ADDR, SIZE) .. back
    best = math.min(best, now() - t0)
    assert(back == buf .. buf, "sfirun read back differs")
  end
  return best
end

local dir = T.tmpdir()
local buf = data()
T.writefile(dir .. "/in.bin", buf)

T.case("gdb.rsp_ram_rw_1MiB", function ()
  if not have("gdb-multiarch") then T.skip("gdb-multiarch not installed") end
  local srv <close> = simserver.start { dir = dir, gdb = true, stlink = false }
  local mine = sfirun_rw("gdb:127.0.0.1:" .. srv.gdb_port, buf)
  local script = dir .. "/rw.gdb"
  local lo, hi = string.format("0x%08X", ADDR), string.format("0x%08X", ADDR + SIZE)
  T.writefile(script, table.concat({
    "set pagination off", "set confirm off",
    "target extended-remote 127.0.0.1:" .. srv.gdb_port,
    "python import time; t0 = time.time()",
    "restore " .. dir .. "/in.bin binary " .. lo,
    "dump binary memory " .. dir .. "/out.bin " .. lo .. " " .. hi,
    "restore " .. dir .. "/in.bin binary " .. lo,
    "dump binary memory " .. dir .. "/out.bin " .. lo .. " " .. hi,
    "python print('ELAPSED %.6f' % (time.time() - t0))",
    "detach",
  }, "\n") .. "\n")
  local best = math.huge
  for _ = 1, 3 do
    local code, out = T.sh("timeout 120 gdb-multiarch -nx -batch -x " .. script .. " 2>&1")
    assert(code == 0, out)
    local t = tonumber(out:match("ELAPSED ([%d%.]+)"))
    assert(t, out)
    assert(T.readfile(dir .. "/out.bin") == buf, "gdb read back differs")
    best = math.min(best, t)
  end
  io.stdout:write(string.format("BENCH figure=rsp_ram_rw_1MiB value=%.3f unit=s ref=gdb-multiarch " ..
    "refvalue=%.3f ratio=%.2f goal=<=0.8\n", mine, best, mine / best))
end)

T.case("gdb.openocd_hop_1MiB", function ()
  if not have("openocd") then T.skip("openocd not installed") end
  local srv <close> = simserver.start { dir = dir }
  local logf, pidf = dir .. "/openocd.log", dir .. "/openocd.pid"
  os.execute(string.format("(timeout -s KILL 300 openocd -f interface/stlink.cfg " ..
    "-c 'hla_stlink_backend tcp %d' -c 'set WORKAREASIZE 0' -f target/stm32h7x.cfg " ..
    "-c 'gdb_port 0' -c 'gdb_report_data_abort enable' -c 'telnet_port disabled' " ..
    "-c 'tcl_port disabled' >%s 2>&1 & echo $! >%s)", srv.port, logf, pidf))
  local gport
  for _ = 1, 100 do
    gport = (T.readfile(logf) or ""):match("Listening on port (%d+) for gdb connections")
    if gport then break end
    os.execute("sleep 0.1")
  end
  assert(gport, "OpenOCD did not start: " .. (T.readfile(logf) or ""))
  local ok, mine = pcall(sfirun_rw, "gdb:127.0.0.1:" .. gport .. "?dialect=openocd", buf)
  local pid = T.readfile(pidf):match("%d+")
  os.execute("kill -TERM " .. pid .. "; sleep 0.5; kill -KILL " .. pid .. " 2>/dev/null")
  assert(ok, mine)
  local best = math.huge
  for _ = 1, 3 do
    local c, out = T.sh(string.format("timeout -s KILL 120 openocd -f interface/stlink.cfg " ..
      "-c 'hla_stlink_backend tcp %d' -c 'set WORKAREASIZE 0' -f target/stm32h7x.cfg " ..
      "-c 'gdb_port disabled' -c 'telnet_port disabled' -c 'tcl_port disabled' -c init " ..
      "-c 'halt' -c 'load_image %s/in.bin 0x%08X bin' -c 'dump_image %s/out.bin 0x%08X %d' " ..
      "-c 'load_image %s/in.bin 0x%08X bin' -c 'dump_image %s/out.bin 0x%08X %d' " ..
      "-c shutdown 2>&1", srv.port, dir, ADDR, dir, ADDR, SIZE, dir, ADDR, dir, ADDR, SIZE))
    assert(c == 0, out)
    local total, n = 0, 0
    for x in out:gmatch("downloaded %d+ bytes in ([%d%.]+)s") do total = total + tonumber(x); n = n + 1 end
    for x in out:gmatch("dumped %d+ bytes in ([%d%.]+)s") do total = total + tonumber(x); n = n + 1 end
    assert(n == 4, out)
    best = math.min(best, total)
  end
  io.stdout:write(string.format("BENCH figure=openocd_hop_1MiB value=%.3f unit=s ref=openocd " ..
    "refvalue=%.3f ratio=%.2f\n", mine, best, mine / best))
end)
