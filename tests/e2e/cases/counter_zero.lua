-- No licence left on the token: nothing on the chip is touched, exit 1 with COUNTER.
return {
  recipe = "h753", chip = "stm32h753",
  image = { devid = 0x450, size = 4000 },
  max = 0,
  expect = { exit = 1, code = "COUNTER", step = "licence" },
  final = { ob = { SECURITY = 0, RDP = 0xAA }, flash = "erased", licences_used = 0 },
}
