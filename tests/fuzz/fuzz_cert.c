/* fuzz_cert.c: chip certificate parsing and verification on arbitrary 136-byte inputs
 * against a fixed CA key (must never crash; only OK, FORMAT or AUTH). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sfi/license.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sfi_ctx *ctx;
    static uint8_t ca_pub[64];
    if (!ctx) {
        uint8_t priv[32], seed[32] = {7};
        if (sfi_ctx_new(&ctx) != SFI_OK ||
            sfi_chip_identity(ctx, (const uint8_t *)"ca", 2, seed, priv, ca_pub) != SFI_OK)
            abort();
    }
    if (size < SFI_CERT_SIZE)
        return 0;
    struct sfi_cert c;
    (void)sfi_cert_parse(ctx, data, &c);
    int rc = sfi_cert_verify(ctx, data, ca_pub);
    if (rc != SFI_OK && rc != SFI_E_FORMAT && rc != SFI_E_AUTH)
        abort();
    return 0;
}
