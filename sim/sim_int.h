/* sim_int.h: the simulated chip's internal state, shared by sim.c (memory map, debug side,
 * core, faults, hooks), flash.c (flash controller, option bytes, RDP) and state.c (state
 * file). Not a public header. */
#ifndef SFI_SIM_INT_H
#define SFI_SIM_INT_H

#include "sfi/sim.h"

#define SIM_SPARSE 96

/* Flash register bits (SR / CCR positions are shared by all variants). */
#define FL_LOCK 0x1u
#define FL_PG 0x2u
#define FL_SER 0x4u
#define FL_BER 0x8u
#define SR_WBNE (1u << 1)
#define SR_QW (1u << 2)
#define SR_EOP (1u << 16)
#define SR_WRPERR (1u << 17)
#define SR_PGSERR (1u << 18)
#define SR_STRBERR (1u << 19)
#define SR_INCERR (1u << 21)
#define SR_RDPERR (1u << 23)
#define SR_SNECCERR (1u << 25)
#define SR_DBECCERR (1u << 26)
#define OPTCR_SWAP_BANK (1u << 31)
#define OPTSR_SWAP_BANK_OPT (1u << 31)

/* Entries of the programmed-word map (sim->prog). */
#define PROG_ERASED 0
#define PROG_DONE 1
#define PROG_ECC 2          /* programmed again without erase: the ECC no longer matches */
#define OPTCR_OPTLOCK 0x1u
#define OPTCR_OPTSTART 0x2u
#define OPTSR_BUSY 0x1u
#define OPTSR_SECURITY (1u << 21)
#define OPTSR_CHANGEERR (1u << 30)

#define WIN_OPTSR 0x00
#define WIN_OPTCCR 0x08
#define WIN_PRAR1 0x0C
#define WIN_SCAR1 0x14
#define WIN_WPSN1 0x1C
#define WIN_BOOT 0x24
#define WIN_PRAR2 0x10C
#define WIN_SCAR2 0x114
#define WIN_WPSN2 0x11C

struct sim_bank {
    uint32_t start, size;     /* present flash of this bank (size 0: absent) */
    uint32_t cr, sr;
    int keystate, keydead;
    uint8_t wbuf[32];
    uint32_t waddr, wmask;
    int wfill;
    uint32_t ecc_fa;          /* FLASH_ECC_FAx: flash word of the last ECC error */
};

struct sim_kv {
    uint32_t addr, val;
};

struct sfi_sim {
    struct sfi_ctx *ctx;
    unsigned refs;
    struct sfi_sim_cfg cfg;   /* string members point at the copies below */
    char *part, *state_file, *pl_name;
    uint8_t *flash;           /* bank 1 then bank 2 */
    uint8_t *prog;            /* one byte per flash word: 1 = programmed since erase */
    uint32_t flash_bytes, nwords;
    uint8_t *ram[SFI_SIM_MAX_RAM];
    uint8_t *sys;
    struct sim_bank bank[2];
    uint32_t ob[SFI_SIM_OB_WORDS];
    uint32_t acr, optcr;
    int swapped;              /* effective bank swap (OPTCR.SWAP_BANK), latched at reset */
    uint32_t regval[SFI_SIM_MAX_REGS];
    int optkeystate, optkeydead;
    /* core and debug */
    uint32_t dhcsr_ctrl, demcr, dfsr, dcrdr, aircr_prigroup;
    int halted, reset_st;
    uint32_t coreregs[0x60];
    struct sim_kv sparse[SIM_SPARSE];
    unsigned nsparse;
    /* identity and RSS */
    int has_id;
    uint8_t priv[SFI_SIM_PRIV_SIZE], cert[SFI_SIM_CERT_SIZE];
    uint8_t secstate[SFI_SIM_SECSTATE_SIZE];
    sfi_sim_rss_fn rss;
    void *rss_ud;
    unsigned rss_runs;
    /* link and faults */
    int connected, powered, pl_fired;
    unsigned long power_cycles; /* seeds the undefined SRAM pattern at power-up */
    unsigned unreachable;
    unsigned long ops;
    int fw_locked;            /* debug_disabled: the firmware turned the debug port off */
    unsigned opt_stuck_left;  /* opt_busy_stuck launches still to hang */
    int opt_hold;             /* OPT_BUSY held until a hardware reset */
    uint64_t chip_us;         /* time charged by the timing model (unscaled) */
};

/* flash.c */
void sim_flash_reset(struct sfi_sim *sim);
int sim_flash_reg_read(struct sfi_sim *sim, uint32_t off, uint32_t *v);
int sim_flash_reg_write(struct sfi_sim *sim, uint32_t off, uint32_t v);
int sim_flash_write(struct sfi_sim *sim, unsigned b, uint32_t addr, const uint8_t *p, size_t n);
int sim_flash_bank_of(const struct sfi_sim *sim, uint32_t addr);
uint8_t *sim_flash_ptr(struct sfi_sim *sim, unsigned b, uint32_t addr);
unsigned sim_rdp_level(const struct sfi_sim *sim);
int sim_pcrop_hit(const struct sfi_sim *sim, uint32_t addr, size_t n);
/* A debug read of flash [addr, addr+n) in bank b: the RDP, PCROP and ECC checks with their
 * SR flags (RDPERR, DBECCERR and FLASH_ECC_FA). SFI_OK or SFI_E_LOCKED / SFI_E_TARGET. */
int sim_flash_read_check(struct sfi_sim *sim, unsigned b, uint32_t addr, size_t n);
void sim_erase_range(struct sfi_sim *sim, uint32_t addr, size_t n);
int sim_win_pair(const struct sfi_sim *sim, unsigned off, unsigned *cur, unsigned *prg);

/* chip.c */
int sim_power_event(struct sfi_sim *sim, const char *name);
/* The chip is busy for us microseconds (scaled by time_scale): the caller's thread sleeps. */
void sim_spend(struct sfi_sim *sim, uint64_t us);
int sim_system_reset(struct sfi_sim *sim, int keep_link);

/* state.c */
uint32_t sim_crc32(const uint8_t *p, size_t n);
int sim_load_file(struct sfi_sim *sim);

#endif
