/* ctx.c: the engine context (log settings, detail buffer, cancel flag), time, sleep,
 * and memory wiping. One context per process is the normal case. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctx_int.h"

#ifndef SFI_VERSION_STRING
#define SFI_VERSION_STRING "0.0.0"
#endif

const char *sfi_version(void)
{
    return SFI_VERSION_STRING;
}

int sfi_ctx_new(struct sfi_ctx **out)
{
    struct sfi_ctx *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL)
        return SFI_E_NOMEM;
    ctx->level = SFI_LOG_INFO;
    ctx->format = SFI_LOGFMT_HUMAN;
    *out = ctx;
    return SFI_OK;
}

void sfi_ctx_free(struct sfi_ctx *ctx)
{
    free(ctx);
}

void sfi_cancel(struct sfi_ctx *ctx)
{
    ctx->canceled = 1;
}

int sfi_canceled(const struct sfi_ctx *ctx)
{
    return ctx != NULL && ctx->canceled;
}

void sfi_cancel_reset(struct sfi_ctx *ctx)
{
    ctx->canceled = 0;
}

uint64_t sfi_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t sfi_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int sfi_sleep_ms(struct sfi_ctx *ctx, unsigned ms)
{
    /* Sleep in slices so Ctrl-C is noticed within 20 ms. */
    while (ms > 0) {
        if (sfi_canceled(ctx))
            return SFI_E_CANCELED;
        unsigned slice = ms < 20 ? ms : 20;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)slice * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
            if (sfi_canceled(ctx))
                return SFI_E_CANCELED;
        }
        ms -= slice;
    }
    return sfi_canceled(ctx) ? SFI_E_CANCELED : SFI_OK;
}

void sfi_wipe(void *p, size_t n)
{
    if (p == NULL)
        return;
    /* memset at full speed; the empty asm with a memory clobber keeps the compiler from
     * treating the stores as dead. */
    memset(p, 0, n);
    __asm__ __volatile__("" : : "r"(p) : "memory");
}
