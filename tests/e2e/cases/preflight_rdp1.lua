-- A chip at RDP level 1: the flow stops when it reads the option bytes (nothing past them can
-- be read), names the regression recipe, and spends nothing.
return {
  recipe = "h753", chip = "stm32h753", knobs = { ob = "RDP:0xBB" },
  image = { devid = 0x450, size = 60000 },
  expect = { exit = 1, code = "LOCKED", step = "option bytes", output = { "the chip is at RDP 0xBB",
    "recipes/recover/rdp_regression.lua" } },
  final = { licences_used = 0 },
}
