-- An image without hash on STM32H735 is refused before any licence is made.
return {
  recipe = "h735", chip = "stm32h735",
  image = { devid = 0x483, size = 4000, hash = false },
  expect = { exit = 1, code = "UNSUPPORTED", step = "image", output = { "requires a hashed SFI image",
    "--hash 1" } },
  final = { ob = { SECURITY = 0 }, licences_used = 0 },
}
