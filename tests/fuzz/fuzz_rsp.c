/* fuzz_rsp.c: GDB remote protocol parsing in both directions on arbitrary bytes. The input is
 * a byte stream fed to the framing decoder (engine/rsp); every packet it yields is (a) answered
 * by the simulator's GDB server (sim/gdb_server.c: the request parser, memory, registers,
 * monitor commands on a small simulated chip) and (b) read as the gdb driver reads a reply
 * (qSupported features, Enn, hex). Nothing may crash, leak or read out of bounds, and a reply
 * must fit its buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_sim.h"
#include "sfi/gdb_server.h"
#include "sfi/rsp.h"
#include "sfi/sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void out_fn(void *ud, const uint8_t *pkt, size_t n)
{
    (void)ud;
    if (n == 0 || pkt[0] != 'O')
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sfi_ctx *ctx;
    static struct sfi_sim *sim;
    static struct sfi_gdb_server *gs;
    static uint8_t buf[4096], reply[SFI_RSP_MAX_PAYLOAD + 64];
    if (!ctx) {
        struct sfi_sim_cfg c;
        fuzz_sim_cfg(&c, 0x1000);
        struct sfi_gdb_server_cfg g = {.no_listen = 1, .packet_size = 0x400};
        if (sfi_ctx_new(&ctx) != SFI_OK)
            abort();
        sfi_log_set_level(ctx, SFI_LOG_ERROR);
        if (sfi_sim_new(ctx, &c, &sim) != SFI_OK || sfi_gdb_server_new(ctx, &g, sim, &gs) != SFI_OK)
            abort();
    }
    struct sfi_rsp_dec d;
    sfi_rsp_dec_init(&d, buf, sizeof buf);
    for (size_t i = 0; i < size; i++) {
        if (sfi_rsp_feed(&d, data[i]) != SFI_RSP_PACKET)
            continue;
        if (d.len > sizeof buf)
            abort();
        /* the server side */
        size_t rlen = 0;
        int close = 0;
        sfi_gdb_server_handle(gs, d.buf, d.len, reply, sizeof reply, &rlen, &close, out_fn, NULL);
        if (rlen > sizeof reply)
            abort();
        uint8_t framed[256];
        size_t fl = sfi_rsp_frame(d.buf, d.len < 100 ? d.len : 100, framed, sizeof framed);
        if (fl == 0 || fl > sizeof framed)
            abort();
        /* the client side */
        struct sfi_rsp_features f;
        unsigned code;
        size_t used;
        sfi_rsp_supported(d.buf, d.len, &f);
        (void)sfi_rsp_is_error(d.buf, d.len, &code);
        (void)sfi_rsp_hexnum((const char *)d.buf, d.len, &used);
        uint8_t bin[2048];
        size_t hn = d.len / 2 < sizeof bin ? d.len / 2 : sizeof bin;
        (void)sfi_hex_decode((const char *)d.buf, hn, bin);
    }
    sfi_gdb_server_end_session(gs);
    return 0;
}
