-- probe_bench.lua: 1 MiB written to and read back from target RAM (AXI SRAM 0x24000000) through
-- one `sfirun sim-server`, with sfirun's stlink-tcp driver and with OpenOCD 0.12 (load_image /
-- dump_image, the times OpenOCD reports) in the same run. AXI SRAM is 512 KiB on STM32H753, so
-- the MiB moves as two passes of 512 KiB each way; prints both and the ratio
-- sfirun/OpenOCD (goal <= 0.8). Run from the source dir:
--   SFIRUN=$PWD/build/dev/sfirun build/dev/sfirun -I tests/lib --test bench/probe_bench.lua
local T = require "sfi.test"
local probe = require "sfi.probe"
local simserver = require "simserver"

local SIZE <const> = 512 * 1024   -- one pass; two passes = 1 MiB
local ADDR <const> = 0x24000000

local function now() return require("sfi.core").now_ns() / 1e9 end -- monotonic seconds

local function data() return require("fwgen").bytes(SIZE, 5) end

T.case("probe.ram_rw_1MiB", function ()
  local dir = T.tmpdir()
  local buf = data()
  T.writefile(dir .. "/in.bin", buf)
  local srv <close> = simserver.start { dir = dir }
  -- sfirun: best of 3
  local best = math.huge
  for _ = 1, 3 do
    local p <close> = probe.open("stlink-tcp:" .. srv.port)
    local t0 = now()
    p:write(ADDR, buf)
    local back = p:read(ADDR, SIZE)
    p:write(ADDR, buf)
    back = back .. p:read(ADDR, SIZE)
    local t = now() - t0
    back = back:sub(1, SIZE)
    assert(back == buf, "sfirun read back differs")
    best = math.min(best, t)
  end
  -- OpenOCD: best of 3, from its own "downloaded/dumped ... in X s" lines
  local code, _ = T.sh("command -v openocd")
  if code ~= 0 then T.skip("openocd not installed") end
  local obest = math.huge
  for _ = 1, 3 do
    local c, out = T.sh(string.format("timeout -s KILL 120 openocd -f interface/stlink.cfg " ..
      "-c 'hla_stlink_backend tcp %d' -c 'set WORKAREASIZE 0' -f target/stm32h7x.cfg " ..
      "-c 'gdb_port disabled' -c 'telnet_port disabled' -c 'tcl_port disabled' -c init " ..
      "-c 'halt' -c 'load_image %s/in.bin 0x%08X bin' -c 'dump_image %s/out.bin 0x%08X %d' " ..
      "-c 'load_image %s/in.bin 0x%08X bin' -c 'dump_image %s/out.bin 0x%08X %d' " ..
      "-c shutdown", srv.port, dir, ADDR, dir, ADDR, SIZE, dir, ADDR, dir, ADDR, SIZE))
    assert(c == 0, out)
    local total, n = 0, 0
    for x in out:gmatch("downloaded %d+ bytes in ([%d%.]+)s") do total = total + tonumber(x); n = n + 1 end
    for x in out:gmatch("dumped %d+ bytes in ([%d%.]+)s") do total = total + tonumber(x); n = n + 1 end
    assert(n == 4, out)
    assert(T.readfile(dir .. "/out.bin") == buf, "OpenOCD read back differs")
    obest = math.min(obest, total)
  end
  io.stdout:write(string.format("probe.ram_rw_1MiB  sfirun %.2f s  openocd %.2f s  ratio %.2f " ..
    "(goal <= 0.8)\n", best, obest, best / obest))
  io.stdout:write(string.format("BENCH figure=ram_rw_1MiB value=%.3f unit=s ref=openocd refvalue=%.3f " ..
    "ratio=%.2f goal=<=0.8\n", best, obest, best / obest))
end)
