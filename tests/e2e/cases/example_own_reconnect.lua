-- recipes/examples/h753_own_reconnect.lua replaces the "reconnect" step: connect under reset
-- with a hardware reset, ten tries. The chip stays silent for 4 connects after each RSS run.
return {
  recipe = "examples/h753_own_reconnect", chip = "stm32h753", knobs = { unreachable_after_rss = 4 },
  image = { devid = 0x450, size = 150000, ram_size = 0x1E000 },
  expect = { exit = 0, output = { "Reconnecting under reset...", "reconnect 4/10 failed",
    "Reconnected !" }, no_output = { "reconnect 5/10 failed" } },
  final = { ob = { SECURITY = 1 }, flash = "firmware", licences_used = 1 },
}
