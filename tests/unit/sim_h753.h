/* sim_h753.h: the simulated STM32H753 the simulator's unit tests drive (configured as the 0x450
 * device pack describes it) and the debug-side register sequences they use: option-byte
 * programming, flash unlock, one flash-word write. Included after <cmocka.h>; the test's context
 * is `ctx`. */
#ifndef SIM_H753_H
#define SIM_H753_H

#include <stdint.h>
#include <string.h>

#include "sfi/sim.h"

#define FL 0x52002000u
#define OPTSR_CUR (FL + 0x1C)
#define OPTSR_PRG (FL + 0x20)

static struct sfi_ctx *ctx;

/* An H753 as the 0x450 device pack describes it. */
static inline void h753(struct sfi_sim_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->part = "stm32h753";
    c->variant = SFI_SIM_H74X;
    c->dev_id = 0x450;
    c->rev_id = 0x2003;
    c->cpuid = 0x411FC271;
    c->flash_kb = 2048;
    c->nbanks = 2;
    c->bank_start[0] = 0x08000000;
    c->bank_start[1] = 0x08100000;
    c->bank_size[0] = c->bank_size[1] = 0x100000;
    c->sector_size = 0x20000;
    c->flash_word = 32;
    c->flash_regs = FL;
    c->idcode_addr = 0x5C001000;
    c->fsize_addr = 0x1FF1E880;
    c->uid_addr = 0x1FF1E800;
    c->bl_addr = 0x1FF1E7FE;
    c->nram = 2;
    c->ram[0] = (struct sfi_sim_region){"dtcm", 0x20000000, 0x20000};
    c->ram[1] = (struct sfi_sim_region){"axi", 0x24000000, 0x80000};
    c->sys_start = 0x1FF00000;
    c->sys_size = 0x20000;
    c->bl_version = 0x90;
    c->ob_default[0] = c->ob_default[1] = 0x1BC6AAF0;
    for (unsigned off = 0x0C; off <= 0x18; off += 4)
        c->ob_default[off / 4] = 0xFF;
    c->ob_default[0x1C / 4] = c->ob_default[0x20 / 4] = 0xFF;
    c->ob_default[0x24 / 4] = c->ob_default[0x28 / 4] = 0x1FF00800;
    for (unsigned off = 0x10C; off <= 0x120; off += 4)
        c->ob_default[off / 4] = 0xFF;
    c->rss_mailbox = 0x2401FFF0;
    c->rss_magic = 0x52535331;
    c->rss_result = 0x2401FFF4;
    c->cert_addr = 0x1FF1E000;
}

static inline struct sfi_sim *open_sim(const struct sfi_sim_cfg *c)
{
    struct sfi_sim *sim = NULL;
    assert_int_equal(sfi_sim_new(ctx, c, &sim), SFI_OK);
    assert_int_equal(sfi_sim_connect(sim, SFI_SIM_CONNECT_NORMAL), SFI_OK);
    return sim;
}

/* The H753 above, connected (normal connect). */
static inline struct sfi_sim *open_h753(void)
{
    struct sfi_sim_cfg c;
    h753(&c);
    return open_sim(&c);
}

static inline uint32_t rd(struct sfi_sim *s, uint32_t a)
{
    uint32_t v = 0;
    assert_int_equal(sfi_sim_read(s, a, &v, 4), SFI_OK);
    return v;
}

static inline void wr(struct sfi_sim *s, uint32_t a, uint32_t v)
{
    assert_int_equal(sfi_sim_write(s, a, &v, 4), SFI_OK);
}

static inline void ob_write(struct sfi_sim *s, uint32_t prg, uint32_t v)
{
    if (rd(s, FL + 0x18) & 1) {
        wr(s, FL + 0x08, 0x08192A3B);
        wr(s, FL + 0x08, 0x4C5D6E7F);
    }
    assert_int_equal(rd(s, FL + 0x18) & 1, 0);
    wr(s, prg, v);
    wr(s, FL + 0x24, 0x40000000);
    wr(s, FL + 0x18, 0x2);
    assert_int_equal(rd(s, OPTSR_CUR) & 1, 0);
    wr(s, FL + 0x18, 0x1);
}

static inline void unlock(struct sfi_sim *s, uint32_t regs)
{
    wr(s, regs + 0x04, 0x45670123);
    wr(s, regs + 0x04, 0xCDEF89AB);
    assert_int_equal(rd(s, regs + 0x0C) & 1, 0);
}

static inline void program_word(struct sfi_sim *s, uint32_t regs, uint32_t addr, uint8_t fill)
{
    uint8_t w[32];
    memset(w, fill, sizeof w);
    wr(s, regs + 0x0C, 0x32);
    assert_int_equal(sfi_sim_write(s, addr, w, 32), SFI_OK);
}

#endif
