-- The first user report: a hashed image on STM32H753 is refused with ST's message and the
-- workaround, before any licence is consumed or an option byte changes.
return {
  recipe = "h753", chip = "stm32h753",
  image = { devid = 0x450, size = 4000, hash = true },
  expect = { exit = 1, code = "UNSUPPORTED", step = "image",
    output = { "SFI with hash is not supported on this device, please disable hash while generating SFI image",
      "hint: rebuild the image without hash: sfirun image build ... --hash 0" } },
  final = { ob = { SECURITY = 0 }, flash = "erased", licences_used = 0, journal_unknown = 0 },
}
