-- vendor/arm/armv7m.lua: ARMv7-M debug architecture facts shared by every Cortex-M7 pack: the
-- System Control Space and debug component registers a debugger touches, the DCRSR register
-- selectors and the ADIv5 DP/AP register names. Data only. Sources: ARMv7-M Architecture
-- Reference Manual (ARM DDI 0403), ARM Debug Interface v5 (ARM IHI 0031).
return {
  register_names = {
    [0xE000ED00] = "CPUID", [0xE000ED04] = "ICSR", [0xE000ED08] = "VTOR",
    [0xE000ED0C] = "AIRCR", [0xE000ED10] = "SCR", [0xE000ED14] = "CCR",
    [0xE000ED24] = "SHCSR", [0xE000ED28] = "CFSR", [0xE000ED2C] = "HFSR",
    [0xE000ED30] = "DFSR", [0xE000ED34] = "MMFAR", [0xE000ED38] = "BFAR",
    [0xE000EDF0] = "DHCSR", [0xE000EDF4] = "DCRSR", [0xE000EDF8] = "DCRDR",
    [0xE000EDFC] = "DEMCR", [0xE000EF40] = "MVFR0", [0xE000EF44] = "MVFR1",
    [0xE000EF48] = "MVFR2",
    [0xE0001000] = "DWT_CTRL", [0xE0001004] = "DWT_CYCCNT", [0xE0001FBC] = "DWT_DEVARCH",
    [0xE0001020] = "DWT_COMP0", [0xE0001024] = "DWT_MASK0", [0xE0001028] = "DWT_FUNCTION0",
    [0xE0001030] = "DWT_COMP1", [0xE0001034] = "DWT_MASK1", [0xE0001038] = "DWT_FUNCTION1",
    [0xE0001040] = "DWT_COMP2", [0xE0001044] = "DWT_MASK2", [0xE0001048] = "DWT_FUNCTION2",
    [0xE0001050] = "DWT_COMP3", [0xE0001054] = "DWT_MASK3", [0xE0001058] = "DWT_FUNCTION3",
    [0xE0002000] = "FP_CTRL", [0xE0002004] = "FP_REMAP",
    [0xE0002008] = "FP_COMP0", [0xE000200C] = "FP_COMP1", [0xE0002010] = "FP_COMP2",
    [0xE0002014] = "FP_COMP3", [0xE0002018] = "FP_COMP4", [0xE000201C] = "FP_COMP5",
    [0xE0002020] = "FP_COMP6", [0xE0002024] = "FP_COMP7",
    [0xE0000E80] = "ITM_TCR", [0xE0040004] = "TPIU_CSPSR",
  },
  -- DCRSR REGSEL values (APIV2_READREG / WRITEREG take them)
  core_registers = {
    [0] = "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12",
    "sp", "lr", "pc", "xPSR", "MSP", "PSP", [0x14] = "CONTROL/FAULTMASK/BASEPRI/PRIMASK",
    [0x21] = "FPSCR",
  },
  dp_registers = { read = { [0x0] = "DPIDR", [0x4] = "CTRL/STAT", [0x8] = "RESEND", [0xC] = "RDBUFF" },
                   write = { [0x0] = "ABORT", [0x4] = "CTRL/STAT", [0x8] = "SELECT", [0xC] = "RDBUFF" } },
  ap_registers = { [0x00] = "CSW", [0x04] = "TAR", [0x0C] = "DRW", [0x10] = "BD0", [0x14] = "BD1",
                   [0x18] = "BD2", [0x1C] = "BD3", [0xF4] = "CFG", [0xF8] = "BASE", [0xFC] = "IDR" },
}
