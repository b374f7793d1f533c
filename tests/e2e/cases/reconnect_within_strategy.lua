-- The debug port stays silent for 3 connects after each RSS run; the recipe's strategy makes
-- 6 attempts, alternating connect modes and reset kinds: the install succeeds.
return {
  recipe = "h753", chip = "stm32h753", knobs = { unreachable_after_rss = 3 },
  image = { devid = 0x450, size = 150000, ram_size = 0x1E000 },
  set = { strategy = "alternate", tries = 6 },
  expect = { exit = 0, output = { "reconnect 1/6 failed (NO_DEVICE), retrying...",
    "reconnect 3/6 failed", "Reconnected !" } },
  final = { ob = { SECURITY = 1 }, flash = "firmware", licences_used = 1 },
}
