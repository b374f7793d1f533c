-- recipes/demo.lua: a minimal recipe showing steps, parameters and the event log.
local flow = require "sfi.flow"
local log = require "sfi.log"

return flow.recipe {
  name = "demo",
  version = "1",
  description = "prints a greeting in two steps",
  params = { who = { type = "string", default = "world", doc = "whom to greet" } },
  run = function (r, args)
    r:step("greet", function () log.info("hello, %s", args.who) end)
    r:step("done", function () log.info("bye") end)
  end,
}
