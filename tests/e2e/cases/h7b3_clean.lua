-- Clean install on STM32H7B3 with bootloader 0x92 (H7A/B addresses 0x24030800/0x24031000).
return {
  recipe = "h7b3", chip = "stm32h7b3", knobs = { bl = "0x92" },
  image = { devid = 0x480, size = 150000, ram_size = 0x1E000 },
  expect = { exit = 0, output = { "Writing license to address 0x24030800",
    "Writing Img header to address 0x24031000", "Starting SFI part 2" } },
  final = { ob = { SECURITY = 1 }, flash = "firmware", licences_used = 1 },
}
