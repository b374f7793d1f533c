/* tcpflow.c: stlink-server TCP streams in a capture. Reassembles each direction (retransmitted
 * and overlapping bytes are used once, reordered segments are held, a hole the peer's ACK
 * proves lost becomes a GAP record), cuts the client's bytes into requests and the server's
 * into the replies they ask for, and resynchronises after a gap or in a connection caught
 * mid-way by searching for the next plausible request. Everything is bounded: 64 connections,
 * 64 held segments (1 MiB) per direction, 256 requests awaiting their replies. */
#include <stdlib.h>
#include <string.h>

#include "sfi/bytes.h"
#include "trace/trace_int.h"

static int seq_lt(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

/* ---- records ------------------------------------------------------------------------------- */

static void emit_request(struct sfi_trace *tr, struct tr_flow *f, uint8_t *req, size_t rlen,
                         uint8_t *rep, size_t plen)
{
    struct sfi_trace_rec r;
    memset(&r, 0, sizeof r);
    r.stream = f->id;
    r.via = "tcp";
    r.status = -1;
    r.replied = rep != NULL;
    if (req[0] == SFI_STLINK_SRV_SEND_USB_CMD) {
        r.kind = SFI_TRACE_CMD;
        memcpy(r.cdb, req + 8, 16);
        r.out = req + SFI_STLINK_SRV_HDR_LEN;
        r.out_len = rlen - SFI_STLINK_SRV_HDR_LEN;
        r.in_want = req[24] != 0 ? sfi_get_le32(req + 28) : 0;
        if (rep != NULL && plen >= 4) {
            r.has_server_status = 1;
            r.server_status = sfi_get_le32(rep);
            r.in = rep + 4;
            r.in_len = plen - 4;
        }
        tr_decode_cmd(&r);
    } else {
        r.kind = SFI_TRACE_SERVER;
        r.req = sfi_stlink_srv_find(req[0]);
        r.req_bytes = req;
        r.req_len = rlen;
        r.rep_bytes = rep;
        r.rep_len = rep ? plen : 0;
        if (rep != NULL && r.req != NULL && r.req->has_status && plen >= 4) {
            r.has_server_status = 1;
            r.server_status = sfi_get_le32(rep);
        }
    }
    tr_emit(tr, &r, req, rep);
}

static void pend_pop_unreplied(struct sfi_trace *tr, struct tr_flow *f)
{
    struct tr_pend *p = &f->pend[f->phead];
    emit_request(tr, f, p->req, p->len, NULL, 0);
    p->req = NULL;
    f->phead = (f->phead + 1) % TR_MAX_PENDING;
    f->pcount--;
}

static void flush_pending(struct sfi_trace *tr, struct tr_flow *f)
{
    while (f->pcount > 0)
        pend_pop_unreplied(tr, f);
}

/* ---- the two byte streams ------------------------------------------------------------------ */

static int buf_append(struct sfi_trace *tr, struct tr_half *h, const uint8_t *p, size_t n)
{
    if (h->len + n > h->cap) {
        size_t cap = h->cap ? h->cap : 4096;
        while (cap < h->len + n)
            cap *= 2;
        uint8_t *b = realloc(h->buf, cap);
        if (b == NULL) {
            tr->oom = 1;
            return -1;
        }
        h->buf = b;
        h->cap = cap;
    }
    memcpy(h->buf + h->len, p, n);
    h->len += n;
    return 0;
}

static void buf_consume(struct tr_half *h, size_t n)
{
    memmove(h->buf, h->buf + n, h->len - n);
    h->len -= n;
}

/* A position where a request plausibly starts: SEND_USB_CMD with a known ST-LINK command, or
 * the fixed GET_SERVER_VERSION / CLOSE_DEV forms. Returns len when none (need_more set when
 * a candidate runs past the end). */
static size_t find_request(const uint8_t *b, size_t len, int *need_more)
{
    *need_more = 0;
    for (size_t i = 0; i < len; i++) {
        if (b[i] == SFI_STLINK_SRV_SEND_USB_CMD) {
            if (len - i < SFI_STLINK_SRV_HDR_LEN) {
                *need_more = 1;
                return i;
            }
            const uint8_t *q = b + i;
            if (q[1] | q[2] | q[3] | q[25] | q[26] | q[27])
                continue;
            if (sfi_stlink_srv_req_size(q, len - i) == (size_t)-1)
                continue;
            const struct sfi_stlink_cmd *c = sfi_stlink_cmd_find(q + 8);
            if (c == NULL)
                continue;
            if ((q[24] == 0) != (c->phase == SFI_STLINK_PHASE_OUT))
                continue;
            return i;
        }
        if (b[i] == SFI_STLINK_SRV_GET_SERVER_VERSION) {
            if (len - i < 4) {
                *need_more = 1;
                return i;
            }
            if (b[i + 2] == 0 && b[i + 3] == 0 && b[i + 1] >= 1 && b[i + 1] <= 4)
                return i;
        }
    }
    return len;
}

static void parse_server(struct sfi_trace *tr, struct tr_flow *f)
{
    struct tr_half *h = &f->h[1];
    if (f->srv_drop) {
        h->len = 0;
        return;
    }
    while (f->pcount > 0) {
        struct tr_pend *p = &f->pend[f->phead];
        size_t need = sfi_stlink_srv_rep_size(p->req);
        if (h->len < need)
            return;
        uint8_t *rep = malloc(need ? need : 1);
        if (rep == NULL) {
            tr->oom = 1;
            return;
        }
        memcpy(rep, h->buf, need);
        buf_consume(h, need);
        emit_request(tr, f, p->req, p->len, rep, need);
        p->req = NULL;
        f->phead = (f->phead + 1) % TR_MAX_PENDING;
        f->pcount--;
    }
    /* bytes nobody asked for (a connection caught mid-way): dropped, unless the request they
     * answer may still be held behind a reordered segment */
    if (h->len > 0 && (f->h[0].nheld == 0 || h->len > TR_MAX_REQ)) {
        tr->st.dropped += h->len;
        h->len = 0;
    }
}

static void parse_client(struct sfi_trace *tr, struct tr_flow *f)
{
    struct tr_half *h = &f->h[0];
    while (h->len > 0 && !tr->oom) {
        if (h->resync) {
            int more;
            size_t i = find_request(h->buf, h->len, &more);
            if (i == h->len || more) {
                tr->st.dropped += i;
                buf_consume(h, i);
                return;
            }
            tr->st.dropped += i;
            buf_consume(h, i);
            h->resync = 0;
            if (i > 0)
                tr_note(tr, f->id, "tcp", "resynchronised on a request after %zu skipped bytes",
                        i);
        }
        size_t sz = sfi_stlink_srv_req_size(h->buf, h->len);
        if (sz == (size_t)-1) {
            tr_note(tr, f->id, "tcp", "unknown stlink-server request 0x%02X: searching for the "
                    "next request", h->buf[0]);
            h->resync = 1;
            buf_consume(h, 1);
            tr->st.dropped++;
            continue;
        }
        if (sz == 0 || h->len < sz)
            return;
        uint8_t *req = malloc(sz);
        if (req == NULL) {
            tr->oom = 1;
            return;
        }
        memcpy(req, h->buf, sz);
        buf_consume(h, sz);
        if (f->pcount == TR_MAX_PENDING) {
            pend_pop_unreplied(tr, f);
            tr->st.dropped++;
        }
        struct tr_pend *p = &f->pend[(f->phead + f->pcount) % TR_MAX_PENDING];
        p->req = req;
        p->len = sz;
        f->pcount++;
        if (f->srv_drop) {
            /* replies from here on answer this request */
            f->srv_drop = 0;
            f->h[1].len = 0;
        }
        if (!f->counted) {
            f->counted = 1;
            tr->st.stlink_flows++;
        }
    }
}

/* Bytes [next, next + n) of direction d are lost. */
static void gap(struct sfi_trace *tr, struct tr_flow *f, int d, uint64_t n)
{
    struct sfi_trace_rec r;
    memset(&r, 0, sizeof r);
    r.kind = SFI_TRACE_GAP;
    r.stream = f->id;
    r.via = "tcp";
    r.status = -1;
    r.gap_bytes = n;
    r.to_server = d == 0;
    flush_pending(tr, f);
    tr_emit(tr, &r, NULL, NULL);
    f->h[d].len = 0;
    f->srv_drop = 1;
    f->h[1].len = 0;
    if (d == 0)
        f->h[0].resync = 1;
}

static void deliver(struct sfi_trace *tr, struct tr_flow *f, int d, const uint8_t *p, size_t n)
{
    struct tr_half *h = &f->h[d];
    if (n == 0)
        return;
    h->next += (uint32_t)n;
    if (d == 1 && f->srv_drop)
        return;
    if (h->len + n > TR_MAX_REQ + 64) {
        /* nothing valid is that long: treat the buffer as garbage */
        tr->st.dropped += h->len;
        h->len = 0;
        if (d == 0)
            h->resync = 1;
    }
    if (buf_append(tr, h, p, n) != 0)
        return;
    if (d == 0)
        parse_client(tr, f);
    parse_server(tr, f);
}

/* Delivers held segments that now continue the stream. */
static void drain(struct sfi_trace *tr, struct tr_flow *f, int d)
{
    struct tr_half *h = &f->h[d];
    for (int progress = 1; progress;) {
        progress = 0;
        for (unsigned i = 0; i < h->nheld; i++) {
            struct tr_seg *s = &h->held[i];
            uint32_t end = s->seq + (uint32_t)s->n;
            if (seq_lt(h->next, s->seq))
                continue;
            struct tr_seg keep = *s;
            h->held[i] = h->held[--h->nheld];
            h->held_bytes -= keep.n;
            if (seq_lt(h->next, end)) {
                uint32_t skip = h->next - keep.seq;
                deliver(tr, f, d, keep.p + skip, keep.n - skip);
            }
            free(keep.p);
            progress = 1;
            break;
        }
    }
}

/* The lowest held sequence number (the stream resumes there after a gap). */
static int lowest_held(const struct tr_half *h, uint32_t *seq)
{
    if (h->nheld == 0)
        return 0;
    uint32_t lo = h->held[0].seq;
    for (unsigned i = 1; i < h->nheld; i++)
        if (seq_lt(h->held[i].seq, lo))
            lo = h->held[i].seq;
    *seq = lo;
    return 1;
}

/* Skips to 'to' (a gap), then delivers what is held. */
static void skip_to(struct sfi_trace *tr, struct tr_flow *f, int d, uint32_t to)
{
    struct tr_half *h = &f->h[d];
    if (!seq_lt(h->next, to))
        return;
    gap(tr, f, d, (uint32_t)(to - h->next));
    h->next = to;
    drain(tr, f, d);
}

static void hold(struct sfi_trace *tr, struct tr_flow *f, int d, uint32_t seq, const uint8_t *p,
                 size_t n)
{
    struct tr_half *h = &f->h[d];
    if (h->peer_acked && seq_lt(h->next, h->peer_ack)) {
        /* the hole before this segment was acknowledged: those bytes are lost to the capture */
        uint32_t to = seq, lo;
        if (lowest_held(h, &lo) && seq_lt(lo, to))
            to = lo;
        skip_to(tr, f, d, to);
        if (!seq_lt(h->next, seq)) {
            if (seq_lt(h->next, seq + (uint32_t)n)) {
                uint32_t sk = h->next - seq;
                deliver(tr, f, d, p + sk, n - sk);
                drain(tr, f, d);
            }
            return;
        }
    }
    if (h->nheld == TR_MAX_HELD || h->held_bytes + n > TR_MAX_HELD_BYTES) {
        uint32_t lo;
        if (lowest_held(h, &lo) && seq_lt(lo, seq))
            skip_to(tr, f, d, lo);
        else
            skip_to(tr, f, d, seq);
        if (!seq_lt(h->next, seq)) {
            if (seq_lt(h->next, seq + (uint32_t)n)) {
                uint32_t sk = h->next - seq;
                deliver(tr, f, d, p + sk, n - sk);
                drain(tr, f, d);
            }
            return;
        }
    }
    uint8_t *c = malloc(n);
    if (c == NULL) {
        tr->oom = 1;
        return;
    }
    memcpy(c, p, n);
    h->held[h->nheld].seq = seq;
    h->held[h->nheld].n = n;
    h->held[h->nheld].p = c;
    h->nheld++;
    h->held_bytes += n;
}

/* ---- flows ----------------------------------------------------------------------------------- */

static void half_free(struct tr_half *h)
{
    for (unsigned i = 0; i < h->nheld; i++)
        free(h->held[i].p);
    free(h->buf);
    memset(h, 0, sizeof *h);
}

static void flow_end(struct sfi_trace *tr, struct tr_flow *f)
{
    for (int d = 0; d < 2; d++) {
        uint32_t lo;
        /* each round must consume a held segment; one that it cannot (a sequence number the
         * stream has wrapped past) ends the loop and is dropped with the flow */
        while (lowest_held(&f->h[d], &lo)) {
            unsigned before = f->h[d].nheld;
            skip_to(tr, f, d, lo);
            if (f->h[d].nheld >= before)
                break;
        }
        struct tr_half *h = &f->h[d];
        if (h->peer_acked && seq_lt(h->next, h->peer_ack) && !h->fin)
            skip_to(tr, f, d, h->peer_ack); /* acknowledged, never seen */
    }
    flush_pending(tr, f);
    if (f->h[0].len > 0 && f->counted)
        tr_note(tr, f->id, "tcp", "connection ends inside a request (%zu bytes)", f->h[0].len);
}

static void flow_free(struct tr_flow *f)
{
    half_free(&f->h[0]);
    half_free(&f->h[1]);
    for (unsigned i = 0; i < TR_MAX_PENDING; i++)
        free(f->pend[i].req);
    memset(f, 0, sizeof *f);
}

static struct tr_flow *flow_find(struct sfi_trace *tr, const uint8_t src[16], unsigned sport,
                                 const uint8_t dst[16], unsigned dport, unsigned flags, size_t n,
                                 int *dir)
{
    int free_slot = -1;
    for (unsigned i = 0; i < TR_MAX_FLOWS; i++) {
        struct tr_flow *f = tr->flows[i];
        if (f == NULL || !f->used) {
            if (free_slot < 0)
                free_slot = (int)i;
            continue;
        }
        for (int d = 0; d < 2; d++)
            if (f->port[d] == sport && f->port[1 - d] == dport &&
                memcmp(f->ip[d], src, 16) == 0 && memcmp(f->ip[1 - d], dst, 16) == 0) {
                *dir = d;
                return f;
            }
    }
    if (n == 0 && !(flags & TCP_SYN))
        return NULL; /* the last ACK of a closed connection, or an idle one */
    /* a new connection: which side is the server? */
    int src_is_server;
    if ((flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
        src_is_server = 0;
    else if ((flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK))
        src_is_server = 1;
    else if (sport == tr->opts.port || dport == tr->opts.port)
        src_is_server = sport == tr->opts.port;
    else
        src_is_server = sport < dport;
    unsigned server_port = src_is_server ? sport : dport;
    if (!tr->opts.all_ports && server_port != tr->opts.port)
        return NULL;
    if (free_slot < 0) {
        tr->st.dropped++;
        return NULL;
    }
    if (tr->flows[free_slot] == NULL) {
        tr->flows[free_slot] = calloc(1, sizeof(struct tr_flow));
        if (tr->flows[free_slot] == NULL) {
            tr->oom = 1;
            return NULL;
        }
    }
    struct tr_flow *f = tr->flows[free_slot];
    memset(f, 0, sizeof *f);
    f->used = 1;
    f->id = ++tr->next_id;
    memcpy(f->ip[src_is_server], src, 16);
    memcpy(f->ip[!src_is_server], dst, 16);
    f->port[src_is_server] = sport;
    f->port[!src_is_server] = dport;
    tr->st.tcp_flows++;
    *dir = src_is_server;
    return f;
}

void tr_tcp_segment(struct sfi_trace *tr, const uint8_t src[16], unsigned sport,
                    const uint8_t dst[16], unsigned dport, uint32_t seq, uint32_t ack,
                    unsigned flags, const uint8_t *p, size_t n, size_t missing)
{
    int d;
    struct tr_flow *f = flow_find(tr, src, sport, dst, dport, flags, n + missing, &d);
    if (f == NULL)
        return;
    struct tr_half *h = &f->h[d];
    if (flags & TCP_SYN) {
        if (!h->known || h->len == 0) {
            h->known = 1;
            h->next = seq + 1;
        }
        seq++;
    }
    if (!h->known) {
        /* caught mid-way: start here, and look for a request boundary */
        h->known = 1;
        h->next = seq;
        if (d == 0)
            h->resync = 1;
        else
            f->srv_drop = 1;
    }
    /* what the peer acknowledged was sent, even if the capture never showed it */
    struct tr_half *o = &f->h[1 - d];
    if ((flags & TCP_ACK) && o->known && (!o->peer_acked || seq_lt(o->peer_ack, ack)) &&
        seq_lt(ack, o->next + 0x40000000u)) {
        o->peer_acked = 1;
        o->peer_ack = ack;
    }
    if (n > 0) {
        uint32_t end = seq + (uint32_t)n;
        if (!seq_lt(h->next, end))
            ; /* retransmission: already delivered */
        else if (!seq_lt(h->next, seq)) {
            uint32_t skip = h->next - seq; /* overlap */
            deliver(tr, f, d, p + skip, n - skip);
            drain(tr, f, d);
        } else {
            hold(tr, f, d, seq, p, n);
        }
    }
    if (missing > 0) {
        /* the capture cut the segment short (snap length) */
        uint32_t end = seq + (uint32_t)(n + missing);
        if (!seq_lt(h->next, seq + (uint32_t)n) && seq_lt(h->next, end))
            skip_to(tr, f, d, end);
    }
    if (flags & (TCP_FIN | TCP_RST)) {
        if ((flags & TCP_FIN) && h->next == seq + (uint32_t)(n + missing))
            h->next++; /* the FIN takes one sequence number */
        h->fin = 1;
        if ((flags & TCP_RST) || f->h[1 - d].fin) {
            flow_end(tr, f);
            flow_free(f);
        }
    }
}

void tr_tcp_end(struct sfi_trace *tr)
{
    for (unsigned i = 0; i < TR_MAX_FLOWS; i++)
        if (tr->flows[i] != NULL && tr->flows[i]->used)
            flow_end(tr, tr->flows[i]);
}

void tr_tcp_free(struct sfi_trace *tr)
{
    for (unsigned i = 0; i < TR_MAX_FLOWS; i++) {
        if (tr->flows[i] != NULL)
            flow_free(tr->flows[i]);
        free(tr->flows[i]);
        tr->flows[i] = NULL;
    }
}
