/* error.c: the error-code table (code <-> name <-> sentence) and the context's detail
 * buffer. The table is indexed by -code; codes are append-only (see sfi.h). */
#include <stdio.h>
#include <string.h>

#include "ctx_int.h"

static const struct {
    const char *name;
    const char *text;
} errtab[SFI_ERR_COUNT] = {
    {"OK", "success"},
    {"IO", "input/output error"},
    {"TIMEOUT", "operation timed out"},
    {"NO_DEVICE", "no such device (it may have been disconnected)"},
    {"ACCESS", "access denied (insufficient permissions)"},
    {"BUSY", "resource busy"},
    {"NOT_FOUND", "not found"},
    {"UNSUPPORTED", "operation not supported"},
    {"INVALID", "invalid argument or state"},
    {"NOMEM", "out of memory"},
    {"PROTOCOL", "protocol error"},
    {"TARGET", "the target reported an error"},
    {"LOCKED", "locked"},
    {"AUTH", "authentication failed"},
    {"CRYPTO", "cryptographic check failed"},
    {"FORMAT", "malformed input"},
    {"CANCELED", "interrupted"},
    {"COUNTER", "licence counter exhausted"},
    {"SANDBOX", "not allowed in the sandbox"},
    {"USAGE", "usage error"},
    {"LIMIT", "a station limit was exceeded"},
};

const char *sfi_errname(int rc)
{
    if (rc > 0 || -rc >= SFI_ERR_COUNT)
        return "UNKNOWN";
    return errtab[-rc].name;
}

const char *sfi_strerror(int rc)
{
    if (rc > 0 || -rc >= SFI_ERR_COUNT)
        return "unknown error";
    return errtab[-rc].text;
}

int sfi_errcode(const char *name)
{
    for (int i = 0; i < SFI_ERR_COUNT; i++)
        if (strcmp(errtab[i].name, name) == 0)
            return -i;
    return 1;
}

/* (name in parentheses: not the analyzer model macro of sfi.h) */
int (sfi_seterr)(struct sfi_ctx *ctx, int rc, const char *fmt, ...)
{
    if (ctx == NULL)
        return rc;
    /* Formatted into a buffer of its own first, then copied: the arguments may be (or point
     * into) the current detail, as in sfi_seterr(ctx, rc, "%s: %s", path, sfi_errdetail(ctx)),
     * and formatting into the buffer being read would garble it. */
    char tmp[sizeof ctx->detail];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    memcpy(ctx->detail, tmp, sizeof tmp);
    return rc;
}

const char *sfi_errdetail(const struct sfi_ctx *ctx)
{
    return ctx ? ctx->detail : "";
}

void sfi_clearerr(struct sfi_ctx *ctx)
{
    if (ctx)
        ctx->detail[0] = '\0';
}
