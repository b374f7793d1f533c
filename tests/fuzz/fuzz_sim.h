/* fuzz_sim.h: the small simulated chip the simulator's fuzz targets drive: a 0x450 with one
 * 8 KiB flash bank in one sector (state files of about 9 KiB keep the fuzzers fast) and, when
 * ram_size is not 0, one RAM region at 0x24000000. */
#ifndef FUZZ_SIM_H
#define FUZZ_SIM_H

#include <stdint.h>
#include <string.h>

#include "sfi/sim.h"

static inline void fuzz_sim_cfg(struct sfi_sim_cfg *c, uint32_t ram_size)
{
    memset(c, 0, sizeof *c);
    c->dev_id = 0x450;
    c->flash_kb = 8;
    c->nbanks = 1;
    c->bank_start[0] = 0x08000000;
    c->bank_size[0] = 0x2000;
    c->sector_size = 0x2000;
    c->flash_word = 32;
    c->flash_regs = 0x52002000;
    c->idcode_addr = 0x5C001000;
    if (ram_size) {
        c->nram = 1;
        c->ram[0] = (struct sfi_sim_region){"ram", 0x24000000, ram_size};
    }
    c->sys_start = 0x1FF00000;
    c->sys_size = 0x1000;
}

#endif
