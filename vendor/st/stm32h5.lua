-- vendor/st/stm32h5.lua: device pack for DEV_ID 0x484 (STM32H562/563/573). Data only, and only
-- what sfirun's image codec needs today: the flash map for building images, the option-byte
-- CSV rows and the area types ST's tools write for this family. No simulator, RSS, option-byte
-- or install tables yet: an install on STM32H5 is refused (sfi.installable = false).
-- Sources: RM0481 (memory map: 2 MB flash in two 1 MB banks of 8 KB sectors); the
-- protocol-2 image of tests/data/st-tpc-2024-h5 (TPC v2.16.0 for STM32H573, its CSV and log).
return {
  family = "STM32H56x/57x",
  dev_id = 0x484,
  revisions = {},
  parts = {
    stm32h562 = { flash_kb = 2048 },
    stm32h563 = { flash_kb = 2048 },
    stm32h573 = { flash_kb = 2048, sfi = true },
  },
  registers = {},
  memory = {
    flash = {
      { name = "bank1", start = 0x08000000, size = 0x100000, sector = 0x2000 },
      { name = "bank2", start = 0x08100000, size = 0x100000, sector = 0x2000 },
    },
    ram = {
      { name = "sram1", start = 0x20000000, size = 0x40000 },
      { name = "sram2", start = 0x20040000, size = 0x10000 },
      { name = "sram3", start = 0x20050000, size = 0x50000 },
    },
  },
  sfi = {
    installable = false,
    protocols = { 2 },
    hash = "optional", -- ST's sample is hashed; whether an unhashed image is taken: unknown
    -- The option-byte CSV rows, in order (Option_Bytes.csv of the TPC sample; 12 rows).
    ob_rows = { "OPTSR_PRG", "OPTSR2_PRG", "NSBOOTR_PRG", "SECBOOTR_PRG", "SECWM1R_PRG",
                "SECWM2R_PRG", "WRP1R_PRG", "WRP2R_PRG", "EDATA1R_PRG", "EDATA2R_PRG",
                "HDP1R_PRG", "HDP2R_PRG" },
    -- Area types in ST's sample: H (16-byte record), O (option-byte keys), S (secure manager
    -- package), F, C.
    area_types = "FCHOS",
    -- TPC writes no P/R areas for this family: the sample was built with --ramsize 0x20800
    -- and is 415702 bytes, in one part. The RAM size cuts only the secure manager package
    -- into S areas (docs/sfi-image.md); whether it ever cuts F areas here is not known.
    pause_resume = false,
  },
}
