-- recipe_stlink_test.lua: the full h753 recipe through sfirun's own stlink-tcp driver against
-- `sfirun sim-server` (the simulated STM32H753 behind the stlink-server protocol), with the
-- RSS going silent after each part: same result as on the in-process simulator.
local T = require "sfi.test"
local simserver = require "simserver"
local probe = require "sfi.probe"
local ob = require "sfi.ob"

local SFIRUN = assert(os.getenv("SFIRUN"))
local SRC = os.getenv("SFI_SOURCE_DIR") or "."

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

T.case("h753 recipe over stlink-tcp against sim-server", function ()
  local dir = T.tmpdir()
  local fw = require("fwgen").bytes(150000, 99)
  T.writefile(dir .. "/fw.bin", fw)
  T.writefile(dir .. "/key.bin", string.rep("\x42", 16))
  T.writefile(dir .. "/nonce.bin", string.rep("\x24", 12))
  local code, out = T.sh(string.format("%s image build --devid 0x450 --firmware %s 0x08000000 --key %s " ..
    "--nonce %s --ramsize 0x1E000 --hash 0 -o %s", SFIRUN, q(dir .. "/fw.bin"), q(dir .. "/key.bin"),
    q(dir .. "/nonce.bin"), q(dir .. "/fw.sfi")))
  assert(code == 0, out)
  local state = dir .. "/chip.state"
  local srv = simserver.start { dir = dir, target = "stm32h753",
    set = { state = state, unreachable_after_rss = 2 } }
  local ok, err = pcall(function ()
    code, out = T.sh(string.format("SFIRUN_STATE_DIR=%s %s %s/recipes/h753.lua --set image=%s --set key=%s " ..
      "--set nonce=%s --probe stlink-tcp:%d --set verify=%s --journal %s", q(dir .. "/state"), SFIRUN, SRC,
      q(dir .. "/fw.sfi"), q(dir .. "/key.bin"), q(dir .. "/nonce.bin"), srv.port, q(dir .. "/fw.bin"),
      q(dir .. "/journal.sqlite")))
  end)
  srv:stop()
  assert(ok, err)
  T.eq(code, 0, "exit code\n" .. out)
  for _, s in ipairs { "Starting SFI part 2", "RSS complete Value = 0x0", "reconnect 1/6 failed",
                       "Flash matches" } do
    assert(out:find(s, 1, true), "missing '" .. s .. "' in\n" .. out)
  end
  -- the chip the server saved holds the firmware and SECURITY=1
  local p <close> = probe.open { uri = "sim:stm32h753?rss=off&state=" .. state }
  T.eq(ob.read(p).SECURITY, 1)
  assert(p:read(0x08000000, #fw) == fw, "flash does not hold the firmware")
end)
