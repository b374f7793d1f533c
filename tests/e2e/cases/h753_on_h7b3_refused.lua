-- An H753 recipe on an H7A/B chip is refused before any licence is made.
return {
  recipe = "h753", chip = "stm32h7b3", knobs = { bl = "0x92" },
  image = { devid = 0x450, size = 4000 },
  expect = { exit = 1, code = "UNSUPPORTED", step = "check device",
    output = { "is for STM32H74x/75x (0x450) but the chip is STM32H7A/B (0x480)" } },
  final = { ob = { SECURITY = 0 }, licences_used = 0 },
}
