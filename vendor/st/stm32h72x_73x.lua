-- vendor/st/stm32h72x_73x.lua: device pack for DEV_ID 0x483 (STM32H723/725/730/733/735).
-- Data only. Sources: RM0468, ST's CubeProgrammer device database, AN5054.
return {
  family = "STM32H72x/73x",
  dev_id = 0x483,
  openocd_name = "STM32H72x/73x",
  revisions = { [0x1000] = "A", [0x1001] = "Z" },
  cpuid = 0x411FC271,
  dpidr = 0x6BA02477,
  parts = {
    stm32h723 = { flash_kb = 1024 },
    stm32h725 = { flash_kb = 1024 },
    stm32h730 = { flash_kb = 128, sfi = true },
    stm32h733 = { flash_kb = 1024, sfi = true },
    stm32h735 = { flash_kb = 1024, sfi = true },
  },
  registers = {
    dbgmcu_idcode = 0x5C001000,
    flash_size = 0x1FF1E880,
    uid = 0x1FF1E800,
    bl_version = 0x1FF1E7FE,
    flash = 0x52002000,
  },
  memory = {
    flash = {
      { name = "bank1", start = 0x08000000, size = 0x100000, sector = 0x20000, regs = 0x52002000 },
    },
    flash_word = 32,
    ram = {
      { name = "itcm", start = 0x00000000, size = 0x10000 },
      { name = "dtcm", start = 0x20000000, size = 0x20000 },
      { name = "axi_sram", start = 0x24000000, size = 0x50000 },
      { name = "sram1_2", start = 0x30000000, size = 0x8000 },
      { name = "sram4", start = 0x38000000, size = 0x4000 },
    },
    system = { start = 0x1FF00000, size = 0x20000 },
  },
  sfi = {
    product_id = "48302001",   -- model
    license_addr = 0x24020800, -- model: H753 addresses assumed
    header_addr = 0x24021000,  -- model
    ram_size = 0x1E000,
    token = 0x080FF000,        -- AN5054 H73x example
    hash = "required",         -- AN5054 4.3.8: mandatory on STM32H73x
    protocols = { 2 },
  },
}
