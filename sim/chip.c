/* chip.c: the simulated STM32H7's memory map and debug side: RAM, system memory, ID words,
 * the Cortex-M7 debug registers (SCS), DBGMCU, resets, the fault knobs, privileged access,
 * chip identity and the RSS trigger. The flash controller lives in flash.c. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>

#include "sim_int.h"

#define SCS_CPUID 0xE000ED00u
#define SCS_AIRCR 0xE000ED0Cu
#define SCS_DFSR 0xE000ED30u
#define SCS_DHCSR 0xE000EDF0u
#define SCS_DCRSR 0xE000EDF4u
#define SCS_DCRDR 0xE000EDF8u
#define SCS_DEMCR 0xE000EDFCu
#define DBGMCU_AP2 0xE00E1000u

static char *dupstr(const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static int cfg_check(struct sfi_ctx *ctx, const struct sfi_sim_cfg *c)
{
    if (c->nbanks < 1 || c->nbanks > 2)
        return sfi_seterr(ctx, SFI_E_INVALID, "sim: nbanks must be 1 or 2");
    if (c->flash_word != 16 && c->flash_word != 32)
        return sfi_seterr(ctx, SFI_E_INVALID, "sim: flash_word must be 16 or 32");
    if (c->sector_size < 256 || (c->sector_size & (c->sector_size - 1)))
        return sfi_seterr(ctx, SFI_E_INVALID, "sim: sector size must be a power of two");
    for (unsigned i = 0; i < c->nbanks; i++) {
        if (c->bank_size[i] == 0 || c->bank_size[i] > 0x1000000 ||
            c->bank_size[i] % c->sector_size)
            return sfi_seterr(ctx, SFI_E_INVALID, "sim: bank %u size invalid", i + 1);
    }
    if (c->nregs > SFI_SIM_MAX_REGS)
        return sfi_seterr(ctx, SFI_E_INVALID, "sim: too many peripheral registers (max %d)",
                          SFI_SIM_MAX_REGS);
    for (unsigned i = 0; i < c->nregs; i++)
        if (c->regs[i].addr & 3)
            return sfi_seterr(ctx, SFI_E_INVALID, "sim: peripheral register 0x%08X is not "
                              "32-bit aligned", (unsigned)c->regs[i].addr);
    if (c->nram > SFI_SIM_MAX_RAM)
        return sfi_seterr(ctx, SFI_E_INVALID, "sim: too many RAM regions");
    for (unsigned i = 0; i < c->nram; i++)
        if (c->ram[i].size == 0 || c->ram[i].size > 0x1000000)
            return sfi_seterr(ctx, SFI_E_INVALID, "sim: RAM region %u size invalid", i);
    if (c->sys_size == 0 || c->sys_size > 0x100000)
        return sfi_seterr(ctx, SFI_E_INVALID, "sim: system memory size invalid");
    if (c->flash_regs == 0 || c->idcode_addr == 0)
        return sfi_seterr(ctx, SFI_E_INVALID, "sim: register addresses missing");
    return SFI_OK;
}

/* Bytes of the ID words that live outside system memory (0x480 keeps them near flash). */
static int info_byte(const struct sfi_sim *sim, uint32_t a, uint8_t *b)
{
    const struct sfi_sim_cfg *c = &sim->cfg;
    if (c->uid_addr && a >= c->uid_addr && a - c->uid_addr < 12) {
        *b = c->uid[a - c->uid_addr];
        return 1;
    }
    if (c->fsize_addr && a >= c->fsize_addr && a - c->fsize_addr < 4) {
        uint32_t k = a - c->fsize_addr;
        *b = k == 0 ? (uint8_t)c->flash_kb : k == 1 ? (uint8_t)(c->flash_kb >> 8) : 0xFF;
        return 1;
    }
    if (c->bl_addr && a == c->bl_addr) {
        *b = c->bl_version;
        return 1;
    }
    return 0;
}

static void sys_put(struct sfi_sim *sim, uint32_t a, uint8_t b)
{
    if (a >= sim->cfg.sys_start && a - sim->cfg.sys_start < sim->cfg.sys_size)
        sim->sys[a - sim->cfg.sys_start] = b;
}

static void sys_fill_ids(struct sfi_sim *sim)
{
    const struct sfi_sim_cfg *c = &sim->cfg;
    for (uint32_t i = 0; i < 4; i++) {
        uint8_t b;
        if (c->fsize_addr && info_byte(sim, c->fsize_addr + i, &b))
            sys_put(sim, c->fsize_addr + i, b);
    }
    for (uint32_t i = 0; i < 12 && c->uid_addr; i++)
        sys_put(sim, c->uid_addr + i, c->uid[i]);
    if (c->bl_addr)
        sys_put(sim, c->bl_addr, c->bl_version);
    for (uint32_t i = 0; i < SFI_SIM_CERT_SIZE && c->cert_addr; i++)
        sys_put(sim, c->cert_addr + i, sim->has_id ? sim->cert[i] : 0xFF);
}

static void core_reset(struct sfi_sim *sim, int halt)
{
    uint32_t boot = (sim->ob[WIN_BOOT / 4] & 0xFFFF) << 16, sp = 0, pc = 0;
    memset(sim->coreregs, 0, sizeof sim->coreregs);
    sfi_sim_priv_read(sim, boot, &sp, 4);
    sfi_sim_priv_read(sim, boot + 4, &pc, 4);
    sim->coreregs[13] = sp;
    sim->coreregs[17] = sp;
    sim->coreregs[15] = pc & ~1u;
    sim->coreregs[16] = 0x01000000;
    sim->coreregs[14] = 0xFFFFFFFF;
    sim->reset_st = 1;
    sim->halted = halt || ((sim->demcr & 1) && (sim->dhcsr_ctrl & 1));
    if (sim->halted)
        sim->dfsr |= (sim->demcr & 1) ? 0x8 : 0x1;
}

/* Knob debug_disabled (model): the firmware at the boot address turns the debug port off as
 * soon as it runs, so only a connect under reset (core held) reaches the chip. An erased boot
 * address holds no firmware. */
static void firmware_runs(struct sfi_sim *sim)
{
    uint32_t boot = (sim->ob[WIN_BOOT / 4] & 0xFFFF) << 16, sp = 0xFFFFFFFFu;
    if (!sim->cfg.debug_disabled)
        return;
    sfi_sim_priv_read(sim, boot, &sp, 4);
    if (sp != 0xFFFFFFFFu) {
        sim->fw_locked = 1;
        sim->connected = 0;
    }
}

static void power_on(struct sfi_sim *sim)
{
    /* SRAM holds no defined value after power-up: fill it with a pattern (never all zeros,
     * so a result word that nobody wrote cannot read as a success code). */
    uint32_t x = 0x9E3779B9u ^ (uint32_t)sim->power_cycles++;
    for (unsigned i = 0; i < sim->cfg.nram; i++) {
        uint8_t *m = sim->ram[i];
        for (uint32_t k = 0; k + 4 <= sim->cfg.ram[i].size; k += 4) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            memcpy(m + k, &x, 4);
        }
    }
    sim->dhcsr_ctrl = sim->demcr = sim->dfsr = sim->dcrdr = 0;
    sim->nsparse = 0;
    sim->opt_hold = 0;
    for (unsigned i = 0; i < sim->cfg.nregs; i++)
        sim->regval[i] = sim->cfg.regs[i].reset;
    sim_flash_reset(sim);
    core_reset(sim, 0);
    sim->powered = 1;
    firmware_runs(sim);
}

int sfi_sim_new(struct sfi_ctx *ctx, const struct sfi_sim_cfg *cfg, struct sfi_sim **out)
{
    int rc = cfg_check(ctx, cfg);
    if (rc)
        return rc;
    struct sfi_sim *sim = calloc(1, sizeof *sim);
    if (!sim)
        return SFI_E_NOMEM;
    sim->ctx = ctx;
    sim->refs = 1;
    sim->cfg = *cfg;
    sim->opt_stuck_left = cfg->opt_busy_stuck;
    sim->part = dupstr(cfg->part);
    sim->state_file = dupstr(cfg->state_file);
    sim->pl_name = dupstr(cfg->power_loss_at_name);
    sim->cfg.part = sim->part;
    sim->cfg.state_file = sim->state_file;
    sim->cfg.power_loss_at_name = sim->pl_name;
    for (unsigned i = 0; i < cfg->nram; i++)
        sim->cfg.ram[i].name = NULL;
    uint32_t left = cfg->flash_kb * 1024u;
    for (unsigned b = 0; b < cfg->nbanks; b++) {
        uint32_t sz = left < cfg->bank_size[b] ? left : cfg->bank_size[b];
        sim->bank[b].start = cfg->bank_start[b];
        sim->bank[b].size = sz;
        left -= sz;
        sim->flash_bytes += sz;
    }
    sim->nwords = sim->flash_bytes / cfg->flash_word;
    sim->flash = malloc(sim->flash_bytes ? sim->flash_bytes : 1);
    sim->prog = calloc(sim->nwords ? sim->nwords : 1, 1);
    sim->sys = malloc(cfg->sys_size);
    int bad = !sim->flash || !sim->prog || !sim->sys ||
              (cfg->part && !sim->part) || (cfg->state_file && !sim->state_file) ||
              (cfg->power_loss_at_name && !sim->pl_name);
    for (unsigned i = 0; i < cfg->nram && !bad; i++) {
        sim->ram[i] = calloc(1, cfg->ram[i].size);
        bad = !sim->ram[i];
    }
    if (bad) {
        sfi_sim_free(sim);
        return SFI_E_NOMEM;
    }
    memset(sim->flash, 0xFF, sim->flash_bytes);
    memset(sim->sys, 0xFF, cfg->sys_size);
    memcpy(sim->ob, cfg->ob_default, sizeof sim->ob);
    if (sim->state_file) {
        rc = sim_load_file(sim);
        if (rc) {
            sfi_sim_free(sim);
            return rc;
        }
    }
    sys_fill_ids(sim);
    power_on(sim);
    *out = sim;
    return SFI_OK;
}

struct sfi_sim *sfi_sim_ref(struct sfi_sim *sim)
{
    if (sim)
        sim->refs++;
    return sim;
}

void sfi_sim_free(struct sfi_sim *sim)
{
    if (!sim || --sim->refs > 0)
        return;
    free(sim->flash);
    free(sim->prog);
    free(sim->sys);
    for (unsigned i = 0; i < SFI_SIM_MAX_RAM; i++)
        free(sim->ram[i]);
    free(sim->part);
    free(sim->state_file);
    free(sim->pl_name);
    sfi_wipe(sim->priv, sizeof sim->priv);
    sfi_wipe(sim->secstate, sizeof sim->secstate);
    free(sim);
}

const struct sfi_sim_cfg *sfi_sim_config(const struct sfi_sim *sim)
{
    return &sim->cfg;
}

/* ---- faults ---------------------------------------------------------------------------- */

static int lose_power(struct sfi_sim *sim, const char *why)
{
    sim->pl_fired = 1;
    sim->powered = 0;
    sim->connected = 0;
    sfi_log(sim->ctx, SFI_LOG_DEBUG, "sim: power lost (%s)", why);
    return sfi_seterr(sim->ctx, SFI_E_NO_DEVICE, "sim: target lost power at %s", why);
}

/* A named event (erase, program, optstart, rss, reset): SFI_E_NO_DEVICE if power fails now. */
int sim_power_event(struct sfi_sim *sim, const char *name)
{
    if (!sim->pl_fired && sim->pl_name && strcmp(sim->pl_name, name) == 0)
        return lose_power(sim, name);
    return SFI_OK;
}

/* Counts one debug operation and applies the knobs that act per operation. */
static int debug_op(struct sfi_sim *sim, int need_link)
{
    sim->ops++;
    if (sim->cfg.delay_ms) {
        int rc = sfi_sleep_ms(sim->ctx, sim->cfg.delay_ms);
        if (rc != SFI_OK)
            return rc;
    }
    if (sim->cfg.usb_error_every && sim->ops % sim->cfg.usb_error_every == 0)
        return sfi_seterr(sim->ctx, SFI_E_IO, "sim: injected USB transfer error (operation %lu)",
                          sim->ops);
    if (!sim->pl_fired && sim->cfg.power_loss_at_op && sim->ops >= sim->cfg.power_loss_at_op)
        return lose_power(sim, "operation count");
    if (need_link && (!sim->powered || !sim->connected))
        return sfi_seterr(sim->ctx, SFI_E_NO_DEVICE, "sim: %s", sim->powered
                          ? "debug port not connected" : "target has no power (reconnect)");
    return SFI_OK;
}

unsigned long sfi_sim_ops(const struct sfi_sim *sim)
{
    return sim->ops;
}

int sfi_sim_connected(const struct sfi_sim *sim)
{
    return sim->connected && sim->powered;
}

void sfi_sim_disconnect(struct sfi_sim *sim)
{
    if (sim)
        sim->connected = 0;
}

/* ---- the timing model ---------------------------------------------------------------------- */

void sim_spend(struct sfi_sim *sim, uint64_t us)
{
    if (us == 0)
        return;
    sim->chip_us += us;
    double scale = sim->cfg.time_scale > 0 ? sim->cfg.time_scale : 1.0;
    uint64_t ns = (uint64_t)((double)us * 1000.0 * scale);
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ; /* a chip does not stop because the host was interrupted */
}

uint64_t sfi_sim_chip_us(const struct sfi_sim *sim)
{
    return sim->chip_us;
}

/* ---- resets and the RSS trigger ---------------------------------------------------------- */

static int run_rss(struct sfi_sim *sim)
{
    const struct sfi_sim_cfg *c = &sim->cfg;
    uint32_t mb = 0;
    if (!c->rss_mailbox || !sim->rss || sfi_sim_priv_read(sim, c->rss_mailbox, &mb, 4))
        return 0;
    if (mb != c->rss_magic || !(sim->ob[WIN_OPTSR / 4] & OPTSR_SECURITY))
        return 0;
    int rc = sim_power_event(sim, "rss");
    if (rc)
        return rc;
    uint32_t zero = 0;
    sfi_sim_priv_write(sim, c->rss_mailbox, &zero, 4);
    sim->rss_runs++;
    sim_spend(sim, c->timing.rss_part_us);
    uint32_t res = (uint32_t)sim->rss(sim->rss_ud, sim);
    if (c->rss_result)
        sfi_sim_priv_write(sim, c->rss_result, &res, 4);
    sfi_log(sim->ctx, SFI_LOG_DEBUG, "sim: RSS ran, result 0x%08X", (unsigned)res);
    return 1;
}

/* System reset. keep_link: the debugger holds the link (connect under reset). */
int sim_system_reset(struct sfi_sim *sim, int keep_link)
{
    int rc = sim_power_event(sim, "reset");
    if (rc)
        return rc;
    sim_spend(sim, sim->cfg.timing.reset_us);
    sim_flash_reset(sim);
    rc = run_rss(sim);
    if (rc < 0)
        return rc;
    core_reset(sim, keep_link);
    if (!keep_link && !sim->halted)
        firmware_runs(sim);
    if (rc == 1 && sim->cfg.unreachable_after_rss) {
        sim->unreachable = sim->cfg.unreachable_after_rss;
        sim->connected = 0;
    } else if (!keep_link && sim->cfg.unreachable_after_reset) {
        sim->unreachable = sim->cfg.unreachable_after_reset;
        sim->connected = 0;
    }
    if (sim_rdp_level(sim) == 2)
        sim->connected = 0;
    return SFI_OK;
}

int sfi_sim_connect(struct sfi_sim *sim, enum sfi_sim_connect mode)
{
    int rc = debug_op(sim, 0);
    if (rc)
        return rc;
    if (!sim->powered)
        power_on(sim);
    sim_spend(sim, sim->cfg.timing.connect_us);
    if (sim->fw_locked && mode != SFI_SIM_CONNECT_UNDER_RESET)
        return sfi_seterr(sim->ctx, SFI_E_NO_DEVICE, "sim: the firmware turned the debug port "
                          "off (only a connect under reset reaches the chip)");
    if (sim->unreachable > 0) {
        sim->unreachable--;
        return sfi_seterr(sim->ctx, SFI_E_NO_DEVICE, "sim: debug port does not answer "
                          "(%u more connect(s) will fail)", sim->unreachable);
    }
    if (sim_rdp_level(sim) == 2)
        return sfi_seterr(sim->ctx, SFI_E_NO_DEVICE,
                          "sim: debug port does not answer (RDP level 2: debug disabled)");
    sim->connected = 1;
    if (mode == SFI_SIM_CONNECT_UNDER_RESET) {
        sim->fw_locked = 0; /* the core is held in reset: the firmware never runs */
        sim->dhcsr_ctrl |= 0x3;
        rc = sim_system_reset(sim, 1);
        if (rc)
            return rc;
        sim->connected = sim_rdp_level(sim) != 2;
    } else if (mode == SFI_SIM_CONNECT_NORMAL) {
        sim->dhcsr_ctrl |= 0x3;
        sim->halted = 1;
        sim->dfsr |= 0x1;
    }
    return SFI_OK;
}

int sfi_sim_reset(struct sfi_sim *sim, enum sfi_sim_reset kind)
{
    int rc = debug_op(sim, 1);
    if (rc)
        return rc;
    if (kind == SFI_SIM_RESET_CORE) {
        core_reset(sim, 0);
        return SFI_OK;
    }
    if (kind == SFI_SIM_RESET_HW)
        sim->opt_hold = 0; /* NRST ends a hung option-byte launch */
    return sim_system_reset(sim, 0);
}

/* ---- memory map ---------------------------------------------------------------------- */

enum kind { K_NONE, K_RAM, K_SYS, K_FLASH };

/* Finds plain memory at a: returns its kind, a pointer and the bytes left in the region. */
static enum kind find_mem(struct sfi_sim *sim, uint32_t a, uint8_t **p, uint32_t *left,
                          unsigned *bank)
{
    const struct sfi_sim_cfg *c = &sim->cfg;
    for (unsigned i = 0; i < c->nram; i++) {
        if (a >= c->ram[i].start && a - c->ram[i].start < c->ram[i].size) {
            *p = sim->ram[i] + (a - c->ram[i].start);
            *left = c->ram[i].size - (a - c->ram[i].start);
            return K_RAM;
        }
    }
    int b = sim_flash_bank_of(sim, a);
    if (b >= 0) {
        *bank = (unsigned)b;
        *p = sim_flash_ptr(sim, (unsigned)b, a);
        *left = sim->bank[b].start + sim->bank[b].size - a;
        return K_FLASH;
    }
    if (a >= c->sys_start && a - c->sys_start < c->sys_size) {
        *p = sim->sys + (a - c->sys_start);
        *left = c->sys_size - (a - c->sys_start);
        return K_SYS;
    }
    return K_NONE;
}

static uint32_t *sparse(struct sfi_sim *sim, uint32_t a, int create)
{
    for (unsigned i = 0; i < sim->nsparse; i++)
        if (sim->sparse[i].addr == a)
            return &sim->sparse[i].val;
    if (!create || sim->nsparse == SIM_SPARSE)
        return NULL;
    sim->sparse[sim->nsparse].addr = a;
    sim->sparse[sim->nsparse].val = 0;
    return &sim->sparse[sim->nsparse++].val;
}

static int is_dbgmcu(const struct sfi_sim *sim, uint32_t a)
{
    return (a >= (sim->cfg.idcode_addr & ~0xFFFFu) && a - (sim->cfg.idcode_addr & ~0xFFFFu) < 0x10000)
           || (a >= DBGMCU_AP2 && a < DBGMCU_AP2 + 0x1000);
}

/* Index of the peripheral register at a in cfg.regs, or -1. */
static int periph(const struct sfi_sim *sim, uint32_t a)
{
    if (a >= DBGMCU_AP2 && a < DBGMCU_AP2 + 0x4000) /* DBGMCU..SWTF seen through AP2 */
        a = (sim->cfg.idcode_addr & ~0xFFFu) + (a - DBGMCU_AP2);
    for (unsigned i = 0; i < sim->cfg.nregs; i++)
        if (sim->cfg.regs[i].addr == a)
            return (int)i;
    return -1;
}

static int is_reg(const struct sfi_sim *sim, uint32_t a)
{
    return (a >= sim->cfg.flash_regs && a - sim->cfg.flash_regs < 0x200) || is_dbgmcu(sim, a) ||
           (a >= 0xE0000000u && a < 0xE0100000u) || periph(sim, a & ~3u) >= 0;
}

static int reg_read(struct sfi_sim *sim, uint32_t a, uint32_t *v)
{
    const struct sfi_sim_cfg *c = &sim->cfg;
    if (a >= c->flash_regs && a - c->flash_regs < 0x200)
        return sim_flash_reg_read(sim, a - c->flash_regs, v);
    if (a == c->idcode_addr || a == DBGMCU_AP2) {
        *v = (c->rev_id << 16) | (c->idcode_res & 0xF000) | (c->dev_id & 0xFFF);
        return SFI_OK;
    }
    int r = periph(sim, a);
    if (r >= 0) {
        *v = sim->regval[r];
        return SFI_OK;
    }
    switch (a) {
    case SCS_CPUID: *v = c->cpuid; return SFI_OK;
    case SCS_AIRCR: *v = 0xFA050000u | sim->aircr_prigroup; return SFI_OK;
    case SCS_DFSR: *v = sim->dfsr; return SFI_OK;
    case SCS_DHCSR:
        *v = sim->dhcsr_ctrl | (1u << 16) | (sim->halted ? (1u << 17) : (1u << 24)) |
             (sim->reset_st ? (1u << 25) : 0);
        sim->reset_st = 0;
        return SFI_OK;
    case SCS_DCRDR: *v = sim->dcrdr; return SFI_OK;
    case SCS_DEMCR: *v = sim->demcr; return SFI_OK;
    case 0xE000EF40u: *v = 0x10110221; return SFI_OK;   /* MVFR0: double-precision FPU */
    case 0xE000EF44u: *v = 0x12000011; return SFI_OK;   /* MVFR1 */
    case 0xE000EF48u: *v = 0x00000040; return SFI_OK;   /* MVFR2 */
    case 0xE0001000u: {                                  /* DWT_CTRL: 4 comparators */
        uint32_t *s = sparse(sim, a, 0);
        *v = 0x40000000u | (s ? (*s & 0xFFFFFFF) : 0);
        return SFI_OK;
    }
    case 0xE0002000u: {                                  /* FP_CTRL: v2, 8 code comparators */
        uint32_t *s = sparse(sim, a, 0);
        *v = 0x10000080u | (s ? (*s & 1) : 0);
        return SFI_OK;
    }
    default: {
        uint32_t *s = sparse(sim, a, 0);
        *v = s ? *s : 0;
        return SFI_OK;
    }
    }
}

static int reg_write(struct sfi_sim *sim, uint32_t a, uint32_t v)
{
    const struct sfi_sim_cfg *c = &sim->cfg;
    if (a >= c->flash_regs && a - c->flash_regs < 0x200)
        return sim_flash_reg_write(sim, a - c->flash_regs, v);
    int r = periph(sim, a);
    if (r >= 0) {   /* writable bits change, read-only ones ignore the write (model) */
        sim->regval[r] = (sim->regval[r] & ~c->regs[r].wmask) | (v & c->regs[r].wmask);
        return SFI_OK;
    }
    switch (a) {
    case SCS_AIRCR:
        if ((v >> 16) != 0x05FA)
            return SFI_OK;
        sim->aircr_prigroup = v & 0x700;
        if (v & 0x4)
            return sim_system_reset(sim, 0);
        if (v & 0x1)
            core_reset(sim, 0);
        return SFI_OK;
    case SCS_DFSR: sim->dfsr &= ~v; return SFI_OK;
    case SCS_DHCSR:
        if ((v >> 16) != 0xA05F)
            return SFI_OK;
        sim->dhcsr_ctrl = v & 0xF;
        if ((v & 1) && (v & 2)) {
            if (!sim->halted)
                sim->dfsr |= 0x1;
            sim->halted = 1;
        } else if ((v & 1) && !(v & 2)) {
            sim->halted = (v & 4) ? 1 : 0;   /* a single step ends halted again */
        }
        return SFI_OK;
    case SCS_DCRSR: {
        uint32_t sel = v & 0x7F;
        if (sel < 0x60) {
            if (v & (1u << 16))
                sim->coreregs[sel] = sim->dcrdr;
            else
                sim->dcrdr = sim->coreregs[sel];
        }
        return SFI_OK;
    }
    case SCS_DCRDR: sim->dcrdr = v; return SFI_OK;
    case SCS_DEMCR: sim->demcr = v & 0x010F07F1u; return SFI_OK;
    case SCS_CPUID:
        return SFI_OK;
    default: {
        if (a == c->idcode_addr || a == DBGMCU_AP2)
            return SFI_OK;
        uint32_t *s = sparse(sim, a, 1);
        if (!s)
            return sfi_seterr(sim->ctx, SFI_E_TARGET, "sim: too many peripheral registers used");
        *s = v;
        return SFI_OK;
    }
    }
}

static int busfault(struct sfi_sim *sim, uint32_t a, const char *what)
{
    return sfi_seterr(sim->ctx, SFI_E_TARGET, "sim: bus fault %s 0x%08X (%s)", what, (unsigned)a,
                      "outside the memory map");
}

/* Debug-side read: flash answers with RDP, PCROP and ECC applied. */
static int mem_read(struct sfi_sim *sim, uint32_t addr, uint8_t *out, size_t n)
{
    while (n > 0) {
        uint8_t *p;
        uint32_t left;
        unsigned bank;
        enum kind k = find_mem(sim, addr, &p, &left, &bank);
        if (k != K_NONE) {
            size_t m = n < left ? n : left;
            if (k == K_FLASH) {
                int rc = sim_flash_read_check(sim, bank, addr, m);
                if (rc)
                    return rc;
            }
            memcpy(out, p, m);
            out += m;
            addr += (uint32_t)m;
            n -= m;
            continue;
        }
        uint8_t b;
        if (info_byte(sim, addr, &b)) {
            *out++ = b;
            addr++;
            n--;
            continue;
        }
        if (!is_reg(sim, addr))
            return busfault(sim, addr, "reading");
        uint32_t v;
        int rc = reg_read(sim, addr & ~3u, &v);
        if (rc)
            return rc;
        for (uint32_t i = addr & 3; i < 4 && n > 0; i++, n--, addr++)
            *out++ = (uint8_t)(v >> (8 * i));
    }
    return SFI_OK;
}

int sfi_sim_read(struct sfi_sim *sim, uint32_t addr, void *buf, size_t n)
{
    int rc = debug_op(sim, 1);
    if (rc)
        return rc;
    if (n > 0xFFFFFFFFu - addr + 1u && n != 0)
        return busfault(sim, addr, "reading");
    return mem_read(sim, addr, buf, n);
}

int sfi_sim_write(struct sfi_sim *sim, uint32_t addr, const void *buf, size_t n)
{
    int rc = debug_op(sim, 1);
    if (rc)
        return rc;
    const uint8_t *in = buf;
    while (n > 0) {
        uint8_t *p;
        uint32_t left = 0; /* find_mem leaves it unset for K_NONE */
        unsigned bank;
        enum kind k = find_mem(sim, addr, &p, &left, &bank);
        size_t m = n < left ? n : left;
        if (k == K_RAM) {
            memcpy(p, in, m);
        } else if (k == K_FLASH) {
            if (sim_rdp_level(sim) >= 1)
                return sfi_seterr(sim->ctx, SFI_E_LOCKED, "sim: write to flash 0x%08X refused: "
                                  "RDP level 1 blocks flash access over debug", (unsigned)addr);
            rc = sim_flash_write(sim, bank, addr, in, m);
            if (rc)
                return rc;
        } else if (k == K_SYS) {
            return sfi_seterr(sim->ctx, SFI_E_TARGET, "sim: bus fault writing 0x%08X "
                              "(system memory is read-only)", (unsigned)addr);
        } else {
            if (!is_reg(sim, addr))
                return busfault(sim, addr, "writing");
            if ((addr & 3) || n < 4)
                return sfi_seterr(sim->ctx, SFI_E_TARGET, "sim: register 0x%08X needs an aligned "
                                  "32-bit write", (unsigned)addr);
            uint32_t v = (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 |
                         (uint32_t)in[3] << 24;
            rc = reg_write(sim, addr, v);
            if (rc)
                return rc;
            m = 4;
        }
        in += m;
        addr += (uint32_t)m;
        n -= m;
    }
    return SFI_OK;
}

/* ---- privileged access ---------------------------------------------------------------- */

int sfi_sim_priv_read(struct sfi_sim *sim, uint32_t addr, void *buf, size_t n)
{
    uint8_t *out = buf;
    while (n > 0) {
        uint8_t *p, b;
        uint32_t left;
        unsigned bank;
        if (find_mem(sim, addr, &p, &left, &bank) != K_NONE) {
            size_t m = n < left ? n : left;
            memcpy(out, p, m);
            out += m;
            addr += (uint32_t)m;
            n -= m;
        } else if (info_byte(sim, addr, &b)) {
            *out++ = b;
            addr++;
            n--;
        } else {
            return busfault(sim, addr, "reading");
        }
    }
    return SFI_OK;
}

int sfi_sim_priv_write(struct sfi_sim *sim, uint32_t addr, const void *buf, size_t n)
{
    const uint8_t *in = buf;
    while (n > 0) {
        uint8_t *p;
        uint32_t left;
        unsigned bank;
        enum kind k = find_mem(sim, addr, &p, &left, &bank);
        if (k == K_FLASH)
            return sfi_seterr(sim->ctx, SFI_E_TARGET, "sim: 0x%08X is flash: use "
                              "sfi_sim_priv_program", (unsigned)addr);
        if (k == K_NONE)
            return busfault(sim, addr, "writing");
        size_t m = n < left ? n : left;
        memcpy(p, in, m);
        in += m;
        addr += (uint32_t)m;
        n -= m;
    }
    return SFI_OK;
}

int sfi_sim_priv_program(struct sfi_sim *sim, uint32_t addr, const void *buf, size_t n)
{
    if (n == 0)
        return SFI_OK;
    int b = sim_flash_bank_of(sim, addr);
    int e = sim_flash_bank_of(sim, (uint32_t)(addr + n - 1));
    if (b < 0 || e != b || n > sim->bank[b].size)
        return sfi_seterr(sim->ctx, SFI_E_TARGET, "sim: 0x%08X+%zu is not inside one flash bank",
                          (unsigned)addr, n);
    uint32_t fw = sim->cfg.flash_word;
    uint32_t first = addr & ~(fw - 1), last = (uint32_t)(addr + n - 1) & ~(fw - 1);
    for (uint32_t w = first;; w += fw) {
        uint32_t idx = (uint32_t)(sim_flash_ptr(sim, (unsigned)b, w) - sim->flash) / fw;
        if (sim->prog[idx] != PROG_ERASED)
            return sfi_seterr(sim->ctx, SFI_E_TARGET, "sim: flash word 0x%08X is already "
                              "programmed (erase first)", (unsigned)w);
        if (w == last)
            break;
    }
    const struct sfi_sim_timing *tm = &sim->cfg.timing;
    sim_spend(sim, (uint64_t)((last - first) / fw + 1) * tm->word_program_us +
                       (uint64_t)n * tm->rss_per_kib_us / 1024u);
    const uint8_t *in = buf;
    for (uint32_t w = first;; w += fw) {
        uint8_t *p = sim_flash_ptr(sim, (unsigned)b, w);
        for (uint32_t i = 0; i < fw; i++) {
            uint32_t a = w + i;
            if (a >= addr && a - addr < n)
                p[i] = in[a - addr];
        }
        sim->prog[(uint32_t)(p - sim->flash) / fw] = PROG_DONE;
        if (w == last)
            break;
    }
    return SFI_OK;
}

int sfi_sim_priv_erase(struct sfi_sim *sim, uint32_t addr, size_t n)
{
    if (n == 0)
        return SFI_OK;
    int b = sim_flash_bank_of(sim, addr);
    int e = sim_flash_bank_of(sim, (uint32_t)(addr + n - 1));
    if (b < 0 || e < 0)
        return sfi_seterr(sim->ctx, SFI_E_TARGET, "sim: 0x%08X+%zu is outside flash",
                          (unsigned)addr, n);
    uint32_t s = addr & ~(sim->cfg.sector_size - 1);
    uint32_t end = (uint32_t)(addr + n - 1) | (sim->cfg.sector_size - 1);
    sim_spend(sim, (uint64_t)((end - s) / sim->cfg.sector_size + 1) *
                       sim->cfg.timing.sector_erase_us);
    sim_erase_range(sim, s, (size_t)(end - s) + 1);
    return SFI_OK;
}

int sfi_sim_ob_get(const struct sfi_sim *sim, unsigned off, uint32_t *v)
{
    if (off % 4 || off / 4 >= SFI_SIM_OB_WORDS)
        return SFI_E_INVALID;
    *v = sim->ob[off / 4];
    return SFI_OK;
}

int sfi_sim_ob_set(struct sfi_sim *sim, unsigned off, uint32_t v)
{
    if (off % 4 || off / 4 >= SFI_SIM_OB_WORDS)
        return SFI_E_INVALID;
    unsigned cur, prg;
    sim->ob[off / 4] = v;
    if (sim_win_pair(sim, off, &cur, &prg) && cur == off)
        sim->ob[prg / 4] = off == WIN_OPTSR ? v & ~(OPTSR_BUSY | OPTSR_CHANGEERR) : v;
    return SFI_OK;
}

void sfi_sim_get_secstate(const struct sfi_sim *sim, uint8_t out[SFI_SIM_SECSTATE_SIZE])
{
    memcpy(out, sim->secstate, SFI_SIM_SECSTATE_SIZE);
}

void sfi_sim_set_secstate(struct sfi_sim *sim, const uint8_t in[SFI_SIM_SECSTATE_SIZE])
{
    memcpy(sim->secstate, in, SFI_SIM_SECSTATE_SIZE);
}

void sfi_sim_set_identity(struct sfi_sim *sim, const uint8_t priv[SFI_SIM_PRIV_SIZE],
                          const uint8_t cert[SFI_SIM_CERT_SIZE])
{
    memcpy(sim->priv, priv, SFI_SIM_PRIV_SIZE);
    memcpy(sim->cert, cert, SFI_SIM_CERT_SIZE);
    sim->has_id = 1;
    sys_fill_ids(sim);
}

int sfi_sim_get_identity(const struct sfi_sim *sim, uint8_t priv[SFI_SIM_PRIV_SIZE],
                         uint8_t cert[SFI_SIM_CERT_SIZE])
{
    if (!sim->has_id)
        return SFI_E_NOT_FOUND;
    if (priv)
        memcpy(priv, sim->priv, SFI_SIM_PRIV_SIZE);
    if (cert)
        memcpy(cert, sim->cert, SFI_SIM_CERT_SIZE);
    return SFI_OK;
}

void sfi_sim_set_rss(struct sfi_sim *sim, sfi_sim_rss_fn rss, void *ud)
{
    sim->rss = rss;
    sim->rss_ud = ud;
}

unsigned sfi_sim_rss_runs(const struct sfi_sim *sim)
{
    return sim->rss_runs;
}
