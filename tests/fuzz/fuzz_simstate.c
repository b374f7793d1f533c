/* fuzz_simstate.c: the simulator's state-file loader on arbitrary bytes: must refuse bad
 * input with FORMAT and never crash or leak. Each input is tried as is and once more with a
 * correct CRC-32 trailer, so the fields behind the CRC check are reached too. The chip is
 * fuzz_sim.h's small 0x450. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_sim.h"
#include "sfi/bytes.h"
#include "sfi/sim.h"
#include "sim_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void try_load(struct sfi_sim *sim, const uint8_t *data, size_t size)
{
    int rc = sfi_sim_load_state(sim, data, size);
    if (rc != SFI_OK && rc != SFI_E_FORMAT)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sfi_ctx *ctx;
    static struct sfi_sim *sim;
    if (!ctx) {
        struct sfi_sim_cfg c;
        fuzz_sim_cfg(&c, 0);
        if (sfi_ctx_new(&ctx) != SFI_OK || sfi_sim_new(ctx, &c, &sim) != SFI_OK)
            abort();
    }
    try_load(sim, data, size);
    if (size >= 8) {
        uint8_t *fixed = malloc(size);
        if (!fixed)
            return 0;
        memcpy(fixed, data, size);
        sfi_put_le32(fixed + size - 4, sim_crc32(fixed, size - 4));
        try_load(sim, fixed, size);
        free(fixed);
    }
    return 0;
}
