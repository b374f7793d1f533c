-- recipes/examples/h753_own_reconnect.lua: STM32H753 on a board whose reset circuit needs
-- the probe to hold NRST: after each RSS run wait for the RSS, then connect under reset with
-- a hardware reset, ten times, 300 ms apart. The recipe replaces the "reconnect" step.
local flow = require "sfi.flow"
local sfi = require "sfi.sfi"
local log = require "sfi.log"

local UNDER_RESET = flow.fixed { tries = 10, delay_ms = 300, first_ms = 200,
  connect_mode = "under-reset", reset_kind = "hw" }

return flow.recipe {
  name = "h753-under-reset", version = "1",
  description = "SFI install on STM32H753; after RSS: connect under reset, hardware reset",
  params = sfi.params { probe = "sim:stm32h753" },
  run = function (r, a)
    return sfi.install(r, sfi.options(a, {
      device = "stm32h753", write_mode = { SECURITY = 1, ST_RAM_SIZE = 3, BCM7 = 1 },
    }), function (pl)
      pl:replace("reconnect", function (c)
        log.info("Reconnecting under reset...")
        flow.reconnect(c.p, UNDER_RESET)
      end)
    end)
  end,
}
