/* fuzz_stlink_reply.c: the ST-LINK client parsing replies it cannot trust. A transport fed
 * by the fuzzer input answers every IN transfer with the next input bytes (running short
 * is a short reply); the session opens, then runs speed, voltage, IDCODE, registers and
 * memory reads of several widths and alignments. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sfi/stlink.h"

struct feed {
    struct sfi_stlink_transport base;
    const uint8_t *p;
    size_t n;
};

static int feed_xfer(struct sfi_stlink_transport *t, const uint8_t cdb[16],
                     enum sfi_stlink_dir dir, uint8_t *data, size_t len, unsigned timeout_ms)
{
    struct feed *f = (struct feed *)t;
    (void)cdb;
    (void)timeout_ms;
    if (dir == SFI_STLINK_OUT || len == 0)
        return SFI_OK;
    if (f->n < len)
        return sfi_seterr(t->ctx, SFI_E_PROTOCOL, "short reply");
    memcpy(data, f->p, len);
    f->p += len;
    f->n -= len;
    return SFI_OK;
}

static void feed_close(struct sfi_stlink_transport *t)
{
    (void)t;
}

static const struct sfi_stlink_transport_ops feed_ops = {"fuzz", feed_xfer, feed_close};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sfi_ctx *ctx;
    if (ctx == NULL) {
        sfi_ctx_new(&ctx);
        sfi_log_set_level(ctx, SFI_LOG_ERROR);
    }
    struct feed f = {.base = {.ops = &feed_ops, .ctx = ctx}, .p = data, .n = size};
    struct sfi_stlink *s;
    if (sfi_stlink_open(ctx, &f.base, &s) != SFI_OK)
        return 0;
    /* WAIT retries sleep; keep the run fast by stopping at the first error */
    static uint8_t buf[9000];
    unsigned u;
    uint32_t v;
    enum sfi_stlink_mode m;
    int rc = sfi_stlink_current_mode(s, &m);
    if (rc == SFI_OK)
        rc = sfi_stlink_set_speed(s, 4000, &u);
    if (rc == SFI_OK)
        rc = sfi_stlink_voltage(s, &u);
    if (rc == SFI_OK)
        rc = sfi_stlink_idcode(s, &v);
    if (rc == SFI_OK)
        rc = sfi_stlink_read_reg(s, 15, &v);
    if (rc == SFI_OK)
        rc = sfi_stlink_read_dap(s, SFI_STLINK_DP_PORT, 0, &v);
    if (rc == SFI_OK)
        rc = sfi_stlink_read_mem(s, 0x20000003u, buf, 2050, 32);
    if (rc == SFI_OK)
        rc = sfi_stlink_read_mem(s, 0x20000001u, buf, 700, 16);
    if (rc == SFI_OK)
        rc = sfi_stlink_read_mem(s, 0x200003FFu, buf, 9000, 8);
    sfi_stlink_close(s);
    return 0;
}
