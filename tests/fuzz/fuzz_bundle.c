/* fuzz_bundle.c: libFuzzer target for the bundle reader: the input is tried as a manifest
 * (grammar parser) and as a whole bundle (archive reader, names, limits, signature check
 * against a fixed key). The seed corpus holds bundles signed by that key (tar.gz and zip),
 * a manifest and hostile archives. Any crash, leak or UB is a bug; errors are expected. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sfi/bundle.h"

/* Public half of the key that signed the seed bundles (the private half is not kept). */
static const char TRUST[] = "-----BEGIN PUBLIC KEY-----\n"
                            "MCowBQYDK2VwAyEAU1J6pMnC3ssLQ4wDFocCmQlka4Ga4I4AB5QFlMttY7A=\n"
                            "-----END PUBLIC KEY-----\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sfi_ctx *ctx;
    if (!ctx && sfi_ctx_new(&ctx) != SFI_OK)
        return 0;
    struct sfi_bundle_manifest *m = NULL;
    if (sfi_bundle_manifest_parse(ctx, (const char *)data, size, &m) == SFI_OK) {
        for (size_t i = 0; i < m->nfiles; i++)
            (void)sfi_bundle_path_ok(m->files[i].path);
        sfi_bundle_manifest_free(m);
    }
    /* small limits so the fuzzer explores the limit paths instead of allocating */
    struct sfi_bundle_limits lim = {.max_member = 1 << 20, .max_total = 4 << 20,
                                    .max_members = 256};
    struct sfi_bundle *b = NULL;
    if (sfi_bundle_open(ctx, data, size, TRUST, sizeof TRUST - 1, &lim, &b) == SFI_OK) {
        const struct sfi_bundle_manifest *bm = sfi_bundle_get_manifest(b);
        const void *d;
        size_t n;
        for (size_t i = 0; i < bm->nfiles; i++)
            (void)sfi_bundle_member(b, bm->files[i].path, &d, &n);
        sfi_bundle_free(b);
    }
    return 0;
}
