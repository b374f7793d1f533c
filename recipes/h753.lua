-- recipes/h753.lua: SFI install on STM32H753 (DEV_ID 0x450, single core).
-- Protocol-2 image WITHOUT hash (this RSS rejects hashed images), hotplug connect, and after
-- each RSS run a reconnect that backs off and alternates connect modes and reset kinds.
local flow = require "sfi.flow"
local sfi = require "sfi.sfi"

return flow.recipe {
  name = "h753",
  version = "2",
  description = "Secure Firmware Install on STM32H753 (protocol 2, hash off, hotplug)",
  params = sfi.params { probe = "sim:stm32h753" },
  run = function (r, a)
    return sfi.install(r, sfi.options(a, {
      device = "stm32h753", connect = "hotplug",
      write_mode = { SECURITY = 1, ST_RAM_SIZE = 3, BCM7 = 1 },
    }))
  end,
}
