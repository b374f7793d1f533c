/* stlink_loopback.c: an in-process ST-LINK transport that hands each command straight to a
 * server-side decoder (stlink_server.c). It behaves like USB: an IN reply shorter than requested
 * is a protocol error. Used by tests and by drivers that want the simulated probe without
 * a socket. */
#include <stdlib.h>
#include <string.h>

#include "sfi/stlink_server.h"

struct loopback {
    struct sfi_stlink_transport base;
    struct sfi_stlink_server *srv;
    uint8_t reply[SFI_STLINK_BUF_SIZE + 16];
};

static int lb_xfer(struct sfi_stlink_transport *t, const uint8_t cdb[16],
                   enum sfi_stlink_dir dir, uint8_t *data, size_t len, unsigned timeout_ms)
{
    struct loopback *lb = (struct loopback *)t;
    size_t rlen = 0;
    int out = dir == SFI_STLINK_OUT;
    int rc = sfi_stlink_server_handle(lb->srv, cdb, out ? data : NULL, out ? len : 0,
                                      lb->reply, sizeof lb->reply, &rlen);
    if (rc != SFI_OK)
        return rc;
    if (out)
        return SFI_OK;
    if (rlen < len)
        return sfi_seterr(t->ctx, SFI_E_PROTOCOL, "command %02X %02X: %zu-byte reply, %zu "
                          "expected", cdb[0], cdb[1], rlen, len);
    if (len > 0)
        memcpy(data, lb->reply, len);
    return SFI_OK;
}

static void lb_close(struct sfi_stlink_transport *t)
{
    free(t);
}

static const struct sfi_stlink_transport_ops loopback_ops = {
    .name = "loopback",
    .xfer = lb_xfer,
    .close = lb_close,
};

int sfi_stlink_loopback_new(struct sfi_ctx *ctx, struct sfi_stlink_server *srv,
                            struct sfi_stlink_transport **out)
{
    struct loopback *lb = calloc(1, sizeof *lb);
    if (lb == NULL)
        return sfi_seterr(ctx, SFI_E_NOMEM, "loopback transport");
    lb->base.ops = &loopback_ops;
    lb->base.ctx = ctx;
    lb->srv = srv;
    lb->base.vid = SFI_STLINK_VID;
    lb->base.pid = sfi_stlink_server_pid(srv);
    memcpy(lb->base.serial, sfi_stlink_server_serial(srv), sizeof lb->base.serial - 1);
    *out = &lb->base;
    return SFI_OK;
}
