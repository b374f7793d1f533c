-- vendor/st/stm32h72x_73x.lua: device pack for DEV_ID 0x483 (STM32H723/725/730/733/735).
-- Data only. Sources: RM0468, ST's CubeProgrammer device database, AN5054.
-- nWRP0..7 = WPSN1 bits (sector i of bank 1).
local function wrp_fields(fields)
  for i = 0, 7 do
    fields[#fields + 1] = { name = "nWRP" .. i, reg = 0x1C, shift = i % 8, bits = 1,
      group = "Write Protection",
      values = { [0] = "Write protection active on this sector",
                 "Write protection not active on this sector" } }
  end
  return fields
end

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
  -- Register names for `sfirun trace` (RM0433/RM0455/RM0468 register maps, CMSIS names;
  -- FLASH_* at 0x52002000, bank 2 at +0x100). The Cortex-M debug registers are in
  -- vendor/arm/armv7m.lua.
  register_names = {
    [0x1FF1E800] = "UID", [0x1FF1E880] = "FLASH_SIZE", [0x52002000] = "FLASH_ACR",
    [0x52002004] = "FLASH_KEYR1", [0x52002008] = "FLASH_OPTKEYR", [0x5200200C] = "FLASH_CR1",
    [0x52002010] = "FLASH_SR1", [0x52002014] = "FLASH_CCR1", [0x52002018] = "FLASH_OPTCR",
    [0x5200201C] = "FLASH_OPTSR_CUR", [0x52002020] = "FLASH_OPTSR_PRG",
    [0x52002024] = "FLASH_OPTCCR", [0x52002028] = "FLASH_PRAR_CUR1",
    [0x5200202C] = "FLASH_PRAR_PRG1", [0x52002030] = "FLASH_SCAR_CUR1",
    [0x52002034] = "FLASH_SCAR_PRG1", [0x52002038] = "FLASH_WPSN_CUR1",
    [0x5200203C] = "FLASH_WPSN_PRG1", [0x52002040] = "FLASH_BOOT_CUR",
    [0x52002044] = "FLASH_BOOT_PRG", [0x52002050] = "FLASH_CRCCR1", [0x52002054] = "FLASH_CRCSADD1",
    [0x52002058] = "FLASH_CRCEADD1", [0x5200205C] = "FLASH_CRCDATA", [0x52002060] = "FLASH_ECC_FA1",
    [0x52002070] = "FLASH_OPTSR2_CUR", [0x52002074] = "FLASH_OPTSR2_PRG",
    [0x52002100] = "FLASH_ACR (alias)", [0x52002104] = "FLASH_KEYR2",
    [0x52002108] = "FLASH_OPTKEYR (alias)", [0x5200210C] = "FLASH_CR2", [0x52002110] = "FLASH_SR2",
    [0x52002114] = "FLASH_CCR2", [0x52002118] = "FLASH_OPTCR (alias)",
    [0x5200211C] = "FLASH_OPTSR_CUR (alias)", [0x52002120] = "FLASH_OPTSR_PRG (alias)",
    [0x52002124] = "FLASH_OPTCCR (alias)", [0x52002128] = "FLASH_PRAR_CUR2",
    [0x5200212C] = "FLASH_PRAR_PRG2", [0x52002130] = "FLASH_SCAR_CUR2",
    [0x52002134] = "FLASH_SCAR_PRG2", [0x52002138] = "FLASH_WPSN_CUR2",
    [0x5200213C] = "FLASH_WPSN_PRG2", [0x52002140] = "FLASH_BOOT_CUR (alias)",
    [0x52002144] = "FLASH_BOOT_PRG (alias)", [0x52002150] = "FLASH_CRCCR2",
    [0x52002154] = "FLASH_CRCSADD2", [0x52002158] = "FLASH_CRCEADD2",
    [0x52002160] = "FLASH_ECC_FA2", [0x5C001000] = "DBGMCU_IDCODE", [0x5C001004] = "DBGMCU_CR",
    [0x5C001034] = "DBGMCU_APB3FZ1", [0x5C00103C] = "DBGMCU_APB1LFZ1",
    [0x5C001054] = "DBGMCU_APB4FZ1", [0xE00E1000] = "DBGMCU_IDCODE (APB-D)",
    [0xE00E1004] = "DBGMCU_CR (APB-D)",
  },
  registers = {
    dbgmcu_idcode = 0x5C001000,
    dbgmcu_idcode_apbd = 0xE00E1000, -- the same register seen from the debug port (APB-D)
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
    -- The option-byte CSV rows (TPC -ob), in order: the C area holds one u32 per row.
    ob_rows = { "FOPTSR_PRG", "FPRAR_PRG_A", "FPRAR_PRG_B", "FSCAR_PRG_A", "FSCAR_PRG_B",
                "FWPSN_PRG_A", "FWPSN_PRG_B", "FBOOT7_PRG", "RESERVED" }, -- model: the H74x/75x rows; ST's H72x/73x file not checked
    -- Area types this RSS installs (docs/sfi-image.md); an image with another type is refused
    -- before any licence.
    area_types = "FCPR",
    product_id = "48302001",   -- model
    license_addr = 0x24020800, -- model: H753 addresses assumed
    header_addr = 0x24021000,  -- model
    ram_size = 0x1E000,
    token = 0x080FF000,        -- AN5054 H73x example
    hash = "required",         -- AN5054 4.3.8: mandatory on STM32H73x
    protocols = { 2 },
  },
  -- Simulator: register variant and the option words of a blank chip (CUR offsets; the PRG
  -- copies start equal). model: factory values not published; chosen to match the listings.
  -- The chip's own times for the simulator's timing model (knob timing=datasheet): the same
  -- 128 KB-sector flash as STM32H74x/75x (see that pack for the sources); model otherwise.
  timing = {
    sector_erase_ms = 1100, bank_erase_ms = 4000, word_program_us = 20, ob_program_ms = 300,
    regression_ms = 4000, reset_ms = 20, connect_ms = 5, rss_part_ms = 5000,
    rss_per_kib_ms = 27,
  },
  sim = {
    variant = "h72x",
    -- FLASH_ACR after reset and the peripheral registers answered with their reset values
    -- (vendor/st/stm32h7_periph.lua: each value with its source)
    acr_reset = require("st.stm32h7_periph").acr_reset.h72x,
    peripherals = require("st.stm32h7_periph").peripherals.h72x,
    rev = 0x1001,
    bl = 0x90,
    ob_default = { [0x00] = 0x0006AAD0, [0x0C] = 0x000000FF, [0x14] = 0x000000FF, [0x1C] = 0xFF, [0x24] = 0x1FF00800, [0x54] = 0x00000000 },
  },
  -- The simulator's RSS trigger and certificate location. model: ST does not document how the
  -- debugger starts the RSS; these addresses and the magic are the simulator's own choice.
  rss = {
    model = true,
    mailbox = 0x2401FFF0,      -- debugger writes `magic` here, then AIRCR SYSRESETREQ
    magic = 0x52535331,        -- "RSS1"
    result = 0x2401FFF4,       -- RSS complete value after the reset
    cert = 0x1FF1E000,         -- 136-byte chip certificate, readable over debug
    ram_limit = 0x24050000,      -- the RSS reads the header and a part's areas up to here
    token_slots = 128,         -- continuation token records (32 bytes each): the 4 KiB page at sfi.token
    -- C-area rows (the option-byte CSV order) -> option window CUR offset; -1 = ignored (RFU)
    ob_map = { 0x00, 0x0C, -1, 0x14, -1, 0x1C, -1, 0x24, -1 },
    -- RSS complete values. Observed in ST's logs: 0x0 (install finished, AN5054), 0x80 (after
    -- a successful first part, user report), 0xCC000007 ("RSS internal system error or License
    -- is invalid", user report). The other values are the simulator's own.
    codes = require("st.stm32h7_rss").codes,
    meaning = require("st.stm32h7_rss").meaning,
  },
  -- unlock keys and option-byte programming registers (vendor/st/stm32h7_flash.lua)
  flash_keys = require("st.stm32h7_flash").flash_keys,
  option_control = require("st.stm32h7_flash").option_control,
  -- Option bytes: the 308-byte window from 0x5200201C (offset k = register FLASH+0x1C+k;
  -- each CUR word has its PRG copy at k+4). reg = CUR offset, shift/bits = field position.
  -- Names, groups and meaning texts follow ST's listing (user reports); kind = "boot"
  -- (value<<16 is the address), "start"/"end" (bank base + value<<8, end + 0xFF).
  option_bytes = {
    window = 0x5200201C,
    size = 308,
    fields = wrp_fields {
      { name = "RDP", reg = 0x00, shift = 8, bits = 8, group = "Read Out Protection",
        open = 0xAA, -- level 0: debug reads flash (RM0433 / RM0455 / RM0468, RDP)
        values = { [0xAA] = "Level 0, no protection", [0xCC] = "Level 2, chip protection" },
        other = "Level 1, read protection" },
      { name = "BOR_LEV", reg = 0x00, shift = 2, bits = 2, group = "BOR Level",
        values = { [0] = "reset level OFF", "reset level is set to VBOR1",
                   "reset level is set to VBOR2", "reset level is set to VBOR3" } },
      { name = "IWDG1_SW", reg = 0x00, shift = 4, bits = 1, group = "User Configuration",
        values = { [0] = "Independent watchdog is controlled by hardware", "Independent watchdog is controlled by software" } },
      { name = "NRST_STOP", reg = 0x00, shift = 6, bits = 1, group = "User Configuration",
        values = { [0] = "STOP mode on Domain 1 is entering with reset", "STOP mode on Domain 1 is entering without reset" } },
      { name = "NRST_STBY", reg = 0x00, shift = 7, bits = 1, group = "User Configuration",
        values = { [0] = "STANDBY mode on Domain 1 is entering with reset", "STANDBY mode on Domain 1 is entering without reset" } },
      { name = "FZ_IWDG_STOP", reg = 0x00, shift = 17, bits = 1, group = "User Configuration",
        values = { [0] = "Independent watchdog is frozen in STOP mode", "Independent watchdog is running in STOP mode" } },
      { name = "FZ_IWDG_SDBY", reg = 0x00, shift = 18, bits = 1, group = "User Configuration",
        values = { [0] = "Independent watchdog is frozen in STANDBY mode", "Independent watchdog is running in STANDBY mode" } },
      { name = "SECURITY", reg = 0x00, shift = 21, bits = 1, group = "User Configuration",
        values = { [0] = "Security feature disabled", "Security feature enabled" } },
      { name = "IO_HSLV", reg = 0x00, shift = 29, bits = 1, group = "User Configuration",
        values = { [0] = "Product working in the full voltage range, I/O speed optimization at low-voltage disabled", "Product working below 2.7 V, I/O speed optimization at low-voltage enabled" } },
      { name = "TCM_AXI_SHARED", reg = 0x54, shift = 0, bits = 2, group = "User Configuration",
        values = { [0] = "ITCM 64 KB, AXI SRAM 320 KB", "ITCM 128 KB, AXI SRAM 256 KB",
                   "ITCM 192 KB, AXI SRAM 192 KB", "ITCM 256 KB, AXI SRAM 128 KB" } },
      { name = "CPU_FREQ_BOOST", reg = 0x54, shift = 2, bits = 1, group = "User Configuration",
        values = { [0] = "CPU frequency boost disabled", "CPU frequency boost enabled" } },
      { name = "BOOT_CM7_ADD0", reg = 0x24, shift = 0, bits = 16, kind = "boot",
        group = "Boot address Option Bytes" },
      { name = "BOOT_CM7_ADD1", reg = 0x24, shift = 16, bits = 16, kind = "boot",
        group = "Boot address Option Bytes" },
      { name = "PROT_AREA_START1", reg = 0xc, shift = 0, bits = 12, kind = "start", bank = 1,
        group = "PCROP Protection", },
      { name = "PROT_AREA_END1", reg = 0xc, shift = 16, bits = 12, kind = "end", bank = 1,
        group = "PCROP Protection", },
      { name = "DMEP1", reg = 0xc, shift = 31, bits = 1, group = "PCROP Protection",
        values = { [0] = "Flash Bank 1 PCROP zone is kept when RDP level regression (change from level 1 to 0) occurs",
                   "Flash Bank 1 PCROP zone is erased when RDP level regression (change from level 1 to 0) occurs" } },
      { name = "SEC_AREA_START1", reg = 0x14, shift = 0, bits = 12, kind = "start", bank = 1,
        group = "Secure Protection", readonly = "secure areas are set by the RSS only", },
      { name = "SEC_AREA_END1", reg = 0x14, shift = 16, bits = 12, kind = "end", bank = 1,
        group = "Secure Protection", readonly = "secure areas are set by the RSS only", },
      { name = "DMES1", reg = 0x14, shift = 31, bits = 1, group = "Secure Protection", readonly = "secure areas are set by the RSS only",
        values = { [0] = "Flash Bank 1 secure area is kept when RDP level regression (change from level 1 to 0) occurs",
                   "Flash Bank 1 secure area is erased when RDP level regression (change from level 1 to 0) occurs" } },
      { name = "ST_RAM_SIZE", reg = 0x00, shift = 19, bits = 2, group = "DTCM RAM Protection",
        values = { [0] = "2 KB", "4 KB", "8 KB", "16 KB" } },
    },
  },
  errata = {
    { id = "AN5054 4.3.8", text = "SFI images must carry the hash on STM32H73x" },
  },
}
