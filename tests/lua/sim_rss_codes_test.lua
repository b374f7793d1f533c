-- sim_rss_codes_test.lua: the RSS result codes of the H7 packs: each is either observed (with
-- where it was seen) or the simulator's model code (no `observed`), and the failure decoder never presents a
-- model code as ST's. 0x16 (an H7B0 user's log) is known as observed.
local T = require "sfi.test"
local diagnose = require "sfi.diagnose"

local probe = require "sfi.probe"

local packs = {}
for _, part in ipairs { "stm32h753", "stm32h7b3", "stm32h735" } do
  local p <close> = probe.open("sim:" .. part)
  packs[#packs + 1] = p:device_pack()
end

T.case("every code has a meaning; an observed one names where it was seen", function ()
  for _, pack in ipairs(packs) do
    for name in pairs(pack.rss.codes) do
      local m = assert(pack.rss.meaning[name], name .. ": no meaning")
      assert(type(m.text) == "string" and m.text:find("%S"), name .. ": no text")
      assert(m.observed == nil or (type(m.observed) == "string" and m.observed:find("%S")), name)
    end
  end
end)

T.case("the decoder: public values are observed, the simulator's own are model", function ()
  local pack = packs[2]
  local name, _, origin = diagnose.code_text(pack, 0x16)
  T.eq(name, "license_h7b0")
  T.eq(origin, "observed")
  for _, v in ipairs { 0xCC000007, 0x80, 0x0 } do
    T.eq(select(3, diagnose.code_text(pack, v)), "observed", string.format("0x%X", v))
  end
  for _, v in ipairs { 0xCC000001, 0xCC000002, 0xCC000003, 0xCC000004, 0xCC000005, 0xCC000006,
                       0xCC000008 } do
    T.eq(select(3, diagnose.code_text(pack, v)), "model", string.format("0x%X", v))
  end
  T.eq(select(3, diagnose.code_text(pack, 0x12345678)), "unknown")
end)
