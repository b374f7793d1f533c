-- Power is lost when the RSS starts part 1: the run fails and aborts; a rerun on the same
-- chip reuses the licence issued to it (the counter falls once in all) and finishes.
return {
  recipe = "h753", chip = "stm32h753",
  image = { devid = 0x450, size = 150000, ram_size = 0x1E000 },
  runs = {
    { knobs = { power_loss_at = "rss" },
      expect = { exit = 1, code = "TARGET", step = "part 1", fact = { licence = "consumed" },
                 output = { "Abort SUCCESS" } } },
    { expect = { exit = 0, fact = { licence = "reused" },
                 output = { "Reusing the licence issued earlier for this chip (no licence consumed)" } } },
  },
  final = { ob = { SECURITY = 1 }, flash = "firmware", licences_used = 1, journal_unknown = 0 },
}
