-- recipes/examples/h753_post_check.lua: STM32H753 with a check after the install: the
-- installed firmware's vector table must be plausible (initial stack pointer in RAM, reset
-- handler a Thumb address inside flash) before the device leaves the station.
local device = require "sfi.device"
local errors = require "sfi.error"
local flow = require "sfi.flow"
local sfi = require "sfi.sfi"
local log = require "sfi.log"

return flow.recipe {
  name = "h753-post-check", version = "1",
  description = "SFI install on STM32H753, then a vector-table check of the installed firmware",
  params = sfi.params { probe = "sim:stm32h753" },
  run = function (r, a)
    return sfi.install(r, sfi.options(a, {
      device = "stm32h753", write_mode = { SECURITY = 1, ST_RAM_SIZE = 3, BCM7 = 1 },
    }), function (pl)
      pl:insert_after("final state", { name = "vector table", needs = { "probe", "pack" },
        doc = "initial SP in RAM, reset vector a Thumb address in flash",
        run = function (c)
          local base = c.pack.memory.flash[1].start -- BOOT_CM7_ADD0 of a blank chip
          local sp, pc = c.p:read32(base), c.p:read32(base + 4)
          if not (device.region(c.pack, sp - 4) == "ram" and device.region(c.pack, pc - 1) == "flash"
              and pc & 1 == 1) then
            errors.raise("TARGET", "check.vectors", string.format(
              "implausible vector table: SP 0x%08X, reset 0x%08X", sp, pc))
          end
          log.info("Vector table OK: SP 0x%08X, reset handler 0x%08X", sp, pc)
        end })
    end)
  end,
}
