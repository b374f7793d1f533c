-- vendor/st/stm32h7ab.lua: device pack for DEV_ID 0x480 (STM32H7A3/B3/B0). Data only.
-- Sources: RM0455, ST's CubeProgrammer device database, AN5054 and the user reports.
return {
  family = "STM32H7A/B",
  dev_id = 0x480,
  openocd_name = "STM32H7Ax/7Bx",
  revisions = { [0x1000] = "A", [0x1001] = "Z" },
  cpuid = 0x411FC271,
  dpidr = 0x6BA02477,
  parts = {
    stm32h7a3 = { flash_kb = 2048 },
    stm32h7b3 = { flash_kb = 2048, sfi = true },
    stm32h7b0 = { flash_kb = 128, sfi = true },
  },
  registers = {
    dbgmcu_idcode = 0x5C001000,
    flash_size = 0x08FFF80C,
    uid = 0x08FFF800,
    bl_version = 0x1FF1E7FE,
    flash = 0x52002000,
  },
  memory = {
    flash = {
      { name = "bank1", start = 0x08000000, size = 0x100000, sector = 0x2000, regs = 0x52002000 },
      { name = "bank2", start = 0x08100000, size = 0x100000, sector = 0x2000, regs = 0x52002100 },
    },
    flash_word = 16,
    ram = {
      { name = "itcm", start = 0x00000000, size = 0x10000 },
      { name = "dtcm", start = 0x20000000, size = 0x20000 },
      { name = "axi_sram", start = 0x24000000, size = 0x100000 },
      { name = "ahb_sram", start = 0x30000000, size = 0x20000 },
      { name = "srd_sram", start = 0x38000000, size = 0x8000 },
    },
    system = { start = 0x1FF00000, size = 0x20000 },
  },
  sfi = {
    product_id = "48002001",   -- model: pattern of the H7 ID, not confirmed for 0x480
    license_addr = 0x24030800, -- AN5054
    header_addr = 0x24031000,  -- AN5054
    ram_size = 0x1E000,
    token = 0x081FF000,
    hash = "optional",
    protocols = { 1, 2 },
    min_bootloader = 0x92,     -- ES0478 2.2.3 as reported: BL 0x90/0x91 may corrupt flash
  },
}
