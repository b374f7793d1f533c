-- With allow_errata the install runs on bootloader 0x91, and the simulated erratum corrupts
-- the flash: the final comparison catches it and names the address.
return {
  recipe = "h7b3", chip = "stm32h7b3", knobs = { bl = "0x91" },
  image = { devid = 0x480, size = 20000 },
  set = { allow_errata = true },
  expect = { exit = 1, code = "TARGET", step = "final state",
    output = { "(accepted: allow_errata)", "flash differs from" } },
  final = { ob = { SECURITY = 1 }, licences_used = 1 },
}
