-- recipes/examples/h753_serial_label.lua: a product SKU on STM32H753 that adds two steps to
-- the standard install: a serial number derived from the chip UID (recorded in the journal's
-- licence row and the result), and a label file for the line's printer after a good install.
local flow = require "sfi.flow"
local log = require "sfi.log"
local sfi = require "sfi.sfi"
local util = require "sfi.util"

local params = sfi.params { probe = "sim:stm32h753" }
params.prefix = { type = "string", default = "ACME-R3", doc = "serial number prefix" }
params.label_dir = { type = "path?", doc = "directory for one label file per device" }

return flow.recipe {
  name = "acme-r3-h753", version = "1",
  description = "ACME rev 3 (STM32H753): SFI install, serial number from the UID, label file",
  params = params,
  run = function (r, a)
    return sfi.install(r, sfi.options(a, {
      device = "stm32h753", write_mode = { SECURITY = 1, ST_RAM_SIZE = 3, BCM7 = 1 },
    }), function (pl)
      pl:insert_after("identify", { name = "serial number", needs = { "info" }, provides = { "serial" },
        doc = "serial = prefix-UID (journaled with the licence)",
        run = function (c)
          c.serial = a.prefix .. "-" .. c.info.uid
          c:field("serial", c.serial)
          log.info("Serial number : %s", c.serial)
        end })
      pl:insert_after("final state", { name = "label", needs = { "serial" }, optional = true,
        doc = "write the device label for the printer",
        run = function (c)
          if not a.label_dir then return end
          util.write_file(a.label_dir .. "/" .. c.serial .. ".txt", string.format(
            "SERIAL %s\nUID %s\nFW %s\nRESULT installed\n", c.serial, c.info.uid, c.o.image))
        end })
    end)
  end,
}
