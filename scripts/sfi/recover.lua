--- sfi.recover: the pieces the recovery recipes (recipes/recover/) share: read a stuck chip's
-- state, say exactly what a regression will erase and keep, ask for confirmation before
-- anything irreversible, regress with the workarounds a stuck chip needs (a hung option-byte
-- launch ends with a hardware reset), and record the evidence (option bytes before and after)
-- in the journal.
local errors = require "sfi.error"
local flow = require "sfi.flow"
local journal = require "sfi.journal"
local log = require "sfi.log"
local ob = require "sfi.ob"

local M = {}

local TRIES <const> = 6 -- connect attempts when a recipe names none

--- M.params(extra) -> the recovery recipes' parameters: probe, confirm, tries (+ extra).
function M.params(extra)
  local p = {
    probe = { type = "uri", default = "sim:stm32h753", doc = "probe URI" },
    confirm = { type = "string?", doc = "the word the recipe asks for before anything irreversible" },
    tries = { type = "integer", default = TRIES, min = 1, max = 50, doc = "connect attempts" },
  }
  for k, v in pairs(extra or {}) do p[k] = v end
  return p
end

--- M.connect(r, a) -> probe: a normal connect, and if the chip stays silent, connects under
-- reset with a hardware reset (the probe holds NRST), a.tries times. Raises NO_DEVICE with the
-- hint about the reset pin when nothing answers.
function M.connect(r, a)
  return r:step("connect", function ()
    local ok, p = pcall(r.probe, r, { uri = a.probe, connect = "hotplug" })
    if ok then return p end
    if not errors.is(p, "NO_DEVICE") then error(p, 0) end
    log.warn("the chip does not answer a normal connect (%s): connecting under reset", p.msg)
    local okr, pr = pcall(r.probe, r, { uri = a.probe, connect = "under-reset" })
    if okr then return pr end
    local e = errors.new("NO_DEVICE", "recover.connect", "the chip answers no connect, not even " ..
      "under reset", tostring(pr), 0)
    e.hint = "the probe must drive the chip's NRST pin for a connect under reset: check that the " ..
      "probe's reset line is wired to NRST, then power-cycle the board and run again"
    error(e, 0)
  end, { retry = { tries = a.tries, on = { "NO_DEVICE", "IO", "TIMEOUT" } } })
end

--- M.state(p) -> {ob = values, prg = values, areas = {...}, blank = bool, rdp}: read only.
function M.state(p)
  local pack = p:device_pack()
  local v, prg = ob.read(p), ob.read_prg(p)
  local st = { ob = v, prg = prg, rdp = v.RDP, areas = {} }
  for bank = 1, #pack.memory.flash do
    for _, k in ipairs { { "PROT_AREA", "DMEP", "PCROP area" }, { "SEC_AREA", "DMES", "secure area" } } do
      local s, e = v[k[1] .. "_START" .. bank], v[k[1] .. "_END" .. bank]
      if s and e and s <= e then
        st.areas[#st.areas + 1] = { what = k[3], bank = bank, start = s, stop = e,
          erased = v[k[2] .. bank] == 1 }
      end
    end
  end
  if v.RDP == 0xAA then
    local f = pack.memory.flash[1]
    st.blank = not p:read(f.start, 4096):find("[^\xFF]")
  end
  return st
end

--- M.show(st): logs the state: RDP, protected areas and what a regression does to them.
function M.show(st)
  log.info("RDP         : 0x%02X (%s)", st.rdp, st.rdp == 0xAA and "level 0" or
    st.rdp == 0xCC and "level 2, final" or "level 1")
  for _, a in ipairs(st.areas) do
    log.info("%-11s : bank %d 0x%03X..0x%03X, %s by an RDP regression", a.what, a.bank, a.start,
      a.stop, a.erased and "ERASED and removed" or "KEPT (DMEx = 0)")
  end
  if st.blank ~= nil then log.info("Flash       : %s", st.blank and "erased" or "programmed") end
end

--- M.confirm(a, word, what): raises USAGE (exit 2, nothing changed) unless a.confirm == word.
function M.confirm(a, word, what)
  if a.confirm ~= word then
    errors.raise("USAGE", nil, string.format("this %s: run again with --set confirm=%s", what, word))
  end
end

--- M.policy([tries]) -> the reconnect policy a stuck chip needs: connect under reset with a
-- hardware reset (the probe holds NRST, so the firmware never runs), 100 ms apart.
function M.policy(tries)
  return flow.fixed { tries = tries or TRIES, delay_ms = 100, connect_mode = "under-reset",
                      reset_kind = "hw" }
end

-- Programs option bytes; a launch that hangs (OPT_BUSY stays set) is ended with a hardware
-- reset and tried once more.
local function program(p, set, pol)
  local ok, err = pcall(ob.program, p, set)
  if ok then return end
  if not errors.is(err, "TIMEOUT") then error(err, 0) end
  log.warn("the option-byte launch hung (OPT_BUSY stays set): hardware reset, then again")
  flow.try(p.reset, p, "hw")
  flow.reconnect(p, pol or M.policy())
  ob.program(p, set)
end

--- M.regress(p, [pol]): RDP level 1 then back to 0 (pol: the reconnect policy, default
-- M.policy()): erases the user flash, the continuation token, and the PCROP / secure areas
-- whose DMEP / DMES is 1. Raises the probe's errors.
function M.regress(p, pol)
  local v = ob.read(p)
  if v.RDP == 0xAA then program(p, { RDP = 0xBB }, pol) end
  log.info("Waiting for end of regression...")
  program(p, { RDP = 0xAA }, pol)
end

--- M.evidence(r, a, kind, before, after): the option bytes before and after into the journal.
function M.evidence(r, kind, uid, before, after)
  local function words(v)
    local t = {}
    for k, x in pairs(v) do t[#t + 1] = string.format("%s=0x%X", k, x) end
    table.sort(t)
    return table.concat(t, " ")
  end
  journal.note { kind = kind, uid = uid, recipe = r.recipe.name,
    detail = { before = words(before), after = after and words(after) or "unchanged" } }
end

return M
