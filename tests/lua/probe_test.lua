-- probe_test.lua: sfi.probe on the simulated STM32H7: IDs, memory map, faults, reconnect.
local T = require "sfi.test"
local probe = require "sfi.probe"

T.case("H753 rev V identifies like the user report", function ()
  local p <close> = probe.open { uri = "sim:stm32h753?bl=0x90&rev=V" }
  local i = p:info()
  T.eq(i.dev_id, 0x450, "dev_id")
  T.eq(i.rev, "V", "rev")
  T.eq(p:read32(0x5C001000), 0x20036450, "DBGMCU_IDCODE")
  T.eq(i.flash_kb, 2048, "flash size")
  T.eq(i.bl, 0x90, "bootloader version")
  T.eq(i.family, "STM32H74x/75x", "family")
  T.eq(i.probe, "sim", "probe")
  T.eq(#i.uid, 24, "uid hex")
end)

T.case("H7B3 and H735 identify, uid knob", function ()
  local p <close> = probe.open { uri = "sim:stm32h7b3?bl=0x91&uid=000102030405060708090a0b" }
  local i = p:info()
  T.eq(i.dev_id, 0x480, "dev_id")
  T.eq(i.bl, 0x91, "bl")
  T.eq(i.uid, "000102030405060708090A0B", "uid")
  local q <close> = probe.open { driver = "sim", part = "stm32h735" }
  T.eq(q:info().dev_id, 0x483, "H735 dev_id")
  T.eq(q:info().flash_kb, 1024, "H735 flash")
end)

T.case("RAM round trip, widths, bus fault outside the map", function ()
  local p <close> = probe.open { uri = "sim:stm32h743" }
  p:write(0x24000000, "hello world")
  T.eq(p:read(0x24000000, 11), "hello world", "AXI SRAM")
  p:write32(0x20000010, 0xDEADBEEF)
  T.eq(p:read32(0x20000010), 0xDEADBEEF, "DTCM")
  p:write16(0x00000100, 0x1234)
  T.eq(p:read16(0x00000100), 0x1234, "ITCM 16-bit")
  p:write8(0x30000003, 0x5A)
  T.eq(p:read8(0x30000003), 0x5A, "SRAM1 8-bit")
  T.eq(p:read(0x08000000, 4), "\xff\xff\xff\xff", "blank flash")
  local e = T.raises("TARGET", p.read, p, 0x60000000, 4)
  assert(tostring(e.detail):find("0x60000000"), "fault names the address")
  T.raises("TARGET", p.write, p, 0x1FF00000, "x")    -- system memory is read-only
  T.raises("TARGET", p.read, p, 0x24080000, 4)       -- just past AXI SRAM (512 KB)
end)

T.case("Cortex-M7 debug surface: CPUID, halt, resume, core registers", function ()
  local p <close> = probe.open { uri = "sim:stm32h753", connect = "hotplug" }
  T.eq(p:read32(0xE000ED00), 0x411FC271, "CPUID")
  p:halt()
  T.eq(p:read32(0xE000EDF0) & (1 << 17) ~= 0, true, "S_HALT")
  p:write32(0xE000EDF8, 0x12345678)
  p:write32(0xE000EDF4, 0x10000 | 3)   -- write r3
  p:write32(0xE000EDF8, 0)
  p:write32(0xE000EDF4, 3)             -- read r3
  T.eq(p:read32(0xE000EDF8), 0x12345678, "DCRSR/DCRDR r3")
  p:resume()
  T.eq(p:read32(0xE000EDF0) & (1 << 17), 0, "running")
  T.eq(p:read32(0xE000ED0C) >> 16, 0xFA05, "AIRCR VECTKEYSTAT")
end)

T.case("unreachable_after_reset makes the next connects fail", function ()
  local p <close> = probe.open { uri = "sim:stm32h753?unreachable_after_reset=2" }
  p:reset("sw")
  T.raises("NO_DEVICE", p.read32, p, 0x5C001000)
  T.raises("NO_DEVICE", p.reconnect, p)
  T.raises("NO_DEVICE", p.reconnect, p)
  p:reconnect()
  T.eq(p:read32(0x5C001000) & 0xFFF, 0x450, "answers again")
end)

T.case("usb_error_every injects IO errors", function ()
  local p <close> = probe.open { uri = "sim:stm32h753?usb_error_every=3" }
  local fails = 0
  for _ = 1, 9 do
    local ok, e = pcall(p.read32, p, 0x24000000)
    if not ok then
      assert(require("sfi.error").is(e, "IO"), tostring(e))
      fails = fails + 1
    end
  end
  T.eq(fails, 3, "every third operation fails")
end)

T.case("power loss by op count: NO_DEVICE until reconnect, RAM lost", function ()
  local p <close> = probe.open { driver = "sim", part = "stm32h753", faults = { power_loss_at = 5 } }
  p:write32(0x24000000, 0x11223344)
  p:read32(0x24000000)
  p:read32(0x24000000)
  T.raises("NO_DEVICE", p.read32, p, 0x24000000)
  T.raises("NO_DEVICE", p.read32, p, 0x24000000)
  p:reconnect()
  assert(p:read32(0x24000000) ~= 0x11223344, "RAM content survived a power loss")
end)

T.case("bad URIs and knobs are USAGE errors naming the problem", function ()
  local e = T.raises("USAGE", probe.open, { uri = "sim:stm32h753?bogus=1" })
  assert(e.msg:find("bogus"), e.msg)
  e = T.raises("USAGE", probe.open, { uri = "sim:stm32h753?rev=Q" })
  assert(e.msg:find("rev"), e.msg)
  T.raises("NOT_FOUND", probe.open, { uri = "sim:stm32f103" })
  T.raises("NOT_FOUND", probe.open, { uri = "nosuch:x" })
end)

T.case("use after close raises; list shows the simulator", function ()
  local p = probe.open { uri = "sim" }
  p:close()
  p:close()
  local ok, e = pcall(p.read32, p, 0)
  assert(not ok and tostring(e):find("closed probe"), tostring(e))
  local l = probe.list()
  T.eq(l[1].driver, "sim", "sim listed")
end)
