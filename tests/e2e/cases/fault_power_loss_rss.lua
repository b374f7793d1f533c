-- The chip loses power when the RSS should run: the log names the power loss, never a result
-- read from RAM that lost its content; the chip is regressed and the licence is kept for a rerun.
return {
  recipe = "h753", chip = "stm32h753", knobs = { power_loss_at = "rss" },
  image = { devid = 0x450, size = 60000 },
  expect = { exit = 1, code = "TARGET", step = "part 1", output = { "lost power" },
    no_output = { "unknown RSS result", "RSS complete Value = 0x" } },
  final = { ob = { RDP = 0xAA }, licences_used = 1 },
}
