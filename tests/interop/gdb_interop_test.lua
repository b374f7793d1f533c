-- gdb_interop_test.lua: GDB's remote protocol with programs sfirun did not write.
-- (a) Debian's gdb-multiarch in batch mode attaches to `sfirun sim-server --gdb`: reads the
--     DBGMCU ID and the UID, writes and reads back RAM, reads the option-byte registers, runs
--     the simulator's monitor commands.
-- (b) OpenOCD 0.12 attached to sim-server over stlink-server TCP, with its own GDB server;
--     sfirun's gdb: driver (dialect openocd) runs `ob read` and the full h753 recipe through
--     it: a real external engine in the middle.
local T = require "sfi.test"
local simserver = require "simserver"
local probe = require "sfi.probe"
local ob = require "sfi.ob"

local SFIRUN <const> = assert(os.getenv("SFIRUN"))
local SRC <const> = os.getenv("SFI_SOURCE_DIR") or "."
local dir = T.tmpdir()

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function have(cmd) return (T.sh("command -v " .. cmd .. " >/dev/null")) == 0 end

T.case("gdb-multiarch reads and writes the simulated chip", function ()
  if not have("gdb-multiarch") then T.skip("gdb-multiarch not installed") end
  local srv <close> = simserver.start { dir = dir, gdb = true, stlink = false }
  local script = dir .. "/cmds.gdb"
  T.writefile(script, table.concat({
    "set pagination off", "set confirm off",
    "target extended-remote 127.0.0.1:" .. srv.gdb_port,
    "printf \"IDCODE=%08x\\n\", *(unsigned int *)0x5C001000",
    "printf \"UID=%08x%08x%08x\\n\", *(unsigned int *)0x1FF1E800, *(unsigned int *)0x1FF1E804, " ..
      "*(unsigned int *)0x1FF1E808",
    "set {unsigned int}0x24000100 = 0xC0FFEE11",
    "printf \"RAM=%08x\\n\", *(unsigned int *)0x24000100",
    "printf \"OPTSR=%08x\\n\", *(unsigned int *)0x5200201C",
    "monitor reset halt",
    "printf \"AFTER=%08x\\n\", *(unsigned int *)0x24000100",
    "detach",
  }, "\n") .. "\n")
  local code, out = T.sh("timeout 60 gdb-multiarch -nx -batch -x " .. q(script) .. " 2>&1")
  T.eq(code, 0, out)
  local s <close> = probe.open("sim:stm32h753")
  local i = s:info()
  assert(out:find(string.format("IDCODE=%08x", s:read32(0x5C001000)), 1, true), out)
  -- the UID gdb printed is the chip's (three little-endian words)
  local u = i.uid
  local words = {}
  for k = 0, 2 do
    words[#words + 1] = u:sub(k * 8 + 7, k * 8 + 8) .. u:sub(k * 8 + 5, k * 8 + 6) ..
      u:sub(k * 8 + 3, k * 8 + 4) .. u:sub(k * 8 + 1, k * 8 + 2)
  end
  assert(out:find("UID=" .. table.concat(words):lower(), 1, true), out)
  assert(out:find("RAM=c0ffee11", 1, true), out)
  assert(out:find("OPTSR=1bc6aaf0", 1, true), out)
  assert(out:find("AFTER=c0ffee11", 1, true), out) -- a reset keeps SRAM
end)

-- Starts OpenOCD on sim-server's stlink port with its GDB server on a free port; returns the
-- port and a stop function.
local function openocd(port)
  local logf = dir .. "/openocd.log"
  local pidf = dir .. "/openocd.pid"
  os.execute(string.format("(timeout -s KILL 300 openocd -f interface/stlink.cfg -c 'hla_stlink_backend tcp %d' " ..
    "-c 'set WORKAREASIZE 0' -f target/stm32h7x.cfg -c 'gdb_port 0' " ..
    "-c 'gdb_report_data_abort enable' -c 'telnet_port disabled' -c 'tcl_port disabled' " ..
    ">%s 2>&1 & echo $! >%s)", port, q(logf), q(pidf)))
  for _ = 1, 100 do
    local gp = (T.readfile(logf) or ""):match("Listening on port (%d+) for gdb connections")
    if gp then
      return math.tointeger(tonumber(gp)), function ()
        -- timeout passes TERM on to OpenOCD; wait until both are gone
        local pid = T.readfile(pidf):match("%d+")
        os.execute("kill -TERM " .. pid .. " 2>/dev/null")
        for _ = 1, 50 do
          if os.execute("kill -0 " .. pid .. " 2>/dev/null") ~= true then return end
          os.execute("sleep 0.1")
        end
        os.execute("kill -KILL " .. pid .. " 2>/dev/null")
      end
    end
    os.execute("sleep 0.1")
  end
  error("OpenOCD did not start:\n" .. (T.readfile(logf) or ""), 0)
end

T.case("sfirun through OpenOCD's GDB server: ob read and the h753 recipe", function ()
  if not have("openocd") then T.skip("openocd not installed") end
  local fw = require("fwgen").dev_image(dir, 150000, 11)
  local code, out
  local state = dir .. "/chip.state"
  local srv <close> = simserver.start { dir = dir, set = { state = state } }
  local gport, stop = openocd(srv.port)
  local ok, err = pcall(function ()
    local uri = "gdb:127.0.0.1:" .. gport .. "?dialect=openocd"
    code, out = T.sh(SFIRUN .. " ob read --json --probe " .. q(uri) .. " 2>&1")
    T.eq(code, 0, out)
    assert(out:find('"RDP"', 1, true) or out:find("RDP", 1, true), out)
    code, out = T.sh(string.format("SFIRUN_STATE_DIR=%s %s %s/recipes/h753.lua --set image=%s " ..
      "--set key=%s --set nonce=%s --probe %s --set verify=%s --journal %s 2>&1",
      q(dir .. "/state"), SFIRUN, SRC, q(dir .. "/fw.sfi"), q(dir .. "/key.bin"),
      q(dir .. "/nonce.bin"), q(uri), q(dir .. "/fw.bin"), q(dir .. "/journal.sqlite")))
  end)
  stop()
  srv:stop()
  assert(ok, err)
  T.eq(code, 0, "exit code\n" .. out)
  for _, s in ipairs { "Starting SFI part 2", "RSS complete Value = 0x0", "Flash matches" } do
    assert(out:find(s, 1, true), "missing '" .. s .. "' in\n" .. out)
  end
  local ocd = T.readfile(dir .. "/openocd.log") or ""
  assert(ocd:find("accepting 'gdb' connection", 1, true), ocd)
  local p <close> = probe.open { uri = "sim:stm32h753?rss=off&state=" .. state }
  T.eq(ob.read(p).SECURITY, 1)
  assert(p:read(0x08000000, #fw) == fw, "flash does not hold the firmware")
end)

T.summary()
