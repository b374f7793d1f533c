/* fuzz_elf.c: the elf firmware loader and the segment merge on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>

#include "sfi/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sfi_ctx *ctx;
    if (!ctx && sfi_ctx_new(&ctx))
        abort();
    struct sfi_fw fw;
    sfi_fw_init(&fw);
    if (sfi_fw_load_elf(ctx, &fw, "fuzz", data, size) == SFI_OK)
        (void)sfi_fw_merge(ctx, &fw);
    sfi_fw_free(&fw);
    return 0;
}
