-- unplug_before_last_reconnect.lua (tests/cli/log_order_test.lua): the h753 install, and the
-- stlink-server the probe talks to (pid in SIM_SERVER_PID) is stopped once the last part's RSS
-- result has been read, before the reconnect: the chip stops answering, as on ST's dev kit.
local flow = require "sfi.flow"
local sfi = require "sfi.sfi"

return flow.recipe {
  name = "h753-unplugged", version = "1",
  description = "h753; the stlink-server goes away before the last reconnect",
  params = sfi.params { probe = "sim:stm32h753" },
  run = function (r, a)
    return sfi.install(r, sfi.options(a, {
      device = "stm32h753", write_mode = { SECURITY = 1, ST_RAM_SIZE = 3, BCM7 = 1 },
    }), function (pl)
      pl:wrap("reconnect", function (c, inner)
        if c.part == #c.parts then
          os.execute("kill -INT " .. assert(os.getenv("SIM_SERVER_PID")) .. "; sleep 0.3")
        end
        return inner(c)
      end)
    end)
  end,
}
