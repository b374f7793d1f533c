/* p11_int.h: engine-internal PKCS#11 declarations: the CKR_* mapping (pkcs11_err.c) and the
 * RFC 7512 URI parser (uri.c). */
#ifndef SFI_P11_INT_H
#define SFI_P11_INT_H

#include <p11-kit/pkcs11.h>

#include "sfi/hsm.h"

/* "CKR_PIN_INCORRECT" for 0xa0; "CKR_VENDOR_DEFINED" or "CKR_0x..." otherwise (static/TLS). */
const char *sfi_p11_rvname(CK_RV rv);
/* Maps rv to an sfirun code and sets the detail "op: CKR_NAME". Returns the code: SFI_OK for
 * CKR_OK only (an "already" answer is an error here; the caller that expects one handles it).
 * The only place where CKR_* values become sfirun codes. */
int sfi_p11_err(struct sfi_ctx *ctx, CK_RV rv, const char *op);
/* The PIN from the file (first line) or else the environment variable (default
 * SFI_HSM_PIN) into pin (cap bytes). Errors: SFI_E_NOT_FOUND (unset, unreadable, empty),
 * SFI_E_INVALID (too long). The caller wipes pin. */
int sfi_p11_read_pin(struct sfi_ctx *ctx, const char *env, const char *file, char *pin,
                     size_t cap);
#ifdef __clang_analyzer__
/* Static analysis only: what sfi_p11_err returns, which the analyzer cannot see. */
#define sfi_p11_err(ctx, rv, op) \
    ((rv) == CKR_OK ? SFI_OK : (sfi_p11_err((ctx), (rv), (op)), SFI_E_IO))
#endif

#endif
