/* flash.c: the simulated STM32H7 embedded-flash controller (RM0433 register map, bank 2 at
 * +0x100 plus the bank-2 aliases): unlock keys, sector/bank erase, flash-word programming with
 * WBNE/QW/EOP and PGSERR/INCERR/WRPERR, a word programmed again without erase (ECC broken:
 * DBECCERR and FLASH_ECC_FA on its reads), option bytes through OPTKEYR/OPTCR/OPTSTART with
 * the CUR/PRG pairs, RDP levels and the level 1 -> 0 regression (DMEP/DMES), the PCROP rules
 * (RDPERR), bank swap (SWAP_BANK_OPT, effective at reset). Operations finish at once:
 * BSY/QW/OPT_BUSY never stay set. */
#include <string.h>

#include "sim_int.h"

#define KEY1 0x45670123u
#define KEY2 0xCDEF89ABu
#define OPTKEY1 0x08192A3Bu
#define OPTKEY2 0x4C5D6E7Fu

/* CUR/PRG pairs as option-window offsets; mask = variants having the pair (bit per variant). */
static const struct {
    unsigned cur, prg, variants, bank2;
} PAIRS[] = {
    {0x00, 0x04, 7, 0}, {0x0C, 0x10, 7, 0}, {0x14, 0x18, 7, 0}, {0x1C, 0x20, 7, 0},
    {0x24, 0x28, 7, 0}, {0x4C, 0x50, 2, 0}, {0x54, 0x58, 4, 0},
    {0x10C, 0x110, 3, 1}, {0x114, 0x118, 3, 1}, {0x11C, 0x120, 3, 1},
};
#define NPAIRS (sizeof PAIRS / sizeof PAIRS[0])

int sim_win_pair(const struct sfi_sim *sim, unsigned off, unsigned *cur, unsigned *prg)
{
    for (size_t i = 0; i < NPAIRS; i++) {
        if (!(PAIRS[i].variants & (1u << sim->cfg.variant)))
            continue;
        if (PAIRS[i].bank2 && sim->cfg.nbanks < 2)
            continue;
        if (off == PAIRS[i].cur || off == PAIRS[i].prg) {
            *cur = PAIRS[i].cur;
            *prg = PAIRS[i].prg;
            return 1;
        }
    }
    return 0;
}

unsigned sim_rdp_level(const struct sfi_sim *sim)
{
    unsigned rdp = (sim->ob[WIN_OPTSR / 4] >> 8) & 0xFF;
    return rdp == 0xAA ? 0 : rdp == 0xCC ? 2 : 1;
}

int sim_flash_bank_of(const struct sfi_sim *sim, uint32_t addr)
{
    for (unsigned b = 0; b < sim->cfg.nbanks; b++)
        if (sim->bank[b].size && addr >= sim->bank[b].start &&
            addr - sim->bank[b].start < sim->bank[b].size)
            return (int)b;
    return -1;
}

/* Logical bank b (the one at bank_start[b], driven by the bank-b registers) is physical bank
 * b ^ swapped: with SWAP_BANK the two arrays trade addresses (both banks have one size). */
uint8_t *sim_flash_ptr(struct sfi_sim *sim, unsigned b, uint32_t addr)
{
    uint32_t off = addr - sim->bank[b].start;
    return sim->flash + ((b ^ (unsigned)sim->swapped) ? sim->bank[0].size : 0) + off;
}

/* ---- protected areas ------------------------------------------------------------------ */

struct area {
    uint32_t lo, hi; /* [lo, hi) */
    int dme, on;
};

/* PRAR (pcrop = 1) or SCAR of bank b from the CUR words. start > end: disabled; for SCAR
 * start == end means the whole bank (RM0433). */
static struct area get_area(const struct sfi_sim *sim, unsigned b, int pcrop)
{
    struct area a = {0, 0, 0, 0};
    if (b >= sim->cfg.nbanks)
        return a;
    unsigned off = pcrop ? (b ? WIN_PRAR2 : WIN_PRAR1) : (b ? WIN_SCAR2 : WIN_SCAR1);
    uint32_t v = sim->ob[off / 4];
    uint32_t s = v & 0xFFF, e = (v >> 16) & 0xFFF;
    /* DMEx of the CUR word, or of the PRG word: a bank erase "with protection removal" is
     * asked by setting DMEx in the PRG register before BER (ST community thread "PCROP not
     * disabled after RDP regression") */
    a.dme = (int)((v | sim->ob[off / 4 + 1]) >> 31);
    if (s > e)
        return a;
    a.on = 1;
    uint32_t base = sim->cfg.bank_start[b];
    if (!pcrop && s == e) {
        a.lo = base;
        a.hi = base + sim->cfg.bank_size[b];
    } else {
        a.lo = base + (s << 8);
        a.hi = base + (e << 8) + 0x100;
    }
    return a;
}

int sim_pcrop_hit(const struct sfi_sim *sim, uint32_t addr, size_t n)
{
    for (unsigned b = 0; b < sim->cfg.nbanks; b++) {
        struct area a = get_area(sim, b, 1);
        if (a.on && addr < a.hi && addr + n > a.lo)
            return 1;
    }
    return 0;
}

static int sector_wrp(const struct sfi_sim *sim, unsigned b, uint32_t sector)
{
    uint32_t w = sim->ob[(b ? WIN_WPSN2 : WIN_WPSN1) / 4];
    unsigned bit = sim->cfg.variant == SFI_SIM_H7AB ? sector / 4 : sector;
    return bit < 32 && !((w >> bit) & 1);
}

static void erase_words(struct sfi_sim *sim, unsigned b, uint32_t lo, uint32_t hi,
                        const struct area *keep, size_t nkeep)
{
    uint32_t fw = sim->cfg.flash_word;
    for (uint32_t a = lo; a < hi; a += fw) {
        int kept = 0;
        for (size_t i = 0; i < nkeep && !kept; i++)
            kept = keep[i].on && a >= keep[i].lo && a < keep[i].hi;
        if (kept)
            continue;
        uint8_t *p = sim_flash_ptr(sim, b, a);
        memset(p, 0xFF, fw);
        sim->prog[(uint32_t)(p - sim->flash) / fw] = PROG_ERASED;
    }
}

void sim_erase_range(struct sfi_sim *sim, uint32_t addr, size_t n)
{
    for (unsigned b = 0; b < sim->cfg.nbanks; b++) {
        struct sim_bank *k = &sim->bank[b];
        uint64_t lo = addr > k->start ? addr : k->start;
        uint64_t hi = (uint64_t)addr + n;
        if (hi > (uint64_t)k->start + k->size)
            hi = (uint64_t)k->start + k->size;
        if (lo < hi)
            erase_words(sim, b, (uint32_t)lo, (uint32_t)hi, NULL, 0);
    }
}

/* Bank erase as done by a protected bank erase or an RDP regression: areas with DMEx = 0
 * survive; areas with DMEx = 1 are erased and removed (end := 0, start kept, so start > end;
 * model for the exact register value, matching the users' listings). */
static void erase_bank_protected(struct sfi_sim *sim, unsigned b)
{
    struct area keep[2];
    keep[0] = get_area(sim, b, 1);
    keep[1] = get_area(sim, b, 0);
    for (int i = 0; i < 2; i++)
        if (keep[i].dme)
            keep[i].on = 0;
    erase_words(sim, b, sim->bank[b].start, sim->bank[b].start + sim->bank[b].size, keep, 2);
    unsigned offs[2] = {b ? WIN_PRAR2 : WIN_PRAR1, b ? WIN_SCAR2 : WIN_SCAR1};
    for (int i = 0; i < 2; i++) {
        uint32_t v = sim->ob[offs[i] / 4];
        if (!((v | sim->ob[offs[i] / 4 + 1]) >> 31) || (v & 0xFFF) > ((v >> 16) & 0xFFF))
            continue;
        uint32_t s = v & 0xFFF;
        v = (v & 0x80000000u) | (s ? s : 0xFF);
        sim->ob[offs[i] / 4] = v;
        sim->ob[offs[i] / 4 + 1] = v;
    }
}

/* ---- controller -------------------------------------------------------------------------- */

static unsigned cr_fw(const struct sfi_sim *sim)
{
    return sim->cfg.variant == SFI_SIM_H7AB ? (1u << 4) : (1u << 6);
}

static unsigned cr_start(const struct sfi_sim *sim)
{
    return sim->cfg.variant == SFI_SIM_H7AB ? (1u << 5) : (1u << 7);
}

static unsigned cr_snb(const struct sfi_sim *sim, uint32_t cr)
{
    return sim->cfg.variant == SFI_SIM_H7AB ? (cr >> 6) & 0x7F : (cr >> 8) & 0x7;
}

void sim_flash_reset(struct sfi_sim *sim)
{
    for (unsigned b = 0; b < 2; b++) {
        struct sim_bank *k = &sim->bank[b];
        k->cr = FL_LOCK | (sim->cfg.variant == SFI_SIM_H7AB ? 0 : 0x30);
        k->sr = 0;
        k->keystate = k->keydead = 0;
        k->wfill = 0;
        k->wmask = 0;
        k->ecc_fa = 0;
    }
    sim->acr = sim->cfg.acr_reset;
    /* SWAP_BANK follows SWAP_BANK_OPT at reset (dual-bank parts with two equal banks) */
    sim->swapped = sim->cfg.nbanks == 2 && sim->cfg.variant != SFI_SIM_H72X &&
                   sim->bank[0].size == sim->bank[1].size &&
                   (sim->ob[WIN_OPTSR / 4] & OPTSR_SWAP_BANK_OPT) != 0;
    sim->optcr = OPTCR_OPTLOCK;
    sim->optkeystate = sim->optkeydead = 0;
    if (!sim->opt_hold)
        sim->ob[WIN_OPTSR / 4] &= ~OPTSR_BUSY;
}

static void commit_word(struct sfi_sim *sim, unsigned b)
{
    struct sim_bank *k = &sim->bank[b];
    uint32_t fw = sim->cfg.flash_word;
    uint8_t *p = sim_flash_ptr(sim, b, k->waddr);
    uint32_t idx = (uint32_t)(p - sim->flash) / fw;
    k->wfill = 0;
    k->wmask = 0;
    k->sr &= ~(SR_WBNE | SR_QW);
    sim_spend(sim, sim->cfg.timing.word_program_us);
    if (sim->prog[idx] != PROG_ERASED) {
        /* A word programmed again without erase is programmed (RM0433 4.3: a flash word is
         * programmed once after erase; ST community: no error flag, bits only go 1 -> 0,
         * reads then fault on the ECC). Its ECC no longer matches its data, except when the
         * same data is written again or the word is cleared to all zeros (model: the ECC of
         * zero data is zero; users clear words this way). */
        int same = memcmp(p, k->wbuf, fw) == 0, zero = 1;
        for (uint32_t i = 0; i < fw; i++) {
            p[i] &= k->wbuf[i];
            zero = zero && k->wbuf[i] == 0;
        }
        if (zero)
            sim->prog[idx] = PROG_DONE;
        else if (!same)
            sim->prog[idx] = PROG_ECC;
    } else {
        memcpy(p, k->wbuf, fw);
        sim->prog[idx] = PROG_DONE;
    }
    k->sr |= SR_EOP;
}

int sim_flash_write(struct sfi_sim *sim, unsigned b, uint32_t addr, const uint8_t *in, size_t n)
{
    struct sim_bank *k = &sim->bank[b];
    uint32_t fw = sim->cfg.flash_word;
    uint32_t full = fw == 32 ? 0xFFFFFFFFu : 0xFFFFu;
    for (size_t i = 0; i < n; i++, addr++) {
        uint32_t wb = addr & ~(fw - 1);
        if ((k->cr & FL_LOCK) || !(k->cr & FL_PG)) {
            k->sr |= SR_PGSERR;
            k->wfill = 0;
            k->wmask = 0;
            k->sr &= ~SR_WBNE;
            continue;
        }
        if (k->wfill == 0) {
            uint32_t sector = (wb - k->start) / sim->cfg.sector_size;
            if (sector_wrp(sim, b, sector)) {
                k->sr |= SR_WRPERR;
                continue;
            }
            k->waddr = wb;
            k->wmask = 0;
            memset(k->wbuf, 0xFF, sizeof k->wbuf);
        } else if (wb != k->waddr) {
            k->sr |= SR_INCERR;
            k->sr &= ~SR_WBNE;
            k->wfill = 0;
            k->wmask = 0;
            continue;
        }
        k->wbuf[addr - wb] = in[i];
        k->wmask |= 1u << (addr - wb);
        k->wfill = 1;
        k->sr |= SR_WBNE;
        if (k->wmask == full) {
            int rc = sim_power_event(sim, "program");
            if (rc)
                return rc;
            commit_word(sim, b);
        }
    }
    return SFI_OK;
}

static int do_erase(struct sfi_sim *sim, unsigned b, uint32_t cr)
{
    struct sim_bank *k = &sim->bank[b];
    uint32_t nsec = k->size / sim->cfg.sector_size;
    if (k->size == 0) {
        k->sr |= SR_PGSERR;
        return SFI_OK;
    }
    int rc = sim_power_event(sim, "erase");
    if (rc)
        return rc;
    if (cr & FL_BER) {
        for (uint32_t s = 0; s < nsec; s++) {
            if (sector_wrp(sim, b, s)) {
                k->sr |= SR_WRPERR;
                return SFI_OK;
            }
        }
        sim_spend(sim, sim->cfg.timing.bank_erase_us);
        erase_bank_protected(sim, b);
    } else {
        uint32_t s = cr_snb(sim, cr);
        if (s >= nsec) {
            k->sr |= SR_PGSERR;
            return SFI_OK;
        }
        if (sector_wrp(sim, b, s)) {
            k->sr |= SR_WRPERR;
            return SFI_OK;
        }
        uint32_t lo = k->start + s * sim->cfg.sector_size;
        sim_spend(sim, sim->cfg.timing.sector_erase_us);
        erase_words(sim, b, lo, lo + sim->cfg.sector_size, NULL, 0);
    }
    k->sr |= SR_EOP;
    return SFI_OK;
}

static int write_cr(struct sfi_sim *sim, unsigned b, uint32_t v)
{
    struct sim_bank *k = &sim->bank[b];
    if (k->cr & FL_LOCK)
        return SFI_OK;   /* CR is write-protected until the key sequence */
    uint32_t start = cr_start(sim), fw = cr_fw(sim);
    k->cr = v & ~(start | fw);
    if (v & FL_LOCK)
        return SFI_OK;
    if ((v & fw) && k->wfill)
        commit_word(sim, b);
    if ((v & start) && (v & (FL_SER | FL_BER))) {
        if (sim_rdp_level(sim) >= 1) {
            /* RDP level 1 with the debugger connected: user flash cannot be erased (RM0433
             * 4.5.3, access table); only the 1 -> 0 regression erases it. Flag: model. */
            k->sr |= SR_WRPERR;
            return SFI_OK;
        }
        if (k->wfill) {
            k->sr |= SR_INCERR;
            k->wfill = 0;
            return SFI_OK;
        }
        return do_erase(sim, b, v);
    }
    return SFI_OK;
}

/* The unlock sequence. RM0433 4.5.1 (FLASH configuration protection): a wrong key locks the
 * register until the next reset and the faulty write is answered with a bus error; so is any
 * key write while it stays locked. Returns SFI_OK or SFI_E_TARGET (the bus error). */
static int key_write(struct sfi_sim *sim, int *state, int *dead, uint32_t *lockreg,
                     uint32_t lockbit, uint32_t v, uint32_t k1, uint32_t k2, const char *reg)
{
    if (!*dead && *state == 0 && v == k1) {
        *state = 1;
        return SFI_OK;
    }
    if (!*dead && *state == 1 && v == k2) {
        *state = 0;
        *lockreg &= ~lockbit;
        return SFI_OK;
    }
    *state = 0;
    *dead = 1;
    *lockreg |= lockbit;
    return sfi_seterr(sim->ctx, SFI_E_TARGET, "sim: wrong key 0x%08X written to %s: bus error; "
                      "locked until the next reset", (unsigned)v, reg);
}

/* PCROP rule for one bank (ST: a PCROP area goes away only through an RDP 1 -> 0 regression
 * or a bank erase with DMEP set; DMEP cannot be cleared while the area exists). cur/prg are
 * the PRAR words. An active area may be kept or grown (model), never shrunk or removed by an
 * option change, unless this launch regresses RDP with DMEP = 1 (the area is then erased). */
static int pcrop_change_ok(uint32_t cur, uint32_t prg, int regression)
{
    uint32_t cs = cur & 0xFFF, ce = (cur >> 16) & 0xFFF, ps = prg & 0xFFF, pe = (prg >> 16) & 0xFFF;
    if (cs > ce || cur == prg)
        return 1;                 /* no area yet, or unchanged */
    if (regression && (cur >> 31))
        return 1;                 /* the regression erases and removes it */
    if ((cur >> 31) && !(prg >> 31))
        return 0;                 /* DMEP 1 -> 0 */
    return ps <= pe && ps <= cs && pe >= ce;
}

/* OPTSTART: applies the PRG words with the RDP rules. */
static int opt_start(struct sfi_sim *sim)
{
    int rc = sim_power_event(sim, "optstart");
    if (rc)
        return rc;
    if (sim->opt_hold)
        return SFI_OK; /* still busy with the launch that hung */
    if (sim->opt_stuck_left > 0) { /* knob opt_busy_stuck: this launch hangs (model) */
        sim->opt_stuck_left--;
        sim->opt_hold = 1;
        sim->ob[WIN_OPTSR / 4] |= OPTSR_BUSY;
        return SFI_OK;
    }
    uint32_t *ob = sim->ob;
    uint32_t cur = ob[WIN_OPTSR / 4], prg = ob[WIN_OPTSR / 4 + 1];
    unsigned old_rdp = (cur >> 8) & 0xFF, new_rdp = (prg >> 8) & 0xFF;
    int changed = 0, scar_changed = 0;
    for (size_t i = 0; i < NPAIRS; i++) {
        unsigned c, p;
        if (!sim_win_pair(sim, PAIRS[i].cur, &c, &p))
            continue;
        uint32_t mask = c == WIN_OPTSR ? ~(OPTSR_BUSY | OPTSR_CHANGEERR) : 0xFFFFFFFFu;
        if ((ob[c / 4] ^ ob[p / 4]) & mask) {
            changed = 1;
            if (c == WIN_SCAR1 || c == WIN_SCAR2)
                scar_changed = 1;
        }
    }
    int regression = old_rdp != 0xAA && old_rdp != 0xCC && new_rdp == 0xAA;
    int pcrop_bad = 0;
    for (unsigned b = 0; b < sim->cfg.nbanks; b++) {
        unsigned off = b ? WIN_PRAR2 : WIN_PRAR1;
        if (!pcrop_change_ok(ob[off / 4], ob[off / 4 + 1], regression))
            pcrop_bad = 1;
    }
    if ((old_rdp == 0xCC && changed) || scar_changed || pcrop_bad) {
        /* level 2 is final; secure areas are set by the RSS only (model); a PCROP area is
         * not removed by an option change. Nothing of the launch is applied. */
        sfi_log(sim->ctx, SFI_LOG_DEBUG, "sim: option change refused (OPTCHANGEERR)%s",
                pcrop_bad ? ": it would remove a PCROP area or clear DMEP" : "");
        ob[WIN_OPTSR / 4] |= OPTSR_CHANGEERR;
        return SFI_OK;
    }
    sim_spend(sim, sim->cfg.timing.ob_program_us +
                       (regression ? sim->cfg.timing.regression_us : 0));
    if (regression) {
        /* decided by the areas and DMEx as they were before this launch (a PRG word that
         * clears DMEP in the same launch does not save its area); a removed area is written
         * to both CUR and PRG, so the copy below keeps it removed */
        sfi_log(sim->ctx, SFI_LOG_DEBUG, "sim: RDP regression 1 -> 0: erasing user flash");
        for (unsigned b = 0; b < sim->cfg.nbanks; b++)
            erase_bank_protected(sim, b);
    }
    for (size_t i = 0; i < NPAIRS; i++) {
        unsigned c, p;
        if (!sim_win_pair(sim, PAIRS[i].cur, &c, &p))
            continue;
        if (c == WIN_OPTSR)
            ob[c / 4] = (ob[p / 4] & ~(OPTSR_BUSY | OPTSR_CHANGEERR)) |
                        (ob[c / 4] & OPTSR_CHANGEERR);
        else
            ob[c / 4] = ob[p / 4];
    }
    return SFI_OK;
}

static unsigned win_norm(unsigned off)
{
    /* RM0433 aliases at +0x100 of the registers shared by both banks. */
    switch (off) {
    case 0x100: return 0x00;
    case 0x108: return 0x08;
    case 0x118: return 0x18;
    case 0x11C: return 0x1C;
    case 0x120: return 0x20;
    case 0x124: return 0x24;
    case 0x140: return 0x40;
    case 0x144: return 0x44;
    default: return off;
    }
}

int sim_flash_reg_read(struct sfi_sim *sim, uint32_t off, uint32_t *v)
{
    unsigned b = off >= 0x100 && sim->cfg.nbanks > 1 ? 1 : 0;
    off = win_norm(off);
    switch (off & 0xFF) {
    case 0x04: case 0x08: case 0x14: *v = 0; return SFI_OK;
    case 0x0C: *v = (off >= 0x100 && sim->cfg.nbanks < 2) ? 0 : sim->bank[b].cr; return SFI_OK;
    case 0x10: *v = (off >= 0x100 && sim->cfg.nbanks < 2) ? 0 : sim->bank[b].sr; return SFI_OK;
    case 0x60: *v = (off >= 0x100 && sim->cfg.nbanks < 2) ? 0 : sim->bank[b].ecc_fa; return SFI_OK;
    default: break;
    }
    if (off == 0x00) {
        *v = sim->acr;
    } else if (off == 0x18) {
        *v = sim->optcr | (sim->swapped ? OPTCR_SWAP_BANK : 0);
    } else if (off >= 0x1C && off < 0x1C + 4 * SFI_SIM_OB_WORDS) {
        *v = sim->ob[(off - 0x1C) / 4];
    } else {
        *v = 0;
    }
    return SFI_OK;
}

int sim_flash_reg_write(struct sfi_sim *sim, uint32_t off, uint32_t v)
{
    unsigned b = off >= 0x100 && sim->cfg.nbanks > 1 ? 1 : 0;
    int bank_reg = (off & 0xFF) == 0x04 || (off & 0xFF) == 0x0C || (off & 0xFF) == 0x14;
    if (bank_reg && off >= 0x100 && sim->cfg.nbanks < 2)
        return SFI_OK;
    off = win_norm(off);
    switch (off & 0xFF) {
    case 0x04:
        return key_write(sim, &sim->bank[b].keystate, &sim->bank[b].keydead, &sim->bank[b].cr,
                         FL_LOCK, v, KEY1, KEY2, b ? "FLASH_KEYR2" : "FLASH_KEYR1");
    case 0x0C: return write_cr(sim, b, v);
    case 0x14:
        sim->bank[b].sr &= ~(v & 0x1FFF0000u);
        if (!(sim->bank[b].sr & (SR_SNECCERR | SR_DBECCERR)))
            sim->bank[b].ecc_fa = 0;   /* cleared with the last ECC flag (RM0433 FLASH_CCR) */
        return SFI_OK;
    default: break;
    }
    if (off == 0x00) {
        sim->acr = v & 0x3F;
    } else if (off == 0x08) {
        return key_write(sim, &sim->optkeystate, &sim->optkeydead, &sim->optcr, OPTCR_OPTLOCK, v,
                         OPTKEY1, OPTKEY2, "FLASH_OPTKEYR");
    } else if (off == 0x18) {
        if (sim->optcr & OPTCR_OPTLOCK)
            return SFI_OK;
        sim->optcr = v & (OPTCR_OPTLOCK | (1u << 30));
        if ((v & OPTCR_OPTSTART) && !(v & OPTCR_OPTLOCK))
            return opt_start(sim);
    } else if (off == 0x24) {
        if (v & (1u << 30))
            sim->ob[WIN_OPTSR / 4] &= ~OPTSR_CHANGEERR;
    } else if (off >= 0x1C && off < 0x1C + 4 * SFI_SIM_OB_WORDS) {
        unsigned w = off - 0x1C, c, p;
        if ((sim->optcr & OPTCR_OPTLOCK) || !sim_win_pair(sim, w, &c, &p) || w != p)
            return SFI_OK;   /* CUR words are read-only; PRG needs OPTLOCK = 0 */
        sim->ob[w / 4] = p == 0x04 ? v & ~(OPTSR_BUSY | OPTSR_CHANGEERR) : v;
    }
    return SFI_OK;
}

int sim_flash_read_check(struct sfi_sim *sim, unsigned b, uint32_t addr, size_t n)
{
    struct sim_bank *k = &sim->bank[b];
    if (sim_rdp_level(sim) >= 1) {
        k->sr |= SR_RDPERR;
        return sfi_seterr(sim->ctx, SFI_E_LOCKED, "sim: read of flash 0x%08X refused: RDP level 1 "
                          "blocks flash access over debug (RDPERR)", (unsigned)addr);
    }
    if (sim_pcrop_hit(sim, addr, n)) {
        k->sr |= SR_RDPERR;
        return sfi_seterr(sim->ctx, SFI_E_LOCKED, "sim: read of 0x%08X refused: PCROP area is "
                          "execute-only (RDPERR)", (unsigned)addr);
    }
    uint32_t fw = sim->cfg.flash_word;
    for (uint32_t w = addr & ~(fw - 1); w < addr + n; w += fw) {
        uint8_t *p = sim_flash_ptr(sim, b, w);
        if (sim->prog[(uint32_t)(p - sim->flash) / fw] == PROG_ECC) {
            /* an uncorrectable ECC error: DBECCERR, the word in FLASH_ECC_FA, a bus error
             * (RM0433 FLASH_SR/FLASH_ECC_FA; users see a hard fault on the read) */
            k->sr |= SR_DBECCERR;
            k->ecc_fa = (w - k->start) / fw;
            return sfi_seterr(sim->ctx, SFI_E_TARGET, "sim: bus error reading 0x%08X: ECC double "
                              "error (flash word programmed twice without erase)", (unsigned)w);
        }
    }
    return SFI_OK;
}
