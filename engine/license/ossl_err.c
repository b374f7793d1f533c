/* ossl_err.c: maps OpenSSL failures to sfirun codes (ossl_err.h): the drained error queue
 * becomes the detail text. Licences, certificates, image cryptography and bundle signing
 * all report OpenSSL errors through here. */
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

#include "license/ossl_err.h"

void sfi_ossl_err_set(struct sfi_ctx *ctx, int rc, const char *what)
{
    char queue[384] = "";
    size_t used = 0;
    unsigned more = 0;
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        char one[256];
        ERR_error_string_n(e, one, sizeof one);
        size_t n = strlen(one);
        size_t sep = used ? 2 : 0;
        if (more == 0 && used + sep + n < sizeof queue) {
            snprintf(queue + used, sizeof queue - used, "%s%s", sep ? "; " : "", one);
            used += sep + n;
        } else {
            more++;
        }
    }
    if (used == 0)
        sfi_seterr(ctx, rc, "%s", what);
    else if (more)
        sfi_seterr(ctx, rc, "%s: %s (+%u more)", what, queue, more);
    else
        sfi_seterr(ctx, rc, "%s: %s", what, queue);
}
