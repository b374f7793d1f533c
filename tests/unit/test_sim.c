/* test_sim.c: the simulated STM32H7 through its debug side: option bytes by the register
 * sequence, key lock-out, flash programming rules, RDP regression with DMEP/DMES, fault
 * knobs, the state file and the RSS hook. */
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

static void t_ids(void **st)
{
    (void)st;
    struct sfi_sim *s = open_h753();
    assert_int_equal(rd(s, 0x5C001000) & 0xFFF, 0x450);
    assert_int_equal(rd(s, 0x5C001000) >> 16, 0x2003);
    assert_int_equal(rd(s, 0xE000ED00), 0x411FC271);
    uint16_t kb = 0;
    assert_int_equal(sfi_sim_read(s, 0x1FF1E880, &kb, 2), SFI_OK);
    assert_int_equal(kb, 2048);
    uint32_t v;
    assert_int_equal(sfi_sim_read(s, 0x40000000, &v, 4), SFI_E_TARGET);
    sfi_sim_free(s);
}

static void t_option_bytes(void **st)
{
    (void)st;
    struct sfi_sim *s = open_h753();
    uint32_t cur = rd(s, OPTSR_CUR);
    ob_write(s, OPTSR_PRG, cur | (1u << 21) | (3u << 19));
    assert_int_equal(rd(s, OPTSR_CUR) & (1u << 21), 1u << 21);
    assert_int_equal((rd(s, OPTSR_CUR) >> 19) & 3, 3);
    /* bank-2 alias of OPTSR_CUR and the bank-2 WPSN pair */
    assert_int_equal(rd(s, FL + 0x11C), rd(s, OPTSR_CUR));
    ob_write(s, FL + 0x13C, 0xFE);
    assert_int_equal(rd(s, FL + 0x138), 0xFE);
    /* locked: PRG writes are ignored */
    wr(s, OPTSR_PRG, 0);
    assert_int_equal(rd(s, OPTSR_PRG), rd(s, OPTSR_CUR) & ~0x40000001u);
    sfi_sim_free(s);
}

static void t_wrong_key(void **st)
{
    (void)st;
    struct sfi_sim *s = open_h753();
    uint32_t v;
    wr(s, FL + 0x04, 0x45670123);
    v = 0x12345678;                             /* wrong second key: a bus error (RM0433 4.5.1) */
    assert_int_equal(sfi_sim_write(s, FL + 0x04, &v, 4), SFI_E_TARGET);
    v = 0x45670123;                             /* the right sequence: too late, bus errors */
    assert_int_equal(sfi_sim_write(s, FL + 0x04, &v, 4), SFI_E_TARGET);
    v = 0xCDEF89AB;
    assert_int_equal(sfi_sim_write(s, FL + 0x04, &v, 4), SFI_E_TARGET);
    assert_int_equal(rd(s, FL + 0x0C) & 1, 1);
    v = 0x11111111;                             /* option key too */
    assert_int_equal(sfi_sim_write(s, FL + 0x08, &v, 4), SFI_E_TARGET);
    v = 0x08192A3B;
    assert_int_equal(sfi_sim_write(s, FL + 0x08, &v, 4), SFI_E_TARGET);
    assert_int_equal(rd(s, FL + 0x18) & 1, 1);
    assert_int_equal(sfi_sim_reset(s, SFI_SIM_RESET_SW), SFI_OK);
    unlock(s, FL);
    sfi_sim_free(s);
}

static void t_programming(void **st)
{
    (void)st;
    struct sfi_sim *s = open_h753();
    uint8_t w[32];
    memset(w, 0x5A, sizeof w);
    /* without PG: PGSERR, nothing written */
    unlock(s, FL);
    wr(s, FL + 0x0C, 0x30);
    assert_int_equal(sfi_sim_write(s, 0x08000000, w, 32), SFI_OK);
    assert_true(rd(s, FL + 0x10) & (1u << 18));
    assert_int_equal(rd(s, 0x08000000), 0xFFFFFFFF);
    wr(s, FL + 0x14, 0xFFFF0000);
    assert_int_equal(rd(s, FL + 0x10), 0);
    /* a full word: EOP, data there, write buffer empty */
    program_word(s, FL, 0x08000000, 0x5A);
    assert_int_equal(rd(s, FL + 0x10) & ((1u << 16) | 0x6), 1u << 16);
    assert_int_equal(rd(s, 0x08000000), 0x5A5A5A5A);
    /* half a word: WBNE; a write to another word: INCERR */
    assert_int_equal(sfi_sim_write(s, 0x08000020, w, 16), SFI_OK);
    assert_true(rd(s, FL + 0x10) & 0x2);
    assert_int_equal(sfi_sim_write(s, 0x08000040, w, 4), SFI_OK);
    assert_true(rd(s, FL + 0x10) & (1u << 21));
    wr(s, FL + 0x14, 0xFFFF0000);
    /* FW forces a partial word */
    assert_int_equal(sfi_sim_write(s, 0x08000060, w, 8), SFI_OK);
    wr(s, FL + 0x0C, 0x32 | 0x40);
    assert_int_equal(rd(s, 0x08000064), 0x5A5A5A5A);
    assert_int_equal(rd(s, 0x08000068), 0xFFFFFFFF);
    /* the same word twice without erase: programmed (bits 1 -> 0), no PGSERR; its ECC is
     * broken, so the read is a bus error with DBECCERR (test_sim_fidelity.c has the rest) */
    program_word(s, FL, 0x08000000, 0x11);
    assert_int_equal(rd(s, FL + 0x10) & (1u << 18), 0);
    uint32_t bad;
    assert_int_equal(sfi_sim_read(s, 0x08000000, &bad, 4), SFI_E_TARGET);
    assert_true(rd(s, FL + 0x10) & (1u << 26));
    wr(s, FL + 0x14, 0xFFFF0000);
    /* sector erase of sector 0 */
    wr(s, FL + 0x0C, 0x34);
    wr(s, FL + 0x0C, 0xB4);
    assert_int_equal(rd(s, 0x08000000), 0xFFFFFFFF);
    /* bank 2 through its own registers; write protection of sector 1 of bank 2 */
    wr(s, FL + 0x0C, 0x1);
    ob_write(s, FL + 0x13C, 0xFD);
    unlock(s, FL + 0x100);
    program_word(s, FL + 0x100, 0x08120000, 0x77);
    assert_true(rd(s, FL + 0x110) & (1u << 17));
    program_word(s, FL + 0x100, 0x08100000, 0x77);
    assert_int_equal(rd(s, 0x08100000), 0x77777777);
    sfi_sim_free(s);
}

static void t_rdp_regression(void **st)
{
    (void)st;
    struct sfi_sim *s = open_h753();
    unlock(s, FL);
    program_word(s, FL, 0x08000000, 0x01);      /* unprotected */
    program_word(s, FL, 0x08001000, 0x02);      /* PCROP, DMEP1 = 0: kept */
    wr(s, FL + 0x0C, 0x1);
    unlock(s, FL + 0x100);
    program_word(s, FL + 0x100, 0x08100000, 0x03);  /* PCROP bank 2, DMEP2 = 1: erased */
    wr(s, FL + 0x10C, 0x1);
    ob_write(s, FL + 0x2C, 0x00100010);
    ob_write(s, FL + 0x12C, 0x80000000);
    uint32_t cur = rd(s, OPTSR_CUR);
    ob_write(s, OPTSR_PRG, (cur & ~0xFF00u) | 0xBB00);
    uint32_t v;
    assert_int_equal(sfi_sim_read(s, 0x08000000, &v, 4), SFI_E_LOCKED);
    assert_int_equal(sfi_sim_write(s, 0x08000000, &v, 4), SFI_E_LOCKED);
    ob_write(s, OPTSR_PRG, (cur & ~0xFF00u) | 0xAA00);
    uint8_t b[4];
    assert_int_equal(sfi_sim_priv_read(s, 0x08000000, b, 4), SFI_OK);
    assert_int_equal(b[0], 0xFF);
    assert_int_equal(sfi_sim_priv_read(s, 0x08001000, b, 4), SFI_OK);
    assert_int_equal(b[0], 0x02);
    assert_int_equal(sfi_sim_priv_read(s, 0x08100000, b, 4), SFI_OK);
    assert_int_equal(b[0], 0xFF);
    /* the DMEP2 area was removed: start > end */
    assert_true((rd(s, FL + 0x128) & 0xFFF) > ((rd(s, FL + 0x128) >> 16) & 0xFFF));
    sfi_sim_free(s);
}

static void t_rdp2(void **st)
{
    (void)st;
    struct sfi_sim *s = open_h753();
    uint32_t cur = rd(s, OPTSR_CUR);
    ob_write(s, OPTSR_PRG, (cur & ~0xFF00u) | 0xCC00);
    ob_write(s, OPTSR_PRG, (cur & ~0xFF00u) | 0xAA00);
    assert_true(rd(s, OPTSR_CUR) & (1u << 30));   /* OPTCHANGEERR */
    assert_int_equal((rd(s, OPTSR_CUR) >> 8) & 0xFF, 0xCC);
    assert_int_equal(sfi_sim_reset(s, SFI_SIM_RESET_SW), SFI_OK);
    assert_int_equal(sfi_sim_connect(s, SFI_SIM_CONNECT_NORMAL), SFI_E_NO_DEVICE);
    sfi_sim_free(s);
}

static void t_faults(void **st)
{
    (void)st;
    struct sfi_sim_cfg c;
    h753(&c);
    c.unreachable_after_reset = 2;
    struct sfi_sim *s = open_sim(&c);
    wr(s, 0xE000ED0C, 0x05FA0004);                 /* SYSRESETREQ */
    uint32_t v;
    assert_int_equal(sfi_sim_read(s, 0x5C001000, &v, 4), SFI_E_NO_DEVICE);
    assert_int_equal(sfi_sim_connect(s, SFI_SIM_CONNECT_NORMAL), SFI_E_NO_DEVICE);
    assert_int_equal(sfi_sim_connect(s, SFI_SIM_CONNECT_NORMAL), SFI_E_NO_DEVICE);
    assert_int_equal(sfi_sim_connect(s, SFI_SIM_CONNECT_NORMAL), SFI_OK);
    sfi_sim_free(s);

    h753(&c);
    c.power_loss_at_name = "program";
    s = open_sim(&c);
    unlock(s, FL);
    uint8_t w[32];
    memset(w, 0x42, sizeof w);
    wr(s, FL + 0x0C, 0x32);
    assert_int_equal(sfi_sim_write(s, 0x08000000, w, 32), SFI_E_NO_DEVICE);
    assert_int_equal(sfi_sim_read(s, 0x08000000, &v, 4), SFI_E_NO_DEVICE);
    assert_int_equal(sfi_sim_connect(s, SFI_SIM_CONNECT_NORMAL), SFI_OK);
    assert_int_equal(rd(s, 0x08000000), 0xFFFFFFFF);
    sfi_sim_free(s);
}

static uint32_t rss_seen_security;

static int fake_rss(void *ud, struct sfi_sim *sim)
{
    (void)ud;
    uint32_t v;
    sfi_sim_ob_get(sim, 0, &v);
    rss_seen_security = v & (1u << 21);
    sfi_sim_priv_program(sim, 0x08000000, "RSS!", 4);
    return (int)0xCC000007u;
}

static void t_rss(void **st)
{
    (void)st;
    struct sfi_sim_cfg c;
    h753(&c);
    c.unreachable_after_rss = 1;
    struct sfi_sim *s = open_sim(&c);
    sfi_sim_set_rss(s, fake_rss, NULL);
    uint8_t priv[32], cert[136], got[136];
    memset(priv, 7, sizeof priv);
    for (int i = 0; i < 136; i++)
        cert[i] = (uint8_t)i;
    sfi_sim_set_identity(s, priv, cert);
    assert_int_equal(sfi_sim_read(s, 0x1FF1E000, got, 136), SFI_OK);
    assert_memory_equal(got, cert, 136);
    /* no SECURITY: a plain reset */
    wr(s, 0x2401FFF0, 0x52535331);
    wr(s, 0xE000ED0C, 0x05FA0004);
    assert_int_equal(sfi_sim_rss_runs(s), 0);
    ob_write(s, OPTSR_PRG, rd(s, OPTSR_CUR) | (1u << 21));
    wr(s, 0xE000ED0C, 0x05FA0004);
    assert_int_equal(sfi_sim_rss_runs(s), 1);
    assert_int_equal(sfi_sim_connect(s, SFI_SIM_CONNECT_NORMAL), SFI_E_NO_DEVICE);
    assert_int_equal(sfi_sim_connect(s, SFI_SIM_CONNECT_NORMAL), SFI_OK);
    assert_int_equal(rd(s, 0x2401FFF4), 0xCC000007);
    assert_int_equal(rd(s, 0x2401FFF0), 0);
    assert_true(rss_seen_security);
    uint8_t f[4];
    assert_int_equal(sfi_sim_read(s, 0x08000000, f, 4), SFI_OK);
    assert_memory_equal(f, "RSS!", 4);
    /* the ECC rule holds for privileged programming too */
    assert_int_equal(sfi_sim_priv_program(s, 0x08000010, "x", 1), SFI_E_TARGET);
    sfi_sim_free(s);
}

static void t_state_file(void **st)
{
    (void)st;
    char path[] = "/tmp/sfi-simstate-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    struct sfi_sim_cfg c;
    h753(&c);
    c.state_file = path;
    struct sfi_sim *s = open_sim(&c);
    unlock(s, FL);
    program_word(s, FL, 0x08000000, 0x33);
    ob_write(s, OPTSR_PRG, rd(s, OPTSR_CUR) | (1u << 21));
    uint8_t priv[32] = {1}, cert[136] = {2}, sec[64] = {3};
    sfi_sim_set_identity(s, priv, cert);
    sfi_sim_set_secstate(s, sec);
    assert_int_equal(sfi_sim_save(s), SFI_OK);
    sfi_sim_free(s);
    s = open_sim(&c);
    assert_int_equal(rd(s, 0x08000000), 0x33333333);
    assert_true(rd(s, OPTSR_CUR) & (1u << 21));
    uint8_t p2[32], c2[136], s2[64];
    assert_int_equal(sfi_sim_get_identity(s, p2, c2), SFI_OK);
    assert_memory_equal(p2, priv, 32);
    sfi_sim_get_secstate(s, s2);
    assert_memory_equal(s2, sec, 64);
    assert_int_equal(sfi_sim_priv_program(s, 0x08000000, "y", 1), SFI_E_TARGET);
    sfi_sim_free(s);
    /* a corrupt file is refused with FORMAT */
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 100, SEEK_SET);
    fputc(0x99, f);
    fclose(f);
    struct sfi_sim *bad = NULL;
    assert_int_equal(sfi_sim_new(ctx, &c, &bad), SFI_E_FORMAT);
    assert_null(bad);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(t_ids),         cmocka_unit_test(t_option_bytes),
        cmocka_unit_test(t_wrong_key),   cmocka_unit_test(t_programming),
        cmocka_unit_test(t_rdp_regression), cmocka_unit_test(t_rdp2),
        cmocka_unit_test(t_faults),      cmocka_unit_test(t_rss),
        cmocka_unit_test(t_state_file),
    };
    if (sfi_ctx_new(&ctx))
        return 1;
    sfi_log_set_level(ctx, SFI_LOG_ERROR);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sfi_ctx_free(ctx);
    return rc;
}
