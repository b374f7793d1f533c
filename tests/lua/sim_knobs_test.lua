-- sim_knobs_test.lua: simulator knobs are checked against the part before a chip is made: a
-- bare "sim:", flash sizes the part cannot have, and state files that could never be saved are
-- usage errors naming the knob; a corrupt state file's message is readable.
local T = require "sfi.test"
local probe = require "sfi.probe"
local log = require "sfi.log"

log.configure { level = "error" }
local dir = T.tmpdir()

local function usage(uri, text)
  local ok, err = pcall(probe.open, uri)
  assert(not ok, uri .. " was accepted")
  T.eq(err.code, "USAGE", tostring(err))
  assert(tostring(err):find(text, 1, true), tostring(err))
end

T.case("sim: needs a part after the colon; plain sim is the default part", function ()
  usage("sim:", "a part after 'sim:'")
  usage("sim:?bl=0x91", "a part after 'sim:'")
  local p <close> = probe.open("sim?bl=0x91")
  T.eq(p:info().bl, 0x91)
end)

T.case("flash_kb within what the part can have, and the pack left alone", function ()
  usage("sim:stm32h753?flash_kb=0", "must be 1..2048")
  usage("sim:stm32h753?flash_kb=99999999", "must be 1..2048")
  usage("sim:stm32h7b3?flash_kb=4096", "must be 1..2048")
  do
    local p <close> = probe.open("sim:stm32h753?flash_kb=1024")
    T.eq(p:info().flash_kb, 1024)
  end
  local p <close> = probe.open("sim:stm32h753")
  T.eq(p:info().flash_kb, 2048, "a knob on one probe does not change the pack")
end)

T.case("state= must be a file sfirun can write, checked before the chip is made", function ()
  usage("sim:stm32h753?state=/nonexistent/chip.state", "directory '/nonexistent' does not exist")
  usage("sim:stm32h753?state=" .. dir, "is a directory")
  usage("sim:stm32h753?state=", "needs a file name")
  os.execute("mkdir -p " .. dir .. "/ro && chmod 0500 " .. dir .. "/ro")
  local _, uid = T.sh("id -u")
  if not uid:match("^0%s*$") then -- root writes anywhere: nothing to check then
    usage("sim:stm32h753?state=" .. dir .. "/ro/chip.state", "cannot write")
  end
  local _, ls = T.sh("ls -a " .. dir)
  assert(not ls:find("check"), "probe file left behind: " .. ls)
end)

T.case("a corrupt state file: FORMAT with a readable message", function ()
  T.writefile(dir .. "/bad.state", "not a state file at all, just text")
  local ok, err = pcall(probe.open, "sim:stm32h753?state=" .. dir .. "/bad.state")
  assert(not ok)
  T.eq(err.code, "FORMAT")
  assert(tostring(err):find(dir .. "/bad.state: sim state: not a simulator state file (bad magic)",
    1, true), tostring(err))
end)
