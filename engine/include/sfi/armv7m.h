/* armv7m.h: the ARMv7-M debug registers the probe drivers use. These are architecture facts
 * (ARMv7-M Architecture Reference Manual, ARM DDI 0403, C1.6 "Debug system registers" and
 * B3.2 "System Control Space"), the same on every Cortex-M3/M4/M7, not device facts: device
 * addresses stay in the packs (vendor/). vendor/arm/armv7m.lua names the same registers for
 * the Lua side. */
#ifndef SFI_ARMV7M_H
#define SFI_ARMV7M_H

#define SFI_ARMV7M_CPUID 0xE000ED00u /* CPUID base register */
#define SFI_ARMV7M_AIRCR 0xE000ED0Cu /* application interrupt and reset control */
#define SFI_ARMV7M_DHCSR 0xE000EDF0u /* debug halting control and status */
#define SFI_ARMV7M_DEMCR 0xE000EDFCu /* debug exception and monitor control */

#define SFI_ARMV7M_DHCSR_DBGKEY 0xA05F0000u /* key for writes to DHCSR[15:0] */
#define SFI_ARMV7M_DHCSR_C_DEBUGEN 0x1u
#define SFI_ARMV7M_DHCSR_C_HALT 0x2u
#define SFI_ARMV7M_DHCSR_S_HALT 0x00020000u

#define SFI_ARMV7M_AIRCR_VECTKEY 0x05FA0000u /* key for writes to AIRCR */
#define SFI_ARMV7M_AIRCR_VECTRESET 0x1u      /* core-only reset */
#define SFI_ARMV7M_AIRCR_SYSRESETREQ 0x4u    /* system reset request */

/* The words the drivers write: halt (keeping debug enabled), run, system and core reset. */
#define SFI_ARMV7M_DHCSR_HALT                                                                 \
    (SFI_ARMV7M_DHCSR_DBGKEY | SFI_ARMV7M_DHCSR_C_HALT | SFI_ARMV7M_DHCSR_C_DEBUGEN)
#define SFI_ARMV7M_DHCSR_RUN (SFI_ARMV7M_DHCSR_DBGKEY | SFI_ARMV7M_DHCSR_C_DEBUGEN)
#define SFI_ARMV7M_AIRCR_SYSRESET (SFI_ARMV7M_AIRCR_VECTKEY | SFI_ARMV7M_AIRCR_SYSRESETREQ)
#define SFI_ARMV7M_AIRCR_CORERESET (SFI_ARMV7M_AIRCR_VECTKEY | SFI_ARMV7M_AIRCR_VECTRESET)

#define SFI_ARMV7M_DEMCR_VC_CORERESET 0x1u /* halt on the reset vector */
#define SFI_ARMV7M_DEMCR_TRCENA 0x01000000u

#endif
