/* test_stlink.c: the ST-LINK client session against the simulated ST-LINK/V3 server through
 * the in-process loopback transport: version decode, mode/speed/voltage, memory chunking and
 * alignment, GETLASTRWSTATUS2 checks, WAIT retry, bus faults and the status map. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sfi/bytes.h"
#include "sfi/stlink.h"
#include "sfi/stlink_proto.h"
#include "stlink_ramtarget.h"

struct fx {
    struct sfi_ctx *ctx;
    struct ramtarget *t;
    struct sfi_stlink_server *srv;
    struct sfi_stlink *s;
};

static struct fx *fx_open(unsigned jtag)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_int_equal(sfi_ctx_new(&f->ctx), SFI_OK);
    f->t = rt_new();
    struct sfi_stlink_server_cfg cfg = {.jtag = jtag};
    assert_int_equal(sfi_stlink_server_new(f->ctx, &cfg, &rt_ops, f->t, &f->srv), SFI_OK);
    struct sfi_stlink_transport *tr;
    assert_int_equal(sfi_stlink_loopback_new(f->ctx, f->srv, &tr), SFI_OK);
    assert_int_equal(sfi_stlink_open(f->ctx, tr, &f->s), SFI_OK);
    assert_int_equal(sfi_stlink_leave_mode(f->s), SFI_OK);
    assert_int_equal(sfi_stlink_enter_swd(f->s), SFI_OK);
    return f;
}

static void fx_close(struct fx *f)
{
    sfi_stlink_close(f->s);
    sfi_stlink_server_free(f->srv);
    rt_free(f->t);
    sfi_ctx_free(f->ctx);
    free(f);
}

static void decode(const uint8_t *rep6, const uint8_t *ex, struct sfi_stlink_version *v,
                   char *str)
{
    assert_int_equal(sfi_stlink_decode_version(NULL, rep6, ex, v), SFI_OK);
    sfi_stlink_version_str(v, str, 32);
}

static void test_version_decode(void **state)
{
    (void)state;
    struct sfi_stlink_version v;
    char s[32];
    /* V2 (0483:3748), J37 S7: word 2<<12 | 37<<6 | 7 */
    const uint8_t v2[6] = {0x29, 0x47, 0x83, 0x04, 0x48, 0x37};
    decode(v2, NULL, &v, s);
    assert_string_equal(s, "V2J37S7");
    assert_int_equal(v.api, 2);
    assert_int_equal(v.pid, 0x3748);
    assert_true(v.flags & SFI_STLINK_F_HAS_MEM_16BIT);
    assert_true(v.flags & SFI_STLINK_F_HAS_AP_INIT);
    assert_true(v.flags & SFI_STLINK_F_HAS_DPBANKSEL);
    assert_false(v.flags & SFI_STLINK_F_HAS_RW8_512BYTES);
    assert_false(v.flags & SFI_STLINK_F_QUIRK_JTAG_DP_READ);
    /* V2 J13: trace/voltage yes, no RWSTATUS2, no SWD speed */
    const uint8_t v2old[6] = {0x23, 0x40, 0x83, 0x04, 0x48, 0x37};
    decode(v2old, NULL, &v, s);
    assert_string_equal(s, "V2J13S0");
    assert_true(v.flags & SFI_STLINK_F_HAS_TRACE);
    assert_false(v.flags & SFI_STLINK_F_HAS_GETLASTRWSTATUS2);
    assert_false(v.flags & SFI_STLINK_F_HAS_SWD_SET_FREQ);
    /* V2-1 (374B) J40 M27 */
    const uint8_t v21[6] = {0x2A, 0x1B, 0x83, 0x04, 0x4B, 0x37};
    decode(v21, NULL, &v, s);
    assert_string_equal(s, "V2J40M27");
    assert_int_equal(v.jtag, 40);
    assert_int_equal(v.msd, 27);
    /* V2-1 STM8-only firmware (x=22, y=7): no debug support */
    const uint8_t v21swim[6] = {0x25, 0x87, 0x83, 0x04, 0x52, 0x37};
    decode(v21swim, NULL, &v, s);
    assert_int_equal(v.jtag, 0);
    assert_string_equal(s, "V2M22S7");
    /* V3 through GET_VERSION_EX */
    const uint8_t v3[6] = {0x30, 0x00, 0x83, 0x04, 0x4F, 0x37};
    assert_true(sfi_stlink_needs_version_ex(v3));
    assert_false(sfi_stlink_needs_version_ex(v2));
    const uint8_t ex[12] = {3, 1, 7, 3, 3, 0, 0, 0, 0x83, 0x04, 0x4F, 0x37};
    decode(v3, ex, &v, s);
    assert_string_equal(s, "V3J7M3B3S1");
    assert_int_equal(v.api, 3);
    assert_true(v.flags & SFI_STLINK_F_HAS_RW8_512BYTES);
    assert_true(v.flags & SFI_STLINK_F_HAS_COM_FREQ);
    const uint8_t ex5[12] = {3, 0, 5, 0, 0, 0, 0, 0, 0x83, 0x04, 0x4E, 0x37};
    decode(v3, ex5, &v, s);
    assert_string_equal(s, "V3J5S0");
    assert_false(v.flags & SFI_STLINK_F_HAS_RW8_512BYTES);
    assert_int_equal(v.pid, 0x374E);
    /* errors */
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    assert_int_equal(sfi_stlink_decode_version(ctx, v3, NULL, &v), SFI_E_PROTOCOL);
    const uint8_t v5[6] = {0x50, 0x00, 0x83, 0x04, 0x4F, 0x37};
    assert_int_equal(sfi_stlink_decode_version(ctx, v5, NULL, &v), SFI_E_PROTOCOL);
    assert_non_null(strstr(sfi_errdetail(ctx), "generation 5"));
    sfi_ctx_free(ctx);
}

static void test_swd_divisor(void **state)
{
    (void)state;
    unsigned k;
    assert_int_equal(sfi_stlink_swd_divisor(4000, &k), 0);
    assert_int_equal(k, 4000);
    assert_int_equal(sfi_stlink_swd_divisor(1800, &k), 1);
    assert_int_equal(sfi_stlink_swd_divisor(1000, &k), 3);
    assert_int_equal(k, 950);
    assert_int_equal(sfi_stlink_swd_divisor(100000, &k), 0);
    assert_int_equal(sfi_stlink_swd_divisor(1, &k), 798);
    assert_int_equal(k, 5);
}

static void test_status_map(void **state)
{
    (void)state;
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    static const struct {
        unsigned st;
        int rc;
    } want[] = {
        {0x80, SFI_OK},          {0x0D, SFI_OK},          {0x81, SFI_E_TARGET},
        {0x11, SFI_E_TARGET},    {0x12, SFI_E_TARGET},    {0x19, SFI_E_TARGET},
        {0x1A, SFI_E_TARGET},    {0x10, SFI_E_TIMEOUT},   {0x14, SFI_E_TIMEOUT},
        {0x15, SFI_E_NO_DEVICE}, {0x16, SFI_E_NO_DEVICE}, {0x09, SFI_E_NO_DEVICE},
        {0x13, SFI_E_PROTOCOL},  {0x17, SFI_E_PROTOCOL},  {0x18, SFI_E_PROTOCOL},
        {0x0C, SFI_E_IO},        {0x1D, SFI_E_INVALID},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        sfi_clearerr(ctx);
        assert_int_equal(sfi_stlink_status_err(ctx, want[i].st, "op"), want[i].rc);
        const char *name = sfi_stlink_status_name(want[i].st);
        assert_non_null(name);
        if (want[i].rc != SFI_OK)
            assert_non_null(strstr(sfi_errdetail(ctx), name));
    }
    assert_int_equal(sfi_stlink_status_err(ctx, 0x42, "read"), SFI_E_PROTOCOL);
    assert_non_null(strstr(sfi_errdetail(ctx), "0x42"));
    assert_null(sfi_stlink_status_name(0x42));
    /* stlink-server words */
    assert_int_equal(sfi_stlink_server_status_err(ctx, 1, "x"), SFI_OK);
    assert_int_equal(sfi_stlink_server_status_err(ctx, 0x2004, "x"), SFI_E_BUSY);
    assert_non_null(strstr(sfi_errdetail(ctx), "TCP_BUSY"));
    assert_int_equal(sfi_stlink_server_status_err(ctx, 0x1001, "x"), SFI_E_TIMEOUT);
    assert_int_equal(sfi_stlink_server_status_err(ctx, 0x1003, "x"), SFI_E_NO_DEVICE);
    assert_int_equal(sfi_stlink_server_status_err(ctx, 0x7777, "x"), SFI_E_PROTOCOL);
    assert_non_null(strstr(sfi_errdetail(ctx), "0x7777"));
    sfi_ctx_free(ctx);
}

static void test_session_basics(void **state)
{
    (void)state;
    struct fx *f = fx_open(0);
    char s[32];
    sfi_stlink_version_str(sfi_stlink_get_version(f->s), s, sizeof s);
    assert_string_equal(s, "V3J7S0");
    assert_int_equal(sfi_stlink_get_version(f->s)->pid, 0x374F);
    enum sfi_stlink_mode mode;
    assert_int_equal(sfi_stlink_current_mode(f->s, &mode), SFI_OK);
    assert_int_equal(mode, SFI_STLINK_MODE_DEBUG);
    unsigned khz = 0, mv = 0;
    assert_int_equal(sfi_stlink_set_speed(f->s, 1800, &khz), SFI_OK);
    assert_int_equal(khz, 1000);
    assert_int_equal(sfi_stlink_set_speed(f->s, 24000, &khz), SFI_OK);
    assert_int_equal(khz, 24000);
    assert_int_equal(sfi_stlink_set_speed(f->s, 1, &khz), SFI_OK);
    assert_int_equal(khz, 5);
    assert_int_equal(sfi_stlink_voltage(f->s, &mv), SFI_OK);
    assert_int_equal(mv, 3280);
    uint32_t id = 0, v = 0;
    assert_int_equal(sfi_stlink_idcode(f->s, &id), SFI_OK);
    assert_int_equal(id, 0x6BA02477u);
    assert_int_equal(sfi_stlink_init_ap(f->s, 0), SFI_OK);
    assert_int_equal(sfi_stlink_read_dap(f->s, SFI_STLINK_DP_PORT, 0, &v), SFI_OK);
    assert_int_equal(v, 0x6BA02477u);
    assert_int_equal(sfi_stlink_write_dap(f->s, 0, 0x04, 0x20000000u), SFI_OK);
    /* debug registers share the target's address space */
    assert_int_equal(sfi_stlink_write_dbg(f->s, 0xE000EDF0u, 0xA05F0001u), SFI_OK);
    assert_int_equal(sfi_stlink_read_dbg(f->s, 0xE000EDF0u, &v), SFI_OK);
    assert_int_equal(v, 0xA05F0001u);
    assert_int_equal(sfi_stlink_read_dbg(f->s, 0xE000ED00u, &v), SFI_OK);
    assert_int_equal(v, 0x411FC271u);
    assert_int_equal(sfi_stlink_write_reg(f->s, 15, 0x08000101u), SFI_OK);
    assert_int_equal(f->t->core[15], 0x08000101u);
    assert_int_equal(sfi_stlink_read_reg(f->s, 15, &v), SFI_OK);
    assert_int_equal(v, 0x08000101u);
    assert_int_equal(sfi_stlink_read_reg(f->s, 0x70, &v), SFI_E_TARGET);
    assert_int_equal(sfi_stlink_reset_sys(f->s), SFI_OK);
    assert_int_equal(f->t->resets, 1);
    assert_int_equal(sfi_stlink_drive_nrst(f->s, 0), SFI_OK);
    assert_int_equal(f->t->nrst, 0);
    assert_int_equal(sfi_stlink_drive_nrst(f->s, 2), SFI_OK);
    assert_int_equal(f->t->nrst, 2);
    assert_int_equal(sfi_stlink_drive_nrst(f->s, 3), SFI_E_INVALID);
    /* leave debug mode, and the probe says so */
    assert_int_equal(sfi_stlink_leave_mode(f->s), SFI_OK);
    assert_int_equal(sfi_stlink_current_mode(f->s, &mode), SFI_OK);
    assert_int_equal(mode, SFI_STLINK_MODE_MASS);
    fx_close(f);
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 31 + seed);
}

/* Every logged call: width-sized, aligned, within the TAR window and the buffer limits. */
static void check_chunks(const struct ramtarget *t, unsigned max8)
{
    for (unsigned i = 0; i < t->nlog; i++) {
        const struct rt_call *c = &t->log[i];
        unsigned wb = c->width / 8;
        assert_int_equal(c->addr % wb, 0);
        assert_int_equal(c->n % wb, 0);
        assert_true(c->n > 0);
        assert_true((c->addr & ~1023u) == ((c->addr + c->n - 1) & ~1023u));
        if (c->width == 8)
            assert_true(c->n <= max8);
        else
            assert_true(c->n <= SFI_STLINK_BUF_SIZE);
    }
}

static void roundtrip(struct fx *f, uint32_t addr, size_t n, unsigned width, unsigned max8)
{
    uint8_t *w = malloc(n), *r = malloc(n);
    fill(w, n, (unsigned)addr + width);
    f->t->nlog = 0;
    assert_int_equal(sfi_stlink_write_mem(f->s, addr, w, n, width), SFI_OK);
    check_chunks(f->t, max8);
    /* the target really holds the bytes, at the right place */
    assert_memory_equal(rt_map(f->t, addr, n), w, n);
    f->t->nlog = 0;
    memset(r, 0, n);
    assert_int_equal(sfi_stlink_read_mem(f->s, addr, r, n, width), SFI_OK);
    check_chunks(f->t, max8);
    assert_memory_equal(r, w, n);
    free(w);
    free(r);
}

static void test_mem_roundtrip(void **state)
{
    (void)state;
    struct fx *f = fx_open(0);
    roundtrip(f, RT_SRAM, 8192, 32, 512);
    roundtrip(f, RT_SRAM + 0x3F0, 3000, 32, 512);
    roundtrip(f, RT_SRAM + 0x101, 2051, 32, 512);
    roundtrip(f, RT_SRAM + 0x2003, 5, 32, 512);
    roundtrip(f, RT_SRAM + 0x3001, 1, 32, 512);
    roundtrip(f, RT_SRAM + 0x4001, 1500, 16, 512);
    roundtrip(f, RT_SRAM + 0x5003, 1300, 8, 512);
    roundtrip(f, RT_SRAM + 0x7000, 1, 8, 512);

    /* unaligned head and tail use 8-bit accesses; the body is 32-bit */
    uint8_t buf[64];
    fill(buf, sizeof buf, 7);
    f->t->nlog = 0;
    assert_int_equal(sfi_stlink_write_mem(f->s, RT_SRAM + 0x9003, buf, 10, 32), SFI_OK);
    assert_int_equal(f->t->nlog, 3);
    assert_int_equal(f->t->log[0].width, 8);
    assert_int_equal(f->t->log[0].n, 1);
    assert_int_equal(f->t->log[1].width, 32);
    assert_int_equal(f->t->log[1].addr, RT_SRAM + 0x9004);
    assert_int_equal(f->t->log[1].n, 8);
    assert_int_equal(f->t->log[2].width, 8);
    assert_int_equal(f->t->log[2].n, 1);

    /* 6 KiB buffer limit with a larger window (M3/M4 style) */
    sfi_stlink_set_tar_window(f->s, 4096);
    uint8_t *big = malloc(16384);
    f->t->nlog = 0;
    assert_int_equal(sfi_stlink_read_mem(f->s, RT_SRAM, big, 16384, 32), SFI_OK);
    assert_int_equal(f->t->nlog, 4);
    assert_int_equal(f->t->log[0].n, 4096);
    free(big);
    assert_int_equal(sfi_stlink_read_mem(f->s, RT_SRAM, buf, 4, 12), SFI_E_INVALID);
    fx_close(f);
}

static void test_mem_rw8_limit(void **state)
{
    (void)state;
    struct fx *f = fx_open(5); /* V3J5: no 512-byte 8-bit transfers */
    roundtrip(f, RT_SRAM + 0x11, 700, 8, 64);
    f->t->nlog = 0;
    uint8_t buf[200];
    assert_int_equal(sfi_stlink_read_mem(f->s, RT_SRAM, buf, sizeof buf, 8), SFI_OK);
    assert_int_equal(f->t->nlog, 4); /* 64 + 64 + 64 + 8 */
    fx_close(f);
}

static void test_bus_fault(void **state)
{
    (void)state;
    struct fx *f = fx_open(0);
    uint8_t buf[16];
    assert_int_equal(sfi_stlink_read_mem(f->s, 0x40000000u, buf, 16, 32), SFI_E_TARGET);
    assert_non_null(strstr(sfi_errdetail(f->ctx), "SWD_AP_FAULT"));
    assert_non_null(strstr(sfi_errdetail(f->ctx), "0x40000000"));
    /* a fault on the second chunk stops the transfer there */
    f->t->nlog = 0;
    uint8_t big[2048];
    memset(big, 0, sizeof big);
    assert_int_equal(sfi_stlink_write_mem(f->s, RT_SRAM + RT_SRAM_SIZE - 1024, big, 2048, 32),
                     SFI_E_TARGET);
    assert_int_equal(f->t->nlog, 2);
    /* and the probe recovers: the next access works */
    assert_int_equal(sfi_stlink_read_mem(f->s, RT_SRAM, buf, 16, 32), SFI_OK);
    fx_close(f);
}

static void test_wait_retry(void **state)
{
    (void)state;
    struct fx *f = fx_open(0);
    uint8_t buf[8];
    rt_put32(f->t, RT_SRAM, 0x12345678u);
    f->t->wait_next = 3;
    f->t->nlog = 0;
    assert_int_equal(sfi_stlink_read_mem(f->s, RT_SRAM, buf, 4, 32), SFI_OK);
    assert_int_equal(f->t->nlog, 4);
    assert_int_equal(buf[0], 0x78);
    /* WAIT forever: 1 + 8 attempts, then TIMEOUT naming the status */
    f->t->wait_next = 100;
    f->t->nlog = 0;
    uint64_t t0 = sfi_now_ms();
    assert_int_equal(sfi_stlink_read_mem(f->s, RT_SRAM, buf, 4, 32), SFI_E_TIMEOUT);
    assert_true(sfi_now_ms() - t0 >= 255); /* 1+2+...+128 ms of backoff */
    assert_int_equal(f->t->nlog, 9);
    assert_non_null(strstr(sfi_errdetail(f->ctx), "SWD_AP_WAIT"));
    /* register commands retry too */
    f->t->wait_next = 2;
    uint32_t v;
    assert_int_equal(sfi_stlink_read_dbg(f->s, 0xE000ED00u, &v), SFI_OK);
    assert_int_equal(v, 0x411FC271u);
    f->t->wait_next = 0;
    fx_close(f);
}

static void test_status_through_server(void **state)
{
    (void)state;
    struct fx *f = fx_open(0);
    uint32_t v;
    uint8_t buf[4];
    f->t->status_next = 0x42;
    assert_int_equal(sfi_stlink_read_dbg(f->s, 0xE000ED00u, &v), SFI_E_PROTOCOL);
    assert_non_null(strstr(sfi_errdetail(f->ctx), "0x42"));
    f->t->status_next = SFI_STLINK_SWD_DP_ERROR;
    assert_int_equal(sfi_stlink_write_dbg(f->s, 0xE000EDF0u, 1), SFI_E_NO_DEVICE);
    assert_non_null(strstr(sfi_errdetail(f->ctx), "SWD_DP_ERROR"));
    f->t->status_next = SFI_STLINK_SWD_AP_STICKY_ERROR;
    assert_int_equal(sfi_stlink_read_mem(f->s, RT_SRAM, buf, 4, 32), SFI_E_TARGET);
    assert_non_null(strstr(sfi_errdetail(f->ctx), "SWD_AP_STICKY_ERROR"));
    f->t->status_next = 0x99;
    assert_int_equal(sfi_stlink_write_mem(f->s, RT_SRAM, buf, 4, 32), SFI_E_PROTOCOL);
    assert_non_null(strstr(sfi_errdetail(f->ctx), "0x99"));
    fx_close(f);
}

static void test_server_decoder(void **state)
{
    (void)state;
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    struct ramtarget *t = rt_new();
    struct sfi_stlink_server *srv;
    struct sfi_stlink_server_cfg cfg = {.pid = 0x3754, .serial = "ABC123"};
    assert_int_equal(sfi_stlink_server_new(ctx, &cfg, &rt_ops, t, &srv), SFI_OK);
    static uint8_t rep[SFI_STLINK_BUF_SIZE + 16];
    size_t n;
    uint8_t cdb[16] = {0xF1};
    assert_int_equal(sfi_stlink_server_handle(srv, cdb, NULL, 0, rep, sizeof rep, &n), SFI_OK);
    assert_int_equal(n, 6);
    assert_int_equal(sfi_get_le16(rep + 4), 0x3754);
    /* a 1-byte 8-bit read answers 2 bytes */
    uint8_t rd8[16] = {0xF2, 0x0C, 0x00, 0x00, 0x00, 0x20, 1, 0};
    assert_int_equal(sfi_stlink_server_handle(srv, rd8, NULL, 0, rep, sizeof rep, &n), SFI_OK);
    assert_int_equal(n, 2);
    /* write with missing data, unknown commands, oversize reads */
    uint8_t wr[16] = {0xF2, 0x08, 0x00, 0x00, 0x00, 0x20, 8, 0};
    assert_int_equal(sfi_stlink_server_out_len(wr), 8);
    assert_int_equal(sfi_stlink_server_handle(srv, wr, rep, 4, rep, sizeof rep, &n),
                     SFI_E_PROTOCOL);
    uint8_t unk[16] = {0xF2, 0x99};
    assert_int_equal(sfi_stlink_server_handle(srv, unk, NULL, 0, rep, sizeof rep, &n),
                     SFI_E_UNSUPPORTED);
    assert_non_null(strstr(sfi_errdetail(ctx), "F2 99"));
    uint8_t big[16] = {0xF2, 0x07, 0x00, 0x00, 0x00, 0x20, 0x01, 0x18};
    assert_int_equal(sfi_stlink_server_handle(srv, big, NULL, 0, rep, sizeof rep, &n),
                     SFI_E_PROTOCOL);
    /* unaligned 32-bit read: refused through the last R/W status */
    uint8_t un[16] = {0xF2, 0x07, 0x02, 0x00, 0x00, 0x20, 4, 0};
    assert_int_equal(sfi_stlink_server_handle(srv, un, NULL, 0, rep, sizeof rep, &n), SFI_OK);
    uint8_t st2[16] = {0xF2, 0x3E};
    assert_int_equal(sfi_stlink_server_handle(srv, st2, NULL, 0, rep, sizeof rep, &n), SFI_OK);
    assert_int_equal(n, 12);
    assert_int_equal(rep[0], SFI_STLINK_SWD_AP_ERROR);
    sfi_stlink_server_free(srv);
    rt_free(t);
    sfi_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_decode),  cmocka_unit_test(test_swd_divisor),
        cmocka_unit_test(test_status_map),      cmocka_unit_test(test_session_basics),
        cmocka_unit_test(test_mem_roundtrip),   cmocka_unit_test(test_mem_rw8_limit),
        cmocka_unit_test(test_bus_fault),       cmocka_unit_test(test_wait_retry),
        cmocka_unit_test(test_status_through_server), cmocka_unit_test(test_server_decoder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
