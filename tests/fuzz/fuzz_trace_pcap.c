/* fuzz_trace_pcap.c: whole capture files through libpcap and the decoder, as `sfirun trace`
 * reads them: pcap or pcapng bytes in an in-memory file, opened, then every record read. Only
 * FORMAT (not a capture, unknown link type, damaged) and NOMEM may come back. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "sfi/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sfi_ctx *ctx;
    static int fd = -1;
    if (ctx == NULL) {
        sfi_ctx_new(&ctx);
        sfi_log_set_level(ctx, SFI_LOG_ERROR);
        fd = memfd_create("fuzz_trace_pcap", 0);
        if (fd < 0)
            abort();
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct sfi_trace *tr;
    struct sfi_trace_opts o = {.all_ports = 1};
    int rc = sfi_trace_open(ctx, path, &o, &tr);
    if (rc != SFI_OK) {
        if (rc != SFI_E_FORMAT && rc != SFI_E_NOMEM)
            abort();
        return 0;
    }
    const struct sfi_trace_rec *r;
    unsigned n = 0;
    while ((rc = sfi_trace_next(tr, &r)) == SFI_OK && r != NULL)
        n++;
    if (rc != SFI_OK && rc != SFI_E_FORMAT && rc != SFI_E_NOMEM)
        abort();
    const struct sfi_trace_stats *st = sfi_trace_stats(tr);
    if (st->records < n)
        abort();
    sfi_trace_close(tr);
    return 0;
}
