-- Clean install on STM32H735, whose RSS requires a hashed image.
return {
  recipe = "h735", chip = "stm32h735",
  image = { devid = 0x483, size = 80000, hash = true },
  expect = { exit = 0, output = { "RSS complete Value = 0x0" } },
  final = { ob = { SECURITY = 1 }, flash = "firmware", licences_used = 1 },
}
