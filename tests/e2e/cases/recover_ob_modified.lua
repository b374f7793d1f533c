-- Option bytes an application wrote but never launched (PRG differs from CUR): the recovery
-- recipe lists the pending values and discards them with confirm=discard; an install follows.
return {
  chip = "stm32h753",
  image = { devid = 0x450, size = 60000 },
  runs = {
    { recipe = "recover/ob_modified", knobs = { ob_prg = "nWRP2:0,BOR_LEV:1" },
      expect = { exit = 2, output = { "nWRP2            CUR 0x1, pending (PRG) 0x0", "confirm=discard" } } },
    { recipe = "recover/ob_modified", knobs = { ob_prg = "nWRP2:0,BOR_LEV:1" }, set = { confirm = "discard" },
      expect = { exit = 0, output = { "Recovered: 2 option byte(s) discarded" } } },
    { recipe = "h753", expect = { exit = 0 } },
  },
  final = { ob = { RDP = 0xAA, nWRP2 = 1 }, licences_used = 1, journal_events = { "recovery" } },
}
