-- a recipe whose second step fails the way a chip does, or with a bug when asked to
local flow = require "sfi.flow"
local errors = require "sfi.error"
return flow.recipe {
  name = "fails",
  params = { mode = { type = "string", default = "target", choices = { "target", "bug", "ok" } },
             count = { type = "integer", default = 1 } },
  run = function (r, args)
    r:step("first", function () end)
    r:step("rss", function ()
      if args.mode == "target" then errors.raise("TARGET", "rss", "RSS complete value 0xCC000007") end
      if args.mode == "bug" then local t = nil; return t.field end
    end)
  end,
}
