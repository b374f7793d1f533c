-- recipes/recover/ob_modified.lua: option bytes an application changed (the PRG registers
-- differ from the CUR ones: written but never launched, or half done). Lists every difference;
-- --set confirm=discard writes PRG back to CUR, --set confirm=apply launches them as they are.
local errors = require "sfi.error"
local flow = require "sfi.flow"
local log = require "sfi.log"
local ob = require "sfi.ob"
local recover = require "sfi.recover"

return flow.recipe {
  name = "recover-ob-modified", version = "1",
  description = "option bytes modified by an application: discard or apply the pending values",
  params = recover.params(),
  run = function (r, a)
    local p = recover.connect(r, a)
    local info = r:step("identify", function () return p:info() end, { retry = 3 })
    local before = r:step("read state", function () return recover.state(p) end, { retry = 3 })
    local diff = {}
    for _, f in ipairs(ob.fields(p:device_pack())) do
      if before.ob[f.name] ~= before.prg[f.name] then
        diff[#diff + 1] = f.name
        log.info("%-16s CUR 0x%X, pending (PRG) 0x%X", f.name, before.ob[f.name], before.prg[f.name])
      end
    end
    if #diff == 0 then
      log.info("Option bytes consistent: nothing pending")
      return
    end
    if a.confirm ~= "discard" and a.confirm ~= "apply" then
      errors.raise("USAGE", nil, string.format("%d option byte(s) pending: run again with " ..
        "--set confirm=discard (keep CUR) or --set confirm=apply (launch them)", #diff))
    end
    r:step(a.confirm, function () ob.launch(p, a.confirm == "apply") end)
    local after = r:step("verify", function () return recover.state(p) end, { retry = 3 })
    recover.evidence(r, "recovery", info.uid, before.ob, after.ob)
    for _, name in ipairs(diff) do
      if after.ob[name] ~= after.prg[name] then error(name .. " still differs", 0) end
    end
    log.info("Recovered: %d option byte(s) %s", #diff, a.confirm == "apply" and "applied" or "discarded")
  end,
}
