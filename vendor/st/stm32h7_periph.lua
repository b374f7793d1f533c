-- vendor/st/stm32h7_periph.lua: peripheral registers the simulated STM32H7 answers with their
-- reset values (the packs' sim.peripherals), shared by the three H7 packs. Data only.
-- Each register: addr, reset (value after power-on), wmask (bits a debugger write changes; 0 =
-- read-only in the simulator, the write is ignored: model), source (where the value comes
-- from, or "model"). Sources: CMSIS = github STMicroelectronics/cmsis_device_h7 (Include/
-- stm32h743xx.h, stm32h7a3xx.h, stm32h735xx.h bit definitions; Source/Templates/
-- system_stm32h7xx.c, whose SystemInit writes "the default reset state" of the RCC); SVD = ST's
-- SVD files (github modm-io/cmsis-svd-stm32, stm32h7/STM32H743.svd, STM32H735.svd).
local M = {}

local INIT = "CMSIS system_stm32h7xx.c SystemInit (RCC default reset state)"

-- RCC at 0x58024400 (RM0433/RM0455/RM0468: the same offsets for these registers).
local function rcc(domains)
  local r = {
    { name = "RCC_CR", addr = 0x58024400, reset = 0x00000025,
      source = "model: HSION, HSIRDY and HSIDIVF set (the chip runs from HSI at 64 MHz after " ..
               "reset, HAL rcc driver); the SVD's 0x00000083 does not fit the H7 bit layout" },
    { name = "RCC_CFGR", addr = 0x58024410, reset = 0, source = INIT },
    { name = "RCC_PLLCKSELR", addr = 0x58024428, reset = 0x02020200, source = INIT .. "; SVD" },
    { name = "RCC_PLLCFGR", addr = 0x5802442C, reset = 0x01FF0000, source = INIT .. "; SVD" },
    { name = "RCC_PLL1DIVR", addr = 0x58024430, reset = 0x01010280, source = INIT .. "; SVD" },
    { name = "RCC_PLL1FRACR", addr = 0x58024434, reset = 0, source = INIT },
    { name = "RCC_PLL2DIVR", addr = 0x58024438, reset = 0x01010280, source = INIT .. "; SVD" },
    { name = "RCC_PLL2FRACR", addr = 0x5802443C, reset = 0, source = INIT },
    { name = "RCC_PLL3DIVR", addr = 0x58024440, reset = 0x01010280, source = INIT .. "; SVD" },
    { name = "RCC_PLL3FRACR", addr = 0x58024444, reset = 0, source = INIT },
    { name = "RCC_CIER", addr = 0x58024460, reset = 0, source = INIT },
    { name = "RCC_AHB1ENR", addr = 0x580244D8, reset = 0, source = "SVD" },
    { name = "RCC_AHB2ENR", addr = 0x580244DC, reset = 0, source = "SVD" },
    { name = "RCC_AHB4ENR", addr = 0x580244E0, reset = 0, source = "SVD" },
    { name = "RCC_APB4ENR", addr = 0x580244F4, reset = 0, source = "SVD" },
  }
  -- D1CFGR/D2CFGR/D3CFGR on 0x450/0x483, CDCFGR1/CDCFGR2/SRDCFGR on 0x480 (same offsets)
  for i, n in ipairs(domains) do
    r[#r + 1] = { name = "RCC_" .. n, addr = 0x58024414 + 4 * i, reset = 0, source = INIT }
  end
  return r
end

-- DBGMCU at 0x5C001000, also reached at 0xE00E1000 through the debug APB (AP2, as dap-direct
-- OpenOCD does; IDCODE is answered by the simulator from the pack's revision). Reset
-- at power-on only; wmask = the bits the CMSIS header defines (OpenOCD's stm32h7x.cfg sets
-- others too: those read back 0).
local function dbgmcu(m)
  local src = "reset 0: SVD; writable bits: CMSIS " .. m.header
  return {
    { name = "DBGMCU_CR", addr = 0x5C001004, reset = 0, wmask = m.cr, source = src },
    { name = "DBGMCU_APB3FZ1", addr = 0x5C001034, reset = 0, wmask = 0x40, source = src },
    { name = "DBGMCU_APB1LFZ1", addr = 0x5C00103C, reset = 0, wmask = m.apb1l, source = src },
    { name = "DBGMCU_APB2FZ1", addr = 0x5C00104C, reset = 0, wmask = m.apb2, source = src },
    { name = "DBGMCU_APB4FZ1", addr = 0x5C001054, reset = 0, wmask = m.apb4, source = src },
    -- trace funnel control, DBGMCU + 0x3000 (OpenOCD's stm32h7x.cfg sets its ENS0/ENS1 bits
    -- at examine): a CoreSight funnel, HOLDTIME reset 3 (model)
    { name = "SWTF_CTRL", addr = 0x5C004000, reset = 0x00000300, wmask = 0x00000F03,
      source = "model (CoreSight funnel control layout; the address is OpenOCD stm32h7x.cfg's)" },
  }
end

local function concat(a, b)
  local t = {}
  for _, x in ipairs(a) do t[#t + 1] = x end
  for _, x in ipairs(b) do t[#t + 1] = x end
  return t
end

-- FLASH_ACR after reset. 0x450/0x483: LATENCY = 7, WRHIGHFREQ = 3 (SVD STM32H743.svd and
-- STM32H735.svd reset value 0x00000037; CMSIS FLASH_LATENCY_DEFAULT = 7 WS; an H743 user reads
-- WRHIGHFREQ = 3 after reset, ST community "FLASH ECC Codes Cause Bus Fault on STM32H743").
-- 0x480: LATENCY = 3 (CMSIS stm32h7a3xx.h FLASH_LATENCY_DEFAULT = 3 WS), WRHIGHFREQ = 1
-- (model: not checked in RM0455).
M.acr_reset = { h74x = 0x00000037, h72x = 0x00000037, h7ab = 0x00000013 }

M.peripherals = {
  h74x = concat(rcc { "D1CFGR", "D2CFGR", "D3CFGR" },
    dbgmcu { header = "stm32h743xx.h", cr = 0x10700007, apb1l = 0x00E003FF, apb2 = 0x20070003,
             apb4 = 0x00051E80 }),
  h7ab = concat(rcc { "CDCFGR1", "CDCFGR2", "SRDCFGR" },
    dbgmcu { header = "stm32h7a3xx.h", cr = 0x10700187, apb1l = 0x00E003FF, apb2 = 0x00070003,
             apb4 = 0x00050680 }),
  h72x = concat(rcc { "D1CFGR", "D2CFGR", "D3CFGR" },
    dbgmcu { header = "stm32h735xx.h", cr = 0x10700187, apb1l = 0x02E003FF, apb2 = 0x00070003,
             apb4 = 0x00051E80 }),
}

return M
