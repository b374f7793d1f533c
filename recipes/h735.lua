-- recipes/h735.lua: SFI install on STM32H735 (DEV_ID 0x483). This RSS checks integrity and
-- requires a hashed image (build it with --hash 1).
local flow = require "sfi.flow"
local sfi = require "sfi.sfi"

return flow.recipe {
  name = "h735",
  version = "2",
  description = "Secure Firmware Install on STM32H735 (hashed protocol-2 image required)",
  params = sfi.params { probe = "sim:stm32h735" },
  run = function (r, a)
    return sfi.install(r, sfi.options(a, {
      device = "stm32h735", connect = "hotplug",
      write_mode = { SECURITY = 1, ST_RAM_SIZE = 3 },
    }))
  end,
}
