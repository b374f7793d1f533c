-- sim_listing_cli_test.lua: `sfirun ob read` lists the fields ST lists for the part: the
-- single-core H753 has no BCM4 line (ST's listing in the user report of an H753 SFI install
-- shows BCM7 only), in text and JSON; the dual-core H757 has both.
local T = require "sfi.test"
local probe = require "sfi.probe"
local ob = require "sfi.ob"

local SFIRUN = os.getenv("SFIRUN")

local function run(args)
  return T.sh(SFIRUN .. " " .. args .. " 2>&1")
end

T.case("H753: no BCM4 in ob read, text or JSON", function ()
  local code, out = run("ob read --probe sim:stm32h753")
  T.eq(code, 0, out)
  assert(out:find("BCM7%s+: 0x1 %(CM7 boot enabled%)"), out)
  assert(not out:find("BCM4", 1, true), out)
  code, out = run("ob read --probe sim:stm32h753 --json")
  T.eq(code, 0, out)
  assert(out:find('"BCM7":1', 1, true), out)
  assert(not out:find("BCM4", 1, true), out)
end)

T.case("H757: BCM4 and BCM7 in ob read, text and JSON", function ()
  local code, out = run("ob read --probe sim:stm32h757")
  T.eq(code, 0, out)
  assert(out:find("BCM4%s+: 0x1 %(CM4 boot enabled%)"), out)
  code, out = run("ob read --probe sim:stm32h757 --json")
  T.eq(code, 0, out)
  assert(out:find('"BCM4":1', 1, true), out)
end)

T.case("the install's listing (ob.format of the probe) follows the part too", function ()
  local p <close> = probe.open("sim:stm32h753")
  assert(not ob.format(p):find("BCM4", 1, true))
  local q <close> = probe.open("sim:stm32h757")
  assert(ob.format(q):find("BCM4", 1, true))
end)
