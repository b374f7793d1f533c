-- An image holding an area type the STM32H753 pack does not list (here a module area, M) is
-- refused at the image step, before any licence is consumed or an option byte changes.
return {
  recipe = "h753", chip = "stm32h753",
  image = { devid = 0x450, size = 4000, areas = { { "M", 0x08080000, 256 } } },
  expect = { exit = 1, code = "UNSUPPORTED", step = "image",
    output = { "area 1 is type M (module): the STM32H74x/75x RSS installs only F, C, P, R areas" } },
  final = { ob = { SECURITY = 0 }, flash = "erased", licences_used = 0, journal_unknown = 0 },
}
