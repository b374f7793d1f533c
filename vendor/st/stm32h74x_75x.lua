-- vendor/st/stm32h74x_75x.lua: device pack for DEV_ID 0x450 (STM32H742/743/753/750 and the
-- dual-core H745/747/755/757). Data only. Sources: RM0433/RM0399, ST's CubeProgrammer device
-- database and the user reports (see docs/device-packs.md). Fields marked model = true are not
-- publicly documented: the simulator follows the same values.
return {
  family = "STM32H74x/75x",
  dev_id = 0x450,
  openocd_name = "STM32H74x/75x",
  revisions = { [0x1000] = "A", [0x1001] = "Z", [0x1003] = "Y", [0x2001] = "X", [0x2003] = "V" },
  cpuid = 0x411FC271,
  dpidr = 0x6BA02477,
  parts = {
    stm32h742 = { flash_kb = 2048 },
    stm32h743 = { flash_kb = 2048 },
    stm32h750 = { flash_kb = 128 },
    stm32h753 = { flash_kb = 2048, sfi = true },
    stm32h745 = { flash_kb = 2048, dual_core = true },
    stm32h747 = { flash_kb = 2048, dual_core = true },
    stm32h755 = { flash_kb = 2048, dual_core = true, sfi = true },
    stm32h757 = { flash_kb = 2048, dual_core = true, sfi = true },
  },
  registers = {
    dbgmcu_idcode = 0x5C001000,
    flash_size = 0x1FF1E880,   -- u16, KB
    uid = 0x1FF1E800,          -- 96-bit unique ID
    bl_version = 0x1FF1E7FE,   -- u8 system bootloader version
    flash = 0x52002000,        -- FLASH register block, bank 2 registers at +0x100
  },
  memory = {
    flash = {
      { name = "bank1", start = 0x08000000, size = 0x100000, sector = 0x20000, regs = 0x52002000 },
      { name = "bank2", start = 0x08100000, size = 0x100000, sector = 0x20000, regs = 0x52002100 },
    },
    flash_word = 32,           -- bytes programmed at once (256 bits)
    ram = {
      { name = "itcm", start = 0x00000000, size = 0x10000 },
      { name = "dtcm", start = 0x20000000, size = 0x20000 },
      { name = "axi_sram", start = 0x24000000, size = 0x80000 },
      { name = "sram1_3", start = 0x30000000, size = 0x48000 },
      { name = "sram4", start = 0x38000000, size = 0x10000 },
      { name = "backup", start = 0x38800000, size = 0x1000 },
    },
    system = { start = 0x1FF00000, size = 0x20000 },
  },
  sfi = {
    product_id = "45002001",   -- chip certificate product ID (8 ASCII)
    license_addr = 0x24020800, -- from ST's install log
    header_addr = 0x24021000,  -- from ST's install log
    ram_size = 0x1E000,        -- TPC default -rs
    token = 0x081FF000,        -- TPC default -ct (continuation token)
    hash = "unsupported",      -- RSS rejects hashed images (user report, rev V)
    protocols = { 1, 2 },
    message_hash_unsupported =
      "SFI with hash is not supported on this device, please disable hash while generating SFI image",
  },
}
