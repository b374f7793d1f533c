-- ob_test.lua: sfi.ob on the simulator: decoded listings match ST's wording in the user
-- reports; programming runs the real register sequence; RDP and protections.
local T = require "sfi.test"
local probe = require "sfi.probe"
local ob = require "sfi.ob"

local function norm(s) return (s:gsub("%s+", " ")) end

local function has(listing, line)
  assert(norm(listing):find(norm(line), 1, true), "listing lacks: " .. line .. "\n" .. listing)
end

T.case("H753 listing carries the report's names and wording", function ()
  local p <close> = probe.open { uri = "sim:stm32h753" }
  ob.program(p, { BOR_LEV = 3, SECURITY = 1, ST_RAM_SIZE = 3 })
  local s = ob.format(p)
  for _, line in ipairs {
    "OPTION BYTES BANK: 0", "Read Out Protection:", "RDP : 0xAA (Level 0, no protection)",
    "BOR_LEV : 0x3 (reset level is set to VBOR3)",
    "IWDG1_SW : 0x1 (Independent watchdog is controlled by software)",
    "NRST_STOP_D1 : 0x1 (STOP mode on Domain 1 is entering without reset)",
    "NRST_STBY_D1 : 0x1 (STANDBY mode on Domain 1 is entering without reset)",
    "FZ_IWDG_STOP : 0x1 (Independent watchdog is running in STOP mode)",
    "FZ_IWDG_SDBY : 0x1 (Independent watchdog is running in STANDBY mode)",
    "SECURITY : 0x1 (Security feature enabled)", "BCM7 : 0x1 (CM7 boot enabled)",
    "NRST_STOP_D2 : 0x1 (STOP mode on Domain 2 is entering without reset)",
    "SWAP_BANK : 0x0 (after boot loading, no swap for user sectors)",
    "IO_HSLV : 0x0 (Product working in the full voltage range, I/O speed optimization at low-voltage disabled)",
    "Boot address Option Bytes:", "BOOT_CM7_ADD0: 0x800 (0x8000000)",
    "BOOT_CM7_ADD1: 0x1FF0 (0x1FF00000)", "PROT_AREA_START1: 0xFF (0x800FF00)",
    "PROT_AREA_END1: 0x0 (0x80000FF)",
    "DMEP1 : 0x0 (Flash Bank 1 PCROP zone is kept when RDP level regression (change from level 1 to 0) occurs)",
    "PROT_AREA_START2: 0xFF (0x810FF00)", "SEC_AREA_END2: 0x0 (0x81000FF)",
    "DMES2 : 0x0 (Flash Bank 2 secure area is kept when RDP level regression (change from level 1 to 0) occurs)",
    "DTCM RAM Protection:", "ST_RAM_SIZE : 0x3 (16 KB)", "Write Protection:",
    "nWRP0 : 0x1 (Write protection not active on this sector)",
    "nWRP15 : 0x1 (Write protection not active on this sector)",
  } do has(s, line) end
  assert(not s:find("nWRP16"), "H753 has 16 nWRP fields")
end)

T.case("H7B3 listing carries the H7A/B names", function ()
  local p <close> = probe.open { uri = "sim:stm32h7b3?bl=0x91" }
  ob.program(p, { SECURITY = 1, ST_RAM_SIZE = 3 })
  local s = ob.format(p)
  for _, line in ipairs {
    "RDP : 0xAA (Level 0, no protection)", "BOR_LEV : 0x0 (reset level OFF)",
    "NRST_STOP : 0x1 (STOP mode on Domain 1 is entering without reset)",
    "VDDMMC_HSLV : 0x0 (I/O speed optimization at low-voltage disabled)",
    "IWDG_FZ_STOP : 0x1 (Independent watchdog is running in STOP mode)",
    "SECURITY : 0x1 (Security feature enabled)",
    "VDDIO_HSLV : 0x0 (Product working in the full voltage range,I/O speed optimization at low-voltage disabled)",
    "SWAP_BANK_OPT: 0x0 (after boot loading, no swap for user sectors)",
    "BOOT_CM7_ADD0: 0x800 (0x8000000)", "nWRP0 : 0x1 (Write protection not active)",
    "nWRP63 : 0x1 (Write protection not active)",
  } do has(s, line) end
  assert(not s:find("NRST_STOP_D1"), "no D1 names on H7A/B")
end)

T.case("unchanged fields warn like ST's tool and write nothing", function ()
  local p <close> = probe.open { uri = "sim:stm32h753" }
  T.eq(ob.program(p, { SECURITY = 1 }), true, "first write changes")
  local before = p:sim_ops()
  T.eq(ob.program(p, { SECURITY = 1 }), false, "second write is a no-op")
  assert(p:sim_ops() - before <= 2, "only the window was read")
end)

T.case("PCROP area and write protection round trip; RDP 1 blocks flash over debug", function ()
  local p <close> = probe.open { uri = "sim:stm32h753" }
  ob.program(p, { PROT_AREA_START1 = 0x10, PROT_AREA_END1 = 0x1F, nWRP3 = 0 })
  local v = ob.read(p)
  T.eq(v.PROT_AREA_START1, 0x10, "start")
  T.eq(v.PROT_AREA_END1, 0x1F, "end")
  T.eq(v.nWRP3, 0, "nWRP3")
  ob.program(p, { RDP = 0xBB })
  T.eq(ob.read(p).RDP, 0xBB, "level 1")
  local e = T.raises("LOCKED", p.read, p, 0x08000000, 4)
  assert(e.detail:find("RDP level 1"), e.detail)
end)

T.case("bad requests raise USAGE naming the field", function ()
  local p <close> = probe.open { uri = "sim:stm32h753" }
  local e = T.raises("USAGE", ob.program, p, { NOPE = 1 })
  assert(e.msg:find("NOPE"), e.msg)
  e = T.raises("USAGE", ob.program, p, { BOR_LEV = 4 })
  assert(e.msg:find("BOR_LEV"), e.msg)
  e = T.raises("USAGE", ob.program, p, { RDP = 0xCC })
  assert(e.msg:find("irreversible"), e.msg)
  e = T.raises("USAGE", ob.program, p, { SEC_AREA_START1 = 0 })
  assert(e.msg:find("SEC_AREA_START1"), e.msg)
  T.eq(ob.read(p).RDP, 0xAA, "nothing written")
end)

T.case("RDP regression erases flash, keeps a PCROP area with DMEP=0", function ()
  local p <close> = probe.open { uri = "sim:stm32h753" }
  -- program two flash words: one inside a PCROP area, one outside
  local base = 0x52002000
  p:write32(base + 0x04, 0x45670123); p:write32(base + 0x04, 0xCDEF89AB)
  p:write32(base + 0x0C, 0x32)
  p:write(0x08000000, string.rep("A", 32))
  p:write(0x08001000, string.rep("B", 32))
  T.eq(p:read32(base + 0x10) & 0x07EE0000, 0, "no flash error")
  p:write32(base + 0x0C, 0x1)
  ob.program(p, { PROT_AREA_START1 = 0x10, PROT_AREA_END1 = 0x10, DMEP1 = 0 })
  ob.program(p, { RDP = 0xBB })
  ob.program(p, { RDP = 0xAA })
  T.eq(p:read(0x08000000, 4), "\xff\xff\xff\xff", "user flash erased")
  -- the area stays: an option change cannot remove it at RDP 0 (only a regression with
  -- DMEP1 = 1 does), and its flash stays execute-only
  local ok, e = pcall(ob.program, p, { PROT_AREA_START1 = 0xFF, PROT_AREA_END1 = 0 })
  assert(not ok and e.code == "TARGET" and e.msg:find("OPTCHANGEERR"), tostring(e))
  T.eq(ob.read(p).PROT_AREA_START1, 0x10, "PCROP area kept")
  T.eq(ob.read(p).PROT_AREA_END1, 0x10, "PCROP area kept")
  T.eq(p:read(0x08001100, 4), "\xff\xff\xff\xff", "the flash after it erased")
  ok, e = pcall(p.read, p, 0x08001000, 4)
  assert(not ok and e.code == "LOCKED", tostring(e))
end)
