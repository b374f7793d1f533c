/* fuzz_stlink_server.c: the simulated ST-LINK's command decoder fed arbitrary CDBs. Input is
 * a sequence of records: 16-byte CDB, then as many OUT bytes as the CDB announces (fewer
 * if the input ends, which the decoder must reject cleanly), against a small RAM target. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sfi/stlink_server.h"

static uint8_t ram[0x2000];

static unsigned t_read(void *ud, uint32_t addr, uint8_t *buf, size_t n, unsigned width)
{
    (void)ud;
    (void)width;
    if (addr < 0x20000000u || (uint64_t)addr + n > 0x20000000u + sizeof ram)
        return SFI_STLINK_SWD_AP_FAULT;
    memcpy(buf, ram + (addr - 0x20000000u), n);
    return SFI_STLINK_OK;
}

static unsigned t_write(void *ud, uint32_t addr, const uint8_t *buf, size_t n, unsigned width)
{
    (void)ud;
    (void)width;
    if (addr < 0x20000000u || (uint64_t)addr + n > 0x20000000u + sizeof ram)
        return SFI_STLINK_SWD_AP_FAULT;
    memcpy(ram + (addr - 0x20000000u), buf, n);
    return SFI_STLINK_OK;
}

static const struct sfi_stlink_target_ops ops = {.read_mem = t_read, .write_mem = t_write};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sfi_ctx *ctx;
    static struct sfi_stlink_server *srv;
    static uint8_t reply[SFI_STLINK_BUF_SIZE + 16];
    if (ctx == NULL) {
        sfi_ctx_new(&ctx);
        sfi_stlink_server_new(ctx, NULL, &ops, NULL, &srv);
    }
    sfi_stlink_server_reset(srv);
    while (size >= 16) {
        const uint8_t *cdb = data;
        data += 16;
        size -= 16;
        size_t want = sfi_stlink_server_out_len(cdb);
        size_t have = want < size ? want : size;
        size_t rlen = 0;
        int rc = sfi_stlink_server_handle(srv, cdb, data, have, reply, sizeof reply, &rlen);
        if (rc == SFI_OK && rlen > sizeof reply)
            abort();
        data += have;
        size -= have;
    }
    return 0;
}
