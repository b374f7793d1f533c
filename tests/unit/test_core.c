/* test_core.c: the engine core: error table, detail buffer, event log formats, sleep, and the
 * byte-order and hex helpers of sfi/bytes.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sfi/bytes.h"
#include "sfi/sfi.h"

struct capture {
    char lines[8][4096];
    int n;
};

static void sink(void *ud, enum sfi_level level, const char *line)
{
    struct capture *c = ud;
    (void)level;
    if (c->n < 8)
        snprintf(c->lines[c->n++], sizeof c->lines[0], "%s", line);
}

static void test_error_names(void **state)
{
    (void)state;
    assert_string_equal(sfi_errname(SFI_OK), "OK");
    assert_string_equal(sfi_errname(SFI_E_TIMEOUT), "TIMEOUT");
    assert_string_equal(sfi_errname(SFI_E_USAGE), "USAGE");
    assert_string_equal(sfi_errname(-999), "UNKNOWN");
    assert_string_equal(sfi_errname(5), "UNKNOWN");
    /* every code round-trips through its name, and names are unique */
    for (int i = 0; i < SFI_ERR_COUNT; i++) {
        assert_int_equal(sfi_errcode(sfi_errname(-i)), -i);
        assert_true(strlen(sfi_strerror(-i)) > 0);
    }
    assert_int_equal(sfi_errcode("NOPE"), 1);
    /* append-only: these numbers are an interface */
    assert_int_equal(SFI_E_IO, -1);
    assert_int_equal(SFI_E_FORMAT, -15);
    assert_int_equal(SFI_E_COUNTER, -17);
}

static void test_detail_buffer(void **state)
{
    (void)state;
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    assert_string_equal(sfi_errdetail(ctx), "");
    assert_int_equal(sfi_seterr(ctx, SFI_E_IO, "LIBUSB_ERROR_%s", "PIPE"), SFI_E_IO);
    assert_string_equal(sfi_errdetail(ctx), "LIBUSB_ERROR_PIPE");
    /* a detail built from the current one (a caller adding context) stays readable */
    sfi_seterr(ctx, SFI_E_FORMAT, "not a state file (bad magic)");
    sfi_seterr(ctx, SFI_E_FORMAT, "%s: %s", "/tmp/work.state", sfi_errdetail(ctx));
    assert_string_equal(sfi_errdetail(ctx), "/tmp/work.state: not a state file (bad magic)");
    sfi_seterr(ctx, SFI_E_FORMAT, "%s (again)", sfi_errdetail(ctx) + 5);
    assert_string_equal(sfi_errdetail(ctx), "work.state: not a state file (bad magic) (again)");
    /* overlong detail is truncated, not overflowed */
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sfi_seterr(ctx, SFI_E_IO, "%s", big);
    assert_true(strlen(sfi_errdetail(ctx)) < 600);
    sfi_clearerr(ctx);
    assert_string_equal(sfi_errdetail(ctx), "");
    sfi_ctx_free(ctx);
    sfi_ctx_free(NULL);
}

static void test_log_human_and_level(void **state)
{
    (void)state;
    struct sfi_ctx *ctx;
    struct capture c = {.n = 0};
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    sfi_log_set_sink(ctx, sink, &c);
    sfi_log(ctx, SFI_LOG_INFO, "Device ID : 0x%03X", 0x450);
    sfi_log(ctx, SFI_LOG_WARN, "Option Bytes are unchanged");
    sfi_log(ctx, SFI_LOG_DEBUG, "hidden at info level");
    assert_int_equal(c.n, 2);
    /* "HH:MM:SS : text", like ST's tool */
    assert_int_equal(strlen(c.lines[0]), 8 + 3 + strlen("Device ID : 0x450"));
    assert_non_null(strstr(c.lines[0], " : Device ID : 0x450"));
    assert_non_null(strstr(c.lines[1], " : Warning: Option Bytes are unchanged"));
    sfi_log_set_level(ctx, SFI_LOG_DEBUG);
    sfi_log(ctx, SFI_LOG_DEBUG, "now visible");
    assert_int_equal(c.n, 3);
    sfi_ctx_free(ctx);
}

static void test_log_json(void **state)
{
    (void)state;
    struct sfi_ctx *ctx;
    struct capture c = {.n = 0};
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    sfi_log_set_sink(ctx, sink, &c);
    sfi_log_set_format(ctx, SFI_LOGFMT_JSON);
    struct sfi_field f[] = {
        {.key = "step", .type = SFI_F_STR, .s = "connect \"1\"\n"},
        {.key = "ms", .type = SFI_F_INT, .i = 12},
        {.key = "ok", .type = SFI_F_BOOL, .i = 1},
    };
    sfi_event(ctx, SFI_LOG_ERROR, "step", f, 3, "a\tb");
    assert_int_equal(c.n, 1);
    const char *l = c.lines[0];
    assert_true(strncmp(l, "{\"ts\":\"", 7) == 0);
    assert_non_null(strstr(l, "\"level\":\"error\",\"event\":\"step\",\"msg\":\"a\\tb\""));
    assert_non_null(strstr(l, "\"step\":\"connect \\\"1\\\"\\n\""));
    assert_non_null(strstr(l, "\"ms\":12"));
    assert_non_null(strstr(l, "\"ok\":true}"));
    sfi_ctx_free(ctx);
}

static void test_cancel_sleep(void **state)
{
    (void)state;
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    uint64_t t0 = sfi_now_ms();
    assert_int_equal(sfi_sleep_ms(ctx, 30), SFI_OK);
    assert_true(sfi_now_ms() - t0 >= 29);
    sfi_cancel(ctx);
    t0 = sfi_now_ms();
    assert_int_equal(sfi_sleep_ms(ctx, 5000), SFI_E_CANCELED);
    assert_true(sfi_now_ms() - t0 < 1000);
    sfi_cancel_reset(ctx);
    assert_false(sfi_canceled(ctx));
    sfi_ctx_free(ctx);
}

static void test_wipe(void **state)
{
    (void)state;
    unsigned char key[16];
    memset(key, 0xA5, sizeof key);
    sfi_wipe(key, sizeof key);
    for (size_t i = 0; i < sizeof key; i++)
        assert_int_equal(key[i], 0);
    sfi_wipe(NULL, 4);
}

/* The wire orders the formats use: an SFI image header field, a pcap/IP field, an RSP reply. */
static void test_bytes(void **state)
{
    (void)state;
    uint8_t b[8];
    sfi_put_le16(b, 0x1234);
    assert_memory_equal(b, "\x34\x12", 2);
    assert_int_equal(sfi_get_le16(b), 0x1234);
    sfi_put_le32(b, 0xA1B2C3D4u);
    assert_memory_equal(b, "\xD4\xC3\xB2\xA1", 4);
    assert_int_equal(sfi_get_le32(b), 0xA1B2C3D4u);
    sfi_put_le64(b, 0x0102030405060708ull);
    assert_memory_equal(b, "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
    assert_true(sfi_get_le64(b) == 0x0102030405060708ull);
    sfi_put_be16(b, 0x0800);
    assert_memory_equal(b, "\x08\x00", 2);
    assert_int_equal(sfi_get_be16(b), 0x0800);
    sfi_put_be32(b, 0xC0A80001u);
    assert_memory_equal(b, "\xC0\xA8\x00\x01", 4);
    assert_int_equal(sfi_get_be32(b), 0xC0A80001u);

    char hex[9];
    uint8_t v[4] = {0x00, 0x7F, 0xA5, 0xFF};
    assert_string_equal(sfi_hex_str(v, 4, hex), "007fa5ff");
    uint8_t back[4];
    assert_int_equal(sfi_hex_decode("007FA5ff", 4, back), 0);
    assert_memory_equal(back, v, 4);
    assert_int_equal(sfi_hex_decode("00g0", 2, back), -1);
    assert_int_equal(sfi_hexval('F'), 15);
    assert_int_equal(sfi_hexval('x'), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_names),     cmocka_unit_test(test_detail_buffer),
        cmocka_unit_test(test_log_human_and_level), cmocka_unit_test(test_log_json),
        cmocka_unit_test(test_cancel_sleep),    cmocka_unit_test(test_wipe),
        cmocka_unit_test(test_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
