/* ossl_err.h: the one mapping of an OpenSSL failure to a sfirun error, for the licence and
 * certificate code, the image cryptography and bundle signing (engine-internal). */
#ifndef SFI_OSSL_ERR_H
#define SFI_OSSL_ERR_H

#include "sfi/sfi.h"

/* Sets rc on ctx with the detail "what: <first error>[; <next error> ...]" and returns rc.
 * It drains OpenSSL's whole thread error queue (nothing is left for a later call to pick
 * up). The first error queued is named first: OpenSSL queues the root cause before the
 * errors of the calls that passed it up. Errors that do not fit the detail are counted
 * ("(+N more)"). The caller chooses rc, because OpenSSL's reason codes do not tell a forged
 * input from an internal failure. */
void sfi_ossl_err_set(struct sfi_ctx *ctx, int rc, const char *what);
/* Inline, so that callers (and their static analysis) see that rc comes back unchanged. */
static inline int sfi_ossl_err(struct sfi_ctx *ctx, int rc, const char *what)
{
    sfi_ossl_err_set(ctx, rc, what);
    return rc;
}

#endif
