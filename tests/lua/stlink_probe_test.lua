-- stlink_probe_test.lua: the stlink-tcp probe driver against `sfirun sim-server` (the simulated
-- STM32H7 behind the stlink-server protocol): URIs, IDs, memory, error kinds, resets, core
-- control, option bytes, the RSS trigger, persistence, and a server that outlives its clients.
local T = require "sfi.test"
local probe = require "sfi.probe"
local ob = require "sfi.ob"
local log = require "sfi.log"
local simserver = require "simserver"

log.configure { level = "error" }

local dir = T.tmpdir()
local SFIRUN <const> = os.getenv("SFIRUN")

T.case("URIs: stlink[:SERIAL], stlink-tcp[:PORT[/SERIAL]]", function ()
  local u = probe.parse_uri("stlink")
  T.eq(u.driver, "stlink"); T.eq(u.serial, nil)
  u = probe.parse_uri("stlink:0669FF535155878281123456")
  T.eq(u.serial, "0669FF535155878281123456")
  u = probe.parse_uri("stlink-tcp")
  T.eq(u.driver, "stlink-tcp"); T.eq(u.port, nil); T.eq(u.serial, nil)
  u = probe.parse_uri("stlink-tcp:7185")
  T.eq(u.port, 7185); T.eq(u.serial, nil)
  u = probe.parse_uri("stlink-tcp:7185/ABC123")
  T.eq(u.port, 7185); T.eq(u.serial, "ABC123")
  T.raises("USAGE", probe.parse_uri, "stlink-tcp:99999")
  T.raises("USAGE", probe.parse_uri, "stlink-tcp:x12")
  T.raises("USAGE", probe.open, "stlink-tcp:7184?rev=V")
end)

T.case("no server on the port: NO_DEVICE", function ()
  -- port 1 on the loopback is never an stlink-server
  T.raises("NO_DEVICE", probe.open, "stlink-tcp:1")
end)

T.case("IDs, memory, bus fault, halt and resume over stlink-tcp", function ()
  local srv <close> = simserver.start { dir = dir }
  local p <close> = probe.open("stlink-tcp:" .. srv.port)
  local d = p._u:describe()
  T.eq(d.driver, "stlink-tcp")
  T.eq(d.serial, "SFISIM0000000000000000001")
  local i = p:info()
  T.eq(i.dev_id, 0x450); T.eq(i.rev, "V"); T.eq(i.flash_kb, 2048); T.eq(i.probe, "stlink-tcp")
  -- the same chip through the simulator directly has the same UID
  local s <close> = probe.open("sim:stm32h753")
  T.eq(i.uid, s:info().uid)
  -- unaligned head and tail, more than one TAR window
  local data = {}
  for k = 1, 5000 do data[k] = string.char((k * 37) & 0xFF) end
  data = table.concat(data)
  p:write(0x24000003, data)
  T.eq(p:read(0x24000003, #data), data)
  p:write32(0x24010000, 0xDEADBEEF)
  T.eq(p:read32(0x24010000), 0xDEADBEEF)
  T.eq(p:read16(0x1FF1E880), 2048)
  -- outside the memory map: a bus fault, the link stays
  T.raises("TARGET", p.read, p, 0x60000000, 4)
  T.eq(p:read32(0x24010000), 0xDEADBEEF)
  p:halt()
  T.eq(p:read32(0xE000EDF0) & (1 << 17) ~= 0, true, "S_HALT after halt")
  p:resume()
  T.eq(p:read32(0xE000EDF0) & (1 << 17), 0, "running after resume")
end)

T.case("resets and connect modes", function ()
  local srv <close> = simserver.start { dir = dir }
  local p <close> = probe.open { uri = "stlink-tcp:" .. srv.port, connect = "under-reset" }
  T.eq(p:read32(0xE000EDF0) & (1 << 17) ~= 0, true, "halted after connect under reset")
  -- RAM survives a system reset; DEMCR VC_CORERESET halts on the reset vector
  p:write32(0x24000000, 0x12345678)
  p:write32(0xE000EDFC, 0x01000001)
  for _, kind in ipairs { "sw", "hw", "core" } do
    p:reset(kind)
    T.eq(p:read32(0xE000EDF0) & (1 << 17) ~= 0, true, "halted after " .. kind .. " reset")
  end
  T.eq(p:read32(0x24000000), 0x12345678)
  p:reconnect { connect = "hotplug" }
  T.eq(p:read32(0x24000000), 0x12345678)
end)

T.case("option bytes with sfirun ob over stlink-tcp; RDP level 1 gives LOCKED", function ()
  local srv <close> = simserver.start { dir = dir }
  local uri = "stlink-tcp:" .. srv.port
  local code, out = T.sh(string.format("%s ob write --probe %s SECURITY=1", SFIRUN, uri))
  T.eq(code, 0, out)
  code, out = T.sh(string.format("%s ob read --probe %s", SFIRUN, uri))
  T.eq(code, 0, out)
  assert(out:match("SECURITY%s*:%s*0x1"), "SECURITY not 1 in:\n" .. out)
  local p <close> = probe.open(uri)
  T.eq(ob.read(p).SECURITY, 1)
  p:write(0x24000000, "x")
  ob.program(p, { RDP = 0xBB })
  local e = T.raises("LOCKED", p.read, p, 0x08000000, 16)
  assert(tostring(e.detail or e.msg):match("RDP"), "detail names RDP")
  -- RAM is still there
  T.eq(p:read(0x24000000, 1), "x")
end)

T.case("flash written over stlink-tcp persists in the state file", function ()
  local state = dir .. "/persist.bin"
  local srv = simserver.start { dir = dir, set = { state = state } }
  local ok, err = pcall(function ()
    local p <close> = probe.open("stlink-tcp:" .. srv.port)
    -- program one 32-byte flash word through the flash controller
    p:write32(0x52002004, 0x45670123); p:write32(0x52002004, 0xCDEF89AB)
    p:write32(0x5200200C, 0x32)
    p:write(0x08000000, string.rep("\xA5", 32))
    p:write32(0x5200200C, 0x1)
  end)
  srv:stop()
  assert(ok, err)
  local s <close> = probe.open("sim:stm32h753?state=" .. state)
  T.eq(s:read(0x08000000, 32), string.rep("\xA5", 32))
end)

T.case("the server outlives its clients and logs them", function ()
  local srv <close> = simserver.start { dir = dir }
  for _ = 1, 3 do
    local p <close> = probe.open("stlink-tcp:" .. srv.port)
    p:read32(0x5C001000)
  end
  -- a client killed in the middle of its session
  T.sh(string.format("timeout -s KILL 0.3 %s ob read --probe stlink-tcp:%d >/dev/null; true",
    SFIRUN, srv.port))
  local p <close> = probe.open("stlink-tcp:" .. srv.port)
  T.eq(p:read32(0x5C001000) & 0xFFF, 0x450)
  p:close()
  T.eq(srv:running(), true)
  simserver.sleep(0.2)
  local out = srv:output()
  assert(out:match("client 4 connected"), out)
  assert(out:match("client 3 gone"), out)
end)

T.case("sim-server --once exits after one client; a taken port is BUSY", function ()
  local srv <close> = simserver.start { dir = dir, args = "--once" }
  local code, out = T.sh(string.format("%s sim-server --port %d", SFIRUN, srv.port))
  T.eq(code, 1, out)
  assert(out:match("BUSY"), out)
  local p <close> = probe.open("stlink-tcp:" .. srv.port)
  p:close()
  for _ = 1, 100 do
    if not srv:running() then break end
    simserver.sleep(0.05)
  end
  T.eq(srv:running(), false)
  code, out = T.sh(string.format("%s sim-server --port 0 --set nosuchknob=1", SFIRUN))
  T.eq(code, 2, out)
end)

T.case("RSS trigger over stlink-tcp: mailbox, system reset, reconnect", function ()
  local image = require "sfi.image"
  local license = require "sfi.license"
  local srv <close> = simserver.start { dir = dir }
  local p <close> = probe.open("stlink-tcp:" .. srv.port)
  local pack = p:device_pack()
  ob.program(p, { SECURITY = 1 })
  local KEY, NONCE = string.rep("\x5A", 16), "\1\2\3\4\5\6\7\8\9\10\11\12"
  local fw = string.rep("firmware", 4000)
  local csv = dir .. "/ob.csv"
  T.writefile(csv, table.concat({
    "FOPTSR_PRG,0x1026AAD0", "FPRAR_PRG_A,0x000000FF", "FPRAR_PRG_B,0x000000FF",
    "FSCAR_PRG_A,0x000000FF", "FSCAR_PRG_B,0x000000FF", "FWPSN_PRG_A,0x000000FF",
    "FWPSN_PRG_B,0x000000FF", "FBOOT7_PRG,0x1FF00800", "RESERVED,0x10000810" }, "\n") .. "\n")
  local img = image.build { devid = 0x450, key = { bytes = KEY }, nonce = { bytes = NONCE }, ob = csv, protocol = 2,
    firmware = { { data = fw, name = "fw.bin", addr = 0x08000000 } }, out = dir .. "/i.sfi" }
  local cert = p:read(pack.rss.cert, 136)
  local lic = license.make_soft(license.parse_cert(cert).pub, KEY, NONCE .. "\0\0\0\0")
  local s, r = pack.sfi, pack.rss
  p:write(s.license_addr, lic)
  p:write(s.header_addr, img:header_bytes() .. img:part_bytes(1))
  p:write32(r.mailbox, r.magic)
  p:reset("sw")
  p:reconnect { connect = "hotplug" }
  T.eq(p:read32(r.result), r.codes.ok)
  T.eq(p:read(0x08000000, #fw), fw)
end)

T.case("sfirun probes --json lists an stlink-server probe and the simulator", function ()
  local srv <close> = simserver.start { dir = dir, args = "--serial 0669FF535155878281123456" }
  local code, out = T.sh(string.format("%s probes --json --tcp-port %d", SFIRUN, srv.port))
  T.eq(code, 0, out)
  assert(out:find('"uri":"stlink-tcp:' .. srv.port .. '/0669FF535155878281123456"', 1, true), out)
  assert(out:find('"desc":"ST-LINK V3J7S0 via stlink-server', 1, true), out)
  assert(out:find('"uri":"sim:stm32h753"', 1, true), out)
  -- the probe is found by its serial, and another serial is NOT_FOUND
  local p <close> = probe.open(string.format("stlink-tcp:%d/0669FF535155878281123456", srv.port))
  T.eq(p:info().dev_id, 0x450)
  p:close()
  T.raises("NOT_FOUND", probe.open, string.format("stlink-tcp:%d/OTHER", srv.port))
end)

T.case("an RDP level 2 chip is served: the probe answers, the target never does", function ()
  local srv <close> = simserver.start { dir = dir, gdb = true, set = { ob = "RDP:0xCC" } }
  assert(srv:running(), srv:output())
  local ok, err = pcall(probe.open, "stlink-tcp:" .. srv.port)
  assert(not ok)
  T.eq(err.code, "NO_DEVICE", tostring(err))
  assert(tostring(err):find("DP_ERROR", 1, true), tostring(err))
  ok, err = pcall(probe.open, "gdb:" .. srv.gdb_port)
  assert(not ok)
  T.eq(err.code, "NO_DEVICE", tostring(err))
  assert(srv:running(), "the server outlives its clients")
end)
