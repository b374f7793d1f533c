/* fuzz_fw.h: the body of the firmware-loader fuzz targets (elf, ihex, srec): the loader on
 * arbitrary bytes, then the segment merge when the loader accepted them. */
#ifndef FUZZ_FW_H
#define FUZZ_FW_H

#include <stdint.h>
#include <stdlib.h>

#include "sfi/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_FW_LOADER(load)                                                                       \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)                                  \
    {                                                                                              \
        static struct sfi_ctx *ctx;                                                                \
        if (!ctx && sfi_ctx_new(&ctx))                                                             \
            abort();                                                                               \
        struct sfi_fw fw;                                                                          \
        sfi_fw_init(&fw);                                                                          \
        if (load(ctx, &fw, "fuzz", data, size) == SFI_OK)                                          \
            (void)sfi_fw_merge(ctx, &fw);                                                          \
        sfi_fw_free(&fw);                                                                          \
        return 0;                                                                                  \
    }

#endif
