/* drv_gdb.c: the "gdb" probe driver: any debug server that speaks GDB's remote serial protocol
 * (SEGGER JLinkGDBServer, OpenOCD, pyOCD, probe-rs, sfirun sim-server --gdb) over TCP, or a
 * Black Magic Probe on a serial port. Memory with m / X (M when X is refused), resets and
 * connect modes with the dialect's monitor commands (qRcmd) or, where it has none, through
 * the Cortex-M debug registers in memory. Framing: engine/rsp. Every wait is bounded; a server
 * that drops, floods or breaks the protocol is closed and reopened on the next connect. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "probe/driver.h"
#include "sfi/armv7m.h"
#include "sfi/rsp.h"

#define MIN_PACKET 64u
#define DEFAULT_PACKET 256u   /* assumed when qSupported names no PacketSize */
#define MAX_NOISE 65536u      /* non-packet bytes tolerated while waiting for one reply */
#define MAX_OUTPUT 2048u      /* monitor output kept for messages */

struct gdbdrv {
    struct sfi_gdb_cfg cfg; /* strings below are owned copies */
    char *strings[4 + SFI_GDB_MAX_ATTACH + 3 + 3 + 2 * SFI_GDB_MAX_LOST];
    size_t nstrings;
    int fd;
    int noack;
    int no_x;               /* the server refused X: use M */
    size_t pkt;             /* the server's PacketSize, bounded */
    char where[64];         /* "127.0.0.1:3333" or the tty, for messages */
    struct sfi_rsp_dec dec;
    uint8_t in[SFI_RSP_MAX_PAYLOAD];
    uint8_t rbuf[65536];
    size_t rpos, rlen;
    uint8_t out[2 * SFI_RSP_MAX_PAYLOAD + 8];
    char req[SFI_RSP_MAX_PAYLOAD + 64]; /* a write request being built */
    char output[MAX_OUTPUT]; /* the last monitor command's output (tail) */
    size_t output_len;
};

static struct gdbdrv *drv_of(struct sfi_probe *p)
{
    return sfi_probe_priv(p);
}

static struct sfi_ctx *ctx_of(struct sfi_probe *p)
{
    return sfi_probe_ctx(p);
}

/* ---- transport ----------------------------------------------------------------------------- */

static void drop(struct gdbdrv *d)
{
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
    d->noack = 0;
    d->rpos = d->rlen = 0;
}

static int open_tcp(struct sfi_probe *p)
{
    struct gdbdrv *d = drv_of(p);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    char port[16];
    snprintf(port, sizeof port, "%u", d->cfg.port);
    int e = getaddrinfo(d->cfg.host, port, &hints, &res);
    if (e != 0)
        return sfi_seterr(ctx_of(p), SFI_E_NOT_FOUND, "gdb: cannot resolve '%s': %s",
                          d->cfg.host, gai_strerror(e));
    int rc = SFI_E_NO_DEVICE, err = ECONNREFUSED;
    for (struct addrinfo *a = res; a != NULL && d->fd < 0; a = a->ai_next) {
        int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            err = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
            err = errno;
            close(fd);
            continue;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int so = 0;
        socklen_t sl = sizeof so;
        if (poll(&pfd, 1, (int)d->cfg.timeout_ms) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) != 0 || so != 0) {
            err = so ? so : ETIMEDOUT;
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        d->fd = fd;
        rc = SFI_OK;
    }
    freeaddrinfo(res);
    if (rc != SFI_OK)
        return sfi_seterr(ctx_of(p), SFI_E_NO_DEVICE, "gdb: no debug server at %s: %s",
                          d->where, strerror(err));
    return SFI_OK;
}

static speed_t baud_of(unsigned b)
{
    switch (b) {
    case 9600: return B9600;
    case 19200: return B19200;
    case 38400: return B38400;
    case 57600: return B57600;
    case 230400: return B230400;
    case 460800: return B460800;
    case 921600: return B921600;
    default: return B115200;
    }
}

static int open_tty(struct sfi_probe *p)
{
    struct gdbdrv *d = drv_of(p);
    int fd = open(d->cfg.tty, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return sfi_seterr(ctx_of(p), errno == EACCES ? SFI_E_ACCESS : SFI_E_NO_DEVICE,
                          "gdb: cannot open %s: %s", d->cfg.tty, strerror(errno));
    struct termios t;
    if (tcgetattr(fd, &t) == 0) {
        cfmakeraw(&t);
        cfsetspeed(&t, baud_of(d->cfg.baud));
        t.c_cflag |= CLOCAL | CREAD;
        tcsetattr(fd, TCSANOW, &t);
        tcflush(fd, TCIOFLUSH);
    }
    d->fd = fd;
    return SFI_OK;
}

static int send_all(struct sfi_probe *p, const uint8_t *b, size_t n)
{
    struct gdbdrv *d = drv_of(p);
    uint64_t end = sfi_now_ms() + d->cfg.timeout_ms;
    while (n > 0) {
        ssize_t k = d->cfg.tty ? write(d->fd, b, n) : send(d->fd, b, n, MSG_NOSIGNAL);
        if (k < 0 && (errno == EINTR || errno == EAGAIN)) {
            struct pollfd pfd = {.fd = d->fd, .events = POLLOUT};
            if (sfi_now_ms() >= end) {
                drop(d);
                return sfi_seterr(ctx_of(p), SFI_E_TIMEOUT, "gdb: %s does not take data",
                                  d->where);
            }
            poll(&pfd, 1, 50);
            continue;
        }
        if (k <= 0) {
            int e = errno;
            drop(d);
            return sfi_seterr(ctx_of(p), SFI_E_NO_DEVICE, "gdb: connection to %s lost: %s",
                              d->where, k == 0 ? "closed" : strerror(e));
        }
        b += k;
        n -= (size_t)k;
    }
    return SFI_OK;
}

/* Next byte from the server, waiting until end. */
static int get_byte(struct sfi_probe *p, uint64_t end, uint8_t *c)
{
    struct gdbdrv *d = drv_of(p);
    while (d->rpos == d->rlen) {
        if (sfi_canceled(ctx_of(p)))
            return sfi_seterr(ctx_of(p), SFI_E_CANCELED, "gdb: canceled");
        uint64_t now = sfi_now_ms();
        if (now >= end)
            return sfi_seterr(ctx_of(p), SFI_E_TIMEOUT, "gdb: %s did not answer in time",
                              d->where);
        uint64_t left = end - now;
        struct pollfd pfd = {.fd = d->fd, .events = POLLIN};
        int r = poll(&pfd, 1, left > 100 ? 100 : (int)left);
        if (r < 0 && errno != EINTR) {
            drop(d);
            return sfi_seterr(ctx_of(p), SFI_E_IO, "gdb: poll: %s", strerror(errno));
        }
        if (r <= 0)
            continue;
        ssize_t k = read(d->fd, d->rbuf, sizeof d->rbuf);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k <= 0) {
            int e = errno;
            drop(d);
            return sfi_seterr(ctx_of(p), SFI_E_NO_DEVICE, "gdb: %s closed the connection%s%s",
                              d->where, k < 0 ? ": " : "", k < 0 ? strerror(e) : "");
        }
        d->rpos = 0;
        d->rlen = (size_t)k;
    }
    *c = d->rbuf[d->rpos++];
    return SFI_OK;
}

/* ---- packets ------------------------------------------------------------------------------- */

/* Sends one packet; in ack mode waits for its "+" (resends on "-", three times). */
static int send_packet(struct sfi_probe *p, const void *payload, size_t n)
{
    struct gdbdrv *d = drv_of(p);
    if (d->fd < 0)
        return sfi_seterr(ctx_of(p), SFI_E_NO_DEVICE, "gdb: not connected to %s", d->where);
    size_t k = sfi_rsp_frame(payload, n, d->out, sizeof d->out);
    if (k == 0)
        return sfi_seterr(ctx_of(p), SFI_E_INVALID, "gdb: packet of %zu bytes too long", n);
    for (int tries = 0;; tries++) {
        int rc = send_all(p, d->out, k);
        if (rc != SFI_OK || d->noack)
            return rc;
        uint64_t end = sfi_now_ms() + d->cfg.timeout_ms;
        uint8_t c;
        size_t noise = 0;
        for (;;) {
            rc = get_byte(p, end, &c);
            if (rc != SFI_OK)
                return rc;
            if (c == '+' || c == '-')
                break;
            if (++noise > MAX_NOISE) {
                drop(d);
                return sfi_seterr(ctx_of(p), SFI_E_PROTOCOL,
                                  "gdb: %s sends data but never acknowledges", d->where);
            }
        }
        if (c == '+')
            return SFI_OK;
        if (tries >= 3) {
            drop(d);
            return sfi_seterr(ctx_of(p), SFI_E_PROTOCOL,
                              "gdb: %s refused a packet four times (bad checksum)", d->where);
        }
    }
}

/* Waits for the next packet (payload in d->dec.buf/len). */
static int recv_packet(struct sfi_probe *p, unsigned timeout_ms)
{
    struct gdbdrv *d = drv_of(p);
    uint64_t end = sfi_now_ms() + timeout_ms;
    size_t noise = 0;
    unsigned bad = 0;
    if (d->fd < 0)
        return sfi_seterr(ctx_of(p), SFI_E_NO_DEVICE, "gdb: not connected to %s", d->where);
    for (;;) {
        uint8_t c;
        int rc = get_byte(p, end, &c);
        if (rc != SFI_OK)
            return rc;
        enum sfi_rsp_event ev = sfi_rsp_feed(&d->dec, c);
        switch (ev) {
        case SFI_RSP_PACKET:
            if (!d->noack)
                rc = send_all(p, (const uint8_t *)"+", 1);
            return rc;
        case SFI_RSP_BAD_CHECKSUM:
        case SFI_RSP_BAD_RLE:
            if (d->noack || ++bad > 3) {
                drop(d);
                return sfi_seterr(ctx_of(p), SFI_E_PROTOCOL, "gdb: %s sent a corrupt packet "
                                  "(%s)", d->where, ev == SFI_RSP_BAD_RLE ? "run-length"
                                                                           : "checksum");
            }
            rc = send_all(p, (const uint8_t *)"-", 1);
            if (rc != SFI_OK)
                return rc;
            break;
        case SFI_RSP_TOO_LONG:
            drop(d);
            return sfi_seterr(ctx_of(p), SFI_E_PROTOCOL,
                              "gdb: %s sent a packet longer than %u bytes", d->where,
                              SFI_RSP_MAX_PAYLOAD);
        case SFI_RSP_NONE:
            if (d->dec.state == 0 && ++noise > MAX_NOISE) {
                drop(d);
                return sfi_seterr(ctx_of(p), SFI_E_PROTOCOL,
                                  "gdb: %s sends bytes that are not packets", d->where);
            }
            break;
        default:
            break; /* stray acks */
        }
    }
}

static int is_reply(struct gdbdrv *d, const char *s)
{
    size_t n = strlen(s);
    return d->dec.len == n && memcmp(d->dec.buf, s, n) == 0;
}

static int error_reply(struct sfi_probe *p, const char *what)
{
    struct gdbdrv *d = drv_of(p);
    unsigned code = 0;
    if (!sfi_rsp_is_error(d->dec.buf, d->dec.len, &code))
        return SFI_OK;
    if (d->dec.len > 2 && d->dec.buf[1] == '.')
        return sfi_seterr(ctx_of(p), SFI_E_TARGET, "gdb: %s: %s answered: %.*s", what,
                          d->where, (int)(d->dec.len > 200 ? 200 : d->dec.len - 2),
                          (const char *)d->dec.buf + 2);
    return sfi_seterr(ctx_of(p), SFI_E_TARGET, "gdb: %s: %s answered E%02X", what, d->where,
                      code);
}

/* One request, one reply. */
static int transact(struct sfi_probe *p, const char *req, size_t n)
{
    int rc = send_packet(p, req, n);
    return rc ? rc : recv_packet(p, drv_of(p)->cfg.timeout_ms);
}

static int output_has(struct gdbdrv *d, const char *const *list)
{
    for (size_t i = 0; i < SFI_GDB_MAX_LOST && list[i]; i++)
        if (d->output_len && strstr(d->output, list[i]))
            return 1;
    return 0;
}

static void keep_output(struct gdbdrv *d, const char *s, size_t n)
{
    if (n >= MAX_OUTPUT)
        n = MAX_OUTPUT - 1, s += 0; /* keep the first part of a huge output */
    if (d->output_len + n >= MAX_OUTPUT) {
        size_t keep = MAX_OUTPUT - 1 - n;
        memmove(d->output, d->output + d->output_len - keep, keep);
        d->output_len = keep;
    }
    memcpy(d->output + d->output_len, s, n);
    d->output_len += n;
    d->output[d->output_len] = 0;
}

/* monitor CMD: qRcmd with its "O" output collected; the final reply OK, empty (unknown) or
 * Enn. Output naming a lost target (dialect) is SFI_E_NO_DEVICE. */
static int monitor(struct sfi_probe *p, const char *cmd)
{
    struct gdbdrv *d = drv_of(p);
    size_t n = strlen(cmd);
    char req[6 + 2 * 256];
    if (n > 256)
        return sfi_seterr(ctx_of(p), SFI_E_INVALID, "gdb: monitor command too long");
    /* NOLINTNEXTLINE(bugprone-not-null-terminated-result): a sized packet, no NUL */
    memcpy(req, "qRcmd,", 6);
    sfi_hex_encode(cmd, n, req + 6);
    d->output_len = 0;
    d->output[0] = 0;
    int rc = send_packet(p, req, 6 + 2 * n);
    if (rc != SFI_OK)
        return rc;
    sfi_log(ctx_of(p), SFI_LOG_DEBUG, "gdb: monitor %s", cmd);
    uint64_t end = sfi_now_ms() + d->cfg.monitor_timeout_ms;
    for (;;) {
        uint64_t now = sfi_now_ms();
        if (now >= end)
            return sfi_seterr(ctx_of(p), SFI_E_TIMEOUT, "gdb: monitor %s: no answer from %s",
                              cmd, d->where);
        rc = recv_packet(p, (unsigned)(end - now));
        if (rc != SFI_OK)
            return rc;
        const uint8_t *b = d->dec.buf;
        size_t len = d->dec.len;
        if (len >= 3 && b[0] == 'O' && len % 2 == 1 && !(len == 2 && b[1] == 'K')) {
            char text[512];
            size_t k = (len - 1) / 2;
            if (k > sizeof text)
                k = sizeof text;
            if (sfi_hex_decode((const char *)b + 1, k, text) == 0)
                keep_output(d, text, k);
            continue;
        }
        break;
    }
    /* servers that return the output as the (hex) final reply instead of "O" packets */
    unsigned code;
    if (d->dec.len >= 2 && d->dec.len % 2 == 0 && !is_reply(d, "OK") &&
        !sfi_rsp_is_error(d->dec.buf, d->dec.len, &code)) {
        char text[512];
        size_t k = d->dec.len / 2 < sizeof text ? d->dec.len / 2 : sizeof text;
        if (sfi_hex_decode((const char *)d->dec.buf, k, text) == 0) {
            keep_output(d, text, k);
            d->dec.len = 2;
            memcpy(d->dec.buf, "OK", 2);
        }
    }
    if (d->output_len)
        sfi_log(ctx_of(p), SFI_LOG_DEBUG, "gdb: monitor output: %s", d->output);
    if (output_has(d, d->cfg.lost))
        return sfi_seterr(ctx_of(p), SFI_E_NO_DEVICE, "gdb: monitor %s: the target is gone (%s "
                          "said: %.200s)", cmd, d->where, d->output);
    if (d->dec.len == 0)
        return sfi_seterr(ctx_of(p), SFI_E_UNSUPPORTED, "gdb: %s does not know 'monitor %s' "
                          "(dialect %s)", d->where, cmd, d->cfg.dialect);
    if (output_has(d, d->cfg.failed))
        return sfi_seterr(ctx_of(p), SFI_E_TARGET, "gdb: monitor %s failed: %.200s", cmd,
                          d->output);
    if (is_reply(d, "OK"))
        return SFI_OK;
    if (sfi_rsp_is_error(d->dec.buf, d->dec.len, &code))
        return sfi_seterr(ctx_of(p), SFI_E_TARGET, "gdb: monitor %s failed (E%02X)%s%.200s", cmd,
                          code, d->output_len ? ": " : "", d->output);
    return sfi_seterr(ctx_of(p), SFI_E_PROTOCOL, "gdb: monitor %s: %s answered '%.16s'", cmd,
                      d->where, (const char *)d->dec.buf);
}

static int attach(struct sfi_probe *p);

static int handshake(struct sfi_probe *p)
{
    struct gdbdrv *d = drv_of(p);
    static const char QS[] = "qSupported:xmlRegisters=arm;swbreak+;hwbreak+";
    int rc = send_all(p, (const uint8_t *)"+", 1); /* acknowledges anything pending */
    if (rc == SFI_OK)
        rc = transact(p, QS, sizeof QS - 1);
    if (rc != SFI_OK)
        return rc;
    unsigned code;
    if (sfi_rsp_is_error(d->dec.buf, d->dec.len, &code))
        return sfi_seterr(ctx_of(p), SFI_E_PROTOCOL, "gdb: %s refused qSupported (E%02X): not a "
                          "GDB server, or no target", d->where, code);
    struct sfi_rsp_features f;
    sfi_rsp_supported(d->dec.buf, d->dec.len, &f);
    uint64_t size = f.has_packet_size ? f.packet_size : DEFAULT_PACKET;
    if (size < MIN_PACKET)
        return sfi_seterr(ctx_of(p), SFI_E_PROTOCOL, "gdb: %s claims a PacketSize of %llu bytes; "
                          "at least %u are needed", d->where, (unsigned long long)size,
                          MIN_PACKET);
    if (size > SFI_RSP_MAX_PAYLOAD) {
        sfi_log(ctx_of(p), SFI_LOG_DEBUG, "gdb: PacketSize %llu bounded to %u",
                (unsigned long long)size, SFI_RSP_MAX_PAYLOAD);
        size = SFI_RSP_MAX_PAYLOAD;
    }
    d->pkt = (size_t)size;
    if (f.noack) {
        rc = transact(p, "QStartNoAckMode", 15);
        if (rc != SFI_OK)
            return rc;
        if (is_reply(d, "OK"))
            d->noack = 1;
    }
    if (!d->cfg.reattach) {
        rc = attach(p);
        if (rc != SFI_OK)
            return rc;
    }
    rc = transact(p, "?", 1); /* the stop reason: every server answers; the content is ignored */
    if (rc != SFI_OK)
        return rc;
    sfi_log(ctx_of(p), SFI_LOG_DEBUG, "gdb: %s: PacketSize %zu, %s, dialect %s", d->where,
            d->pkt, d->noack ? "no-ack mode" : "acknowledged", d->cfg.dialect);
    return SFI_OK;
}

/* The dialect's attach sequence: "monitor CMD" or raw packets. */
static int attach(struct sfi_probe *p)
{
    struct gdbdrv *d = drv_of(p);
    int rc = SFI_OK;
    for (size_t i = 0; i < SFI_GDB_MAX_ATTACH && d->cfg.attach[i]; i++) {
        const char *a = d->cfg.attach[i];
        if (strncmp(a, "monitor ", 8) == 0) {
            rc = monitor(p, a + 8);
        } else {
            rc = transact(p, a, strlen(a));
            if (rc == SFI_OK)
                rc = error_reply(p, a);
            if (rc == SFI_OK && d->dec.len == 0)
                rc = sfi_seterr(ctx_of(p), SFI_E_UNSUPPORTED, "gdb: %s does not know '%s' "
                                "(dialect %s)", d->where, a, d->cfg.dialect);
        }
        if (rc != SFI_OK)
            return rc;
    }
    return SFI_OK;
}

static int ensure_open(struct sfi_probe *p)
{
    struct gdbdrv *d = drv_of(p);
    if (d->fd >= 0)
        return SFI_OK;
    sfi_rsp_dec_init(&d->dec, d->in, sizeof d->in);
    d->no_x = d->cfg.no_x;
    int rc = d->cfg.tty ? open_tty(p) : open_tcp(p);
    if (rc == SFI_OK)
        rc = handshake(p);
    if (rc != SFI_OK)
        drop(d);
    return rc;
}

/* ---- memory ---------------------------------------------------------------------------------- */

static size_t chunk_of(struct gdbdrv *d)
{
    size_t c = (d->pkt - 32) / 2;
    return c < 16 ? 16 : c;
}

static int raw_read(struct sfi_probe *p, uint32_t addr, uint8_t *buf, size_t n)
{
    struct gdbdrv *d = drv_of(p);
    while (n > 0) {
        size_t want = n < chunk_of(d) ? n : chunk_of(d);
        char req[40];
        int k = snprintf(req, sizeof req, "m%x,%zx", (unsigned)addr, want);
        int rc = transact(p, req, (size_t)k);
        if (rc == SFI_OK)
            rc = error_reply(p, req);
        if (rc != SFI_OK)
            return rc;
        size_t got = d->dec.len / 2;
        if (d->dec.len % 2 != 0 || got == 0 || got > want ||
            sfi_hex_decode((const char *)d->dec.buf, got, buf) != 0)
            return sfi_seterr(ctx_of(p), SFI_E_PROTOCOL, "gdb: %s: %s sent a bad reply "
                              "(%zu bytes: %.16s)", req, d->where, d->dec.len,
                              (const char *)d->dec.buf);
        addr += (uint32_t)got;
        buf += got;
        n -= got;
    }
    return SFI_OK;
}

static int raw_write(struct sfi_probe *p, uint32_t addr, const uint8_t *buf, size_t n)
{
    struct gdbdrv *d = drv_of(p);
    char *req = d->req;
    while (n > 0) {
        size_t part = n < chunk_of(d) ? n : chunk_of(d);
        int h;
        size_t len;
        if (!d->no_x) {
            /* as many bytes as fit the server's packet once escaped */
            size_t room = d->pkt - 40, used = 0;
            part = 0;
            while (part < n && used + 2 <= room) {
                uint8_t c = buf[part];
                used += (c == '#' || c == '$' || c == '}' || c == '*') ? 2 : 1;
                part++;
            }
            h = snprintf(req, 40, "X%x,%zx:", (unsigned)addr, part);
            memcpy(req + h, buf, part);
            len = (size_t)h + part;
        } else {
            h = snprintf(req, 40, "M%x,%zx:", (unsigned)addr, part);
            sfi_hex_encode(buf, part, req + h);
            len = (size_t)h + 2 * part;
        }
        int rc = transact(p, req, len);
        if (rc != SFI_OK)
            return rc;
        if (d->dec.len == 0 && !d->no_x) {
            sfi_log(ctx_of(p), SFI_LOG_DEBUG, "gdb: %s refuses X: using M", d->where);
            d->no_x = 1;
            continue;
        }
        char what[48];
        snprintf(what, sizeof what, "%c%x,%zx", d->no_x ? 'M' : 'X', (unsigned)addr, part);
        rc = error_reply(p, what);
        if (rc != SFI_OK)
            return rc;
        if (!is_reply(d, "OK"))
            return sfi_seterr(ctx_of(p), SFI_E_PROTOCOL, "gdb: %s: %s answered '%.16s'", what,
                              d->where, (const char *)d->dec.buf);
        addr += (uint32_t)part;
        buf += part;
        n -= part;
    }
    return SFI_OK;
}

static int rd32(struct sfi_probe *p, uint32_t addr, uint32_t *v)
{
    uint8_t b[4];
    int rc = raw_read(p, addr, b, 4);
    if (rc == SFI_OK)
        *v = sfi_get_le32(b);
    return rc;
}

static int wr32(struct sfi_probe *p, uint32_t addr, uint32_t v)
{
    uint8_t b[4];
    sfi_put_le32(b, v);
    return raw_write(p, addr, b, 4);
}

static int range_ok(struct sfi_probe *p, uint64_t addr, size_t n)
{
    if (addr > 0xFFFFFFFFu || n > 0x100000000u - addr)
        return sfi_seterr(ctx_of(p), SFI_E_TARGET, "gdb: 0x%llx+%zu is beyond 32 bits",
                          (unsigned long long)addr, n);
    return SFI_OK;
}

static int g_read_mem(struct sfi_probe *p, uint64_t addr, void *buf, size_t n)
{
    int rc = range_ok(p, addr, n);
    if (rc == SFI_OK)
        rc = raw_read(p, (uint32_t)addr, buf, n);
    if (rc == SFI_E_TARGET && drv_of(p)->fd >= 0)
        rc = sfi_probe_refine_fault(p, rc, addr, n, "read", rd32);
    return rc;
}

static int g_write_mem(struct sfi_probe *p, uint64_t addr, const void *buf, size_t n)
{
    int rc = range_ok(p, addr, n);
    if (rc == SFI_OK)
        rc = raw_write(p, (uint32_t)addr, buf, n);
    if (rc == SFI_E_TARGET && drv_of(p)->fd >= 0)
        rc = sfi_probe_refine_fault(p, rc, addr, n, "write", rd32);
    return rc;
}

/* ---- open / connect / reset ------------------------------------------------------------------ */

static const char *keep(struct gdbdrv *d, const char *s)
{
    if (s == NULL || d->nstrings >= sizeof d->strings / sizeof d->strings[0])
        return NULL;
    char *c = strdup(s);
    if (c != NULL)
        d->strings[d->nstrings++] = c;
    return c;
}

static void g_close(struct sfi_probe *p)
{
    struct gdbdrv *d = drv_of(p);
    if (d->fd >= 0 && send_packet(p, "D", 1) == SFI_OK)
        recv_packet(p, 500); /* detach; the reply does not matter */
    drop(d);
    for (size_t i = 0; i < d->nstrings; i++)
        free(d->strings[i]);
    d->nstrings = 0;
}

static int g_open(struct sfi_probe *p, const struct sfi_probe_cfg *cfg)
{
    struct gdbdrv *d = drv_of(p);
    const struct sfi_gdb_cfg *g = cfg->gdb;
    d->fd = -1;
    if (g == NULL || (g->tty == NULL && (g->host == NULL || g->port == 0 || g->port > 65535)))
        return sfi_seterr(ctx_of(p), SFI_E_INVALID, "gdb: needs HOST:PORT or a serial device");
    d->cfg = *g;
    d->cfg.host = keep(d, g->host);
    d->cfg.tty = keep(d, g->tty);
    d->cfg.dialect = keep(d, g->dialect ? g->dialect : "generic");
    d->cfg.speed = keep(d, g->speed);
    for (size_t i = 0; i < SFI_GDB_MAX_ATTACH; i++)
        d->cfg.attach[i] = keep(d, g->attach[i]);
    for (size_t i = 0; i < 3; i++) {
        d->cfg.connect[i] = keep(d, g->connect[i]);
        d->cfg.reset[i] = keep(d, g->reset[i]);
    }
    for (size_t i = 0; i < SFI_GDB_MAX_LOST; i++) {
        d->cfg.lost[i] = keep(d, g->lost[i]);
        d->cfg.failed[i] = keep(d, g->failed[i]);
    }
    if (d->cfg.timeout_ms == 0)
        d->cfg.timeout_ms = 5000;
    if (d->cfg.monitor_timeout_ms == 0)
        d->cfg.monitor_timeout_ms = 30000;
    if (d->cfg.tty)
        snprintf(d->where, sizeof d->where, "%.60s", d->cfg.tty);
    else if (strchr(d->cfg.host, ':'))
        snprintf(d->where, sizeof d->where, "[%.50s]:%u", d->cfg.host, d->cfg.port);
    else
        snprintf(d->where, sizeof d->where, "%.50s:%u", d->cfg.host, d->cfg.port);
    return SFI_OK;
}

static int g_connect(struct sfi_probe *p, enum sfi_connect mode, unsigned khz)
{
    struct gdbdrv *d = drv_of(p);
    int rc = ensure_open(p);
    if (rc != SFI_OK)
        return rc;
    if (d->cfg.speed && khz) {
        char cmd[96];
        const char *at = strstr(d->cfg.speed, "%u");
        if (at == NULL)
            snprintf(cmd, sizeof cmd, "%s %u", d->cfg.speed, khz);
        else
            snprintf(cmd, sizeof cmd, "%.*s%u%s", (int)(at - d->cfg.speed), d->cfg.speed, khz,
                     at + 2);
        if (monitor(p, cmd) != SFI_OK)
            sfi_log(ctx_of(p), SFI_LOG_DEBUG, "gdb: speed not set: %s", sfi_errdetail(ctx_of(p)));
        if (d->fd < 0)
            return sfi_seterr(ctx_of(p), SFI_E_NO_DEVICE, "gdb: %s dropped the connection",
                              d->where);
    }
    const char *cmd = d->cfg.connect[mode];
    if (cmd == NULL && mode == SFI_CONNECT_UNDER_RESET)
        return sfi_seterr(ctx_of(p), SFI_E_UNSUPPORTED, "gdb: dialect %s has no connect under "
                          "reset (choose ?dialect= for your server)", d->cfg.dialect);
    if (cmd != NULL)
        rc = monitor(p, cmd);
    if (rc == SFI_OK && d->cfg.reattach)
        rc = attach(p);
    if (rc == SFI_OK && cmd == NULL && mode == SFI_CONNECT_NORMAL)
        rc = wr32(p, SFI_ARMV7M_DHCSR, SFI_ARMV7M_DHCSR_HALT); /* halt */
    uint32_t id = 0;
    if (rc == SFI_OK || rc == SFI_E_TARGET)
        rc = rd32(p, SFI_ARMV7M_CPUID, &id);
    if (rc == SFI_E_TARGET || (rc == SFI_OK && (id == 0 || id == 0xFFFFFFFFu)))
        rc = sfi_seterr(ctx_of(p), SFI_E_NO_DEVICE, "gdb: %s answers but the target does not "
                        "(%s); check wiring and target power", d->where,
                        rc ? sfi_errdetail(ctx_of(p)) : "CPUID reads 0");
    if (rc == SFI_OK)
        sfi_log(ctx_of(p), SFI_LOG_DEBUG, "gdb: connected (%s), CPUID 0x%08X",
                sfi_connect_name(mode), (unsigned)id);
    return rc;
}

static int g_reset(struct sfi_probe *p, enum sfi_reset kind)
{
    struct gdbdrv *d = drv_of(p);
    const char *cmd = d->cfg.reset[kind];
    if (cmd != NULL)
        return monitor(p, cmd);
    switch (kind) {
    case SFI_RESET_SW:
        return wr32(p, SFI_ARMV7M_AIRCR, SFI_ARMV7M_AIRCR_SYSRESET);
    case SFI_RESET_CORE:
        return wr32(p, SFI_ARMV7M_AIRCR, SFI_ARMV7M_AIRCR_CORERESET);
    default:
        return sfi_seterr(ctx_of(p), SFI_E_UNSUPPORTED, "gdb: dialect %s has no hardware reset "
                          "(choose ?dialect= for your server)", d->cfg.dialect);
    }
}

static void g_describe(struct sfi_probe *p, struct sfi_probe_info *info)
{
    struct gdbdrv *d = drv_of(p);
    snprintf(info->serial, sizeof info->serial, "%s", d->where);
    snprintf(info->desc, sizeof info->desc, "GDB server at %s (dialect %s)", d->where,
             d->cfg.dialect);
}

const struct sfi_probe_driver sfi_drv_gdb = {
    .name = "gdb",
    .caps = SFI_PROBE_CAP_SWD | SFI_PROBE_CAP_JTAG,
    .priv_size = sizeof(struct gdbdrv),
    .open = g_open,
    .close = g_close,
    .connect = g_connect,
    .reset = g_reset,
    .read_mem = g_read_mem,
    .write_mem = g_write_mem,
    .describe = g_describe,
};
