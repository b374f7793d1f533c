-- Two silent connects after every system reset, default strategy: still installs.
return {
  recipe = "h753", chip = "stm32h753", knobs = { unreachable_after_reset = 2 },
  image = { devid = 0x450, size = 150000, ram_size = 0x1E000 },
  expect = { exit = 0, output = { "Reconnected !" } },
  final = { ob = { SECURITY = 1 }, flash = "firmware", licences_used = 1 },
}
