-- tests/data/recipes/stop_after_part1.lua: the h753 install of a station that dies between
-- parts (the cable is pulled when part 2 should start, and nothing aborts): leaves a chip with
-- an unfinished install, for the recovery tests.
local flow = require "sfi.flow"
local errors = require "sfi.error"
local sfi = require "sfi.sfi"

return flow.recipe {
  name = "stop-after-part1", version = "1",
  params = sfi.params { probe = "sim:stm32h753" },
  run = function (r, a)
    return sfi.install(r, sfi.options(a, {
      device = "stm32h753", write_mode = { SECURITY = 1, ST_RAM_SIZE = 3, BCM7 = 1 },
    }), function (pl)
      pl:wrap("load part", function (c, inner)
        if c.part == 2 then errors.raise("NO_DEVICE", "test", "the cable was pulled") end
        return inner(c)
      end)
      pl:replace("abort", function () end) -- the station died: nobody aborts
    end)
  end,
}
