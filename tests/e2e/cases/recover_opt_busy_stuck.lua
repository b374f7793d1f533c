-- An installed chip whose next option-byte launch hangs (OPT_BUSY stays set until NRST): the
-- regression recipe ends the hang with a hardware reset and finishes; an install follows.
return {
  chip = "stm32h753",
  image = { devid = 0x450, size = 60000 },
  runs = {
    { recipe = "h753", expect = { exit = 0 } },
    { recipe = "recover/rdp_regression", knobs = { opt_busy_stuck = 1 }, set = { confirm = "erase" },
      expect = { exit = 0, output = { "the option-byte launch hung", "Recovered: RDP level 0" } } },
    { recipe = "h753", expect = { exit = 0, output = { "Flash matches" } } },
  },
  final = { ob = { RDP = 0xAA, SECURITY = 1 }, flash = "firmware", licences_used = 2,
            journal_events = { "recovery" } },
}
