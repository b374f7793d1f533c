/* fuzz_trace_frames.c: the capture decoder behind libpcap, fed frames it cannot trust. The
 * input is a sequence of [selector u8][length u16 LE][bytes]: a raw frame of one of the link
 * types the reader knows, or the bytes as the payload of a TCP segment of one stlink-server
 * connection (either direction, sequence offset from the input), or of a usbmon bulk or
 * control event, so the stream reassembly, request framing and ST-LINK command decoding all
 * see hostile data. Every record must be self-consistent; feeding may only fail with NOMEM. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <pcap/pcap.h>

#include "sfi/bytes.h"
#include "sfi/trace.h"

static const int dlts[] = {DLT_EN10MB, DLT_LINUX_SLL, 276, DLT_NULL, DLT_LOOP, DLT_RAW, 228, 229,
                           DLT_USB_LINUX, DLT_USB_LINUX_MMAPPED, 249};

static uint8_t frame[70000];

static size_t tcp_frame(int from_client, uint32_t seq, uint32_t ack, unsigned flags,
                        const uint8_t *p, size_t n)
{
    memset(frame, 0, 54);
    sfi_put_be16(frame + 12, 0x0800);
    uint8_t *ip = frame + 14, *tcp = frame + 34;
    ip[0] = 0x45;
    sfi_put_be16(ip + 2, (unsigned)(40 + n));
    ip[9] = 6;
    sfi_put_be32(ip + 12, 0x7F000001u);
    sfi_put_be32(ip + 16, 0x7F000001u);
    sfi_put_be16(tcp, from_client ? 40000 : 7184);
    sfi_put_be16(tcp + 2, from_client ? 7184 : 40000);
    sfi_put_be32(tcp + 4, seq);
    sfi_put_be32(tcp + 8, ack);
    tcp[12] = 5 << 4;
    tcp[13] = (uint8_t)flags;
    if (n > 0)
        memcpy(tcp + 20, p, n);
    return 54 + n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct sfi_ctx *ctx;
    if (ctx == NULL) {
        sfi_ctx_new(&ctx);
        sfi_log_set_level(ctx, SFI_LOG_ERROR);
    }
    struct sfi_trace *tr;
    struct sfi_trace_opts o = {.all_ports = size > 0 && (data[0] & 0x80)};
    if (sfi_trace_new(ctx, &o, &tr) != SFI_OK)
        return 0;
    uint32_t seq[2] = {1000, 50000};
    size_t pos = size > 0 ? 1 : 0;
    while (pos + 3 <= size) {
        unsigned sel = data[pos];
        size_t n = sfi_get_le16(data + pos + 1);
        pos += 3;
        if (n > size - pos)
            n = size - pos;
        const uint8_t *p = data + pos;
        pos += n;
        int rc;
        unsigned kind = sel % 16;
        if (kind < sizeof dlts / sizeof dlts[0]) {
            rc = sfi_trace_feed_frame(tr, dlts[kind], 0, p, n, n + (sel >> 7) * 100);
        } else if (kind <= 13) {
            /* TCP payload: sel bits 4-6 nudge the sequence number (gaps, overlaps, reorders) */
            int c = kind == 12;
            uint32_t s = seq[!c] + ((sel >> 4) & 7) * 16u - 32u;
            size_t fn = tcp_frame(c, s, seq[c], (sel & 0x80) ? 0x11 : 0x18, p, n);
            seq[!c] = s + (uint32_t)n;
            rc = sfi_trace_feed_frame(tr, DLT_EN10MB, 0, frame, fn, fn);
        } else {
            /* usbmon event around the bytes: type, endpoint and transfer type from sel */
            memset(frame, 0, 64);
            frame[8] = (uint8_t)("SCSE"[(sel >> 4) & 3]);
            frame[9] = (uint8_t)(kind == 14 ? 3 : 2);
            frame[10] = (uint8_t)((sel & 0x40) ? 0x81 : 0x01);
            frame[11] = (uint8_t)(2 + ((sel >> 7) & 1));
            frame[12] = 1;
            sfi_put_le16(frame + 36, (uint16_t)n);
            memcpy(frame + 64, p, n);
            rc = sfi_trace_feed_frame(tr, DLT_USB_LINUX_MMAPPED, 0, frame, 64 + n, 64 + n);
        }
        if (rc != SFI_OK && rc != SFI_E_NOMEM)
            abort();
    }
    sfi_trace_feed_end(tr);
    const struct sfi_trace_rec *r;
    int rc;
    while ((rc = sfi_trace_next(tr, &r)) == SFI_OK && r != NULL) {
        if (r->kind == SFI_TRACE_CMD) {
            if (r->in_len > 0 && r->in == NULL)
                abort();
            if (r->out_len > 0 && r->out == NULL)
                abort();
            if (r->cmd != NULL && r->cmd->args == SFI_STLINK_ARGS_MEM && !r->has_addr)
                abort();
            if (r->in_len > 0 && (r->in[0] | r->in[r->in_len - 1]) == 0x1FF)
                abort(); /* touches both ends (ASan checks the bounds) */
            if (r->out_len > 0 && (r->out[0] | r->out[r->out_len - 1]) == 0x1FF)
                abort();
        }
        if (r->kind == SFI_TRACE_SERVER && (r->req == NULL || r->req_len == 0))
            abort();
        if (memchr(r->text, 0, sizeof r->text) == NULL)
            abort();
    }
    if (rc != SFI_OK)
        abort();
    sfi_trace_close(tr);
    return 0;
}
