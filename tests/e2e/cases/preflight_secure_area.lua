-- A secure area left on the chip (DMES1 = 1): preflight names it and the regression that
-- removes it; no licence is spent.
return {
  recipe = "h753", chip = "stm32h753", knobs = { ob = "SEC_AREA_START1:0x0,SEC_AREA_END1:0x10,DMES1:1" },
  image = { devid = 0x450, size = 60000 },
  expect = { exit = 1, code = "TARGET", step = "preflight", output = { "secure area 1: 0x000..0x010 (DMES=1)",
    "recover/rdp_regression.lua" } },
  final = { licences_used = 0 },
}
