-- preflight_cli_test.lua: `sfirun preflight`: every check listed, reads only (the chip's state
-- file is unchanged), exit 0 when nothing fails and 1 when something does, --json per check.
local T = require "sfi.test"
local gen = require "fwgen"

local SFIRUN = os.getenv("SFIRUN")
local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local dir = T.tmpdir()
T.writefile(dir .. "/k.bin", ("k"):rep(16))
T.writefile(dir .. "/n.bin", ("n"):rep(12))
T.writefile(dir .. "/fw.bin", gen.bytes(60000, 3))
T.writefile(dir .. "/ob.csv", gen.OB_CSV)

local function build(name, extra)
  local code, out = T.sh(string.format("cd %s && %s image build --devid 0x450 -k k.bin -n n.bin -ob ob.csv " ..
    "-fir fw.bin 0x08000000 %s -o %s", q(dir), SFIRUN, extra or "", name))
  assert(code == 0, out)
  return dir .. "/" .. name
end

local plain, hashed = build("plain.sfi"), build("hashed.sfi", "--hash 1")

local function preflight(args)
  return T.sh(string.format("SFIRUN_STATE_DIR=%s %s preflight %s", q(dir .. "/state"), SFIRUN, args))
end

T.case("a blank chip and a good image: every check listed, exit 0, nothing written", function ()
  local state = dir .. "/chip.state"
  local code, out = preflight(string.format("recipes/h753.lua --probe 'sim:stm32h753?state=%s' " ..
    "--set image=%s --set key=%s --set nonce=%s", state, plain, dir .. "/k.bin", dir .. "/n.bin"))
  T.eq(code, 0, out)
  for _, name in ipairs { "rdp", "security", "protected areas", "flash size", "flash blank",
      "write protection", "token page", "bootloader", "image format", "area types", "ram size",
      "option-byte area", "target voltage" } do
    assert(out:find(name, 1, true), "check '" .. name .. "' listed:\n" .. out)
  end
  assert(out:find("0 failed", 1, true) and out:find("UNKNOWN target voltage", 1, true), out)
  assert(not out:find("Activating security", 1, true), "nothing past preflight runs")
end)

T.case("without a recipe: the chip's own pack; a hashed image on H753 fails, fix named", function ()
  local code, out = preflight(string.format("--probe sim:stm32h753 --set image=%s", hashed))
  T.eq(code, 1, out)
  assert(out:find("FAIL    image format", 1, true) and out:find("rebuild with --hash 0", 1, true), out)
end)

T.case("--json: one check event per check with its status", function ()
  local code, out = preflight(string.format("--json --probe 'sim:stm32h753?ob=nWRP3:0&flash_kb=256' " ..
    "--set image=%s", plain))
  T.eq(code, 0, out) -- nWRP3 protects 0x08060000: not where this image lands
  local n = 0
  for line in out:gmatch("[^\n]+") do
    if line:find('"event":"check"', 1, true) then n = n + 1 end
  end
  T.eq(n, 13, "check events")
  code, out = preflight(string.format("--probe 'sim:stm32h753?ob=nWRP0:0' --set image=%s", plain))
  T.eq(code, 1, out)
  assert(out:find("FAIL    write protection", 1, true), out)
end)

T.case("an area across the bank 1 / bank 2 boundary lies in flash (H753's banks are contiguous)", function ()
  T.writefile(dir .. "/cross.bin", gen.bytes(64 * 1024, 9))
  local code, out = T.sh(string.format("cd %s && %s image build --devid 0x450 -k k.bin -n n.bin " ..
    "-ob ob.csv -fir cross.bin 0x080F8000 -o cross.sfi", q(dir), SFIRUN))
  assert(code == 0, out)
  code, out = preflight(string.format("--probe sim:stm32h753 --set image=%s/cross.sfi", dir))
  T.eq(code, 0, out)
  assert(out:find("PASS    flash size", 1, true), out)
  assert(not out:find("beyond the", 1, true), out)
  -- and past the end of the second bank preflight refuses it (built without --devid, so the
  -- image builder does not check flash first)
  code, out = T.sh(string.format("cd %s && %s image build -k k.bin -n n.bin " ..
    "-fir cross.bin 0x081F8000 -o over.sfi", q(dir), SFIRUN))
  assert(code == 0, out)
  code, out = preflight(string.format("--probe sim:stm32h753 --set image=%s/over.sfi", dir))
  T.eq(code, 1, out)
  assert(out:find("beyond the 2048 KB", 1, true), out)
end)
