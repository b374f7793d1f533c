-- recipes/h7b3.lua: SFI install on STM32H7B3 (DEV_ID 0x480). The device pack holds the H7A/B
-- addresses and the erratum: bootloaders before 0x92 may corrupt flash during SFI (ST errata
-- ES0478 2.2.3), so the flow refuses them unless --set allow_errata=true.
local flow = require "sfi.flow"
local sfi = require "sfi.sfi"

return flow.recipe {
  name = "h7b3",
  version = "1",
  description = "Secure Firmware Install on STM32H7B3 (refuses bootloader < 0x92, ES0478 2.2.3)",
  params = sfi.params { probe = "sim:stm32h7b3?bl=0x92" },
  run = function (r, a)
    sfi.install(r, {
      dev_id = 0x480, image = a.image, probe = a.probe, licence = sfi.licence(a),
      connect = "hotplug", reconnect = sfi.strategy(a.strategy, a.tries),
      write_mode = { SECURITY = 1, ST_RAM_SIZE = 3 },
      verify = a.verify, allow_errata = a.allow_errata, station = a.station,
    })
  end,
}
