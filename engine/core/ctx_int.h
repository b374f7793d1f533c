/* ctx_int.h: the engine context's layout, shared by the core files only. */
#ifndef SFI_CTX_INT_H
#define SFI_CTX_INT_H

#include <signal.h>

#include "sfi/sfi.h"

struct sfi_ctx {
    enum sfi_level level;
    enum sfi_log_format format;
    sfi_log_fn sink;
    void *sink_ud;
    volatile sig_atomic_t canceled;
    char detail[512];
};

#endif
