-- A 180 KiB image on a chip with 128 KB of flash: preflight refuses it, no licence spent
-- (before: a licence, then a misleading RSS error).
return {
  recipe = "h753", chip = "stm32h753", knobs = { flash_kb = 128 },
  image = { devid = 0x450, size = 184320 },
  expect = { exit = 1, code = "TARGET", step = "preflight", output = { "beyond the 128 KB this chip has" } },
  final = { licences_used = 0, journal_unknown = 0 },
}
