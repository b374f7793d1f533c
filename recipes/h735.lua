-- recipes/h735.lua: SFI install on STM32H735 (DEV_ID 0x483). This RSS checks integrity and
-- requires a hashed image (build it with --hash 1).
local flow = require "sfi.flow"
local sfi = require "sfi.sfi"

return flow.recipe {
  name = "h735",
  version = "1",
  description = "Secure Firmware Install on STM32H735 (hashed protocol-2 image required)",
  params = sfi.params { probe = "sim:stm32h735" },
  run = function (r, a)
    sfi.install(r, {
      dev_id = 0x483, image = a.image, probe = a.probe, licence = sfi.licence(a),
      connect = "hotplug", reconnect = sfi.strategy(a.strategy, a.tries),
      write_mode = { SECURITY = 1, ST_RAM_SIZE = 3 },
      verify = a.verify, allow_errata = a.allow_errata, station = a.station,
    })
  end,
}
