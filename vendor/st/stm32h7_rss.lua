-- vendor/st/stm32h7_rss.lua: the RSS result codes of the STM32H7 packs and what each means,
-- shared by the three H7 packs (rss.codes, rss.meaning). Data only. `observed` names where a
-- value was seen on real chips; the others are the simulator's own choice (model) and are
-- never presented as ST's.
local M = {}

M.codes = { ok = 0x00000000, part_ok = 0x00000080, license = 0xCC000007, header = 0xCC000001,
            hash = 0xCC000002, protocol = 0xCC000003, area = 0xCC000004, program = 0xCC000005,
            token = 0xCC000006, state = 0xCC000008,
            -- seen only in a user's log, never returned by the simulated RSS
            license_h7b0 = 0x00000016 }

M.meaning = {
  ok = { text = "install finished", observed = "AN5054 (a successful install's log)" },
  part_ok = { text = "part installed, the next part follows",
              observed = "user report 2025-11 (STM32H753, ST-LINK/V3, part 1 of 2)" },
  license = { text = "RSS internal system error or License is invalid !",
              observed = "ST's log text in user reports 2023 and 2025-11" },
  header = { text = "image header rejected by RSS (wrong image for this licence?)" },
  hash = { text = "SFI with hash is not supported on this device, please disable hash while " ..
           "generating SFI image" },
  protocol = { text = "SFI image protocol not supported by this RSS" },
  area = { text = "an image area failed its integrity check" },
  program = { text = "flash programming failed (flash not erased?)" },
  token = { text = "continuation token does not match this image" },
  state = { text = "chip not ready for SFI (RDP level, identity)" },
  license_h7b0 = { text = "RSS internal system error or License is invalid ! (ST's log text after " ..
                   "this value; its meaning is not documented)",
                   observed = "user report forum-h7ab-sfi-license (STM32H7B0, STLINK-V3SET, part 1)" },
}
-- Every entry without `observed` is model: the simulator's own value for a failure whose real
-- code is not public (0xCC000001..0xCC000006 and 0xCC000008; 0xCC000007 is observed).

return M
