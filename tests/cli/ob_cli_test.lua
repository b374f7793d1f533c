-- ob_cli_test.lua: `sfirun ob` and `sfirun probes` exit codes and messages.
local T = require "sfi.test"

local SFIRUN = os.getenv("SFIRUN")

local function run(args)
  return T.sh(SFIRUN .. " " .. args .. " 2>&1")
end

T.case("ob read prints ST's listing", function ()
  local code, out = run("ob read --probe sim:stm32h753")
  T.eq(code, 0, "exit code")
  assert(out:find("OPTION BYTES BANK: 0", 1, true), out)
  assert(out:find("RDP%s+: 0xAA %(Level 0, no protection%)"), out)
end)

T.case("ob write persists through the state file; unchanged warns", function ()
  local dir = T.tmpdir()
  local uri = "'sim:stm32h753?state=" .. dir .. "/chip.state'"
  local code, out = run("ob write --probe " .. uri .. " SECURITY=1 ST_RAM_SIZE=3")
  T.eq(code, 0, "write: " .. out)
  code, out = run("ob write --probe " .. uri .. " SECURITY=1")
  T.eq(code, 0, "rewrite")
  assert(out:find("Option Byte: SECURITY, value: 0x1, was not modified.", 1, true), out)
  assert(out:find("Option Bytes are unchanged, Data won't be downloaded", 1, true), out)
  code, out = run("ob read --probe " .. uri .. " --json")
  T.eq(code, 0, "read json")
  assert(out:find('"SECURITY":1', 1, true), out)
  assert(out:find('"ST_RAM_SIZE":3', 1, true), out)
end)

T.case("bad input exits 2 with the field named", function ()
  local code, out = run("ob write --probe sim:stm32h753 FOO=1")
  T.eq(code, 2, "unknown field")
  assert(out:find("FOO"), out)
  code, out = run("ob write --probe sim:stm32h753 BOR_LEV=9")
  T.eq(code, 2, "out of range")
  assert(out:find("BOR_LEV"), out)
  code, out = run("ob write --probe sim:stm32h753 RDP=0xCC")
  T.eq(code, 2, "RDP 2 without force")
  assert(out:find("irreversible"), out)
  code = run("ob write --probe sim:stm32h753")
  T.eq(code, 2, "nothing to write")
  code = run("ob read")
  T.eq(code, 2, "no probe")
end)

T.case("RDP 2 with --force-irreversible locks the chip for good", function ()
  local dir = T.tmpdir()
  local uri = "'sim:stm32h753?state=" .. dir .. "/chip.state'"
  local code, out = run("ob write --probe " .. uri .. " RDP=0xCC --force-irreversible")
  T.eq(code, 0, "write: " .. out)
  code, out = run("ob read --probe " .. uri)
  T.eq(code, 1, "debug port silent")
  assert(out:find("NO_DEVICE") and out:find("level 2"), out)
end)

T.case("probes lists the simulated parts", function ()
  local code, out = run("probes")
  T.eq(code, 0, "exit")
  for _, part in ipairs { "sim:stm32h753", "sim:stm32h7b3", "sim:stm32h735" } do
    assert(out:find(part, 1, true), out)
  end
end)
