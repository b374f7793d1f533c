/* stlink_tcpserver.c: the stlink-server TCP protocol, server side, in front of one simulated
 * ST-LINK (stlink_server.c). Listens on 127.0.0.1, serves clients one after another, bounds every
 * read, survives clients that vanish mid-command, and stops on a flag or ctx cancellation.
 * Fault knobs (close mid-reply, short reply, silence, status word) exercise client code. */
#define _GNU_SOURCE /* accept4 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "sfi/bytes.h"
#include "sfi/stlink_proto.h"
#include "sfi/stlink_server.h"

#define CMD_TIMEOUT_MS 2000 /* budget for the rest of a request once its first byte arrived */
#define POLL_SLICE_MS 100
#define DEVICE_ID 1u

struct sfi_stlink_tcpserver {
    struct sfi_ctx *ctx;
    struct sfi_stlink_server *srv;
    struct sfi_stlink_tcpserver_cfg cfg;
    int lfd;
    unsigned port;
    atomic_int stop;
    atomic_ulong commands;
    uint32_t next_connect_id;
    unsigned long clients;
    uint8_t data[SFI_STLINK_BUF_SIZE + 16];
    uint8_t reply[SFI_STLINK_BUF_SIZE + 16];
};

struct client {
    int fd;
    int opened;
    uint32_t connect_id;
};

static int stopping(struct sfi_stlink_tcpserver *ts)
{
    return atomic_load(&ts->stop) || sfi_canceled(ts->ctx);
}

int sfi_stlink_tcpserver_new(struct sfi_ctx *ctx, const struct sfi_stlink_tcpserver_cfg *cfg,
                             struct sfi_stlink_server *srv, struct sfi_stlink_tcpserver **out)
{
    unsigned port = cfg != NULL ? cfg->port : 0;
    if (port > 65535)
        return sfi_seterr(ctx, SFI_E_INVALID, "port %u out of range", port);
    struct sfi_stlink_tcpserver *ts = calloc(1, sizeof *ts);
    if (ts == NULL)
        return sfi_seterr(ctx, SFI_E_NOMEM, "stlink-server");
    ts->ctx = ctx;
    ts->srv = srv;
    if (cfg != NULL)
        ts->cfg = *cfg;
    if (ts->cfg.api == 0)
        ts->cfg.api = 2;
    atomic_init(&ts->stop, 0);
    atomic_init(&ts->commands, 0);
    ts->next_connect_id = 0x100;
    ts->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ts->lfd < 0) {
        int e = errno;
        free(ts);
        return sfi_seterr(ctx, SFI_E_IO, "socket: %s", strerror(e));
    }
    int one = 1;
    setsockopt(ts->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    int rc = SFI_OK;
    if (bind(ts->lfd, (struct sockaddr *)&sa, sizeof sa) != 0)
        rc = sfi_seterr(ctx, errno == EADDRINUSE ? SFI_E_BUSY
                             : errno == EACCES   ? SFI_E_ACCESS
                                                 : SFI_E_IO,
                        "bind 127.0.0.1:%u: %s", port, strerror(errno));
    else if (listen(ts->lfd, 4) != 0 || getsockname(ts->lfd, (struct sockaddr *)&sa, &sl) != 0)
        rc = sfi_seterr(ctx, SFI_E_IO, "listen 127.0.0.1:%u: %s", port, strerror(errno));
    if (rc != SFI_OK) {
        close(ts->lfd);
        free(ts);
        return rc;
    }
    ts->port = ntohs(sa.sin_port);
    *out = ts;
    return SFI_OK;
}

unsigned sfi_stlink_tcpserver_port(const struct sfi_stlink_tcpserver *ts)
{
    return ts->port;
}

void sfi_stlink_tcpserver_stop(struct sfi_stlink_tcpserver *ts)
{
    atomic_store(&ts->stop, 1);
}

unsigned long sfi_stlink_tcpserver_commands(const struct sfi_stlink_tcpserver *ts)
{
    return atomic_load(&((struct sfi_stlink_tcpserver *)ts)->commands);
}

void sfi_stlink_tcpserver_free(struct sfi_stlink_tcpserver *ts)
{
    if (ts == NULL)
        return;
    if (ts->lfd >= 0)
        close(ts->lfd);
    free(ts);
}

/* Reads n bytes. first: waiting for a new request (idle, polled in slices for the stop flag);
 * otherwise the rest of a request, bounded by CMD_TIMEOUT_MS. 1 ok, 0 drop the client. */
static int get(struct sfi_stlink_tcpserver *ts, struct client *cl, uint8_t *p, size_t n,
               int first)
{
    size_t got = 0;
    uint64_t start = sfi_now_ms();
    while (got < n) {
        if (stopping(ts))
            return 0;
        uint64_t waited = sfi_now_ms() - start;
        if (!first && waited >= CMD_TIMEOUT_MS) {
            sfi_log(ts->ctx, SFI_LOG_DEBUG, "stlink-server: request cut at %zu of %zu bytes",
                    got, n);
            return 0;
        }
        if (first && ts->cfg.idle_ms != 0 && waited >= ts->cfg.idle_ms)
            return 0;
        struct pollfd pfd = {.fd = cl->fd, .events = POLLIN};
        int r = poll(&pfd, 1, POLL_SLICE_MS);
        if (r < 0 && errno != EINTR)
            return 0;
        if (r <= 0)
            continue;
        ssize_t k = recv(cl->fd, p + got, n - got, 0);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k <= 0)
            return 0;
        got += (size_t)k;
        first = 0;
        start = sfi_now_ms();
    }
    return 1;
}

static int put(struct client *cl, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(cl->fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return 0;
        p += k;
        n -= (size_t)k;
    }
    return 1;
}

static int put_status(struct client *cl, uint32_t st)
{
    uint8_t b[4];
    sfi_put_le32(b, st);
    return put(cl, b, 4);
}

static uint32_t status_of(int rc)
{
    return rc == SFI_E_UNSUPPORTED ? SFI_STLINK_SRV_CMD_NOT_AVAILABLE : SFI_STLINK_SRV_BAD_PARAM;
}

/* SEND_USB_CMD; the 1-byte command code was already read. 1 keep the client, 0 drop. */
static int usb_cmd(struct sfi_stlink_tcpserver *ts, struct client *cl)
{
    uint8_t h[SFI_STLINK_SRV_HDR_LEN];
    if (!get(ts, cl, h + 1, sizeof h - 1, 0))
        return 0;
    const uint8_t *cdb = h + 8;
    unsigned dir = h[24];
    uint32_t size = sfi_get_le32(h + 28);
    if (size > SFI_STLINK_BUF_SIZE + 16 || (dir != 0 && dir != 1 && dir != 3)) {
        sfi_log(ts->ctx, SFI_LOG_DEBUG, "stlink-server: SEND_USB_CMD dir %u size %u refused",
                dir, (unsigned)size);
        return 0; /* cannot resynchronise: drop */
    }
    if (dir == 0 && size > 0 && !get(ts, cl, ts->data, size, 0))
        return 0;
    unsigned long nth = atomic_fetch_add(&ts->commands, 1) + 1;
    enum sfi_stlink_tcp_fault fault =
        ts->cfg.fault_at != 0 && nth == ts->cfg.fault_at ? ts->cfg.fault : SFI_STLINK_TCP_FAULT_NONE;

    uint32_t st = SFI_STLINK_SRV_OK;
    size_t rlen = 0;
    if (!cl->opened || sfi_get_le32(h + 4) != cl->connect_id) {
        st = SFI_STLINK_SRV_BAD_PARAM;
    } else {
        int rc = sfi_stlink_server_handle(ts->srv, cdb, dir == 0 ? ts->data : NULL,
                                          dir == 0 ? size : 0, ts->reply, sizeof ts->reply,
                                          &rlen);
        if (rc != SFI_OK) {
            sfi_log(ts->ctx, SFI_LOG_DEBUG, "stlink-server: %s", sfi_errdetail(ts->ctx));
            st = status_of(rc);
            rlen = 0;
        }
    }
    if (fault == SFI_STLINK_TCP_FAULT_STATUS)
        st = ts->cfg.fault_status;
    /* the reply: status word, then exactly size bytes for IN commands (zero padded) */
    size_t n = 4;
    uint8_t *out = ts->data;
    sfi_put_le32(out, st);
    if (dir != 0) {
        if (rlen < size)
            memset(ts->reply + rlen, 0, size - rlen);
        memcpy(out + 4, ts->reply, size);
        n += size;
    }
    switch (fault) {
    case SFI_STLINK_TCP_FAULT_CLOSE_MID_REPLY:
        put(cl, out, n / 2);
        return 0;
    case SFI_STLINK_TCP_FAULT_SHORT_REPLY:
        return put(cl, out, n - 1);
    case SFI_STLINK_TCP_FAULT_SILENT:
        return 1;
    default:
        return put(cl, out, n);
    }
}

/* One request; its size and its reply's come from the request table (sfi/stlink_proto.h).
 * 1 keep the client, 0 drop it. */
static int serve_one(struct sfi_stlink_tcpserver *ts, struct client *cl)
{
    uint8_t b[48];
    if (!get(ts, cl, b, 1, 1))
        return 0;
    const struct sfi_stlink_srv_req *r = sfi_stlink_srv_find(b[0]);
    if (r == NULL) {
        sfi_log(ts->ctx, SFI_LOG_DEBUG, "stlink-server: unknown request 0x%02x, dropping client",
                b[0]);
        return 0;
    }
    if (r->code == SFI_STLINK_SRV_SEND_USB_CMD)
        return usb_cmd(ts, cl);
    if (r->req_len > 1 && !get(ts, cl, b + 1, r->req_len - 1u, 0))
        return 0;
    switch (r->code) {
    case SFI_STLINK_SRV_GET_SERVER_VERSION: /* api, major, minor, build */
        memset(b, 0, r->rep_len);
        sfi_put_le32(b, ts->cfg.api);
        sfi_put_le32(b + 4, 2);
        sfi_put_le32(b + 8, 1);
        return put(cl, b, r->rep_len);
    case SFI_STLINK_SRV_REFRESH_DEVICE_LIST:
        return put_status(cl, SFI_STLINK_SRV_OK);
    case SFI_STLINK_SRV_GET_NB_DEV:
        sfi_put_le32(b, 1);
        return put(cl, b, r->rep_len);
    case SFI_STLINK_SRV_GET_DEV_INFO: {
        const size_t n = r->rep_len + SFI_STLINK_SRV_DEV_INFO_LEN;
        unsigned idx = b[1];
        memset(b, 0, n);
        if (idx != 0) {
            sfi_put_le32(b, SFI_STLINK_SRV_BAD_PARAM);
            return put(cl, b, n);
        }
        sfi_put_le32(b, SFI_STLINK_SRV_OK);
        sfi_put_le32(b + 4, DEVICE_ID);
        /* serial: 32-byte NUL-padded field (b was zeroed); at most 31 characters */
        const char *serial = sfi_stlink_server_serial(ts->srv);
        size_t sl = strnlen(serial, 31);
        memcpy(b + 8, serial, sl); /* NOLINT(bugprone-not-null-terminated-result): padded */
        sfi_put_le16(b + 40, SFI_STLINK_VID);
        sfi_put_le16(b + 42, sfi_stlink_server_pid(ts->srv));
        b[44] = (uint8_t)cl->opened;
        return put(cl, b, n);
    }
    case SFI_STLINK_SRV_OPEN_DEV:
        if (sfi_get_le32(b + 4) != DEVICE_ID) {
            sfi_put_le32(b, SFI_STLINK_SRV_OPEN_ERROR);
            sfi_put_le32(b + 4, 0);
            return put(cl, b, r->rep_len);
        }
        cl->opened = 1;
        cl->connect_id = ts->next_connect_id++;
        sfi_put_le32(b, SFI_STLINK_SRV_OK);
        sfi_put_le32(b + 4, cl->connect_id);
        return put(cl, b, r->rep_len);
    default: /* SFI_STLINK_SRV_CLOSE_DEV */
        if (!cl->opened || sfi_get_le32(b + 4) != cl->connect_id)
            return put_status(cl, SFI_STLINK_SRV_BAD_PARAM);
        cl->opened = 0;
        return put_status(cl, SFI_STLINK_SRV_OK);
    }
}

int sfi_stlink_tcpserver_run(struct sfi_stlink_tcpserver *ts)
{
    while (!stopping(ts)) {
        struct pollfd pfd = {.fd = ts->lfd, .events = POLLIN};
        int r = poll(&pfd, 1, POLL_SLICE_MS);
        if (r < 0 && errno != EINTR)
            return sfi_seterr(ts->ctx, SFI_E_IO, "stlink-server poll: %s", strerror(errno));
        if (r <= 0)
            continue;
        struct client cl = {.fd = accept4(ts->lfd, NULL, NULL, SOCK_CLOEXEC)};
        if (cl.fd < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED)
                continue;
            return sfi_seterr(ts->ctx, SFI_E_IO, "stlink-server accept: %s", strerror(errno));
        }
        int one = 1;
        setsockopt(cl.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (ts->cfg.client_start != NULL)
            ts->cfg.client_start(ts->cfg.client_ud);
        unsigned long before = atomic_load(&ts->commands);
        ts->clients++;
        sfi_log(ts->ctx, SFI_LOG_INFO, "stlink-server: client %lu connected", ts->clients);
        while (serve_one(ts, &cl))
            ;
        close(cl.fd);
        unsigned long cmds = atomic_load(&ts->commands) - before;
        sfi_log(ts->ctx, SFI_LOG_INFO, "stlink-server: client %lu gone (%lu commands)",
                ts->clients, cmds);
        if (ts->cfg.client_done != NULL)
            ts->cfg.client_done(ts->cfg.client_ud, ts->clients, cmds);
        if (ts->cfg.max_clients != 0 && ts->clients >= ts->cfg.max_clients)
            return SFI_OK;
    }
    if (sfi_canceled(ts->ctx))
        return sfi_seterr(ts->ctx, SFI_E_CANCELED, "stlink-server stopped by cancellation");
    return SFI_OK;
}
