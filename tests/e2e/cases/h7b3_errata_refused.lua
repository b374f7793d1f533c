-- The second user report: H7B3 with bootloader 0x91 is refused, citing ST's erratum.
return {
  recipe = "h7b3", chip = "stm32h7b3", knobs = { bl = "0x91" },
  image = { devid = 0x480, size = 4000 },
  expect = { exit = 1, code = "UNSUPPORTED", step = "check device",
    output = { "bootloader 0x91 < 0x92", "ES0478 2.2.3", "--set allow_errata=true" } },
  final = { ob = { SECURITY = 0 }, licences_used = 0 },
}
