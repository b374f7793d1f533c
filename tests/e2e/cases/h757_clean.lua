-- Clean install on the dual-core STM32H757: core boot bits set by the write mode.
return {
  recipe = "h757", chip = "stm32h757",
  image = { devid = 0x450, size = 60000 },
  expect = { exit = 0, output = { "RSS complete Value = 0x0", "BCM4" } },
  final = { ob = { SECURITY = 1, BCM7 = 1 }, flash = "firmware", licences_used = 1 },
}
