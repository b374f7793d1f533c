-- Ctrl-C while the flow waits for the chip after RSS: CANCELED, and the probe and the HSM
-- session are closed on the way out.
return {
  recipe = "h753", chip = "stm32h753", knobs = { unreachable_after_rss = 1000 },
  image = { devid = 0x450, size = 4000 },
  set = { strategy = "fixed", tries = 50 },
  runs = { { interrupt_ms = 1500,
    expect = { exit = 1, code = "CANCELED", output = { "closed sfi.probe",
      "closed sfi.license.provider (token, with its HSM session)" } } } },
  final = { licences_used = 1, journal_unknown = 0 },
}
