-- Every 20th debug operation fails with a transient USB error: every step retries it, the
-- install succeeds and the licence is used once.
return {
  recipe = "h753", chip = "stm32h753", knobs = { usb_error_every = 20 },
  image = { devid = 0x450, size = 150000, ram_size = 0x1E000 },
  expect = { exit = 0 },
  final = { ob = { SECURITY = 1 }, flash = "firmware", licences_used = 1 },
}
