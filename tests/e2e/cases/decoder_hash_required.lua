-- An H735 RSS that requires hashed images, given an unhashed one by a recipe told the chip
-- takes either (hash=optional): the decoder says hash is *required*, not "not supported".
return {
  recipe = "h735", chip = "stm32h735", knobs = { hash = "required" },
  image = { devid = 0x483, size = 8000, hash = false },
  set = { hash = "optional" },
  expect = { exit = 1, code = "TARGET", step = "part 1",
    output = { "this RSS requires a hashed SFI image" },
    no_output = { "SFI with hash is not supported" } },
  final = { licences_used = 1 },
}
