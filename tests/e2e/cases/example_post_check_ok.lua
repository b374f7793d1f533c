-- recipes/examples/h753_post_check.lua: the installed firmware's vector table is plausible.
return {
  recipe = "examples/h753_post_check", chip = "stm32h753",
  image = { devid = 0x450, size = 60000, vectors = { 0x24080000, 0x08000199 } },
  expect = { exit = 0, output = { "Vector table OK: SP 0x24080000, reset handler 0x08000199" } },
  final = { flash = "firmware", licences_used = 1 },
}
