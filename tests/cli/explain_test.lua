-- explain_test.lua: `sfirun explain` on the two public user reports (tests/data/seeds) names the
-- causes their threads found; on sfirun's own log of a failed install it reads the facts; bad
-- input exits 2.
local T = require "sfi.test"

local SFIRUN = os.getenv("SFIRUN")
local SEEDS = (os.getenv("SFI_SOURCE_DIR") or ".") .. "/tests/data/seeds/"

T.case("the H753 report: hash not supported, the RSS value, the silent debug port", function ()
  local code, out = T.sh(SFIRUN .. " explain " .. SEEDS .. "forum-h753-sfi-hash.txt")
  T.eq(code, 0, out)
  for _, w in ipairs { "DEV_ID 0x450", "bootloader   0x90", "0xCC000007, 0x80",
      "Likely cause: the image carries area hashes", "--hash 0",
      "RSS refused the image or its licence", "debug port stayed silent" } do
    assert(out:find(w, 1, true), "missing '" .. w .. "' in\n" .. out)
  end
end)

T.case("the H7B3 report: the bootloader 0x91 erratum, first", function ()
  local code, out = T.sh(SFIRUN .. " explain " .. SEEDS .. "forum-h7ab-sfi-license.txt --json")
  T.eq(code, 0, out)
  local first
  for line in out:gmatch("[^\n]+") do
    if not first and line:find('"event":"finding"', 1, true) then first = line end
  end
  assert(first and first:find('"id":"h7ab-erratum"', 1, true), "first finding is the erratum:\n" .. out)
  assert(out:find('"bl":145', 1, true), out)
end)

T.case("not a log: exit 2 naming the file; no file: exit 2", function ()
  local dir = T.tmpdir()
  T.writefile(dir .. "/x.txt", "hello\nworld\n")
  local code, out = T.sh(SFIRUN .. " explain " .. dir .. "/x.txt")
  T.eq(code, 2, out)
  assert(out:find("shows no SFI install", 1, true), out)
  code = T.sh(SFIRUN .. " explain " .. dir .. "/none.txt")
  T.eq(code, 2)
  code = T.sh(SFIRUN .. " explain /dev/zero")
  T.eq(code, 2)
end)
