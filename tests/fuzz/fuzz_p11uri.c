/* fuzz_p11uri.c: the RFC 7512 PKCS#11 URI parser on arbitrary text (made NUL-terminated):
 * must answer OK or USAGE, never crash, and on OK every field must be a terminated string
 * that fits its buffer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sfi/hsm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sfi_ctx *ctx;
    if (!ctx && sfi_ctx_new(&ctx))
        abort();
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    struct sfi_hsm_uri u;
    int rc = sfi_hsm_uri_parse(ctx, s, &u);
    if (rc == SFI_OK) {
        if (memchr(u.token, 0, sizeof u.token) == NULL ||
            memchr(u.module, 0, sizeof u.module) == NULL ||
            memchr(u.pin_env, 0, sizeof u.pin_env) == NULL ||
            memchr(u.pin_file, 0, sizeof u.pin_file) == NULL)
            abort();
    } else if (rc != SFI_E_USAGE) {
        abort();
    }
    free(s);
    return 0;
}
