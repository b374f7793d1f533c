-- A write-protected sector where the image lands: preflight fails before any licence.
return {
  recipe = "h753", chip = "stm32h753", knobs = { ob = "nWRP0:0" },
  image = { devid = 0x450, size = 60000 },
  expect = { exit = 1, code = "TARGET", step = "preflight", output = { "nWRP0 (0x08000000) protected" },
    fact = { licence = "none" } },
  final = { ob = { SECURITY = 0 }, licences_used = 0, journal_unknown = 0 },
}
