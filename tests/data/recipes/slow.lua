-- a recipe that holds a resource and waits, to test Ctrl-C: the resource's close writes a marker
local flow = require "sfi.flow"
local log = require "sfi.log"
return flow.recipe {
  name = "slow",
  params = { marker = "path" },
  run = function (r, args)
    r:own { close = function ()
      local f = assert(io.open(args.marker, "w")); f:write("closed\n"); f:close()
    end }
    r:step("wait", function ()
      log.info("waiting")
      for _ = 1, 400 do flow.sleep(25) end
    end)
  end,
}
