-- tests/data/bundle/ok.lua: a bundled recipe using a bundled module, a bundled data file
-- and the one input its manifest permits (the file named by the 'image' parameter).
local flow = require "sfi.flow"
local log = require "sfi.log"
local util = require "acme.util"

return flow.recipe {
  name = "bundle-ok",
  version = "2.1",
  params = { image = "path" },
  permissions = { "read:image" },
  run = function (r, args)
    r:step("inputs", function ()
      local f = assert(io.open(args.image, "rb"))
      local img = f:read("a")
      f:close()
      local note = io.open("data/note.txt"):read("l")
      r:fact("image_bytes", #img)
      log.info("%s image %d bytes, note '%s'", util.shout("read"), #img, note)
    end)
  end,
}
