-- recipes/recover/unfinished_sfi.lua: a chip where an SFI install stopped between parts (a
-- continuation token in flash, SECURITY = 1): shows how far it got, and with
-- --set confirm=erase aborts it as ST's tool does (RDP regression: flash and token erased).
local flow = require "sfi.flow"
local log = require "sfi.log"
local recover = require "sfi.recover"

return flow.recipe {
  name = "recover-unfinished-sfi", version = "1",
  description = "abort an unfinished SFI install and clean its continuation token",
  params = recover.params(),
  run = function (r, a)
    local p = recover.connect(r, a)
    local info = r:step("identify", function () return p:info() end, { retry = 3 })
    local pack = p:device_pack()
    local before, records = r:step("read state", function ()
      local st = recover.state(p)
      local raw = p:read(pack.sfi.token, 32 * pack.rss.token_slots)
      local n = 0
      while n < pack.rss.token_slots and raw:sub(32 * n + 1, 32 * n + 4) ~= "\xFF\xFF\xFF\xFF" do n = n + 1 end
      return st, { n = n, last = n > 0 and raw:sub(32 * (n - 1) + 1, 32 * n) or nil }
    end, { retry = 3 })
    recover.show(before)
    if records.n == 0 then
      log.info("No continuation token at 0x%08X: no unfinished install", pack.sfi.token)
      return
    end
    local _, state, _, part, nxt = string.unpack("<I4BBI2I2", records.last)
    log.info("Continuation token: %d record(s); last: part %d %s, next area %d", records.n, part,
      state == 2 and "done" or "in progress", nxt)
    log.warn("Aborting ERASES the user flash and the token (RDP regression)")
    recover.confirm(a, "erase", "abort erases the chip's flash")
    r:step("abort", function () recover.regress(p) end)
    local after = r:step("verify", function () return recover.state(p) end, { retry = 3 })
    recover.show(after)
    recover.evidence(r, "recovery", info.uid, before.ob, after.ob)
    if not p:read(pack.sfi.token, 32):find("^\xFF+$") then error("the token page is not erased", 0) end
    log.info("Recovered: the unfinished install is gone")
  end,
}
