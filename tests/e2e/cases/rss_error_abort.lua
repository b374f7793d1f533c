-- A tampered image area: the RSS rejects it, the flow aborts with an RDP regression (flash
-- erased) and reports the step, what the chip said and that the licence was consumed.
return {
  recipe = "h753", chip = "stm32h753",
  image = { devid = 0x450, size = 8000, tamper = 28 + 14 + 16 + 200 },
  expect = { exit = 1, code = "TARGET", step = "part 1",
    output = { "RSS complete Value = 0xCC000004", "SECURITY State Fail", "Invalid state after SFI install !",
      "Aborting...", "Display OB after Abort for sanity check", "Abort SUCCESS",
      "licence consumed; chip regressed to RDP level 0 (flash erased)",
      "Diagnosis: RSS complete value 0xCC000004 (area) is the simulator's own code",
      "Diagnosis: preconditions changed since preflight: none",
      "Diagnosis: licence: consumed (kept: a rerun on this chip reuses it)" },
    no_output = { "BCM4" } },
  final = { ob = { RDP = 0xAA }, flash = "erased", licences_used = 1 },
}
