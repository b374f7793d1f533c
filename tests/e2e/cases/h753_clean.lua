-- Clean install on STM32H753 from a SoftHSM2 token: image split in two parts.
return {
  recipe = "h753", chip = "stm32h753",
  image = { devid = 0x450, size = 150000, ram_size = 0x1E000 },
  max = 5,
  expect = { exit = 0, output = { "RSS complete Value = 0x80", "RSS complete Value = 0x0",
    "SECURITY State Success", "Starting SFI part 2", "Flash matches" }, no_output = { "BCM4" },
    fact = { licence = "consumed", parts_done = 2 } },
  final = { ob = { SECURITY = 1, RDP = 0xAA, BCM7 = 1, ST_RAM_SIZE = 3 }, flash = "firmware",
            licences_used = 1, journal_unknown = 0 },
}
