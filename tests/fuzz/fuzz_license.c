/* fuzz_license.c: sfi_license_open (what the simulated RSS runs) on arbitrary 136-byte
 * licences with a fixed chip key (the seed corpus holds one valid licence for it, and ST's
 * "SFIG" licence from tests/data/st-tpc-2024-h5): must never crash, and answer only OK,
 * FORMAT, CRYPTO or AUTH, or UNSUPPORTED for ST's type. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sfi/license.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sfi_ctx *ctx;
    static uint8_t priv[32], pub[64];
    if (!ctx) {
        uint8_t seed[32] = {9};
        if (sfi_ctx_new(&ctx) != SFI_OK ||
            sfi_chip_identity(ctx, (const uint8_t *)"chip", 4, seed, priv, pub) != SFI_OK)
            abort();
    }
    if (size < SFI_LIC_SIZE)
        return 0;
    struct sfi_license_info info;
    (void)sfi_license_parse(ctx, data, &info);
    uint8_t key[16], iv[16];
    int rc = sfi_license_open(ctx, priv, data, key, iv);
    int st = memcmp(data, "SFIG", 4) == 0;
    if (rc != SFI_OK && rc != SFI_E_FORMAT && rc != SFI_E_CRYPTO && rc != SFI_E_AUTH &&
        !(st && rc == SFI_E_UNSUPPORTED))
        abort();
    return 0;
}
