-- openocd_test.lua: OpenOCD 0.12 (hla, `hla_stlink_backend tcp PORT`, target/stm32h7x.cfg)
-- against `sfirun sim-server`: init, reset halt, flash info, option bytes, lock/unlock, mass
-- erase, write_image/verify_image; what OpenOCD wrote reads back identically through
-- sim:stm32h753?state=FILE, and option bytes sfirun wrote are what OpenOCD reads.
local T = require "sfi.test"
local probe = require "sfi.probe"
local ob = require "sfi.ob"
local log = require "sfi.log"
local simserver = require "simserver"

log.configure { level = "error" }

local dir = T.tmpdir()
local SFIRUN <const> = os.getenv("SFIRUN")

local function have_openocd()
  local code = T.sh("command -v openocd >/dev/null")
  return code == 0
end

local openocd = simserver.openocd

local function optsr(out)
  local v = out:match("Option Register: <0x5200201c> = (0x%x+)")
  return v and math.tointeger(tonumber(v))
end

local function fw(n) return require("fwgen").bytes(n, 11) end

-- One server for fn(port); stopped in every case (the chip is saved to state).
local function with_server(state, fn)
  local srv = simserver.start { dir = dir, set = { state = state } }
  local ok, err = pcall(fn, srv.port, srv)
  srv:stop()
  if not ok then error(err, 0) end
end

T.case("init, reset halt, flash info 0, option_read", function ()
  if not have_openocd() then T.skip("openocd not installed") end
  with_server(dir .. "/a.bin", function (port)
    local code, out = openocd(port, { "reset halt", "flash info 0",
      "stm32h7x option_read 0 0x1c" })
    T.eq(code, 0, out)
    assert(out:match("STLINK V3J7S0"), out)
    assert(out:match("Cortex%-M7 r1p1 processor detected"), out)
    assert(out:match("halted due to"), out)
    assert(out:match("flash size probed value 2048k"), out)
    assert(out:match("STM32H74x/75x %- Rev: V"), out)
    -- the pack's default OPTSR_CUR
    local s <close> = probe.open("sim:stm32h753")
    T.eq(optsr(out), s:read32(0x5200201C))
  end)
end)

T.case("option_write, lock, unlock, mass_erase, write_image, verify_image; sfirun reads it", function ()
  if not have_openocd() then T.skip("openocd not installed") end
  local state = dir .. "/b.bin"
  local data = fw(70000)
  T.writefile(dir .. "/f.bin", data)
  with_server(state, function (port)
    local code, out = openocd(port, { "reset halt",
      "stm32h7x option_write 0 0x20 0x00200000 0x00200000", "stm32h7x option_read 0 0x1c" })
    T.eq(code, 0, out)
    T.eq(optsr(out) & 0x00200000, 0x00200000, "SECURITY set by option_write")
    code, out = openocd(port, { "reset halt", "stm32h7x lock 0", "stm32h7x option_read 0 0x1c" })
    T.eq(code, 0, out)
    T.eq((optsr(out) >> 8) & 0xFF, 0x00, "RDP after lock")
    code, out = openocd(port, { "reset halt", "stm32h7x unlock 0",
      "stm32h7x option_read 0 0x1c" })
    T.eq(code, 0, out)
    T.eq((optsr(out) >> 8) & 0xFF, 0xAA, "RDP after unlock")
    code, out = openocd(port, { "reset halt", "stm32h7x mass_erase 0",
      "flash write_image erase " .. dir .. "/f.bin 0x08000000",
      "verify_image " .. dir .. "/f.bin 0x08000000" })
    T.eq(code, 0, out)
    assert(out:match("mass erase complete"), out)
    assert(out:match("verified 70000 bytes"), out)
  end)
  local s <close> = probe.open("sim:stm32h753?state=" .. state)
  T.eq(s:read(0x08000000, #data), data)
  -- write_image pads the last flash word with 0xFF; the rest of the sector is erased
  T.eq(s:read(0x08000000 + #data, 16), string.rep("\xFF", 16))
  local v = ob.read(s)
  T.eq(v.SECURITY, 1)
  T.eq(v.RDP, 0xAA)
end)

T.case("sfirun writes option bytes (sim and stlink-tcp), OpenOCD's option_read sees them", function ()
  if not have_openocd() then T.skip("openocd not installed") end
  local state = dir .. "/c.bin"
  do
    local s <close> = probe.open("sim:stm32h753?state=" .. state)
    ob.program(s, { SECURITY = 1 })
  end
  with_server(state, function (port)
    local code, out = T.sh(string.format("%s ob write --probe stlink-tcp:%d BOR_LEV=2",
      SFIRUN, port))
    T.eq(code, 0, out)
    code, out = openocd(port, { "stm32h7x option_read 0 0x1c" })
    T.eq(code, 0, out)
    local v = optsr(out)
    assert(v, out)
    T.eq(v & 0x00200000, 0x00200000, "SECURITY")
    T.eq((v >> 2) & 3, 2, "BOR_LEV")
  end)
end)
