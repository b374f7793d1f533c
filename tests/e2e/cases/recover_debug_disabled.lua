-- Firmware that turns the debug port off: after an install, every normal connect fails. The
-- recovery recipe reaches the chip under reset, erases it with confirm=erase, and a normal
-- connect then works: a fresh install (of a firmware that leaves SWD on) succeeds.
return {
  chip = "stm32h753",
  image = { devid = 0x450, size = 60000 },
  runs = {
    { recipe = "h753", expect = { exit = 0 } },
    { recipe = "h753", knobs = { debug_disabled = 1 }, set = { tries = 2 },
      expect = { exit = 1, code = "NO_DEVICE", step = "connect", output = { "turned the debug port off" } } },
    { recipe = "recover/debug_disabled", knobs = { debug_disabled = 1 }, set = { confirm = "erase" },
      expect = { exit = 0, output = { "connecting under reset", "Recovered: flash erased" } } },
    { recipe = "h753", expect = { exit = 0, output = { "Flash matches" } } },
  },
  final = { flash = "firmware", licences_used = 2, journal_events = { "recovery" } },
}
