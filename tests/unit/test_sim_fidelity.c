/* test_sim_fidelity.c: the simulated STM32H7 against the documented chip: PCROP/DMEP rules
 * and RDPERR, a flash word programmed twice (ECC: DBECCERR, FLASH_ECC_FA1R, bus error on
 * read), bank swap (SWAP_BANK_OPT effective at reset), peripheral
 * registers with their reset values, and no erase at RDP level 1 with the debugger attached. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sim_h753.h"

#define SR1 (FL + 0x10)
#define CCR1 (FL + 0x14)
#define PRAR_CUR1 (FL + 0x28)
#define PRAR_PRG1 (FL + 0x2C)
#define OPTCHANGEERR (1u << 30)
#define RDPERR (1u << 23)
#define DBECCERR (1u << 26)
#define WRPERR (1u << 17)

static uint8_t priv8(struct sfi_sim *s, uint32_t a)
{
    uint8_t b = 0;
    assert_int_equal(sfi_sim_priv_read(s, a, &b, 1), SFI_OK);
    return b;
}

/* PCROP: set at RDP 0, the area cannot be removed, shrunk or lose DMEP by an option change;
 * a debug read of it is refused with RDPERR. The RDP 1 -> 0 regression with DMEP = 1 removes
 * it. */
/* An H753 with 0x42 programmed at 0x08001000 and the PCROP area 0x08001000..0x080011FF
 * (start 0x10, end 0x11) with DMEP1 = 1, set at RDP 0. */
static struct sfi_sim *open_with_pcrop(void)
{
    struct sfi_sim *s = open_h753();
    unlock(s, FL);
    program_word(s, FL, 0x08001000, 0x42);
    wr(s, FL + 0x0C, 0x1);
    ob_write(s, PRAR_PRG1, 0x80110010);
    assert_int_equal(rd(s, PRAR_CUR1), 0x80110010);
    return s;
}

static void t_pcrop(void **st)
{
    (void)st;
    struct sfi_sim *s = open_with_pcrop();
    assert_int_equal(rd(s, OPTSR_CUR) & OPTCHANGEERR, 0);
    /* read refused, RDPERR set (cleared through CCR) */
    uint32_t v;
    assert_int_equal(sfi_sim_read(s, 0x08001000, &v, 4), SFI_E_LOCKED);
    assert_true(rd(s, SR1) & RDPERR);
    wr(s, CCR1, RDPERR);
    assert_int_equal(rd(s, SR1) & RDPERR, 0);
    /* DMEP1 1 -> 0: refused */
    ob_write(s, PRAR_PRG1, 0x00110010);
    assert_true(rd(s, OPTSR_CUR) & OPTCHANGEERR);
    assert_int_equal(rd(s, PRAR_CUR1), 0x80110010);
    /* removed (start > end) at RDP 0: refused */
    ob_write(s, PRAR_PRG1, 0x800000FF);
    assert_true(rd(s, OPTSR_CUR) & OPTCHANGEERR);
    assert_int_equal(rd(s, PRAR_CUR1), 0x80110010);
    /* shrunk: refused; grown: accepted (model) */
    ob_write(s, PRAR_PRG1, 0x80100010);
    assert_true(rd(s, OPTSR_CUR) & OPTCHANGEERR);
    assert_int_equal(rd(s, PRAR_CUR1), 0x80110010);
    ob_write(s, PRAR_PRG1, 0x80120010);
    assert_int_equal(rd(s, OPTSR_CUR) & OPTCHANGEERR, 0);
    assert_int_equal(rd(s, PRAR_CUR1), 0x80120010);
    assert_int_equal(priv8(s, 0x08001000), 0x42);
    /* RDP 0 -> 1 -> 0 with DMEP1 = 1: the area is erased and removed */
    uint32_t cur = rd(s, OPTSR_CUR);
    ob_write(s, OPTSR_PRG, (cur & ~0xFF00u) | 0xBB00);
    ob_write(s, OPTSR_PRG, (cur & ~0xFF00u) | 0xAA00);
    assert_int_equal(rd(s, OPTSR_CUR) & OPTCHANGEERR, 0);
    uint32_t prar = rd(s, PRAR_CUR1);
    assert_true((prar & 0xFFF) > ((prar >> 16) & 0xFFF));
    assert_int_equal(priv8(s, 0x08001000), 0xFF);
    assert_int_equal(sfi_sim_read(s, 0x08001000, &v, 4), SFI_OK);
    sfi_sim_free(s);
}

/* One launch that regresses RDP 1 -> 0 and clears DMEP in the same PRG word: the area is
 * decided by the DMEP it had before the launch (1): erased and removed, never kept with DMEP
 * cleared. */
static void t_pcrop_regression_same_launch(void **st)
{
    (void)st;
    struct sfi_sim *s = open_with_pcrop();
    uint32_t cur = rd(s, OPTSR_CUR);
    ob_write(s, OPTSR_PRG, (cur & ~0xFF00u) | 0xBB00);
    wr(s, FL + 0x08, 0x08192A3B); /* option unlock: two PRG words, one launch */
    wr(s, FL + 0x08, 0x4C5D6E7F);
    wr(s, PRAR_PRG1, 0x00110010);
    ob_write(s, OPTSR_PRG, (cur & ~0xFF00u) | 0xAA00);
    assert_int_equal(rd(s, OPTSR_CUR) & OPTCHANGEERR, 0);
    assert_int_equal((rd(s, OPTSR_CUR) >> 8) & 0xFF, 0xAA);
    uint32_t prar = rd(s, PRAR_CUR1);
    assert_true((prar & 0xFFF) > ((prar >> 16) & 0xFFF)); /* removed */
    assert_int_equal(priv8(s, 0x08001000), 0xFF);          /* erased */
    sfi_sim_free(s);
}

/* A flash word programmed again without erase: programmed (bits only go 1 -> 0), no PGSERR;
 * its ECC no longer matches, so a debug read is a bus error with DBECCERR and the word's
 * index in FLASH_ECC_FA1R; erase makes it good again. */
static void t_program_twice(void **st)
{
    (void)st;
    struct sfi_sim *s = open_h753();
    unlock(s, FL);
    program_word(s, FL, 0x08000040, 0xF0);
    program_word(s, FL, 0x08000040, 0x3C);
    assert_int_equal(rd(s, SR1) & ((1u << 18) | (1u << 16)), 1u << 16);   /* EOP, no PGSERR */
    assert_int_equal(priv8(s, 0x08000040), 0x30);                       /* 0xF0 & 0x3C */
    assert_int_equal(rd(s, FL + 0x60), 0);
    uint32_t v;
    assert_int_equal(sfi_sim_read(s, 0x08000044, &v, 4), SFI_E_TARGET);
    assert_true(rd(s, SR1) & DBECCERR);
    assert_int_equal(rd(s, FL + 0x60), 2);      /* flash word 2 of bank 1 */
    /* the words around it read fine */
    assert_int_equal(rd(s, 0x08000020), 0xFFFFFFFF);
    assert_int_equal(rd(s, 0x08000060), 0xFFFFFFFF);
    /* CCR clears the flag and the fail address */
    wr(s, CCR1, DBECCERR);
    assert_int_equal(rd(s, SR1) & DBECCERR, 0);
    assert_int_equal(rd(s, FL + 0x60), 0);
    /* the same data again keeps a good ECC */
    program_word(s, FL, 0x08000080, 0x5A);
    program_word(s, FL, 0x08000080, 0x5A);
    assert_int_equal(rd(s, 0x08000080), 0x5A5A5A5A);
    /* sector erase: the word reads erased */
    wr(s, FL + 0x0C, 0x34);
    wr(s, FL + 0x0C, 0xB4);
    assert_int_equal(rd(s, 0x08000040), 0xFFFFFFFF);
    assert_int_equal(rd(s, SR1) & DBECCERR, 0);
    sfi_sim_free(s);
}

/* SWAP_BANK_OPT: OPTSR_CUR takes it at the launch, FLASH_OPTCR.SWAP_BANK and the address
 * mapping only at the next reset; the bank registers drive the bank at their addresses. */
static void t_bank_swap(void **st)
{
    (void)st;
    struct sfi_sim *s = open_h753();
    unlock(s, FL);
    program_word(s, FL, 0x08000000, 0x11);
    wr(s, FL + 0x0C, 0x1);
    unlock(s, FL + 0x100);
    program_word(s, FL + 0x100, 0x08100000, 0x22);
    wr(s, FL + 0x10C, 0x1);
    uint32_t cur = rd(s, OPTSR_CUR);
    ob_write(s, OPTSR_PRG, cur | 0x80000000u);
    assert_true(rd(s, OPTSR_CUR) & 0x80000000u);
    assert_int_equal(rd(s, FL + 0x18) & 0x80000000u, 0);    /* not yet effective */
    assert_int_equal(rd(s, 0x08000000), 0x11111111);
    assert_int_equal(sfi_sim_reset(s, SFI_SIM_RESET_SW), SFI_OK);
    assert_int_equal(sfi_sim_connect(s, SFI_SIM_CONNECT_NORMAL), SFI_OK);
    assert_true(rd(s, FL + 0x18) & 0x80000000u);
    assert_int_equal(rd(s, 0x08000000), 0x22222222);
    assert_int_equal(rd(s, 0x08100000), 0x11111111);
    /* bank 1 registers program what is at 0x08000000 now (physical bank 2) */
    unlock(s, FL);
    program_word(s, FL, 0x08000020, 0x33);
    wr(s, FL + 0x0C, 0x1);
    /* OPTCR.SWAP_BANK is read-only */
    wr(s, FL + 0x08, 0x08192A3B);
    wr(s, FL + 0x08, 0x4C5D6E7F);
    wr(s, FL + 0x18, 0x0);
    assert_true(rd(s, FL + 0x18) & 0x80000000u);
    wr(s, FL + 0x18, 0x1);
    /* swap back */
    ob_write(s, OPTSR_PRG, rd(s, OPTSR_CUR) & ~0x80000000u);
    assert_int_equal(sfi_sim_reset(s, SFI_SIM_RESET_SW), SFI_OK);
    assert_int_equal(sfi_sim_connect(s, SFI_SIM_CONNECT_NORMAL), SFI_OK);
    assert_int_equal(rd(s, FL + 0x18) & 0x80000000u, 0);
    assert_int_equal(rd(s, 0x08000000), 0x11111111);
    assert_int_equal(rd(s, 0x08100000), 0x22222222);
    assert_int_equal(rd(s, 0x08100020), 0x33333333);
    sfi_sim_free(s);
}

/* A single-bank part (0x483) has no bank swap: the bit does not move the flash. */
static void t_no_swap_single_bank(void **st)
{
    (void)st;
    struct sfi_sim_cfg c;
    h753(&c);
    c.part = "stm32h730";
    c.variant = SFI_SIM_H72X;
    c.dev_id = 0x483;
    c.flash_kb = 1024;
    c.nbanks = 1;
    c.bank_size[1] = c.bank_start[1] = 0;
    struct sfi_sim *s = open_sim(&c);
    unlock(s, FL);
    program_word(s, FL, 0x08000000, 0x11);
    wr(s, FL + 0x0C, 0x1);
    ob_write(s, OPTSR_PRG, rd(s, OPTSR_CUR) | 0x80000000u);
    assert_int_equal(sfi_sim_reset(s, SFI_SIM_RESET_SW), SFI_OK);
    assert_int_equal(sfi_sim_connect(s, SFI_SIM_CONNECT_NORMAL), SFI_OK);
    assert_int_equal(rd(s, FL + 0x18) & 0x80000000u, 0);
    assert_int_equal(rd(s, 0x08000000), 0x11111111);
    sfi_sim_free(s);
}

/* Peripheral registers of the configuration read their reset values; writes change only the
 * writable bits; FLASH_ACR reads its reset value again after a reset. */
static void t_peripherals(void **st)
{
    (void)st;
    struct sfi_sim_cfg c;
    h753(&c);
    c.acr_reset = 0x37;
    c.nregs = 2;
    c.regs[0] = (struct sfi_sim_reg){0x58024400, 0x25, 0};
    c.regs[1] = (struct sfi_sim_reg){0x5C001004, 0, 0x7};
    struct sfi_sim *s = open_sim(&c);
    assert_int_equal(rd(s, FL), 0x37);
    assert_int_equal(rd(s, 0x58024400), 0x25);
    wr(s, 0x58024400, 0xFFFFFFFF);
    assert_int_equal(rd(s, 0x58024400), 0x25);
    wr(s, 0x5C001004, 0xFFFFFFFF);
    assert_int_equal(rd(s, 0x5C001004), 0x7);
    assert_int_equal(rd(s, 0xE00E1004), 0x7);     /* the same register through the debug APB */
    uint32_t v;
    assert_int_equal(sfi_sim_read(s, 0x58024404, &v, 4), SFI_E_TARGET);   /* not listed */
    wr(s, FL, 0x12);
    assert_int_equal(sfi_sim_reset(s, SFI_SIM_RESET_SW), SFI_OK);
    assert_int_equal(sfi_sim_connect(s, SFI_SIM_CONNECT_NORMAL), SFI_OK);
    assert_int_equal(rd(s, FL), 0x37);
    sfi_sim_free(s);
    c.regs[0].addr = 0x58024402;
    struct sfi_sim *bad = NULL;
    assert_int_equal(sfi_sim_new(ctx, &c, &bad), SFI_E_INVALID);
    assert_null(bad);
}

/* RDP level 1 with the debugger connected: sector and bank erase are refused (WRPERR, model
 * flag) and the flash keeps its data; only the regression erases it. */
static void t_rdp1_erase(void **st)
{
    (void)st;
    struct sfi_sim *s = open_h753();
    unlock(s, FL);
    program_word(s, FL, 0x08000000, 0x5A);
    wr(s, FL + 0x0C, 0x1);
    uint32_t cur = rd(s, OPTSR_CUR);
    ob_write(s, OPTSR_PRG, (cur & ~0xFF00u) | 0xBB00);
    unlock(s, FL);
    wr(s, FL + 0x0C, 0x34);
    wr(s, FL + 0x0C, 0xB4);                       /* sector 0 erase */
    assert_true(rd(s, SR1) & WRPERR);
    assert_int_equal(priv8(s, 0x08000000), 0x5A);
    wr(s, CCR1, WRPERR);
    wr(s, FL + 0x0C, 0x38);
    wr(s, FL + 0x0C, 0xB8);                       /* bank 1 erase */
    assert_true(rd(s, SR1) & WRPERR);
    assert_int_equal(priv8(s, 0x08000000), 0x5A);
    sfi_sim_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_pcrop),
        cmocka_unit_test(t_pcrop_regression_same_launch),
        cmocka_unit_test(t_program_twice),
        cmocka_unit_test(t_bank_swap),     cmocka_unit_test(t_no_swap_single_bank),
        cmocka_unit_test(t_peripherals),   cmocka_unit_test(t_rdp1_erase),
    };
    if (sfi_ctx_new(&ctx))
        return 1;
    sfi_log_set_level(ctx, SFI_LOG_ERROR);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sfi_ctx_free(ctx);
    return rc;
}
