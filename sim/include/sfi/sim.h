/* sim.h: the simulated STM32H7 (DEV_ID 0x450, 0x480, 0x483): memory map, DBGMCU IDs, flash
 * controller, option bytes, RDP, a Cortex-M7 debug surface, fault knobs and the hooks the
 * simulated RSS plugs into. Device data (IDs, memory map, geometry, defaults) comes from the
 * caller (the Lua device packs); this code holds only the register behaviour. */
#ifndef SFI_SIM_H
#define SFI_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "sfi/sfi.h"

#ifdef __cplusplus
extern "C" {
#endif

struct sfi_sim;

/* Register-layout variant of the flash controller. */
enum sfi_sim_variant {
    SFI_SIM_H74X = 0, /* 0x450: CR PSIZE/FW b6/START b7/SNB[10:8], 256-bit words */
    SFI_SIM_H7AB = 1, /* 0x480: CR FW b4/START b5/SNB[12:6], 128-bit words, WPSN 32 bits */
    SFI_SIM_H72X = 2, /* 0x483: as 0x450, one bank, OPTSR2 */
};

#define SFI_SIM_MAX_RAM 8
#define SFI_SIM_OB_WORDS 77      /* the 308-byte option window from FLASH+0x1C */
#define SFI_SIM_CERT_SIZE 136
#define SFI_SIM_PRIV_SIZE 32
#define SFI_SIM_SECSTATE_SIZE 64
#define SFI_SIM_MAX_REGS 64

/* A peripheral register the chip answers with its reset value (the device pack's
 * sim.peripherals table). A debugger write changes the bits in wmask and leaves the others
 * (wmask 0: a read-only register, the write is ignored). Values are reset at power-on. */
struct sfi_sim_reg {
    uint32_t addr, reset, wmask;
};

struct sfi_sim_region {
    const char *name;
    uint32_t start, size;
};

/* What to simulate. Strings and arrays are copied by sfi_sim_new. Zero values get defaults
 * where noted. */
struct sfi_sim_cfg {
    const char *part;               /* "stm32h753" (informative) */
    enum sfi_sim_variant variant;
    uint32_t dev_id, rev_id;        /* DBGMCU_IDCODE = rev_id << 16 | idcode_res | dev_id */
    uint32_t idcode_res;            /* reserved bits 15:12 as read (0x6000 on a real H743) */
    uint32_t cpuid, dpidr;
    uint32_t flash_kb;              /* value of the flash size register (and flash present) */
    unsigned nbanks;                /* 1 or 2 */
    uint32_t bank_start[2], bank_size[2];
    uint32_t sector_size, flash_word; /* bytes */
    uint32_t flash_regs;            /* 0x52002000 */
    uint32_t idcode_addr;           /* 0x5C001000 (also seen at 0xE00E1000) */
    uint32_t fsize_addr, uid_addr, bl_addr;
    unsigned nram;
    struct sfi_sim_region ram[SFI_SIM_MAX_RAM];
    uint32_t sys_start, sys_size;   /* system memory (read-only to the debugger) */
    uint8_t bl_version;
    uint8_t uid[12];
    /* Option window defaults (words at window offset 4*i), used on a blank chip. */
    uint32_t ob_default[SFI_SIM_OB_WORDS];
    /* RSS trigger and identity (model addresses, from the pack); 0 = absent. */
    uint32_t rss_mailbox, rss_magic, rss_result, cert_addr;
    /* Knobs. */
    unsigned unreachable_after_reset, unreachable_after_rss;
    unsigned usb_error_every;       /* every Nth debug operation fails with SFI_E_IO */
    unsigned delay_ms;              /* every debug operation takes this long (a slow chip) */
    unsigned long power_loss_at_op; /* lose power at debug operation N (1-based), 0 = never */
    const char *power_loss_at_name; /* or at the named event: erase|program|optstart|rss|reset */
    const char *state_file;         /* persist the chip here (loaded on new, saved on save) */
    /* The firmware in flash disables the debug port when it runs (after power-on or a reset
     * that lets it run): only a connect under reset reaches the chip while the boot address
     * holds a vector table (model). */
    unsigned debug_disabled;
    /* The next N option-byte launches leave OPT_BUSY set until a hardware reset (model). */
    unsigned opt_busy_stuck;
    /* The chip's own time (the device pack's timing table, knob timing=datasheet; all zero:
     * instant). Microseconds; the thread that asked sleeps that long times time_scale, as a
     * host waits for a real chip. sector/bank erase per erase, word per flash word
     * programmed (debugger or RSS), ob per option-byte launch, regression added to a launch
     * that regresses RDP 1 -> 0, reset per system reset, connect per debug connect,
     * rss_part per RSS run and rss_per_kib per KiB the RSS programs (its decryption). */
    struct sfi_sim_timing {
        uint32_t sector_erase_us, bank_erase_us, word_program_us, ob_program_us;
        uint32_t regression_us, reset_us, connect_us, rss_part_us, rss_per_kib_us;
    } timing;
    double time_scale;              /* 0 = 1 (real time); 0.01 = 1 % of it */
    /* FLASH_ACR after every reset (LATENCY/WRHIGHFREQ default of the variant). */
    uint32_t acr_reset;
    /* Peripheral registers (RCC, DBGMCU...) answered with their reset values. */
    unsigned nregs;
    struct sfi_sim_reg regs[SFI_SIM_MAX_REGS];
};

/* ---- life cycle ------------------------------------------------------------------------ */

/* Creates a chip; loads cfg->state_file if it exists. Errors: SFI_E_INVALID (bad cfg),
 * SFI_E_NOMEM, SFI_E_FORMAT (state file corrupt or for another device), SFI_E_IO. */
int sfi_sim_new(struct sfi_ctx *ctx, const struct sfi_sim_cfg *cfg, struct sfi_sim **out);
/* Drops one reference (sfi_sim_new gives one); frees at zero. NULL-safe. Does not save. */
void sfi_sim_free(struct sfi_sim *sim);
struct sfi_sim *sfi_sim_ref(struct sfi_sim *sim);
const struct sfi_sim_cfg *sfi_sim_config(const struct sfi_sim *sim);

/* Writes the persistent state (flash, option words, identity, security state) to
 * cfg->state_file atomically (temp + rename). No state file: SFI_OK. Errors: SFI_E_IO. */
int sfi_sim_save(struct sfi_sim *sim);
/* Loads a state image from memory (what sfi_sim_new does with the file). Errors:
 * SFI_E_FORMAT naming the bad field. The chip is unchanged on error. */
int sfi_sim_load_state(struct sfi_sim *sim, const uint8_t *buf, size_t n);

/* ---- the debug side (what a probe sees) ----------------------------------------------- */

enum sfi_sim_connect { SFI_SIM_CONNECT_NORMAL, SFI_SIM_CONNECT_HOTPLUG, SFI_SIM_CONNECT_UNDER_RESET };
enum sfi_sim_reset { SFI_SIM_RESET_SW, SFI_SIM_RESET_HW, SFI_SIM_RESET_CORE };

/* Debug port connect. A lost power supply comes back here. Errors: SFI_E_NO_DEVICE (debug port
 * silent: unreachable knob, RDP level 2), SFI_E_IO (usb_error_every). */
int sfi_sim_connect(struct sfi_sim *sim, enum sfi_sim_connect mode);
/* SW = system reset (AIRCR SYSRESETREQ), HW = NRST, CORE = VECTRESET (core only). A system
 * reset runs the RSS trigger. Errors as connect. */
int sfi_sim_reset(struct sfi_sim *sim, enum sfi_sim_reset kind);
/* Debug (AHB-AP) memory access. Registers need aligned 32-bit writes. Errors:
 * SFI_E_NO_DEVICE (not connected, power lost), SFI_E_LOCKED (flash under RDP level 1, PCROP),
 * SFI_E_TARGET (bus fault: outside the map, read-only memory), SFI_E_IO (fault knob). */
int sfi_sim_read(struct sfi_sim *sim, uint32_t addr, void *buf, size_t n);
int sfi_sim_write(struct sfi_sim *sim, uint32_t addr, const void *buf, size_t n);
int sfi_sim_connected(const struct sfi_sim *sim);
/* The debugger leaves (the port is free for the next connect). */
void sfi_sim_disconnect(struct sfi_sim *sim);
/* Debug operations counted so far (fault knobs count the same way). */
unsigned long sfi_sim_ops(const struct sfi_sim *sim);
/* The chip time the timing model charged so far, in microseconds of real (unscaled) time. */
uint64_t sfi_sim_chip_us(const struct sfi_sim *sim);

/* ---- privileged (RSS-level) access: no debug restrictions, no fault knobs ------------- */

/* RAM / system memory / registers-free access. Flash is readable, not writable, here.
 * Errors: SFI_E_TARGET (outside the map or flash write). */
int sfi_sim_priv_read(struct sfi_sim *sim, uint32_t addr, void *buf, size_t n);
int sfi_sim_priv_write(struct sfi_sim *sim, uint32_t addr, const void *buf, size_t n);
/* Programs flash bytes. Every flash word touched must be erased (never programmed since the
 * last erase: ECC rule); bytes of a touched word outside [addr, addr+n) stay 0xFF and the
 * word counts as programmed. Nothing is written on error. Errors: SFI_E_TARGET (outside flash,
 * word already programmed). */
int sfi_sim_priv_program(struct sfi_sim *sim, uint32_t addr, const void *buf, size_t n);
/* Erases every sector touched by [addr, addr+n) (ignores write protection). */
int sfi_sim_priv_erase(struct sfi_sim *sim, uint32_t addr, size_t n);
/* Option window words by offset (0..0x130, step 4; offset k is register FLASH+0x1C+k).
 * Setting a CUR offset of a CUR/PRG pair sets both (as after OPTSTART); a PRG offset sets PRG
 * only. No rules apply (RDP regression erases nothing). Errors: SFI_E_INVALID (offset). */
int sfi_sim_ob_get(const struct sfi_sim *sim, unsigned off, uint32_t *v);
int sfi_sim_ob_set(struct sfi_sim *sim, unsigned off, uint32_t v);
/* The RSS's persistent "security state" (opaque, SFI_SIM_SECSTATE_SIZE bytes, zero at
 * first power-on, kept in the state file). */
void sfi_sim_get_secstate(const struct sfi_sim *sim, uint8_t out[SFI_SIM_SECSTATE_SIZE]);
void sfi_sim_set_secstate(struct sfi_sim *sim, const uint8_t in[SFI_SIM_SECSTATE_SIZE]);

/* Chip identity: a P-256 private key (32 bytes) and the 136-byte chip certificate. The
 * certificate becomes readable by the debugger at cfg->cert_addr (model). get: SFI_E_NOT_FOUND
 * when none was set. */
void sfi_sim_set_identity(struct sfi_sim *sim, const uint8_t priv[SFI_SIM_PRIV_SIZE],
                          const uint8_t cert[SFI_SIM_CERT_SIZE]);
int sfi_sim_get_identity(const struct sfi_sim *sim, uint8_t priv[SFI_SIM_PRIV_SIZE],
                         uint8_t cert[SFI_SIM_CERT_SIZE]);

/* The RSS trigger (model). When the debugger has written cfg->rss_magic to cfg->rss_mailbox
 * and then a system reset happens (AIRCR SYSRESETREQ, SW/HW reset) while OPTSR_CUR.SECURITY=1,
 * the sim clears the mailbox, calls rss(ud, sim) during the reset (use the priv_* calls), and
 * stores its return value at cfg->rss_result. The debug port then stays silent for
 * cfg->unreachable_after_rss connects. Without a callback the reset is a plain reset. */
typedef int (*sfi_sim_rss_fn)(void *ud, struct sfi_sim *sim);
void sfi_sim_set_rss(struct sfi_sim *sim, sfi_sim_rss_fn rss, void *ud);
/* Number of times the RSS callback ran. */
unsigned sfi_sim_rss_runs(const struct sfi_sim *sim);

#ifdef __cplusplus
}
#endif
#endif
