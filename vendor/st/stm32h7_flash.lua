-- vendor/st/stm32h7_flash.lua: the flash controller facts the three H7 packs share. Data only.
local M = {}

-- FLASH_KEYR and FLASH_OPTKEYR unlock sequences (RM0433 / RM0455 / RM0468, FLASH_KEYR and
-- FLASH_OPTKEYR).
M.flash_keys = { key = { 0x45670123, 0xCDEF89AB }, optkey = { 0x08192A3B, 0x4C5D6E7F } }

-- Option-byte programming: FLASH_OPTKEYR, FLASH_OPTCR and FLASH_OPTCCR as offsets from
-- registers.flash; OPTCR's OPTLOCK and OPTSTART, OPTSR's OPT_BUSY and OPTCHANGEERR (the same
-- bit clears it in OPTCCR). RM0433 / RM0455 / RM0468, FLASH register map.
M.option_control = { optkeyr = 0x08, optcr = 0x18, optccr = 0x24, optlock = 1 << 0,
                     optstart = 1 << 1, opt_busy = 1 << 0, optchangeerr = 1 << 30 }

return M
