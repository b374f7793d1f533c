-- A second install on a chip that already holds the firmware: preflight finds the flash
-- programmed and the token page used; the counter falls only for the first install.
return {
  recipe = "h753", chip = "stm32h753",
  image = { devid = 0x450, size = 60000 },
  runs = {
    { expect = { exit = 0 } },
    { expect = { exit = 1, code = "TARGET", step = "preflight",
      output = { "flash blank", "programmed at 0x08000000" } } },
  },
  final = { licences_used = 1, journal_unknown = 0 },
}
