/* test_rsp.c: GDB remote serial protocol: the framing (engine/rsp), the simulator's GDB server
 * answering requests (sim/gdb_server.c), and the "gdb" probe driver (engine/probe/drv_gdb.c)
 * against the real server and against scripted hostile servers in a thread: silence, E01 to
 * everything, a close mid-packet, floods, corrupt checksums, PacketSize 0 and 1 GiB, run-length
 * replies, short reads, X refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "sim_h753.h"
#include "sfi/gdb_server.h"
#include "sfi/probe.h"
#include "sfi/rsp.h"

/* ---- framing -------------------------------------------------------------------------------- */

static enum sfi_rsp_event feed_all(struct sfi_rsp_dec *d, const char *s, size_t n)
{
    enum sfi_rsp_event last = SFI_RSP_NONE;
    for (size_t i = 0; i < n; i++) {
        enum sfi_rsp_event ev = sfi_rsp_feed(d, (uint8_t)s[i]);
        if (ev != SFI_RSP_NONE)
            last = ev;
    }
    return last;
}

static void test_frame_known(void **state)
{
    (void)state;
    uint8_t out[32];
    size_t n = sfi_rsp_frame("OK", 2, out, sizeof out);
    assert_int_equal(n, 6);
    assert_memory_equal(out, "$OK#9a", 6); /* the GDB manual's checksum rule */
    assert_int_equal(sfi_rsp_frame("OK", 2, out, 5), 0);
}

static void test_frame_roundtrip_escapes(void **state)
{
    (void)state;
    uint8_t payload[256], framed[600], buf[300];
    for (int i = 0; i < 256; i++)
        payload[i] = (uint8_t)i;
    size_t n = sfi_rsp_frame(payload, sizeof payload, framed, sizeof framed);
    assert_true(n > 256 + 4);
    /* no raw '#', '$' or '*' inside the frame body */
    for (size_t i = 1; i < n - 3; i++)
        assert_true(framed[i] != '#' && framed[i] != '$' && framed[i] != '*');
    struct sfi_rsp_dec d;
    sfi_rsp_dec_init(&d, buf, sizeof buf);
    assert_int_equal(feed_all(&d, (const char *)framed, n), SFI_RSP_PACKET);
    assert_int_equal(d.len, 256);
    assert_memory_equal(d.buf, payload, 256);
}

static void test_decoder_events(void **state)
{
    (void)state;
    uint8_t buf[64];
    struct sfi_rsp_dec d;
    sfi_rsp_dec_init(&d, buf, sizeof buf);
    assert_int_equal(sfi_rsp_feed(&d, '+'), SFI_RSP_ACK);
    assert_int_equal(sfi_rsp_feed(&d, '-'), SFI_RSP_NAK);
    assert_int_equal(sfi_rsp_feed(&d, 0x03), SFI_RSP_INTERRUPT);
    /* noise before a packet is skipped */
    assert_int_equal(feed_all(&d, "xyz$OK#9a", 9), SFI_RSP_PACKET);
    assert_int_equal(d.len, 2);
    /* run-length: "0* " is four zeros; eight zeros as the manual writes them */
    assert_int_equal(feed_all(&d, "$0* #", 5), SFI_RSP_NONE);
    uint8_t sum = (uint8_t)('0' + '*' + ' ');
    char cs[3];
    snprintf(cs, sizeof cs, "%02x", sum);
    assert_int_equal(feed_all(&d, cs, 2), SFI_RSP_PACKET);
    assert_int_equal(d.len, 4);
    assert_memory_equal(d.buf, "0000", 4);
    /* a wrong checksum, bad hex in the checksum, RLE with nothing before it */
    assert_int_equal(feed_all(&d, "$OK#00", 6), SFI_RSP_BAD_CHECKSUM);
    assert_int_equal(feed_all(&d, "$OK#zz", 6), SFI_RSP_BAD_CHECKSUM);
    assert_int_equal(feed_all(&d, "$* #4a", 6), SFI_RSP_BAD_RLE);
    /* longer than the buffer */
    char big[200];
    memset(big, 'a', sizeof big);
    big[0] = '$';
    assert_int_equal(feed_all(&d, big, sizeof big), SFI_RSP_NONE);
    assert_int_equal(feed_all(&d, "#00", 3), SFI_RSP_TOO_LONG);
    /* a '$' inside a packet restarts it */
    assert_int_equal(feed_all(&d, "$O$OK#9a", 8), SFI_RSP_PACKET);
    assert_int_equal(d.len, 2);
}

static void test_hex_and_errors(void **state)
{
    (void)state;
    char h[8];
    uint8_t b[4] = {0xDE, 0xAD, 0x01, 0x0F};
    sfi_hex_encode(b, 4, h);
    assert_memory_equal(h, "dead010f", 8);
    uint8_t back[4];
    assert_int_equal(sfi_hex_decode("DEAD010F", 4, back), 0);
    assert_memory_equal(back, b, 4);
    assert_int_equal(sfi_hex_decode("DEAg", 2, back), -1);
    size_t used;
    assert_int_equal(sfi_rsp_hexnum("1a2b,", 5, &used), 0x1a2b);
    assert_int_equal(used, 4);
    unsigned code;
    assert_true(sfi_rsp_is_error((const uint8_t *)"E0E", 3, &code));
    assert_int_equal(code, 0x0E);
    assert_false(sfi_rsp_is_error((const uint8_t *)"E0", 2, &code));
    assert_true(sfi_rsp_is_error((const uint8_t *)"E.no target", 11, &code));
    struct sfi_rsp_features f;
    const char *qs = "PacketSize=4000;qXfer:features:read+;QStartNoAckMode+";
    sfi_rsp_supported((const uint8_t *)qs, strlen(qs), &f);
    assert_true(f.has_packet_size);
    assert_int_equal(f.packet_size, 0x4000);
    assert_true(f.noack);
    sfi_rsp_supported((const uint8_t *)"PacketSize=zz", 13, &f);
    assert_true(f.has_packet_size);
    assert_int_equal(f.packet_size, 0);
}

/* ---- the simulator's server, request by request --------------------------------------------- */

struct srv {
    struct sfi_sim *sim;
    struct sfi_gdb_server *gs;
    uint8_t reply[SFI_RSP_MAX_PAYLOAD + 64];
    size_t rlen;
    int close;
    char out[512];
};

static void collect(void *ud, const uint8_t *pkt, size_t n)
{
    struct srv *s = ud;
    size_t k = strlen(s->out);
    if (n > 1 && (n - 1) / 2 + k < sizeof s->out) {
        sfi_hex_decode((const char *)pkt + 1, (n - 1) / 2, s->out + k);
        s->out[k + (n - 1) / 2] = 0;
    }
}

static const char *ask(struct srv *s, const char *req)
{
    s->out[0] = 0;
    sfi_gdb_server_handle(s->gs, (const uint8_t *)req, strlen(req), s->reply, sizeof s->reply,
                          &s->rlen, &s->close, collect, s);
    s->reply[s->rlen] = 0;
    return (const char *)s->reply;
}

static void srv_open(struct srv *s, unsigned listen_port, int listen)
{
    struct sfi_sim_cfg c;
    h753(&c);
    memset(s, 0, sizeof *s);
    assert_int_equal(sfi_sim_new(ctx, &c, &s->sim), SFI_OK);
    struct sfi_gdb_server_cfg g = {.port = listen_port, .no_listen = !listen};
    assert_int_equal(sfi_gdb_server_new(ctx, &g, s->sim, &s->gs), SFI_OK);
}

static void srv_close(struct srv *s)
{
    sfi_gdb_server_free(s->gs);
    sfi_sim_free(s->sim);
}

static void test_server_requests(void **state)
{
    (void)state;
    struct srv s;
    srv_open(&s, 0, 0);
    assert_non_null(strstr(ask(&s, "qSupported:multiprocess+"), "PacketSize=4000"));
    assert_string_equal(ask(&s, "?"), "S05");
    /* DBGMCU_IDCODE: rev 0x2003, dev 0x450, little-endian hex */
    assert_string_equal(ask(&s, "m5c001000,4"), "50040320");
    assert_string_equal(ask(&s, "M24000000,4:efbeadde"), "OK");
    assert_string_equal(ask(&s, "m24000000,4"), "efbeadde");
    /* X with an escaped '#' (0x23 sent as 7d 03) decoded by the framing, raw here */
    assert_string_equal(ask(&s, "X24000004,2:#$"), "OK");
    assert_string_equal(ask(&s, "m24000004,2"), "2324");
    /* outside the memory map: a bus fault */
    assert_string_equal(ask(&s, "m60000000,4"), "E01");
    /* malformed */
    assert_string_equal(ask(&s, "m24000000"), "E00");
    assert_string_equal(ask(&s, "Mzz,4:00"), "E00");
    assert_string_equal(ask(&s, "M24000000,4:00"), "E00");
    assert_string_equal(ask(&s, "mffffffff,10"), "E00");
    /* registers: 17 of them, written and read back through DCRSR/DCRDR */
    assert_string_equal(ask(&s, "P0=78563412"), "OK");
    assert_string_equal(ask(&s, "p0"), "78563412");
    assert_int_equal(strlen(ask(&s, "g")), 17 * 8);
    assert_string_equal(ask(&s, "p99"), "E00");
    /* the target description */
    const char *x = ask(&s, "qXfer:features:read:target.xml:0,fff");
    assert_int_equal(x[0], 'l');
    assert_non_null(strstr(x, "org.gnu.gdb.arm.m-profile"));
    assert_string_equal(ask(&s, "qXfer:features:read:other.xml:0,10"), "E00");
    /* monitor: output as O packets, then OK; unknown commands E01 */
    assert_string_equal(ask(&s, "qRcmd,68656c70"), "OK"); /* help */
    assert_non_null(strstr(s.out, "reset halt"));
    assert_string_equal(ask(&s, "qRcmd,626f677573"), "E01"); /* bogus */
    assert_non_null(strstr(s.out, "unknown monitor command 'bogus'"));
    assert_string_equal(ask(&s, "qRcmd,7"), "E01");
    assert_string_equal(ask(&s, "qRcmd,72657365742068616c74"), "OK"); /* reset halt */
    /* unsupported: the empty reply */
    assert_string_equal(ask(&s, "Z0,8000000,2"), "");
    assert_string_equal(ask(&s, "D"), "OK");
    assert_true(s.close);
    srv_close(&s);
}

/* ---- the driver against the real server ----------------------------------------------------- */

static void *serve(void *arg)
{
    struct sfi_gdb_server *gs = arg;
    sfi_gdb_server_run(gs);
    return NULL;
}

static int open_gdb(unsigned port, const struct sfi_gdb_cfg *extra, struct sfi_probe **p)
{
    struct sfi_gdb_cfg g;
    if (extra)
        g = *extra;
    else
        memset(&g, 0, sizeof g);
    g.host = "127.0.0.1";
    g.port = port;
    if (g.timeout_ms == 0)
        g.timeout_ms = 500;
    if (g.monitor_timeout_ms == 0)
        g.monitor_timeout_ms = 800;
    struct sfi_probe_cfg cfg = {.driver = "gdb", .gdb = &g, .connect = SFI_CONNECT_HOTPLUG};
    return sfi_probe_open(ctx, &cfg, p);
}

static void test_driver_against_sim_server(void **state)
{
    (void)state;
    struct srv s;
    srv_open(&s, 0, 1);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, serve, s.gs), 0);
    struct sfi_gdb_cfg g;
    memset(&g, 0, sizeof g);
    g.reset[SFI_RESET_HW] = "reset hw";
    g.connect[SFI_CONNECT_UNDER_RESET] = "reset halt";
    struct sfi_probe *p = NULL;
    assert_int_equal(open_gdb(sfi_gdb_server_port(s.gs), &g, &p), SFI_OK);
    uint32_t v = 0;
    assert_int_equal(sfi_probe_read32(p, 0x5C001000, &v), SFI_OK);
    assert_int_equal(v, 0x20036450 & 0xFFFF0FFF);
    /* 100 KiB through X and m, several packets each way */
    size_t n = 100 * 1024;
    uint8_t *w = malloc(n), *r = malloc(n);
    for (size_t i = 0; i < n; i++)
        w[i] = (uint8_t)(i * 7 + (i >> 8)); /* every byte value, escapes included */
    assert_int_equal(sfi_probe_write_mem(p, 0x24000000, w, n), SFI_OK);
    assert_int_equal(sfi_probe_read_mem(p, 0x24000000, r, n), SFI_OK);
    assert_memory_equal(w, r, n);
    free(w);
    free(r);
    /* a bus fault stays a bus fault while the target answers */
    uint8_t b[4];
    assert_int_equal(sfi_probe_read_mem(p, 0x60000000, b, 4), SFI_E_TARGET);
    assert_int_equal(sfi_probe_reset(p, SFI_RESET_SW), SFI_OK);
    assert_int_equal(sfi_probe_reset(p, SFI_RESET_HW), SFI_OK);
    assert_int_equal(sfi_probe_reset(p, SFI_RESET_CORE), SFI_OK);
    assert_int_equal(sfi_probe_connect(p, SFI_CONNECT_UNDER_RESET), SFI_OK);
    assert_int_equal(sfi_probe_halt(p), SFI_OK);
    sfi_probe_close(p);
    /* without a dialect: no hardware reset, no connect under reset, named */
    assert_int_equal(open_gdb(sfi_gdb_server_port(s.gs), NULL, &p), SFI_OK);
    assert_int_equal(sfi_probe_reset(p, SFI_RESET_HW), SFI_E_UNSUPPORTED);
    assert_int_equal(sfi_probe_connect(p, SFI_CONNECT_UNDER_RESET), SFI_E_UNSUPPORTED);
    assert_non_null(strstr(sfi_errdetail(ctx), "connect under reset"));
    sfi_probe_close(p);
    sfi_gdb_server_stop(s.gs);
    pthread_join(th, NULL);
    srv_close(&s);
}

/* Read-out protection is the device pack's data (cfg.rdp, which probe.lua fills from the
 * pack): with it a bus fault on protected flash is LOCKED and names the level; without it the
 * generic engine knows no device register and reports the bus fault as it is. */
static void test_rdp_from_cfg(void **state)
{
    (void)state;
    struct sfi_sim_cfg c;
    h753(&c);
    c.ob_default[0] = c.ob_default[1] = 0x1BC6BBF0; /* RDP 0xBB: level 1 */
    struct srv s;
    memset(&s, 0, sizeof s);
    assert_int_equal(sfi_sim_new(ctx, &c, &s.sim), SFI_OK);
    struct sfi_gdb_server_cfg gsc = {.port = 0};
    assert_int_equal(sfi_gdb_server_new(ctx, &gsc, s.sim, &s.gs), SFI_OK);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, serve, s.gs), 0);
    struct sfi_gdb_cfg g;
    memset(&g, 0, sizeof g);
    g.host = "127.0.0.1";
    g.port = sfi_gdb_server_port(s.gs);
    g.timeout_ms = 500;
    g.monitor_timeout_ms = 800;
    struct sfi_probe_cfg cfg = {.driver = "gdb", .gdb = &g, .connect = SFI_CONNECT_HOTPLUG};
    struct sfi_probe *p = NULL;
    uint8_t b[16];

    assert_int_equal(sfi_probe_open(ctx, &cfg, &p), SFI_OK);
    assert_int_equal(sfi_probe_read_mem(p, 0x08000000, b, sizeof b), SFI_E_TARGET);
    sfi_probe_close(p);

    cfg.rdp = (struct sfi_probe_rdp){.reg = 0x5200201C, .shift = 8, .bits = 8, .open = 0xAA,
                                     .flash_lo = 0x08000000, .flash_hi = 0x08200000};
    assert_int_equal(sfi_probe_open(ctx, &cfg, &p), SFI_OK);
    assert_int_equal(sfi_probe_read_mem(p, 0x08000000, b, sizeof b), SFI_E_LOCKED);
    assert_non_null(strstr(sfi_errdetail(ctx), "RDP 0xBB"));
    assert_int_equal(sfi_probe_read_mem(p, 0x60000000, b, 4), SFI_E_TARGET); /* not flash */
    sfi_probe_close(p);

    /* a field that does not fit a register, an empty flash range: refused, named */
    cfg.rdp.bits = 0;
    assert_int_equal(sfi_probe_open(ctx, &cfg, &p), SFI_E_INVALID);
    assert_non_null(strstr(sfi_errdetail(ctx), "probe rdp"));
    cfg.rdp.bits = 8;
    cfg.rdp.flash_lo = cfg.rdp.flash_hi;
    assert_int_equal(sfi_probe_open(ctx, &cfg, &p), SFI_E_INVALID);
    assert_non_null(strstr(sfi_errdetail(ctx), "flash range"));
    /* a level-0 value wider than its field would make every flash fault LOCKED */
    uint32_t open0 = cfg.rdp.open;
    cfg.rdp.flash_lo = 0x08000000;
    cfg.rdp.bits = 4;
    cfg.rdp.open = 0xAA;
    assert_int_equal(sfi_probe_open(ctx, &cfg, &p), SFI_E_INVALID);
    assert_non_null(strstr(sfi_errdetail(ctx), "does not fit a 4-bit field"));
    cfg.rdp.bits = 8;
    cfg.rdp.open = open0;

    sfi_gdb_server_stop(s.gs);
    pthread_join(th, NULL);
    srv_close(&s);
}

/* ---- scripted hostile servers --------------------------------------------------------------- */

enum behaviour {
    SILENT,       /* accepts, never answers */
    E01_ALL,      /* E01 to everything */
    CLOSE_MID,    /* half a reply, then closes */
    NOISE_FLOOD,  /* bytes that are not packets, forever */
    OUTPUT_FLOOD, /* O packets to a monitor command, forever */
    BAD_CSUM,     /* every reply with a wrong checksum */
    PKT_ZERO,     /* PacketSize=0 */
    PKT_HUGE,     /* PacketSize=40000000 (1 GiB), then a reply bigger than the driver's bound */
    MEMORY,       /* a small memory server: RLE replies, short reads, X refused */
    MEM_E01,      /* handshake fine, every memory access E01 */
};

struct fake {
    enum behaviour b;
    int lfd;
    unsigned port;
    pthread_t th;
    uint8_t mem[256];   /* at 0x20000000 */
    int saw_x, saw_m_write;
};

static void fsend(int fd, const char *payload, int good)
{
    uint8_t f[2048];
    size_t n = sfi_rsp_frame(payload, strlen(payload), f, sizeof f);
    if (!good)
        f[n - 1] = f[n - 1] == '0' ? '1' : '0';
    (void)send(fd, f, n, MSG_NOSIGNAL);
}

/* Frames payload as is (run-length sequences must not be escaped). */
static void fsend_raw(int fd, const char *payload)
{
    char f[2048];
    uint8_t sum = 0;
    for (const char *c = payload; *c; c++)
        sum = (uint8_t)(sum + (uint8_t)*c);
    int n = snprintf(f, sizeof f, "$%s#%02x", payload, sum);
    (void)send(fd, f, (size_t)n, MSG_NOSIGNAL);
}

static void answer(struct fake *fk, int fd, const char *req, size_t n)
{
    char buf[1100];
    if (strncmp(req, "qSupported", 10) == 0) {
        fsend(fd, fk->b == PKT_ZERO ? "PacketSize=0" : fk->b == PKT_HUGE ? "PacketSize=40000000"
                                                                           : "PacketSize=200",
              1);
        return;
    }
    if (fk->b == MEM_E01 && (req[0] == 'm' || req[0] == 'M' || req[0] == 'X')) {
        fsend(fd, "E01", 1);
        return;
    }
    if (req[0] == 'm') {
        unsigned addr = 0, len = 0;
        sscanf(req, "m%x,%x", &addr, &len);
        if (addr == 0xE000ED00u) {
            fsend(fd, "71c21f41", 1);
            return;
        }
        if (fk->b == PKT_HUGE) {
            /* 70000 hex digits: more than the driver accepts */
            char *big = malloc(140001);
            memset(big, '0', 140000);
            big[140000] = 0;
            uint8_t *f = malloc(140010);
            size_t k = sfi_rsp_frame(big, 140000, f, 140010);
            (void)send(fd, f, k, MSG_NOSIGNAL);
            free(big);
            free(f);
            return;
        }
        if (addr < 0x20000000u || addr + len > 0x20000000u + sizeof fk->mem) {
            fsend(fd, "E01", 1);
            return;
        }
        if (len > 8)
            len = 8; /* short reads */
        size_t off = addr - 0x20000000u;
        /* runs of equal bytes go out run-length encoded, as gdbserver does */
        size_t o = 0;
        char hex[64];
        sfi_hex_encode(fk->mem + off, len, hex);
        for (size_t i = 0; i < 2 * len;) {
            size_t j = i;
            while (j < 2 * len && hex[j] == hex[i] && j - i < 40)
                j++;
            size_t run = j - i;
            if (run >= 4 && run - 1 != 6 && run - 1 != 7) {
                buf[o++] = hex[i];
                buf[o++] = '*';
                buf[o++] = (char)(run - 1 + 29);
            } else {
                memcpy(buf + o, hex + i, run);
                o += run;
            }
            i = j;
        }
        buf[o] = 0;
        fsend_raw(fd, buf);
        return;
    }
    if (req[0] == 'X') {
        fk->saw_x = 1;
        fsend(fd, "", 1); /* refused */
        return;
    }
    if (req[0] == 'M') {
        unsigned addr = 0, len = 0;
        fk->saw_m_write = 1;
        sscanf(req, "M%x,%x:", &addr, &len);
        const char *hex = strchr(req, ':');
        if (hex && addr >= 0x20000000u && addr + len <= 0x20000000u + sizeof fk->mem &&
            (size_t)(req + n - hex - 1) == 2 * len)
            sfi_hex_decode(hex + 1, len, fk->mem + (addr - 0x20000000u));
        fsend(fd, "OK", 1);
        return;
    }
    if (strncmp(req, "qRcmd,", 6) == 0 && fk->b == OUTPUT_FLOOD) {
        for (int i = 0; i < 100000; i++) {
            fsend(fd, "O6c6f6f700a", 1); /* "loop\n" */
            if (i % 64 == 0) {
                struct pollfd pfd = {.fd = fd, .events = POLLOUT};
                if (poll(&pfd, 1, 2000) <= 0)
                    return;
            }
        }
        return;
    }
    if (strncmp(req, "QStartNoAckMode", 15) == 0) {
        fsend(fd, "", 1); /* stays in ack mode */
        return;
    }
    fsend(fd, "S05", 1);
}

static void *fake_main(void *arg)
{
    struct fake *fk = arg;
    struct pollfd pl = {.fd = fk->lfd, .events = POLLIN};
    if (poll(&pl, 1, 5000) <= 0)
        return NULL;
    int fd = accept(fk->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    uint8_t in[4096], rb[512];
    struct sfi_rsp_dec d;
    sfi_rsp_dec_init(&d, in, sizeof in);
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (fk->b == NOISE_FLOOD) {
            memset(rb, 'n', sizeof rb);
            if (send(fd, rb, sizeof rb, MSG_NOSIGNAL) <= 0)
                break;
            continue;
        }
        if (poll(&pfd, 1, 3000) <= 0)
            break;
        ssize_t k = recv(fd, rb, sizeof rb, 0);
        if (k <= 0)
            break;
        for (ssize_t i = 0; i < k; i++) {
            enum sfi_rsp_event ev = sfi_rsp_feed(&d, rb[i]);
            if (ev == SFI_RSP_NAK && fk->b == BAD_CSUM)
                fsend(fd, "PacketSize=200", 0); /* sent again, as wrong as before */
            if (ev != SFI_RSP_PACKET)
                continue;
            if (fk->b == SILENT)
                continue;
            (void)send(fd, "+", 1, MSG_NOSIGNAL);
            if (fk->b == E01_ALL) {
                fsend(fd, "E01", 1);
            } else if (fk->b == CLOSE_MID) {
                (void)send(fd, "$PacketSi", 9, MSG_NOSIGNAL);
                goto out;
            } else if (fk->b == BAD_CSUM) {
                fsend(fd, "PacketSize=200", 0);
            } else {
                in[d.len < sizeof in ? d.len : sizeof in - 1] = 0;
                answer(fk, fd, (const char *)d.buf, d.len);
            }
        }
    }
out:
    close(fd);
    return NULL;
}

static void fake_start(struct fake *fk, enum behaviour b)
{
    memset(fk, 0, sizeof *fk);
    fk->b = b;
    for (size_t i = 0; i < sizeof fk->mem; i++)
        fk->mem[i] = i < 64 ? 0 : (uint8_t)i;
    fk->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(fk->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fk->lfd, 1), 0);
    getsockname(fk->lfd, (struct sockaddr *)&sa, &sl);
    fk->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&fk->th, NULL, fake_main, fk), 0);
}

static void fake_stop(struct fake *fk)
{
    shutdown(fk->lfd, SHUT_RDWR);
    pthread_join(fk->th, NULL);
    close(fk->lfd);
}

static void expect_open_fails(enum behaviour b, int rc, const char *text)
{
    struct fake fk;
    struct sfi_probe *p = NULL;
    fake_start(&fk, b);
    uint64_t t0 = sfi_now_ms();
    int got = open_gdb(fk.port, NULL, &p);
    if (got != rc)
        fail_msg("behaviour %d: %s: %s", (int)b, sfi_errname(got), sfi_errdetail(ctx));
    assert_true(sfi_now_ms() - t0 < 3000); /* bounded: no hang */
    if (strstr(sfi_errdetail(ctx), text) == NULL)
        fail_msg("'%s' not in '%s'", text, sfi_errdetail(ctx));
    assert_null(p);
    fake_stop(&fk);
}

static void test_hostile_servers(void **state)
{
    (void)state;
    expect_open_fails(SILENT, SFI_E_TIMEOUT, "did not answer in time");
    expect_open_fails(E01_ALL, SFI_E_PROTOCOL, "refused qSupported (E01)");
    expect_open_fails(CLOSE_MID, SFI_E_NO_DEVICE, "closed the connection");
    expect_open_fails(NOISE_FLOOD, SFI_E_PROTOCOL, "never acknowledges");
    expect_open_fails(BAD_CSUM, SFI_E_PROTOCOL, "corrupt packet");
    expect_open_fails(PKT_ZERO, SFI_E_PROTOCOL, "PacketSize of 0");
    /* no server at all */
    struct sfi_probe *p = NULL;
    struct fake fk;
    fake_start(&fk, SILENT);
    unsigned port = fk.port;
    fake_stop(&fk);
    assert_int_equal(open_gdb(port, NULL, &p), SFI_E_NO_DEVICE);
    assert_non_null(strstr(sfi_errdetail(ctx), "no debug server"));
}

static void test_huge_packet_size_bounded(void **state)
{
    (void)state;
    struct fake fk;
    struct sfi_probe *p = NULL;
    fake_start(&fk, PKT_HUGE);
    assert_int_equal(open_gdb(fk.port, NULL, &p), SFI_OK);
    uint8_t b[16];
    /* the server's reply is larger than any packet the driver takes: an error, no growth */
    assert_int_equal(sfi_probe_read_mem(p, 0x20000000, b, sizeof b), SFI_E_PROTOCOL);
    assert_non_null(strstr(sfi_errdetail(ctx), "longer than"));
    sfi_probe_close(p);
    fake_stop(&fk);
}

static void test_memory_quirks(void **state)
{
    (void)state;
    struct fake fk;
    struct sfi_probe *p = NULL;
    fake_start(&fk, MEMORY);
    int rc = open_gdb(fk.port, NULL, &p);
    if (rc != SFI_OK)
        fail_msg("%s", sfi_errdetail(ctx));
    /* run-length encoded and short replies put back together */
    uint8_t b[200];
    assert_int_equal(sfi_probe_read_mem(p, 0x20000000, b, sizeof b), SFI_OK);
    assert_memory_equal(b, fk.mem, sizeof b);
    /* X refused: M instead, and the data arrives */
    uint8_t w[40];
    for (size_t i = 0; i < sizeof w; i++)
        w[i] = (uint8_t)(0xA0 + i);
    assert_int_equal(sfi_probe_write_mem(p, 0x20000010, w, sizeof w), SFI_OK);
    assert_true(fk.saw_x);
    assert_true(fk.saw_m_write);
    assert_memory_equal(fk.mem + 0x10, w, sizeof w);
    /* a bus fault while the target still answers CPUID */
    assert_int_equal(sfi_probe_read_mem(p, 0x30000000, b, 4), SFI_E_TARGET);
    /* a monitor command the server does not know */
    sfi_probe_close(p);
    fake_stop(&fk);
}

static void test_target_gone(void **state)
{
    (void)state;
    struct fake fk;
    struct sfi_probe *p = NULL;
    fake_start(&fk, MEM_E01);
    /* the server answers but no memory read works: no target */
    assert_int_equal(open_gdb(fk.port, NULL, &p), SFI_E_NO_DEVICE);
    assert_non_null(strstr(sfi_errdetail(ctx), "target does not"));
    fake_stop(&fk);
}

static void test_output_flood(void **state)
{
    (void)state;
    struct fake fk;
    struct sfi_probe *p = NULL;
    struct sfi_gdb_cfg g;
    memset(&g, 0, sizeof g);
    g.reset[SFI_RESET_SW] = "reset run";
    fake_start(&fk, OUTPUT_FLOOD);
    assert_int_equal(open_gdb(fk.port, &g, &p), SFI_OK);
    uint64_t t0 = sfi_now_ms();
    assert_int_equal(sfi_probe_reset(p, SFI_RESET_SW), SFI_E_TIMEOUT);
    assert_true(sfi_now_ms() - t0 < 3000);
    sfi_probe_close(p);
    fake_stop(&fk);
}

int main(void)
{
    if (sfi_ctx_new(&ctx) != SFI_OK)
        return 1;
    sfi_log_set_level(ctx, SFI_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_known),
        cmocka_unit_test(test_frame_roundtrip_escapes),
        cmocka_unit_test(test_decoder_events),
        cmocka_unit_test(test_hex_and_errors),
        cmocka_unit_test(test_server_requests),
        cmocka_unit_test(test_driver_against_sim_server),
        cmocka_unit_test(test_rdp_from_cfg),
        cmocka_unit_test(test_hostile_servers),
        cmocka_unit_test(test_huge_packet_size_bounded),
        cmocka_unit_test(test_memory_quirks),
        cmocka_unit_test(test_target_gone),
        cmocka_unit_test(test_output_flood),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sfi_ctx_free(ctx);
    return rc;
}
