-- Development licence provider (key file): works, and warns on every use.
return {
  recipe = "h753", chip = "stm32h753", licence = "keyfile",
  image = { devid = 0x450, size = 20000 },
  expect = { exit = 0, output = { "licence from a KEY FILE (development only" } },
  final = { ob = { SECURITY = 1 }, flash = "firmware" },
}
