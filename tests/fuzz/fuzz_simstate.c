/* fuzz_simstate.c: the simulator's state-file loader on arbitrary bytes: must refuse bad
 * input with FORMAT and never crash or leak. The chip is a small 0x450 with 2 sectors. */
#include <stdint.h>
#include <string.h>

#include "sfi/sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sfi_ctx *ctx;
    if (!ctx && sfi_ctx_new(&ctx))
        return 0;
    struct sfi_sim_cfg c;
    memset(&c, 0, sizeof c);
    c.dev_id = 0x450;
    c.flash_kb = 128;
    c.nbanks = 1;
    c.bank_start[0] = 0x08000000;
    c.bank_size[0] = 0x20000;
    c.sector_size = 0x20000;
    c.flash_word = 32;
    c.flash_regs = 0x52002000;
    c.idcode_addr = 0x5C001000;
    c.sys_start = 0x1FF00000;
    c.sys_size = 0x1000;
    struct sfi_sim *sim = NULL;
    if (sfi_sim_new(ctx, &c, &sim) == SFI_OK) {
        sfi_sim_load_state(sim, data, size);
        sfi_sim_free(sim);
    }
    return 0;
}
