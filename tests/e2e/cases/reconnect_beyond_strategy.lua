-- Silent for 10 connects after RSS, the strategy allows 3: a clean failure naming the step
-- and the strategy; the licence was consumed and the journal says so.
return {
  recipe = "h753", chip = "stm32h753", knobs = { unreachable_after_rss = 10 },
  image = { devid = 0x450, size = 4000 },
  set = { strategy = "fixed", tries = 3 },
  expect = { exit = 1, code = "NO_DEVICE", step = "part 1",
    output = { "target did not answer after 3 reconnect attempts (strategy fixed(3 x 200 ms))",
      "licence consumed" } },
  final = { licences_used = 1, journal_unknown = 0 },
}
