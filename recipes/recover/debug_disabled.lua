-- recipes/recover/debug_disabled.lua: a chip whose firmware turns the debug port off ("Unable
-- to get core ID"): connects under reset with a hardware reset (the probe holds NRST, so the
-- firmware never runs), a bounded number of times; then, with --set confirm=erase, erases the
-- flash so the firmware is gone. If nothing answers, says what to check about the reset pin.
local flow = require "sfi.flow"
local log = require "sfi.log"
local recover = require "sfi.recover"

return flow.recipe {
  name = "recover-debug-disabled", version = "1",
  description = "reach a chip whose firmware disables SWD (connect under reset), then erase it",
  params = recover.params(),
  run = function (r, a)
    local p = recover.connect(r, a)
    local info = r:step("identify", function () return p:info() end, { retry = 3 })
    r:step("halt", function () p:halt() end, { retry = 3 })
    local before = r:step("read state", function () return recover.state(p) end, { retry = 3 })
    recover.show(before)
    log.warn("Erasing the flash removes the firmware that disables the debug port (RDP regression)")
    recover.confirm(a, "erase", "erase removes the firmware from flash")
    r:step("erase", function () recover.regress(p, recover.policy(a.tries)) end)
    local after = r:step("verify", function () return recover.state(p) end, { retry = 3 })
    recover.show(after)
    recover.evidence(r, "recovery", info.uid, before.ob, after.ob)
    if not after.blank then error("the flash is not erased", 0) end
    log.info("Recovered: flash erased, a normal connect works again after the next reset")
  end,
}
