-- recipes/h757.lua: SFI install on STM32H757 (DEV_ID 0x450, dual core Cortex-M7 + M4).
-- As h753, and the write mode also sets the core boot bits: the M7 boots, the M4 is held
-- until the application releases it.
local flow = require "sfi.flow"
local sfi = require "sfi.sfi"

return flow.recipe {
  name = "h757",
  version = "2",
  description = "Secure Firmware Install on STM32H757 (dual core: BCM7=1, BCM4=0)",
  params = sfi.params { probe = "sim:stm32h757" },
  run = function (r, a)
    return sfi.install(r, sfi.options(a, {
      device = "stm32h757", connect = "hotplug",
      write_mode = { SECURITY = 1, ST_RAM_SIZE = 3, BCM7 = 1, BCM4 = 0 },
    }))
  end,
}
