/* test_stlink_tcp.c: the stlink-server TCP client against the TCP server on an ephemeral
 * loopback port (server in a thread): listing, opening by serial, memory over TCP, and the
 * failure cases: closed mid-reply, short reply, silence, TCP_BUSY, unknown statuses, a
 * client vanishing mid-command, no server at all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "sfi/probe.h"
#include "sfi/stlink.h"
#include "stlink_ramtarget.h"

#define SERIAL "0669FF535155878281123456"

struct srvfx {
    struct sfi_ctx *sctx, *ctx; /* server thread's and client's contexts */
    struct ramtarget *t;
    struct sfi_stlink_server *srv;
    struct sfi_stlink_tcpserver *ts;
    pthread_t th;
    int run_rc;
};

static void *server_main(void *arg)
{
    struct srvfx *f = arg;
    f->run_rc = sfi_stlink_tcpserver_run(f->ts);
    return NULL;
}

static struct srvfx *start(enum sfi_stlink_tcp_fault fault, unsigned at, uint32_t status)
{
    struct srvfx *f = calloc(1, sizeof *f);
    assert_int_equal(sfi_ctx_new(&f->sctx), SFI_OK);
    assert_int_equal(sfi_ctx_new(&f->ctx), SFI_OK);
    sfi_log_set_level(f->sctx, SFI_LOG_WARN);
    f->t = rt_new();
    struct sfi_stlink_server_cfg scfg = {.serial = SERIAL, .pid = 0x3754};
    assert_int_equal(sfi_stlink_server_new(f->sctx, &scfg, &rt_ops, f->t, &f->srv), SFI_OK);
    struct sfi_stlink_tcpserver_cfg cfg = {
        .port = 0, .fault = fault, .fault_at = at, .fault_status = status};
    assert_int_equal(sfi_stlink_tcpserver_new(f->sctx, &cfg, f->srv, &f->ts), SFI_OK);
    assert_true(sfi_stlink_tcpserver_port(f->ts) > 0);
    assert_int_equal(pthread_create(&f->th, NULL, server_main, f), 0);
    return f;
}

static void stop(struct srvfx *f)
{
    sfi_stlink_tcpserver_stop(f->ts);
    pthread_join(f->th, NULL);
    assert_int_equal(f->run_rc, SFI_OK);
    sfi_stlink_tcpserver_free(f->ts);
    sfi_stlink_server_free(f->srv);
    rt_free(f->t);
    sfi_ctx_free(f->ctx);
    sfi_ctx_free(f->sctx);
    free(f);
}

static struct sfi_stlink_tcp_cfg cfg_of(struct srvfx *f, const char *serial, unsigned tmo)
{
    return (struct sfi_stlink_tcp_cfg){.port = sfi_stlink_tcpserver_port(f->ts),
                                       .serial = serial, .timeout_ms = tmo};
}

static int open_session(struct srvfx *f, unsigned tmo, struct sfi_stlink **s)
{
    struct sfi_stlink_tcp_cfg cfg = cfg_of(f, SERIAL, tmo);
    struct sfi_stlink_transport *t;
    int rc = sfi_stlink_tcp_open(f->ctx, &cfg, &t);
    if (rc != SFI_OK)
        return rc;
    rc = sfi_stlink_open(f->ctx, t, s);
    if (rc == SFI_OK)
        sfi_stlink_set_timeout(*s, tmo);
    return rc;
}

struct listing {
    int n;
    struct sfi_stlink_info info;
};

static void on_found(void *ud, const struct sfi_stlink_info *info)
{
    struct listing *l = ud;
    l->n++;
    l->info = *info;
}

static void test_tcp_list_and_session(void **state)
{
    (void)state;
    struct srvfx *f = start(SFI_STLINK_TCP_FAULT_NONE, 0, 0);
    struct listing l = {0};
    struct sfi_stlink_tcp_cfg cfg = cfg_of(f, NULL, 1000);
    assert_int_equal(sfi_stlink_tcp_list(f->ctx, &cfg, on_found, &l), SFI_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.info.serial, SERIAL);
    assert_int_equal(l.info.pid, 0x3754);
    assert_string_equal(l.info.version, "V3J7S0");

    struct sfi_stlink *s;
    assert_int_equal(open_session(f, 1000, &s), SFI_OK);
    assert_int_equal(sfi_stlink_transport_of(s)->server_api, 2);
    assert_string_equal(sfi_stlink_transport_of(s)->serial, SERIAL);
    assert_int_equal(sfi_stlink_leave_mode(s), SFI_OK);
    assert_int_equal(sfi_stlink_enter_swd(s), SFI_OK);
    uint32_t id;
    assert_int_equal(sfi_stlink_idcode(s, &id), SFI_OK);
    assert_int_equal(id, 0x6BA02477u);
    static uint8_t w[10000], r[10000];
    for (size_t i = 0; i < sizeof w; i++)
        w[i] = (uint8_t)(i * 13 + 5);
    assert_int_equal(sfi_stlink_write_mem(s, RT_SRAM + 2, w, sizeof w, 32), SFI_OK);
    assert_int_equal(sfi_stlink_read_mem(s, RT_SRAM + 2, r, sizeof r, 32), SFI_OK);
    assert_memory_equal(r, w, sizeof w);
    assert_int_equal(sfi_stlink_read_mem(s, 0x60000000u, r, 8, 32), SFI_E_TARGET);
    /* an unknown ST-LINK status travels through the server to the client */
    f->t->status_next = 0x42;
    assert_int_equal(sfi_stlink_read_mem(s, RT_SRAM, r, 8, 32), SFI_E_PROTOCOL);
    assert_non_null(strstr(sfi_errdetail(f->ctx), "0x42"));
    sfi_stlink_close(s);

    /* serial selection */
    struct sfi_stlink_transport *t;
    cfg = cfg_of(f, "NOPE", 1000);
    assert_int_equal(sfi_stlink_tcp_open(f->ctx, &cfg, &t), SFI_E_NOT_FOUND);
    assert_non_null(strstr(sfi_errdetail(f->ctx), "NOPE"));
    stop(f);
}

static void test_tcp_close_mid_reply(void **state)
{
    (void)state;
    /* commands 1 and 2 are GET_VERSION / GET_VERSION_EX; the third is cut */
    struct srvfx *f = start(SFI_STLINK_TCP_FAULT_CLOSE_MID_REPLY, 3, 0);
    struct sfi_stlink *s;
    assert_int_equal(open_session(f, 1000, &s), SFI_OK);
    uint32_t id;
    assert_int_equal(sfi_stlink_idcode(s, &id), SFI_E_NO_DEVICE);
    assert_non_null(strstr(sfi_errdetail(f->ctx), "closed"));
    sfi_stlink_close(s);
    /* the server is still up for the next client */
    assert_int_equal(open_session(f, 1000, &s), SFI_OK);
    assert_int_equal(sfi_stlink_idcode(s, &id), SFI_OK);
    sfi_stlink_close(s);
    stop(f);
}

static void test_tcp_short_reply(void **state)
{
    (void)state;
    struct srvfx *f = start(SFI_STLINK_TCP_FAULT_SHORT_REPLY, 3, 0);
    struct sfi_stlink *s;
    assert_int_equal(open_session(f, 300, &s), SFI_OK);
    uint32_t id;
    assert_int_equal(sfi_stlink_idcode(s, &id), SFI_E_PROTOCOL);
    assert_non_null(strstr(sfi_errdetail(f->ctx), "short reply"));
    sfi_stlink_close(s);
    stop(f);
}

static void test_tcp_silence(void **state)
{
    (void)state;
    struct srvfx *f = start(SFI_STLINK_TCP_FAULT_SILENT, 3, 0);
    struct sfi_stlink *s;
    assert_int_equal(open_session(f, 200, &s), SFI_OK);
    uint32_t id;
    uint64_t t0 = sfi_now_ms();
    assert_int_equal(sfi_stlink_idcode(s, &id), SFI_E_TIMEOUT);
    uint64_t dt = sfi_now_ms() - t0;
    assert_true(dt >= 190 && dt < 2000);
    sfi_stlink_close(s);
    stop(f);
}

static void test_tcp_status_words(void **state)
{
    (void)state;
    struct srvfx *f = start(SFI_STLINK_TCP_FAULT_STATUS, 3, 0x2004);
    struct sfi_stlink *s;
    assert_int_equal(open_session(f, 1000, &s), SFI_OK);
    uint32_t id;
    assert_int_equal(sfi_stlink_idcode(s, &id), SFI_E_BUSY);
    assert_non_null(strstr(sfi_errdetail(f->ctx), "TCP_BUSY"));
    assert_int_equal(sfi_stlink_idcode(s, &id), SFI_OK); /* only that one command */
    sfi_stlink_close(s);
    stop(f);

    f = start(SFI_STLINK_TCP_FAULT_STATUS, 3, 0x4242);
    assert_int_equal(open_session(f, 1000, &s), SFI_OK);
    assert_int_equal(sfi_stlink_idcode(s, &id), SFI_E_PROTOCOL);
    assert_non_null(strstr(sfi_errdetail(f->ctx), "0x4242"));
    sfi_stlink_close(s);
    stop(f);
}

static int raw_connect(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void test_tcp_client_vanishes(void **state)
{
    (void)state;
    struct srvfx *f = start(SFI_STLINK_TCP_FAULT_NONE, 0, 0);
    unsigned port = sfi_stlink_tcpserver_port(f->ts);
    /* half a SEND_USB_CMD header, then gone */
    int fd = raw_connect(port);
    uint8_t half[12] = {0x05, 0, 0, 0, 0, 1};
    assert_int_equal(send(fd, half, sizeof half, 0), (ssize_t)sizeof half);
    close(fd);
    /* a write announcing 4096 data bytes that never come */
    fd = raw_connect(port);
    uint8_t hdr[32] = {0x05};
    hdr[8] = 0xF2;
    hdr[9] = 0x08;
    hdr[29] = 0x10;
    assert_int_equal(send(fd, hdr, sizeof hdr, 0), (ssize_t)sizeof hdr);
    close(fd);
    /* garbage request code */
    fd = raw_connect(port);
    uint8_t junk = 0x77;
    assert_int_equal(send(fd, &junk, 1, 0), 1);
    close(fd);
    /* oversize data size is refused without reading it */
    fd = raw_connect(port);
    uint8_t big[32] = {0x05};
    big[31] = 0x7F;
    assert_int_equal(send(fd, big, sizeof big, 0), (ssize_t)sizeof big);
    uint8_t b;
    assert_true(recv(fd, &b, 1, 0) <= 0); /* dropped */
    close(fd);
    struct sfi_stlink *s;
    assert_int_equal(open_session(f, 1000, &s), SFI_OK);
    uint32_t id;
    assert_int_equal(sfi_stlink_idcode(s, &id), SFI_OK);
    sfi_stlink_close(s);
    stop(f);
}

static void test_tcp_no_server(void **state)
{
    (void)state;
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    /* take a free port, then release it so nobody listens there */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    struct sfi_stlink_tcp_cfg cfg = {.port = ntohs(sa.sin_port), .timeout_ms = 500};
    struct sfi_stlink_transport *t;
    assert_int_equal(sfi_stlink_tcp_open(ctx, &cfg, &t), SFI_E_NO_DEVICE);
    assert_non_null(strstr(sfi_errdetail(ctx), "no stlink-server"));
    cfg.host = "not-an-address";
    assert_int_equal(sfi_stlink_tcp_open(ctx, &cfg, &t), SFI_E_INVALID);
    sfi_ctx_free(ctx);
}

/* The stlink-server address: the defaults (127.0.0.1:7184) and the range check live in one
 * function, which open, list and the probe driver use. */
static void test_tcp_addr_defaults(void **state)
{
    (void)state;
    struct sfi_ctx *ctx;
    assert_int_equal(sfi_ctx_new(&ctx), SFI_OK);
    const char *host = NULL;
    unsigned port = 0;
    assert_int_equal(sfi_stlink_tcp_addr(ctx, NULL, &host, &port), SFI_OK);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 7184);
    struct sfi_stlink_tcp_cfg cfg = {.host = "10.0.0.2", .port = 7200};
    assert_int_equal(sfi_stlink_tcp_addr(ctx, &cfg, &host, &port), SFI_OK);
    assert_string_equal(host, "10.0.0.2");
    assert_int_equal(port, 7200);
    cfg.port = 70000;
    assert_int_equal(sfi_stlink_tcp_addr(ctx, &cfg, &host, &port), SFI_E_INVALID);
    assert_non_null(strstr(sfi_errdetail(ctx), "10.0.0.2:70000"));
    /* the probe driver refuses the same port the same way, before any traffic */
    struct sfi_probe_cfg pc = {.driver = "stlink-tcp", .tcp_port = 70000};
    struct sfi_probe *p = NULL;
    assert_int_equal(sfi_probe_open(ctx, &pc, &p), SFI_E_INVALID);
    assert_non_null(strstr(sfi_errdetail(ctx), "127.0.0.1:70000"));
    sfi_ctx_free(ctx);
}

static void test_tcp_port_in_use(void **state)
{
    (void)state;
    struct srvfx *f = start(SFI_STLINK_TCP_FAULT_NONE, 0, 0);
    struct sfi_stlink_tcpserver_cfg cfg = {.port = sfi_stlink_tcpserver_port(f->ts)};
    struct sfi_stlink_tcpserver *ts2;
    assert_int_equal(sfi_stlink_tcpserver_new(f->ctx, &cfg, f->srv, &ts2), SFI_E_BUSY);
    stop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_list_and_session), cmocka_unit_test(test_tcp_close_mid_reply),
        cmocka_unit_test(test_tcp_short_reply),       cmocka_unit_test(test_tcp_silence),
        cmocka_unit_test(test_tcp_status_words),      cmocka_unit_test(test_tcp_client_vanishes),
        cmocka_unit_test(test_tcp_no_server),         cmocka_unit_test(test_tcp_port_in_use),
        cmocka_unit_test(test_tcp_addr_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
