/* ossl_err.c: maps OpenSSL failures of the licence and certificate code to sfirun codes.
 * The drained OpenSSL error queue becomes the detail text; the caller chooses the code,
 * because OpenSSL's reason codes do not tell a forged input from an internal failure. */
#include <openssl/err.h>
#include <stdio.h>
#include <string.h>

#include "license/lic_int.h"

int sfi_lic_osslerr(struct sfi_ctx *ctx, int rc, const char *what)
{
    char buf[256] = "";
    unsigned long e;
    unsigned long last = 0;
    while ((e = ERR_get_error()) != 0)
        last = e;
    if (last)
        ERR_error_string_n(last, buf, sizeof buf);
    if (buf[0])
        return sfi_seterr(ctx, rc, "%s (%s)", what, buf);
    return sfi_seterr(ctx, rc, "%s", what);
}
