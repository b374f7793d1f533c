/* test_trace.c: the ST-LINK protocol table against the simulated probe's replies; the capture
 * reader on frames built here (TCP in order, retransmitted, reordered, overlapping, with a
 * lost segment, caught mid-way; every link type it knows; usbmon and USBPcap with other
 * devices mixed in; its memory limits); the recorder (TCP and USB sessions read back); and
 * bad files (missing, not a capture, unknown link type, cut short). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <pcap/pcap.h>

#include "sfi/bytes.h"
#include "sfi/stlink.h"
#include "sfi/stlink_proto.h"
#include "sfi/stlink_server.h"
#include "sfi/trace.h"
#include "stlink/usb_int.h"

static struct sfi_ctx *ctx;
static char tmpdir[64];

/* ---- a simulated probe target: memory reads give the low address byte ----------------------- */

static unsigned t_read(void *ud, uint32_t addr, uint8_t *buf, size_t n, unsigned width)
{
    (void)ud;
    (void)width;
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(addr + i);
    return SFI_STLINK_OK;
}
static unsigned t_write(void *ud, uint32_t addr, const uint8_t *buf, size_t n, unsigned width)
{
    (void)ud, (void)addr, (void)buf, (void)n, (void)width;
    return SFI_STLINK_OK;
}
static unsigned t_rdbg(void *ud, uint32_t addr, uint32_t *v)
{
    (void)ud;
    *v = addr == 0x5C001000u ? 0x20036450u : 0;
    return SFI_STLINK_OK;
}
static unsigned t_wdbg(void *ud, uint32_t addr, uint32_t v)
{
    (void)ud, (void)addr, (void)v;
    return SFI_STLINK_OK;
}
static unsigned t_rreg(void *ud, unsigned r, uint32_t *v)
{
    (void)ud, (void)r;
    *v = 0;
    return SFI_STLINK_OK;
}
static unsigned t_wreg(void *ud, unsigned r, uint32_t v)
{
    (void)ud, (void)r, (void)v;
    return SFI_STLINK_OK;
}
static unsigned t_ok(void *ud)
{
    (void)ud;
    return SFI_STLINK_OK;
}
static unsigned t_nrst(void *ud, unsigned s)
{
    (void)ud, (void)s;
    return SFI_STLINK_OK;
}
static unsigned t_idcode(void *ud, uint32_t *v)
{
    (void)ud;
    *v = 0x6BA02477u;
    return SFI_STLINK_OK;
}
static unsigned t_rdap(void *ud, unsigned port, unsigned addr, uint32_t *v)
{
    (void)ud, (void)port, (void)addr;
    *v = 0;
    return SFI_STLINK_OK;
}
static unsigned t_wdap(void *ud, unsigned port, unsigned addr, uint32_t v)
{
    (void)ud, (void)port, (void)addr, (void)v;
    return SFI_STLINK_OK;
}

static const struct sfi_stlink_target_ops tops = {
    .read_mem = t_read, .write_mem = t_write, .read_dbg = t_rdbg, .write_dbg = t_wdbg,
    .read_core_reg = t_rreg, .write_core_reg = t_wreg, .reset_sys = t_ok, .drive_nrst = t_nrst,
    .idcode = t_idcode, .read_dap = t_rdap, .write_dap = t_wdap,
};

/* ---- 1. the table against the simulated probe -------------------------------------------------- */

static void test_table_matches_sim(void **state)
{
    (void)state;
    struct sfi_stlink_server *srv;
    assert_int_equal(sfi_stlink_server_new(ctx, NULL, &tops, NULL, &srv), SFI_OK);
    size_t n;
    const struct sfi_stlink_cmd *t = sfi_stlink_cmd_table(&n);
    static uint8_t out[SFI_STLINK_BUF_SIZE + 16], reply[SFI_STLINK_BUF_SIZE + 16];
    unsigned checked = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t cdb[16] = {t[i].cmd, t[i].sub};
        if (t[i].args == SFI_STLINK_ARGS_MEM) {
            sfi_put_le32(cdb + 2, 0x24000000u);
            sfi_put_le16(cdb + 6, t[i].width == 8 ? 1 : 8);
        }
        if (t[i].args == SFI_STLINK_ARGS_BYTE && t[i].op == SFI_STLINK_OP_ENTER)
            cdb[2] = SFI_STLINK_ENTER_SWD_NO_RESET;
        if (t[i].args == SFI_STLINK_ARGS_COM_FREQ)
            sfi_put_le32(cdb + 4, 1000);
        size_t olen = sfi_stlink_cmd_out_len(&t[i], cdb);
        assert_int_equal(olen, sfi_stlink_server_out_len(cdb));
        size_t rlen = 0;
        int rc = sfi_stlink_server_handle(srv, cdb, out, olen, reply, sizeof reply, &rlen);
        if (rc == SFI_E_UNSUPPORTED) { /* API v1, SWIM, RW_MISC: refused by name */
            assert_non_null(strstr(sfi_errdetail(ctx), t[i].name));
            continue;
        }
        assert_int_equal(rc, SFI_OK);
        if (rlen != sfi_stlink_cmd_in_len(&t[i], cdb))
            fail_msg("%s: simulated probe replies %zu bytes, table says %zu", t[i].name, rlen,
                     sfi_stlink_cmd_in_len(&t[i], cdb));
        checked++;
    }
    assert_true(checked >= 30);
    /* the table itself against the sizes the protocol documents (probe-target.md: OpenOCD's
     * stlink_usb.c): a wrong entry would otherwise agree with itself on both sides */
    static const struct { uint8_t cmd, sub; size_t in; } known[] = {
        {0xFB, 0x00, 12}, {0xF2, 0x31, 12}, {0xF2, 0x3A, 88}, {0xF2, 0x3E, 12}, {0xF2, 0x62, 52},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        uint8_t cdb[16] = {known[i].cmd, known[i].sub};
        const struct sfi_stlink_cmd *c = sfi_stlink_cmd_find(cdb);
        assert_non_null(c);
        if (sfi_stlink_cmd_in_len(c, cdb) != known[i].in)
            fail_msg("%s: table says %zu reply bytes, the protocol %zu", c->name,
                     sfi_stlink_cmd_in_len(c, cdb), known[i].in);
    }
    sfi_stlink_server_free(srv);
    /* lookups */
    uint8_t cdb[16] = {0xF2, 0x07};
    char buf[32];
    assert_string_equal(sfi_stlink_cmd_label(cdb, buf, sizeof buf), "READMEM_32BIT");
    cdb[1] = 0x99;
    assert_null(sfi_stlink_cmd_find(cdb));
    assert_string_equal(sfi_stlink_cmd_label(cdb, buf, sizeof buf), "F2 99");
    assert_string_equal(sfi_stlink_srv_find(3)->name, "OPEN_DEV");
    uint8_t req[32] = {5};
    req[8] = 0xF2;
    req[9] = 0x08;
    sfi_put_le32(req + 28, 100);
    assert_int_equal(sfi_stlink_srv_req_size(req, 32), 132); /* OUT data follows */
    req[24] = 1;
    assert_int_equal(sfi_stlink_srv_req_size(req, 32), 32);
    assert_int_equal(sfi_stlink_srv_rep_size(req), 104);
    req[24] = 2;
    assert_int_equal(sfi_stlink_srv_req_size(req, 32), (size_t)-1);
}

/* ---- a conversation, as stlink-server byte streams ------------------------------------------- */

struct conv {
    uint8_t c[8192], s[8192]; /* client and server streams */
    size_t cn, sn;
    size_t cut_c[64], cut_s[64]; /* message boundaries: one segment each */
    unsigned ncc, nsc;
};

static void c_put(struct conv *v, const uint8_t *p, size_t n)
{
    memcpy(v->c + v->cn, p, n);
    v->cn += n;
    v->cut_c[v->ncc++] = v->cn;
}

static void s_put(struct conv *v, const uint8_t *p, size_t n)
{
    memcpy(v->s + v->sn, p, n);
    v->sn += n;
    v->cut_s[v->nsc++] = v->sn;
}

static void usb_cmd(struct conv *v, const uint8_t cdb[16], int dir, const uint8_t *out,
                    size_t olen, const uint8_t *in, size_t ilen)
{
    uint8_t h[32 + 64];
    memset(h, 0, sizeof h);
    h[0] = 5;
    sfi_put_le32(h + 4, 256);
    memcpy(h + 8, cdb, 16);
    h[24] = (uint8_t)dir;
    sfi_put_le32(h + 28, (uint32_t)(dir == 0 ? olen : ilen));
    if (dir == 0)
        memcpy(h + 32, out, olen);
    c_put(v, h, 32 + (dir == 0 ? olen : 0));
    uint8_t r[4 + 64] = {1};
    if (ilen > 0)
        memcpy(r + 4, in, ilen);
    s_put(v, r, 4 + ilen);
}

/* GET_SERVER_VERSION, READMEM_32 DBGMCU_IDCODE, GETLASTRWSTATUS2, WRITEMEM_32 8 bytes, status,
 * WRITEDEBUGREG DHCSR, READDEBUGREG DHCSR: 7 records. */
static void conversation(struct conv *v)
{
    memset(v, 0, sizeof *v);
    uint8_t gv[4] = {6, 1, 0, 0}, gvr[16] = {2, 0, 0, 0, 2, 0, 0, 0, 1};
    c_put(v, gv, 4);
    s_put(v, gvr, 16);
    uint8_t cdb[16] = {0xF2, 0x07}, idc[4] = {0x50, 0x64, 0x03, 0x20}, st[12] = {0x80};
    sfi_put_le32(cdb + 2, 0x5C001000u);
    sfi_put_le16(cdb + 6, 4);
    usb_cmd(v, cdb, 1, NULL, 0, idc, 4);
    uint8_t s2[16] = {0xF2, 0x3E};
    usb_cmd(v, s2, 1, NULL, 0, st, 12);
    uint8_t w[16] = {0xF2, 0x08}, data[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    sfi_put_le32(w + 2, 0x24000000u);
    sfi_put_le16(w + 6, 8);
    usb_cmd(v, w, 0, data, 8, NULL, 0);
    usb_cmd(v, s2, 1, NULL, 0, st, 12);
    uint8_t wd[16] = {0xF2, 0x35}, ok2[2] = {0x80};
    sfi_put_le32(wd + 2, 0xE000EDF0u);
    sfi_put_le32(wd + 6, 0xA05F0003u);
    usb_cmd(v, wd, 1, NULL, 0, ok2, 2);
    uint8_t rd[16] = {0xF2, 0x36}, rv[8] = {0x80, 0, 0, 0, 0x03, 0x00, 0x03, 0x00};
    sfi_put_le32(rd + 2, 0xE000EDF0u);
    usb_cmd(v, rd, 1, NULL, 0, rv, 8);
}

/* One Ethernet/IPv4/TCP frame. */
static size_t eth_tcp(uint8_t *f, int from_client, uint32_t seq, uint32_t ack, unsigned flags,
                      const uint8_t *p, size_t n)
{
    memset(f, 0, 54);
    sfi_put_be16(f + 12, 0x0800);
    uint8_t *ip = f + 14, *tcp = f + 34;
    ip[0] = 0x45;
    sfi_put_be16(ip + 2, (unsigned)(40 + n));
    ip[8] = 64;
    ip[9] = 6;
    sfi_put_be32(ip + 12, from_client ? 0x7F000001u : 0x7F000002u);
    sfi_put_be32(ip + 16, from_client ? 0x7F000002u : 0x7F000001u);
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

struct seg {
    int from_client;
    uint32_t seq, ack;
    unsigned flags;
    const uint8_t *p;
    size_t n;
};

/* The conversation as segments, alternating request and reply (lockstep). */
static unsigned segments(const struct conv *v, struct seg *out)
{
    unsigned k = 0;
    uint32_t cs = 1000, ss = 5000;
    size_t cpos = 0, spos = 0;
    out[k++] = (struct seg){1, cs - 1, 0, 0x02, NULL, 0};
    out[k++] = (struct seg){0, ss - 1, cs, 0x12, NULL, 0};
    for (unsigned i = 0; i < v->ncc; i++) {
        size_t cn = v->cut_c[i] - cpos, sn = v->cut_s[i] - spos;
        out[k++] = (struct seg){1, cs + (uint32_t)cpos, ss + (uint32_t)spos, 0x18, v->c + cpos, cn};
        cpos += cn;
        out[k++] = (struct seg){0, ss + (uint32_t)spos, cs + (uint32_t)cpos, 0x18, v->s + spos, sn};
        spos += sn;
    }
    return k;
}

static struct sfi_trace *reader(void)
{
    struct sfi_trace *tr;
    struct sfi_trace_opts o = {0};
    assert_int_equal(sfi_trace_new(ctx, &o, &tr), SFI_OK);
    return tr;
}

static void feed_seg(struct sfi_trace *tr, const struct seg *s)
{
    static uint8_t f[9000];
    size_t n = eth_tcp(f, s->from_client, s->seq, s->ack, s->flags, s->p, s->n);
    assert_int_equal(sfi_trace_feed_frame(tr, DLT_EN10MB, 1.0, f, n, n), SFI_OK);
}

struct summary {
    unsigned cmds, servers, gaps, notes;
    char names[32][32];
    uint32_t addr[32], value[32];
    int status[32];
};

static void drain(struct sfi_trace *tr, struct summary *s)
{
    memset(s, 0, sizeof *s);
    sfi_trace_feed_end(tr);
    const struct sfi_trace_rec *r;
    while (sfi_trace_next(tr, &r) == SFI_OK && r != NULL) {
        unsigned i = s->cmds + s->servers;
        if (r->kind == SFI_TRACE_GAP) {
            s->gaps++;
            continue;
        }
        if (r->kind == SFI_TRACE_NOTE) {
            s->notes++;
            continue;
        }
        if (i < 32) {
            snprintf(s->names[i], sizeof s->names[i], "%s",
                     r->kind == SFI_TRACE_SERVER ? r->req->name : r->cmd ? r->cmd->name : "?");
            s->addr[i] = r->addr;
            s->value[i] = r->value;
            s->status[i] = r->status;
        }
        if (r->kind == SFI_TRACE_CMD)
            s->cmds++;
        else
            s->servers++;
    }
}

static void check_full(const struct summary *s)
{
    assert_int_equal(s->servers, 1);
    assert_int_equal(s->cmds, 6);
    assert_int_equal(s->gaps, 0);
    assert_string_equal(s->names[0], "GET_SERVER_VERSION");
    assert_string_equal(s->names[1], "READMEM_32BIT");
    assert_int_equal(s->addr[1], 0x5C001000u);
    assert_int_equal(s->value[1], 0x20036450u);
    assert_string_equal(s->names[3], "WRITEMEM_32BIT");
    assert_int_equal(s->addr[3], 0x24000000u);
    assert_string_equal(s->names[5], "APIV2_WRITEDEBUGREG");
    assert_int_equal(s->value[5], 0xA05F0003u);
    assert_int_equal(s->status[5], 0x80);
    assert_string_equal(s->names[6], "APIV2_READDEBUGREG");
    assert_int_equal(s->value[6], 0x00030003u);
}

static void test_tcp_in_order_retransmit_reorder(void **state)
{
    (void)state;
    static struct conv v;
    static struct seg sg[128];
    conversation(&v);
    unsigned n = segments(&v, sg);
    struct summary s;

    struct sfi_trace *tr = reader();
    for (unsigned i = 0; i < n; i++)
        feed_seg(tr, &sg[i]);
    drain(tr, &s);
    check_full(&s);
    assert_int_equal(sfi_trace_stats(tr)->stlink_flows, 1);
    sfi_trace_close(tr);

    /* every data segment twice (retransmission) */
    tr = reader();
    for (unsigned i = 0; i < n; i++) {
        feed_seg(tr, &sg[i]);
        feed_seg(tr, &sg[i]);
    }
    drain(tr, &s);
    check_full(&s);
    sfi_trace_close(tr);

    /* client segments 2 and 3 swapped (reordered in the capture) */
    tr = reader();
    for (unsigned i = 0; i < n; i++) {
        unsigned j = i == 4 ? 6 : i == 6 ? 4 : i;
        feed_seg(tr, &sg[j]);
    }
    drain(tr, &s);
    check_full(&s);
    sfi_trace_close(tr);

    /* overlapping: each client segment re-sent with the previous one's last 3 bytes */
    tr = reader();
    for (unsigned i = 0; i < n; i++) {
        struct seg x = sg[i];
        if (x.from_client && x.n > 0 && i > 2) {
            x.seq -= 3;
            x.p -= 3;
            x.n += 3;
        }
        feed_seg(tr, &x);
    }
    drain(tr, &s);
    check_full(&s);
    sfi_trace_close(tr);

    /* split into 5-byte segments */
    tr = reader();
    for (unsigned i = 0; i < n; i++) {
        for (size_t off = 0; off < sg[i].n || off == 0; off += 5) {
            struct seg x = sg[i];
            x.seq += (uint32_t)off;
            x.p = sg[i].p ? sg[i].p + off : NULL;
            x.n = sg[i].n - off < 5 ? sg[i].n - off : 5;
            feed_seg(tr, &x);
            if (sg[i].n == 0)
                break;
        }
    }
    drain(tr, &s);
    check_full(&s);
    sfi_trace_close(tr);
}

static void test_tcp_gap_and_midway(void **state)
{
    (void)state;
    static struct conv v;
    static struct seg sg[128];
    conversation(&v);
    unsigned n = segments(&v, sg);
    struct summary s;

    /* the client's WRITEMEM_32 segment (index 8) never reaches the capture */
    struct sfi_trace *tr = reader();
    for (unsigned i = 0; i < n; i++)
        if (i != 8)
            feed_seg(tr, &sg[i]);
    drain(tr, &s);
    assert_int_equal(s.gaps, 1);
    /* the three commands after the gap are decoded after resynchronising */
    assert_true(s.cmds >= 3);
    assert_string_equal(s.names[s.cmds + s.servers - 1], "APIV2_READDEBUGREG");
    assert_int_equal(s.value[s.cmds + s.servers - 1], 0x00030003u);
    sfi_trace_close(tr);

    /* caught mid-way: no handshake, the first client segment starts 7 bytes into a request */
    tr = reader();
    for (unsigned i = 4; i < n; i++) {
        struct seg x = sg[i];
        if (i == 4) {
            x.seq += 7;
            x.p += 7;
            x.n -= 7;
        }
        feed_seg(tr, &x);
    }
    drain(tr, &s);
    assert_int_equal(s.gaps, 0);
    assert_true(s.cmds >= 4);
    assert_string_equal(s.names[s.cmds - 1], "APIV2_READDEBUGREG");
    assert_int_equal(s.value[s.cmds - 1], 0x00030003u);
    sfi_trace_close(tr);

    /* garbage from the client: a note, then the next request is found */
    tr = reader();
    for (unsigned i = 0; i < n; i++) {
        struct seg x = sg[i];
        if (i == 4) {
            static uint8_t junk[200];
            memset(junk, 0x77, 100);
            memcpy(junk + 100, x.p, x.n);
            x.p = junk;
            x.n += 100;
            x.seq -= 100; /* overlapping bytes already delivered: used once */
        }
        feed_seg(tr, &x);
    }
    drain(tr, &s);
    check_full(&s);
    sfi_trace_close(tr);
}

/* Other link types: the same IPv4 packet behind other headers, and IPv6 / VLAN. */
static void test_link_types(void **state)
{
    (void)state;
    static struct conv v;
    static struct seg sg[128];
    conversation(&v);
    unsigned n = segments(&v, sg);
    static const int dlts[] = {DLT_LINUX_SLL, 276 /* SLL2 */, DLT_NULL, DLT_LOOP, DLT_RAW,
                               228 /* IPV4 */, DLT_EN10MB /* VLAN */, 229 /* IPV6 */};
    for (size_t k = 0; k < sizeof dlts / sizeof dlts[0]; k++) {
        struct sfi_trace *tr = reader();
        for (unsigned i = 0; i < n; i++) {
            static uint8_t e[9000], f[9100];
            size_t en = eth_tcp(e, sg[i].from_client, sg[i].seq, sg[i].ack, sg[i].flags,
                                sg[i].p, sg[i].n);
            const uint8_t *ip = e + 14;
            size_t ipn = en - 14, fn = 0;
            int dlt = dlts[k];
            memset(f, 0, 64);
            if (k == 7) { /* IPv6: the same TCP segment */
                f[0] = 0x60;
                sfi_put_be16(f + 4, (unsigned)(ipn - 20));
                f[6] = 6;
                f[7] = 64;
                f[23] = sg[i].from_client ? 1 : 2;
                f[39] = sg[i].from_client ? 2 : 1;
                memcpy(f + 40, ip + 20, ipn - 20);
                fn = 40 + ipn - 20;
            } else if (dlt == DLT_LINUX_SLL) {
                sfi_put_be16(f + 14, 0x0800);
                memcpy(f + 16, ip, ipn);
                fn = 16 + ipn;
            } else if (dlt == 276) {
                sfi_put_be16(f, 0x0800);
                memcpy(f + 20, ip, ipn);
                fn = 20 + ipn;
            } else if (dlt == DLT_NULL || dlt == DLT_LOOP) {
                f[dlt == DLT_NULL ? 0 : 3] = 2;
                memcpy(f + 4, ip, ipn);
                fn = 4 + ipn;
            } else if (dlt == DLT_EN10MB) { /* 802.1Q tag */
                memcpy(f, e, 12);
                sfi_put_be16(f + 12, 0x8100);
                sfi_put_be16(f + 14, 42);
                sfi_put_be16(f + 16, 0x0800);
                memcpy(f + 18, ip, ipn);
                fn = 18 + ipn;
            } else {
                memcpy(f, ip, ipn);
                fn = ipn;
            }
            assert_int_equal(sfi_trace_feed_frame(tr, dlt, 0, f, fn, fn), SFI_OK);
        }
        struct summary s;
        drain(tr, &s);
        check_full(&s);
        sfi_trace_close(tr);
    }
}

/* ---- USB -------------------------------------------------------------------------------- */

static size_t usbmon(uint8_t *f, char type, unsigned xfer, unsigned ep, unsigned dev, int status,
                     const uint8_t *p, size_t n)
{
    memset(f, 0, 64);
    f[8] = (uint8_t)type;
    f[9] = (uint8_t)xfer;
    f[10] = (uint8_t)ep;
    f[11] = (uint8_t)dev;
    f[12] = 1;
    f[15] = n ? 0 : '<';
    sfi_put_le32(f + 28, (uint32_t)status);
    sfi_put_le32(f + 32, (uint32_t)n);
    sfi_put_le32(f + 36, (uint32_t)n);
    if (n > 0)
        memcpy(f + 64, p, n);
    return 64 + n;
}

static size_t usbpcap(uint8_t *f, int completion, unsigned xfer, unsigned ep, unsigned dev,
                      const uint8_t *p, size_t n)
{
    memset(f, 0, 27);
    sfi_put_le16(f, 27);
    f[16] = (uint8_t)completion;
    sfi_put_le16(f + 17, 1);
    sfi_put_le16(f + 19, (unsigned)dev);
    f[21] = (uint8_t)ep;
    f[22] = (uint8_t)xfer;
    sfi_put_le32(f + 23, (uint32_t)n);
    if (n > 0)
        memcpy(f + 27, p, n);
    return 27 + n;
}

/* The device emits CDB/data events; the mouse (dev 3) sends bulk junk. */
static void usb_session(struct sfi_trace *tr, int pcapng_usbpcap, int descriptor)
{
    static uint8_t f[9000];
    size_t n;
    int dlt = pcapng_usbpcap ? 249 : DLT_USB_LINUX_MMAPPED;
#define EV(sub, xfer, ep, dev, p, len)                                                           \
    do {                                                                                         \
        n = pcapng_usbpcap ? usbpcap(f, (sub) != 'S', xfer, ep, dev, p, len)                   \
                           : usbmon(f, sub, xfer, ep, dev, 0, p, len);                          \
        assert_int_equal(sfi_trace_feed_frame(tr, dlt, 0, f, n, n), SFI_OK);                    \
    } while (0)
    uint8_t mdesc[18] = {18, 1, 0, 2, 0, 0, 0, 8, 0x6D, 0x04, 0x2C, 0xC0};
    uint8_t sdesc[18] = {18, 1, 0, 2, 0, 0, 0, 64, 0x83, 0x04, 0x4F, 0x37};
    EV('C', 2, 0x80, 3, mdesc, 18);
    if (descriptor)
        EV('C', 2, 0x80, 2, sdesc, 18);
    uint8_t junk[16] = {0xF2, 0x07, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};
    EV('S', 3, 0x01, 3, junk, 16); /* looks like a command but the device is a mouse */
    uint8_t gv[16] = {0xF1}, gvr[6] = {0x30, 0x00, 0x83, 0x04, 0x4F, 0x37};
    EV('S', 3, 0x01, 2, gv, 16);
    EV('S', 3, 0x81, 2, NULL, 0);
    EV('C', 3, 0x81, 2, gvr, 6);
    uint8_t rd[16] = {0xF2, 0x07}, idc[4] = {0x50, 0x64, 0x03, 0x20};
    sfi_put_le32(rd + 2, 0x5C001000u);
    sfi_put_le16(rd + 6, 4);
    EV('S', 3, 0x01, 2, rd, 16);
    EV('C', 3, 0x81, 2, idc, 4);
    uint8_t wr[16] = {0xF2, 0x08}, data[16] = {0xF2, 0x07}; /* data that looks like a CDB */
    sfi_put_le32(wr + 2, 0x24000000u);
    sfi_put_le16(wr + 6, 16);
    EV('S', 3, 0x01, 2, wr, 16);
    EV('S', 3, 0x01, 2, data, 16);
    uint8_t ex[16] = {0xF2, 0x21};
    EV('S', 3, 0x01, 2, ex, 16);
#undef EV
}

static void test_usb(void **state)
{
    (void)state;
    for (int k = 0; k < 4; k++) {
        struct sfi_trace *tr = reader();
        usb_session(tr, k & 1, k < 2);
        struct summary s;
        drain(tr, &s);
        assert_int_equal(s.cmds, 4);
        assert_string_equal(s.names[0], "GET_VERSION");
        assert_string_equal(s.names[1], "READMEM_32BIT");
        assert_int_equal(s.value[1], 0x20036450u);
        assert_string_equal(s.names[2], "WRITEMEM_32BIT");
        assert_string_equal(s.names[3], "EXIT");
        const struct sfi_trace_stats *st = sfi_trace_stats(tr);
        assert_int_equal(st->stlink_devices, 1);
        assert_int_equal(st->usb_devices, 2);
        sfi_trace_close(tr);
    }
}

/* ---- limits --------------------------------------------------------------------------------- */

static void test_limits(void **state)
{
    (void)state;
    struct sfi_trace *tr;
    struct sfi_trace_opts o = {.all_ports = 1};
    assert_int_equal(sfi_trace_new(ctx, &o, &tr), SFI_OK);
    static uint8_t f[200];
    uint8_t req[4] = {6, 1, 0, 0};
    /* 200 connections: the table holds 64 */
    for (unsigned i = 0; i < 200; i++) {
        size_t n = eth_tcp(f, 1, 1, 0, 0x18, req, 4);
        sfi_put_be16(f + 34, 20000 + i);
        assert_int_equal(sfi_trace_feed_frame(tr, DLT_EN10MB, 0, f, n, n), SFI_OK);
    }
    const struct sfi_trace_stats *st = sfi_trace_stats(tr);
    assert_int_equal(st->tcp_flows, 64);
    assert_true(st->dropped >= 136);
    sfi_trace_close(tr);

    /* 10000 out-of-order segments that never fill their hole: held ones stay bounded and
     * come out behind a gap */
    tr = reader();
    static uint8_t big[1000];
    memset(big, 0x77, sizeof big);
    for (unsigned i = 0; i < 10000; i++) {
        size_t n = eth_tcp(f, 1, 1, 0, 0x02, NULL, 0);
        if (i == 0)
            assert_int_equal(sfi_trace_feed_frame(tr, DLT_EN10MB, 0, f, n, n), SFI_OK);
        static uint8_t g[1100];
        n = eth_tcp(g, 1, 5000 + i * 1000u, 0, 0x18, big, sizeof big);
        assert_int_equal(sfi_trace_feed_frame(tr, DLT_EN10MB, 0, g, n, n), SFI_OK);
    }
    struct summary s;
    drain(tr, &s);
    assert_true(s.gaps >= 1);
    assert_int_equal(s.cmds, 0);
    sfi_trace_close(tr);
}

/* ---- recorder ---------------------------------------------------------------------------- */

struct simusb {
    struct sfi_stlink_server *srv;
    uint8_t cdb[16];
    uint8_t reply[SFI_STLINK_BUF_SIZE + 16];
    size_t rlen;
    int want_out;
};

static int sim_bulk(void *h, unsigned char ep, unsigned char *buf, int len, int *done,
                    unsigned timeout_ms)
{
    struct simusb *u = h;
    (void)timeout_ms;
    if (!(ep & 0x80)) {
        if (u->want_out) {
            u->want_out = 0;
            sfi_stlink_server_handle(u->srv, u->cdb, buf, (size_t)len, u->reply,
                                     sizeof u->reply, &u->rlen);
        } else {
            memcpy(u->cdb, buf, 16);
            size_t o = sfi_stlink_server_out_len(u->cdb);
            if (o > 0)
                u->want_out = 1;
            else
                sfi_stlink_server_handle(u->srv, u->cdb, NULL, 0, u->reply, sizeof u->reply,
                                         &u->rlen);
        }
        *done = len;
        return 0;
    }
    size_t k = u->rlen < (size_t)len ? u->rlen : (size_t)len;
    memcpy(buf, u->reply, k);
    *done = (int)k;
    return 0;
}

static void test_record_usb_and_read_back(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/usb.pcap", tmpdir);
    struct sfi_trace_writer *w;
    assert_int_equal(sfi_trace_writer_open(ctx, path, SFI_TRACE_W_USB, &w), SFI_OK);
    struct simusb u;
    memset(&u, 0, sizeof u);
    assert_int_equal(sfi_stlink_server_new(ctx, NULL, &tops, NULL, &u.srv), SFI_OK);
    struct sfi_stlink_transport *t;
    assert_int_equal(sfi_stlink_usb_wrap(ctx, sim_bulk, NULL, &u, 0x374F, "X", &t), SFI_OK);
    t->record = w;
    sfi_trace_writer_usb_device(w, t->vid, t->pid);
    struct sfi_stlink *s;
    assert_int_equal(sfi_stlink_open(ctx, t, &s), SFI_OK);
    assert_int_equal(sfi_stlink_enter_swd(s), SFI_OK);
    uint8_t buf[3000];
    assert_int_equal(sfi_stlink_read_mem(s, 0x24000000u, buf, sizeof buf, 32), SFI_OK);
    memset(buf, 0x5A, sizeof buf);
    assert_int_equal(sfi_stlink_write_mem(s, 0x24001000u, buf, 64, 32), SFI_OK);
    sfi_stlink_close(s);
    sfi_stlink_server_free(u.srv);
    /* not there before close: written to a temporary name */
    assert_int_not_equal(access(path, F_OK), 0);
    sfi_trace_writer_close(w);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    struct sfi_trace *tr;
    assert_int_equal(sfi_trace_open(ctx, path, NULL, &tr), SFI_OK);
    assert_int_equal(sfi_trace_stats(tr)->linktype, DLT_USB_LINUX_MMAPPED);
    const struct sfi_trace_rec *r;
    unsigned reads = 0, writes = 0, total = 0;
    size_t bytes = 0;
    while (sfi_trace_next(tr, &r) == SFI_OK && r != NULL) {
        if (r->kind != SFI_TRACE_CMD)
            continue;
        total++;
        assert_true(r->replied);
        if (r->cmd->op == SFI_STLINK_OP_READ_MEM) {
            reads++;
            bytes += r->in_len;
            assert_int_equal(r->in[0], (uint8_t)r->addr); /* the target's pattern */
        }
        if (r->cmd->op == SFI_STLINK_OP_WRITE_MEM) {
            writes++;
            assert_int_equal(r->out_len, 64);
            assert_int_equal(r->out[63], 0x5A);
        }
    }
    assert_int_equal(reads, 3); /* 3000 bytes in 1 KiB TAR windows */
    assert_int_equal(bytes, 3000);
    assert_int_equal(writes, 1);
    assert_true(total >= 10);
    assert_int_equal(sfi_trace_stats(tr)->stlink_devices, 1);
    sfi_trace_close(tr);
}

static void test_record_tcp_and_bad_files(void **state)
{
    (void)state;
    char path[128], bad[160];
    snprintf(path, sizeof path, "%s/tcp.pcap", tmpdir);
    struct sfi_trace_writer *w;
    assert_int_equal(sfi_trace_writer_open(ctx, path, SFI_TRACE_W_TCP, &w), SFI_OK);
    sfi_trace_writer_tcp_connect(w, 0x7F000001u, 45000, 0x7F000001u, 7184);
    static struct conv v;
    conversation(&v);
    size_t cpos = 0, spos = 0;
    for (unsigned i = 0; i < v.ncc; i++) {
        sfi_trace_writer_tcp_data(w, 1, v.c + cpos, v.cut_c[i] - cpos);
        sfi_trace_writer_tcp_data(w, 0, v.s + spos, v.cut_s[i] - spos);
        cpos = v.cut_c[i];
        spos = v.cut_s[i];
    }
    sfi_trace_writer_close(w);
    struct sfi_trace *tr;
    assert_int_equal(sfi_trace_open(ctx, path, NULL, &tr), SFI_OK);
    struct summary s;
    memset(&s, 0, sizeof s);
    const struct sfi_trace_rec *r;
    unsigned k = 0;
    while (sfi_trace_next(tr, &r) == SFI_OK && r != NULL)
        if (r->kind == SFI_TRACE_CMD || r->kind == SFI_TRACE_SERVER)
            k++;
    assert_int_equal(k, 7);
    sfi_trace_close(tr);

    /* cut short in the middle of a frame: records before it, then FORMAT */
    FILE *f = fopen(path, "rb");
    static uint8_t all[65536];
    size_t n = fread(all, 1, sizeof all, f);
    fclose(f);
    snprintf(bad, sizeof bad, "%s/cut.pcap", tmpdir);
    f = fopen(bad, "wb");
    fwrite(all, 1, n - 30, f);
    fclose(f);
    assert_int_equal(sfi_trace_open(ctx, bad, NULL, &tr), SFI_OK);
    int rc;
    k = 0;
    while ((rc = sfi_trace_next(tr, &r)) == SFI_OK && r != NULL)
        k++;
    assert_int_equal(rc, SFI_E_FORMAT);
    assert_true(k >= 5);
    sfi_trace_close(tr);

    /* not a capture */
    f = fopen(bad, "wb");
    fputs("hello, this is not a capture file\n", f);
    fclose(f);
    assert_int_equal(sfi_trace_open(ctx, bad, NULL, &tr), SFI_E_FORMAT);
    /* missing */
    snprintf(bad, sizeof bad, "%s/none.pcap", tmpdir);
    assert_int_equal(sfi_trace_open(ctx, bad, NULL, &tr), SFI_E_NOT_FOUND);
    /* a link type the reader does not know (PPP) */
    snprintf(bad, sizeof bad, "%s/ppp.pcap", tmpdir);
    pcap_t *dead = pcap_open_dead(DLT_PPP, 65535);
    pcap_dumper_t *d = pcap_dump_open(dead, bad);
    pcap_dump_close(d);
    pcap_close(dead);
    assert_int_equal(sfi_trace_open(ctx, bad, NULL, &tr), SFI_E_FORMAT);
    assert_non_null(strstr(sfi_errdetail(ctx), "link type 9"));
    /* a recording path that cannot be created */
    assert_int_equal(sfi_trace_writer_open(ctx, "/nonexistent-dir/x.pcap", SFI_TRACE_W_TCP, &w),
                     SFI_E_NOT_FOUND);
    assert_non_null(strstr(sfi_errdetail(ctx), "/nonexistent-dir/x.pcap"));
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_trace.XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    return sfi_ctx_new(&ctx);
}

static int teardown(void **state)
{
    (void)state;
    sfi_ctx_free(ctx);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_matches_sim),
        cmocka_unit_test(test_tcp_in_order_retransmit_reorder),
        cmocka_unit_test(test_tcp_gap_and_midway),
        cmocka_unit_test(test_link_types),
        cmocka_unit_test(test_usb),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_record_usb_and_read_back),
        cmocka_unit_test(test_record_tcp_and_bad_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
