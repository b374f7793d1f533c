-- sim_periph_test.lua: the simulated chip answers the peripheral registers OpenOCD's
-- stm32h7x.cfg and recipes touch (RCC, FLASH_ACR, DBGMCU_CR and freeze registers, the trace
-- funnel) with the reset values of its device pack; read-only bits ignore writes; a reset
-- brings FLASH_ACR back to its reset value.
local T = require "sfi.test"
local probe = require "sfi.probe"
local log = require "sfi.log"

log.configure { level = "error" }

T.case("the values a user reads on an H753 after reset", function ()
  local p <close> = probe.open("sim:stm32h753")
  T.eq(p:read32(0x52002000), 0x37, "FLASH_ACR: LATENCY 7, WRHIGHFREQ 3")
  T.eq(p:read32(0x58024400) & 0x5, 0x5, "RCC_CR: HSION, HSIRDY")
  T.eq(p:read32(0x58024410), 0, "RCC_CFGR: HSI is the system clock")
  T.eq(p:read32(0x58024428), 0x02020200, "RCC_PLLCKSELR")
  T.eq(p:read32(0x5C001004), 0, "DBGMCU_CR")
  -- OpenOCD's examine-end: DBGMCU_CR |= 0x00700007 (DBGSLEEP/STOP/STBY_D1, D3/D1/D2 debug clocks)
  p:write32(0x5C001004, p:read32(0x5C001004) | 0x00700007)
  T.eq(p:read32(0x5C001004), 0x00700007)
  T.eq(p:read32(0xE00E1004), 0x00700007, "the same register through AP2's address")
  -- read-only register: the write is ignored
  p:write32(0x58024400, 0xFFFFFFFF)
  T.eq(p:read32(0x58024400) & 0x5, 0x5)
  T.eq(p:read32(0x58024400) & 0x01000000, 0, "PLL1ON stays clear")
  -- FLASH_ACR after a reset
  p:write32(0x52002000, 0x32)
  T.eq(p:read32(0x52002000) & 0xF, 2)
  p:reset()
  T.eq(p:read32(0x52002000), 0x37)
end)

T.case("every part's pack table reaches its chip: reset values, writable bits, a source", function ()
  for _, part in ipairs { "stm32h753", "stm32h757", "stm32h7b3", "stm32h723" } do
    local p <close> = probe.open("sim:" .. part)
    local s = p:device_pack().sim
    T.eq(p:read32(0x52002000), s.acr_reset, part .. " FLASH_ACR")
    assert(#s.peripherals > 0, part .. ": no peripherals")
    for _, r in ipairs(s.peripherals) do
      assert(type(r.source) == "string" and r.source ~= "", r.name .. ": no source")
      T.eq(p:read32(r.addr), r.reset, part .. " " .. r.name)
      p:write32(r.addr, 0xFFFFFFFF)
      T.eq(p:read32(r.addr), r.reset | (r.wmask or 0), part .. " " .. r.name .. " after a write")
    end
  end
end)
