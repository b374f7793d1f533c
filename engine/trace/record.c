/* record.c: records a probe session as a capture that sfirun trace, tcpdump and Wireshark
 * read: stlink-server sessions as Ethernet/IPv4/TCP frames with the connection's addresses,
 * sequence numbers and valid checksums; USB sessions as Linux usbmon (memory-mapped header)
 * URBs. Written through libpcap (pcap format: libpcap 1.10 has no pcapng writer) to a
 * temporary sibling of the target, made 0600, and renamed into place on close. */
#include <errno.h>
#include <fcntl.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "sfi/bytes.h"
#include "sfi/trace.h"

#define SEG_MAX 16384u
#define USB_BUS 1u
#define USB_DEV 2u

struct sfi_trace_writer {
    struct sfi_ctx *ctx;
    enum sfi_trace_wkind kind;
    pcap_t *dead;
    pcap_dumper_t *dump;
    char *path, *tmp;
    /* TCP */
    int connected;
    uint32_t ip[2];       /* [0] client, [1] server */
    unsigned port[2];
    uint32_t seq[2];
    uint16_t ipid;
    /* USB */
    uint64_t urb;
    uint8_t frame[SEG_MAX + 128];
};

int sfi_trace_writer_open(struct sfi_ctx *ctx, const char *path, enum sfi_trace_wkind kind,
                          struct sfi_trace_writer **out)
{
    if (path == NULL || path[0] == 0)
        return sfi_seterr(ctx, SFI_E_INVALID, "recording: empty file name");
    struct sfi_trace_writer *w = calloc(1, sizeof *w);
    size_t n = strlen(path);
    if (w != NULL) {
        w->path = strdup(path);
        w->tmp = malloc(n + 16);
    }
    if (w == NULL || w->path == NULL || w->tmp == NULL) {
        sfi_trace_writer_close(w);
        return sfi_seterr(ctx, SFI_E_NOMEM, "recording");
    }
    w->ctx = ctx;
    w->kind = kind;
    snprintf(w->tmp, n + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(w->tmp);
    if (fd < 0) {
        int e = errno;
        free(w->tmp);
        w->tmp = NULL;
        sfi_trace_writer_close(w);
        return sfi_seterr(ctx, e == ENOENT ? SFI_E_NOT_FOUND : e == EACCES || e == EROFS ||
                          e == EPERM ? SFI_E_ACCESS : SFI_E_IO,
                          "cannot create the recording %s: %s", path, strerror(e));
    }
    fchmod(fd, 0600);
    FILE *f = fdopen(fd, "wb");
    w->dead = pcap_open_dead(kind == SFI_TRACE_W_TCP ? DLT_EN10MB : DLT_USB_LINUX_MMAPPED,
                             65535);
    if (f != NULL && w->dead != NULL)
        w->dump = pcap_dump_fopen(w->dead, f);
    if (w->dump == NULL) {
        if (f != NULL)
            fclose(f);
        else
            close(fd);
        unlink(w->tmp);
        free(w->tmp);
        w->tmp = NULL;
        sfi_trace_writer_close(w);
        return sfi_seterr(ctx, SFI_E_IO, "cannot write the recording %s", path);
    }
    w->seq[0] = 0x10000000u;
    w->seq[1] = 0x20000000u;
    *out = w;
    return SFI_OK;
}

static void put(struct sfi_trace_writer *w, const uint8_t *p, size_t n)
{
    struct pcap_pkthdr h;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    h.ts = tv;
    h.caplen = h.len = (bpf_u_int32)n;
    pcap_dump((u_char *)w->dump, &h, p);
}

/* ---- TCP ------------------------------------------------------------------------------------ */

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)p[i] << 8 | p[i + 1];
    if (n & 1)
        sum += (uint32_t)p[n - 1] << 8;
    return sum;
}

static unsigned csum_fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return ~sum & 0xFFFF;
}

/* One segment from side s (0 client, 1 server). */
static void segment(struct sfi_trace_writer *w, int s, unsigned flags, const uint8_t *p, size_t n)
{
    uint8_t *f = w->frame;
    memset(f, 0, 54);
    f[5] = (uint8_t)(s ? 1 : 2);
    f[11] = (uint8_t)(s ? 2 : 1);
    sfi_put_be16(f + 12, 0x0800);
    uint8_t *ip = f + 14, *tcp = f + 34;
    ip[0] = 0x45;
    sfi_put_be16(ip + 2, (unsigned)(40 + n));
    sfi_put_be16(ip + 4, w->ipid++);
    sfi_put_be16(ip + 6, 0x4000);
    ip[8] = 64;
    ip[9] = 6;
    sfi_put_be32(ip + 12, w->ip[s]);
    sfi_put_be32(ip + 16, w->ip[1 - s]);
    sfi_put_be16(ip + 10, csum_fold(csum_add(0, ip, 20)));
    sfi_put_be16(tcp, w->port[s]);
    sfi_put_be16(tcp + 2, w->port[1 - s]);
    sfi_put_be32(tcp + 4, w->seq[s]);
    sfi_put_be32(tcp + 8, (flags & 0x10) ? w->seq[1 - s] : 0);
    tcp[12] = 5 << 4;
    tcp[13] = (uint8_t)flags;
    sfi_put_be16(tcp + 14, 65535);
    if (n > 0)
        memcpy(tcp + 20, p, n);
    uint8_t pseudo[12];
    memcpy(pseudo, ip + 12, 8);
    pseudo[8] = 0;
    pseudo[9] = 6;
    sfi_put_be16(pseudo + 10, (unsigned)(20 + n));
    uint32_t sum = csum_add(0, pseudo, 12);
    sum = csum_add(sum, tcp, 20 + n);
    sfi_put_be16(tcp + 16, csum_fold(sum));
    put(w, f, 54 + n);
    w->seq[s] += (uint32_t)n + ((flags & 0x03) ? 1u : 0u); /* SYN and FIN take one */
}

void sfi_trace_writer_tcp_connect(struct sfi_trace_writer *w, uint32_t client_ip,
                                  unsigned client_port, uint32_t server_ip, unsigned server_port)
{
    if (w == NULL || w->kind != SFI_TRACE_W_TCP || w->connected)
        return;
    w->ip[0] = client_ip;
    w->ip[1] = server_ip;
    w->port[0] = client_port;
    w->port[1] = server_port;
    w->connected = 1;
    segment(w, 0, 0x02, NULL, 0);        /* SYN */
    segment(w, 1, 0x12, NULL, 0);        /* SYN, ACK */
    segment(w, 0, 0x10, NULL, 0);        /* ACK */
}

void sfi_trace_writer_tcp_data(struct sfi_trace_writer *w, int to_server, const uint8_t *p,
                               size_t n)
{
    if (w == NULL || w->kind != SFI_TRACE_W_TCP || !w->connected)
        return;
    while (n > 0) {
        size_t k = n < SEG_MAX ? n : SEG_MAX;
        segment(w, to_server ? 0 : 1, 0x18, p, k); /* PSH, ACK */
        p += k;
        n -= k;
    }
}

/* ---- USB ------------------------------------------------------------------------------------ */

static void urb(struct sfi_trace_writer *w, char type, unsigned xfer, unsigned ep, int status,
                size_t length, const uint8_t *data, size_t n, const uint8_t setup[8])
{
    uint8_t *f = w->frame;
    if (n > SEG_MAX)
        n = SEG_MAX;
    memset(f, 0, 64);
    sfi_put_le64(f, w->urb);
    f[8] = (uint8_t)type;
    f[9] = (uint8_t)xfer;
    f[10] = (uint8_t)ep;
    f[11] = USB_DEV;
    sfi_put_le16(f + 12, USB_BUS);
    f[14] = setup != NULL ? 0 : '-';
    f[15] = n > 0 ? 0 : (type == 'S' ? '<' : '>');
    struct timeval tv;
    gettimeofday(&tv, NULL);
    sfi_put_le64(f + 16, (uint64_t)tv.tv_sec);
    sfi_put_le32(f + 24, (uint32_t)tv.tv_usec);
    sfi_put_le32(f + 28, (uint32_t)status);
    sfi_put_le32(f + 32, (uint32_t)length);
    sfi_put_le32(f + 36, (uint32_t)n);
    if (setup != NULL)
        memcpy(f + 40, setup, 8);
    if (n > 0)
        memcpy(f + 64, data, n);
    put(w, f, 64 + n);
}

void sfi_trace_writer_usb_device(struct sfi_trace_writer *w, uint16_t vid, uint16_t pid)
{
    if (w == NULL || w->kind != SFI_TRACE_W_USB)
        return;
    static const uint8_t setup[8] = {0x80, 0x06, 0x00, 0x01, 0x00, 0x00, 0x12, 0x00};
    uint8_t d[18] = {18, 1, 0x00, 0x02, 0, 0, 0, 64, 0, 0, 0, 0, 0x00, 0x01, 1, 2, 3, 1};
    sfi_put_le16(d + 8, vid);
    sfi_put_le16(d + 10, pid);
    w->urb++;
    urb(w, 'S', 2, 0x80, -115, 18, NULL, 0, setup);
    urb(w, 'C', 2, 0x80, 0, 18, d, 18, NULL);
}

void sfi_trace_writer_usb_bulk(struct sfi_trace_writer *w, unsigned ep, const uint8_t *p,
                               size_t n, size_t asked, int status)
{
    if (w == NULL || w->kind != SFI_TRACE_W_USB)
        return;
    w->urb++;
    if (ep & 0x80) {
        urb(w, 'S', 3, ep, -115, asked, NULL, 0, NULL);
        urb(w, 'C', 3, ep, status, n, p, n, NULL);
    } else {
        urb(w, 'S', 3, ep, -115, n, p, n, NULL);
        urb(w, 'C', 3, ep, status, status == 0 ? n : 0, NULL, 0, NULL);
    }
}

void sfi_trace_writer_close(struct sfi_trace_writer *w)
{
    if (w == NULL)
        return;
    if (w->dump != NULL) {
        if (w->kind == SFI_TRACE_W_TCP && w->connected) {
            segment(w, 0, 0x11, NULL, 0); /* FIN, ACK */
            segment(w, 1, 0x11, NULL, 0);
            segment(w, 0, 0x10, NULL, 0);
        }
        int bad = pcap_dump_flush(w->dump) != 0;
        pcap_dump_close(w->dump);
        if (bad || rename(w->tmp, w->path) != 0) {
            sfi_log(w->ctx, SFI_LOG_ERROR, "recording %s could not be written: %s", w->path,
                    strerror(errno));
            unlink(w->tmp);
        } else {
            sfi_log(w->ctx, SFI_LOG_INFO, "probe session recorded in %s", w->path);
        }
    }
    if (w->dead != NULL)
        pcap_close(w->dead);
    free(w->path);
    free(w->tmp);
    free(w);
}
