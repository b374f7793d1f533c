-- The debug port drops after every system reset and the first connect after it fails (the
-- seed's "Unable to get core ID"): the default reconnect strategy gets the chip back, and a
-- reconnect counts only once a read of the target succeeds.
return {
  recipe = "h753", chip = "stm32h753", knobs = { unreachable_after_reset = 1 },
  image = { devid = 0x450, size = 150000, ram_size = 0x1E000 },
  expect = { exit = 0, output = { "Reconnected !" } },
  final = { ob = { SECURITY = 1 }, flash = "firmware", licences_used = 1 },
}
