/* tcp.c: the stlink-server TCP client transport. Fixed-size little-endian requests and
 * replies (GET_SERVER_VERSION, REFRESH_DEVICE_LIST, GET_NB_DEV, GET_DEV_INFO, OPEN_DEV,
 * CLOSE_DEV, SEND_USB_CMD) over one socket; every wait is bounded by poll(). A server that
 * closes is NO_DEVICE, a reply cut short is PROTOCOL, silence is TIMEOUT. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "sfi/bytes.h"
#include "sfi/stlink.h"
#include "sfi/stlink_proto.h"
#include "sfi/trace.h"


struct tcp {
    struct sfi_stlink_transport base;
    int fd;
    uint32_t connect_id;
    int opened;
    unsigned timeout_ms;
    char where[64];
    uint8_t out[2 * 32 + SFI_STLINK_BUF_SIZE + 16]; /* requests are sent with one send() */
};

static int send_all(struct tcp *c, const uint8_t *p, size_t n, const char *op)
{
    while (n > 0) {
        ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
            int r = poll(&pfd, 1, (int)c->timeout_ms);
            if (r == 0)
                return sfi_seterr(c->base.ctx, SFI_E_TIMEOUT, "%s: stlink-server at %s did "
                                  "not accept data", op, c->where);
            continue;
        }
        if (k < 0)
            return sfi_seterr(c->base.ctx, SFI_E_NO_DEVICE, "%s: stlink-server at %s: send: %s",
                              op, c->where, strerror(errno));
        sfi_trace_writer_tcp_data(c->base.record, 1, p, (size_t)k);
        p += k;
        n -= (size_t)k;
    }
    return SFI_OK;
}

/* Receives exactly n bytes within timeout_ms. */
static int recv_all(struct tcp *c, uint8_t *p, size_t n, unsigned timeout_ms, const char *op)
{
    size_t got = 0;
    uint64_t end = sfi_now_ms() + timeout_ms;
    while (got < n) {
        uint64_t now = sfi_now_ms();
        if (sfi_canceled(c->base.ctx))
            return sfi_seterr(c->base.ctx, SFI_E_CANCELED, "%s: canceled", op);
        if (now >= end) {
            if (got == 0)
                return sfi_seterr(c->base.ctx, SFI_E_TIMEOUT, "%s: no reply from stlink-server "
                                  "at %s within %u ms", op, c->where, timeout_ms);
            return sfi_seterr(c->base.ctx, SFI_E_PROTOCOL, "%s: short reply from stlink-server "
                              "at %s: %zu of %zu bytes", op, c->where, got, n);
        }
        unsigned left = (unsigned)(end - now);
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        int r = poll(&pfd, 1, left < 100 ? (int)left : 100);
        if (r < 0 && errno != EINTR)
            return sfi_seterr(c->base.ctx, SFI_E_IO, "%s: poll: %s", op, strerror(errno));
        if (r <= 0)
            continue;
        ssize_t k = recv(c->fd, p + got, n - got, 0);
        if (k < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (k <= 0)
            return sfi_seterr(c->base.ctx, SFI_E_NO_DEVICE, "%s: stlink-server at %s closed the "
                              "connection after %zu of %zu bytes%s%s", op, c->where, got, n,
                              k < 0 ? ": " : "", k < 0 ? strerror(errno) : "");
        sfi_trace_writer_tcp_data(c->base.record, 0, p + got, (size_t)k);
        got += (size_t)k;
    }
    return SFI_OK;
}

static int request(struct tcp *c, const uint8_t *req, size_t rn, uint8_t *rep, size_t pn,
                   const char *op)
{
    int rc = send_all(c, req, rn, op);
    if (rc == SFI_OK)
        rc = recv_all(c, rep, pn, c->timeout_ms, op);
    return rc;
}

/* Appends one SEND_USB_CMD request (header, and OUT data) at out; returns its length. */
static size_t put_cmd(struct tcp *c, uint8_t *out, const uint8_t cdb[16], enum sfi_stlink_dir dir,
                      const uint8_t *data, size_t len)
{
    memset(out, 0, 32);
    out[0] = SFI_STLINK_SRV_SEND_USB_CMD;
    sfi_put_le32(out + 4, c->connect_id);
    memcpy(out + 8, cdb, 16);
    out[24] = dir == SFI_STLINK_OUT ? 0 : 1;
    sfi_put_le32(out + 28, (uint32_t)len);
    if (dir == SFI_STLINK_OUT && len > 0) {
        memcpy(out + 32, data, len);
        return 32 + len;
    }
    return 32;
}

/* Reads one SEND_USB_CMD reply: status word, then len bytes for IN commands. */
static int get_reply(struct tcp *c, enum sfi_stlink_dir dir, uint8_t *data, size_t len,
                     unsigned timeout_ms, const char *op)
{
    uint8_t st[4];
    int rc = recv_all(c, st, 4, timeout_ms, op);
    if (rc == SFI_OK && dir == SFI_STLINK_IN && len > 0)
        rc = recv_all(c, data, len, timeout_ms, op);
    if (rc == SFI_OK)
        rc = sfi_stlink_server_status_err(c->base.ctx, sfi_get_le32(st), op);
    return rc;
}

static int tcp_xfer(struct sfi_stlink_transport *t, const uint8_t cdb[16],
                    enum sfi_stlink_dir dir, uint8_t *data, size_t len, unsigned timeout_ms)
{
    struct tcp *c = (struct tcp *)t;
    char op[32];
    char name[32];
    snprintf(op, sizeof op, "ST-LINK %s", sfi_stlink_cmd_label(cdb, name, sizeof name));
    if (len > SFI_STLINK_BUF_SIZE + 16)
        return sfi_seterr(t->ctx, SFI_E_INVALID, "%s: %zu data bytes", op, len);
    size_t n = put_cmd(c, c->out, cdb, dir, data, len);
    int rc = send_all(c, c->out, n, op);
    return rc ? rc : get_reply(c, dir, data, len, timeout_ms, op);
}

static int tcp_xfer_pair(struct sfi_stlink_transport *t, const uint8_t cdb[16],
                         enum sfi_stlink_dir dir, uint8_t *data, size_t len,
                         const uint8_t cdb2[16], uint8_t *rep2, size_t len2, unsigned timeout_ms)
{
    struct tcp *c = (struct tcp *)t;
    char op[32];
    char name[32];
    snprintf(op, sizeof op, "ST-LINK %s", sfi_stlink_cmd_label(cdb, name, sizeof name));
    if (len > SFI_STLINK_BUF_SIZE + 16 || len2 > 64)
        return sfi_seterr(t->ctx, SFI_E_INVALID, "%s: %zu data bytes", op, len);
    size_t n = put_cmd(c, c->out, cdb, dir, data, len);
    n += put_cmd(c, c->out + n, cdb2, SFI_STLINK_IN, NULL, len2);
    int rc = send_all(c, c->out, n, op);
    if (rc != SFI_OK)
        return rc;
    rc = get_reply(c, dir, data, len, timeout_ms, op);
    if (rc != SFI_OK && rc != SFI_E_PROTOCOL && rc != SFI_E_BUSY)
        return rc; /* the stream itself failed */
    int rc2 = get_reply(c, SFI_STLINK_IN, rep2, len2, timeout_ms, op);
    return rc ? rc : rc2;
}

static void tcp_close(struct sfi_stlink_transport *t)
{
    struct tcp *c = (struct tcp *)t;
    if (c->fd >= 0 && c->opened) {
        uint8_t req[8] = {SFI_STLINK_SRV_CLOSE_DEV}, rep[4];
        sfi_put_le32(req + 4, c->connect_id);
        unsigned keep = c->timeout_ms;
        c->timeout_ms = keep < 300 ? keep : 300; /* closing must not hang */
        if (request(c, req, sizeof req, rep, sizeof rep, "CLOSE_DEV") != SFI_OK)
            sfi_log(t->ctx, SFI_LOG_DEBUG, "stlink-server: %s", sfi_errdetail(t->ctx));
    }
    if (c->fd >= 0)
        close(c->fd);
    free(c);
}

static const struct sfi_stlink_transport_ops tcp_ops = {
    .name = "tcp",
    .xfer = tcp_xfer,
    .close = tcp_close,
    .xfer_pair = tcp_xfer_pair,
};

int sfi_stlink_tcp_addr(struct sfi_ctx *ctx, const struct sfi_stlink_tcp_cfg *cfg,
                        const char **host, unsigned *port)
{
    *host = cfg != NULL && cfg->host != NULL ? cfg->host : SFI_STLINK_TCP_HOST;
    *port = cfg != NULL && cfg->port != 0 ? cfg->port : SFI_STLINK_TCP_PORT;
    struct in_addr a;
    if (*port > 65535 || inet_pton(AF_INET, *host, &a) != 1)
        return sfi_seterr(ctx, SFI_E_INVALID, "stlink-server address %s:%u (IPv4 address and "
                          "port 1..65535 expected)", *host, *port);
    return SFI_OK;
}

static int tcp_connect(struct sfi_ctx *ctx, const struct sfi_stlink_tcp_cfg *cfg,
                       struct tcp **out)
{
    const char *host;
    unsigned port;
    int rc = sfi_stlink_tcp_addr(ctx, cfg, &host, &port);
    if (rc != SFI_OK)
        return rc;
    unsigned tmo = cfg != NULL && cfg->timeout_ms != 0 ? cfg->timeout_ms : 1000;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    (void)inet_pton(AF_INET, host, &sa.sin_addr); /* checked by sfi_stlink_tcp_addr */
    struct tcp *c = calloc(1, sizeof *c);
    if (c == NULL)
        return sfi_seterr(ctx, SFI_E_NOMEM, "stlink-server client");
    c->base.ops = &tcp_ops;
    c->base.ctx = ctx;
    c->timeout_ms = tmo;
    snprintf(c->where, sizeof c->where, "%s:%u", host, port);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        int e = errno;
        free(c);
        return sfi_seterr(ctx, SFI_E_IO, "socket: %s", strerror(e));
    }
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (errno != EINPROGRESS) {
            rc = sfi_seterr(ctx, SFI_E_NO_DEVICE, "no stlink-server at %s: %s", c->where,
                            strerror(errno));
        } else {
            struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
            int r = poll(&pfd, 1, (int)tmo);
            int err = 0;
            socklen_t el = sizeof err;
            if (r == 0)
                rc = sfi_seterr(ctx, SFI_E_TIMEOUT, "connecting to stlink-server at %s: no "
                                "answer within %u ms", c->where, tmo);
            else if (r < 0 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err)
                rc = sfi_seterr(ctx, SFI_E_NO_DEVICE, "no stlink-server at %s: %s", c->where,
                                strerror(err ? err : errno));
        }
    }
    if (rc != SFI_OK) {
        close(c->fd);
        free(c);
        return rc;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (cfg != NULL && cfg->record != NULL) {
        struct sockaddr_in me, peer;
        socklen_t ml = sizeof me, pl = sizeof peer;
        if (getsockname(c->fd, (struct sockaddr *)&me, &ml) == 0 &&
            getpeername(c->fd, (struct sockaddr *)&peer, &pl) == 0) {
            c->base.record = cfg->record;
            sfi_trace_writer_tcp_connect(cfg->record, ntohl(me.sin_addr.s_addr),
                                         ntohs(me.sin_port), ntohl(peer.sin_addr.s_addr),
                                         ntohs(peer.sin_port));
        }
    }
    *out = c;
    return SFI_OK;
}

/* GET_SERVER_VERSION, REFRESH_DEVICE_LIST, GET_NB_DEV. */
static int tcp_hello(struct tcp *c, unsigned *ndev)
{
    uint8_t req[8], rep[16];
    memset(req, 0, sizeof req);
    req[0] = SFI_STLINK_SRV_GET_SERVER_VERSION;
    req[1] = 1; /* client API version */
    int rc = request(c, req, 4, rep, 16, "GET_SERVER_VERSION");
    if (rc != SFI_OK)
        return rc;
    c->base.server_api = sfi_get_le32(rep);
    sfi_log(c->base.ctx, SFI_LOG_DEBUG, "stlink-server API v%u, version %u.%u.%u",
            (unsigned)sfi_get_le32(rep), (unsigned)sfi_get_le32(rep + 4),
            (unsigned)sfi_get_le32(rep + 8), (unsigned)sfi_get_le32(rep + 12));
    memset(req, 0, sizeof req);
    req[0] = SFI_STLINK_SRV_REFRESH_DEVICE_LIST;
    rc = request(c, req, 2, rep, 4, "REFRESH_DEVICE_LIST");
    if (rc == SFI_OK)
        rc = sfi_stlink_server_status_err(c->base.ctx, sfi_get_le32(rep), "REFRESH_DEVICE_LIST");
    if (rc != SFI_OK)
        return rc;
    req[0] = SFI_STLINK_SRV_GET_NB_DEV;
    rc = request(c, req, 1, rep, 4, "GET_NB_DEV");
    if (rc == SFI_OK) {
        *ndev = sfi_get_le32(rep);
        if (*ndev > 256)
            rc = sfi_seterr(c->base.ctx, SFI_E_PROTOCOL, "GET_NB_DEV: %u devices", *ndev);
    }
    return rc;
}

struct devinfo {
    uint32_t device_id;
    struct sfi_stlink_info info;
};

static int tcp_devinfo(struct tcp *c, unsigned idx, struct devinfo *d)
{
    uint8_t req[8], rep[45];
    memset(req, 0, sizeof req);
    req[0] = SFI_STLINK_SRV_GET_DEV_INFO;
    req[1] = (uint8_t)idx;
    sfi_put_le32(req + 4, SFI_STLINK_SRV_DEV_INFO_LEN);
    int rc = request(c, req, sizeof req, rep, sizeof rep, "GET_DEV_INFO");
    if (rc == SFI_OK)
        rc = sfi_stlink_server_status_err(c->base.ctx, sfi_get_le32(rep), "GET_DEV_INFO");
    if (rc != SFI_OK)
        return rc;
    memset(d, 0, sizeof *d);
    d->device_id = sfi_get_le32(rep + 4);
    memcpy(d->info.serial, rep + 8, 32); /* NUL-padded; info.serial has room for the NUL */
    d->info.vid = sfi_get_le16(rep + 40);
    d->info.pid = sfi_get_le16(rep + 42);
    d->info.in_use = rep[44] != 0;
    return SFI_OK;
}

static int tcp_opendev(struct tcp *c, const struct devinfo *d)
{
    uint8_t req[8] = {SFI_STLINK_SRV_OPEN_DEV}, rep[8];
    sfi_put_le32(req + 4, d->device_id);
    int rc = request(c, req, sizeof req, rep, sizeof rep, "OPEN_DEV");
    if (rc == SFI_OK)
        rc = sfi_stlink_server_status_err(c->base.ctx, sfi_get_le32(rep), "OPEN_DEV");
    if (rc != SFI_OK)
        return rc;
    c->connect_id = sfi_get_le32(rep + 4);
    c->opened = 1;
    memcpy(c->base.serial, d->info.serial, sizeof c->base.serial);
    c->base.vid = d->info.vid;
    c->base.pid = d->info.pid;
    return SFI_OK;
}

static int usable(const struct devinfo *d)
{
    return d->info.vid == SFI_STLINK_VID && sfi_stlink_usb_pid_known(d->info.pid);
}

int sfi_stlink_tcp_open(struct sfi_ctx *ctx, const struct sfi_stlink_tcp_cfg *cfg,
                        struct sfi_stlink_transport **out)
{
    struct tcp *c;
    int rc = tcp_connect(ctx, cfg, &c);
    if (rc != SFI_OK)
        return rc;
    const char *serial = cfg != NULL ? cfg->serial : NULL;
    unsigned n = 0;
    rc = tcp_hello(c, &n);
    int found = 0;
    for (unsigned i = 0; rc == SFI_OK && i < n && !found; i++) {
        struct devinfo d;
        rc = tcp_devinfo(c, i, &d);
        if (rc != SFI_OK || !usable(&d))
            continue;
        if (serial != NULL && strcmp(serial, d.info.serial) != 0)
            continue;
        found = 1;
        if (d.info.in_use)
            rc = sfi_seterr(ctx, SFI_E_BUSY, "ST-LINK %s at stlink-server %s is already used "
                            "by another client", d.info.serial, c->where);
        else
            rc = tcp_opendev(c, &d);
    }
    if (rc == SFI_OK && !found)
        rc = sfi_seterr(ctx, SFI_E_NOT_FOUND, "no ST-LINK%s%s at stlink-server %s (%u devices)",
                        serial ? " with serial " : "", serial ? serial : "", c->where, n);
    if (rc != SFI_OK) {
        tcp_close(&c->base);
        return rc;
    }
    *out = &c->base;
    return SFI_OK;
}

/* Opens one device just long enough to read its version. */
static void probe_version(struct tcp *c, struct devinfo *d)
{
    if (d->info.in_use || tcp_opendev(c, d) != SFI_OK)
        return;
    uint8_t cdb[16] = {SFI_STLINK_CMD_GET_VERSION}, rep[6], ex[12];
    struct sfi_stlink_version v;
    int rc = tcp_xfer(&c->base, cdb, SFI_STLINK_IN, rep, 6, c->timeout_ms);
    int need_ex = rc == SFI_OK && sfi_stlink_needs_version_ex(rep);
    if (need_ex) {
        cdb[0] = SFI_STLINK_CMD_APIV3_GET_VERSION_EX;
        rc = tcp_xfer(&c->base, cdb, SFI_STLINK_IN, ex, 12, c->timeout_ms);
    }
    if (rc == SFI_OK && sfi_stlink_decode_version(c->base.ctx, rep, need_ex ? ex : NULL, &v) ==
                            SFI_OK)
        sfi_stlink_version_str(&v, d->info.version, sizeof d->info.version);
    uint8_t req[8] = {SFI_STLINK_SRV_CLOSE_DEV}, st[4];
    sfi_put_le32(req + 4, c->connect_id);
    request(c, req, sizeof req, st, sizeof st, "CLOSE_DEV");
    c->opened = 0;
}

int sfi_stlink_tcp_list(struct sfi_ctx *ctx, const struct sfi_stlink_tcp_cfg *cfg,
                        sfi_stlink_found_fn found, void *ud)
{
    struct tcp *c;
    int rc = tcp_connect(ctx, cfg, &c);
    if (rc != SFI_OK)
        return rc;
    unsigned n = 0;
    rc = tcp_hello(c, &n);
    for (unsigned i = 0; rc == SFI_OK && i < n; i++) {
        struct devinfo d;
        rc = tcp_devinfo(c, i, &d);
        if (rc != SFI_OK || !usable(&d))
            continue;
        probe_version(c, &d);
        found(ud, &d.info);
    }
    tcp_close(&c->base);
    return rc;
}
