-- recipes/examples/h753_post_check.lua on firmware without a vector table: the install
-- succeeds but the device fails the post-install check (and no abort erases it).
return {
  recipe = "examples/h753_post_check", chip = "stm32h753",
  image = { devid = 0x450, size = 60000, vectors = { 0xFFFFFFFF, 0x00000000 } },
  expect = { exit = 1, code = "TARGET", step = "vector table",
    output = { "implausible vector table: SP 0xFFFFFFFF, reset 0x00000000" },
    no_output = { "Aborting..." }, fact = { licence = "consumed" } },
  final = { flash = "firmware", licences_used = 1 },
}
