/* test_stlink_usb.c: the ST-LINK USB command layer without hardware. A recorded-exchange
 * double stands in for libusb_bulk_transfer: it checks every OUT transfer (endpoint and
 * bytes) against the recording and answers IN transfers with the recorded reply, or with a
 * recorded libusb error. Also the libusb error map and the udev rules file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sfi/stlink.h"
#include "stlink/usb_int.h"

#if SFI_WITH_USB
#include <libusb.h>

struct ex {
    uint8_t ep;
    const uint8_t *bytes; /* expected OUT bytes, or IN reply */
    int len;              /* OUT: expected length; IN: bytes delivered */
    int lrc;              /* libusb result to return */
};

struct replay {
    const struct ex *ex;
    int n, pos;
    int released;
};

static int replay_bulk(void *h, unsigned char ep, unsigned char *buf, int len, int *done,
                       unsigned timeout_ms)
{
    struct replay *r = h;
    (void)timeout_ms;
    assert_true(r->pos < r->n);
    const struct ex *e = &r->ex[r->pos++];
    assert_int_equal(ep, e->ep);
    if (e->lrc != 0) {
        *done = 0;
        return e->lrc;
    }
    if (ep & 0x80) {
        int k = e->len < len ? e->len : len;
        memcpy(buf, e->bytes, (size_t)k);
        *done = k;
    } else {
        assert_int_equal(len, e->len);
        assert_memory_equal(buf, e->bytes, (size_t)len);
        *done = len;
    }
    return 0;
}

static void replay_release(void *h)
{
    ((struct replay *)h)->released++;
}

#define OUT(ep, ...) {ep, (const uint8_t[16]){__VA_ARGS__}, 16, 0}
#define IN(ep, n, ...) {ep, (const uint8_t[64]){__VA_ARGS__}, n, 0}

static struct sfi_stlink *replay_open(struct sfi_ctx *ctx, struct replay *r, uint16_t pid)
{
    struct sfi_stlink_transport *t;
    assert_int_equal(sfi_stlink_usb_wrap(ctx, replay_bulk, replay_release, r, pid, "SN1", &t),
                     SFI_OK);
    struct sfi_stlink *s;
    assert_int_equal(sfi_stlink_open(ctx, t, &s), SFI_OK);
    return s;
}

/* ST-LINK/V2 J37: endpoints 0x02/0x81, divisor speed, 32-bit read + GETLASTRWSTATUS2. */
static void usb_replay_v2_session(void **state)
{
    (void)state;
    const struct ex rec[] = {
        OUT(0x02, 0xF1),
        IN(0x81, 6, 0x29, 0x47, 0x83, 0x04, 0x48, 0x37),
        OUT(0x02, 0xF5),
        IN(0x81, 2, 0x02, 0x00), /* debug mode: leave it */
        OUT(0x02, 0xF2, 0x21),
        OUT(0x02, 0xF2, 0x30, 0xA3),
        IN(0x81, 2, 0x80, 0x00),
        OUT(0x02, 0xF2, 0x43, 0x03, 0x00), /* 1000 kHz -> 950 kHz, divisor 3 */
        IN(0x81, 2, 0x80, 0x00),
        OUT(0x02, 0xF2, 0x07, 0x00, 0xED, 0x00, 0xE0, 0x04, 0x00),
        IN(0x81, 4, 0x71, 0xC2, 0x1F, 0x41),
        OUT(0x02, 0xF2, 0x3E),
        IN(0x81, 12, 0x80),
        OUT(0x02, 0xF2, 0x07, 0x00, 0x00, 0x00, 0x40, 0x04, 0x00),
        IN(0x81, 4, 0, 0, 0, 0),
        OUT(0x02, 0xF2, 0x3E),
        IN(0x81, 12, 0x11),
    };
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    struct replay r = {rec, (int)(sizeof rec / sizeof rec[0]), 0, 0};
    struct sfi_stlink *s = replay_open(ctx, &r, 0x3748);
    char v[32];
    sfi_stlink_version_str(sfi_stlink_get_version(s), v, sizeof v);
    assert_string_equal(v, "V2J37S7");
    assert_int_equal(sfi_stlink_leave_mode(s), SFI_OK);
    assert_int_equal(sfi_stlink_enter_swd(s), SFI_OK);
    unsigned khz;
    assert_int_equal(sfi_stlink_set_speed(s, 1000, &khz), SFI_OK);
    assert_int_equal(khz, 950);
    uint32_t cpuid;
    assert_int_equal(sfi_stlink_read_mem(s, 0xE000ED00u, &cpuid, 4, 32), SFI_OK);
    assert_int_equal(cpuid, 0x411FC271u); /* little-endian host */
    assert_int_equal(sfi_stlink_read_mem(s, 0x40000000u, &cpuid, 4, 32), SFI_E_TARGET);
    assert_non_null(strstr(sfi_errdetail(ctx), "SWD_AP_FAULT"));
    assert_int_equal(r.pos, r.n);
    sfi_stlink_close(s);
    assert_int_equal(r.released, 1);
    sfi_ctx_free(ctx);
}

/* ST-LINK/V3 (0x374F): GET_VERSION_EX, com-frequency list, 8-bit write on endpoint 0x01. */
static void usb_replay_v3_session(void **state)
{
    (void)state;
    const struct ex rec[] = {
        OUT(0x01, 0xF1),
        IN(0x81, 6, 0x30, 0x00, 0x83, 0x04, 0x4F, 0x37),
        OUT(0x01, 0xFB),
        IN(0x81, 12, 3, 0, 7, 0, 0, 0, 0, 0, 0x83, 0x04, 0x4F, 0x37),
        OUT(0x01, 0xF2, 0x62, 0x00),
        IN(0x81, 52, 0x80, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0xC0, 0x5D, 0, 0, 0x40, 0x1F, 0,
           0, 0xE8, 0x03, 0, 0),
        OUT(0x01, 0xF2, 0x61, 0x00, 0x00, 0x40, 0x1F, 0x00, 0x00), /* 8000 kHz */
        IN(0x81, 8, 0x80),
        OUT(0x01, 0xF2, 0x0D, 0x01, 0x00, 0x00, 0x20, 0x03, 0x00),
        {0x01, (const uint8_t[]){0xAA, 0xBB, 0xCC}, 3, 0},
        OUT(0x01, 0xF2, 0x3E),
        IN(0x81, 12, 0x80),
        OUT(0x01, 0xF7),
        IN(0x81, 8, 0x60, 0x09, 0, 0, 0xD0, 0x0C, 0, 0), /* 2400, 3280 -> 3280 mV */
    };
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    struct replay r = {rec, (int)(sizeof rec / sizeof rec[0]), 0, 0};
    struct sfi_stlink *s = replay_open(ctx, &r, 0x374F);
    unsigned khz, mv;
    assert_int_equal(sfi_stlink_set_speed(s, 10000, &khz), SFI_OK);
    assert_int_equal(khz, 8000);
    const uint8_t b[3] = {0xAA, 0xBB, 0xCC};
    assert_int_equal(sfi_stlink_write_mem(s, 0x20000001u, b, 3, 8), SFI_OK);
    assert_int_equal(sfi_stlink_voltage(s, &mv), SFI_OK);
    assert_int_equal(mv, 3280);
    assert_int_equal(r.pos, r.n);
    sfi_stlink_close(s);
    sfi_ctx_free(ctx);
}

static void usb_replay_short_reply(void **state)
{
    (void)state;
    const struct ex rec[] = {
        OUT(0x01, 0xF1),
        IN(0x81, 4, 0x30, 0x00, 0x83, 0x04),
    };
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    struct replay r = {rec, 2, 0, 0};
    struct sfi_stlink_transport *t;
    assert_int_equal(sfi_stlink_usb_wrap(ctx, replay_bulk, replay_release, &r, 0x374B, NULL,
                                         &t), SFI_OK);
    struct sfi_stlink *s;
    assert_int_equal(sfi_stlink_open(ctx, t, &s), SFI_E_PROTOCOL);
    assert_non_null(strstr(sfi_errdetail(ctx), "short reply"));
    assert_int_equal(r.released, 1); /* the session closed the transport it was given */
    sfi_ctx_free(ctx);
}

static void usb_replay_libusb_errors(void **state)
{
    (void)state;
    static const struct {
        int lrc, rc;
    } cases[] = {
        {LIBUSB_ERROR_NO_DEVICE, SFI_E_NO_DEVICE}, {LIBUSB_ERROR_TIMEOUT, SFI_E_TIMEOUT},
        {LIBUSB_ERROR_PIPE, SFI_E_IO},             {LIBUSB_ERROR_BUSY, SFI_E_BUSY},
        {LIBUSB_ERROR_ACCESS, SFI_E_ACCESS},       {LIBUSB_ERROR_OVERFLOW, SFI_E_PROTOCOL},
    };
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct ex rec[] = {{0x02, NULL, 16, cases[i].lrc}};
        struct replay r = {rec, 1, 0, 0};
        struct sfi_stlink_transport *t;
        assert_int_equal(sfi_stlink_usb_wrap(ctx, replay_bulk, NULL, &r, 0x3748, NULL, &t),
                         SFI_OK);
        struct sfi_stlink *s;
        assert_int_equal(sfi_stlink_open(ctx, t, &s), cases[i].rc);
        assert_non_null(strstr(sfi_errdetail(ctx), libusb_error_name(cases[i].lrc)));
        if (cases[i].rc == SFI_E_ACCESS)
            assert_non_null(strstr(sfi_errdetail(ctx), SFI_STLINK_UDEV_RULES));
    }
    struct sfi_stlink_transport *t;
    assert_int_equal(sfi_stlink_usb_wrap(ctx, replay_bulk, NULL, NULL, 0x1234, NULL, &t),
                     SFI_E_NOT_FOUND);
    sfi_ctx_free(ctx);
}

/* The udev rules the ACCESS hint names exist and cover every supported PID. */
static void usb_replay_udev_rules(void **state)
{
    (void)state;
    FILE *f = fopen(SFI_SOURCE_DIR "/" SFI_STLINK_UDEV_RULES, "r");
    assert_non_null(f);
    static char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    int covered = 0;
    for (unsigned pid = 0x3700; pid < 0x3800; pid++) {
        char want[64];
        snprintf(want, sizeof want, "ATTRS{idProduct}==\"%04x\"", pid);
        int in_rules = strstr(text, want) != NULL;
        assert_int_equal(in_rules, sfi_stlink_usb_pid_known((uint16_t)pid));
        covered += in_rules;
    }
    assert_int_equal(covered, 8);
    assert_non_null(strstr(text, "TAG+=\"uaccess\""));
    uint8_t tx, rx;
    sfi_stlink_usb_endpoints(0x3748, &tx, &rx);
    assert_int_equal(tx, 0x02);
    sfi_stlink_usb_endpoints(0x3754, &tx, &rx);
    assert_int_equal(tx, 0x01);
    assert_int_equal(rx, 0x81);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(usb_replay_v2_session),    cmocka_unit_test(usb_replay_v3_session),
        cmocka_unit_test(usb_replay_short_reply),   cmocka_unit_test(usb_replay_libusb_errors),
        cmocka_unit_test(usb_replay_udev_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
#else
int main(void)
{
    return 77;
}
#endif
