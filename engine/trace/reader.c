/* reader.c: the capture reader. Opens pcap/pcapng files with libpcap, walks the link layers
 * (Ethernet with VLAN tags, Linux cooked v1/v2, BSD loopback, raw IPv4/IPv6) down to TCP
 * segments, or the USB capture headers (Linux usbmon, Windows USBPcap) down to URB events,
 * and queues the records tcpflow.c and usbdev.c produce. Memory stays bounded: fixed flow and
 * device tables, a queue drained after every frame. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sfi/bytes.h"
#include "sfi/stlink.h"
#include "trace/trace_int.h"

#ifndef DLT_LINUX_SLL2
#define DLT_LINUX_SLL2 276
#endif
#ifndef DLT_USBPCAP
#define DLT_USBPCAP 249
#endif
#ifndef DLT_IPV4
#define DLT_IPV4 228
#endif
#ifndef DLT_IPV6
#define DLT_IPV6 229
#endif

/* ---- record queue -------------------------------------------------------------------------- */

void tr_emit(struct sfi_trace *tr, const struct sfi_trace_rec *r, uint8_t *b1, uint8_t *b2)
{
    if (tr->qn == tr->qcap) {
        size_t cap = tr->qcap ? tr->qcap * 2 : 16;
        struct tr_qrec *q = realloc(tr->q, cap * sizeof *q);
        if (q == NULL) {
            tr->oom = 1;
            free(b1);
            free(b2);
            return;
        }
        tr->q = q;
        tr->qcap = cap;
    }
    struct tr_qrec *e = &tr->q[tr->qn++];
    e->rec = *r;
    e->rec.frame = tr->frame;
    e->rec.t = tr->now;
    e->b1 = b1;
    e->b2 = b2;
    tr->st.records++;
    if (r->kind == SFI_TRACE_GAP)
        tr->st.gaps++;
}

void tr_note(struct sfi_trace *tr, unsigned stream, const char *via, const char *fmt, ...)
{
    struct sfi_trace_rec r;
    memset(&r, 0, sizeof r);
    r.kind = SFI_TRACE_NOTE;
    r.stream = stream;
    r.via = via;
    r.status = -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.text, sizeof r.text, fmt, ap);
    va_end(ap);
    tr_emit(tr, &r, NULL, NULL);
}

static void cur_free(struct sfi_trace *tr)
{
    free(tr->cur.b1);
    free(tr->cur.b2);
    tr->cur.b1 = tr->cur.b2 = NULL;
}

/* ---- open / close -------------------------------------------------------------------------- */

static const char *link_name(int dlt)
{
    switch (dlt) {
    case DLT_EN10MB: return "Ethernet";
    case DLT_LINUX_SLL: return "Linux cooked (SLL)";
    case DLT_LINUX_SLL2: return "Linux cooked v2 (SLL2)";
    case DLT_NULL: return "BSD loopback (NULL)";
    case DLT_LOOP: return "OpenBSD loopback (LOOP)";
    case DLT_RAW: return "raw IP";
    case DLT_IPV4: return "raw IPv4";
    case DLT_IPV6: return "raw IPv6";
    case DLT_USB_LINUX: return "Linux usbmon";
    case DLT_USB_LINUX_MMAPPED: return "Linux usbmon (memory-mapped)";
    case DLT_USBPCAP: return "USBPcap";
    default: return NULL;
    }
}

static int trace_alloc(struct sfi_ctx *ctx, const struct sfi_trace_opts *opts,
                       struct sfi_trace **out)
{
    struct sfi_trace *tr = calloc(1, sizeof *tr);
    if (tr == NULL)
        return sfi_seterr(ctx, SFI_E_NOMEM, "capture reader");
    tr->ctx = ctx;
    if (opts != NULL)
        tr->opts = *opts;
    if (tr->opts.port == 0)
        tr->opts.port = SFI_STLINK_TCP_PORT;
    tr->st.linktype = -1;
    *out = tr;
    return SFI_OK;
}

int sfi_trace_new(struct sfi_ctx *ctx, const struct sfi_trace_opts *opts, struct sfi_trace **out)
{
    return trace_alloc(ctx, opts, out);
}

int sfi_trace_open(struct sfi_ctx *ctx, const char *path, const struct sfi_trace_opts *opts,
                   struct sfi_trace **out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        return sfi_seterr(ctx, e == ENOENT ? SFI_E_NOT_FOUND : e == EACCES ? SFI_E_ACCESS : SFI_E_IO,
                          "%s: %s", path, strerror(e));
    }
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fclose(f);
        return sfi_seterr(ctx, SFI_E_ACCESS, "%s: is a directory", path);
    }
    char err[PCAP_ERRBUF_SIZE] = "";
    pcap_t *p = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_MICRO, err);
    if (p == NULL) {
        fclose(f);
        return sfi_seterr(ctx, SFI_E_FORMAT, "%s is not a pcap or pcapng capture (%s)", path,
                          err[0] ? err : "unknown format");
    }
    int dlt = pcap_datalink(p);
    const char *name = link_name(dlt);
    if (name == NULL) {
        const char *dn = pcap_datalink_val_to_name(dlt);
        sfi_seterr(ctx, SFI_E_FORMAT, "%s: link type %d (%s) is not one the trace reader knows "
                   "(Ethernet, Linux cooked, loopback, raw IP, usbmon, USBPcap)", path, dlt,
                   dn ? dn : "unnamed");
        pcap_close(p);
        return SFI_E_FORMAT;
    }
    struct sfi_trace *tr = NULL;
    int rc = trace_alloc(ctx, opts, &tr);
    if (rc != SFI_OK) {
        pcap_close(p);
        return rc;
    }
    tr->pcap = p;
    tr->st.linktype = dlt;
    snprintf(tr->st.linkname, sizeof tr->st.linkname, "%s", name);
    *out = tr;
    return SFI_OK;
}

void sfi_trace_close(struct sfi_trace *tr)
{
    if (tr == NULL)
        return;
    if (tr->pcap != NULL)
        pcap_close(tr->pcap);
    tr_tcp_free(tr);
    tr_usb_free(tr);
    for (size_t i = tr->qhead; i < tr->qn; i++) {
        free(tr->q[i].b1);
        free(tr->q[i].b2);
    }
    free(tr->q);
    cur_free(tr);
    free(tr);
}

const struct sfi_trace_stats *sfi_trace_stats(const struct sfi_trace *tr)
{
    return &tr->st;
}

/* ---- link layers --------------------------------------------------------------------------- */

static void add_port(struct sfi_trace *tr, unsigned port)
{
    for (unsigned i = 0; i < tr->st.nports; i++)
        if (tr->st.ports[i] == port)
            return;
    if (tr->st.nports < 8)
        tr->st.ports[tr->st.nports++] = port;
}

static void tcp_layer(struct sfi_trace *tr, const uint8_t src[16], const uint8_t dst[16],
                      const uint8_t *p, size_t n, size_t wire)
{
    if (n < 20) {
        tr->st.other_ip++;
        return;
    }
    unsigned off = (p[12] >> 4) * 4u;
    if (off < 20 || off > wire) {
        tr->st.other_ip++;
        return;
    }
    tr->st.tcp_segments++;
    unsigned sport = sfi_get_be16(p), dport = sfi_get_be16(p + 2);
    add_port(tr, sport < dport ? sport : dport);
    size_t have = n > off ? n - off : 0;
    if (n < off)
        have = 0;
    size_t full = wire - off;
    if (have > full)
        have = full;
    tr_tcp_segment(tr, src, sport, dst, dport, sfi_get_be32(p + 4), sfi_get_be32(p + 8), p[13],
                   n >= off ? p + off : p, have, full - have);
}

/* IPv4 or IPv6 packet (version from the first nibble). */
static void ip_layer(struct sfi_trace *tr, const uint8_t *p, size_t n)
{
    uint8_t src[16], dst[16];
    if (n < 1) {
        tr->st.non_ip++;
        return;
    }
    if ((p[0] >> 4) == 4) {
        if (n < 20) {
            tr->st.other_ip++;
            return;
        }
        unsigned ihl = (p[0] & 0xF) * 4u, total = sfi_get_be16(p + 2);
        unsigned frag = sfi_get_be16(p + 6);
        if (ihl < 20 || total < ihl || p[9] != 6 || (frag & 0x3FFF) != 0) {
            tr->st.other_ip++;
            return;
        }
        if (total == 0)
            total = (unsigned)n; /* TSO captures write 0 */
        memset(src, 0, 16);
        memset(dst, 0, 16);
        src[10] = src[11] = dst[10] = dst[11] = 0xFF;
        memcpy(src + 12, p + 12, 4);
        memcpy(dst + 12, p + 16, 4);
        size_t have = n < total ? n : total;
        if (have < ihl) {
            tr->st.other_ip++;
            return;
        }
        tcp_layer(tr, src, dst, p + ihl, have - ihl, total - ihl);
    } else if ((p[0] >> 4) == 6) {
        if (n < 40) {
            tr->st.other_ip++;
            return;
        }
        unsigned next = p[6];
        size_t plen = sfi_get_be16(p + 4), off = 40;
        memcpy(src, p + 8, 16);
        memcpy(dst, p + 24, 16);
        /* hop-by-hop, routing and destination options headers */
        while ((next == 0 || next == 43 || next == 60) && off + 8 <= n) {
            size_t hl = (p[off + 1] + 1u) * 8u;
            next = p[off];
            if (hl > plen) {
                tr->st.other_ip++;
                return;
            }
            off += hl;
            plen -= hl;
        }
        if (next != 6 || off > n) {
            tr->st.other_ip++;
            return;
        }
        size_t have = n - off < plen ? n - off : plen;
        tcp_layer(tr, src, dst, p + off, have, plen);
    } else {
        tr->st.non_ip++;
    }
}

static void ethertype(struct sfi_trace *tr, unsigned type, const uint8_t *p, size_t n)
{
    while ((type == 0x8100 || type == 0x88A8 || type == 0x9100) && n >= 4) {
        type = sfi_get_be16(p + 2);
        p += 4;
        n -= 4;
    }
    if (type == 0x0800 || type == 0x86DD)
        ip_layer(tr, p, n);
    else
        tr->st.non_ip++;
}

static void usbmon(struct sfi_trace *tr, const uint8_t *p, size_t n, int mmapped)
{
    size_t hl = mmapped ? 64 : 48;
    if (n < hl) {
        tr->st.non_ip++;
        return;
    }
    tr->st.usb_urbs++;
    struct tr_urb u;
    memset(&u, 0, sizeof u);
    u.submit = p[8] == 'S';
    if (p[8] != 'S' && p[8] != 'C' && p[8] != 'E')
        return;
    u.xfer = p[9];
    u.ep = p[10];
    u.dev = p[11];
    u.bus = sfi_get_le16(p + 12);
    u.status = (int32_t)sfi_get_le32(p + 28);
    if (p[8] == 'E' && u.status == 0)
        u.status = -1;
    size_t cap = sfi_get_le32(p + 36);
    size_t off = hl;
    if (mmapped && u.xfer == 0) {
        uint32_t ndesc = sfi_get_le32(p + 60);
        if (ndesc > 1024)
            return;
        off += 16u * ndesc;
    }
    if (p[15] != 0 || off > n) /* flag_data: '=' or 0 means data present */
        cap = p[15] == '=' ? cap : 0;
    if (off > n)
        return;
    if (cap > n - off)
        cap = n - off;
    u.data = p + off;
    u.n = cap;
    tr_usb_urb(tr, &u);
}

static void usbpcap(struct sfi_trace *tr, const uint8_t *p, size_t n)
{
    if (n < 27) {
        tr->st.non_ip++;
        return;
    }
    size_t hl = sfi_get_le16(p);
    if (hl < 27 || hl > n) {
        tr->st.non_ip++;
        return;
    }
    tr->st.usb_urbs++;
    struct tr_urb u;
    memset(&u, 0, sizeof u);
    u.status = (int)sfi_get_le32(p + 10);
    u.submit = !(p[16] & 1);
    u.bus = sfi_get_le16(p + 17);
    u.dev = sfi_get_le16(p + 19);
    u.ep = p[21];
    u.xfer = p[22];
    size_t dl = sfi_get_le32(p + 23);
    if (dl > n - hl)
        dl = n - hl;
    u.data = p + hl;
    u.n = dl;
    tr_usb_urb(tr, &u);
}

int sfi_trace_feed_frame(struct sfi_trace *tr, int dlt, double t, const uint8_t *p, size_t n,
                         size_t wire)
{
    tr->frame++;
    tr->st.frames++;
    if (!tr->have_t0) {
        tr->t0 = t;
        tr->have_t0 = 1;
    }
    tr->now = t - tr->t0;
    if (wire < n)
        wire = n;
    (void)wire;
    switch (dlt) {
    case DLT_EN10MB:
        if (n < 14)
            tr->st.non_ip++;
        else
            ethertype(tr, sfi_get_be16(p + 12), p + 14, n - 14);
        break;
    case DLT_LINUX_SLL:
        if (n < 16)
            tr->st.non_ip++;
        else
            ethertype(tr, sfi_get_be16(p + 14), p + 16, n - 16);
        break;
    case DLT_LINUX_SLL2:
        if (n < 20)
            tr->st.non_ip++;
        else
            ethertype(tr, sfi_get_be16(p), p + 20, n - 20);
        break;
    case DLT_NULL:
    case DLT_LOOP:
        if (n < 4)
            tr->st.non_ip++;
        else
            ip_layer(tr, p + 4, n - 4); /* the family word: the IP version says it too */
        break;
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
        ip_layer(tr, p, n);
        break;
    case DLT_USB_LINUX:
        usbmon(tr, p, n, 0);
        break;
    case DLT_USB_LINUX_MMAPPED:
        usbmon(tr, p, n, 1);
        break;
    case DLT_USBPCAP:
        usbpcap(tr, p, n);
        break;
    default:
        return sfi_seterr(tr->ctx, SFI_E_FORMAT, "link type %d", dlt);
    }
    return tr->oom ? sfi_seterr(tr->ctx, SFI_E_NOMEM, "capture reader") : SFI_OK;
}

void sfi_trace_feed_end(struct sfi_trace *tr)
{
    if (tr->ended)
        return;
    tr->ended = 1;
    tr_tcp_end(tr);
    tr_usb_end(tr);
}

int sfi_trace_next(struct sfi_trace *tr, const struct sfi_trace_rec **rec)
{
    cur_free(tr);
    *rec = NULL;
    while (tr->qhead == tr->qn) {
        tr->qhead = tr->qn = 0;
        if (tr->ended || tr->pcap == NULL)
            return SFI_OK;
        struct pcap_pkthdr *h;
        const u_char *data;
        int r = pcap_next_ex(tr->pcap, &h, &data);
        if (r == PCAP_ERROR_BREAK) {
            sfi_trace_feed_end(tr);
            continue;
        }
        if (r == PCAP_ERROR) {
            /* what was decoded so far is still handed out; the damage ends the file */
            sfi_seterr(tr->ctx, SFI_E_FORMAT, "capture damaged or cut short after frame %llu "
                       "(%s)", (unsigned long long)tr->frame, pcap_geterr(tr->pcap));
            tr->ended = 1;
            return SFI_E_FORMAT;
        }
        if (r != 1)
            continue;
        double t = (double)h->ts.tv_sec + (double)h->ts.tv_usec / 1e6;
        int rc = sfi_trace_feed_frame(tr, tr->st.linktype, t, data, h->caplen, h->len);
        if (rc != SFI_OK)
            return rc;
    }
    tr->cur = tr->q[tr->qhead++];
    *rec = &tr->cur.rec;
    return SFI_OK;
}
