/* fuzz_obcsv.c: the option-byte CSV parser (H7 row set) on arbitrary text. */
#include <stdint.h>
#include <stdlib.h>

#include "sfi/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sfi_ctx *ctx;
    if (!ctx && sfi_ctx_new(&ctx))
        abort();
    uint8_t out[4 * SFI_IMAGE_OB_WORDS];
    (void)sfi_obcsv_parse(ctx, "fuzz.csv", data, size, NULL, 0, out);
    return 0;
}
