-- recipes/h7b3.lua: SFI install on STM32H7B3 (DEV_ID 0x480). The device pack holds the H7A/B
-- addresses and the erratum: bootloaders before 0x92 may corrupt flash during SFI (ST errata
-- ES0478 2.2.3), so the flow refuses them unless --set allow_errata=true.
local flow = require "sfi.flow"
local sfi = require "sfi.sfi"

return flow.recipe {
  name = "h7b3",
  version = "2",
  description = "Secure Firmware Install on STM32H7B3 (refuses bootloader < 0x92, ES0478 2.2.3)",
  params = sfi.params { probe = "sim:stm32h7b3?bl=0x92" },
  run = function (r, a)
    return sfi.install(r, sfi.options(a, {
      device = "stm32h7b3", connect = "hotplug",
      write_mode = { SECURITY = 1, ST_RAM_SIZE = 3 },
    }))
  end,
}
