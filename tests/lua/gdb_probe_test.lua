-- gdb_probe_test.lua: the "gdb" probe driver against `sfirun sim-server --gdb` (the simulated
-- STM32H7 behind GDB's remote protocol): URIs and dialects, IDs and memory, the RDP fault,
-- resets and connect modes through the monitor commands, a server serving both protocols one
-- client at a time, and the full h753 recipe with the target silent after each RSS run.
local T = require "sfi.test"
local probe = require "sfi.probe"
local gdb = require "sfi.gdb"
local ob = require "sfi.ob"
local log = require "sfi.log"
local simserver = require "simserver"

log.configure { level = "error" }

local dir = T.tmpdir()
local SFIRUN <const> = assert(os.getenv("SFIRUN"))
local SRC <const> = os.getenv("SFI_SOURCE_DIR") or "."

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

T.case("URIs: gdb:HOST:PORT, gdb:PORT, gdb:[v6]:PORT, gdb:/dev/tty, dialects", function ()
  local u = probe.parse_uri("gdb:127.0.0.1:3333?dialect=openocd")
  T.eq(u.driver, "gdb"); T.eq(u.target, "127.0.0.1:3333"); T.eq(u.faults.dialect, "openocd")
  local c = gdb.parse("localhost:2331", { dialect = "jlink" })
  T.eq(c.host, "localhost"); T.eq(c.port, 2331); T.eq(c.reset.core, "reset 1")
  c = gdb.parse("3333", {})
  T.eq(c.host, "127.0.0.1"); T.eq(c.port, 3333); T.eq(c.dialect, "generic")
  c = gdb.parse("[::1]:3333", {})
  T.eq(c.host, "::1")
  c = gdb.parse("/dev/ttyACM0", { dialect = "bmp", baud = "115200" })
  T.eq(c.tty, "/dev/ttyACM0"); T.eq(c.baud, 115200); T.eq(c.reattach, true)
  -- a dialect's default port or device
  T.eq(gdb.parse("", { dialect = "openocd" }).port, 3333)
  T.eq(gdb.parse("", { dialect = "bmp" }).tty, "/dev/ttyACM0")
  local _, khz = gdb.parse("3333", { speed = "1800", timeout = "2000" })
  T.eq(khz, 1800)
  -- every dialect names where its facts come from
  for name, d in pairs(gdb.DIALECTS) do
    assert(type(d.sources) == "table" and #d.sources > 0, name .. " has no source")
  end
  T.raises("USAGE", gdb.parse, "", {})
  T.raises("USAGE", gdb.parse, "host:99999", {})
  T.raises("USAGE", gdb.parse, "a b:1", {})
  T.raises("USAGE", gdb.parse, "3333", { dialect = "segger" })
  T.raises("USAGE", gdb.parse, "3333", { dailect = "openocd" })
  T.raises("USAGE", gdb.parse, "3333", { timeout = "0" })
end)

T.case("bad URIs on the command line: exit 2 naming the problem", function ()
  local code, out = T.sh(SFIRUN .. " ob read --probe 'gdb:3333?dialect=segger' 2>&1")
  T.eq(code, 2, out)
  assert(out:find("unknown dialect 'segger'", 1, true), out)
  assert(out:find("known: bmp, generic, jlink, openocd, pyocd", 1, true), out)
  assert(not out:find("traceback", 1, true), out)
  code, out = T.sh(SFIRUN .. " ob read --probe 'gdb:127.0.0.1:1' 2>&1")
  T.eq(code, 1, out)
  assert(out:find("no debug server at 127.0.0.1:1", 1, true), out)
end)

T.case("IDs, memory, faults, resets and connect modes over gdb:", function ()
  local srv <close> = simserver.start { dir = dir, gdb = true, stlink = false }
  local p <close> = probe.open("gdb:127.0.0.1:" .. srv.gdb_port)
  local d = p._u:describe()
  T.eq(d.driver, "gdb")
  assert(d.desc:find("dialect generic", 1, true), d.desc)
  local i = p:info()
  T.eq(i.dev_id, 0x450); T.eq(i.rev, "V"); T.eq(i.flash_kb, 2048); T.eq(i.probe, "gdb")
  local s <close> = probe.open("sim:stm32h753")
  T.eq(i.uid, s:info().uid)
  local data = {}
  for k = 1, 40000 do data[k] = string.char((k * 37) & 0xFF) end
  data = table.concat(data)
  p:write(0x24000003, data)
  T.eq(p:read(0x24000003, #data), data)
  T.raises("TARGET", p.read, p, 0x60000000, 4)
  p:halt()
  T.eq(p:read32(0xE000EDF0) & (1 << 17) ~= 0, true, "S_HALT after halt")
  p:reset("sw")
  p:reset("core")
  T.raises("UNSUPPORTED", p.reset, p, "hw") -- generic: no hardware reset
  -- option bytes through the flash interface registers
  T.eq(ob.read(p).RDP, 0xAA)
end)

T.case("the simulator's own monitor commands as a dialect; RDP level 1 is LOCKED", function ()
  local srv <close> = simserver.start { dir = dir, gdb = true, stlink = false,
    set = { ob = "RDP:0xBB" } }
  gdb.DIALECTS.sim = { sources = { "sfirun sim-server: monitor help" },
    connect = { ["under-reset"] = "reset halt" }, reset = { sw = "reset sw", hw = "reset hw",
    core = "reset core" } }
  local p <close> = probe.open { uri = "gdb:" .. srv.gdb_port .. "?dialect=sim",
    connect = "under-reset" }
  T.raises("LOCKED", p.read, p, 0x08000000, 16)
  p:reset("hw")
  p:reconnect { connect = "under-reset" }
  T.eq(ob.read(p).RDP, 0xBB)
  gdb.DIALECTS.sim = nil
end)

T.case("one server, both protocols, one client at a time", function ()
  local state = dir .. "/both.state"
  local srv <close> = simserver.start { dir = dir, gdb = true, set = { state = state } }
  do
    local p <close> = probe.open("gdb:" .. srv.gdb_port)
    p:write32(0x24000000, 0x600DF00D)
  end
  local p <close> = probe.open("stlink-tcp:" .. srv.port)
  T.eq(p:read32(0x24000000), 0x600DF00D)
end)

T.case("h753 recipe over gdb: against sim-server --gdb, target silent after each RSS", function ()
  local fw = require("fwgen").dev_image(dir, 150000, 7)
  local code, out
  local state = dir .. "/chip.state"
  local srv = simserver.start { dir = dir, gdb = true, stlink = false,
    set = { state = state, unreachable_after_rss = 3 } }
  local ok, err = pcall(function ()
    code, out = T.sh(string.format("SFIRUN_STATE_DIR=%s %s %s/recipes/h753.lua --set image=%s " ..
      "--set key=%s --set nonce=%s --probe gdb:127.0.0.1:%d --set verify=%s --journal %s 2>&1",
      q(dir .. "/state"), SFIRUN, SRC, q(dir .. "/fw.sfi"), q(dir .. "/key.bin"),
      q(dir .. "/nonce.bin"), srv.gdb_port, q(dir .. "/fw.bin"), q(dir .. "/journal.sqlite")))
  end)
  srv:stop()
  assert(ok, err)
  T.eq(code, 0, "exit code\n" .. out)
  for _, s in ipairs { "Starting SFI part 2", "RSS complete Value = 0x0", "reconnect 1/6 failed",
                       "Flash matches" } do
    assert(out:find(s, 1, true), "missing '" .. s .. "' in\n" .. out)
  end
  local p <close> = probe.open { uri = "sim:stm32h753?rss=off&state=" .. state }
  T.eq(ob.read(p).SECURITY, 1)
  assert(p:read(0x08000000, #fw) == fw, "flash does not hold the firmware")
end)

T.summary()
