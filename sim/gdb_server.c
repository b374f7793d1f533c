/* gdb_server.c: the simulated STM32H7 over the GDB remote serial protocol (sfi/gdb_server.h).
 * Framing comes from engine/rsp (sfi/rsp.h). Serves one client at a time on 127.0.0.1, bounds
 * every packet (SFI_RSP_MAX_PAYLOAD), acknowledges until QStartNoAckMode, and answers the
 * packets a debugger needs to read and write memory and registers, reset and reconnect. */
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
#include "sfi/gdb_server.h"
#include "sfi/rsp.h"
#include "sfi/sim.h"

#define POLL_SLICE_MS 100
#define DHCSR 0xE000EDF0u
#define DCRSR 0xE000EDF4u
#define DCRDR 0xE000EDF8u
#define DBGKEY 0xA05F0000u
#define NREGS 17 /* r0-r12, sp, lr, pc, xpsr: the M-profile core feature */
#define BUF_SIZE (SFI_RSP_MAX_PAYLOAD + 64)

/* The target description GDB asks for with qXfer:features:read (names and numbers are those
 * of GDB's "org.gnu.gdb.arm.m-profile" feature). */
static const char TARGET_XML[] =
    "<?xml version=\"1.0\"?>\n"
    "<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n"
    "<target version=\"1.0\">\n"
    "<architecture>arm</architecture>\n"
    "<feature name=\"org.gnu.gdb.arm.m-profile\">\n"
    "<reg name=\"r0\" bitsize=\"32\"/><reg name=\"r1\" bitsize=\"32\"/>"
    "<reg name=\"r2\" bitsize=\"32\"/><reg name=\"r3\" bitsize=\"32\"/>\n"
    "<reg name=\"r4\" bitsize=\"32\"/><reg name=\"r5\" bitsize=\"32\"/>"
    "<reg name=\"r6\" bitsize=\"32\"/><reg name=\"r7\" bitsize=\"32\"/>\n"
    "<reg name=\"r8\" bitsize=\"32\"/><reg name=\"r9\" bitsize=\"32\"/>"
    "<reg name=\"r10\" bitsize=\"32\"/><reg name=\"r11\" bitsize=\"32\"/>\n"
    "<reg name=\"r12\" bitsize=\"32\"/>"
    "<reg name=\"sp\" bitsize=\"32\" type=\"data_ptr\"/>"
    "<reg name=\"lr\" bitsize=\"32\"/>"
    "<reg name=\"pc\" bitsize=\"32\" type=\"code_ptr\"/>\n"
    "<reg name=\"xpsr\" bitsize=\"32\" regnum=\"25\"/>\n"
    "</feature>\n"
    "</target>\n";

static const char HELP[] =
    "sfirun simulated STM32H7, monitor commands:\n"
    "  reset [run|sw]    system reset (SYSRESETREQ); the core runs after it\n"
    "  reset halt|init   connect under reset: the core halts on the reset vector\n"
    "  reset hw          pulse NRST\n"
    "  reset core        core-only reset (VECTRESET)\n"
    "  connect normal|hotplug|under-reset   drop and reconnect the debug port\n"
    "  halt              halt the core (DHCSR)\n"
    "  help              this text\n";

struct sfi_gdb_server {
    struct sfi_ctx *ctx;
    struct sfi_sim *sim;
    struct sfi_gdb_server_cfg cfg;
    int lfd;
    unsigned port;
    atomic_int stop;
    atomic_ulong packets;
    unsigned long clients;
    int noack;
    uint8_t in[BUF_SIZE];
    uint8_t reply[BUF_SIZE];
    uint8_t frame[2 * BUF_SIZE + 8];
    uint8_t rbuf[65536];
};

/* ---- the session: one request, one reply -------------------------------------------------- */

static int attach_port(struct sfi_gdb_server *gs)
{
    if (sfi_sim_connected(gs->sim))
        return SFI_OK;
    return sfi_sim_connect(gs->sim, SFI_SIM_CONNECT_HOTPLUG);
}

static int logged(struct sfi_gdb_server *gs, int rc)
{
    if (rc != SFI_OK)
        sfi_log(gs->ctx, SFI_LOG_DEBUG, "gdb-server: %s: %s", sfi_errname(rc),
                sfi_errdetail(gs->ctx));
    return rc;
}

static int mem_read(struct sfi_gdb_server *gs, uint32_t addr, void *buf, size_t n)
{
    int rc = attach_port(gs);
    if (rc == SFI_OK)
        rc = sfi_sim_read(gs->sim, addr, buf, n);
    return logged(gs, rc);
}

static int mem_write(struct sfi_gdb_server *gs, uint32_t addr, const void *buf, size_t n)
{
    int rc = attach_port(gs);
    if (rc == SFI_OK)
        rc = sfi_sim_write(gs->sim, addr, buf, n);
    return logged(gs, rc);
}

static int write32(struct sfi_gdb_server *gs, uint32_t addr, uint32_t v)
{
    uint8_t b[4];
    sfi_put_le32(b, v);
    return mem_write(gs, addr, b, 4);
}

static int read32(struct sfi_gdb_server *gs, uint32_t addr, uint32_t *v)
{
    uint8_t b[4];
    int rc = mem_read(gs, addr, b, 4);
    if (rc == SFI_OK)
        *v = sfi_get_le32(b);
    return rc;
}

/* GDB register n -> DCRSR REGSEL: r0-r12, sp, lr, pc (DebugReturnAddress) 0..15; xpsr 16. */
static int reg_read(struct sfi_gdb_server *gs, unsigned n, uint32_t *v)
{
    int rc = write32(gs, DCRSR, n);
    return rc ? rc : read32(gs, DCRDR, v);
}

static int reg_write(struct sfi_gdb_server *gs, unsigned n, uint32_t v)
{
    int rc = write32(gs, DCRDR, v);
    return rc ? rc : write32(gs, DCRSR, n | (1u << 16));
}

/* GDB's register number (xpsr is 25 in the description) -> 0..16, or -1. */
static int regsel(uint64_t n)
{
    if (n <= 15)
        return (int)n;
    if (n == 25 || n == 16)
        return 16;
    return -1;
}

struct out {
    uint8_t *p;
    size_t cap, len;
};

static void reply_str(struct out *o, const char *s)
{
    size_t n = strlen(s);
    if (n > o->cap)
        n = o->cap;
    memcpy(o->p, s, n);
    o->len = n;
}

static void reply_err(struct out *o, int rc)
{
    /* E01 bus fault (outside the map, read-out protection), E02 no target */
    reply_str(o, rc == SFI_E_NO_DEVICE ? "E02" : rc == SFI_E_IO ? "E03" : "E01");
}

/* A register as GDB sends it: the target's (little-endian) bytes in hex. */
static void put_le32_hex(char *dst, uint32_t v)
{
    uint8_t b[4];
    sfi_put_le32(b, v);
    sfi_hex_encode(b, 4, dst);
}

static int get_le32_hex(const char *src, uint32_t *v)
{
    uint8_t b[4];
    if (sfi_hex_decode(src, 4, b) != 0)
        return -1;
    *v = sfi_get_le32(b);
    return 0;
}

/* "ADDR,LEN" then sep; returns the index after sep, or 0 when malformed. */
static size_t addr_len(const char *s, size_t n, char sep, uint64_t *addr, uint64_t *len)
{
    size_t u, i = 0;
    *addr = sfi_rsp_hexnum(s, n, &u);
    if (u == 0 || u >= n || s[u] != ',')
        return 0;
    i = u + 1;
    *len = sfi_rsp_hexnum(s + i, n - i, &u);
    if (u == 0)
        return 0;
    i += u;
    if (sep == 0)
        return i == n ? i : 0;
    if (i >= n || s[i] != sep)
        return 0;
    return i + 1;
}

static int valid_range(uint64_t addr, uint64_t len)
{
    return addr <= 0xFFFFFFFFu && len <= 0x100000000u - addr;
}

static void output(sfi_gdb_out_fn fn, void *ud, const char *text)
{
    if (fn == NULL)
        return;
    size_t n = strlen(text);
    for (size_t off = 0; off < n; off += 256) {
        char pkt[1 + 512];
        size_t k = n - off < 256 ? n - off : 256;
        pkt[0] = 'O';
        sfi_hex_encode(text + off, k, pkt + 1);
        fn(ud, (const uint8_t *)pkt, 1 + 2 * k);
    }
}

static int reconnect(struct sfi_gdb_server *gs, enum sfi_sim_connect mode)
{
    sfi_sim_disconnect(gs->sim);
    return sfi_sim_connect(gs->sim, mode);
}

/* qRcmd: the monitor commands of help above. */
static void monitor(struct sfi_gdb_server *gs, const char *cmd, struct out *o, sfi_gdb_out_fn fn,
                    void *ud)
{
    int rc = SFI_OK;
    char msg[160];
    msg[0] = 0;
    if (strcmp(cmd, "help") == 0) {
        output(fn, ud, HELP);
        reply_str(o, "OK");
        return;
    }
    if (strcmp(cmd, "reset") == 0 || strcmp(cmd, "reset run") == 0 ||
        strcmp(cmd, "reset sw") == 0) {
        rc = attach_port(gs);
        if (rc == SFI_OK)
            rc = sfi_sim_reset(gs->sim, SFI_SIM_RESET_SW);
    } else if (strcmp(cmd, "reset halt") == 0 || strcmp(cmd, "reset init") == 0 ||
               strcmp(cmd, "connect under-reset") == 0) {
        rc = reconnect(gs, SFI_SIM_CONNECT_UNDER_RESET);
    } else if (strcmp(cmd, "reset hw") == 0) {
        rc = attach_port(gs);
        if (rc == SFI_OK)
            rc = sfi_sim_reset(gs->sim, SFI_SIM_RESET_HW);
    } else if (strcmp(cmd, "reset core") == 0) {
        rc = attach_port(gs);
        if (rc == SFI_OK)
            rc = sfi_sim_reset(gs->sim, SFI_SIM_RESET_CORE);
    } else if (strcmp(cmd, "connect normal") == 0) {
        rc = reconnect(gs, SFI_SIM_CONNECT_NORMAL);
    } else if (strcmp(cmd, "connect hotplug") == 0) {
        rc = reconnect(gs, SFI_SIM_CONNECT_HOTPLUG);
    } else if (strcmp(cmd, "halt") == 0) {
        rc = write32(gs, DHCSR, DBGKEY | 0x3);
    } else {
        snprintf(msg, sizeof msg, "unknown monitor command '%.100s' (try: monitor help)\n", cmd);
        output(fn, ud, msg);
        reply_str(o, "E01");
        return;
    }
    if (rc != SFI_OK) {
        logged(gs, rc);
        snprintf(msg, sizeof msg, "%s failed: %s\n", cmd,
                 rc == SFI_E_NO_DEVICE ? "target not responding" : sfi_errname(rc));
        output(fn, ud, msg);
        reply_err(o, rc);
        return;
    }
    reply_str(o, "OK");
}

static void xfer_features(const char *args, size_t n, struct out *o)
{
    static const char ANNEX[] = "target.xml:";
    uint64_t off, len;
    if (n < sizeof ANNEX - 1 || memcmp(args, ANNEX, sizeof ANNEX - 1) != 0) {
        reply_str(o, "E00");
        return;
    }
    args += sizeof ANNEX - 1;
    n -= sizeof ANNEX - 1;
    if (addr_len(args, n, 0, &off, &len) == 0) {
        reply_str(o, "E00");
        return;
    }
    size_t total = sizeof TARGET_XML - 1;
    if (off > total) {
        reply_str(o, "E00");
        return;
    }
    size_t k = total - off;
    if (k > len)
        k = (size_t)len;
    if (k > o->cap - 1)
        k = o->cap - 1;
    o->p[0] = off + k < total ? 'm' : 'l';
    memcpy(o->p + 1, TARGET_XML + off, k);
    o->len = 1 + k;
}

static unsigned packet_size(const struct sfi_gdb_server *gs)
{
    return gs->cfg.packet_size;
}

static int prefix(const char *s, size_t n, const char *p)
{
    size_t k = strlen(p);
    return n >= k && memcmp(s, p, k) == 0;
}

void sfi_gdb_server_handle(struct sfi_gdb_server *gs, const uint8_t *req, size_t n,
                           uint8_t *reply, size_t cap, size_t *rlen, int *close,
                           sfi_gdb_out_fn out_fn, void *out_ud)
{
    const char *s = (const char *)req;
    struct out o = {reply, cap, 0};
    uint64_t addr, len;
    size_t i;
    char tmp[200];
    *close = 0;
    if (n == 0) {
        *rlen = 0;
        return;
    }
    switch (s[0]) {
    case '?':
        reply_str(&o, "S05");
        break;
    case 'g': {
        if (cap < NREGS * 8) {
            reply_str(&o, "E00");
            break;
        }
        for (unsigned r = 0; r < NREGS; r++) {
            uint32_t v = 0;
            int rc = reg_read(gs, r, &v);
            if (rc != SFI_OK) {
                reply_err(&o, rc);
                goto done;
            }
            put_le32_hex((char *)reply + 8 * r, v);
        }
        o.len = NREGS * 8;
        break;
    }
    case 'G':
        if (n != 1 + NREGS * 8) {
            reply_str(&o, "E00");
            break;
        }
        for (unsigned r = 0; r < NREGS; r++) {
            uint32_t v;
            if (get_le32_hex(s + 1 + 8 * r, &v) != 0) {
                reply_str(&o, "E00");
                goto done;
            }
            int rc = reg_write(gs, r, v);
            if (rc != SFI_OK) {
                reply_err(&o, rc);
                goto done;
            }
        }
        reply_str(&o, "OK");
        break;
    case 'p': {
        size_t u;
        uint64_t r = sfi_rsp_hexnum(s + 1, n - 1, &u);
        int sel = regsel(r);
        uint32_t v;
        if (u == 0 || 1 + u != n || sel < 0 || cap < 8) {
            reply_str(&o, "E00");
            break;
        }
        int rc = reg_read(gs, (unsigned)sel, &v);
        if (rc != SFI_OK) {
            reply_err(&o, rc);
            break;
        }
        put_le32_hex((char *)reply, v);
        o.len = 8;
        break;
    }
    case 'P': {
        size_t u;
        uint64_t r = sfi_rsp_hexnum(s + 1, n - 1, &u);
        int sel = regsel(r);
        uint32_t v;
        if (u == 0 || 1 + u + 9 != n || s[1 + u] != '=' || sel < 0 ||
            get_le32_hex(s + 2 + u, &v) != 0) {
            reply_str(&o, "E00");
            break;
        }
        int rc = reg_write(gs, (unsigned)sel, v);
        if (rc != SFI_OK)
            reply_err(&o, rc);
        else
            reply_str(&o, "OK");
        break;
    }
    case 'm': {
        if (addr_len(s + 1, n - 1, 0, &addr, &len) == 0 || !valid_range(addr, len)) {
            reply_str(&o, "E00");
            break;
        }
        /* a reply holds at most PacketSize hex digits: a longer read is answered short */
        size_t max = packet_size(gs) / 2;
        if (len > max)
            len = max;
        if (len * 2 > cap) {
            reply_str(&o, "E00");
            break;
        }
        uint8_t *bin = gs->in + sizeof gs->in / 2; /* the request was copied out of gs->in */
        if (len > sizeof gs->in / 2)
            len = sizeof gs->in / 2;
        int rc = mem_read(gs, (uint32_t)addr, bin, (size_t)len);
        if (rc != SFI_OK) {
            reply_err(&o, rc);
            break;
        }
        sfi_hex_encode(bin, (size_t)len, (char *)reply);
        o.len = (size_t)len * 2;
        break;
    }
    case 'M': {
        i = addr_len(s + 1, n - 1, ':', &addr, &len);
        if (i == 0 || !valid_range(addr, len) || n - 1 - i != len * 2) {
            reply_str(&o, "E00");
            break;
        }
        uint8_t *bin = reply; /* decoded in place into the reply buffer, then overwritten */
        if (len > cap || sfi_hex_decode(s + 1 + i, (size_t)len, bin) != 0) {
            reply_str(&o, "E00");
            break;
        }
        int rc = len ? mem_write(gs, (uint32_t)addr, bin, (size_t)len) : SFI_OK;
        if (rc != SFI_OK)
            reply_err(&o, rc);
        else
            reply_str(&o, "OK");
        break;
    }
    case 'X': {
        i = addr_len(s + 1, n - 1, ':', &addr, &len);
        if (i == 0 || !valid_range(addr, len) || n - 1 - i != len) {
            reply_str(&o, "E00");
            break;
        }
        int rc = len ? mem_write(gs, (uint32_t)addr, s + 1 + i, (size_t)len) : SFI_OK;
        if (rc != SFI_OK)
            reply_err(&o, rc);
        else
            reply_str(&o, "OK");
        break;
    }
    case 'c':
    case 's':
        /* the simulated core executes nothing: it stops at once */
        reply_str(&o, "S05");
        break;
    case 'D':
        reply_str(&o, "OK");
        *close = 1;
        break;
    case 'k':
        *close = 1;
        break;
    case 'H':
    case 'T':
        reply_str(&o, "OK");
        break;
    case 'q':
        if (prefix(s, n, "qSupported")) {
            snprintf(tmp, sizeof tmp, "PacketSize=%x;QStartNoAckMode+;qXfer:features:read+",
                     packet_size(gs));
            reply_str(&o, tmp);
        } else if (prefix(s, n, "qAttached")) {
            reply_str(&o, "1");
        } else if (n == 2 && s[1] == 'C') {
            reply_str(&o, "QC1");
        } else if (prefix(s, n, "qfThreadInfo")) {
            reply_str(&o, "m1");
        } else if (prefix(s, n, "qsThreadInfo")) {
            reply_str(&o, "l");
        } else if (prefix(s, n, "qXfer:features:read:")) {
            xfer_features(s + 20, n - 20, &o);
        } else if (prefix(s, n, "qRcmd,")) {
            size_t hl = n - 6;
            char cmd[128];
            if (hl % 2 != 0 || hl / 2 >= sizeof cmd || sfi_hex_decode(s + 6, hl / 2, cmd) != 0) {
                reply_str(&o, "E01");
                break;
            }
            cmd[hl / 2] = 0;
            if (memchr(cmd, 0, hl / 2) != NULL) {
                reply_str(&o, "E01");
                break;
            }
            monitor(gs, cmd, &o, out_fn, out_ud);
        }
        break;
    case 'Q':
        if (n == 15 && memcmp(s, "QStartNoAckMode", 15) == 0) {
            reply_str(&o, "OK");
            gs->noack = 2; /* takes effect after this reply is acknowledged */
        }
        break;
    case 'v':
        if (prefix(s, n, "vCont?"))
            reply_str(&o, "vCont;c;s");
        else if (prefix(s, n, "vCont;"))
            reply_str(&o, "S05");
        break;
    default:
        break; /* the empty reply: not supported */
    }
done:
    *rlen = o.len;
}

void sfi_gdb_server_end_session(struct sfi_gdb_server *gs)
{
    gs->noack = 0;
    sfi_sim_disconnect(gs->sim);
}

/* ---- the socket side ----------------------------------------------------------------------- */

int sfi_gdb_server_new(struct sfi_ctx *ctx, const struct sfi_gdb_server_cfg *cfg,
                       struct sfi_sim *sim, struct sfi_gdb_server **out)
{
    unsigned port = cfg != NULL ? cfg->port : 0;
    if (port > 65535)
        return sfi_seterr(ctx, SFI_E_INVALID, "port %u out of range", port);
    struct sfi_gdb_server *gs = calloc(1, sizeof *gs);
    if (gs == NULL)
        return sfi_seterr(ctx, SFI_E_NOMEM, "gdb-server");
    gs->ctx = ctx;
    if (cfg != NULL)
        gs->cfg = *cfg;
    if (gs->cfg.packet_size == 0)
        gs->cfg.packet_size = 0x4000;
    if (gs->cfg.packet_size < 256)
        gs->cfg.packet_size = 256;
    if (gs->cfg.packet_size > SFI_RSP_MAX_PAYLOAD)
        gs->cfg.packet_size = SFI_RSP_MAX_PAYLOAD;
    atomic_init(&gs->stop, 0);
    atomic_init(&gs->packets, 0);
    gs->lfd = -1;
    if (sim == NULL) {
        free(gs);
        return sfi_seterr(ctx, SFI_E_INVALID, "gdb-server: no simulated chip");
    }
    gs->sim = sfi_sim_ref(sim);
    if (!gs->cfg.no_listen) {
        gs->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int rc = SFI_OK;
        struct sockaddr_in sa;
        socklen_t sl = sizeof sa;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_port = htons((uint16_t)port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int one = 1;
        if (gs->lfd < 0)
            rc = sfi_seterr(ctx, SFI_E_IO, "socket: %s", strerror(errno));
        else if (setsockopt(gs->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one),
                 bind(gs->lfd, (struct sockaddr *)&sa, sizeof sa) != 0)
            rc = sfi_seterr(ctx, errno == EADDRINUSE ? SFI_E_BUSY
                                 : errno == EACCES   ? SFI_E_ACCESS
                                                     : SFI_E_IO,
                            "bind 127.0.0.1:%u: %s", port, strerror(errno));
        else if (listen(gs->lfd, 4) != 0 ||
                 getsockname(gs->lfd, (struct sockaddr *)&sa, &sl) != 0)
            rc = sfi_seterr(ctx, SFI_E_IO, "listen 127.0.0.1:%u: %s", port, strerror(errno));
        if (rc != SFI_OK) {
            sfi_gdb_server_free(gs);
            return rc;
        }
        gs->port = ntohs(sa.sin_port);
    }
    *out = gs;
    return SFI_OK;
}

unsigned sfi_gdb_server_port(const struct sfi_gdb_server *gs)
{
    return gs->port;
}

void sfi_gdb_server_stop(struct sfi_gdb_server *gs)
{
    atomic_store(&gs->stop, 1);
}

unsigned long sfi_gdb_server_packets(const struct sfi_gdb_server *gs)
{
    return atomic_load(&((struct sfi_gdb_server *)gs)->packets);
}

void sfi_gdb_server_free(struct sfi_gdb_server *gs)
{
    if (gs == NULL)
        return;
    if (gs->lfd >= 0)
        close(gs->lfd);
    sfi_sim_free(gs->sim);
    free(gs);
}

static int stopping(struct sfi_gdb_server *gs)
{
    return atomic_load(&gs->stop) || sfi_canceled(gs->ctx);
}

static int put(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t k = send(fd, b, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return 0;
        b += k;
        n -= (size_t)k;
    }
    return 1;
}

struct sess {
    struct sfi_gdb_server *gs;
    int fd;
    int ok;
};

static void send_packet(struct sess *se, const uint8_t *payload, size_t n)
{
    size_t k = sfi_rsp_frame(payload, n, se->gs->frame, sizeof se->gs->frame);
    if (k == 0 || !put(se->fd, se->gs->frame, k))
        se->ok = 0;
}

static void out_packet(void *ud, const uint8_t *pkt, size_t n)
{
    send_packet(ud, pkt, n);
}

/* Serves one client until it leaves, misbehaves past recovery, or the server stops. */
static void session(struct sfi_gdb_server *gs, int fd)
{
    struct sfi_rsp_dec dec;
    struct sess se = {gs, fd, 1};
    uint8_t *rbuf = gs->rbuf;
    size_t last_len = 0;
    unsigned naks = 0;
    sfi_rsp_dec_init(&dec, gs->in, sizeof gs->in / 2);
    gs->noack = 0;
    while (se.ok && !stopping(gs)) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, POLL_SLICE_MS);
        if (r < 0 && errno != EINTR)
            break;
        if (r <= 0)
            continue;
        ssize_t k = recv(fd, rbuf, sizeof gs->rbuf, 0);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k <= 0)
            break;
        for (ssize_t j = 0; j < k && se.ok; j++) {
            enum sfi_rsp_event ev = sfi_rsp_feed(&dec, rbuf[j]);
            switch (ev) {
            case SFI_RSP_PACKET: {
                int close_it = 0;
                naks = 0;
                atomic_fetch_add(&gs->packets, 1);
                if (!gs->noack && !put(fd, "+", 1)) {
                    se.ok = 0;
                    break;
                }
                sfi_gdb_server_handle(gs, dec.buf, dec.len, gs->reply, sizeof gs->reply,
                                      &last_len, &close_it, out_packet, &se);
                if (close_it && last_len == 0) {
                    se.ok = 0;
                    break;
                }
                send_packet(&se, gs->reply, last_len);
                if (gs->noack == 2)
                    gs->noack = 1;
                if (close_it)
                    se.ok = 0;
                break;
            }
            case SFI_RSP_NAK:
                /* the client wants the last reply again (ack mode only) */
                if (!gs->noack && ++naks <= 3)
                    send_packet(&se, gs->reply, last_len);
                break;
            case SFI_RSP_INTERRUPT:
                send_packet(&se, (const uint8_t *)"S02", 3);
                break;
            case SFI_RSP_BAD_CHECKSUM:
            case SFI_RSP_BAD_RLE:
                sfi_log(gs->ctx, SFI_LOG_DEBUG, "gdb-server: bad packet (checksum)");
                if (!gs->noack && !put(fd, "-", 1))
                    se.ok = 0;
                break;
            case SFI_RSP_TOO_LONG:
                sfi_log(gs->ctx, SFI_LOG_INFO,
                        "gdb-server: packet longer than %u bytes, dropping the client",
                        SFI_RSP_MAX_PAYLOAD / 2);
                se.ok = 0;
                break;
            default:
                break;
            }
        }
    }
    sfi_gdb_server_end_session(gs);
}

int sfi_gdb_server_run(struct sfi_gdb_server *gs)
{
    if (gs->lfd < 0)
        return sfi_seterr(gs->ctx, SFI_E_INVALID, "gdb-server: not listening");
    while (!stopping(gs)) {
        struct pollfd pfd = {.fd = gs->lfd, .events = POLLIN};
        int r = poll(&pfd, 1, POLL_SLICE_MS);
        if (r < 0 && errno != EINTR)
            return sfi_seterr(gs->ctx, SFI_E_IO, "gdb-server poll: %s", strerror(errno));
        if (r <= 0)
            continue;
        int fd = accept4(gs->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED)
                continue;
            return sfi_seterr(gs->ctx, SFI_E_IO, "gdb-server accept: %s", strerror(errno));
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (gs->cfg.client_start != NULL)
            gs->cfg.client_start(gs->cfg.client_ud);
        unsigned long before = atomic_load(&gs->packets);
        gs->clients++;
        sfi_log(gs->ctx, SFI_LOG_INFO, "gdb-server: client %lu connected", gs->clients);
        session(gs, fd);
        close(fd);
        unsigned long pk = atomic_load(&gs->packets) - before;
        sfi_log(gs->ctx, SFI_LOG_INFO, "gdb-server: client %lu gone (%lu packets)", gs->clients,
                pk);
        if (gs->cfg.client_done != NULL)
            gs->cfg.client_done(gs->cfg.client_ud, gs->clients, pk);
        if (gs->cfg.max_clients != 0 && gs->clients >= gs->cfg.max_clients)
            return SFI_OK;
    }
    if (sfi_canceled(gs->ctx))
        return sfi_seterr(gs->ctx, SFI_E_CANCELED, "gdb-server stopped by cancellation");
    return SFI_OK;
}
