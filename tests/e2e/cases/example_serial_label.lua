-- recipes/examples/h753_serial_label.lua: a serial number step after "identify" and a label
-- step after "final state": one label file per device, the serial in the result.
return {
  recipe = "examples/h753_serial_label", chip = "stm32h753",
  image = { devid = 0x450, size = 60000 },
  mkdirs = { "labels" },
  set = { label_dir = "{dir}/labels", prefix = "ACME-R3" },
  expect = { exit = 0, output = { "Serial number : ACME-R3-", "step serial number: ok",
    "step label: ok" }, fact = { licence = "consumed" } },
  final = { flash = "firmware", licences_used = 1,
            files = { { dir = "labels", count = 1, contains = "RESULT installed" } },
            journal_fields = { serial = "ACME-R3-" } },
}
