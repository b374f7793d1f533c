-- A chip at RDP level 1 with a secure area and a PCROP area (DMES1 = DMEP1 = 1): the recovery
-- recipe reads the state, refuses to erase without confirm=erase (exit 2, nothing changed),
-- then regresses; the evidence is journaled and a fresh install succeeds on the chip.
return {
  chip = "stm32h753",
  image = { devid = 0x450, size = 60000 },
  runs = {
    { recipe = "recover/rdp_regression",
      knobs = { ob = "RDP:0xBB,SEC_AREA_START1:0x0,SEC_AREA_END1:0x20,DMES1:1," ..
        "PROT_AREA_START1:0x40,PROT_AREA_END1:0x60,DMEP1:1" },
      expect = { exit = 2, output = { "RDP         : 0xBB (level 1)", "secure area : bank 1 0x000..0x020, ERASED",
        "run again with --set confirm=erase" }, no_output = { "Waiting for end of regression" } } },
    { recipe = "recover/rdp_regression", set = { confirm = "erase" },
      expect = { exit = 0, output = { "Waiting for end of regression",
        "Recovered: RDP level 0, 0 protected area(s) left" } } },
    { recipe = "h753", expect = { exit = 0, output = { "Flash matches" } } },
  },
  final = { ob = { RDP = 0xAA, SECURITY = 1 }, flash = "firmware", licences_used = 1,
            journal_events = { "recovery" } },
}
