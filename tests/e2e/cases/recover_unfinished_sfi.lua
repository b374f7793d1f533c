-- A station dies between part 1 and part 2: the chip keeps an unfinished install (token in
-- flash, SECURITY = 1). The recovery recipe shows how far it got, aborts it with
-- confirm=erase, and a fresh install then succeeds, reusing the licence issued to this chip.
return {
  chip = "stm32h753",
  image = { devid = 0x450, size = 150000, ram_size = 0x1E000 },
  runs = {
    { recipe = "../tests/data/recipes/stop_after_part1", set = { tries = 1 },
      expect = { exit = 1, output = { "RSS complete Value = 0x80" } } },
    { recipe = "recover/unfinished_sfi",
      expect = { exit = 2, output = { "last: part 1 in progress, next area 3", "confirm=erase" } } },
    { recipe = "recover/unfinished_sfi", set = { confirm = "erase" },
      expect = { exit = 0, output = { "Recovered: the unfinished install is gone" } } },
    { recipe = "h753", expect = { exit = 0, fact = { licence = "reused" }, output = { "Flash matches" } } },
  },
  final = { ob = { SECURITY = 1 }, flash = "firmware", licences_used = 1, journal_events = { "recovery" } },
}
