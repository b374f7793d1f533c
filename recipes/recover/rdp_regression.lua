-- recipes/recover/rdp_regression.lua: a chip stuck at RDP level 1 (or with PCROP / secure
-- areas, or programmed flash) back to a blank level-0 chip an SFI install can start on. Reads
-- the state first, says exactly what the regression erases and keeps, and changes nothing
-- without --set confirm=erase. The option bytes before and after go to the journal.
local flow = require "sfi.flow"
local log = require "sfi.log"
local recover = require "sfi.recover"

return flow.recipe {
  name = "recover-rdp-regression", version = "1",
  description = "RDP 1 -> 0 regression: erases the user flash and the areas whose DMEP/DMES is 1",
  params = recover.params(),
  run = function (r, a)
    local p = recover.connect(r, a)
    local info = r:step("identify", function () return p:info() end, { retry = 3 })
    local before = r:step("read state", function () return recover.state(p) end, { retry = 3 })
    recover.show(before)
    if before.rdp == 0xCC then
      log.error("RDP level 2 is final: nothing can regress this chip")
      return
    end
    if before.rdp == 0xAA and #before.areas == 0 and before.blank then
      log.info("Nothing to recover: RDP level 0, no protected area, flash erased")
      return
    end
    log.warn("The regression ERASES the whole user flash, the continuation token and every area " ..
      "listed as ERASED above; areas listed as KEPT stay")
    recover.confirm(a, "erase", "regression erases the chip's flash")
    r:step("regress", function () recover.regress(p, recover.policy(a.tries)) end)
    local after = r:step("verify", function () return recover.state(p) end, { retry = 3 })
    recover.show(after)
    recover.evidence(r, "recovery", info.uid, before.ob, after.ob)
    r:fact("rdp", after.rdp)
    if after.rdp ~= 0xAA then error("regression did not reach level 0", 0) end
    log.info("Recovered: RDP level 0, %d protected area(s) left", #after.areas)
  end,
}
